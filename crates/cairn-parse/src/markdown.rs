//! Markdown (CommonMark plus tables, task lists, footnotes and YAML front matter): paragraphs,
//! list items, code blocks, table rows and quotes become blocks anchored to their original lines
//! and to the heading path above them. The title is the first H1, else a front matter `title:`.
//!
//! Deliberately not a renderer: emphasis, links and images are reduced to their text, raw HTML
//! blocks are reduced to their visible text, and headings are not blocks of their own (they live
//! in the heading path) unless nothing follows them.

use crate::ParseError;
use crate::decode::decode;
use crate::html;
use cairn_core::{Anchor, Block, Document};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::ops::Range;

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    let decoded = decode(bytes, None)?;
    let mut doc = parse_str(&decoded.text);
    doc.warnings.extend(decoded.warning);
    if doc.is_empty() {
        return Err(ParseError::NoText { format: "Markdown" });
    }
    Ok(doc)
}

pub(crate) fn parse_str(text: &str) -> Document {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut b = Builder::new(text);
    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        b.event(event, range);
    }
    b.finish()
}

/// Byte offset to 1-based line number.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> u32 {
        u32::try_from(self.starts.partition_point(|&s| s <= offset)).unwrap_or(u32::MAX).max(1)
    }

    /// Inclusive 1-based line range of a byte range.
    fn lines(&self, range: &Range<usize>) -> (u32, u32) {
        let start = self.line(range.start);
        let end = self.line(range.end.saturating_sub(1).max(range.start));
        (start, end.max(start))
    }
}

struct PendingHeading {
    level: u8,
    path: Vec<String>,
    lines: (u32, u32),
}

struct Builder {
    lines: LineIndex,
    title: Option<String>,
    front_matter_title: Option<String>,
    headings: Vec<(u8, String)>,
    pending: Option<PendingHeading>,
    blocks: Vec<Block>,
    buf: String,
    range: Option<Range<usize>>,
    /// A list marker (`- `, `2. `) to put before the next text of the current item.
    prefix: Option<String>,
    /// Ordered-list counters (`None` for bullet lists), innermost last.
    lists: Vec<Option<u64>>,
    heading: Option<(u8, String, Range<usize>)>,
    row: Option<Vec<String>>,
    cell: Option<String>,
    metadata: Option<String>,
    html: Option<String>,
}

impl Builder {
    fn new(text: &str) -> Self {
        Builder {
            lines: LineIndex::new(text),
            title: None,
            front_matter_title: None,
            headings: Vec::new(),
            pending: None,
            blocks: Vec::new(),
            buf: String::new(),
            range: None,
            prefix: None,
            lists: Vec::new(),
            heading: None,
            row: None,
            cell: None,
            metadata: None,
            html: None,
        }
    }

    fn event(&mut self, event: Event<'_>, range: Range<usize>) {
        match event {
            Event::Start(tag) => self.start(tag, range),
            Event::End(tag) => self.end(tag),
            Event::Text(s) | Event::Code(s) | Event::InlineMath(s) | Event::DisplayMath(s) => self.text(&s, range),
            Event::Html(s) => {
                if let Some(html) = self.html.as_mut() {
                    html.push_str(&s);
                }
                self.extend(range);
            }
            Event::InlineHtml(_) => {}
            Event::FootnoteReference(label) => self.text(&format!("[^{label}]"), range),
            Event::SoftBreak | Event::HardBreak => {
                if self.heading.is_some() || self.cell.is_some() {
                    self.text(" ", range);
                } else {
                    self.text("\n", range);
                }
            }
            Event::Rule => self.flush(),
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }, range),
        }
    }

    fn start(&mut self, tag: Tag<'_>, range: Range<usize>) {
        match tag {
            Tag::Heading { level, .. } => {
                self.flush();
                self.heading = Some((heading_level(level), String::new(), range));
            }
            Tag::Item => {
                self.flush();
                let depth = self.lists.len().saturating_sub(1);
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let marker = format!("{n}. ");
                        *n = n.saturating_add(1);
                        marker
                    }
                    _ => "- ".to_owned(),
                };
                self.prefix = Some(format!("{}{marker}", "  ".repeat(depth.min(8))));
            }
            Tag::List(start) => {
                self.flush();
                self.lists.push(start);
            }
            Tag::FootnoteDefinition(label) => {
                self.flush();
                self.prefix = Some(format!("[^{label}]: "));
            }
            Tag::TableHead | Tag::TableRow => {
                self.flush();
                self.row = Some(Vec::new());
            }
            Tag::TableCell => self.cell = Some(String::new()),
            Tag::MetadataBlock(_) => self.metadata = Some(String::new()),
            Tag::HtmlBlock => {
                self.flush();
                self.html = Some(String::new());
            }
            Tag::Paragraph
            | Tag::BlockQuote(_)
            | Tag::CodeBlock(_)
            | Tag::Table(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition => self.flush(),
            Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::Link { .. }
            | Tag::Image { .. } => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_) => self.finish_heading(),
            TagEnd::Item | TagEnd::FootnoteDefinition => {
                self.flush();
                self.prefix = None;
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
            }
            TagEnd::TableCell => {
                if let (Some(cell), Some(row)) = (self.cell.take(), self.row.as_mut()) {
                    row.push(cell.trim().to_owned());
                }
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                if let Some(row) = self.row.take()
                    && row.iter().any(|c| !c.is_empty())
                {
                    self.buf = row.join(" | ");
                }
                self.flush();
            }
            TagEnd::MetadataBlock(_) => {
                if let Some(meta) = self.metadata.take() {
                    self.front_matter_title = front_matter_title(&meta);
                }
                self.range = None;
            }
            TagEnd::HtmlBlock => {
                if let Some(raw) = self.html.take() {
                    self.buf = html::fragment_text(&raw);
                }
                self.flush();
            }
            TagEnd::Paragraph
            | TagEnd::BlockQuote(_)
            | TagEnd::CodeBlock
            | TagEnd::Table
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition => self.flush(),
            TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Link
            | TagEnd::Image => {}
        }
    }

    fn text(&mut self, s: &str, range: Range<usize>) {
        if let Some(meta) = self.metadata.as_mut() {
            meta.push_str(s);
            return;
        }
        if let Some((_, heading, _)) = self.heading.as_mut() {
            heading.push_str(s);
            return;
        }
        if let Some(cell) = self.cell.as_mut() {
            cell.push_str(s);
            self.extend(range);
            return;
        }
        if self.buf.is_empty()
            && let Some(prefix) = self.prefix.take()
        {
            self.buf.push_str(&prefix);
        }
        self.buf.push_str(s);
        self.extend(range);
    }

    fn extend(&mut self, range: Range<usize>) {
        self.range = Some(match self.range.take() {
            Some(r) => r.start.min(range.start)..r.end.max(range.end),
            None => range,
        });
    }

    fn path(&self) -> Vec<String> {
        self.headings.iter().map(|(_, h)| h.clone()).collect()
    }

    /// Emits the collected text as a block (if it has any) and starts afresh.
    fn flush(&mut self) {
        let range = self.range.take();
        let text = std::mem::take(&mut self.buf);
        let text = text.trim_end().trim_start_matches('\n');
        if text.trim().is_empty() {
            return;
        }
        let (line_start, line_end) = match range {
            Some(r) => {
                let (a, b) = self.lines.lines(&r);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        self.pending = None;
        let heading = self.path();
        self.blocks.push(Block { text: text.to_owned(), anchor: Anchor { page: None, line_start, line_end, heading } });
    }

    fn emit_pending(&mut self) {
        if let Some(p) = self.pending.take()
            && let Some(text) = p.path.last().cloned()
        {
            let anchor = Anchor { page: None, line_start: Some(p.lines.0), line_end: Some(p.lines.1), heading: p.path };
            self.blocks.push(Block { text, anchor });
        }
    }

    fn finish_heading(&mut self) {
        let Some((level, text, range)) = self.heading.take() else { return };
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return;
        }
        // A heading with nothing under it (a sibling or a parent heading comes next) would
        // otherwise vanish: keep it as a block of its own.
        if self.pending.as_ref().is_some_and(|p| level <= p.level) {
            self.emit_pending();
        }
        while self.headings.last().is_some_and(|(l, _)| *l >= level) {
            self.headings.pop();
        }
        if level == 1 && self.title.is_none() {
            self.title = Some(text.clone());
        }
        self.headings.push((level, text));
        self.pending = Some(PendingHeading { level, path: self.path(), lines: self.lines.lines(&range) });
    }

    fn finish(mut self) -> Document {
        self.flush();
        self.emit_pending();
        Document { title: self.title.or(self.front_matter_title), blocks: self.blocks, warnings: Vec::new() }
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// `title: Something` (optionally quoted) from YAML front matter, without a YAML parser.
fn front_matter_title(meta: &str) -> Option<String> {
    meta.lines().find_map(|line| {
        let value = line.strip_prefix("title:")?.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value)
            .trim();
        (!value.is_empty()).then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expected block: text, heading path, first and last line.
    fn check(input: &str, title: Option<&str>, expected: &[(&str, &[&str], u32, u32)]) {
        let doc = parse(input.as_bytes()).unwrap();
        assert_eq!(doc.title.as_deref(), title);
        let got: Vec<(String, Vec<String>, u32, u32)> = doc
            .blocks
            .iter()
            .map(|b| {
                (b.text.clone(), b.anchor.heading.clone(), b.anchor.line_start.unwrap(), b.anchor.line_end.unwrap())
            })
            .collect();
        let want: Vec<(String, Vec<String>, u32, u32)> = expected
            .iter()
            .map(|(t, h, a, b)| (t.to_string(), h.iter().map(|s| s.to_string()).collect(), *a, *b))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn heading_path_and_line_ranges() {
        let input = "# Guide\n\nIntro text\nacross two lines.\n\n## Install\n\nRun *this*:\n\n```sh\ncargo build\ncargo test\n```\n\n### Linux\n\n- apt install\n- dnf install\n\n## Usage\n\nUse it.\n";
        check(
            input,
            Some("Guide"),
            &[
                ("Intro text\nacross two lines.", &["Guide"], 3, 4),
                ("Run this:", &["Guide", "Install"], 8, 8),
                ("cargo build\ncargo test", &["Guide", "Install"], 11, 12),
                ("- apt install", &["Guide", "Install", "Linux"], 17, 17),
                ("- dnf install", &["Guide", "Install", "Linux"], 18, 18),
                ("Use it.", &["Guide", "Usage"], 22, 22),
            ],
        );
    }

    #[test]
    fn tables_quotes_and_nested_lists() {
        let input = "| Name | Size |\n|------|------|\n| a.txt | 3 |\n| b.txt | 4 |\n\n> quoted\n> text\n\n1. first\n   - nested\n2. second\n";
        check(
            input,
            None,
            &[
                ("Name | Size", &[], 1, 1),
                ("a.txt | 3", &[], 3, 3),
                ("b.txt | 4", &[], 4, 4),
                ("quoted\ntext", &[], 6, 7),
                ("1. first", &[], 9, 9),
                ("  - nested", &[], 10, 10),
                ("2. second", &[], 11, 11),
            ],
        );
    }

    #[test]
    fn headings_with_nothing_under_them_do_not_vanish() {
        check(
            "# Title\n\n## Empty section\n\n## Full\n\nbody\n\n## Trailing\n",
            Some("Title"),
            &[
                ("Empty section", &["Title", "Empty section"], 3, 3),
                ("body", &["Title", "Full"], 7, 7),
                ("Trailing", &["Title", "Trailing"], 9, 9),
            ],
        );
        check("# Only a heading\n", Some("Only a heading"), &[("Only a heading", &["Only a heading"], 1, 1)]);
    }

    #[test]
    fn front_matter_gives_a_title_and_html_blocks_give_only_text() {
        check(
            "---\ntitle: \"Notes\"\ntags: [a]\n---\n\n<div align=\"center\">\n<script>alert(1)</script>\n<b>Visible</b>\n</div>\n\ntext\n",
            Some("Notes"),
            &[("Visible", &[], 6, 9), ("text", &[], 11, 11)],
        );
    }

    #[test]
    fn crlf_files_keep_their_line_numbers() {
        let doc = parse(b"# A\r\n\r\none\r\ntwo\r\n").unwrap();
        assert_eq!(doc.blocks[0].text, "one\ntwo");
        assert_eq!((doc.blocks[0].anchor.line_start, doc.blocks[0].anchor.line_end), (Some(3), Some(4)));
    }
}
