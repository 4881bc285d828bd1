//! Plain text (and code, logs, config files): paragraphs split on blank lines, each anchored to
//! its 1-based line range in the original file.
//!
//! Deliberately not a language-aware parser: source code is read as text, with no notion of
//! functions or comments. The title is left empty (the engine names the file instead).

use crate::ParseError;
use crate::decode::decode;
use cairn_core::{Anchor, Block, Document};

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    let decoded = decode(bytes, None)?;
    let blocks = paragraphs(&decoded.text);
    if blocks.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(Document { title: None, blocks, warnings: decoded.warning.into_iter().collect() })
}

/// Runs of non-blank lines, each a block with its line range. Block text keeps one line per
/// original line (trailing whitespace trimmed), so the chunker can anchor parts of a long block
/// to exact lines.
pub(crate) fn paragraphs(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut start = 0u32;
    let mut flush = |current: &mut Vec<&str>, start: u32, end: u32| {
        if !current.is_empty() {
            blocks.push(Block {
                text: current.join("\n"),
                anchor: Anchor { line_start: Some(start), line_end: Some(end), ..Default::default() },
            });
            current.clear();
        }
    };
    let mut last = 0u32;
    for (i, line) in text.split('\n').enumerate() {
        let number = u32::try_from(i).unwrap_or(u32::MAX - 1).saturating_add(1);
        let line = line.trim_end();
        if line.trim().is_empty() {
            flush(&mut current, start, number.saturating_sub(1));
        } else {
            if current.is_empty() {
                start = number;
            }
            current.push(line);
        }
        last = number;
    }
    flush(&mut current, start, last);
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], expected: &[(&str, u32, u32)]) {
        let doc = parse(input).unwrap();
        assert_eq!(doc.title, None);
        let got: Vec<(&str, u32, u32)> = doc
            .blocks
            .iter()
            .map(|b| (b.text.as_str(), b.anchor.line_start.unwrap(), b.anchor.line_end.unwrap()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn paragraphs_carry_original_line_ranges() {
        check(b"one\ntwo\n\n\nthree\n", &[("one\ntwo", 1, 2), ("three", 5, 5)]);
        check(b"\r\n\r\nfirst\r\nsecond  \r\n \r\nlast", &[("first\nsecond", 3, 4), ("last", 6, 6)]);
        check(b"  indented code\n    more\n", &[("  indented code\n    more", 1, 2)]);
    }

    #[test]
    fn legacy_encoding_is_a_warning_not_an_error() {
        let doc = parse(b"caf\xE9 na\xEFve, d\xE9j\xE0 vu, cr\xE8me br\xFBl\xE9e").unwrap();
        assert_eq!(doc.blocks[0].text, "café naïve, déjà vu, crème brûlée");
        assert_eq!(doc.warnings, vec!["decoded as windows-1252".to_string()]);
    }

    #[test]
    fn empty_and_binary_files_are_errors() {
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b"\n \n\t").unwrap_err(), ParseError::Empty);
        let mut garbage = Vec::new();
        let mut x: u32 = 12345;
        for _ in 0..4096 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            garbage.push((x >> 16) as u8);
        }
        assert_eq!(parse(&garbage).unwrap_err(), ParseError::Binary);
    }
}
