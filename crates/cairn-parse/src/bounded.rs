//! Extraction with a time box for the in-process readers.
//!
//! PDF already runs its tools as child processes that are killed on time. Every other format is
//! read in this process, by our code or a library's; a file crafted to make one of them loop or
//! crawl must not stop the pipeline. Such a parse runs on its own thread and is abandoned when
//! it overruns: the caller gets `Timeout` and moves on to the next file. An abandoned thread
//! cannot be killed, so it keeps its core until it finishes; that is the price of staying in
//! one process, and it is paid only for hostile input. A reader that panics is reported the same
//! way, as a reason, and the pipeline carries on.

use crate::{Format, ParseError, ParseLimits, parse};
use cairn_core::Document;
use std::sync::mpsc;

/// Stack for a reader thread: deep but bounded nesting (HTML, XML) stays well inside it.
const READER_STACK: usize = 16 * 1024 * 1024;

/// Parses `bytes` as `format`, giving up after `limits.extract_timeout`.
pub fn parse_bounded(format: Format, bytes: Vec<u8>, limits: &ParseLimits) -> Result<Document, ParseError> {
    if format == Format::Pdf {
        // Time-boxed by killing its child processes, which frees everything at once.
        return parse(format, &bytes, limits);
    }
    let (tx, rx) = mpsc::channel();
    let thread_limits = limits.clone();
    let spawned = std::thread::Builder::new().name("cairn-extract".into()).stack_size(READER_STACK).spawn(move || {
        let _ = tx.send(parse(format, &bytes, &thread_limits));
    });
    if let Err(e) = spawned {
        return Err(ParseError::ToolFailed { tool: "reader thread", detail: e.to_string() });
    }
    match rx.recv_timeout(limits.extract_timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(ParseError::Timeout { what: "text extraction", after: limits.extract_timeout })
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ParseError::Corrupt(format!(
            "the {} reader failed on this file (a bug in Cairn; the file was skipped)",
            format.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_reader_that_overruns_is_abandoned_with_a_reason() {
        // 40,000 rows take the CSV reader far longer than no time at all.
        let mut csv = String::from("name,amount\n");
        for i in 0..40_000 {
            csv.push_str(&format!("row {i},{i}\n"));
        }
        let limits = ParseLimits { extract_timeout: Duration::ZERO, ..Default::default() };
        let err = parse_bounded(Format::Csv, csv.clone().into_bytes(), &limits).unwrap_err();
        assert_eq!(err.code(), "timeout");
        assert_eq!(err.to_string(), "text extraction timed out after 0s");

        let doc = parse_bounded(Format::Csv, csv.into_bytes(), &ParseLimits::default()).unwrap();
        assert!(doc.blocks.iter().any(|b| b.text.contains("name: row 39999; amount: 39999")));
    }
}
