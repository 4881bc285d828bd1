//! Bytes to text: byte-order marks, UTF-8, UTF-16 without a BOM, then a guessed legacy
//! encoding (windows-1252, Shift_JIS, ...), with binary content refused.
//!
//! Shared by the text, Markdown and HTML parsers. It deliberately does no parsing of structure
//! and never fails on odd bytes: anything that is not text becomes `ParseError::Binary`, a guess
//! becomes a warning on the document, and line breaks are normalised to `\n` without changing
//! the number of lines (so line anchors still point into the original file).

use crate::ParseError;
use encoding_rs::{Encoding, UTF_16BE, UTF_16LE};

/// Text decoded from a file, plus a warning when the encoding was a guess.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub text: String,
    pub warning: Option<String>,
}

/// Decodes `bytes` to text with `\n` line breaks. `hint` is an encoding declared by the file
/// itself (an HTML `<meta charset>`), used when the bytes are not valid UTF-8.
pub(crate) fn decode(bytes: &[u8], hint: Option<&'static Encoding>) -> Result<Decoded, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let (text, warning) = decode_raw(bytes, hint)?;
    if looks_binary(&text) {
        return Err(ParseError::Binary);
    }
    let text = normalise_newlines(text.strip_prefix('\u{feff}').unwrap_or(&text));
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(Decoded { text, warning })
}

fn decode_raw(bytes: &[u8], hint: Option<&'static Encoding>) -> Result<(String, Option<String>), ParseError> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let body = bytes.get(bom_len..).unwrap_or_default();
        let (text, _) = encoding.decode_without_bom_handling(body);
        return Ok((text.into_owned(), None));
    }
    let nuls = bytes.iter().filter(|&&b| b == 0).count();
    if let Ok(text) = std::str::from_utf8(bytes) {
        if nuls == 0 {
            return Ok((text.to_owned(), None));
        }
        // A stray NUL in an otherwise valid text file (a log written during a crash) should not
        // cost the whole file; dense NULs mean UTF-16 or binary, handled below.
        if nuls * 1000 <= bytes.len() {
            let warning = format!("ignored {nuls} NUL byte{}", if nuls == 1 { "" } else { "s" });
            return Ok((text.replace('\0', ""), Some(warning)));
        }
    }
    if nuls > 0 {
        // UTF-16 text without a BOM has a NUL in every other byte for ASCII-range text; anything
        // else with NULs in it is a binary file, whatever its extension says.
        if let Some(encoding) = utf16_without_bom(bytes)
            && let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(bytes)
        {
            return Ok((text.into_owned(), Some(format!("decoded as {} (no byte-order mark)", encoding.name()))));
        }
        return Err(ParseError::Binary);
    }
    if let Some(encoding) = hint.filter(|e| *e != UTF_16LE && *e != UTF_16BE && *e != encoding_rs::UTF_8)
        && let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(bytes)
    {
        return Ok((text.into_owned(), None));
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(bytes, true);
    let encoding = detector.guess(None, true);
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    Ok((text.into_owned(), Some(format!("decoded as {}", encoding.name()))))
}

/// Guesses UTF-16 byte order from where the NUL bytes sit in the first few kilobytes.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = bytes.get(..bytes.len().min(4096) & !1).unwrap_or_default();
    let pairs = sample.len() / 2;
    if pairs == 0 {
        return None;
    }
    let (mut even_nul, mut odd_nul) = (0usize, 0usize);
    for pair in sample.chunks_exact(2) {
        if pair.first() == Some(&0) {
            even_nul += 1;
        }
        if pair.get(1) == Some(&0) {
            odd_nul += 1;
        }
    }
    // Mostly-Latin UTF-16: one byte of every pair is NUL, the other almost never is.
    let mostly = |n: usize| n * 10 >= pairs * 4;
    let rarely = |n: usize| n * 20 <= pairs;
    if mostly(odd_nul) && rarely(even_nul) {
        Some(UTF_16LE)
    } else if mostly(even_nul) && rarely(odd_nul) {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Text is refused as binary when control characters (other than tab, newline, carriage return,
/// form feed, escape) make up more than a small share of it.
fn looks_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut control = 0usize;
    for c in text.chars().take(65_536) {
        total += 1;
        if c == '\0' || (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c' | '\x0b' | '\x1b')) {
            control += 1;
        }
    }
    control > 0 && control * 10 > total
}

/// `\r\n` and lone `\r` become `\n`; the number of lines does not change.
pub(crate) fn normalise_newlines(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_owned();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], expected: Result<&str, ParseError>, warned: bool) {
        match (decode(bytes, None), expected) {
            (Ok(d), Ok(text)) => {
                assert_eq!(d.text, text);
                assert_eq!(d.warning.is_some(), warned, "warning: {:?}", d.warning);
            }
            (Err(e), Err(want)) => assert_eq!(e, want),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend(if big_endian { [0xFE, 0xFF] } else { [0xFF, 0xFE] });
        }
        for unit in text.encode_utf16() {
            out.extend(if big_endian { unit.to_be_bytes() } else { unit.to_le_bytes() });
        }
        out
    }

    #[test]
    fn encodings_decode_to_the_right_text() {
        let text = "café naïve — 😀\nline two";
        check(&utf16(text, false, true), Ok(text), false);
        check(&utf16(text, true, true), Ok(text), false);
        check(&utf16(text, false, false), Ok(text), true);
        check(&utf16(text, true, false), Ok(text), true);
        check(&[b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(), Ok(text), false);
        check(text.as_bytes(), Ok(text), false);
        check(
            b"caf\xE9 na\xEFve, d\xE9j\xE0 vu, \xE0 la carte, cr\xE8me br\xFBl\xE9e",
            Ok("café naïve, déjà vu, à la carte, crème brûlée"),
            true,
        );
        check(b"a\r\nb\rc\n", Ok("a\nb\nc\n"), false);
        let stray_nul = [b"x".repeat(2000).as_slice(), b"\0tail"].concat();
        check(&stray_nul, Ok(&format!("{}tail", "x".repeat(2000))), true);
    }

    #[test]
    fn cp1252_warning_names_the_encoding() {
        let d = decode(b"caf\xE9 na\xEFve, d\xE9j\xE0 vu, cr\xE8me br\xFBl\xE9e", None).unwrap();
        assert_eq!(d.warning.as_deref(), Some("decoded as windows-1252"));
    }

    #[test]
    fn empty_and_binary_are_refused() {
        check(b"", Err(ParseError::Empty), false);
        check(b"  \n\t\r\n ", Err(ParseError::Empty), false);
        check(b"\xEF\xBB\xBF  \n", Err(ParseError::Empty), false);
        check(
            b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00\x01\x00\x00\x00",
            Err(ParseError::Binary),
            false,
        );
        check(b"\x01\x02\x03\x04\x05\x06 hello \x07\x08", Err(ParseError::Binary), false);
    }
}
