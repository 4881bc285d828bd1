//! Zip-packaged documents (DOCX, XLSX, ODS, PPTX, ODT, EPUB): opening the archive, reading its
//! parts with a size bound, telling an encrypted or legacy binary Office file from a damaged one,
//! and the small XML helpers the package formats share.
//!
//! Deliberately bounded: no part is read past `MAX_PART_BYTES` unpacked and no archive past
//! `MAX_TOTAL_BYTES` in all, so a zip bomb is refused instead of filling memory.

use crate::ParseError;
use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use std::io::{Cursor, Read};

/// Largest part read from an archive, unpacked.
pub(crate) const MAX_PART_BYTES: u64 = 256 * 1024 * 1024;

/// Most bytes read from one archive's parts in all, unpacked.
pub(crate) const MAX_TOTAL_BYTES: u64 = 1024 * 1024 * 1024;

/// Magic bytes of an OLE compound file: legacy `.doc`/`.xls`/`.ppt`, or an encrypted OOXML file.
const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

pub(crate) struct Package<'a> {
    archive: zip::ZipArchive<Cursor<&'a [u8]>>,
    /// User-facing format name, e.g. `"PPTX"`.
    format: &'static str,
    read: u64,
    /// Largest part read, unpacked (`MAX_PART_BYTES` except in tests).
    max_part: u64,
}

impl<'a> Package<'a> {
    /// Opens `bytes` as a zip archive. `legacy` names what an OLE compound file with this
    /// extension is when it is not encrypted, e.g. `"a legacy PowerPoint .ppt file"`.
    pub(crate) fn open(bytes: &'a [u8], format: &'static str, legacy: &str) -> Result<Self, ParseError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ParseError::Empty);
        }
        if bytes.starts_with(&CFB_MAGIC[..4]) {
            return Err(ole_error(bytes, format, legacy));
        }
        let archive = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| ParseError::Corrupt(format!("corrupt {format}: {e}")))?;
        Ok(Package { archive, format, read: 0, max_part: MAX_PART_BYTES })
    }

    /// A `Corrupt` error naming this package's format.
    pub(crate) fn corrupt(&self, detail: impl std::fmt::Display) -> ParseError {
        ParseError::Corrupt(format!("corrupt {}: {detail}", self.format))
    }

    /// Names of all parts, in archive order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.archive.file_names().map(str::to_owned).collect()
    }

    /// The raw bytes of part `name`, `None` when there is no such part.
    pub(crate) fn bytes(&mut self, name: &str) -> Result<Option<Vec<u8>>, ParseError> {
        let format = self.format;
        let file = match self.archive.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(zip::result::ZipError::UnsupportedArchive(m)) if m.contains("ncrypt") || m.contains("assword") => {
                return Err(ParseError::Encrypted { format });
            }
            Err(e) => return Err(ParseError::Corrupt(format!("corrupt {format}: {name}: {e}"))),
        };
        let budget = self.max_part.min(MAX_TOTAL_BYTES.saturating_sub(self.read));
        let mut raw = Vec::new();
        file.take(budget.saturating_add(1))
            .read_to_end(&mut raw)
            .map_err(|e| ParseError::Corrupt(format!("corrupt {format}: {name}: {e}")))?;
        let len = raw.len() as u64;
        if len > budget {
            return Err(ParseError::Unsupported(format!(
                "{format} too large: {name} unpacks to more than {}",
                size(budget)
            )));
        }
        self.read += len;
        Ok(Some(raw))
    }

    /// Part `name` as text (UTF-8, invalid sequences replaced), `None` when missing.
    pub(crate) fn text(&mut self, name: &str) -> Result<Option<String>, ParseError> {
        Ok(self.bytes(name)?.map(|raw| match String::from_utf8(raw) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }))
    }

    /// Part `name` as text; a missing part makes the package corrupt.
    pub(crate) fn required(&mut self, name: &str) -> Result<String, ParseError> {
        match self.text(name)? {
            Some(text) => Ok(text),
            None => Err(self.corrupt(format!("missing {name}"))),
        }
    }

    /// OpenDocument packages list encrypted parts in `META-INF/manifest.xml`.
    pub(crate) fn odf_encrypted(&mut self) -> Result<bool, ParseError> {
        Ok(self.text("META-INF/manifest.xml")?.is_some_and(|m| m.contains("encryption-data")))
    }
}

/// `256 MiB`, `64 KiB`, `12 bytes`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{} MiB", b / (1024 * 1024)),
        b if b >= 1024 => format!("{} KiB", b / 1024),
        b => format!("{b} bytes"),
    }
}

/// An OLE compound file where a zip package was expected: encrypted OOXML files are stored this
/// way (with an `EncryptedPackage` stream), as are the legacy binary Office formats.
fn ole_error(bytes: &[u8], format: &'static str, legacy: &str) -> ParseError {
    let marker: Vec<u8> = "EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes).collect();
    if bytes.windows(marker.len()).any(|w| w == marker.as_slice()) {
        ParseError::Encrypted { format }
    } else {
        ParseError::Unsupported(format!("not a {format}: {legacy}"))
    }
}

/// The text of the first element named `local` (namespace prefix ignored), whitespace
/// collapsed; used for `dc:title` in `docProps/core.xml`, ODF `meta.xml` and EPUB's OPF.
pub(crate) fn element_text(xml: &str, local: &[u8]) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.local_name().as_ref() == local => inside = true,
            Event::End(e) if e.local_name().as_ref() == local => break,
            Event::Text(t) if inside => text.push_str(&t.decode().ok()?),
            Event::CData(t) if inside => text.push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) if inside => text.push_str(&entity(&r)),
            Event::Eof => break,
            _ => {}
        }
    }
    let text = collapse(&text);
    (!text.is_empty()).then_some(text)
}

/// `&amp;`, `&#233;` and friends.
pub(crate) fn entity(r: &BytesRef<'_>) -> String {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return c.to_string();
    }
    let name = r.decode().unwrap_or_default();
    quick_xml::escape::resolve_xml_entity(&name).unwrap_or_default().to_owned()
}

/// The value of the attribute whose local name is `local` (namespace prefix ignored).
pub(crate) fn attr(e: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    e.attributes().flatten().find(|a| a.key.local_name().as_ref() == local).map(|a| {
        a.unescape_value().map(|v| v.into_owned()).unwrap_or_else(|_| String::from_utf8_lossy(&a.value).into_owned())
    })
}

/// Whitespace runs become one space; ends trimmed.
pub(crate) fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lines trimmed at the end, blank lines at both ends dropped, and the whole trimmed.
pub(crate) fn tidy_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim_end).collect();
    lines.join("\n").trim().to_owned()
}

/// A zip part path relative to the part `base` (`ppt/slides/slide1.xml` + `../media/x.png`).
/// Absolute targets (`/ppt/slides/slide1.xml`) are taken from the package root.
pub(crate) fn resolve(base: &str, target: &str) -> String {
    let target = target.split(['#', '?']).next().unwrap_or_default();
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut dir: Vec<&str> = base.split('/').collect();
        dir.pop();
        dir
    };
    for piece in target.split('/') {
        match piece {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// `%20` and friends in a URL path (EPUB hrefs); invalid escapes are kept as written.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Some(v) = std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `rId` to target of a `.rels` part, targets resolved against `source` (the part the
/// relationships belong to). Only relationships whose type ends with one of `kinds` are kept
/// when `kinds` is not empty.
pub(crate) fn relationships(xml: &str, source: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == b"Relationship" => {
                if attr(&e, b"TargetMode").is_some_and(|m| m.eq_ignore_ascii_case("External")) {
                    continue;
                }
                if let (Some(id), Some(target)) = (attr(&e, b"Id"), attr(&e, b"Target")) {
                    let kind = attr(&e, b"Type").unwrap_or_default();
                    let kind = kind.rsplit('/').next().unwrap_or_default().to_owned();
                    out.push((id, kind, resolve(source, &target)));
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

/// The `.rels` part that holds the relationships of `part`.
pub(crate) fn rels_path(part: &str) -> String {
    match part.rsplit_once('/') {
        Some((dir, file)) => format!("{dir}/_rels/{file}.rels"),
        None => format!("_rels/{part}.rels"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A zip archive of the given parts, built in memory.
    pub(crate) fn zip(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        for (name, data) in parts {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn paths_resolve_like_a_package_reader() {
        assert_eq!(resolve("ppt/presentation.xml", "slides/slide1.xml"), "ppt/slides/slide1.xml");
        assert_eq!(resolve("ppt/slides/slide1.xml", "../notesSlides/n1.xml"), "ppt/notesSlides/n1.xml");
        assert_eq!(resolve("ppt/slides/slide1.xml", "/ppt/media/a.png"), "ppt/media/a.png");
        assert_eq!(resolve("OEBPS/content.opf", "text/ch%201.xhtml#top"), "OEBPS/text/ch%201.xhtml");
        assert_eq!(resolve("content.opf", "../../x.xhtml"), "x.xhtml");
        assert_eq!(percent_decode("ch%201%E2%80%94b%zz%"), "ch 1—b%zz%");
        assert_eq!(rels_path("ppt/slides/slide3.xml"), "ppt/slides/_rels/slide3.xml.rels");
    }

    #[test]
    fn ole_files_are_encrypted_or_legacy() {
        let mut encrypted = CFB_MAGIC.to_vec();
        encrypted.extend([0u8; 100]);
        encrypted.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
        assert!(matches!(Package::open(&encrypted, "XLSX", "a legacy .xls"), Err(ParseError::Encrypted { .. })));
        let legacy = [CFB_MAGIC.as_slice(), &[0u8; 600]].concat();
        let err = Package::open(&legacy, "PPTX", "a legacy PowerPoint .ppt file").err().unwrap();
        assert_eq!(err.to_string(), "not a PPTX: a legacy PowerPoint .ppt file");
    }

    #[test]
    fn oversized_parts_are_refused() {
        // Zeros compress about a thousandfold: a small zip bomb against a lowered limit.
        let bytes = zip(&[("small.xml", b"<x/>"), ("big.xml", &vec![0u8; 3 * 1024 * 1024])]);
        assert!(bytes.len() < 64 * 1024);
        let mut pkg = Package::open(&bytes, "ODT", "").unwrap();
        pkg.max_part = 1024 * 1024;
        assert_eq!(pkg.text("small.xml").unwrap().as_deref(), Some("<x/>"));
        assert_eq!(pkg.text("missing.xml").unwrap(), None);
        let err = pkg.bytes("big.xml").unwrap_err();
        assert_eq!(err.to_string(), "ODT too large: big.xml unpacks to more than 1 MiB");
    }
}
