//! HTML: visible text as blocks (paragraphs, list items, table rows as `cell | cell`, preformatted
//! text, quotes, definition terms, captions), under the heading path built from `h1`-`h6`. The
//! title is `<title>`, else the first `h1`.
//!
//! Deliberately not a browser: no CSS, no scripts, no layout. Script, style, template, SVG,
//! `<head>` and `hidden` content are skipped. Blocks have no line anchors (HTML line numbers mean
//! little to a reader).

use crate::ParseError;
use crate::decode::decode;
use cairn_core::{Anchor, Block, Document};
use encoding_rs::Encoding;
use scraper::{Html, Node, Selector};

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    let decoded = decode(bytes, meta_charset(bytes))?;
    let html = Html::parse_document(&decoded.text);
    let mut walker = Walker::new(false);
    walker.walk(&html);
    let title = title_of(&html).or(walker.first_h1.take());
    let doc = Document { title, blocks: walker.finish(), warnings: decoded.warning.into_iter().collect() };
    if doc.is_empty() {
        return Err(ParseError::NoText { format: "HTML" });
    }
    Ok(doc)
}

/// The visible text of an HTML fragment (e.g. a raw HTML block inside Markdown), one block per
/// line. Headings are kept as plain lines.
pub(crate) fn fragment_text(fragment: &str) -> String {
    let html = Html::parse_fragment(fragment);
    let mut walker = Walker::new(true);
    walker.walk(&html);
    walker.finish().into_iter().map(|b| b.text).collect::<Vec<_>>().join("\n")
}

/// The encoding a page declares in its first kilobyte (`<meta charset=...>` or
/// `content="text/html; charset=..."`).
fn meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = bytes.get(..bytes.len().min(1024)).unwrap_or_default().to_ascii_lowercase();
    let at = head.windows(8).position(|w| w == b"charset=")?;
    let rest = head.get(at + 8..)?;
    let rest = rest.strip_prefix(b"\"").or_else(|| rest.strip_prefix(b"'")).unwrap_or(rest);
    let end = rest.iter().position(|c| !(c.is_ascii_alphanumeric() || b"-_:.".contains(c))).unwrap_or(rest.len());
    Encoding::for_label(rest.get(..end)?)
}

fn title_of(html: &Html) -> Option<String> {
    let selector = Selector::parse("title").ok()?;
    html.select(&selector)
        .filter(|t| !t.ancestors().any(|a| a.value().as_element().is_some_and(|e| e.name() == "svg")))
        .map(|t| collapse(&t.text().collect::<String>()))
        .find(|t| !t.is_empty())
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "math", "head", "iframe", "object", "embed", "canvas", "select",
    "button", "textarea", "title",
];

const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hgroup",
    "hr",
    "html",
    "legend",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "ul",
];

struct Row {
    cells: Vec<String>,
    cell: Option<String>,
}

struct PendingHeading {
    level: u8,
    path: Vec<String>,
}

struct Walker {
    /// Headings are plain blocks (for fragments inside another document).
    flat: bool,
    blocks: Vec<Block>,
    buf: String,
    pre_depth: usize,
    heading: Option<(u8, String)>,
    headings: Vec<(u8, String)>,
    pending: Option<PendingHeading>,
    rows: Vec<Row>,
    first_h1: Option<String>,
}

impl Walker {
    fn new(flat: bool) -> Self {
        Walker {
            flat,
            blocks: Vec::new(),
            buf: String::new(),
            pre_depth: 0,
            heading: None,
            headings: Vec::new(),
            pending: None,
            rows: Vec::new(),
            first_h1: None,
        }
    }

    /// Depth-first walk without recursion (pages can nest thousands of elements deep).
    fn walk(&mut self, html: &Html) {
        let root = html.tree.root();
        let mut node = root;
        loop {
            let entered = self.open(node.value());
            if entered {
                if let Some(child) = node.first_child() {
                    node = child;
                    continue;
                }
                self.close(node.value());
            }
            loop {
                if node == root {
                    return;
                }
                if let Some(sibling) = node.next_sibling() {
                    node = sibling;
                    break;
                }
                match node.parent() {
                    Some(parent) => {
                        node = parent;
                        self.close(node.value());
                    }
                    None => return,
                }
            }
        }
    }

    /// Handles an opening node; returns whether to walk into its children.
    fn open(&mut self, node: &Node) -> bool {
        match node {
            Node::Text(text) => {
                self.push_text(text);
                false
            }
            Node::Element(el) => {
                let name = el.name();
                if SKIPPED.contains(&name)
                    || el.attr("hidden").is_some()
                    || el.attr("aria-hidden").is_some_and(|v| v.eq_ignore_ascii_case("true"))
                {
                    return false;
                }
                match name {
                    "br" => self.push_break(),
                    "pre" => {
                        self.block_boundary();
                        self.pre_depth += 1;
                    }
                    "tr" => {
                        self.block_boundary();
                        self.rows.push(Row { cells: Vec::new(), cell: None });
                    }
                    "td" | "th" => {
                        if let Some(row) = self.rows.last_mut() {
                            if let Some(cell) = row.cell.take() {
                                row.cells.push(collapse(&cell));
                            }
                            row.cell = Some(String::new());
                        }
                    }
                    "li" => {
                        self.block_boundary();
                        if self.in_cell().is_none() && self.heading.is_none() {
                            self.buf.push_str("- ");
                        }
                    }
                    _ => {
                        if let Some(level) = heading_level(name)
                            && !self.flat
                            && self.in_cell().is_none()
                        {
                            self.flush();
                            self.heading = Some((level, String::new()));
                        } else if BLOCKS.contains(&name) || heading_level(name).is_some() {
                            self.block_boundary();
                        }
                    }
                }
                true
            }
            Node::Document | Node::Fragment => true,
            _ => false,
        }
    }

    fn close(&mut self, node: &Node) {
        let Node::Element(el) = node else { return };
        let name = el.name();
        match name {
            "pre" => {
                self.block_boundary();
                self.pre_depth = self.pre_depth.saturating_sub(1);
            }
            "td" | "th" => {
                if let Some(row) = self.rows.last_mut()
                    && let Some(cell) = row.cell.take()
                {
                    row.cells.push(collapse(&cell));
                }
            }
            "tr" => {
                if let Some(mut row) = self.rows.pop() {
                    if let Some(cell) = row.cell.take() {
                        row.cells.push(collapse(&cell));
                    }
                    row.cells.retain(|c| !c.is_empty());
                    let line = row.cells.join(" | ");
                    if let Some(outer) = self.in_cell() {
                        // A table inside a table cell: its rows become text of the outer cell.
                        outer.push(' ');
                        outer.push_str(&line);
                    } else {
                        self.flush();
                        self.buf = line;
                        self.flush();
                    }
                }
            }
            _ => {
                if heading_level(name).is_some() && self.heading.is_some() {
                    self.finish_heading();
                } else if BLOCKS.contains(&name) || heading_level(name).is_some() {
                    self.block_boundary();
                }
            }
        }
    }

    fn in_cell(&mut self) -> Option<&mut String> {
        self.rows.last_mut().and_then(|r| r.cell.as_mut())
    }

    fn push_text(&mut self, text: &str) {
        let pre = self.pre_depth > 0;
        let target = if let Some((_, heading)) = self.heading.as_mut() {
            heading
        } else if let Some(cell) = self.rows.last_mut().and_then(|r| r.cell.as_mut()) {
            cell
        } else {
            &mut self.buf
        };
        if pre {
            target.push_str(text);
            return;
        }
        for c in text.chars() {
            if c.is_whitespace() {
                if !target.is_empty() && !target.ends_with([' ', '\n']) {
                    target.push(' ');
                }
            } else {
                target.push(c);
            }
        }
    }

    fn push_break(&mut self) {
        if let Some((_, heading)) = self.heading.as_mut() {
            heading.push(' ');
        } else if let Some(cell) = self.in_cell() {
            cell.push(' ');
        } else {
            while self.buf.ends_with(' ') {
                self.buf.pop();
            }
            self.buf.push('\n');
        }
    }

    /// A block element starts or ends: inside a table cell or heading that is only a space,
    /// elsewhere the text so far becomes a block.
    fn block_boundary(&mut self) {
        if let Some((_, heading)) = self.heading.as_mut() {
            heading.push(' ');
        } else if let Some(cell) = self.in_cell() {
            cell.push(' ');
        } else {
            self.flush();
        }
    }

    fn path(&self) -> Vec<String> {
        self.headings.iter().map(|(_, h)| h.clone()).collect()
    }

    fn flush(&mut self) {
        let text = std::mem::take(&mut self.buf);
        let text: Vec<&str> = text.lines().map(str::trim_end).collect();
        let text = text.join("\n");
        let text = text.trim_matches('\n');
        if text.trim().is_empty() || text.trim() == "-" {
            return;
        }
        self.pending = None;
        let text = if self.pre_depth > 0 { text.to_owned() } else { text.trim().to_owned() };
        self.blocks.push(Block { text, anchor: Anchor { heading: self.path(), ..Default::default() } });
    }

    fn emit_pending(&mut self) {
        if let Some(p) = self.pending.take()
            && let Some(text) = p.path.last().cloned()
        {
            self.blocks.push(Block { text, anchor: Anchor { heading: p.path, ..Default::default() } });
        }
    }

    fn finish_heading(&mut self) {
        let Some((level, text)) = self.heading.take() else { return };
        let text = collapse(&text);
        if text.is_empty() {
            return;
        }
        if level == 1 && self.first_h1.is_none() {
            self.first_h1 = Some(text.clone());
        }
        if self.pending.as_ref().is_some_and(|p| level <= p.level) {
            self.emit_pending();
        }
        while self.headings.last().is_some_and(|(l, _)| *l >= level) {
            self.headings.pop();
        }
        self.headings.push((level, text));
        self.pending = Some(PendingHeading { level, path: self.path() });
    }

    fn finish(mut self) -> Vec<Block> {
        self.heading = None;
        self.rows.clear();
        self.flush();
        self.emit_pending();
        self.blocks
    }
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expected block: text and heading path.
    fn check(input: &[u8], title: Option<&str>, expected: &[(&str, &[&str])]) {
        crate::assert_blocks(&parse(input).unwrap(), title, expected);
    }

    #[test]
    fn skips_scripts_and_pairs_table_cells() {
        check(
            br#"<!doctype html><html><head><title>Quarterly  report</title><style>p{color:red}</style>
            <script>var secret = "do not index";</script></head><body>
            <h1>Results</h1><p>Sales <b>grew</b>
               this quarter.</p>
            <script>console.log("hidden")</script><noscript>enable js</noscript>
            <table><tr><th>Region</th><th>Sales</th></tr>
                   <tr><td>North</td><td>82,959</td></tr></table>
            <h2>Notes</h2><ul><li>one</li><li>two<br>lines</li></ul>
            <pre>fn main() {
    x();
}</pre></body></html>"#,
            Some("Quarterly report"),
            &[
                ("Sales grew this quarter.", &["Results"]),
                ("Region | Sales", &["Results"]),
                ("North | 82,959", &["Results"]),
                ("- one", &["Results", "Notes"]),
                ("- two\nlines", &["Results", "Notes"]),
                ("fn main() {\n    x();\n}", &["Results", "Notes"]),
            ],
        );
    }

    #[test]
    fn title_falls_back_to_first_h1_and_empty_sections_survive() {
        check(
            b"<svg><title>icon</title></svg><h1>Manual</h1><h2>Empty</h2><h2>Setup</h2><div>Plug it in.</div><h2>Last</h2>",
            Some("Manual"),
            &[("Empty", &["Manual", "Empty"]), ("Plug it in.", &["Manual", "Setup"]), ("Last", &["Manual", "Last"])],
        );
    }

    #[test]
    fn meta_charset_is_respected() {
        check(
            b"<html><head><meta charset=\"windows-1252\"></head><body><p>caf\xE9</p></body></html>",
            None,
            &[("café", &[])],
        );
    }

    #[test]
    fn markup_without_text_is_an_error() {
        assert_eq!(parse(b"<html><script>x()</script></html>").unwrap_err().code(), "empty");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let html = format!("{}deep{}", "<div>".repeat(5_000), "</div>".repeat(5_000));
        let doc = parse(html.as_bytes()).unwrap();
        assert_eq!(doc.blocks[0].text, "deep");
    }
}
