//! PPTX (Office Open XML presentations): slides in presentation order (`ppt/presentation.xml`
//! and its relationships; `slideN.xml` numbering when those are missing), one block per text
//! shape (a line per paragraph) and per table row (`cell | cell`), anchored to the 1-based slide
//! number as its page and headed by the slide's title placeholder. Speaker notes follow their
//! slide as a `Notes: ...` block. The title is `dc:title`, else the first slide's title.
//!
//! Deliberately not a renderer: layouts and masters (their placeholder prompts), charts,
//! SmartArt, images and comments are not read, and text order is shape order on the slide.

use crate::ParseError;
use crate::package::{Package, attr, collapse, element_text, entity, relationships, rels_path, tidy_lines};
use cairn_core::{Anchor, Block, Document};
use quick_xml::Reader;
use quick_xml::events::Event;

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    let mut package = Package::open(bytes, "PPTX", "a legacy PowerPoint .ppt file")?;
    let slides = slide_order(&mut package)?;
    if slides.is_empty() {
        return Err(package.corrupt("no slides found"));
    }
    let core_title = package.text("docProps/core.xml")?.and_then(|x| element_text(&x, b"title"));
    let mut blocks = Vec::new();
    let mut first_title = None;
    let mut warnings = Vec::new();
    for (i, path) in slides.iter().enumerate() {
        let number = u32::try_from(i).unwrap_or(u32::MAX - 1).saturating_add(1);
        let Some(xml) = package.text(path)? else {
            warnings.push(format!("slide {number} is missing ({path})"));
            continue;
        };
        let slide = read_shapes(&xml).map_err(|e| package.corrupt(format!("{path}: {e}")))?;
        let title = slide.iter().find(|s| s.title).map(|s| collapse(&s.text)).filter(|t| !t.is_empty());
        if first_title.is_none() {
            first_title.clone_from(&title);
        }
        let heading: Vec<String> = title.iter().cloned().collect();
        let anchor = Anchor { page: Some(number), heading: heading.clone(), ..Default::default() };
        let before = blocks.len();
        for shape in slide.iter().filter(|s| !s.title) {
            let text = tidy_lines(&shape.text);
            if !text.is_empty() {
                blocks.push(Block { text, anchor: anchor.clone() });
            }
        }
        if let Some(notes) = notes_path(&mut package, path)?
            && let Some(xml) = package.text(&notes)?
        {
            let notes = read_shapes(&xml).map_err(|e| package.corrupt(format!("{notes}: {e}")))?;
            let text: Vec<String> =
                notes.iter().filter(|s| s.body).map(|s| tidy_lines(&s.text)).filter(|t| !t.is_empty()).collect();
            if !text.is_empty() {
                blocks.push(Block { text: format!("Notes: {}", text.join("\n")), anchor: anchor.clone() });
            }
        }
        if blocks.len() == before
            && let Some(title) = title
        {
            // A title-only slide (a section divider) still says something.
            blocks.push(Block { text: title, anchor });
        }
    }
    let doc = Document { title: core_title.or(first_title), blocks, warnings };
    if doc.is_empty() {
        return Err(ParseError::NoText { format: "PPTX" });
    }
    Ok(doc)
}

/// Slide part paths in presentation order.
fn slide_order(package: &mut Package<'_>) -> Result<Vec<String>, ParseError> {
    let main = "ppt/presentation.xml";
    if let (Some(xml), Some(rels)) = (package.text(main)?, package.text(&rels_path(main))?) {
        let targets = relationships(&rels, main);
        let mut order = Vec::new();
        let mut reader = Reader::from_str(&xml);
        loop {
            match reader.read_event() {
                Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == b"sldId" => {
                    if let Some(id) = attr_qualified(&e)
                        && let Some((_, _, target)) = targets.iter().find(|(rid, _, _)| *rid == id)
                    {
                        order.push(target.clone());
                    }
                }
                Ok(Event::Eof) => break,
                Err(e) => return Err(package.corrupt(format!("{main}: {e}"))),
                _ => {}
            }
        }
        if !order.is_empty() {
            return Ok(order);
        }
    }
    // No usable presentation part: slide1.xml, slide2.xml, ... by number.
    let mut numbered: Vec<(u32, String)> = package
        .names()
        .into_iter()
        .filter_map(|n| {
            let number = n.strip_prefix("ppt/slides/slide")?.strip_suffix(".xml")?.parse().ok()?;
            Some((number, n))
        })
        .collect();
    numbered.sort();
    Ok(numbered.into_iter().map(|(_, n)| n).collect())
}

/// `r:id` of a `p:sldId` (its plain `id` attribute is a number, not the relationship).
fn attr_qualified(e: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref().ends_with(b":id"))
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

/// The notes slide of a slide, from the slide's relationships.
fn notes_path(package: &mut Package<'_>, slide: &str) -> Result<Option<String>, ParseError> {
    let Some(rels) = package.text(&rels_path(slide))? else { return Ok(None) };
    Ok(relationships(&rels, slide).into_iter().find(|(_, kind, _)| kind == "notesSlide").map(|(_, _, t)| t))
}

#[derive(Default)]
struct Shape {
    text: String,
    /// A title or centred-title placeholder.
    title: bool,
    /// A body placeholder (on a notes slide: the notes themselves).
    body: bool,
}

/// Text shapes and table rows of a slide (or notes slide), in document order.
fn read_shapes(xml: &str) -> Result<Vec<Shape>, String> {
    let mut reader = Reader::from_str(xml);
    let mut shapes: Vec<Shape> = Vec::new();
    let mut current: Option<Shape> = None;
    let mut depth_sp = 0usize;
    let mut in_text = false;
    let mut row: Option<Vec<String>> = None;
    let mut cell: Option<String> = None;
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(e) if e.local_name().as_ref() == b"sp" => {
                depth_sp += 1;
                if depth_sp == 1 {
                    current = Some(Shape::default());
                }
            }
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"ph" => {
                    if let Some(shape) = current.as_mut() {
                        // A placeholder without a type is a body placeholder.
                        let kind = attr(&e, b"type").unwrap_or_else(|| "body".to_owned());
                        shape.title = matches!(kind.as_str(), "title" | "ctrTitle");
                        shape.body = kind == "body";
                    }
                }
                b"t" => in_text = true,
                b"br" => push(&mut current, &mut cell, "\n"),
                b"tab" => push(&mut current, &mut cell, "\t"),
                b"tr" => row = Some(Vec::new()),
                b"tc" => cell = Some(String::new()),
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                b"sp" => {
                    depth_sp = depth_sp.saturating_sub(1);
                    if depth_sp == 0
                        && let Some(shape) = current.take()
                    {
                        shapes.push(shape);
                    }
                }
                b"t" => in_text = false,
                b"p" => push(&mut current, &mut cell, "\n"),
                b"tc" => {
                    if let (Some(row), Some(c)) = (row.as_mut(), cell.take()) {
                        row.push(collapse(&c));
                    }
                }
                b"tr" => {
                    if let Some(cells) = row.take() {
                        let cells: Vec<String> = cells.into_iter().filter(|c| !c.is_empty()).collect();
                        if !cells.is_empty() {
                            shapes.push(Shape { text: cells.join(" | "), ..Default::default() });
                        }
                    }
                }
                _ => {}
            },
            Event::Text(t) if in_text => {
                let text = t.decode().map_err(|e| e.to_string())?;
                push(&mut current, &mut cell, &text);
            }
            Event::GeneralRef(r) if in_text => push(&mut current, &mut cell, &entity(&r)),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(shapes)
}

fn push(shape: &mut Option<Shape>, cell: &mut Option<String>, text: &str) {
    if let Some(cell) = cell.as_mut() {
        cell.push_str(if text == "\n" { " " } else { text });
    } else if let Some(shape) = shape.as_mut() {
        shape.text.push_str(text);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::package::tests::zip;

    const NS: &str = r#"xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships""#;

    /// A text shape; `ph` is its placeholder type (`Some("")` for a typeless body placeholder).
    pub(crate) fn shape(ph: Option<&str>, paragraphs: &[&str]) -> String {
        let ph = match ph {
            Some("") => "<p:ph idx=\"1\"/>".to_owned(),
            Some(t) => format!(r#"<p:ph type="{t}"/>"#),
            None => String::new(),
        };
        let paras: String =
            paragraphs.iter().map(|p| format!("<a:p><a:r><a:rPr lang=\"en\"/><a:t>{p}</a:t></a:r></a:p>")).collect();
        format!(
            r#"<p:sp><p:nvSpPr><p:cNvPr id="2" name="s"/><p:cNvSpPr/><p:nvPr>{ph}</p:nvPr></p:nvSpPr><p:txBody><a:bodyPr/>{paras}</p:txBody></p:sp>"#
        )
    }

    /// A PPTX whose slides (shape xml, optional notes) are listed in `order` (indexes into
    /// `slides`; slide files are numbered by index).
    pub(crate) fn pptx(slides: &[(String, Option<&str>)], order: &[usize]) -> Vec<u8> {
        let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
        let mut ids = String::new();
        let mut rels = String::new();
        for (k, &i) in order.iter().enumerate() {
            ids.push_str(&format!(r#"<p:sldId id="{}" r:id="rId{}"/>"#, 256 + k, 10 + i));
        }
        for (i, (body, notes)) in slides.iter().enumerate() {
            let n = i + 1;
            rels.push_str(&format!(
                r#"<Relationship Id="rId{}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="slides/slide{n}.xml"/>"#,
                10 + i
            ));
            parts.push((
                format!("ppt/slides/slide{n}.xml"),
                format!(r#"<?xml version="1.0"?><p:sld {NS}><p:cSld><p:spTree>{body}</p:spTree></p:cSld></p:sld>"#)
                    .into_bytes(),
            ));
            if let Some(notes) = notes {
                parts.push((
                    format!("ppt/slides/_rels/slide{n}.xml.rels"),
                    format!(r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slideLayout" Target="../slideLayouts/slideLayout1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide" Target="../notesSlides/notesSlide{n}.xml"/></Relationships>"#).into_bytes(),
                ));
                let notes_body =
                    [shape(Some("sldImg"), &[]), shape(Some("body"), &[notes]), shape(Some("sldNum"), &["7"])].concat();
                parts.push((
                    format!("ppt/notesSlides/notesSlide{n}.xml"),
                    format!(r#"<?xml version="1.0"?><p:notes {NS}><p:cSld><p:spTree>{notes_body}</p:spTree></p:cSld></p:notes>"#).into_bytes(),
                ));
            }
        }
        parts.push((
            "ppt/presentation.xml".into(),
            format!(r#"<?xml version="1.0"?><p:presentation {NS}><p:sldIdLst>{ids}</p:sldIdLst></p:presentation>"#)
                .into_bytes(),
        ));
        parts.push((
            "ppt/_rels/presentation.xml.rels".into(),
            format!(r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>"#).into_bytes(),
        ));
        let refs: Vec<(&str, &[u8])> = parts.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        zip(&refs)
    }

    /// Each expected block: slide number, heading path, text.
    fn check(bytes: &[u8], title: Option<&str>, expected: &[(u32, &[&str], &str)]) {
        let doc = parse(bytes).unwrap();
        assert_eq!(doc.title.as_deref(), title);
        let got: Vec<(u32, Vec<String>, String)> =
            doc.blocks.iter().map(|b| (b.anchor.page.unwrap(), b.anchor.heading.clone(), b.text.clone())).collect();
        let want: Vec<(u32, Vec<String>, String)> =
            expected.iter().map(|(p, h, t)| (*p, h.iter().map(|s| s.to_string()).collect(), t.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn slides_follow_presentation_order_with_titles_and_notes() {
        let table = r#"<p:graphicFrame><a:graphic><a:graphicData><a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:t>Region</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>Q1</a:t></a:r></a:p></a:txBody></a:tc></a:tr><a:tr><a:tc><a:txBody><a:p><a:r><a:t>West</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>1,200</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl></a:graphicData></a:graphic></p:graphicFrame>"#;
        let slides = vec![
            // File slide1 is shown second.
            (
                [
                    shape(Some("title"), &["Results"]),
                    shape(Some(""), &["Up 5%", "Costs &amp; risks"]),
                    table.to_owned(),
                ]
                .concat(),
                Some("Mention the West."),
            ),
            ([shape(Some("ctrTitle"), &["Quarterly Review"]), shape(Some("subTitle"), &["Q1 2024"])].concat(), None),
            (shape(Some("title"), &["Questions?"]), None),
        ];
        check(
            &pptx(&slides, &[1, 0, 2]),
            Some("Quarterly Review"),
            &[
                (1, &["Quarterly Review"], "Q1 2024"),
                (2, &["Results"], "Up 5%\nCosts & risks"),
                (2, &["Results"], "Region | Q1"),
                (2, &["Results"], "West | 1,200"),
                (2, &["Results"], "Notes: Mention the West."),
                (3, &["Questions?"], "Questions?"),
            ],
        );
    }

    #[test]
    fn without_presentation_part_slides_go_by_number() {
        let parts: Vec<(String, Vec<u8>)> = [10, 2]
            .iter()
            .map(|n| {
                (
                    format!("ppt/slides/slide{n}.xml"),
                    format!(
                        r#"<p:sld {NS}><p:cSld><p:spTree>{}</p:spTree></p:cSld></p:sld>"#,
                        shape(None, &[&format!("text {n}")])
                    )
                    .into_bytes(),
                )
            })
            .collect();
        let refs: Vec<(&str, &[u8])> = parts.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        check(&zip(&refs), None, &[(1, &[], "text 2"), (2, &[], "text 10")]);
    }

    #[test]
    fn broken_and_empty_presentations_are_errors() {
        let good = pptx(&[(shape(None, &["hello"]), None)], &[0]);
        let err = parse(&good[..good.len() / 2]).unwrap_err();
        assert!(err.to_string().starts_with("corrupt PPTX: "), "{err}");
        assert_eq!(parse(&zip(&[("a.xml", b"<x/>")])).unwrap_err().to_string(), "corrupt PPTX: no slides found");
        assert_eq!(parse(&pptx(&[(shape(None, &[" "]), None)], &[0])).unwrap_err().code(), "empty");
        let broken = pptx(&[("<p:sp><a:t>unclosed".to_owned(), None)], &[0]);
        assert_eq!(parse(&broken).unwrap_err().code(), "corrupt");
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
    }
}
