//! Why a file could not be turned into a `Document`.
//!
//! Messages are written for the person whose file it is (what is wrong, what to do about it);
//! `code()` is the stable string that programs branch on. This is deliberately not a wrapper
//! around I/O or library errors: every variant is a reason a user can act on, and no
//! extractor's raw output is ever passed through as document content.

use std::time::Duration;

/// A file that could not be parsed, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Zero bytes, or only whitespace.
    #[error("empty file")]
    Empty,
    /// The file has content but none of it is readable text (only markup, scripts, blank pages
    /// of a DOCX, ...). `format` is a user-facing name such as `"HTML"`.
    #[error("no text found in {format} file")]
    NoText { format: &'static str },
    /// Bytes that do not decode to text (NUL bytes, control characters).
    #[error("binary content (not text)")]
    Binary,
    /// A password-protected document.
    #[error("encrypted {format} (password required)")]
    Encrypted { format: &'static str },
    /// A PDF made of page images only, which OCR could not read; `why` says what to do
    /// (`OCR is not available (tesseract not installed: install tesseract-ocr)`).
    #[error("PDF has no text layer (scanned pages need OCR): {why}")]
    NeedsOcr { why: String },
    /// The file is damaged or not what its extension claims. The message is complete and
    /// user-facing, e.g. `corrupt DOCX: invalid Zip archive`.
    #[error("{0}")]
    Corrupt(String),
    /// A file of a kind Cairn does not read even though its extension looked right, e.g. a
    /// legacy Word `.doc` renamed to `.docx`.
    #[error("{0}")]
    Unsupported(String),
    /// An external extractor (pdftotext) ran longer than allowed and was stopped.
    #[error("{what} timed out after {}s", .after.as_secs())]
    Timeout { what: &'static str, after: Duration },
    /// An external program Cairn needs is not installed.
    #[error("{tool} not installed: install {package}")]
    ToolMissing { tool: &'static str, package: &'static str },
    /// An external program could not be run or failed in a way that says nothing about the file.
    #[error("{tool} failed: {detail}")]
    ToolFailed { tool: &'static str, detail: String },
}

impl ParseError {
    /// A short stable code for programs (`--json` output, the desktop app). Codes are only ever
    /// added, never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Empty | ParseError::NoText { .. } => "empty",
            ParseError::Binary => "binary",
            ParseError::Encrypted { .. } => "encrypted",
            ParseError::NeedsOcr { .. } => "needs_ocr",
            ParseError::Corrupt(_) => "corrupt",
            ParseError::Unsupported(_) => "unsupported",
            ParseError::Timeout { .. } => "timeout",
            ParseError::ToolMissing { .. } => "tool_missing",
            ParseError::ToolFailed { .. } => "tool_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: ParseError, code: &str, message: &str) {
        assert_eq!(err.code(), code);
        assert_eq!(err.to_string(), message);
    }

    #[test]
    fn messages_read_as_reasons() {
        check(ParseError::Empty, "empty", "empty file");
        check(ParseError::Binary, "binary", "binary content (not text)");
        check(ParseError::Encrypted { format: "PDF" }, "encrypted", "encrypted PDF (password required)");
        check(
            ParseError::NeedsOcr { why: "OCR is turned off".into() },
            "needs_ocr",
            "PDF has no text layer (scanned pages need OCR): OCR is turned off",
        );
        check(
            ParseError::Timeout { what: "PDF extraction", after: Duration::from_secs(120) },
            "timeout",
            "PDF extraction timed out after 120s",
        );
        check(
            ParseError::ToolMissing { tool: "pdftotext", package: "poppler-utils" },
            "tool_missing",
            "pdftotext not installed: install poppler-utils",
        );
        check(
            ParseError::Corrupt("corrupt DOCX: missing word/document.xml".into()),
            "corrupt",
            "corrupt DOCX: missing word/document.xml",
        );
    }
}
