//! cairn-parse: a file's bytes to a `Document` of anchored blocks, and a `Document` to chunks
//! that fit the embedder.
//!
//! One module per format (`text`, `code`, `markdown`, `html`, `pdf`, `docx`, `odt`, `rtf`,
//! `epub`, `pptx`, `delimited` for CSV/TSV, `spreadsheet` for XLSX/ODS, `email` for `.eml`), plus
//! `decode` (bytes to text), `package` (zip containers) and `chunker`. This crate deliberately never touches the filesystem or the network: it
//! is given bytes. The one exception is PDF, which runs poppler's `pdftotext` as a child process.
//! It never panics on any input: a file it cannot read is a `ParseError` with a reason a user
//! can act on.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod bounded;
mod chunker;
mod code;
mod decode;
mod delimited;
mod docx;
mod email;
mod epub;
mod error;
mod html;
mod markdown;
mod odt;
mod package;
mod pdf;
mod pptx;
mod rtf;
mod spreadsheet;
mod text;

pub use bounded::parse_bounded;
pub use cairn_core::Format;
pub use chunker::{CONTEXT_SEPARATOR, ChunkOptions, chunk};
pub use error::ParseError;

use cairn_core::Document;
use std::path::Path;
use std::time::Duration;

/// Bounds on how much work parsing one file may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// How long `pdftotext` may run before it is killed (`ParseError::Timeout`).
    pub pdf_timeout: Duration,
    /// How long an in-process reader (every format but PDF) may take in `parse_bounded`.
    pub extract_timeout: Duration,
    /// How scanned PDF pages (no text layer) are read.
    pub ocr: OcrOptions,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            pdf_timeout: Duration::from_secs(120),
            extract_timeout: Duration::from_secs(60),
            ocr: OcrOptions::default(),
        }
    }
}

/// OCR of PDF pages that have no text layer: rendered by poppler's `pdftoppm`, read by
/// `tesseract`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcrOptions {
    pub enabled: bool,
    /// The tesseract program (a name on `PATH` or a path).
    pub tesseract: String,
    /// Tesseract language codes, `+`-separated (`eng`, `eng+deu`).
    pub language: String,
    /// Rendering resolution; 300 dpi is what tesseract is tuned for.
    pub dpi: u32,
    /// Time box for rendering, and separately for reading, one page.
    pub page_timeout: Duration,
    /// Pages read per file at most; the rest are reported as not read.
    pub max_pages: usize,
}

impl Default for OcrOptions {
    fn default() -> Self {
        OcrOptions {
            enabled: true,
            tesseract: "tesseract".to_owned(),
            language: "eng".to_owned(),
            dpi: 300,
            page_timeout: Duration::from_secs(90),
            max_pages: 500,
        }
    }
}

/// Extensions read as plain text: prose, logs, configuration and data.
const TEXT_EXTENSIONS: &[&str] = &[
    "txt",
    "text",
    "log",
    "json",
    "toml",
    "yaml",
    "yml",
    "xml",
    "ini",
    "cfg",
    "conf",
    "properties",
    "sql",
    "rst",
    "tex",
    "bib",
    "org",
    "css",
    "scss",
];

/// Extensions read as source code, split along their definitions.
const CODE_EXTENSIONS: &[&str] = &[
    "rs", "py", "js", "mjs", "cjs", "ts", "jsx", "tsx", "c", "h", "cc", "cpp", "cxx", "hpp", "java", "kt", "go", "rb",
    "php", "cs", "swift", "scala", "lua", "r", "pl", "sh", "bash", "zsh",
];

/// The format a file is read as, from its extension (case-insensitive). `None` means Cairn does
/// not read this type (the caller reports it as skipped).
pub fn format_for_path(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "md" | "markdown" | "mdown" | "mkd" | "mdx" => Some(Format::Markdown),
        "html" | "htm" | "xhtml" => Some(Format::Html),
        "pdf" => Some(Format::Pdf),
        "docx" => Some(Format::Docx),
        "csv" | "tsv" | "tab" => Some(Format::Csv),
        "xlsx" | "xlsm" => Some(Format::Xlsx),
        "ods" => Some(Format::Ods),
        "pptx" => Some(Format::Pptx),
        "odt" => Some(Format::Odt),
        "epub" => Some(Format::Epub),
        "rtf" => Some(Format::Rtf),
        "eml" => Some(Format::Email),
        e if CODE_EXTENSIONS.contains(&e) => Some(Format::Code),
        e if TEXT_EXTENSIONS.contains(&e) => Some(Format::Text),
        _ => None,
    }
}

/// Parses one file's bytes as `format`.
pub fn parse(format: Format, bytes: &[u8], limits: &ParseLimits) -> Result<Document, ParseError> {
    match format {
        Format::Text => text::parse(bytes),
        Format::Markdown => markdown::parse(bytes),
        Format::Html => html::parse(bytes),
        Format::Pdf => pdf::parse(bytes, limits),
        Format::Docx => docx::parse(bytes),
        Format::Csv => delimited::parse(bytes),
        Format::Code => code::parse(bytes),
        Format::Xlsx => spreadsheet::parse(bytes, spreadsheet::Kind::Xlsx),
        Format::Ods => spreadsheet::parse(bytes, spreadsheet::Kind::Ods),
        Format::Pptx => pptx::parse(bytes),
        Format::Odt => odt::parse(bytes),
        Format::Epub => epub::parse(bytes),
        Format::Rtf => rtf::parse(bytes),
        Format::Email => email::parse(bytes),
    }
}

/// Test helper shared by the format modules: the document's title, and each block's text with
/// its heading path, in order.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn assert_blocks(doc: &Document, title: Option<&str>, expected: &[(&str, &[&str])]) {
    assert_eq!(doc.title.as_deref(), title);
    let got: Vec<(String, Vec<String>)> =
        doc.blocks.iter().map(|b| (b.text.clone(), b.anchor.heading.clone())).collect();
    let want: Vec<(String, Vec<String>)> =
        expected.iter().map(|(t, h)| (t.to_string(), h.iter().map(|s| s.to_string()).collect())).collect();
    assert_eq!(got, want);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{ChunkDraft, TokenCounter, WhitespaceCounter};

    fn check(path: &str, expected: Option<Format>) {
        assert_eq!(format_for_path(Path::new(path)), expected, "{path}");
    }

    #[test]
    fn formats_follow_extensions() {
        check("notes/a.TXT", Some(Format::Text));
        check("server.log", Some(Format::Text));
        check("main.rs", Some(Format::Code));
        check("app.TSX", Some(Format::Code));
        check("run.sh", Some(Format::Code));
        check("Cargo.toml", Some(Format::Text));
        check("data.csv", Some(Format::Csv));
        check("data.TSV", Some(Format::Csv));
        check("budget.XLSX", Some(Format::Xlsx));
        check("budget.ods", Some(Format::Ods));
        check("legacy.xls", None);
        check("deck.PPTX", Some(Format::Pptx));
        check("letter.odt", Some(Format::Odt));
        check("legacy.ppt", None);
        check("config.YML", Some(Format::Text));
        check("README.md", Some(Format::Markdown));
        check("page.XHTML", Some(Format::Html));
        check("report.Pdf", Some(Format::Pdf));
        check("letter.docx", Some(Format::Docx));
        check("photo.jpg", None);
        check("archive.tar.gz", None);
        check("Makefile", None);
        check(".env", None);
        check("legacy.doc", None);
        check("book.EPUB", Some(Format::Epub));
        check("memo.rtf", Some(Format::Rtf));
        check("Invoice.EML", Some(Format::Email));
        check("outlook.msg", None);
        check("inbox.mbox", None);
    }

    /// Parses and chunks `bytes`; every chunk must fit and the expected (context, text, anchor
    /// label) triples must be there, in order.
    fn check_chunks(format: Format, bytes: &[u8], expected: &[(&str, &str, &str)]) {
        let doc = parse(format, bytes, &ParseLimits::default()).unwrap();
        let counter = WhitespaceCounter { max: 64 };
        let chunks: Vec<ChunkDraft> = chunk(&doc, &counter, &ChunkOptions::default());
        assert!(chunks.iter().all(|c| c.tokens <= 64 && c.tokens == counter.count(&c.embed_text())));
        let got: Vec<(String, String, String)> =
            chunks.iter().map(|c| (c.context.clone(), c.text.clone(), c.anchor.label())).collect();
        let want: Vec<(String, String, String)> =
            expected.iter().map(|(c, t, a)| (c.to_string(), t.to_string(), a.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn every_format_parses_and_chunks_end_to_end() {
        check_chunks(
            Format::Text,
            b"first para\nline two\n\nsecond para\n",
            &[("", "first para\nline two\n\nsecond para", "lines 1-4")],
        );
        check_chunks(
            Format::Markdown,
            b"# Guide\n\n## Install\n\nRun it.\n\n## Usage\n\nUse it.\n",
            &[("Guide › Install", "Run it.", "line 5"), ("Guide › Usage", "Use it.", "line 9")],
        );
        check_chunks(
            Format::Html,
            b"<title>Doc</title><h2>Part</h2><p>Hello there.</p><script>evil()</script>",
            &[("Doc › Part", "Hello there.", "§ Part")],
        );
        let body = format!(
            "{}{}",
            r#"<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Report</w:t></w:r></w:p>"#,
            r#"<w:p><w:r><w:t>Numbers went up.</w:t></w:r></w:p>"#
        );
        check_chunks(Format::Docx, &docx::tests::docx(&body, None), &[("Report", "Numbers went up.", "§ Report")]);
        check_chunks(
            Format::Csv,
            b"Region,Q1\nWest,\"1,200\"\nEast,900\n",
            &[("", "Region: West; Q1: 1,200\nRegion: East; Q1: 900", "lines 2-3")],
        );
        check_chunks(
            Format::Code,
            b"use x;\n\n/// Adds.\nfn add(a: u32) -> u32 {\n    a + 1\n}\n",
            &[
                ("", "use x;", "line 1"),
                ("fn add(a: u32) -> u32", "/// Adds.\nfn add(a: u32) -> u32 {\n    a + 1\n}", "lines 3-6"),
            ],
        );
        let sheet: &[(u32, &[(&str, &str)])] =
            &[(1, &[("A1", "s:Region"), ("B1", "s:Q1")]), (2, &[("A2", "s:West"), ("B2", "n:1200")])];
        check_chunks(
            Format::Xlsx,
            &spreadsheet::tests::xlsx(&[("Sales", sheet)], Some("Plan")),
            &[("Plan › Sales", "Region: West; Q1: 1200", "line 2")],
        );
        let slide = [pptx::tests::shape(Some("title"), &["Plan"]), pptx::tests::shape(None, &["Grow sales."])].concat();
        check_chunks(
            Format::Pptx,
            &pptx::tests::pptx(&[(slide, Some("Say hi."))], &[0]),
            &[("Plan", "Grow sales.\n\nNotes: Say hi.", "p. 1")],
        );
        check_chunks(
            Format::Odt,
            &odt::tests::odt(
                r#"<text:h text:outline-level="1">Report</text:h><text:p>Numbers went up.</text:p>"#,
                None,
            ),
            &[("Report", "Numbers went up.", "§ Report")],
        );
        check_chunks(
            Format::Epub,
            &epub::tests::epub(&[("ch1.xhtml", "<h1>One</h1><p>It began.</p>")], Some("Book"), None),
            &[("Book › One", "It began.", "§ One")],
        );
        check_chunks(
            Format::Rtf,
            &rtf::tests::rtf(r"\pard\s1 Report\par\pard Numbers went {\b up}.\par", None),
            &[("Report", "Numbers went up.", "§ Report")],
        );
        check_chunks(
            Format::Email,
            &email::tests::eml(&["From: Ann <ann@example.com>", "Subject: Invoice"], "Please pay.\n"),
            &[("Invoice", "From: Ann <ann@example.com>\nSubject: Invoice\n\nPlease pay.", "")],
        );
        check_chunks(
            Format::Pdf,
            &pdf::tests::pdf(&["alpha page one", "beta page two"], false),
            &[("", "alpha page one", "p. 1"), ("", "beta page two", "p. 2")],
        );
    }

    /// Deterministic pseudo-random bytes.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn damaged_input_never_panics() {
        let good_docx = docx::tests::docx(r#"<w:p><w:r><w:t>hello</w:t></w:r></w:p>"#, Some("T"));
        let good_md =
            "# A\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n- [ ] item\n  > quote\n\n```\ncode\n".as_bytes().to_vec();
        let good_html = b"<table><tr><td><table><tr><td>in</td></tr></table></td></tr></table><h1>x</h1>".to_vec();
        let good_xlsx = spreadsheet::tests::xlsx(&[("S", &[(1, &[("A1", "s:h"), ("B1", "n:2")])])], Some("T"));
        let good_ods = spreadsheet::tests::ods(
            r#"<table:table table:name="S"><table:table-row><table:table-cell office:value-type="string"><text:p>h</text:p></table:table-cell></table:table-row></table:table>"#,
            None,
        );
        let good_pptx = pptx::tests::pptx(
            &[(pptx::tests::shape(Some("title"), &["T"]), Some("n")), (pptx::tests::shape(None, &["b"]), None)],
            &[1, 0],
        );
        let good_odt = odt::tests::odt(
            r#"<text:h>H</text:h><text:list><text:list-item><text:p>x</text:p></text:list-item></text:list>"#,
            Some("T"),
        );
        let good_epub = epub::tests::epub(
            &[("a.xhtml", "<h1>A</h1><p>one</p>"), ("b.xhtml", "<table><tr><td>x</td></tr></table>")],
            Some("T"),
            None,
        );
        let good_rtf = rtf::tests::rtf(
            r"\pard\s1 H\par\trowd\cellx100\pard\intbl caf\'e9\cell\row{\pict 0a}\u8364?\uc0\u-10179\u-8704 x\par",
            Some("T"),
        );
        let good_eml = email::tests::eml(
            &[
                "From: =?UTF-8?B?TcO8bGxlcg==?= <a@example.com>",
                "Subject: T",
                "Content-Type: multipart/mixed; boundary=b",
            ],
            "--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nh=C3=A9llo\n--b\nContent-Type: text/html\nContent-Disposition: attachment; filename=a.txt\n\n<p>x</p>\n--b\nContent-Type: message/rfc822\n\nSubject: in\n\nbody\n--b--\n",
        );
        let counter = WhitespaceCounter { max: 16 };
        for seed in 0..200u64 {
            let mut inputs = vec![noise(seed, (seed as usize * 37) % 3000)];
            for good in [
                &good_docx, &good_md, &good_html, &good_xlsx, &good_ods, &good_pptx, &good_odt, &good_epub, &good_rtf,
                &good_eml,
            ] {
                let mut damaged = good.clone();
                for (i, b) in noise(seed, 8).into_iter().enumerate() {
                    let at = (b as usize * 31 + i * 97 + seed as usize) % damaged.len();
                    damaged[at] = b;
                }
                damaged.truncate(damaged.len() - (seed as usize % damaged.len()));
                inputs.push(damaged);
            }
            for input in &inputs {
                for format in [
                    Format::Text,
                    Format::Markdown,
                    Format::Html,
                    Format::Docx,
                    Format::Csv,
                    Format::Code,
                    Format::Xlsx,
                    Format::Ods,
                    Format::Pptx,
                    Format::Odt,
                    Format::Epub,
                    Format::Rtf,
                    Format::Email,
                ] {
                    if let Ok(doc) = parse(format, input, &ParseLimits::default()) {
                        assert!(chunk(&doc, &counter, &ChunkOptions::default()).iter().all(|c| c.tokens <= 16));
                    }
                }
            }
        }
        for seed in 0..5u64 {
            let mut pdf = pdf::tests::pdf(&["alpha"], false);
            let len = pdf.len();
            pdf.truncate(len - (seed as usize * 17) % (len - 10));
            let _ = parse(Format::Pdf, &pdf, &ParseLimits::default());
            let _ =
                parse(Format::Pdf, &[b"%PDF-1.4\n".as_slice(), &noise(seed, 500)].concat(), &ParseLimits::default());
        }
    }
}
