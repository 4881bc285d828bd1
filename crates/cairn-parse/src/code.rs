//! Source code: the file is cut along its top-level definitions (functions, classes, structs,
//! impls, modules, ...), each with the comments, attributes and decorators right above it, and
//! anchored to its line range under a heading that is its signature line, so a citation says
//! which function a passage is from. Members of a container (the methods of a class or an
//! `impl`) get blocks of their own under `[container, member]`. Lines between definitions
//! (imports, constants, script code) are paragraphs without a heading, as in plain text.
//!
//! Deliberately a language-agnostic line heuristic, not a parser: a definition starts at a line
//! at the block's indentation that begins with a definition keyword (`fn`, `def`, `class`,
//! `func`, `function`, ...) after modifiers (`pub`, `export`, `async`, `public static`, ...) or
//! that looks like a C-family function header (`int main(void) {`). It ends before the next line
//! at that indentation that is not a closing bracket or `end`. Block text keeps one line per line
//! of the file, indentation included, so the chunker can anchor pieces of a long function to
//! exact lines.

use crate::ParseError;
use crate::decode::decode;
use crate::text::paragraphs;
use cairn_core::{Anchor, Block, Document};

/// Longest heading (signature) shown, in chars.
const MAX_SIGNATURE_CHARS: usize = 100;

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    let decoded = decode(bytes, None)?;
    let lines: Vec<&str> = decoded.text.split('\n').map(str::trim_end).collect();
    let mut blocks = Vec::new();
    split(&lines, 0, lines.len(), 0, &[], true, &mut blocks);
    // A lone `}` or `end` left between members says nothing.
    blocks.retain(|b| b.text.lines().map(str::trim).any(|l| !is_closer(l) && l.chars().any(char::is_alphanumeric)));
    if blocks.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(Document { title: None, blocks, warnings: decoded.warning.into_iter().collect() })
}

/// What a definition line starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Holds member definitions (class, impl, trait, module, ...).
    Container,
    /// Anything else (function, type alias, struct with fields, macro).
    Item,
}

/// Blocks for `lines[lo..hi]` (0-based), looking for definitions at indentation `indent`.
/// `nest` allows splitting containers into their members once.
fn split(lines: &[&str], lo: usize, hi: usize, indent: usize, path: &[String], nest: bool, out: &mut Vec<Block>) {
    let mut glue_from = lo;
    let mut i = lo;
    while i < hi {
        let line = lines.get(i).copied().unwrap_or_default();
        let kind = if width(line) == indent && !line.trim().is_empty() {
            definition(line.trim_start(), next_code_line(lines, i + 1, hi))
        } else {
            None
        };
        let Some(kind) = kind else {
            i += 1;
            continue;
        };
        let start = lead_start(lines, glue_from, i, indent);
        let end = definition_end(lines, i, hi, indent);
        glue(lines, glue_from, start, path, out);
        let mut inner_path = path.to_vec();
        inner_path.push(signature(lines, i));
        let members = if nest && kind == Kind::Container { member_indent(lines, i + 1, end, indent) } else { None };
        match members {
            Some(member) if has_definition(lines, i + 1, end, member) => {
                // The container's own lines (header, fields, closing bracket) under its name, its
                // members under their own signatures.
                let header_end = (i + 1).min(end);
                push_block(lines, start, header_end, &inner_path, out);
                split(lines, header_end, end, member, &inner_path, false, out);
            }
            _ => push_block(lines, start, end, &inner_path, out),
        }
        glue_from = end;
        i = end.max(i + 1);
    }
    glue(lines, glue_from, hi, path, out);
}

/// Lines outside any definition: paragraphs split on blank lines, under the enclosing path.
fn glue(lines: &[&str], lo: usize, hi: usize, path: &[String], out: &mut Vec<Block>) {
    let Some(slice) = lines.get(lo..hi) else { return };
    let offset = u32::try_from(lo).unwrap_or(u32::MAX);
    for mut b in paragraphs(&slice.join("\n")) {
        b.anchor.line_start = b.anchor.line_start.map(|l| l.saturating_add(offset));
        b.anchor.line_end = b.anchor.line_end.map(|l| l.saturating_add(offset));
        b.anchor.heading = path.to_vec();
        out.push(b);
    }
}

/// One block of `lines[lo..hi]` with trailing blank lines dropped.
fn push_block(lines: &[&str], lo: usize, hi: usize, path: &[String], out: &mut Vec<Block>) {
    let Some(slice) = lines.get(lo..hi) else { return };
    let first = slice.iter().position(|l| !l.trim().is_empty());
    let last = slice.iter().rposition(|l| !l.trim().is_empty());
    let (Some(first), Some(last)) = (first, last) else { return };
    let text = slice.get(first..=last).unwrap_or_default().join("\n");
    let number = |i: usize| u32::try_from(lo + i).unwrap_or(u32::MAX - 1).saturating_add(1);
    out.push(Block {
        text,
        anchor: Anchor {
            line_start: Some(number(first)),
            line_end: Some(number(last)),
            heading: path.to_vec(),
            ..Default::default()
        },
    });
}

/// Leading whitespace width, a tab counting as four columns.
fn width(line: &str) -> usize {
    line.chars().take_while(|c| c.is_whitespace()).map(|c| if c == '\t' { 4 } else { 1 }).sum()
}

fn next_code_line<'a>(lines: &[&'a str], from: usize, hi: usize) -> Option<&'a str> {
    lines.get(from..hi)?.iter().find(|l| !l.trim().is_empty()).copied()
}

/// First line of the definition at `def`: comments, attributes and decorators directly above it
/// (no blank line between) belong to it.
/// A C return type on the line above a `name(...)` header (`static int` / `count(...)`) belongs
/// to it too.
fn lead_start(lines: &[&str], floor: usize, def: usize, indent: usize) -> usize {
    let mut start = def;
    let bare_name = lines.get(def).is_some_and(|l| {
        let t = l.trim_start();
        t.find('(').is_some_and(|p| p > 0 && !t.get(..p).unwrap_or_default().contains(char::is_whitespace))
    });
    if bare_name
        && start > floor
        && let Some(prev) = lines.get(start - 1)
        && width(prev) == indent
        && is_return_type(prev.trim())
    {
        start -= 1;
    }
    while start > floor {
        let Some(prev) = lines.get(start - 1) else { break };
        let trimmed = prev.trim_start();
        if trimmed.is_empty() || width(prev) > indent + 1 || !is_lead(trimmed) {
            break;
        }
        start -= 1;
    }
    start
}

/// `static int`, `std::vector<int> *`: type words only, no statement.
fn is_return_type(t: &str) -> bool {
    !t.is_empty()
        && t.split_whitespace().count() <= 4
        && t.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '*' | '&' | ':' | '<' | '>' | ' '))
        && !CONTROL.contains(&first_word(t))
}

/// Comment, attribute, decorator or annotation lines.
fn is_lead(t: &str) -> bool {
    t.starts_with("//")
        || t.starts_with("/*")
        || t.starts_with('*')
        || t.starts_with("--")
        || t.starts_with("#[")
        || t.starts_with("#![")
        || t.starts_with('@')
        || t.starts_with("template")
        || t == "#"
        || t.starts_with("# ")
        || t.starts_with("##")
        || (t.starts_with('[') && t.ends_with(']'))
        || t.starts_with("\"\"\"")
}

/// One past the last line of the definition starting at `def`: the block runs on over blank
/// lines, deeper-indented lines and closing lines at its own indentation, and ends before the
/// next line at its indentation (or shallower) that starts something new.
fn definition_end(lines: &[&str], def: usize, hi: usize, indent: usize) -> usize {
    let mut end = def + 1;
    let mut i = def + 1;
    while i < hi {
        let line = lines.get(i).copied().unwrap_or_default();
        let t = line.trim_start();
        if t.is_empty() {
            i += 1;
            continue;
        }
        let w = width(line);
        if w > indent || (w == indent && is_closer(t)) {
            i += 1;
            end = i;
            continue;
        }
        break;
    }
    end
}

/// `}`, `)`, `];`, `end`, `{` on its own line (a brace on the line after a C header).
fn is_closer(t: &str) -> bool {
    t.starts_with(['}', ')', ']', '{'])
        || t == "end"
        || t.starts_with("end ")
        || t.starts_with("end;")
        || t.starts_with("end)")
        || t.starts_with("end.")
        || t.starts_with("end,")
}

/// The indentation of a container's first member line, if deeper than the container's.
fn member_indent(lines: &[&str], lo: usize, hi: usize, indent: usize) -> Option<usize> {
    lines.get(lo..hi)?.iter().filter(|l| !l.trim().is_empty()).map(|l| width(l)).find(|w| *w > indent)
}

fn has_definition(lines: &[&str], lo: usize, hi: usize, indent: usize) -> bool {
    (lo..hi).any(|i| {
        let line = lines.get(i).copied().unwrap_or_default();
        width(line) == indent
            && !line.trim().is_empty()
            && definition(line.trim_start(), next_code_line(lines, i + 1, hi)).is_some()
    })
}

const MODIFIERS: &[&str] = &[
    "pub",
    "export",
    "default",
    "async",
    "static",
    "public",
    "private",
    "protected",
    "internal",
    "final",
    "abstract",
    "sealed",
    "open",
    "override",
    "virtual",
    "inline",
    "extern",
    "unsafe",
    "declare",
    "local",
    "data",
    "case",
    "suspend",
    "partial",
    "readonly",
    "noinline",
    "synchronized",
    "native",
    "strictfp",
    "constexpr",
    "export_default",
    "lazy",
    "implicit",
    "inner",
    "enum_class",
    "annotation",
    "tailrec",
    "operator",
    "infix",
    "mutating",
    "fileprivate",
    "required",
    "convenience",
    "dynamic",
    "unsafe_impl",
    "friend",
    "explicit",
];

const CONTAINERS: &[&str] = &[
    "class",
    "impl",
    "trait",
    "interface",
    "module",
    "mod",
    "namespace",
    "object",
    "protocol",
    "extension",
    "actor",
    "record",
];

const ITEMS: &[&str] = &[
    "fn",
    "def",
    "func",
    "function",
    "fun",
    "sub",
    "macro_rules!",
    "macro",
    "proc",
    "struct",
    "enum",
    "union",
    "type",
    "typedef",
    "defmodule",
    "defn",
    "method",
];

const CONTROL: &[&str] = &[
    "if", "for", "while", "switch", "return", "else", "do", "catch", "sizeof", "case", "goto", "elif", "try", "with",
    "match", "loop", "foreach", "unless", "until", "assert", "print", "echo", "new", "throw", "await", "yield",
];

/// Whether `t` (a line without its indentation) starts a definition, and of what kind. `next`
/// is the following non-blank line (a C function's `{` may sit there).
fn definition(t: &str, next: Option<&str>) -> Option<Kind> {
    if is_lead(t) || t.starts_with('#') || t.starts_with(['}', ')', ']', '{', '<', '"', '\'']) {
        return None;
    }
    // R: `name <- function(x) {`.
    if t.contains("<- function") {
        return Some(Kind::Item);
    }
    let mut rest = t;
    loop {
        let word = first_word(rest);
        if word == "pub" && rest.get(3..).is_some_and(|r| r.starts_with('(')) {
            // `pub(crate)`, `pub(in path)`.
            let close = rest.find(')')?;
            rest = rest.get(close + 1..)?.trim_start();
            continue;
        }
        if word == "extern" && rest.get(6..).is_some_and(|r| r.trim_start().starts_with('"')) {
            // `extern "C" fn`.
            let after = rest.get(6..)?.trim_start().get(1..)?;
            let close = after.find('"')?;
            rest = after.get(close + 1..)?.trim_start();
            continue;
        }
        if (word == "const" || word == "unsafe") && first_word(rest.get(word.len()..)?.trim_start()) == "fn" {
            rest = rest.get(word.len()..)?.trim_start();
            continue;
        }
        if MODIFIERS.contains(&word) && rest.len() > word.len() {
            rest = rest.get(word.len()..)?.trim_start();
            continue;
        }
        break;
    }
    let word = first_word(rest);
    let declaration = t.ends_with(';');
    if CONTAINERS.contains(&word) {
        return (!declaration).then_some(Kind::Container);
    }
    if ITEMS.contains(&word) {
        return (!declaration || matches!(word, "type" | "typedef")).then_some(Kind::Item);
    }
    if matches!(word, "const" | "let" | "var") {
        // JavaScript: `const handler = async (event) => {`, `var f = function () {`.
        return (rest.contains("=>") || rest.contains("= function") || rest.contains("= async function"))
            .then_some(Kind::Item);
    }
    c_like_function(rest, next).then_some(Kind::Item)
}

/// `int main(int argc, char **argv) {`, `std::string Foo::name() const`, `name() {` (shell):
/// type and name tokens before the first parenthesis, no assignment, not a statement.
fn c_like_function(t: &str, next: Option<&str>) -> bool {
    if t.ends_with(';') || t.ends_with(',') && !t.contains('(') {
        return false;
    }
    let Some(paren) = t.find('(') else { return false };
    let head = t.get(..paren).unwrap_or_default().trim_end();
    if head.is_empty() || head.contains('=') || head.contains('.') {
        return false;
    }
    if !head.chars().all(|c| {
        c.is_alphanumeric() || matches!(c, '_' | ':' | '*' | '&' | '<' | '>' | ',' | ' ' | '~' | '[' | ']' | '$')
    }) {
        return false;
    }
    let tokens: Vec<&str> = head.split_whitespace().collect();
    let Some(first) = tokens.first() else { return false };
    if CONTROL.contains(first) || tokens.iter().any(|w| CONTROL.contains(w)) {
        return false;
    }
    let opens_body = t.ends_with('{') || next.is_some_and(|n| n.trim_start().starts_with('{'));
    let header_ends =
        t.ends_with(')') || t.ends_with('{') || t.ends_with(',') || t.ends_with("const") || t.ends_with('(');
    (tokens.len() >= 2 && header_ends && (opens_body || t.ends_with(',') || t.ends_with('(') || next_is_body(next)))
        || (tokens.len() == 1 && opens_body)
}

/// The line after a multi-line or K&R-style header is indented (parameters) or a brace.
fn next_is_body(next: Option<&str>) -> bool {
    next.is_some_and(|n| n.starts_with([' ', '\t', '{']))
}

/// The leading word of `t`: identifier characters (and `!` for `macro_rules!`).
fn first_word(t: &str) -> &str {
    let end = t.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!')).unwrap_or(t.len());
    t.get(..end).unwrap_or_default()
}

/// The heading of the definition at `def`: its first line trimmed, without the opening brace or
/// Python colon, an unclosed parameter list marked `…)`, at most `MAX_SIGNATURE_CHARS` chars.
fn signature(lines: &[&str], def: usize) -> String {
    let line = lines.get(def).copied().unwrap_or_default().trim();
    let mut sig = line.trim_end_matches('{').trim_end().to_owned();
    if sig.ends_with(':') && !sig.ends_with("::") {
        sig.pop();
    }
    let sig = sig.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut sig = if sig.chars().count() > MAX_SIGNATURE_CHARS {
        format!("{}…", sig.chars().take(MAX_SIGNATURE_CHARS).collect::<String>().trim_end())
    } else {
        sig
    };
    if sig.matches('(').count() > sig.matches(')').count() && !sig.ends_with('…') {
        if sig.ends_with('(') {
            sig.push_str("…)");
        } else {
            sig.push_str(" …)");
        }
    }
    sig
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expected block: heading path, first line, last line.
    fn check(source: &str, expected: &[(&[&str], u32, u32)]) -> Document {
        let doc = parse(source.as_bytes()).unwrap();
        let got: Vec<(Vec<String>, u32, u32)> = doc
            .blocks
            .iter()
            .map(|b| {
                // One line of text per line of the anchor: the chunker relies on it.
                let lines = (b.anchor.line_end.unwrap() - b.anchor.line_start.unwrap() + 1) as usize;
                assert_eq!(b.text.lines().count(), lines, "{b:?}");
                (b.anchor.heading.clone(), b.anchor.line_start.unwrap(), b.anchor.line_end.unwrap())
            })
            .collect();
        let want: Vec<(Vec<String>, u32, u32)> =
            expected.iter().map(|(h, a, b)| (h.iter().map(|s| s.to_string()).collect(), *a, *b)).collect();
        assert_eq!(got, want);
        doc
    }

    #[test]
    fn rust_items_carry_their_docs_and_attributes() {
        let src = "\
//! Crate docs.

use std::io;

/// Adds one.
#[inline]
pub(crate) fn add_one(x: u32) -> u32 {
    x + 1
}

const LIMIT: u32 = 5;

#[derive(Debug)]
pub struct Point {
    x: i32,
}

impl Point {
    pub fn new() -> Self {
        Point { x: 0 }
    }

    /// Distance.
    fn dist(
        &self,
    ) -> f64 {
        0.0
    }
}

mod tests;
";
        let doc = check(
            src,
            &[
                (&[], 1, 1),
                (&[], 3, 3),
                (&["pub(crate) fn add_one(x: u32) -> u32"], 5, 9),
                (&[], 11, 11),
                (&["pub struct Point"], 13, 16),
                (&["impl Point"], 18, 18),
                (&["impl Point", "pub fn new() -> Self"], 19, 21),
                (&["impl Point", "fn dist(…)"], 23, 28),
                (&[], 31, 31),
            ],
        );
        assert_eq!(
            doc.blocks[2].text,
            "/// Adds one.\n#[inline]\npub(crate) fn add_one(x: u32) -> u32 {\n    x + 1\n}"
        );
        assert_eq!(
            doc.blocks[7].text,
            "    /// Distance.\n    fn dist(\n        &self,\n    ) -> f64 {\n        0.0\n    }"
        );
    }

    #[test]
    fn python_classes_split_into_methods_and_decorators_stay_attached() {
        let src = "\
import os

@dataclass
class Config:
    \"\"\"Settings.\"\"\"
    name: str = \"x\"

    def load(self, path):
        return open(path)

    @property
    def size(self):

        return 1


async def main():
    pass

if __name__ == \"__main__\":
    main()
";
        check(
            src,
            &[
                (&[], 1, 1),
                (&["class Config"], 3, 4),
                (&["class Config"], 5, 6),
                (&["class Config", "def load(self, path)"], 8, 9),
                (&["class Config", "def size(self)"], 11, 14),
                (&["async def main()"], 17, 18),
                (&[], 20, 21),
            ],
        );
    }

    #[test]
    fn c_go_js_and_shell_functions() {
        check(
            "#include <stdio.h>\n\nstatic int\ncount(const char *s)\n{\n  return 0;\n}\n\nint main(void) {\n  if (x) {\n  }\n}\n",
            &[(&[], 1, 1), (&["count(const char *s)"], 3, 7), (&["int main(void)"], 9, 12)],
        );
        check(
            "package main\n\n// Run runs.\nfunc (s *Server) Run() error {\n\treturn nil\n}\n\ntype ID string\n",
            &[(&[], 1, 1), (&["func (s *Server) Run() error"], 3, 6), (&["type ID string"], 8, 8)],
        );
        check(
            "import x from 'y';\n\nexport const handler = async (event) => {\n  return 1;\n};\n\nexport default class App extends Base {\n  render() {\n    return null;\n  }\n}\n",
            &[
                (&[], 1, 1),
                (&["export const handler = async (event) =>"], 3, 5),
                (&["export default class App extends Base"], 7, 7),
                (&["export default class App extends Base", "render()"], 8, 10),
            ],
        );
        check(
            "#!/bin/sh\nset -e\n\n# Greets.\ngreet() {\n  echo hi\n}\n\ngreet\n",
            &[(&[], 1, 2), (&["greet()"], 4, 7), (&[], 9, 9)],
        );
    }

    #[test]
    fn ruby_end_and_long_signatures() {
        let long = format!("def {}(a, b)\n  a\nend\n", "x".repeat(120));
        let doc = check(&long, &[(&[&format!("def {}…", "x".repeat(96))], 1, 3)]);
        assert_eq!(doc.blocks[0].text.lines().last(), Some("end"));
        check(
            "module Shop\n  class Cart\n    def total\n    end\n  end\nend\n",
            &[(&["module Shop"], 1, 1), (&["module Shop", "class Cart"], 2, 5)],
        );
    }

    #[test]
    fn files_without_definitions_read_like_text() {
        check("x = 1\ny = 2\n\nprint(x)\n", &[(&[], 1, 2), (&[], 4, 4)]);
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b"}\n}\n").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b"\x00\x01\x02\x03\x04\x05\x06").unwrap_err(), ParseError::Binary);
    }
}
