//! RTF: paragraphs as blocks under the heading path built from outline levels (`\outlinelevelN`
//! on the paragraph or its style) and `heading N` styles, table rows as `cell | cell`. Text is
//! decoded from `\'hh` escapes and 8-bit bytes with the document's code page (`\ansicpg`, else
//! windows-1252) or the current font's (`\fcharset`, `\cpg`), and from `\uN` with its `\ucN`
//! fallback characters skipped. The title is `\info`'s `\title`, else a `Title`-styled
//! paragraph, else the first level-1 heading.
//!
//! Deliberately a reader of text, not a renderer: font, colour and style tables, pictures,
//! embedded objects, field instructions, bookmarks, headers, footers, footnotes, annotations,
//! text boxes (shapes) and every `\*` destination are skipped; list numbers and bullets are not
//! rebuilt; there are no page anchors. A damaged file is read as far as it goes (a missing end is
//! a warning), and groups nested deeper than `MAX_DEPTH` are skipped, with a warning, so hostile
//! input cannot exhaust memory. The reader keeps its own stack: no recursion.

use crate::ParseError;
use crate::package::{collapse, tidy_lines};
use cairn_core::{Anchor, Block, Document};
use encoding_rs::{Encoding, WINDOWS_1252};
use std::collections::HashMap;

/// Deepest group nesting read; deeper groups are skipped. Word's own files stay far below this.
const MAX_DEPTH: usize = 512;

/// Deepest table nesting kept apart (`\itapN`); deeper tables join their enclosing cell.
const MAX_TABLE_DEPTH: usize = 16;

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = start.get(start.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0)..).unwrap_or_default();
    if !start.starts_with(b"{\\rtf") {
        return Err(ParseError::Corrupt("corrupt RTF: the file does not start with {\\rtf".into()));
    }
    let mut reader = Reader::new(start);
    let closed = reader.run();
    let truncated = !closed;
    reader.finish();
    let title = Some(collapse(&reader.title)).filter(|t| !t.is_empty());
    let mut body = reader.body;
    let title = title.or(body.title_style.take()).or(body.first_h1.take());
    let mut warnings = reader.warnings;
    let blocks = body.finish();
    let doc = Document { title, blocks, warnings: Vec::new() };
    if doc.is_empty() {
        if truncated {
            return Err(ParseError::Corrupt("corrupt RTF: the file ends before any text (truncated?)".into()));
        }
        return Err(ParseError::NoText { format: "RTF" });
    }
    if truncated {
        warnings.push("the RTF file ends before its last group is closed (truncated?): kept the text read".into());
    }
    Ok(Document { warnings, ..doc })
}

/// Where the text of a group goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dest {
    /// The document's text.
    Body,
    /// `\info`: only its `\title` is read.
    Info,
    Title,
    /// `\fonttbl`: font numbers and their character sets.
    Fonts,
    /// `\stylesheet`: style numbers, names and outline levels.
    Styles,
    /// `\*\nesttableprops`: no text, but it holds the `\nestrow` that ends a nested row.
    TableProps,
    Skip,
}

/// Paragraph properties: kept per group and reset by `\pard`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Props {
    /// `\sN`; 0 is the Normal style.
    style: i32,
    /// `\outlinelevelN` (0-based, as written).
    outline: Option<u8>,
    /// Table nesting level: 0 outside a table, 1 for `\intbl`, `N` for `\itapN`.
    table: usize,
}

#[derive(Clone, Debug)]
struct Group {
    dest: Dest,
    /// `\ucN`: how many fallback characters follow each `\uN`.
    uc: usize,
    /// `\fN`: the current font (its character set decodes 8-bit text).
    font: Option<i32>,
    props: Props,
}

#[derive(Default)]
struct StyleDef {
    id: i32,
    /// A paragraph style (`\sN` or none); character and section styles are not.
    paragraph: bool,
    outline: Option<u8>,
    name: String,
}

struct Style {
    name: String,
    outline: Option<u8>,
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Group>,
    /// Groups opened past `MAX_DEPTH`: their content is skipped.
    excess: usize,
    /// `\*` was just read: the next control word names a destination to skip.
    star: bool,
    codepage: &'static Encoding,
    deff: Option<i32>,
    fonts: HashMap<i32, &'static Encoding>,
    /// The font being defined in `\fonttbl`.
    font_def: Option<i32>,
    styles: HashMap<i32, Style>,
    style_def: Option<StyleDef>,
    /// 8-bit text not decoded yet (a multi-byte character may span several `\'hh`), the
    /// encoding it is in and where it goes.
    pending: Vec<u8>,
    pending_encoding: &'static Encoding,
    pending_dest: Dest,
    /// Fallback characters of the last `\uN` still to skip.
    fallback: usize,
    high_surrogate: Option<u16>,
    /// Properties of the paragraph whose text was read last (for a last paragraph without `\par`).
    last_props: Props,
    title: String,
    body: Body,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Self {
        Reader {
            input,
            pos: 0,
            stack: Vec::new(),
            excess: 0,
            star: false,
            codepage: WINDOWS_1252,
            deff: None,
            fonts: HashMap::new(),
            font_def: None,
            styles: HashMap::new(),
            style_def: None,
            pending: Vec::new(),
            pending_encoding: WINDOWS_1252,
            pending_dest: Dest::Skip,
            fallback: 0,
            high_surrogate: None,
            last_props: Props::default(),
            title: String::new(),
            body: Body::default(),
            warnings: Vec::new(),
        }
    }

    /// Reads until the document's outermost group closes (returns `true`) or the input ends.
    fn run(&mut self) -> bool {
        while let Some(&b) = self.input.get(self.pos) {
            self.pos += 1;
            match b {
                b'{' => self.open(),
                b'}' => {
                    if self.close() {
                        return true;
                    }
                }
                b'\\' => self.control(),
                b'\r' | b'\n' => {}
                b'\t' => self.text("\t"),
                b if b < 0x20 || b == 0x7f => {}
                b => self.byte(b),
            }
        }
        false
    }

    fn dest(&self) -> Dest {
        if self.excess > 0 { Dest::Skip } else { self.stack.last().map_or(Dest::Skip, |g| g.dest) }
    }

    fn open(&mut self) {
        self.flush();
        self.star = false;
        self.fallback = 0;
        if self.stack.len() >= MAX_DEPTH || self.excess > 0 {
            if self.excess == 0 {
                self.warn(format!("groups nested deeper than {MAX_DEPTH} levels were skipped"));
            }
            self.excess += 1;
            return;
        }
        let group = self.stack.last().cloned().unwrap_or(Group {
            dest: Dest::Body,
            uc: 1,
            font: None,
            props: Props::default(),
        });
        self.stack.push(group);
    }

    /// Closes a group; returns whether it was the outermost one.
    fn close(&mut self) -> bool {
        self.flush();
        self.star = false;
        self.fallback = 0;
        self.high_surrogate = None;
        if self.excess > 0 {
            self.excess -= 1;
            return false;
        }
        let Some(group) = self.stack.pop() else { return true };
        match group.dest {
            Dest::Fonts if self.dest() != Dest::Fonts => self.font_def = None,
            Dest::Styles if self.dest() != Dest::Styles => self.style_def = None,
            _ => {}
        }
        if self.stack.is_empty() {
            self.end_paragraph(self.last_props);
            return true;
        }
        false
    }

    fn top(&mut self) -> Option<&mut Group> {
        if self.excess > 0 { None } else { self.stack.last_mut() }
    }

    fn warn(&mut self, warning: String) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// The encoding of 8-bit text in the current group.
    fn encoding(&self) -> &'static Encoding {
        self.stack
            .last()
            .and_then(|g| g.font)
            .or(self.deff)
            .and_then(|f| self.fonts.get(&f).copied())
            .unwrap_or(self.codepage)
    }

    /// One byte of 8-bit text (a literal character or a `\'hh` escape).
    fn byte(&mut self, b: u8) {
        self.star = false;
        if self.fallback > 0 {
            self.fallback -= 1;
            return;
        }
        let dest = self.dest();
        if !matches!(dest, Dest::Body | Dest::Title | Dest::Styles) {
            return;
        }
        let encoding = self.encoding();
        if !self.pending.is_empty() && (encoding != self.pending_encoding || dest != self.pending_dest) {
            self.flush();
        }
        self.pending_encoding = encoding;
        self.pending_dest = dest;
        self.pending.push(b);
    }

    /// Decodes the pending 8-bit text into its destination.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.pending);
        let (text, _) = self.pending_encoding.decode_without_bom_handling(&bytes);
        let text = text.into_owned();
        self.emit(self.pending_dest, &text);
    }

    /// Text produced by a control word (`\tab`, `\emdash`, `\uN`).
    fn text(&mut self, s: &str) {
        self.flush();
        self.emit(self.dest(), s);
    }

    fn emit(&mut self, dest: Dest, s: &str) {
        match dest {
            Dest::Body => {
                self.body.para.push_str(s);
                if let Some(g) = self.stack.last() {
                    self.last_props = g.props;
                }
            }
            Dest::Title => self.title.push_str(&s.replace(['\t', '\n'], " ")),
            Dest::Styles => {
                for c in s.chars() {
                    if c == ';' {
                        self.commit_style();
                    } else {
                        self.style_def.get_or_insert_with(new_style).name.push(c);
                    }
                }
            }
            _ => {}
        }
    }

    fn commit_style(&mut self) {
        if let Some(def) = self.style_def.take()
            && def.paragraph
        {
            let name = def.name.split(',').next().unwrap_or_default().trim().to_owned();
            self.styles.insert(def.id, Style { name, outline: def.outline });
        }
    }

    /// After a backslash: a control word, a control symbol or a `\'hh` escape.
    fn control(&mut self) {
        let input: &'a [u8] = self.input;
        let Some(&c) = input.get(self.pos) else { return };
        if !c.is_ascii_alphabetic() {
            self.pos += 1;
            self.symbol(c);
            return;
        }
        let start = self.pos;
        while self.input.get(self.pos).is_some_and(u8::is_ascii_alphabetic) {
            self.pos += 1;
        }
        let word = input.get(start..self.pos.min(start + 32)).unwrap_or_default();
        let word = std::str::from_utf8(word).unwrap_or_default();
        let negative =
            self.input.get(self.pos) == Some(&b'-') && self.input.get(self.pos + 1).is_some_and(u8::is_ascii_digit);
        if negative {
            self.pos += 1;
        }
        let digits = self.pos;
        let mut value: i64 = 0;
        while let Some(d) = self.input.get(self.pos).filter(|d| d.is_ascii_digit()) {
            value = (value * 10 + i64::from(d - b'0')).min(i64::from(i32::MAX));
            self.pos += 1;
        }
        let param = (self.pos > digits).then(|| {
            let v = if negative { -value } else { value };
            i32::try_from(v).unwrap_or(if negative { i32::MIN } else { i32::MAX })
        });
        if self.input.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
        self.word(word, param);
    }

    fn symbol(&mut self, c: u8) {
        match c {
            b'\'' => {
                let hex = self.input.get(self.pos..self.pos + 2).and_then(|h| std::str::from_utf8(h).ok());
                if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    self.pos += 2;
                    self.byte(b);
                }
            }
            b'\\' | b'{' | b'}' => self.byte(c),
            b'*' => {
                self.flush();
                self.star = true;
            }
            _ => {
                self.flush();
                self.star = false;
                if self.fallback > 0 {
                    self.fallback -= 1;
                    return;
                }
                match c {
                    b'~' => self.text("\u{a0}"),
                    b'_' => self.text("-"),
                    b'\n' | b'\r' => self.paragraph_break(),
                    b'\t' => self.text("\t"),
                    // `\-` optional hyphen, `\:` index subentry, `\|` formula: no text.
                    _ => {}
                }
            }
        }
    }

    fn set_dest(&mut self, dest: Dest) {
        if let Some(g) = self.top()
            && g.dest != Dest::Skip
        {
            g.dest = dest;
        }
    }

    fn word(&mut self, word: &str, param: Option<i32>) {
        self.flush();
        if word == "bin" {
            // Raw binary data follows: skipped whatever the destination.
            let n = usize::try_from(param.unwrap_or(0)).unwrap_or(0);
            self.pos = self.pos.saturating_add(n).min(self.input.len());
            return;
        }
        if self.excess > 0 {
            return;
        }
        if std::mem::take(&mut self.star) {
            self.set_dest(if word == "nesttableprops" { Dest::TableProps } else { Dest::Skip });
            return;
        }
        if word == "u" {
            if let Some(n) = param {
                self.unicode(n);
            }
            return;
        }
        self.fallback = 0;
        let dest = self.dest();
        let n = param.unwrap_or(0);
        match word {
            "ansi" => self.codepage = WINDOWS_1252,
            "mac" => self.codepage = encoding_rs::MACINTOSH,
            "pc" | "pca" => self.set_codepage(if word == "pc" { 437 } else { 850 }),
            "ansicpg" => self.set_codepage(n),
            "deff" => self.deff = param,
            "uc" => {
                if let Some(g) = self.top() {
                    g.uc = usize::try_from(n).unwrap_or(0).min(16);
                }
            }
            "fonttbl" => self.set_dest(Dest::Fonts),
            "stylesheet" => self.set_dest(Dest::Styles),
            "info" => self.set_dest(Dest::Info),
            "title" if dest == Dest::Info => self.set_dest(Dest::Title),
            w if SKIPPED.contains(&w) => self.set_dest(Dest::Skip),
            "f" => match dest {
                Dest::Fonts => self.font_def = param,
                Dest::Styles => {}
                _ => {
                    if let Some(g) = self.top() {
                        g.font = param;
                    }
                }
            },
            "plain" => {
                if let Some(g) = self.top() {
                    g.font = None;
                }
            }
            "fcharset" | "cpg" if dest == Dest::Fonts => {
                let encoding = if word == "cpg" { codepage(n) } else { charset(n) };
                if let (Some(font), Some(encoding)) = (self.font_def, encoding) {
                    self.fonts.insert(font, encoding);
                }
            }
            "s" if dest == Dest::Styles => {
                let def = self.style_def.get_or_insert_with(new_style);
                def.id = n;
            }
            "cs" | "ds" | "ts" | "tsrowd" if dest == Dest::Styles => {
                self.style_def.get_or_insert_with(new_style).paragraph = false;
            }
            "outlinelevel" => {
                let level = u8::try_from(n).ok().filter(|l| *l < 9);
                if dest == Dest::Styles {
                    self.style_def.get_or_insert_with(new_style).outline = level;
                } else if let Some(g) = self.top() {
                    g.props.outline = level;
                }
            }
            "s" => self.props(|p| p.style = n),
            "pard" => self.props(|p| *p = Props::default()),
            "intbl" => self.props(|p| p.table = p.table.max(1)),
            "itap" => self.props(|p| p.table = usize::try_from(n).unwrap_or(0).min(MAX_TABLE_DEPTH)),
            "par" | "sect" | "page" | "column" => self.paragraph_break(),
            "line" | "softline" => self.text(if dest == Dest::Body { "\n" } else { " " }),
            "tab" => self.text("\t"),
            "cell" if dest == Dest::Body => self.body.end_cell(1),
            "nestcell" if dest == Dest::Body => {
                let level = self.current_props().table.max(2);
                self.body.end_cell(level);
            }
            "row" if dest == Dest::Body => self.body.end_row(1),
            "nestrow" if matches!(dest, Dest::Body | Dest::TableProps) => {
                let level = self.current_props().table.max(2);
                self.body.end_row(level);
            }
            "emdash" => self.text("\u{2014}"),
            "endash" => self.text("\u{2013}"),
            "bullet" => self.text("\u{2022}"),
            "lquote" => self.text("\u{2018}"),
            "rquote" => self.text("\u{2019}"),
            "ldblquote" => self.text("\u{201c}"),
            "rdblquote" => self.text("\u{201d}"),
            "emspace" | "enspace" | "qmspace" => self.text(" "),
            _ => {}
        }
    }

    fn props(&mut self, change: impl FnOnce(&mut Props)) {
        if let Some(g) = self.top() {
            change(&mut g.props);
        }
    }

    fn current_props(&self) -> Props {
        self.stack.last().map(|g| g.props).unwrap_or_default()
    }

    fn set_codepage(&mut self, n: i32) {
        match codepage(n) {
            Some(encoding) => self.codepage = encoding,
            None => {
                self.warn(format!("code page {n} is not supported: 8-bit characters were read as windows-1252"));
                self.codepage = WINDOWS_1252;
            }
        }
    }

    fn unicode(&mut self, n: i32) {
        let fallback = self.stack.last().map_or(1, |g| g.uc);
        let unit = if n < 0 { n.saturating_add(65536) } else { n };
        if let Ok(unit) = u32::try_from(unit) {
            match unit {
                0xD800..=0xDBFF => self.high_surrogate = u16::try_from(unit).ok(),
                0xDC00..=0xDFFF => {
                    if let Some(high) = self.high_surrogate.take() {
                        let c = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (unit - 0xDC00);
                        if let Some(c) = char::from_u32(c) {
                            self.text(c.encode_utf8(&mut [0; 4]));
                        }
                    }
                }
                _ => {
                    self.high_surrogate = None;
                    if let Some(c) = char::from_u32(unit).filter(|c| *c != '\0') {
                        self.text(c.encode_utf8(&mut [0; 4]));
                    }
                }
            }
        }
        self.fallback = fallback;
    }

    fn paragraph_break(&mut self) {
        match self.dest() {
            Dest::Body => self.end_paragraph(self.current_props()),
            Dest::Title => self.title.push(' '),
            _ => {}
        }
    }

    fn end_paragraph(&mut self, props: Props) {
        let heading = if props.table == 0 { self.heading_level(props) } else { None };
        self.body.end_paragraph(props.table, heading);
    }

    /// Heading level of a paragraph, from its style's name (`Title` is 0, `heading 2` is 2) or
    /// its outline level (its own, else its style's).
    fn heading_level(&self, props: Props) -> Option<u8> {
        let style = self.styles.get(&props.style);
        if let Some(style) = style {
            let lower = style.name.to_ascii_lowercase().replace([' ', '-', '_'], "");
            if lower == "title" {
                return Some(0);
            }
            if let Some(n) =
                lower.strip_prefix("heading").and_then(|n| n.parse::<u8>().ok()).filter(|n| (1..=9).contains(n))
            {
                return Some(n);
            }
        }
        props.outline.or(style.and_then(|s| s.outline)).map(|l| l + 1)
    }

    fn finish(&mut self) {
        self.flush();
        self.end_paragraph(self.last_props);
    }
}

fn new_style() -> StyleDef {
    StyleDef { paragraph: true, ..Default::default() }
}

/// Destinations whose content is not document text.
const SKIPPED: &[&str] = &[
    "annotation",
    "atnauthor",
    "atndate",
    "atnid",
    "atnref",
    "atrfend",
    "atrfstart",
    "bkmkend",
    "bkmkstart",
    "colortbl",
    "colorschememapping",
    "datafield",
    "datastore",
    "do",
    "fldinst",
    "footer",
    "footerf",
    "footerl",
    "footerr",
    "footnote",
    "generator",
    "header",
    "headerf",
    "headerl",
    "headerr",
    "latentstyles",
    "listoverridetable",
    "listtable",
    "listtext",
    "mmathPr",
    "nonesttables",
    "nonshppict",
    "object",
    "objdata",
    "pict",
    "pn",
    "pntext",
    "pntxta",
    "pntxtb",
    "private",
    "revtbl",
    "rsidtbl",
    "shp",
    "shpinst",
    "tc",
    "themedata",
    "txe",
    "xe",
    "xmlnstbl",
];

/// The encoding of a Windows code page number, `None` when encoding_rs has no such encoding.
fn codepage(n: i32) -> Option<&'static Encoding> {
    let label = match n {
        874 => "windows-874".to_owned(),
        1250..=1258 => format!("windows-{n}"),
        932 => "shift_jis".into(),
        936 => "gbk".into(),
        949 => "euc-kr".into(),
        950 => "big5".into(),
        866 => "ibm866".into(),
        10000 => "macintosh".into(),
        10007 => "x-mac-cyrillic".into(),
        20866 => "koi8-r".into(),
        21866 => "koi8-u".into(),
        20932 | 51932 => "euc-jp".into(),
        54936 => "gb18030".into(),
        65001 => "utf-8".into(),
        28591..=28606 => format!("iso-8859-{}", n - 28590),
        _ => return None,
    };
    Encoding::for_label(label.as_bytes())
}

/// The encoding of a font character set (`\fcharsetN`); `None` (default, symbol and unknown
/// sets) keeps the document's code page.
fn charset(n: i32) -> Option<&'static Encoding> {
    let page = match n {
        0 => 1252,
        77 => 10000,
        128 => 932,
        129 => 949,
        134 => 936,
        136 => 950,
        161 => 1253,
        162 => 1254,
        163 => 1258,
        177 => 1255,
        178 => 1256,
        186 => 1257,
        204 => 1251,
        222 => 874,
        238 => 1250,
        _ => return None,
    };
    codepage(page)
}

#[derive(Default)]
struct Row {
    cells: Vec<String>,
    cell: String,
}

impl Row {
    fn push_cell(&mut self) {
        let cell = collapse(&std::mem::take(&mut self.cell));
        self.cells.push(cell);
    }
}

#[derive(Default)]
struct Body {
    blocks: Vec<Block>,
    /// Text of the paragraph being read.
    para: String,
    /// Open table rows, outermost first (index = nesting level - 1).
    rows: Vec<Row>,
    headings: Vec<(u8, String)>,
    pending: Option<(u8, Vec<String>)>,
    title_style: Option<String>,
    first_h1: Option<String>,
}

impl Body {
    fn take_para(&mut self) -> String {
        tidy_lines(&std::mem::take(&mut self.para).replace('\u{a0}', " "))
    }

    /// Makes the rows open exactly `level` deep: deeper ones are closed into their cells.
    fn rows_at(&mut self, level: usize) -> Option<&mut Row> {
        let level = level.clamp(1, MAX_TABLE_DEPTH);
        while self.rows.len() > level {
            self.close_row();
        }
        while self.rows.len() < level {
            self.rows.push(Row::default());
        }
        self.rows.last_mut()
    }

    fn append_to_cell(&mut self, level: usize, text: &str) {
        if let Some(row) = self.rows_at(level)
            && !text.is_empty()
        {
            if !row.cell.is_empty() {
                row.cell.push(' ');
            }
            row.cell.push_str(text);
        }
    }

    fn end_paragraph(&mut self, table: usize, heading: Option<u8>) {
        let text = self.take_para();
        if table > 0 {
            if !text.is_empty() {
                self.append_to_cell(table, &text);
            }
            return;
        }
        if text.is_empty() {
            return;
        }
        // Text outside a table after rows left open (no `\row`): those rows are done.
        while !self.rows.is_empty() {
            self.close_row();
        }
        match heading {
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
            None => self.emit(text),
        }
    }

    fn end_cell(&mut self, level: usize) {
        let text = self.take_para();
        self.append_to_cell(level, &text);
        if let Some(row) = self.rows.last_mut() {
            row.push_cell();
        }
    }

    fn end_row(&mut self, level: usize) {
        let level = level.clamp(1, MAX_TABLE_DEPTH);
        if !self.para.trim().is_empty() {
            self.end_cell(level);
        }
        while self.rows.len() > level {
            self.close_row();
        }
        if self.rows.len() == level {
            self.close_row();
        }
    }

    /// Closes the innermost open row: a line of its own, or text of the enclosing cell.
    fn close_row(&mut self) {
        let Some(mut row) = self.rows.pop() else { return };
        if !row.cell.trim().is_empty() {
            row.push_cell();
        }
        let cells: Vec<String> = row.cells.into_iter().filter(|c| !c.is_empty()).collect();
        if cells.is_empty() {
            return;
        }
        let line = cells.join(" | ");
        match self.rows.last_mut() {
            Some(outer) => {
                if !outer.cell.is_empty() {
                    outer.cell.push(' ');
                }
                outer.cell.push_str(&line);
            }
            None => self.emit(line),
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

    fn finish(&mut self) -> Vec<Block> {
        while !self.rows.is_empty() {
            self.close_row();
        }
        self.emit_pending();
        std::mem::take(&mut self.blocks)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An RTF document the way Word writes one: font, colour and style tables, document
    /// information, then `body`.
    pub(crate) fn rtf(body: &str, title: Option<&str>) -> Vec<u8> {
        let info = title
            .map(|t| format!(r"{{\info{{\title {t}}}{{\author Ann Writer}}{{\creatim\yr2024\mo5\dy1}}}}"))
            .unwrap_or_default();
        format!(
            r"{{\rtf1\ansi\ansicpg1252\deff0{{\fonttbl{{\f0\froman\fcharset0 Times New Roman;}}{{\f1\fswiss\fcharset0{{\*\panose 020b0604020202020204}}Arial;}}}}{{\colortbl;\red255\green0\blue0;}}{{\stylesheet{{\ql\snext0 Normal;}}{{\s1\ql\outlinelevel0\b\fs32\sbasedon0\snext0 heading 1;}}{{\s2\ql\b\fs28\sbasedon0\snext0 heading 2,h2;}}{{\s3\qc\fs40 Title;}}{{\*\cs10\additive Default Paragraph Font;}}}}{info}{{\*\generator Riched20 10.0.19041}}\viewkind4\uc1{body}}}"
        )
        .into_bytes()
    }

    fn check(bytes: &[u8], title: Option<&str>, expected: &[(&str, &[&str])]) {
        crate::assert_blocks(&parse(bytes).unwrap(), title, expected);
    }

    #[test]
    fn paragraphs_headings_and_the_info_title() {
        let body = concat!(
            r"{\header\pard\plain Confidential header\par}{\footer\pard Page footer\par}",
            r"\pard\plain\s1\outlinelevel0 Annual Report\par",
            r"\pard\plain\f1 Sales {\b grew} this year.\par",
            r"{\*\bkmkstart secret_bookmark}{\*\bkmkend secret_bookmark}",
            r"\pard\s2 Costs\par",
            r"\pard Rent\tab 12\line Power {\field{\*\fldinst HYPERLINK http://example.com}{\fldrslt bill}}\par",
            r"{\pict\wmetafile8\picw100 0100090000035000000000}",
            r"{\object\objemb{\*\objclass Excel.Sheet.12}{\*\objdata 01050000}{\result Stale result}}",
            r"\pard\outlinelevel1 Appendix\par",
            r"\pard\plain\s1 Second Part\par",
            r"\pard Closing words without a final par",
        );
        let doc = parse(&rtf(body, Some("Report 2024"))).unwrap();
        crate::assert_blocks(
            &doc,
            Some("Report 2024"),
            &[
                ("Sales grew this year.", &["Annual Report"]),
                ("Rent\t12\nPower bill", &["Annual Report", "Costs"]),
                ("Appendix", &["Annual Report", "Appendix"]),
                ("Closing words without a final par", &["Second Part"]),
            ],
        );
        let all: String = doc.blocks.iter().map(|b| b.text.as_str()).collect();
        for leak in [
            "Times",
            "Arial",
            "panose",
            "Normal",
            "heading",
            "Riched",
            "Confidential",
            "footer",
            "secret",
            "0100",
            "Excel",
            "Stale",
            "Ann Writer",
            "2024",
        ] {
            assert!(!all.contains(leak), "{leak} leaked into {all:?}");
        }
        assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
    }

    #[test]
    fn title_style_then_first_heading_are_the_title() {
        check(&rtf(r"\pard\s3 The Plan\par\pard Body.\par", None), Some("The Plan"), &[("Body.", &["The Plan"])]);
        check(
            &rtf(r"\pard\s1 Manual\par\pard\s2 Empty\par\pard\s2 Setup\par\pard Plug it in.\par", None),
            Some("Manual"),
            &[("Empty", &["Manual", "Empty"]), ("Plug it in.", &["Manual", "Setup"])],
        );
        // No style table at all: outline levels alone make headings.
        check(br"{\rtf1{\pard\outlinelevel0 Intro\par}{\pard Text.\par}}", Some("Intro"), &[("Text.", &["Intro"])]);
    }

    #[test]
    fn code_pages_and_unicode_decode_to_the_right_text() {
        // No \ansicpg: windows-1252.
        check(
            br"{\rtf1 caf\'e9 \'93quoted\'94 \'80 5\par}",
            None,
            &[("caf\u{e9} \u{201c}quoted\u{201d} \u{20ac} 5", &[])],
        );
        // A Cyrillic document code page.
        check(br"{\rtf1\ansi\ansicpg1251 \'cf\'f0\'e8\'e2\'e5\'f2\par}", None, &[("Привет", &[])]);
        // A font's character set wins over the document's: Shift_JIS needs two bytes a character.
        check(
            br"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0\fcharset0 Arial;}{\f1\fnil\fcharset128 MS Mincho;}}\f0 caf\'e9 {\f1\'93\'fa\'96\'7b} \'e9\par}",
            None,
            &[("café 日本 é", &[])],
        );
        // \uN with its fallback skipped (\uc1 default), \uc0 without, \uc2 with two.
        check(
            br"{\rtf1 \u8364? and \u8364\'80 and {\uc0\u8364 x} and {\uc2\u8364\'80\'80y} end\par}",
            None,
            &[("€ and € and €x and €y end", &[])],
        );
        // Negative N is the UTF-16 unit + 65536; surrogate pairs make one character.
        check(br"{\rtf1 \u-1279?le \u-10179?\u-8704? smile\par}", None, &[("\u{fb01}le \u{1f600} smile", &[])]);
        // Escaped specials, named punctuation, non-breaking space and Cocoa's backslash-newline.
        check(
            b"{\\rtf1\\ansi\\ansicpg1252\\cocoartf2639 a\\{b\\}c\\\\d\\~e\\emdash f\\endash g\\bullet\\lquote h\\rquote\\\nSecond paragraph\\\n}",
            None,
            &[("a{b}c\\d e\u{2014}f\u{2013}g\u{2022}\u{2018}h\u{2019}", &[]), ("Second paragraph", &[])],
        );
    }

    #[test]
    fn tables_keep_cells_apart() {
        let body = concat!(
            r"\pard Before.\par",
            r"\trowd\trgaph108\cellx3000\cellx6000\pard\intbl Region\cell Q1\cell\row",
            r"\trowd\trgaph108\cellx3000\cellx6000\pard\intbl North\cell\pard\intbl 82,959\par second line\cell\row",
            r"\pard After.\par",
            // A nested table (Word 2000+): the inner row is text of the outer cell.
            r"\trowd\cellx3000\cellx6000\pard\intbl Outer\cell",
            r"\pard\intbl\itap2 in1\nestcell in2\nestcell{\*\nesttableprops\trowd\cellx1000\cellx2000\nestrow}{\nonesttables\par}",
            r"\pard\intbl\cell\row",
            // The last row of a table without \row.
            r"\trowd\cellx3000\pard\intbl Dangling\cell\pard Tail.\par",
        );
        check(
            &rtf(body, None),
            None,
            &[
                ("Before.", &[]),
                ("Region | Q1", &[]),
                ("North | 82,959 second line", &[]),
                ("After.", &[]),
                ("Outer | in1 | in2", &[]),
                ("Dangling", &[]),
                ("Tail.", &[]),
            ],
        );
    }

    #[test]
    fn damaged_files_keep_what_was_read_or_are_errors() {
        let good = rtf(r"\pard First paragraph.\par\pard Second paragraph is longer.\par", Some("T"));
        let cut = good.len() - 16;
        let doc = parse(&good[..cut]).unwrap();
        assert_eq!(doc.blocks[0].text, "First paragraph.");
        assert_eq!(doc.blocks[1].text, "Second paragraph");
        assert_eq!(
            doc.warnings,
            ["the RTF file ends before its last group is closed (truncated?): kept the text read"]
        );
        // Cut inside the font table: nothing to keep.
        let err = parse(&good[..60]).unwrap_err();
        assert_eq!(err.to_string(), "corrupt RTF: the file ends before any text (truncated?)");
        // Too many closing braces: the document ends at its own.
        check(br"{\rtf1 Text.\par}} trailing}", None, &[("Text.", &[])]);

        let err = parse(b"Just some text, not RTF").unwrap_err();
        assert_eq!(err.to_string(), "corrupt RTF: the file does not start with {\\rtf");
        assert_eq!(parse(b"PK\x03\x04 renamed docx").unwrap_err().code(), "corrupt");
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b" \n\t ").unwrap_err(), ParseError::Empty);
        assert_eq!(
            parse(br"{\rtf1{\fonttbl{\f0 Arial;}}{\pict 0a0b}}").unwrap_err(),
            ParseError::NoText { format: "RTF" }
        );
        // A BOM and leading blank lines are fine.
        check(b"\xEF\xBB\xBF\r\n{\\rtf1 ok\\par}", None, &[("ok", &[])]);
        // Odd escapes at the very end, huge and negative parameters, \bin skipping raw bytes.
        for input in [
            &br"{\rtf1 a\'"[..],
            br"{\rtf1 a\'4",
            br"{\rtf1 a\",
            br"{\rtf1 a\u",
            br"{\rtf1 a\u99999999999999999999 b\uc99999999999\u-99999999999 c\itap999999999999 d\cell\row}",
            br"{\rtf1 a\bin99999999999",
            b"{\\rtf1 a{\\bin5 }{}\\}b\\par}",
        ] {
            let _ = parse(input);
        }
        // Binary data may hold braces: they are not groups.
        check(br"{\rtf1 a{\*\blob\bin3 {{{}b\par}", None, &[("ab", &[])]);
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let deep = format!(r"{{\rtf1 start {}deep{} end\par}}", "{".repeat(200_000), "}".repeat(200_000));
        let doc = parse(deep.as_bytes()).unwrap();
        assert_eq!(doc.blocks[0].text, "start  end");
        assert_eq!(doc.warnings, [format!("groups nested deeper than {MAX_DEPTH} levels were skipped")]);
        let unclosed = format!(r"{{\rtf1 start{}", "{".repeat(200_000));
        let doc = parse(unclosed.as_bytes()).unwrap();
        assert_eq!(doc.blocks[0].text, "start");
        // Text inside a group below the limit is kept.
        let shallow = format!(r"{{\rtf1 {}inside{}\par}}", "{".repeat(100), "}".repeat(100));
        check(shallow.as_bytes(), None, &[("inside", &[])]);
    }
}
