//! EPUB: `META-INF/container.xml` names the package document (OPF), whose spine gives the
//! reading order; each XHTML chapter is read by the HTML parser, so blocks carry the chapter's
//! own heading path (or the chapter's `<title>` when it has no headings). The title is the OPF's
//! `dc:title`.
//!
//! Deliberately no page anchors (reflowable books have no pages) and no navigation documents,
//! styles, images or fonts. DRM-protected books (chapters listed in `META-INF/encryption.xml`)
//! are `Encrypted`; obfuscated fonts alone are not.

use crate::ParseError;
use crate::html;
use crate::package::{Package, attr, element_text, percent_decode, resolve};
use cairn_core::Document;
use quick_xml::Reader;
use quick_xml::events::Event;
use std::collections::{HashMap, HashSet};

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    let mut package = Package::open(bytes, "EPUB", "not a zip archive")?;
    let container = package.required("META-INF/container.xml")?;
    let opf_path = first_attr(&container, b"rootfile", b"full-path")
        .map(|p| percent_decode(&p))
        .ok_or_else(|| package.corrupt("META-INF/container.xml names no package document"))?;
    let opf = package.required(&opf_path)?;
    let title = element_text(&opf, b"title");
    let chapters = spine(&opf, &opf_path).map_err(|e| package.corrupt(format!("{opf_path}: {e}")))?;
    if chapters.is_empty() {
        return Err(package.corrupt(format!("{opf_path}: the spine lists no chapters")));
    }
    let encrypted = match package.text("META-INF/encryption.xml")? {
        Some(xml) => encrypted_parts(&xml),
        None => HashSet::new(),
    };
    if chapters.iter().any(|c| encrypted.contains(c)) {
        return Err(ParseError::Encrypted { format: "EPUB" });
    }

    let mut doc = Document { title, blocks: Vec::new(), warnings: Vec::new() };
    let mut missing = Vec::new();
    for path in &chapters {
        let Some(raw) = package.bytes(path)? else {
            missing.push(path.clone());
            continue;
        };
        // Cover pages and image-only chapters have no text: nothing to add, nothing wrong.
        let Ok(chapter) = html::parse(&raw) else { continue };
        let name = chapter.title.filter(|t| Some(t) != doc.title.as_ref());
        for mut block in chapter.blocks {
            if block.anchor.heading.is_empty()
                && let Some(name) = &name
            {
                block.anchor.heading = vec![name.clone()];
            }
            doc.blocks.push(block);
        }
        for w in chapter.warnings {
            if !doc.warnings.contains(&w) {
                doc.warnings.push(w);
            }
        }
    }
    if !missing.is_empty() {
        doc.warnings.push(format!("missing chapters: {}", missing.join(", ")));
    }
    if doc.is_empty() {
        return Err(ParseError::NoText { format: "EPUB" });
    }
    Ok(doc)
}

/// The value of attribute `name` on the first element named `element`.
fn first_attr(xml: &str, element: &[u8], name: &[u8]) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == element => return attr(&e, name),
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

/// Paths of the spine's (X)HTML documents, in reading order.
fn spine(opf: &str, opf_path: &str) -> Result<Vec<String>, String> {
    let mut items: HashMap<String, (String, String)> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut reader = Reader::from_str(opf);
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"item" => {
                    if let (Some(id), Some(href)) = (attr(&e, b"id"), attr(&e, b"href")) {
                        let media = attr(&e, b"media-type").unwrap_or_default();
                        items.insert(id, (resolve(opf_path, &percent_decode(&href)), media));
                    }
                }
                b"itemref" => order.extend(attr(&e, b"idref")),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    let mut seen = HashSet::new();
    Ok(order
        .iter()
        .filter_map(|id| items.get(id))
        .filter(|(path, media)| {
            media.contains("html") || media.is_empty() && (path.ends_with("html") || path.ends_with(".htm"))
        })
        .map(|(path, _)| path.clone())
        .filter(|path| seen.insert(path.clone()))
        .collect())
}

/// Parts listed as encrypted in `META-INF/encryption.xml`, except obfuscated fonts.
fn encrypted_parts(xml: &str) -> HashSet<String> {
    let mut parts = HashSet::new();
    let mut reader = Reader::from_str(xml);
    let mut font_obfuscation = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => match e.local_name().as_ref() {
                b"EncryptedData" => font_obfuscation = false,
                b"EncryptionMethod" => {
                    let algorithm = attr(&e, b"Algorithm").unwrap_or_default();
                    font_obfuscation =
                        algorithm.contains("idpf.org/2008/embedding") || algorithm.contains("ns.adobe.com/pdf/enc#RC");
                }
                b"CipherReference" if !font_obfuscation => {
                    if let Some(uri) = attr(&e, b"URI") {
                        parts.insert(resolve("", &percent_decode(&uri)));
                    }
                }
                _ => {}
            },
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    parts
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::package::tests::zip;

    /// An EPUB with the given (file name, XHTML body) chapters in spine order, under `OEBPS/`.
    pub(crate) fn epub(chapters: &[(&str, &str)], title: Option<&str>, encryption: Option<&str>) -> Vec<u8> {
        let mut manifest = String::new();
        let mut spine = String::new();
        let mut parts: Vec<(String, Vec<u8>)> = vec![
            ("mimetype".into(), b"application/epub+zip".to_vec()),
            (
                "META-INF/container.xml".into(),
                br#"<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"#.to_vec(),
            ),
        ];
        for (i, (name, body)) in chapters.iter().enumerate() {
            let href = name.replace(' ', "%20");
            manifest.push_str(&format!(r#"<item id="c{i}" href="text/{href}" media-type="application/xhtml+xml"/>"#));
            spine.push_str(&format!(r#"<itemref idref="c{i}"/>"#));
            parts.push((
                format!("OEBPS/text/{name}"),
                format!(r#"<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>{name}</title></head><body>{body}</body></html>"#).into_bytes(),
            ));
        }
        let title = title.map(|t| format!("<dc:title>{t}</dc:title>")).unwrap_or_default();
        parts.push((
            "OEBPS/content.opf".into(),
            format!(
                r#"<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">{title}</metadata><manifest><item id="css" href="style.css" media-type="text/css"/>{manifest}</manifest><spine>{spine}</spine></package>"#
            )
            .into_bytes(),
        ));
        if let Some(enc) = encryption {
            parts.push(("META-INF/encryption.xml".into(), enc.as_bytes().to_vec()));
        }
        let refs: Vec<(&str, &[u8])> = parts.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        zip(&refs)
    }

    fn check(bytes: &[u8], title: Option<&str>, expected: &[(&str, &[&str])]) {
        crate::assert_blocks(&parse(bytes).unwrap(), title, expected);
    }

    #[test]
    fn spine_order_and_chapter_headings() {
        let book = epub(
            &[
                ("cover.xhtml", r#"<img src="cover.jpg"/>"#),
                ("ch 1.xhtml", "<h1>Chapter One</h1><p>It was a dark night.</p><h2>Storm</h2><p>Rain fell.</p>"),
                ("notes.xhtml", "<p>Untitled chapter text.</p>"),
            ],
            Some("The Book"),
            None,
        );
        check(
            &book,
            Some("The Book"),
            &[
                ("It was a dark night.", &["Chapter One"]),
                ("Rain fell.", &["Chapter One", "Storm"]),
                ("Untitled chapter text.", &["notes.xhtml"]),
            ],
        );
    }

    #[test]
    fn drm_is_encrypted_but_obfuscated_fonts_are_fine() {
        let drm = r#"<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/><enc:CipherData><enc:CipherReference URI="OEBPS/text/a.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>"#;
        let err = parse(&epub(&[("a.xhtml", "<p>x</p>")], None, Some(drm))).unwrap_err();
        assert_eq!(err.to_string(), "encrypted EPUB (password required)");
        let fonts = r#"<encryption xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/><enc:CipherData><enc:CipherReference URI="OEBPS/font.otf"/></enc:CipherData></enc:EncryptedData></encryption>"#;
        check(&epub(&[("a.xhtml", "<p>x</p>")], None, Some(fonts)), None, &[("x", &["a.xhtml"])]);
    }

    #[test]
    fn broken_books_are_errors() {
        let good = epub(&[("a.xhtml", "<p>hello</p>")], None, None);
        let err = parse(&good[..good.len() / 2]).unwrap_err();
        assert!(err.to_string().starts_with("corrupt EPUB: "), "{err}");
        assert_eq!(
            parse(&zip(&[("mimetype", b"application/epub+zip")])).unwrap_err().to_string(),
            "corrupt EPUB: missing META-INF/container.xml"
        );
        let no_opf = zip(&[(
            "META-INF/container.xml",
            br#"<container><rootfiles><rootfile full-path="x.opf"/></rootfiles></container>"#,
        )]);
        assert_eq!(parse(&no_opf).unwrap_err().to_string(), "corrupt EPUB: missing x.opf");
        assert_eq!(
            parse(&epub(&[], None, None)).unwrap_err().to_string(),
            "corrupt EPUB: OEBPS/content.opf: the spine lists no chapters"
        );
        assert_eq!(parse(&epub(&[("a.xhtml", "<img src='x'/>")], None, None)).unwrap_err().code(), "empty");
    }
}
