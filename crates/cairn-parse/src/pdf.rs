//! PDF via poppler's `pdftotext -layout`: one block per paragraph, anchored to its 1-based page.
//!
//! This is the one place cairn-parse runs another program: the PDF bytes go to `pdftotext` on
//! stdin (from a separate thread), text comes back on stdout, and the child is killed when it
//! runs past `ParseLimits::pdf_timeout`. Deliberately not a PDF parser and not OCR: pages without
//! a text layer are reported (a warning, or `NeedsOcr` when no page has text), and whatever
//! pdftotext prints on stderr is only ever used for error messages, never as content.

use crate::{ParseError, ParseLimits};
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
    let out = run_pdftotext(bytes, limits.pdf_timeout)?;
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
    let mut doc = match pages_to_document(&text) {
        Err(ParseError::NeedsOcr) if out.stderr.contains("Error") => {
            let reason = problem.unwrap_or_else(|| "no text could be read".to_owned());
            return Err(ParseError::Corrupt(format!("corrupt PDF: {reason}")));
        }
        other => other?,
    };
    if let Some(problem) = problem {
        doc.warnings.push(format!("pdftotext reported a problem: {problem}"));
    }
    Ok(doc)
}

struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

fn run_pdftotext(bytes: &[u8], timeout: Duration) -> Result<Output, ParseError> {
    let spawned = Command::new(TOOL)
        .args(["-layout", "-enc", "UTF-8", "fd://0", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(ParseError::ToolMissing { tool: TOOL, package: "poppler-utils" });
        }
        Err(e) => return Err(ParseError::ToolFailed { tool: TOOL, detail: e.to_string() }),
    };
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    std::thread::scope(|scope| {
        // Writing and reading happen on their own threads so a full pipe never deadlocks us; a
        // write error (pdftotext exited early) is fine, its exit status says what happened.
        scope.spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(bytes);
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
                    break Err(ParseError::Timeout { what: "PDF extraction", after: timeout });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(ParseError::ToolFailed { tool: TOOL, detail: e.to_string() });
                }
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        Ok(Output { status: status?, stdout, stderr })
    })
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

/// Splits pdftotext output into pages (form feeds) and paragraphs (blank lines).
pub(crate) fn pages_to_document(text: &str) -> Result<Document, ParseError> {
    let mut pages: Vec<&str> = text.split('\x0c').collect();
    // pdftotext ends every page with a form feed, so the last piece is what follows the last page.
    if pages.len() > 1 && pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    let mut blocks = Vec::new();
    let mut textless = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        let number = u32::try_from(i).unwrap_or(u32::MAX - 1).saturating_add(1);
        let visible = page.chars().filter(|c| !c.is_whitespace()).take(MIN_PAGE_CHARS).count();
        if visible < MIN_PAGE_CHARS {
            textless.push(number);
            continue;
        }
        let mut para: Vec<String> = Vec::new();
        let mut flush = |para: &mut Vec<String>| {
            if !para.is_empty() {
                blocks
                    .push(Block { text: para.join("\n"), anchor: Anchor { page: Some(number), ..Default::default() } });
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
    }
    if blocks.is_empty() {
        return Err(ParseError::NeedsOcr);
    }
    let mut warnings = Vec::new();
    if !textless.is_empty() {
        warnings.push(textless_warning(&textless));
    }
    Ok(Document { title: None, blocks, warnings })
}

/// Layout output pads columns with runs of spaces: collapse them so a table row reads
/// `Total net sales 82,959 81,434`.
fn collapse_spaces(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn textless_warning(pages: &[u32]) -> String {
    const SHOWN: usize = 10;
    let mut list: Vec<String> = pages.iter().take(SHOWN).map(u32::to_string).collect();
    if pages.len() > SHOWN {
        list.push(format!("and {} more", pages.len() - SHOWN));
    }
    if pages.len() == 1 {
        format!("page {} has no text layer (needs OCR)", list.join(", "))
    } else {
        format!("pages {} have no text layer (need OCR)", list.join(", "))
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

    #[test]
    fn textless_pages_are_warned_about_or_refused() {
        check(
            &pdf(&["alpha page one", "", "gamma page three", ""], false),
            Ok(&[("alpha page one", 1), ("gamma page three", 3)]),
            &["pages 2, 4 have no text layer (need OCR)"],
        );
        check(&pdf(&["", ""], false), Err("needs_ocr"), &[]);
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
        let limits = ParseLimits { pdf_timeout: Duration::from_millis(0) };
        let err = parse(&pdf(&["alpha"], false), &limits);
        // pdftotext may win the race on a fast machine; either way nothing panics.
        if let Err(e) = err {
            assert!(matches!(e.code(), "timeout"), "{e}");
        }
    }
}
