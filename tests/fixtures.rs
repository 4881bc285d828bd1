//! Generated test documents in real formats: hand-built PDFs that poppler reads, DOCX files
//! made with a real zip writer, and a folder of mixed files (good and bad) for end-to-end tests.
//!
//! Nothing here is a mock: each builder writes bytes a desktop application would accept.

use std::io::Write;
use std::path::Path;

#[path = "provider_server.rs"]
pub mod provider_server;

/// A minimal valid PDF with one page per entry, each page showing its lines of text in
/// Helvetica. Offsets in the cross-reference table are computed, so poppler reads it cleanly.
pub fn pdf(pages: &[&[&str]]) -> Vec<u8> {
    let n = pages.len();
    // Objects: 1 catalog, 2 pages, 3 font, then per page: page object, content stream.
    let mut objects: Vec<String> = Vec::new();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")));
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into());
    for (i, lines) in pages.iter().enumerate() {
        let content_id = 5 + 2 * i;
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>"
        ));
        let mut stream = String::from("BT /F1 12 Tf 72 720 Td 16 TL\n");
        for line in lines.iter() {
            let escaped = line.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)");
            stream.push_str(&format!("({escaped}) Tj T*\n"));
        }
        stream.push_str("ET");
        objects.push(format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

/// A DOCX with a title, headings (`# ` prefix = Heading1, `## ` = Heading2) and paragraphs.
pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut body = String::new();
    for p in paragraphs {
        let (style, text) = if let Some(t) = p.strip_prefix("## ") {
            (Some("Heading2"), t)
        } else if let Some(t) = p.strip_prefix("# ") {
            (Some("Heading1"), t)
        } else {
            (None, *p)
        };
        body.push_str("<w:p>");
        if let Some(s) = style {
            body.push_str(&format!("<w:pPr><w:pStyle w:val=\"{s}\"/></w:pPr>"));
        }
        body.push_str(&format!("<w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>", esc(text)));
    }
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>"
    );
    let files = [
        (
            "[Content_Types].xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
             <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
             <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
             <Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>"
                .to_owned(),
        ),
        (
            "_rels/.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
             <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/></Relationships>"
                .to_owned(),
        ),
        ("word/document.xml", document),
    ];
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in files {
            z.start_file(name, opts).expect("zip writer on a Vec cannot fail to start a file");
            z.write_all(content.as_bytes()).expect("zip writer on a Vec cannot fail to write");
        }
        z.finish().expect("zip writer on a Vec cannot fail to finish");
    }
    buf.into_inner()
}

/// UTF-16LE with a byte-order mark, as Windows Notepad used to save.
pub fn utf16le(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

/// The facts planted in `mixed_folder`, each in one file, so tests can ask for them.
pub const PDF_FACT: &str = "The quarterly revenue of the Heron division was 42 million dollars.";
pub const MD_FACT: &str = "Cairn fuses vector search and full text search with reciprocal rank fusion.";
pub const UTF16_FACT: &str = "Die Brücke über den Fluss Lachsbach ist dreihundert Meter lang.";
pub const DOCX_FACT: &str = "The lighthouse keeper logs the fog horn maintenance every Tuesday.";
pub const HTML_FACT: &str = "Sourdough starter needs feeding with rye flour twice a day.";
pub const ODD_NAME_FACT: &str = "The marmot colony hibernates under the scree slope from October.";
pub const ODD_NAME: &str = "it's a \"quoted\" name 😀.md";

/// A folder of mixed formats with good files (one fact each) and bad ones (corrupt DOCX,
/// binary bytes in a .txt, an empty file, an unsupported image).
pub fn mixed_folder(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("sub folder"))?;
    std::fs::write(
        dir.join("notes.md"),
        format!("# Project notes\n\n## Retrieval\n\n{MD_FACT}\n\n## Storage\n\nChunks live in LanceDB.\n"),
    )?;
    std::fs::write(dir.join("brücke.txt"), utf16le(&format!("{UTF16_FACT}\r\nZweite Zeile.\r\n")))?;
    std::fs::write(
        dir.join("sub folder/bread.html"),
        format!(
            "<html><head><title>Baking</title><script>var secret = 'do not index';</script></head>\
             <body><h1>Bread</h1><p>{HTML_FACT}</p><table><tr><th>Flour</th><th>Grams</th></tr>\
             <tr><td>Rye</td><td>50</td></tr></table></body></html>"
        ),
    )?;
    std::fs::write(dir.join("keeper.docx"), docx(&["# Lighthouse", "## Duties", DOCX_FACT]))?;
    std::fs::write(dir.join("report.pdf"), pdf(&[&["Heron annual report", "Introduction page."], &[PDF_FACT]]))?;
    std::fs::write(dir.join(ODD_NAME), format!("# Marmots\n\n{ODD_NAME_FACT}\n"))?;
    let good = docx(&["# Broken", "This text must never be indexed from a truncated file."]);
    std::fs::write(dir.join("broken.docx"), &good[..good.len() / 2])?;
    let mut garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    garbage[10] = 0;
    std::fs::write(dir.join("garbage.txt"), garbage)?;
    std::fs::write(dir.join("empty.txt"), b"")?;
    std::fs::write(dir.join("photo.png"), [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A])?;
    Ok(())
}
