//! CSV and TSV: every data row is a block that pairs each cell with its column header
//! (`Region: West; Q1 revenue: 1,200`), anchored to the row's line range in the file.
//!
//! The delimiter (comma, tab, semicolon or bar) is sniffed from the first line, quoted fields may
//! hold delimiters and line breaks, and rows may be ragged: extra cells are labelled `column N`,
//! missing and empty cells are left out. The first row is the header unless every cell of it is
//! a number. Deliberately not a typed reader: cells are text as written, and there is no title
//! (the engine names the file).

use crate::ParseError;
use crate::decode::decode;
use cairn_core::{Anchor, Block, Document};

/// Separates one `header: value` pair from the next in a row's text.
pub(crate) const PAIR_SEPARATOR: &str = "; ";

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    let decoded = decode(bytes, None)?;
    let text = decoded.text.strip_prefix('\u{feff}').unwrap_or(&decoded.text);
    let mut warnings: Vec<String> = decoded.warning.into_iter().collect();
    let delimiter = sniff_delimiter(text);
    let mut reader =
        ::csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());

    // The reader's own line count skips blank lines, so lines come from byte offsets.
    let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let line_of = |byte: u64| {
        // A record's position is where the reader started it, before the blank lines it skipped.
        let byte = usize::try_from(byte).unwrap_or(usize::MAX);
        let byte = byte + text.get(byte..).map_or(0, |rest| rest.len() - rest.trim_start_matches('\n').len());
        u32::try_from(line_starts.partition_point(|&s| s <= byte)).unwrap_or(u32::MAX).max(1)
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut record = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Decoded text is valid UTF-8 and the reader is flexible, so this is rare: keep
                // what was read and say where it stopped.
                let line = e.position().map_or(0, |p| line_of(p.byte()));
                warnings.push(format!("stopped reading at line {line}: {e}"));
                break;
            }
        }
        let start = record.position().map_or(1, |p| line_of(p.byte()));
        let cells: Vec<(usize, String)> = record.iter().map(clean).enumerate().filter(|(_, c)| !c.is_empty()).collect();
        let breaks = record.iter().map(|f| f.trim_end().matches('\n').count()).sum::<usize>();
        let end = start.saturating_add(u32::try_from(breaks).unwrap_or(u32::MAX));
        if !cells.is_empty() {
            rows.push(Row { start, end, cells });
        }
    }
    if let Some(line) = unterminated_quote(text, &rows) {
        warnings.push(format!("a quoted field opened on line {line} is never closed (file truncated?)"));
    }
    let blocks = rows_to_blocks(rows, &[], |i| format!("column {}", i + 1));
    if blocks.is_empty() {
        return Err(ParseError::NoText { format: "CSV" });
    }
    Ok(Document { title: None, blocks, warnings })
}

/// A row of a table: its first and last line (or spreadsheet row number) and its non-empty
/// cells as (0-based column, text), in column order.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub start: u32,
    pub end: u32,
    pub cells: Vec<(usize, String)>,
}

/// Rows to blocks under `heading`: the first row is the header unless it is all numbers; a
/// table that is only a header row becomes one `a | b` block. `column` names a column that has
/// no header (`column 4` in a CSV, `column D` in a spreadsheet).
pub(crate) fn rows_to_blocks(rows: Vec<Row>, heading: &[String], column: fn(usize) -> String) -> Vec<Block> {
    let mut rows = rows.into_iter();
    let Some(first) = rows.next() else { return Vec::new() };
    let anchor = |start: u32, end: u32| Anchor {
        line_start: Some(start),
        line_end: Some(end),
        heading: heading.to_vec(),
        ..Default::default()
    };
    let is_header = !first.cells.iter().all(|(_, c)| looks_numeric(c));
    let (header, mut data): (Vec<(usize, String)>, Vec<Row>) =
        if is_header { (first.cells.clone(), Vec::new()) } else { (Vec::new(), vec![first.clone()]) };
    data.extend(rows);
    if data.is_empty() {
        let cells: Vec<&str> = first.cells.iter().map(|(_, c)| c.as_str()).collect();
        return vec![Block { text: cells.join(" | "), anchor: anchor(first.start, first.end) }];
    }
    data.into_iter()
        .filter_map(|row| {
            let text = pair_with_header(&header, &row.cells, column);
            (!text.is_empty()).then(|| Block { text, anchor: anchor(row.start, row.end) })
        })
        .collect()
}

/// `Header: value; Other: value`; a cell whose column has no header is labelled by `column`.
pub(crate) fn pair_with_header(
    header: &[(usize, String)],
    cells: &[(usize, String)],
    column: fn(usize) -> String,
) -> String {
    let mut pairs = Vec::new();
    for (i, cell) in cells {
        if cell.is_empty() {
            continue;
        }
        match header.binary_search_by_key(i, |(c, _)| *c).ok().and_then(|at| header.get(at)) {
            Some((_, h)) => pairs.push(format!("{h}: {cell}")),
            None => pairs.push(format!("{}: {cell}", column(*i))),
        }
    }
    pairs.join(PAIR_SEPARATOR)
}

/// A cell as one line: whitespace (line breaks inside quotes too) collapsed.
pub(crate) fn clean(cell: &str) -> String {
    cell.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `1,200`, `-3.5`, `12%`, `$4`, `2024-01-31`: a cell that is a value, not a column name.
pub(crate) fn looks_numeric(cell: &str) -> bool {
    let core = cell.trim().trim_start_matches(['$', '€', '£', '+', '-', '(']).trim_end_matches(['%', ')']);
    !core.is_empty()
        && core.chars().any(|c| c.is_ascii_digit())
        && core.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '/' | ':' | ' ' | 'e' | 'E'))
}

/// The delimiter that occurs most on the first line outside quotes (tab wins ties: a TSV header
/// with commas in its names is still a TSV).
fn sniff_delimiter(text: &str) -> u8 {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let mut counts = [(b'\t', 0usize), (b',', 0), (b';', 0), (b'|', 0)];
    let mut quoted = false;
    for b in first.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(slot) = counts.iter_mut().find(|(d, _)| *d == b) {
            slot.1 += 1;
        }
    }
    counts.iter().filter(|(_, n)| *n > 0).max_by_key(|(d, n)| (*n, *d == b'\t')).map_or(b',', |(d, _)| *d)
}

/// The line of the last row when its text holds an odd number of quotes (a quoted field that runs
/// to the end of the file).
fn unterminated_quote(text: &str, rows: &[Row]) -> Option<u32> {
    let start = rows.last()?.start;
    let offset = text.split_inclusive('\n').take(usize::try_from(start.saturating_sub(1)).ok()?).map(str::len).sum();
    let tail = text.get(offset..)?;
    (tail.matches('"').count() % 2 == 1).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expected block: text, first line, last line.
    fn check(input: &[u8], expected: &[(&str, u32, u32)]) -> Document {
        let doc = parse(input).unwrap();
        assert_eq!(doc.title, None);
        let got: Vec<(&str, u32, u32)> = doc
            .blocks
            .iter()
            .map(|b| {
                assert!(b.anchor.heading.is_empty() && b.anchor.page.is_none());
                (b.text.as_str(), b.anchor.line_start.unwrap(), b.anchor.line_end.unwrap())
            })
            .collect();
        assert_eq!(got, expected);
        doc
    }

    #[test]
    fn rows_pair_cells_with_headers_and_keep_their_lines() {
        check(
            b"Region,Q1 revenue,Q2 revenue\nWest,\"1,200\",\"1,350\"\n\nEast,900,\n",
            &[("Region: West; Q1 revenue: 1,200; Q2 revenue: 1,350", 2, 2), ("Region: East; Q1 revenue: 900", 4, 4)],
        );
    }

    #[test]
    fn quoted_line_breaks_ragged_rows_and_tabs() {
        check(
            b"name,note\r\nAda,\"first line\r\nsecond, line\"\r\nBob\r\nCy,ok,extra\r\n",
            &[
                ("name: Ada; note: first line second, line", 2, 3),
                ("name: Bob", 4, 4),
                ("name: Cy; note: ok; column 3: extra", 5, 5),
            ],
        );
        check(b"city\tpop, est.\nOslo\t709,000\n", &[("city: Oslo; pop, est.: 709,000", 2, 2)]);
        check(b"a;b\n1;2\n", &[("a: 1; b: 2", 2, 2)]);
    }

    #[test]
    fn numeric_first_row_is_data_and_header_only_files_still_say_something() {
        check(
            b"1,2.5,-3\n4,5,6\n",
            &[("column 1: 1; column 2: 2.5; column 3: -3", 1, 1), ("column 1: 4; column 2: 5; column 3: 6", 2, 2)],
        );
        check(b"only,a,header\n", &[("only | a | header", 1, 1)]);
        check(b",b\nx,y\n", &[("column 1: x; b: y", 2, 2)]);
    }

    #[test]
    fn bom_utf16_and_cp1252_decode() {
        check(b"\xEF\xBB\xBFcaf\xC3\xA9,prix\ncr\xC3\xA8me,2\n", &[("café: crème; prix: 2", 2, 2)]);
        let utf16: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain("k\tv\nx\t\u{e9}\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        check(&utf16, &[("k: x; v: é", 2, 2)]);
        let doc = check(
            b"Stadt,Beschreibung\nK\xF6ln,sch\xF6ne gr\xFC\xDFe aus der Dom\xE4ne\n",
            &[("Stadt: Köln; Beschreibung: schöne grüße aus der Domäne", 2, 2)],
        );
        assert_eq!(doc.warnings, ["decoded as windows-1252"]);
    }

    #[test]
    fn truncated_and_broken_files() {
        let doc = check(b"a,b\n1,2\n3,\"unfinished\n4,5\n", &[("a: 1; b: 2", 2, 2), ("a: 3; b: unfinished 4,5", 3, 4)]);
        assert_eq!(doc.warnings, ["a quoted field opened on line 3 is never closed (file truncated?)"]);
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b",,,\n,,\n").unwrap_err().code(), "empty");
        assert_eq!(parse(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08").unwrap_err(), ParseError::Binary);
    }
}
