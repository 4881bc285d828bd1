//! DOCX (Office Open XML word processing): paragraphs of `word/document.xml` as blocks, heading
//! styles (`Heading1`..`Heading9`, outline levels, `Title`) as the heading path, table rows as
//! `cell | cell`. The title is the `Title`-styled paragraph, else `dc:title` from
//! `docProps/core.xml`, else the first level-1 heading.
//!
//! Deliberately not a Word renderer: headers, footers, footnotes, comments and deleted
//! (tracked) text are not read, fields show their cached result, and there are no page anchors
//! (a DOCX has no fixed pages).

use crate::ParseError;
use crate::package::{Package, attr, collapse, element_text, entity};
use cairn_core::{Anchor, Block, Document};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    let mut package = Package::open(bytes, "DOCX", "a legacy Word .doc file")?;
    let xml = package.required("word/document.xml")?;
    let core_title = package.text("docProps/core.xml").ok().flatten().and_then(|x| element_text(&x, b"title"));

    let mut body = Body::default();
    body.read(&xml).map_err(|e| package.corrupt(e))?;
    let title = body.title_style.take().or(core_title).or(body.first_h1.take());
    let doc = Document { title, blocks: body.finish(), warnings: Vec::new() };
    if doc.is_empty() {
        return Err(ParseError::NoText { format: "DOCX" });
    }
    Ok(doc)
}

#[derive(Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
    outline: Option<u8>,
}

#[derive(Default)]
struct Row {
    cells: Vec<String>,
    cell: Option<String>,
}

#[derive(Default)]
struct Body {
    blocks: Vec<Block>,
    paragraphs: Vec<Paragraph>,
    rows: Vec<Row>,
    headings: Vec<(u8, String)>,
    pending: Option<(u8, Vec<String>)>,
    title_style: Option<String>,
    first_h1: Option<String>,
    in_text: bool,
    in_ppr: bool,
    /// Depth inside content that is not shown (deleted text, field codes, fallback copies).
    skip: usize,
}

impl Body {
    fn read(&mut self, xml: &str) -> Result<(), String> {
        let mut reader = Reader::from_str(xml);
        loop {
            let event = reader.read_event().map_err(|e| format!("word/document.xml: {e}"))?;
            match event {
                Event::Start(e) => self.start(&e, false),
                Event::Empty(e) => self.start(&e, true),
                Event::End(e) => self.end(e.local_name().as_ref()),
                Event::Text(t) if self.in_text && self.skip == 0 => {
                    let text = t.decode().map_err(|e| format!("word/document.xml: {e}"))?;
                    self.push(&text);
                }
                Event::CData(t) if self.in_text && self.skip == 0 => self.push(&String::from_utf8_lossy(&t)),
                Event::GeneralRef(r) if self.in_text && self.skip == 0 => self.push(&entity(&r)),
                Event::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    fn start(&mut self, e: &BytesStart<'_>, empty: bool) {
        let local = e.local_name();
        let name = local.as_ref();
        if matches!(name, b"delText" | b"instrText" | b"Fallback" | b"del") {
            if !empty {
                self.skip += 1;
            }
            return;
        }
        if self.skip > 0 {
            return;
        }
        match name {
            b"p" if !empty => self.paragraphs.push(Paragraph::default()),
            b"pPr" if !empty => self.in_ppr = true,
            b"pStyle" if self.in_ppr => {
                if let Some(p) = self.paragraphs.last_mut() {
                    p.style = attr(e, b"val");
                }
            }
            b"outlineLvl" if self.in_ppr => {
                if let Some(p) = self.paragraphs.last_mut() {
                    p.outline = attr(e, b"val").and_then(|v| v.parse::<u8>().ok()).filter(|l| *l < 9).map(|l| l + 1);
                }
            }
            b"t" if !empty => self.in_text = true,
            b"tab" if !self.in_ppr => self.push("\t"),
            b"br" | b"cr" if !self.in_ppr => self.push("\n"),
            b"noBreakHyphen" => self.push("-"),
            b"tr" if !empty => self.rows.push(Row::default()),
            b"tc" if !empty => {
                if let Some(row) = self.rows.last_mut() {
                    if let Some(cell) = row.cell.take() {
                        row.cells.push(cell);
                    }
                    row.cell = Some(String::new());
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &[u8]) {
        if matches!(name, b"delText" | b"instrText" | b"Fallback" | b"del") {
            self.skip = self.skip.saturating_sub(1);
            return;
        }
        if self.skip > 0 {
            return;
        }
        match name {
            b"t" => self.in_text = false,
            b"pPr" => self.in_ppr = false,
            b"p" => {
                if let Some(p) = self.paragraphs.pop() {
                    self.finish_paragraph(p);
                }
            }
            b"tc" => {
                if let Some(row) = self.rows.last_mut()
                    && let Some(cell) = row.cell.take()
                {
                    row.cells.push(cell);
                }
            }
            b"tr" => {
                if let Some(mut row) = self.rows.pop() {
                    if let Some(cell) = row.cell.take() {
                        row.cells.push(cell);
                    }
                    let cells: Vec<String> = row.cells.iter().map(|c| collapse(c)).filter(|c| !c.is_empty()).collect();
                    if !cells.is_empty() {
                        let line = cells.join(" | ");
                        match self.open_cell() {
                            Some(outer) => {
                                outer.push(' ');
                                outer.push_str(&line);
                            }
                            None => self.emit(line),
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn open_cell(&mut self) -> Option<&mut String> {
        self.rows.last_mut().and_then(|r| r.cell.as_mut())
    }

    fn push(&mut self, text: &str) {
        if let Some(p) = self.paragraphs.last_mut() {
            p.text.push_str(text);
        }
    }

    fn finish_paragraph(&mut self, p: Paragraph) {
        let text: Vec<&str> = p.text.lines().map(str::trim_end).collect();
        let text = text.join("\n").trim().to_owned();
        if text.is_empty() {
            return;
        }
        if let Some(cell) = self.open_cell() {
            if !cell.is_empty() {
                cell.push(' ');
            }
            cell.push_str(&text);
            return;
        }
        if let Some(outer) = self.paragraphs.last_mut() {
            // A text box inside a paragraph: its text is part of the surrounding paragraph.
            outer.text.push(' ');
            outer.text.push_str(&text);
            return;
        }
        match heading_level(p.style.as_deref(), p.outline) {
            Some(0) => {
                let title = collapse(&text);
                if self.title_style.is_none() {
                    self.title_style = Some(title.clone());
                }
                self.heading(0, title);
            }
            Some(level) => {
                let text = collapse(&text);
                if level == 1 && self.first_h1.is_none() {
                    self.first_h1 = Some(text.clone());
                }
                self.heading(level, text);
            }
            None => self.emit(text),
        }
    }

    fn path(&self) -> Vec<String> {
        self.headings.iter().map(|(_, h)| h.clone()).collect()
    }

    fn heading(&mut self, level: u8, text: String) {
        if self.pending.as_ref().is_some_and(|(l, _)| level <= *l) {
            self.emit_pending();
        }
        while self.headings.last().is_some_and(|(l, _)| *l >= level) {
            self.headings.pop();
        }
        self.headings.push((level, text));
        self.pending = Some((level, self.path()));
    }

    fn emit(&mut self, text: String) {
        self.pending = None;
        self.blocks.push(Block { text, anchor: Anchor { heading: self.path(), ..Default::default() } });
    }

    fn emit_pending(&mut self) {
        if let Some((_, path)) = self.pending.take()
            && let Some(text) = path.last().cloned()
        {
            self.blocks.push(Block { text, anchor: Anchor { heading: path, ..Default::default() } });
        }
    }

    fn finish(mut self) -> Vec<Block> {
        self.emit_pending();
        self.blocks
    }
}

/// Heading level from a paragraph style id (`Heading2`, `heading 2`, `Title`) or outline level;
/// `Some(0)` is the document title.
fn heading_level(style: Option<&str>, outline: Option<u8>) -> Option<u8> {
    if let Some(style) = style {
        let lower = style.to_ascii_lowercase().replace([' ', '-', '_'], "");
        if lower == "title" {
            return Some(0);
        }
        if let Some(n) =
            lower.strip_prefix("heading").and_then(|n| n.parse::<u8>().ok()).filter(|n| (1..=9).contains(n))
        {
            return Some(n);
        }
    }
    outline
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// A DOCX with the given `word/document.xml` body (and optional core title), built in memory.
    pub(crate) fn docx(body: &str, core_title: Option<&str>) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("[Content_Types].xml", opts).unwrap();
        zip.write_all(
            br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#,
        )
        .unwrap();
        zip.start_file("word/document.xml", opts).unwrap();
        write!(
            zip,
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
        )
        .unwrap();
        if let Some(t) = core_title {
            zip.start_file("docProps/core.xml", opts).unwrap();
            write!(
                zip,
                r#"<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{t}</dc:title></cp:coreProperties>"#
            )
            .unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn p(style: Option<&str>, text: &str) -> String {
        let ppr = style
            .map(|s| {
                format!(r#"<w:pPr><w:pStyle w:val="{s}"/><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>"#)
            })
            .unwrap_or_default();
        format!("<w:p>{ppr}<w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>")
    }

    fn table(rows: &[&[&str]]) -> String {
        let rows: String = rows
            .iter()
            .map(|r| {
                format!("<w:tr>{}</w:tr>", r.iter().map(|c| format!("<w:tc>{}</w:tc>", p(None, c))).collect::<String>())
            })
            .collect();
        format!("<w:tbl>{rows}</w:tbl>")
    }

    fn check(bytes: &[u8], title: Option<&str>, expected: &[(&str, &[&str])]) {
        crate::assert_blocks(&parse(bytes).unwrap(), title, expected);
    }

    #[test]
    fn headings_build_the_path_and_tables_pair_cells() {
        let body = [
            p(Some("Heading1"), "Annual Report"),
            p(None, "Intro &amp; summary."),
            p(Some("Heading2"), "Sales"),
            table(&[&["Region", "Q1"], &["North", "82,959"]]),
            p(Some("heading 2"), "Costs"),
            "<w:p><w:r><w:t>Rent</w:t><w:tab/><w:t>12</w:t><w:br/><w:t>Power</w:t><w:delText>secret</w:delText></w:r></w:p>".to_owned(),
            p(Some("Heading2"), "Appendix"),
        ]
        .concat();
        check(
            &docx(&body, None),
            Some("Annual Report"),
            &[
                ("Intro & summary.", &["Annual Report"]),
                ("Region | Q1", &["Annual Report", "Sales"]),
                ("North | 82,959", &["Annual Report", "Sales"]),
                ("Rent\t12\nPower", &["Annual Report", "Costs"]),
                ("Appendix", &["Annual Report", "Appendix"]),
            ],
        );
    }

    #[test]
    fn title_style_wins_then_core_title() {
        let body = [p(Some("Title"), "The Plan"), p(None, "Body.")].concat();
        check(&docx(&body, Some("Stale template name")), Some("The Plan"), &[("Body.", &["The Plan"])]);
        check(&docx(&p(None, "Body."), Some("Core &amp; Title")), Some("Core & Title"), &[("Body.", &[])]);
    }

    #[test]
    fn broken_files_are_corrupt_not_content() {
        let good = docx(&p(None, "hello world"), None);
        let truncated = &good[..good.len() / 2];
        let err = parse(truncated).unwrap_err();
        assert_eq!(err.code(), "corrupt");
        assert!(err.to_string().starts_with("corrupt DOCX: "), "{err}");

        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("other.xml", zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(b"<x/>").unwrap();
        let no_document = zip.finish().unwrap().into_inner();
        assert_eq!(parse(&no_document).unwrap_err().to_string(), "corrupt DOCX: missing word/document.xml");

        assert_eq!(parse(b"not a zip at all").unwrap_err().code(), "corrupt");
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]).unwrap_err().code(), "unsupported");
        assert_eq!(parse(&docx("<w:p><w:pPr/></w:p>", None)).unwrap_err().code(), "empty");
    }
}
