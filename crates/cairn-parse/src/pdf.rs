//! PDF via poppler's `pdftotext -layout`: one block per paragraph, anchored to its 1-based page.
//! Pages without a text layer (scans) are rendered with `pdftoppm` and read by `tesseract`.
//!
//! This is the one place cairn-parse runs other programs: the PDF bytes go to the tool on stdin
//! (from a separate thread), text or an image comes back on stdout, and the child is killed when
//! it runs past its time box (`ParseLimits::pdf_timeout` for the text layer, `OcrOptions::
//! page_timeout` per scanned page). Deliberately not a PDF parser: whatever the tools print on
//! stderr is only ever used for error messages, never as content. When tesseract is missing,
//! pages without text are reported (a warning, or `NeedsOcr` when no page has text) with the
//! package to install.

use crate::{OcrOptions, ParseError, ParseLimits};
use cairn_core::{Anchor, Block, Document};
use std::io::{ErrorKind, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const TOOL: &str = "pdftotext";

/// A page with fewer visible characters than this has no real text layer (a scanned page may
/// still carry a stray page number).
const MIN_PAGE_CHARS: usize = 4;

pub(crate) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<Document, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let head = bytes.get(..bytes.len().min(1024)).unwrap_or_default();
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(ParseError::Corrupt("corrupt PDF: not a PDF file (no %PDF header)".to_owned()));
    }
    let out = run_tool(
        Tool { program: TOOL, name: TOOL, package: "poppler-utils", what: "PDF extraction" },
        &["-layout", "-enc", "UTF-8", "fd://0", "-"],
        bytes,
        limits.pdf_timeout,
    )?;
    if !out.status.success() {
        return Err(classify_failure(out.status, &out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let problem = first_error_line(&out.stderr);
    if !text.contains('\x0c') && text.trim().is_empty() {
        // Not even one page came out: the file is broken, not scanned.
        let reason = problem.unwrap_or_else(|| "no pages found".to_owned());
        return Err(ParseError::Corrupt(format!("corrupt PDF: {reason}")));
    }
    let mut pages: Vec<Page> = split_pages(&text);
    let textless: Vec<u32> = pages.iter().filter(|p| p.blocks.is_empty()).map(|p| p.number).collect();
    if pages.iter().all(|p| p.blocks.is_empty()) && out.stderr.contains("Error") {
        let reason = problem.unwrap_or_else(|| "no text could be read".to_owned());
        return Err(ParseError::Corrupt(format!("corrupt PDF: {reason}")));
    }
    let mut warnings = Vec::new();
    let mut ocr = OcrResult::default();
    if !textless.is_empty() {
        ocr = ocr_pages(bytes, &textless, &limits.ocr);
        for (number, blocks) in std::mem::take(&mut ocr.read) {
            if let Some(page) = pages.iter_mut().find(|p| p.number == number) {
                page.blocks = blocks;
            }
        }
        if !ocr.done.is_empty() {
            warnings.push(format!("{} read by OCR (recognition errors are possible)", page_list(&ocr.done)));
        }
        for (list, reason) in &ocr.problems {
            let verb = if list.len() == 1 { "has" } else { "have" };
            warnings.push(format!("{} {verb} no text layer: {reason}", page_list(list)));
        }
    }
    let blocks: Vec<Block> = pages.into_iter().flat_map(|p| p.blocks).collect();
    if blocks.is_empty() {
        if ocr.problems.is_empty() {
            // OCR read every page and found nothing: blank or picture-only pages.
            return Err(ParseError::NoText { format: "PDF" });
        }
        let why: Vec<&str> = ocr.problems.iter().map(|(_, reason)| reason.as_str()).collect();
        return Err(ParseError::NeedsOcr { why: why.join("; ") });
    }
    if let Some(problem) = problem {
        warnings.push(format!("pdftotext reported a problem: {problem}"));
    }
    Ok(Document { title: None, blocks, warnings })
}

/// An external program and how to name it to the user.
#[derive(Clone, Copy)]
struct Tool<'a> {
    /// What is run (a name on `PATH` or a path).
    program: &'a str,
    /// The name used in messages.
    name: &'static str,
    /// The Debian package that provides it.
    package: &'static str,
    /// What it is doing, for `Timeout` messages.
    what: &'static str,
}

struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `tool` with `input` on stdin, collecting stdout and (the first 64 KiB of) stderr, and
/// kills it when it runs past `timeout`.
fn run_tool(tool: Tool<'_>, args: &[&str], input: &[u8], timeout: Duration) -> Result<Output, ParseError> {
    let spawned = Command::new(tool.program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(ParseError::ToolMissing { tool: tool.name, package: tool.package });
        }
        Err(e) => return Err(ParseError::ToolFailed { tool: tool.name, detail: e.to_string() }),
    };
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    std::thread::scope(|scope| {
        // Writing and reading happen on their own threads so a full pipe never deadlocks us; a
        // write error (the tool exited early) is fine, its exit status says what happened.
        scope.spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(input);
            }
        });
        let out = scope.spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut s) = stdout {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        });
        let err = scope.spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stderr {
                let _ = s.take(64 * 1024).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(ParseError::Timeout { what: tool.what, after: timeout });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(ParseError::ToolFailed { tool: tool.name, detail: e.to_string() });
                }
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        Ok(Output { status: status?, stdout, stderr })
    })
}

/// What OCR made of the pages without a text layer.
#[derive(Default)]
struct OcrResult {
    /// Pages with recognised text, and their blocks.
    read: Vec<(u32, Vec<Block>)>,
    /// Pages OCR read (with text or found blank).
    done: Vec<u32>,
    /// Pages left unread, and why, phrased to follow "have no text layer: " (`OCR is turned off`).
    problems: Vec<(Vec<u32>, String)>,
}

/// Renders each of `pages` at `opts.dpi` with pdftoppm and reads it with tesseract. Never fails
/// the file: pages it cannot read are listed in `problems` with the reason.
fn ocr_pages(pdf: &[u8], pages: &[u32], opts: &OcrOptions) -> OcrResult {
    let mut result = OcrResult::default();
    if !opts.enabled {
        result.problems.push((pages.to_vec(), "OCR is turned off".to_owned()));
        return result;
    }
    let render =
        Tool { program: "pdftoppm", name: "pdftoppm", package: "poppler-utils", what: "rendering a page for OCR" };
    let read = Tool { program: &opts.tesseract, name: "tesseract", package: "tesseract-ocr", what: "OCR of a page" };
    let (todo, over) = pages.split_at(pages.len().min(opts.max_pages));
    let mut failed: Vec<(u32, String)> = Vec::new();
    for &number in todo {
        let n = number.to_string();
        let dpi = opts.dpi.to_string();
        let image = run_tool(render, &["-f", &n, "-l", &n, "-r", &dpi, "-gray", "-png", "-"], pdf, opts.page_timeout)
            .and_then(|out| match out.status.success() && !out.stdout.is_empty() {
                true => Ok(out.stdout),
                false => Err(ParseError::ToolFailed {
                    tool: "pdftoppm",
                    detail: first_error_line(&out.stderr).unwrap_or_else(|| "no image".to_owned()),
                }),
            });
        let text = image.and_then(|png| {
            let out = run_tool(read, &["stdin", "stdout", "-l", &opts.language], &png, opts.page_timeout)?;
            match out.status.success() {
                true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
                false => Err(ParseError::ToolFailed {
                    tool: "tesseract",
                    detail: first_error_line(&out.stderr).unwrap_or_else(|| "failed".to_owned()),
                }),
            }
        });
        match text {
            Ok(text) => {
                result.done.push(number);
                let blocks = page_blocks(number, &text);
                if !blocks.is_empty() {
                    result.read.push((number, blocks));
                }
            }
            Err(e @ ParseError::ToolMissing { .. }) => {
                // Nothing more will work: report every remaining page at once.
                let rest: Vec<u32> = pages.iter().copied().filter(|p| !result.done.contains(p)).collect();
                result.problems.push((rest, format!("OCR is not available ({e})")));
                return result;
            }
            Err(e) => failed.push((number, e.to_string())),
        }
    }
    for (number, reason) in failed {
        result.problems.push((vec![number], format!("OCR failed ({reason})")));
    }
    if !over.is_empty() {
        result.problems.push((over.to_vec(), format!("not read, OCR stops after {} pages per file", opts.max_pages)));
    }
    result
}
/// Turns a failed run into a reason: encrypted, corrupt, or a tool failure.
fn classify_failure(status: ExitStatus, stderr: &str) -> ParseError {
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("incorrect password") || status.code() == Some(3) {
        return ParseError::Encrypted { format: "PDF" };
    }
    match status.code() {
        Some(1) => {
            let reason = first_error_line(stderr).unwrap_or_else(|| "pdftotext could not open it".to_owned());
            ParseError::Corrupt(format!("corrupt PDF: {reason}"))
        }
        Some(code) => ParseError::ToolFailed {
            tool: TOOL,
            detail: first_error_line(stderr).unwrap_or_else(|| format!("exit code {code}")),
        },
        None => ParseError::ToolFailed { tool: TOOL, detail: "killed by a signal".to_owned() },
    }
}

/// The most telling line of pdftotext's stderr, without its `Syntax Error: ` style prefix.
fn first_error_line(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let line = lines.iter().find(|l| l.contains("Error")).or(lines.first())?;
    let line = match line.split_once(": ") {
        Some((prefix, rest)) if prefix.contains("Error") || prefix.contains("Warning") => rest,
        _ => line,
    };
    let line: String = line.chars().take(200).collect();
    Some(line)
}

/// One page of pdftotext output: its number and paragraphs (none when it has no text layer).
struct Page {
    number: u32,
    blocks: Vec<Block>,
}

/// Splits pdftotext output into pages (form feeds) and paragraphs (blank lines).
fn split_pages(text: &str) -> Vec<Page> {
    let mut pages: Vec<&str> = text.split('\x0c').collect();
    // pdftotext ends every page with a form feed, so the last piece is what follows the last page.
    if pages.len() > 1 && pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    pages
        .iter()
        .enumerate()
        .map(|(i, page)| {
            let number = u32::try_from(i).unwrap_or(u32::MAX - 1).saturating_add(1);
            Page { number, blocks: page_blocks(number, page) }
        })
        .collect()
}

/// The paragraphs of one page's text; none when it has fewer than `MIN_PAGE_CHARS` visible
/// characters.
fn page_blocks(number: u32, page: &str) -> Vec<Block> {
    let visible = page.chars().filter(|c| !c.is_whitespace()).take(MIN_PAGE_CHARS).count();
    if visible < MIN_PAGE_CHARS {
        return Vec::new();
    }
    let mut blocks = Vec::new();
    let mut para: Vec<String> = Vec::new();
    let mut flush = |para: &mut Vec<String>| {
        if !para.is_empty() {
            blocks.push(Block { text: para.join("\n"), anchor: Anchor { page: Some(number), ..Default::default() } });
            para.clear();
        }
    };
    for line in page.lines() {
        let line = collapse_spaces(line);
        if line.is_empty() {
            flush(&mut para);
        } else {
            para.push(line);
        }
    }
    flush(&mut para);
    blocks
}

/// Splits pdftotext output into a document without OCR (textless pages are a warning).
#[cfg(test)]
pub(crate) fn pages_to_document(text: &str) -> Result<Document, ParseError> {
    let pages = split_pages(text);
    let textless: Vec<u32> = pages.iter().filter(|p| p.blocks.is_empty()).map(|p| p.number).collect();
    let blocks: Vec<Block> = pages.into_iter().flat_map(|p| p.blocks).collect();
    if blocks.is_empty() {
        return Err(ParseError::NeedsOcr { why: "OCR is turned off".to_owned() });
    }
    let warnings = if textless.is_empty() { Vec::new() } else { vec![textless_warning(&textless)] };
    Ok(Document { title: None, blocks, warnings })
}

/// Layout output pads columns with runs of spaces: collapse them so a table row reads
/// `Total net sales 82,959 81,434`.
fn collapse_spaces(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
fn textless_warning(pages: &[u32]) -> String {
    if pages.len() == 1 {
        format!("page {} has no text layer (needs OCR)", page_numbers(pages))
    } else {
        format!("pages {} have no text layer (need OCR)", page_numbers(pages))
    }
}

/// `2, 4, 7`, with at most ten numbers shown (`…, and 3 more`).
fn page_numbers(pages: &[u32]) -> String {
    const SHOWN: usize = 10;
    let mut list: Vec<String> = pages.iter().take(SHOWN).map(u32::to_string).collect();
    if pages.len() > SHOWN {
        list.push(format!("and {} more", pages.len() - SHOWN));
    }
    list.join(", ")
}

/// `page 3` or `pages 2, 4`.
fn page_list(pages: &[u32]) -> String {
    match pages.len() {
        1 => format!("page {}", page_numbers(pages)),
        _ => format!("pages {}", page_numbers(pages)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal valid PDF with one page per string, Helvetica text, correct xref offsets.
    /// `encrypt` adds an /Encrypt dictionary whose password check fails.
    pub(crate) fn pdf(pages: &[&str], encrypt: bool) -> Vec<u8> {
        let n = pages.len();
        let font = 3 + 2 * n;
        let mut objects: Vec<String> = Vec::new();
        objects.push("<< /Type /Catalog /Pages 2 0 R >>".to_owned());
        let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 3 + 2 * i)).collect();
        objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")));
        for (i, text) in pages.iter().enumerate() {
            let content =
                if text.is_empty() { String::new() } else { format!("BT /F1 24 Tf 72 720 Td ({text}) Tj ET") };
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font} 0 R >> >> /Contents {} 0 R >>",
                4 + 2 * i
            ));
            objects.push(format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()));
        }
        objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned());
        if encrypt {
            objects.push(format!(
                "<< /Filter /Standard /V 1 /R 2 /O <{}> /U <{}> /P -4 >>",
                "0123456789abcdef".repeat(4),
                "fedcba9876543210".repeat(4)
            ));
        }
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, obj) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n{obj}\nendobj\n", i + 1).into_bytes());
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).into_bytes());
        for off in offsets {
            out.extend(format!("{off:010} 00000 n \n").into_bytes());
        }
        let extra = if encrypt {
            format!(" /Encrypt {} 0 R /ID [<{id}> <{id}>]", objects.len(), id = "00112233445566778899aabbccddeeff")
        } else {
            String::new()
        };
        out.extend(
            format!("trailer\n<< /Size {} /Root 1 0 R{extra} >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1)
                .into_bytes(),
        );
        out
    }

    fn check(bytes: &[u8], expected: Result<&[(&str, u32)], &str>, warnings: &[&str]) {
        match (parse(bytes, &ParseLimits::default()), expected) {
            (Ok(doc), Ok(want)) => {
                let got: Vec<(&str, u32)> =
                    doc.blocks.iter().map(|b| (b.text.as_str(), b.anchor.page.unwrap())).collect();
                assert_eq!(got, want);
                assert_eq!(doc.warnings, warnings);
            }
            (Err(e), Err(code)) => assert_eq!(e.code(), code, "{e}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn pages_become_anchored_blocks() {
        check(
            &pdf(&["alpha page one", "beta page two"], false),
            Ok(&[("alpha page one", 1), ("beta page two", 2)]),
            &[],
        );
    }

    /// A PDF whose pages are pictures of the given texts (as a scanner makes them): each text
    /// is typeset by `pdf`, rendered to a grey bitmap by pdftoppm, and placed as an image.
    pub(crate) fn scanned_pdf(pages: &[&str]) -> Vec<u8> {
        let mut objects: Vec<Vec<u8>> = vec![b"<< /Type /Catalog /Pages 2 0 R >>".to_vec()];
        let kids: Vec<String> = (0..pages.len()).map(|i| format!("{} 0 R", 3 + 3 * i)).collect();
        objects.push(format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()).into_bytes());
        for (i, text) in pages.iter().enumerate() {
            let out = Command::new("pdftoppm")
                .args(["-r", "100", "-gray", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    child.stdin.take().unwrap().write_all(&pdf(&[text], false))?;
                    child.wait_with_output()
                })
                .expect("pdftoppm (poppler-utils) renders the test page");
            // PGM: "P5\n<width> <height>\n255\n" then one byte per pixel.
            let header: Vec<&[u8]> = out.stdout.splitn(4, |b| b.is_ascii_whitespace()).collect();
            let (w, h) = (std::str::from_utf8(header[1]).unwrap(), std::str::from_utf8(header[2]).unwrap());
            let pixels = &header[3][4..];
            let (image, content) = (4 + 3 * i, 5 + 3 * i);
            objects.push(
                format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im {image} 0 R >> >> /Contents {content} 0 R >>")
                    .into_bytes(),
            );
            let mut xobject = format!(
                "<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray /BitsPerComponent 8 /Length {} >>\nstream\n",
                pixels.len()
            )
            .into_bytes();
            xobject.extend_from_slice(pixels);
            xobject.extend_from_slice(b"\nendstream");
            objects.push(xobject);
            let draw = "q 612 0 0 792 0 0 cm /Im Do Q";
            objects.push(format!("<< /Length {} >>\nstream\n{draw}\nendstream", draw.len()).into_bytes());
        }
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, obj) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n", i + 1).into_bytes());
            out.extend_from_slice(obj);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).into_bytes());
        for off in offsets {
            out.extend(format!("{off:010} 00000 n \n").into_bytes());
        }
        out.extend(
            format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).into_bytes(),
        );
        out
    }

    fn limits(ocr: OcrOptions) -> ParseLimits {
        ParseLimits { ocr, ..Default::default() }
    }

    #[test]
    fn textless_pages_are_warned_about_or_refused_without_ocr() {
        let off = limits(OcrOptions { enabled: false, ..Default::default() });
        let doc = parse(&pdf(&["alpha page one", "", "gamma page three", ""], false), &off).unwrap();
        let got: Vec<(&str, u32)> = doc.blocks.iter().map(|b| (b.text.as_str(), b.anchor.page.unwrap())).collect();
        assert_eq!(got, [("alpha page one", 1), ("gamma page three", 3)]);
        assert_eq!(doc.warnings, ["pages 2, 4 have no text layer: OCR is turned off"]);
        let err = parse(&pdf(&["", ""], false), &off).unwrap_err();
        assert_eq!(err.to_string(), "PDF has no text layer (scanned pages need OCR): OCR is turned off");
    }

    #[test]
    fn scanned_pages_are_read_by_ocr_and_keep_their_page() {
        let scan = scanned_pdf(&["The invoice total is 4,250 dollars", "Payment is due within thirty days"]);
        let doc = parse(&scan, &ParseLimits::default()).unwrap();
        let pages: Vec<(String, u32)> =
            doc.blocks.iter().map(|b| (b.text.to_lowercase(), b.anchor.page.unwrap())).collect();
        assert!(pages.iter().any(|(t, p)| *p == 1 && t.contains("invoice total is 4,250")), "{pages:?}");
        assert!(pages.iter().any(|(t, p)| *p == 2 && t.contains("due within thirty days")), "{pages:?}");
        assert_eq!(doc.warnings, ["pages 1, 2 read by OCR (recognition errors are possible)"]);

        // A text page and a blank page: the blank one is looked at and found empty.
        let doc = parse(&pdf(&["alpha page one", ""], false), &ParseLimits::default()).unwrap();
        assert_eq!(doc.blocks.len(), 1);
        assert_eq!(doc.warnings, ["page 2 read by OCR (recognition errors are possible)"]);
        assert_eq!(parse(&pdf(&["", ""], false), &ParseLimits::default()).unwrap_err().code(), "empty");
    }

    #[test]
    fn without_tesseract_scans_are_reported_with_the_package_to_install() {
        let missing = limits(OcrOptions { tesseract: "/nonexistent/tesseract".into(), ..Default::default() });
        let err = parse(&scanned_pdf(&["Scanned words here"]), &missing).unwrap_err();
        assert_eq!(err.code(), "needs_ocr");
        assert_eq!(
            err.to_string(),
            "PDF has no text layer (scanned pages need OCR): OCR is not available (tesseract not installed: install tesseract-ocr)"
        );
        let doc = parse(&pdf(&["alpha page one", "", ""], false), &missing).unwrap();
        assert_eq!(
            doc.warnings,
            ["pages 2, 3 have no text layer: OCR is not available (tesseract not installed: install tesseract-ocr)"]
        );
    }

    #[test]
    fn ocr_is_bounded_per_page_and_per_file() {
        let one = limits(OcrOptions { max_pages: 1, ..Default::default() });
        let doc = parse(&scanned_pdf(&["First scanned page text", "Second scanned page text"]), &one).unwrap();
        assert!(doc.blocks.iter().all(|b| b.anchor.page == Some(1)));
        assert_eq!(
            doc.warnings,
            [
                "page 1 read by OCR (recognition errors are possible)",
                "page 2 has no text layer: not read, OCR stops after 1 pages per file"
            ]
        );
        let hasty = limits(OcrOptions { page_timeout: Duration::ZERO, ..Default::default() });
        let err = parse(&scanned_pdf(&["Slow page"]), &hasty).unwrap_err();
        assert!(err.to_string().contains("OCR failed (rendering a page for OCR timed out after 0s)"), "{err}");
    }

    #[test]
    fn broken_and_locked_files_are_errors_not_content() {
        check(&pdf(&["secret"], true), Err("encrypted"), &[]);
        check(b"this is not a pdf at all", Err("corrupt"), &[]);
        check(b"%PDF-1.4\n\x00\x01garbage garbage\n%%EOF", Err("corrupt"), &[]);
        let good = pdf(&["alpha page one"], false);
        check(&good[..good.len() / 3], Err("corrupt"), &[]);
        let err = parse(b"%PDF-1.7\ngarbage", &ParseLimits::default()).unwrap_err();
        assert!(err.to_string().starts_with("corrupt PDF: "), "{err}");
    }

    #[test]
    fn layout_columns_collapse_and_pages_split_on_form_feeds() {
        let doc = pages_to_document(
            "   Total net sales     82,959    81,434\n  Cost   1\n\nNext para\x0c\x0cPage three text\x0c",
        )
        .unwrap();
        let got: Vec<(&str, u32)> = doc.blocks.iter().map(|b| (b.text.as_str(), b.anchor.page.unwrap())).collect();
        assert_eq!(got, [("Total net sales 82,959 81,434\nCost 1", 1), ("Next para", 1), ("Page three text", 3)]);
        assert_eq!(doc.warnings, ["page 2 has no text layer (needs OCR)"]);
    }

    #[test]
    fn timeout_is_reported() {
        let limits = ParseLimits { pdf_timeout: Duration::from_millis(0), ..Default::default() };
        let err = parse(&pdf(&["alpha"], false), &limits);
        // pdftotext may win the race on a fast machine; either way nothing panics.
        if let Err(e) = err {
            assert!(matches!(e.code(), "timeout"), "{e}");
        }
    }
}
