//! Pure helpers for talking to HTTP model providers: `Retry-After` (seconds or HTTP date),
//! full-jitter exponential backoff from a tiny internal PRNG, the human message of an error
//! body, and scrubbing the API key out of any text we show.
//!
//! This file is compiled into both `cairn-llm` and `cairn-embed` (the latter includes it with
//! `#[path]`, as the two crates must not depend on each other). Keep it free of crate types and
//! I/O: standard library and `serde_json` only.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Statuses worth asking again: timeout, conflict, rate limit, and every server error
/// (Anthropic's 529 "overloaded" included).
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// How long the server asked us to wait: `retry-after-ms` (milliseconds, sent by some
/// OpenAI-compatible gateways) wins, then `Retry-After` as delay-seconds or as an HTTP date.
/// A date in the past means "now" (zero). Unparseable values are ignored.
pub(crate) fn retry_after(
    retry_after: Option<&str>,
    retry_after_ms: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite() && *v >= 0.0) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = retry_after?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // Some servers send fractional seconds, which RFC 9110 does not allow; accept them anyway.
    if let Some(secs) = v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0) {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An HTTP date in any of the three forms RFC 9110 requires a recipient to accept:
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
/// and asctime (`Sun Nov  6 08:49:37 1994`). The weekday is not checked.
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let mut month = None;
    let mut time = None;
    let mut numbers = Vec::new();
    for tok in s.split([' ', ',', '-']).filter(|t| !t.is_empty()) {
        let lower = tok.to_ascii_lowercase();
        if let Some(m) = MONTHS.iter().position(|m| *m == lower) {
            month = Some(m as u32 + 1);
        } else if tok.contains(':') {
            let mut parts = tok.split(':').map(|p| p.parse::<u32>().ok());
            let (h, m, sec) = (parts.next()??, parts.next()??, parts.next()??);
            if parts.next().is_some() || h > 23 || m > 59 || sec > 60 {
                return None;
            }
            time = Some((h, m, sec));
        } else if tok.bytes().all(|b| b.is_ascii_digit()) {
            numbers.push((tok.len(), tok.parse::<u32>().ok()?));
        }
    }
    // Day comes before year in all three forms.
    let [(_, day), (year_len, year)] = numbers[..] else { return None };
    let year = match year_len {
        4 => year,
        // RFC 850's two-digit year: 70-99 are 19xx (a date too far ahead would be 50 years off).
        2 if year >= 70 => 1900 + year,
        2 => 2000 + year,
        _ => return None,
    };
    let (month, (h, m, sec)) = (month?, time?);
    if !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(sec);
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// xorshift64* state; seeded lazily from the clock so processes started together still differ.
static RNG: AtomicU64 = AtomicU64::new(0);

/// A pseudo-random number, good enough to spread retries apart (not for anything secret).
pub(crate) fn next_random() -> u64 {
    let mut x = RNG.load(Ordering::Relaxed);
    if x == 0 {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        x = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x2545_F491_4F6C_DD1D;
        if x == 0 {
            x = 0x2545_F491_4F6C_DD1D;
        }
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    RNG.store(x, Ordering::Relaxed);
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// "Full jitter" backoff before retry number `retry` (1 for the first retry): a uniformly
/// random wait between zero and `min(max, base * 2^(retry-1))`, so clients that failed together
/// do not come back together.
pub(crate) fn full_jitter(base: Duration, max: Duration, retry: u32) -> Duration {
    let ceiling = base.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1))).min(max);
    let fraction = (next_random() >> 11) as f64 / (1u64 << 53) as f64;
    ceiling.mul_f64(fraction)
}

/// "42 s", "3 min", "250 ms": for messages a person reads.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        let tenths = d.as_secs_f64() * 10.0;
        if (tenths.round() as u128).is_multiple_of(10) {
            format!("{} s", (tenths / 10.0).round() as u64)
        } else {
            format!("{:.1} s", d.as_secs_f64())
        }
    } else {
        format!("{} min", d.as_secs().div_ceil(60))
    }
}

/// Whole seconds to wait, rounded up, for "retry in N s".
pub(crate) fn wait_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 { s + 1 } else { s }
}

/// The human message of an error response body: `error.message` (OpenAI, Anthropic, llama.cpp,
/// LM Studio), `error` as a string (Ollama), a top-level `message` or `detail`, else the start of
/// the body. `None` for an empty body.
pub(crate) fn error_body_message(body: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let m = v
            .pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"));
        if let Some(m) = m.and_then(|m| m.as_str()).map(str::trim).filter(|m| !m.is_empty()) {
            return Some(m.to_owned());
        }
    }
    let body = body.trim();
    (!body.is_empty()).then(|| body.chars().take(300).collect())
}

/// Replaces the API key, wherever it appears, with `<redacted>`. Servers have been known to
/// echo a rejected key back in the error text; it must never reach a log or the screen.
pub(crate) fn redact(text: &str, secret: Option<&str>) -> String {
    match secret.map(str::trim).filter(|s| s.len() >= 4) {
        Some(s) if text.contains(s) => text.replace(s, "<redacted>"),
        _ => text.to_owned(),
    }
}

/// Everything an error says, its sources included, without repeating itself.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_dates_and_ms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after(Some("7"), None, now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(Some(" 0 "), None, now), Some(Duration::ZERO));
        assert_eq!(retry_after(Some("1.5"), None, now), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(Some("7"), Some("250"), now), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(Some("Sun, 06 Nov 1994 08:50:37 GMT"), None, now), Some(Duration::from_secs(60)));
        assert_eq!(retry_after(Some("Sunday, 06-Nov-94 08:49:47 GMT"), None, now), Some(Duration::from_secs(10)));
        assert_eq!(retry_after(Some("Sun Nov  6 08:49:39 1994"), None, now), Some(Duration::from_secs(2)));
        // In the past: go now.
        assert_eq!(retry_after(Some("Sat, 05 Nov 1994 08:49:37 GMT"), None, now), Some(Duration::ZERO));
        assert_eq!(retry_after(Some("soon"), None, now), None);
        assert_eq!(retry_after(Some("-3"), None, now), None);
        assert_eq!(retry_after(None, None, now), None);
    }

    #[test]
    fn http_dates() {
        let t = parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").expect("date");
        assert_eq!(t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs(), 1_445_412_480);
        let t = parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT").expect("leap day");
        assert_eq!(t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs(), 1_709_251_199);
        assert!(parse_http_date("Wed, 21 Foo 2015 07:28:00 GMT").is_none());
        assert!(parse_http_date("Wed, 21 Oct 2015 25:28:00 GMT").is_none());
        assert!(parse_http_date("").is_none());
    }

    #[test]
    fn jitter_stays_under_the_ceiling_and_varies() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(350);
        let waits: Vec<Duration> = (0..200).map(|i| full_jitter(base, max, 1 + i % 5)).collect();
        for (i, w) in waits.iter().enumerate() {
            let ceiling = (base * 2u32.pow((i % 5) as u32)).min(max);
            assert!(*w <= ceiling, "{w:?} > {ceiling:?}");
        }
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 150, "only {} distinct waits", distinct.len());
    }

    #[test]
    fn messages_and_redaction() {
        assert_eq!(error_body_message(r#"{"error":{"message":" nope "}}"#).as_deref(), Some("nope"));
        assert_eq!(error_body_message(r#"{"error":"model not found"}"#).as_deref(), Some("model not found"));
        assert_eq!(error_body_message("  plain text ").as_deref(), Some("plain text"));
        assert_eq!(error_body_message(" "), None);
        assert_eq!(redact("bad key sk-secret-1", Some("sk-secret-1")), "bad key <redacted>");
        assert_eq!(redact("a b", Some("a")), "a b", "too short to be a key");
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(human_duration(Duration::from_secs(42)), "42 s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 min");
        assert_eq!(wait_secs(Duration::from_millis(1200)), 2);
        assert!(is_retryable_status(529) && is_retryable_status(429) && !is_retryable_status(401));
    }
}
