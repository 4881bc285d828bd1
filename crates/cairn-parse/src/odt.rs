//! ODT (OpenDocument text): paragraphs and list items of `content.xml` as blocks under the
//! heading path built from `text:h` outline levels, table rows as `cell | cell`. The title is
//! `dc:title` from `meta.xml`, else a `Title`-styled paragraph, else the first level-1 heading.
//!
//! Deliberately not a renderer: footnotes, comments, tracked deletions and generated indexes
//! (tables of contents) are not read, and there are no page anchors (an ODT has no fixed pages).

use crate::ParseError;
use crate::package::{Package, attr, collapse, element_text, entity, tidy_lines};
use cairn_core::{Anchor, Block, Document};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    let mut package = Package::open(bytes, "ODT", "a legacy binary document")?;
    if package.odf_encrypted()? {
        return Err(ParseError::Encrypted { format: "ODT" });
    }
    let content = package.required("content.xml")?;
    let meta_title = package.text("meta.xml")?.and_then(|x| element_text(&x, b"title"));
    let mut body = Body::default();
    body.read(&content).map_err(|e| package.corrupt(format!("content.xml: {e}")))?;
    let title = meta_title.or(body.title_style.take()).or(body.first_h1.take());
    let doc = Document { title, blocks: body.finish(), warnings: Vec::new() };
    if doc.is_empty() {
        return Err(ParseError::NoText { format: "ODT" });
    }
    Ok(doc)
}

#[derive(Default)]
struct Paragraph {
    text: String,
    /// `Some(0)` for a `Title`-styled paragraph, `Some(n)` for a level-n heading.
    level: Option<u8>,
    bullet: bool,
}

#[derive(Default)]
struct Body {
    blocks: Vec<Block>,
    paragraphs: Vec<Paragraph>,
    rows: Vec<(Vec<String>, Option<String>)>,
    headings: Vec<(u8, String)>,
    pending: Option<(u8, Vec<String>)>,
    title_style: Option<String>,
    first_h1: Option<String>,
    /// A list item started and its first paragraph has not been seen yet.
    item_open: bool,
    in_body: bool,
    /// Depth inside content that is not shown (notes, comments, deletions, indexes).
    skip: usize,
}

fn skipped(name: &[u8]) -> bool {
    matches!(name, b"note" | b"annotation" | b"tracked-changes" | b"table-of-content" | b"bibliography")
        || name.ends_with(b"-index")
}

impl Body {
    fn read(&mut self, xml: &str) -> Result<(), String> {
        let mut reader = Reader::from_str(xml);
        loop {
            match reader.read_event().map_err(|e| e.to_string())? {
                Event::Start(e) => self.start(&e, false),
                Event::Empty(e) => self.start(&e, true),
                Event::End(e) => self.end(e.local_name().as_ref()),
                Event::Text(t) if self.skip == 0 => {
                    let text = t.decode().map_err(|e| e.to_string())?;
                    // Spaces that matter are written as text:s; XML line breaks are not text.
                    let mut collapsed = String::new();
                    for c in text.chars() {
                        if c.is_whitespace() {
                            if !collapsed.ends_with(' ') {
                                collapsed.push(' ');
                            }
                        } else {
                            collapsed.push(c);
                        }
                    }
                    self.push(&collapsed);
                }
                Event::GeneralRef(r) if self.skip == 0 => self.push(&entity(&r)),
                Event::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    fn start(&mut self, e: &BytesStart<'_>, empty: bool) {
        let local = e.local_name();
        let name = local.as_ref();
        if name == b"text" && !empty {
            self.in_body = true;
        }
        if skipped(name) {
            if !empty {
                self.skip += 1;
            }
            return;
        }
        if self.skip > 0 || !self.in_body {
            return;
        }
        match name {
            b"p" | b"h" if !empty => {
                let level = if name == b"h" {
                    Some(attr(e, b"outline-level").and_then(|l| l.parse::<u8>().ok()).unwrap_or(1).clamp(1, 10))
                } else if attr(e, b"style-name").is_some_and(|s| s == "Title") {
                    Some(0)
                } else {
                    None
                };
                let bullet = std::mem::take(&mut self.item_open) && self.open_cell().is_none();
                self.paragraphs.push(Paragraph { level, bullet, ..Default::default() });
            }
            b"list-item" if !empty => self.item_open = true,
            b"s" => {
                let n = attr(e, b"c").and_then(|c| c.parse::<usize>().ok()).unwrap_or(1).min(100);
                self.push(&" ".repeat(n));
            }
            b"tab" => self.push("\t"),
            b"line-break" => self.push("\n"),
            b"table-row" if !empty => self.rows.push((Vec::new(), None)),
            b"table-cell" if !empty => {
                if let Some((cells, cell)) = self.rows.last_mut() {
                    if let Some(c) = cell.take() {
                        cells.push(c);
                    }
                    *cell = Some(String::new());
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &[u8]) {
        if name == b"text" {
            self.in_body = false;
        }
        if skipped(name) {
            self.skip = self.skip.saturating_sub(1);
            return;
        }
        if self.skip > 0 {
            return;
        }
        match name {
            b"p" | b"h" => {
                if let Some(p) = self.paragraphs.pop() {
                    self.finish_paragraph(p);
                }
            }
            b"list-item" => self.item_open = false,
            b"table-cell" => {
                if let Some((cells, cell)) = self.rows.last_mut()
                    && let Some(c) = cell.take()
                {
                    cells.push(c);
                }
            }
            b"table-row" => {
                if let Some((mut cells, cell)) = self.rows.pop() {
                    cells.extend(cell);
                    let cells: Vec<String> = cells.iter().map(|c| collapse(c)).filter(|c| !c.is_empty()).collect();
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
        self.rows.last_mut().and_then(|(_, c)| c.as_mut())
    }

    fn push(&mut self, text: &str) {
        if let Some(p) = self.paragraphs.last_mut() {
            p.text.push_str(text);
        }
    }

    fn finish_paragraph(&mut self, p: Paragraph) {
        let text = tidy_lines(&p.text.lines().map(str::trim).collect::<Vec<_>>().join("\n"));
        if text.is_empty() {
            return;
        }
        if let Some(outer) = self.paragraphs.last_mut() {
            // A text box anchored in a paragraph: its text belongs to that paragraph.
            outer.text.push(' ');
            outer.text.push_str(&text);
            return;
        }
        if let Some(cell) = self.open_cell() {
            if !cell.is_empty() {
                cell.push(' ');
            }
            cell.push_str(&text);
            return;
        }
        match p.level {
            Some(level) => {
                let text = collapse(&text);
                if level == 0 && self.title_style.is_none() {
                    self.title_style = Some(text.clone());
                }
                if level == 1 && self.first_h1.is_none() {
                    self.first_h1 = Some(text.clone());
                }
                self.heading(level, text);
            }
            None if p.bullet => self.emit(format!("- {text}")),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::package::tests::zip;

    /// An ODT with the given `office:text` body and optional `dc:title`.
    pub(crate) fn odt(body: &str, title: Option<&str>) -> Vec<u8> {
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"><office:automatic-styles/><office:body><office:text>{body}</office:text></office:body></office:document-content>"#
        );
        let meta = title.map(|t| {
            format!(
                r#"<?xml version="1.0"?><office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><office:meta><dc:title>{t}</dc:title></office:meta></office:document-meta>"#
            )
        });
        let mut parts: Vec<(&str, &[u8])> =
            vec![("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", content.as_bytes())];
        if let Some(meta) = &meta {
            parts.push(("meta.xml", meta.as_bytes()));
        }
        zip(&parts)
    }

    fn check(bytes: &[u8], title: Option<&str>, expected: &[(&str, &[&str])]) {
        crate::assert_blocks(&parse(bytes).unwrap(), title, expected);
    }

    #[test]
    fn outline_levels_build_the_path_lists_and_tables() {
        let body = r#"<text:sequence-decls><text:sequence-decl text:name="Table"/></text:sequence-decls>
            <text:table-of-content><text:index-body><text:p>Report ..... 1</text:p></text:index-body></text:table-of-content>
            <text:h text:outline-level="1">Annual <text:span>Report</text:span></text:h>
            <text:p>Intro &amp; summary<text:note><text:note-citation>1</text:note-citation><text:note-body><text:p>footnote</text:p></text:note-body></text:note>.</text:p>
            <text:h text:outline-level="2">Sales</text:h>
            <text:list><text:list-item><text:p>North<text:s text:c="2"/>up</text:p></text:list-item><text:list-item><text:p>South</text:p></text:list-item></text:list>
            <table:table><table:table-row><table:table-cell><text:p>Region</text:p></table:table-cell><table:table-cell><text:p>Q1</text:p></table:table-cell></table:table-row>
            <table:table-row><table:table-cell><text:p>West</text:p></table:table-cell><table:covered-table-cell/><table:table-cell><text:p>1,200</text:p></table:table-cell></table:table-row></table:table>
            <text:h text:outline-level="2">Costs</text:h>
            <text:p>Rent<text:tab/>12<text:line-break/>Power<office:annotation><text:p>comment</text:p></office:annotation></text:p>
            <text:h text:outline-level="2">Appendix</text:h>"#;
        check(
            &odt(body, None),
            Some("Annual Report"),
            &[
                ("Intro & summary.", &["Annual Report"]),
                ("- North  up", &["Annual Report", "Sales"]),
                ("- South", &["Annual Report", "Sales"]),
                ("Region | Q1", &["Annual Report", "Sales"]),
                ("West | 1,200", &["Annual Report", "Sales"]),
                ("Rent\t12\nPower", &["Annual Report", "Costs"]),
                ("Appendix", &["Annual Report", "Appendix"]),
            ],
        );
    }

    #[test]
    fn meta_title_wins() {
        check(
            &odt(r#"<text:p text:style-name="Title">Styled</text:p><text:p>Body.</text:p>"#, Some("Meta &amp; Title")),
            Some("Meta & Title"),
            &[("Body.", &["Styled"])],
        );
    }

    #[test]
    fn broken_locked_and_empty_documents_are_errors() {
        let good = odt("<text:p>hello world</text:p>", None);
        let err = parse(&good[..good.len() / 2]).unwrap_err();
        assert!(err.to_string().starts_with("corrupt ODT: "), "{err}");
        let err = parse(&odt("<text:p>unclosed", None)).unwrap_err();
        assert!(err.to_string().starts_with("corrupt ODT: content.xml: "), "{err}");
        assert_eq!(parse(&zip(&[("mimetype", b"x")])).unwrap_err().to_string(), "corrupt ODT: missing content.xml");
        assert_eq!(parse(&odt("<text:p> </text:p>", None)).unwrap_err().code(), "empty");
        let locked = zip(&[
            ("META-INF/manifest.xml", b"<manifest:manifest><manifest:file-entry><manifest:encryption-data/></manifest:file-entry></manifest:manifest>"),
            ("content.xml", b"\x8f\x12"),
        ]);
        assert_eq!(parse(&locked).unwrap_err().to_string(), "encrypted ODT (password required)");
    }
}
