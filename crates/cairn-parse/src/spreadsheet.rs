//! Spreadsheets (XLSX and ODS, read with `calamine`): every row of every worksheet is a block that
//! pairs each cell with its column header (`Region: West; Q1: 1200`), under the heading
//! `[sheet name]` and anchored to the spreadsheet row number (shown as its line). The header is
//! the first non-empty row of each sheet unless that row is all numbers; cells without a header
//! are labelled by their column letter. The title is the document's `dc:title`.
//!
//! Deliberately values, not presentation: cells show their cached value (formulas are not
//! evaluated), numbers lose their display format (`0.15`, not `15%`), dates are ISO
//! (`2024-03-01`), and charts, comments and hidden state are ignored. Bounded: parts are read
//! through `package` (zip bombs refused), an ODS whose repeated rows and columns would expand to
//! more than `MAX_ODS_AREA` cells is refused before `calamine` allocates them, and reading stops
//! after `MAX_CELLS` non-empty cells with a warning.

use crate::ParseError;
use crate::delimited::{Row, clean, rows_to_blocks};
use crate::package::{Package, attr, element_text};
use cairn_core::{Block, Document};
use calamine::{Data, DataRef, ExcelDateTime, Ods, OdsError, Reader, SheetType, Xlsx, XlsxError};
use quick_xml::events::Event;
use std::collections::BTreeMap;
use std::io::Cursor;

/// Non-empty cells read from one workbook before the rest is skipped.
const MAX_CELLS: usize = 1_000_000;

/// Largest ODS sheet (rows × columns after expanding repeats) handed to `calamine`, which
/// allocates every cell of a sheet's bounding box.
const MAX_ODS_AREA: u64 = 5_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Xlsx,
    Ods,
}

pub(crate) fn parse(bytes: &[u8], kind: Kind) -> Result<Document, ParseError> {
    let format = match kind {
        Kind::Xlsx => "XLSX",
        Kind::Ods => "ODS",
    };
    let legacy = match kind {
        Kind::Xlsx => "a legacy Excel .xls file",
        Kind::Ods => "a legacy binary spreadsheet",
    };
    let mut package = Package::open(bytes, format, legacy)?;
    // Every XML part goes through the bounded reader first, so calamine never inflates a bomb.
    for name in package.names() {
        if name.ends_with(".xml") || name.ends_with(".rels") {
            package.bytes(&name)?;
        }
    }
    let mut warnings = Vec::new();
    let (title, sheets) = match kind {
        Kind::Xlsx => {
            let title = package.text("docProps/core.xml")?.and_then(|x| element_text(&x, b"title"));
            (title, read_xlsx(bytes, &mut warnings).map_err(|e| xlsx_error(&package, e))?)
        }
        Kind::Ods => {
            if package.odf_encrypted()? {
                return Err(ParseError::Encrypted { format });
            }
            let content = package.required("content.xml")?;
            check_ods_area(&content)?;
            let title = package.text("meta.xml")?.and_then(|x| element_text(&x, b"title"));
            (title, read_ods(bytes, &mut warnings).map_err(|e| ods_error(&package, e))?)
        }
    };
    let mut blocks: Vec<Block> = Vec::new();
    for (name, rows) in sheets {
        blocks.extend(rows_to_blocks(rows, &[name], column_letter));
    }
    let doc = Document { title, blocks, warnings };
    if doc.is_empty() {
        return Err(ParseError::NoText { format });
    }
    Ok(doc)
}

/// Worksheets in workbook order, each with its rows, via the streaming cell reader (cells are
/// kept sparse: a lone cell at `XFD1048576` costs one cell, not a billion).
fn read_xlsx(bytes: &[u8], warnings: &mut Vec<String>) -> Result<Vec<(String, Vec<Row>)>, XlsxError> {
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes))?;
    let names: Vec<String> =
        workbook.sheets_metadata().iter().filter(|s| s.typ == SheetType::WorkSheet).map(|s| s.name.clone()).collect();
    let mut budget = MAX_CELLS;
    let mut sheets = Vec::new();
    for name in names {
        let mut rows: BTreeMap<u32, Vec<(usize, String)>> = BTreeMap::new();
        let mut reader = workbook.worksheet_cells_reader(&name)?;
        while let Some(cell) = reader.next_cell()? {
            let text = data_ref_text(cell.get_value());
            if text.is_empty() {
                continue;
            }
            if budget == 0 {
                warnings.push(format!("stopped reading after {MAX_CELLS} cells"));
                break;
            }
            budget -= 1;
            let (row, col) = cell.get_position();
            rows.entry(row).or_default().push((usize::try_from(col).unwrap_or(usize::MAX), text));
        }
        drop(reader);
        sheets.push((name, to_rows(rows)));
        if budget == 0 {
            break;
        }
    }
    Ok(sheets)
}

fn read_ods(bytes: &[u8], warnings: &mut Vec<String>) -> Result<Vec<(String, Vec<Row>)>, OdsError> {
    let mut workbook: Ods<_> = Ods::new(Cursor::new(bytes))?;
    let mut budget = MAX_CELLS;
    let mut sheets = Vec::new();
    for name in workbook.sheet_names() {
        let range = workbook.worksheet_range(&name)?;
        let (row0, col0) = range.start().unwrap_or((0, 0));
        let mut rows: BTreeMap<u32, Vec<(usize, String)>> = BTreeMap::new();
        'rows: for (r, row) in range.rows().enumerate() {
            for (c, value) in row.iter().enumerate() {
                let text = data_text(value);
                if text.is_empty() {
                    continue;
                }
                if budget == 0 {
                    warnings.push(format!("stopped reading after {MAX_CELLS} cells"));
                    break 'rows;
                }
                budget -= 1;
                let r = row0.saturating_add(u32::try_from(r).unwrap_or(u32::MAX));
                let c = usize::try_from(col0).unwrap_or(usize::MAX).saturating_add(c);
                rows.entry(r).or_default().push((c, text));
            }
        }
        sheets.push((name, to_rows(rows)));
        if budget == 0 {
            break;
        }
    }
    Ok(sheets)
}

/// 0-based row numbers to 1-based rows with their cells in column order.
fn to_rows(rows: BTreeMap<u32, Vec<(usize, String)>>) -> Vec<Row> {
    rows.into_iter()
        .map(|(r, mut cells)| {
            cells.sort_by_key(|(c, _)| *c);
            let number = r.saturating_add(1);
            Row { start: number, end: number, cells }
        })
        .collect()
}

fn xlsx_error(package: &Package<'_>, e: XlsxError) -> ParseError {
    match e {
        XlsxError::Password => ParseError::Encrypted { format: "XLSX" },
        e => package.corrupt(e),
    }
}

fn ods_error(package: &Package<'_>, e: OdsError) -> ParseError {
    match e {
        OdsError::Password => ParseError::Encrypted { format: "ODS" },
        e => package.corrupt(e),
    }
}

/// Refuses an ODS whose sheets, once `number-rows-repeated` and `number-columns-repeated` are
/// expanded, would hold more than `MAX_ODS_AREA` cells up to their last non-empty cell.
fn check_ods_area(content: &str) -> Result<(), ParseError> {
    let mut reader = quick_xml::Reader::from_str(content);
    let (mut sheet, mut row, mut col) = (String::new(), 0u64, 0u64);
    let (mut max_row, mut max_col) = (0u64, 0u64);
    let mut row_repeat = 1u64;
    let mut row_has_content = false;
    // (column repeat, whether the open cell has content so far)
    let mut open_cell: Option<(u64, bool)> = None;
    let too_large = |sheet: &str, rows: u64, cols: u64| {
        ParseError::Unsupported(format!("ODS too large: sheet '{sheet}' spans {rows} rows × {cols} columns"))
    };
    let repeat = |e: &quick_xml::events::BytesStart<'_>, name: &[u8]| {
        attr(e, name).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(1).clamp(1, 1 << 20)
    };
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            // Broken XML is calamine's to report.
            Err(_) => return Ok(()),
        };
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::Text(t) if !t.iter().all(u8::is_ascii_whitespace) => {
                if let Some((_, content)) = open_cell.as_mut() {
                    *content = true;
                }
                continue;
            }
            Event::End(e) => {
                match e.local_name().as_ref() {
                    b"table-cell" | b"covered-table-cell" => {
                        if let Some((repeat, content)) = open_cell.take() {
                            if content {
                                max_col = max_col.max(col + repeat);
                                row_has_content = true;
                            }
                            col += repeat;
                        }
                    }
                    b"table-row" => {
                        if row_has_content {
                            max_row = max_row.max(row + row_repeat);
                        }
                        row += row_repeat;
                    }
                    b"table" => {
                        if max_row.saturating_mul(max_col) > MAX_ODS_AREA {
                            return Err(too_large(&sheet, max_row, max_col));
                        }
                    }
                    _ => {}
                }
                continue;
            }
            Event::Eof => return Ok(()),
            _ => continue,
        };
        match e.local_name().as_ref() {
            b"table" => {
                sheet = attr(&e, b"name").unwrap_or_default();
                (row, max_row, max_col) = (0, 0, 0);
            }
            b"table-row" => {
                row_repeat = repeat(&e, b"number-rows-repeated");
                row_has_content = false;
                col = 0;
                if empty {
                    row += row_repeat;
                }
            }
            b"table-cell" | b"covered-table-cell" => {
                let cols = repeat(&e, b"number-columns-repeated");
                let valued = attr(&e, b"value-type").is_some();
                if empty {
                    if valued {
                        max_col = max_col.max(col + cols);
                        row_has_content = true;
                    }
                    col += cols;
                } else {
                    open_cell = Some((cols, valued));
                }
            }
            _ => {
                if let Some((_, content)) = open_cell.as_mut() {
                    *content = true;
                }
            }
        }
        if max_row.saturating_mul(max_col) > MAX_ODS_AREA.saturating_mul(4) {
            return Err(too_large(&sheet, max_row, max_col));
        }
    }
}

/// A cell value as a user reads it.
fn data_text(value: &Data) -> String {
    match value {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => clean(s),
        Data::Float(f) => float_text(*f),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Data::DateTime(d) => datetime_text(d),
        Data::Error(e) => e.to_string(),
    }
}

fn data_ref_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::SharedString(s) => clean(s),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => clean(s),
        DataRef::Float(f) => float_text(*f),
        DataRef::Int(i) => i.to_string(),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        DataRef::DateTime(d) => datetime_text(d),
        DataRef::Error(e) => e.to_string(),
    }
}

/// `1200`, not `1200.0`; other floats as Rust prints them (shortest exact form).
fn float_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { format!("{f}") }
}

/// `2024-03-01`, `2024-03-01 14:30`, `14:30` (a time of day), `36:00:00` (a duration).
fn datetime_text(d: &ExcelDateTime) -> String {
    let value = d.as_f64();
    if d.is_duration() {
        let seconds = (value * 86_400.0).round();
        if !seconds.is_finite() {
            return format!("{value}");
        }
        let s = seconds.abs() as u64;
        return format!("{}{}:{:02}:{:02}", if seconds < 0.0 { "-" } else { "" }, s / 3600, s / 60 % 60, s % 60);
    }
    let (y, mo, day, h, mi, s, _) = d.to_ymd_hms_milli();
    let time = if s > 0 { format!("{h:02}:{mi:02}:{s:02}") } else { format!("{h:02}:{mi:02}") };
    if (0.0..1.0).contains(&value) {
        time
    } else if (h, mi, s) == (0, 0, 0) {
        format!("{y:04}-{mo:02}-{day:02}")
    } else {
        format!("{y:04}-{mo:02}-{day:02} {time}")
    }
}

/// `A`, `Z`, `AA` for 0-based column indexes, as `column A`.
fn column_letter(index: usize) -> String {
    let mut n = index.saturating_add(1);
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + u8::try_from(rem).unwrap_or(0)));
        n = (n - 1) / 26;
    }
    letters.reverse();
    format!("column {}", letters.into_iter().collect::<String>())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::package::tests::zip;

    /// An XLSX with one worksheet per (name, rows); rows are (row number, [(cell ref, xml)]).
    /// A cell's xml is `s:text` (inline string), `n:1.5` (number) or `d:45352.5` (date-styled).
    pub(crate) fn xlsx(sheets: &[(&str, &[(u32, &[(&str, &str)])])], title: Option<&str>) -> Vec<u8> {
        let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
        let mut overrides = String::new();
        let mut entries = String::new();
        let mut rels = String::new();
        for (i, (name, rows)) in sheets.iter().enumerate() {
            let n = i + 1;
            entries.push_str(&format!(r#"<sheet name="{name}" sheetId="{n}" r:id="rId{n}"/>"#));
            rels.push_str(&format!(
                r#"<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{n}.xml"/>"#
            ));
            overrides.push_str(&format!(
                r#"<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#
            ));
            let mut data = String::new();
            for (r, cells) in rows.iter() {
                data.push_str(&format!(r#"<row r="{r}">"#));
                for (at, value) in cells.iter() {
                    let cell = match value.split_once(':') {
                        Some(("s", t)) => format!(r#"<c r="{at}" t="inlineStr"><is><t>{t}</t></is></c>"#),
                        Some(("d", v)) => format!(r#"<c r="{at}" s="1"><v>{v}</v></c>"#),
                        _ => format!(r#"<c r="{at}"><v>{}</v></c>"#, value.trim_start_matches("n:")),
                    };
                    data.push_str(&cell);
                }
                data.push_str("</row>");
            }
            parts.push((
                format!("xl/worksheets/sheet{n}.xml"),
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{data}</sheetData></worksheet>"#
                )
                .into_bytes(),
            ));
        }
        parts.push((
            "[Content_Types].xml".into(),
            format!(
                r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>{overrides}</Types>"#
            )
            .into_bytes(),
        ));
        parts.push((
            "_rels/.rels".into(),
            br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_vec(),
        ));
        parts.push((
            "xl/workbook.xml".into(),
            format!(
                r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>{entries}</sheets></workbook>"#
            )
            .into_bytes(),
        ));
        rels.push_str(r#"<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>"#);
        parts.push((
            "xl/_rels/workbook.xml.rels".into(),
            format!(r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>"#).into_bytes(),
        ));
        parts.push((
            "xl/styles.xml".into(),
            br#"<?xml version="1.0"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="22" applyNumberFormat="1"/></cellXfs></styleSheet>"#.to_vec(),
        ));
        if let Some(t) = title {
            parts.push((
                "docProps/core.xml".into(),
                format!(r#"<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{t}</dc:title></cp:coreProperties>"#).into_bytes(),
            ));
        }
        let refs: Vec<(&str, &[u8])> = parts.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        zip(&refs)
    }

    /// An ODS with the given `<table:table>` elements as its body.
    pub(crate) fn ods(tables: &str, title: Option<&str>) -> Vec<u8> {
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>"#
        );
        let meta = title.map(|t| {
            format!(r#"<?xml version="1.0"?><office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><office:meta><dc:title>{t}</dc:title></office:meta></office:document-meta>"#)
        });
        let mut parts: Vec<(&str, &[u8])> = vec![
            ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
            ("META-INF/manifest.xml", br#"<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#),
            ("content.xml", content.as_bytes()),
        ];
        if let Some(meta) = &meta {
            parts.push(("meta.xml", meta.as_bytes()));
        }
        zip(&parts)
    }

    fn check(doc: &Document, title: Option<&str>, expected: &[(&str, &str, u32)]) {
        assert_eq!(doc.title.as_deref(), title);
        let got: Vec<(String, String, u32)> = doc
            .blocks
            .iter()
            .map(|b| {
                assert_eq!(b.anchor.line_start, b.anchor.line_end);
                (b.anchor.heading.join(" › "), b.text.clone(), b.anchor.line_start.unwrap())
            })
            .collect();
        let want: Vec<(String, String, u32)> =
            expected.iter().map(|(h, t, l)| (h.to_string(), t.to_string(), *l)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn xlsx_rows_pair_with_headers_per_sheet() {
        let sales: &[(u32, &[(&str, &str)])] = &[
            (2, &[("B2", "s:Region"), ("C2", "s:Q1 revenue"), ("D2", "s:Booked")]),
            (3, &[("B3", "s:West"), ("C3", "n:1200"), ("D3", "d:45352")]),
            (5, &[("B5", "s:East &amp; South"), ("C5", "n:950.5"), ("E5", "s:note")]),
        ];
        let notes: &[(u32, &[(&str, &str)])] = &[(1, &[("A1", "s:Only a header")])];
        let doc = parse(&xlsx(&[("Sales", sales), ("Notes", notes)], Some("Plan 2024")), Kind::Xlsx).unwrap();
        check(
            &doc,
            Some("Plan 2024"),
            &[
                ("Sales", "Region: West; Q1 revenue: 1200; Booked: 2024-03-01", 3),
                ("Sales", "Region: East & South; Q1 revenue: 950.5; column E: note", 5),
                ("Notes", "Only a header", 1),
            ],
        );
    }

    #[test]
    fn ods_rows_pair_with_headers_and_repeats_expand() {
        let tables = r#"<table:table table:name="Budget">
            <table:table-row table:number-rows-repeated="2"><table:table-cell table:number-columns-repeated="3"/></table:table-row>
            <table:table-row><table:table-cell office:value-type="string"><text:p>Item</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Cost</text:p></table:table-cell></table:table-row>
            <table:table-row table:number-rows-repeated="2"><table:table-cell office:value-type="string"><text:p>Rent</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="1200"><text:p>1,200.00</text:p></table:table-cell></table:table-row>
            <table:table-row table:number-rows-repeated="1048570"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>
            </table:table>"#;
        let doc = parse(&ods(tables, Some("Home")), Kind::Ods).unwrap();
        check(&doc, Some("Home"), &[("Budget", "Item: Rent; Cost: 1200", 4), ("Budget", "Item: Rent; Cost: 1200", 5)]);
    }

    #[test]
    fn ods_expanding_to_billions_of_cells_is_refused() {
        let tables = r#"<table:table table:name="Bomb"><table:table-row table:number-rows-repeated="1000000"><table:table-cell table:number-columns-repeated="1000" office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row></table:table>"#;
        let err = parse(&ods(tables, None), Kind::Ods).unwrap_err();
        assert_eq!(err.to_string(), "ODS too large: sheet 'Bomb' spans 1000000 rows × 1000 columns");
    }

    #[test]
    fn broken_locked_and_empty_workbooks_are_errors() {
        let good = xlsx(&[("S", &[(1, &[("A1", "s:a")]), (2, &[("A2", "s:b")])])], None);
        for cut in [good.len() / 2, good.len() - 30, 100] {
            let err = parse(&good[..cut], Kind::Xlsx).unwrap_err();
            assert_eq!(err.code(), "corrupt", "{err}");
            assert!(err.to_string().starts_with("corrupt XLSX: "), "{err}");
        }
        assert_eq!(parse(b"", Kind::Xlsx).unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b"plain text", Kind::Ods).unwrap_err().code(), "corrupt");
        assert_eq!(parse(&xlsx(&[("Empty", &[])], None), Kind::Xlsx).unwrap_err().code(), "empty");
        let mut encrypted = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        encrypted.extend([0u8; 64]);
        encrypted.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(parse(&encrypted, Kind::Xlsx).unwrap_err().to_string(), "encrypted XLSX (password required)");
        let locked = zip(&[
            ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
            ("META-INF/manifest.xml", br#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data/></manifest:file-entry></manifest:manifest>"#),
            ("content.xml", b"\x8f\x12binary"),
        ]);
        assert_eq!(parse(&locked, Kind::Ods).unwrap_err().to_string(), "encrypted ODS (password required)");
        let no_sheet = zip(&[("mimetype", b"application/vnd.oasis.opendocument.spreadsheet")]);
        assert_eq!(parse(&no_sheet, Kind::Ods).unwrap_err().to_string(), "corrupt ODS: missing content.xml");
    }

    #[test]
    fn values_read_like_the_sheet() {
        assert_eq!(column_letter(0), "column A");
        assert_eq!(column_letter(27), "column AB");
        assert_eq!(float_text(1200.0), "1200");
        assert_eq!(float_text(0.15), "0.15");
        let dt = |v: f64| ExcelDateTime::new(v, calamine::ExcelDateTimeType::DateTime, false);
        assert_eq!(datetime_text(&dt(45352.0)), "2024-03-01");
        assert_eq!(datetime_text(&dt(45352.75)), "2024-03-01 18:00");
        assert_eq!(datetime_text(&dt(0.5)), "12:00");
        let dur = ExcelDateTime::new(1.5, calamine::ExcelDateTimeType::TimeDelta, false);
        assert_eq!(datetime_text(&dur), "36:00:00");
    }
}
