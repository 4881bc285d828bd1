//! E-mail (`.eml`: one RFC 5322 message with MIME parts), read by mail-parser: a first block
//! with the header summary (From, To, Cc, Date, Subject), then the body (the text/plain part,
//! else the HTML part read by the HTML parser), then a block naming the attachments. Attachments
//! that are plain text or Markdown are read as blocks under their file name, and an attached
//! message (message/rfc822, a forward) is read the same way under its subject. The title is the
//! Subject. Transfer encodings (quoted-printable, base64), charsets and RFC 2047 encoded words
//! are decoded by mail-parser.
//!
//! Deliberately not a mail client: other attachments (PDF, Office files, images, calendar
//! invitations) are listed and named in a warning but not read; quoted replies (`> ...`) stay as
//! written; blocks have no line anchors (a body's lines are not the file's lines). Outlook `.msg`
//! files are a different (OLE) format and are not read here.

use crate::ParseError;
use crate::package::collapse;
use crate::{html, markdown, text};
use cairn_core::{Anchor, Block, Document};
use mail_parser::{Addr, Address, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Attached messages read inside one another at most; deeper ones are listed only.
const MAX_NESTED: usize = 4;

/// Most attached messages (`message/rfc822` parts) in one file. mail-parser builds a nested
/// message as a tree that is dropped recursively, so thousands nested in one another would
/// overflow the stack; no real mail comes near this.
const MAX_ATTACHED_MESSAGES: usize = 256;

pub(crate) fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let bytes = skip_mbox_separator(bytes);
    if attached_messages(bytes) > MAX_ATTACHED_MESSAGES {
        return Err(ParseError::Unsupported(format!(
            "e-mail with more than {MAX_ATTACHED_MESSAGES} attached messages is not read"
        )));
    }
    let message = MessageParser::default().parse(bytes).filter(|m| m.headers().iter().any(is_message_header));
    let Some(message) = message else {
        return Err(ParseError::Corrupt(
            "corrupt e-mail: no message headers (From, To, Subject, Date) at the start of the file".into(),
        ));
    };
    let mut reader = Reader::default();
    reader.message(&message, &[], 0);
    let mut warnings = Vec::new();
    if !reader.not_read.is_empty() {
        warnings.push(format!(
            "attachments not read (only plain-text and Markdown ones are): {}",
            reader.not_read.join(", ")
        ));
    }
    if reader.damaged {
        warnings.push("part of the message is malformed MIME: its text was kept as found".to_owned());
    }
    if reader.too_deep {
        warnings.push(format!("attached messages nested more than {MAX_NESTED} deep were not read"));
    }
    let title = message.subject().map(collapse).filter(|s| !s.is_empty());
    let doc = Document { title, blocks: reader.blocks, warnings };
    if doc.is_empty() {
        return Err(ParseError::NoText { format: "e-mail" });
    }
    Ok(doc)
}

/// mbox files and some mail programs put a `From sender date` line above the headers.
fn skip_mbox_separator(bytes: &[u8]) -> &[u8] {
    if bytes.starts_with(b"From ")
        && let Some(end) = bytes.iter().position(|b| *b == b'\n')
    {
        return bytes.get(end + 1..).unwrap_or_default();
    }
    bytes
}

/// How often a part type of attached message (`message/rfc822`, `message/global`) is named.
fn attached_messages(bytes: &[u8]) -> usize {
    bytes
        .windows(8)
        .enumerate()
        .filter(|(_, w)| w.eq_ignore_ascii_case(b"message/"))
        .filter(|(i, _)| {
            let rest = bytes.get(i + 8..i + 14).unwrap_or_default();
            rest.eq_ignore_ascii_case(b"rfc822") || rest.eq_ignore_ascii_case(b"global")
        })
        .count()
}

fn is_message_header(h: &mail_parser::Header<'_>) -> bool {
    matches!(
        h.name,
        HeaderName::From
            | HeaderName::To
            | HeaderName::Cc
            | HeaderName::Bcc
            | HeaderName::Subject
            | HeaderName::Date
            | HeaderName::MessageId
            | HeaderName::Sender
            | HeaderName::ReplyTo
            | HeaderName::Received
            | HeaderName::ReturnPath
            | HeaderName::MimeVersion
            | HeaderName::InReplyTo
            | HeaderName::References
            | HeaderName::ContentType
    )
}

#[derive(Default)]
struct Reader {
    blocks: Vec<Block>,
    /// Attachments listed but not read, by name.
    not_read: Vec<String>,
    damaged: bool,
    too_deep: bool,
}

impl Reader {
    fn push(&mut self, text: String, heading: &[String]) {
        let text = text.trim().to_owned();
        if !text.is_empty() {
            self.blocks.push(Block { text, anchor: Anchor { heading: heading.to_vec(), ..Default::default() } });
        }
    }

    /// Header summary, body, attachments of `message`, under the heading path `heading`.
    fn message(&mut self, message: &Message<'_>, heading: &[String], depth: usize) {
        self.push(summary(message), heading);

        let body = if message.text_body.is_empty() { &message.html_body } else { &message.text_body };
        for id in body {
            let Some(part) = message.parts.get(*id as usize) else { continue };
            self.damaged |= part.is_encoding_problem;
            match &part.body {
                PartType::Text(text) => self.plain(text, heading),
                PartType::Html(html) => self.html(html, heading),
                _ => {}
            }
        }

        let mut names = Vec::new();
        let mut readable = Vec::new();
        for (i, id) in message.attachments.iter().enumerate() {
            let Some(part) = message.parts.get(*id as usize) else { continue };
            let name = part.attachment_name().map(collapse).filter(|n| !n.is_empty());
            let attached = part.content_disposition().is_some_and(|d| d.is_attachment());
            let embedded = part.content_id().is_some() || matches!(part.body, PartType::InlineBinary(_));
            if embedded && !attached
                || part.content_type().is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
            {
                // A picture shown inside the HTML body (a logo), not something the sender
                // attached; or the remains of a broken multipart structure.
                continue;
            }
            let name = name.unwrap_or_else(|| match &part.body {
                PartType::Message(m) => m.subject().map(collapse).unwrap_or_else(|| format!("message {}", i + 1)),
                _ => format!("unnamed {}", content_type(part)),
            });
            names.push(name.clone());
            match &part.body {
                PartType::Text(_) | PartType::Html(_) if is_readable_text(part, &name) => readable.push((name, part)),
                PartType::Message(_) if depth < MAX_NESTED => readable.push((name, part)),
                PartType::Message(_) => self.too_deep = true,
                _ => self.not_read.push(name),
            }
        }
        if !names.is_empty() {
            self.push(format!("Attachments: {}", names.join(", ")), heading);
        }
        for (name, part) in readable {
            let mut path = heading.to_vec();
            path.push(name);
            match &part.body {
                PartType::Message(inner) => self.message(inner, &path, depth + 1),
                PartType::Text(text) if is_markdown(part, &path) => self.markdown(text, &path),
                PartType::Text(text) => self.plain(text, &path),
                PartType::Html(html) => self.html(html, &path),
                _ => {}
            }
        }
    }

    /// Plain text: paragraphs split on blank lines.
    fn plain(&mut self, text: &str, heading: &[String]) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        for block in text::paragraphs(&text) {
            self.push(block.text, heading);
        }
    }

    fn html(&mut self, html: &str, heading: &[String]) {
        // An HTML body without visible text (only an image) adds nothing.
        let Ok(doc) = html::parse(html.as_bytes()) else { return };
        for block in doc.blocks {
            let path: Vec<String> = heading.iter().cloned().chain(block.anchor.heading).collect();
            self.push(block.text, &path);
        }
    }

    fn markdown(&mut self, text: &str, heading: &[String]) {
        for block in markdown::parse_str(text).blocks {
            let path: Vec<String> = heading.iter().cloned().chain(block.anchor.heading).collect();
            self.push(block.text, &path);
        }
    }
}

/// `type/subtype` of a part, `application/octet-stream` when it says nothing.
fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => "application/octet-stream".to_owned(),
    }
}

/// Attachments read as text: text/plain and Markdown (by type or file name).
fn is_readable_text(part: &MessagePart<'_>, name: &str) -> bool {
    let ct = content_type(part);
    let lower = name.to_ascii_lowercase();
    matches!(ct.as_str(), "text/plain" | "text/markdown" | "text/x-markdown")
        || [".txt", ".md", ".markdown"].iter().any(|ext| lower.ends_with(ext)) && ct.starts_with("text/")
}

fn is_markdown(part: &MessagePart<'_>, path: &[String]) -> bool {
    let lower = path.last().map(|n| n.to_ascii_lowercase()).unwrap_or_default();
    content_type(part).contains("markdown") || lower.ends_with(".md") || lower.ends_with(".markdown")
}

/// `From: Ann <ann@example.com>` and the other header lines a reader asks about.
fn summary(message: &Message<'_>) -> String {
    let mut lines = Vec::new();
    for (label, name) in [("From", HeaderName::From), ("To", HeaderName::To), ("Cc", HeaderName::Cc)] {
        let value = message
            .header_values(name)
            .filter_map(HeaderValue::as_address)
            .map(addresses)
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        if !value.is_empty() {
            lines.push(format!("{label}: {value}"));
        }
    }
    // The date as the sender's program wrote it (`Mon, 3 Jun 2024 10:00:00 +0200`).
    let date = message
        .headers()
        .iter()
        .find(|h| h.name == HeaderName::Date)
        // Offsets point into the whole buffer (`raw_message()` would be this part only).
        .and_then(|h| message.raw_message.get(h.offset_start as usize..h.offset_end as usize))
        .map(|raw| collapse(&String::from_utf8_lossy(raw)))
        .filter(|d| !d.is_empty());
    if let Some(date) = date.or_else(|| message.date().map(|d| d.to_rfc3339())) {
        lines.push(format!("Date: {date}"));
    }
    if let Some(subject) = message.subject().map(collapse).filter(|s| !s.is_empty()) {
        lines.push(format!("Subject: {subject}"));
    }
    lines.join("\n")
}

fn addresses(address: &Address<'_>) -> String {
    match address {
        Address::List(list) => join(list),
        Address::Group(groups) => groups
            .iter()
            .map(|g| match g.name.as_deref().map(collapse).filter(|n| !n.is_empty()) {
                Some(name) => format!("{name}: {}", join(&g.addresses)),
                None => join(&g.addresses),
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn join(list: &[Addr<'_>]) -> String {
    list.iter().map(addr).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ")
}

fn addr(a: &Addr<'_>) -> String {
    let name = a.name.as_deref().map(collapse).filter(|n| !n.is_empty());
    let address = a.address.as_deref().map(str::trim).filter(|e| !e.is_empty());
    match (name, address) {
        (Some(n), Some(e)) if n != e => format!("{n} <{e}>"),
        (_, Some(e)) => e.to_owned(),
        (Some(n), None) => n,
        (None, None) => String::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A message from header lines and a body, with CRLF line ends as mail servers store them.
    pub(crate) fn eml(headers: &[&str], body: &str) -> Vec<u8> {
        format!("{}\n\n{body}", headers.join("\n")).replace('\n', "\r\n").into_bytes()
    }

    fn check(bytes: &[u8], title: Option<&str>, expected: &[(&str, &[&str])]) -> Document {
        let doc = parse(bytes).unwrap();
        crate::assert_blocks(&doc, title, expected);
        doc
    }

    const HEADERS: &[&str] = &[
        "Return-Path: <billing@acme.example>",
        "From: =?UTF-8?B?TcO8bGxlcg==?= Billing <billing@acme.example>",
        "To: Ann <ann@example.com>, bob@example.com",
        "Cc: Team: carol@example.com, Dan <dan@example.com>;",
        "Date: Mon, 3 Jun 2024 10:00:00 +0200",
        "Subject: =?UTF-8?B?UmVjaG51bmcgZsO8ciBNw6Ryeg==?=",
        "Message-ID: <1@acme.example>",
        "MIME-Version: 1.0",
    ];

    const SUMMARY: &str = "From: Müller Billing <billing@acme.example>\nTo: Ann <ann@example.com>, bob@example.com\nCc: Team: carol@example.com, Dan <dan@example.com>\nDate: Mon, 3 Jun 2024 10:00:00 +0200\nSubject: Rechnung für März";

    #[test]
    fn headers_summary_and_quoted_printable_body() {
        let headers =
            [HEADERS, &["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"]]
                .concat();
        let body = "Hallo Ann,\n\nanbei die Rechnung f=C3=BCr M=C3=A4rz =E2=80=94 bitte bis zum =\nFreitag zahlen.\n\n> Am 1. Juni schrieb Ann:\n> Wo bleibt die Rechnung?\n";
        let doc = check(
            &eml(&headers, body),
            Some("Rechnung für März"),
            &[
                (SUMMARY, &[]),
                ("Hallo Ann,", &[]),
                ("anbei die Rechnung für März — bitte bis zum Freitag zahlen.", &[]),
                ("> Am 1. Juni schrieb Ann:\n> Wo bleibt die Rechnung?", &[]),
            ],
        );
        assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
        assert!(doc.blocks.iter().all(|b| b.anchor.line_start.is_none()));
    }

    #[test]
    fn legacy_charsets_and_base64_bodies_decode() {
        let doc = check(
            &[
                b"From: a@example.com\r\nSubject: =?ISO-8859-1?Q?Caf=E9_au_lait?=\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\nCaf\xe9 \x80 5\r\n".as_slice(),
            ]
            .concat(),
            Some("Café au lait"),
            &[("From: a@example.com\nSubject: Café au lait", &[]), ("Café € 5", &[])],
        );
        assert!(doc.warnings.is_empty());
        let b64 = eml(
            &[
                "From: a@example.com",
                "Subject: b64",
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: base64",
            ],
            "UmVjaG51bmcgZsO8ciBNw6Ryeg==\n",
        );
        check(&b64, Some("b64"), &[("From: a@example.com\nSubject: b64", &[]), ("Rechnung für März", &[])]);
    }

    #[test]
    fn alternative_parts_prefer_plain_text() {
        let body = concat!(
            "--alt\n",
            "Content-Type: text/plain; charset=utf-8\n\n",
            "Plain version of the news.\n",
            "--alt\n",
            "Content-Type: text/html; charset=utf-8\n\n",
            "<p>HTML version with <b>bold</b> news.</p>\n",
            "--alt--\n",
        );
        check(
            &eml(
                &["From: news@example.com", "Subject: News", "Content-Type: multipart/alternative; boundary=alt"],
                body,
            ),
            Some("News"),
            &[("From: news@example.com\nSubject: News", &[]), ("Plain version of the news.", &[])],
        );
    }

    #[test]
    fn html_only_mail_is_read_as_html() {
        let body = "PGh0bWw+PGhlYWQ+PHRpdGxlPklnbm9yZWQ8L3RpdGxlPjxzY3JpcHQ+dHJhY2soKTwvc2NyaXB0PjwvaGVhZD48Ym9keT48aDI+T3JkZXIgc2hpcHBlZDwvaDI+PHA+WW91ciBwYXJjZWwgbGVmdCB0aGUgPGI+d2FyZWhvdXNlPC9iPi48L3A+PC9ib2R5PjwvaHRtbD4=\n";
        check(
            &eml(
                &[
                    "From: shop@example.com",
                    "Subject: Shipped",
                    "Content-Type: text/html; charset=utf-8",
                    "Content-Transfer-Encoding: base64",
                ],
                body,
            ),
            Some("Shipped"),
            &[
                ("From: shop@example.com\nSubject: Shipped", &[]),
                ("Your parcel left the warehouse.", &["Order shipped"]),
            ],
        );
    }

    #[test]
    fn attachments_are_listed_and_text_ones_read() {
        let body = concat!(
            "--mix\n",
            "Content-Type: multipart/related; boundary=rel\n\n",
            "--rel\n",
            "Content-Type: text/html; charset=utf-8\n\n",
            "<p>See the invoice attached.</p><img src=\"cid:logo\">\n",
            "--rel\n",
            "Content-Type: image/png\nContent-ID: <logo>\nContent-Transfer-Encoding: base64\n\n",
            "iVBORw0KGgo=\n",
            "--rel--\n",
            "--mix\n",
            "Content-Type: application/pdf; name=\"invoice.pdf\"\n",
            "Content-Disposition: attachment; filename=\"invoice.pdf\"\n",
            "Content-Transfer-Encoding: base64\n\n",
            "JVBERi0xLjQgYmluYXJ5\n",
            "--mix\n",
            "Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"\n",
            "Content-Disposition: attachment; filename=\"notes.txt\"\n\n",
            "Pay by Friday.\n\nAccount 1234.\n",
            "--mix\n",
            "Content-Type: text/markdown; charset=utf-8\n",
            "Content-Disposition: attachment; filename=\"plan.md\"\n\n",
            "# Plan\n\nShip it.\n",
            "--mix\n",
            "Content-Type: message/rfc822\n\n",
            "From: Carol <carol@example.com>\n",
            "Date: Fri, 31 May 2024 09:15:00 -0700 (PDT)\n",
            "Subject: Original question\n\n",
            "Where is the invoice?\n",
            "--mix--\n",
        );
        let doc = check(
            &eml(
                &["From: billing@acme.example", "Subject: Invoice", "Content-Type: multipart/mixed; boundary=mix"],
                body,
            ),
            Some("Invoice"),
            &[
                ("From: billing@acme.example\nSubject: Invoice", &[]),
                ("See the invoice attached.", &[]),
                ("Attachments: invoice.pdf, notes.txt, plan.md, Original question", &[]),
                ("Pay by Friday.", &["notes.txt"]),
                ("Account 1234.", &["notes.txt"]),
                ("Ship it.", &["plan.md", "Plan"]),
                (
                    "From: Carol <carol@example.com>\nDate: Fri, 31 May 2024 09:15:00 -0700 (PDT)\nSubject: Original question",
                    &["Original question"],
                ),
                ("Where is the invoice?", &["Original question"]),
            ],
        );
        assert_eq!(doc.warnings, ["attachments not read (only plain-text and Markdown ones are): invoice.pdf"]);
    }

    #[test]
    fn files_that_are_not_messages_are_errors() {
        let err = parse(b"Just a note I saved with the wrong extension.\nSecond line.\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt e-mail: no message headers (From, To, Subject, Date) at the start of the file"
        );
        assert_eq!(parse(b"Note: remember the milk\n\nand eggs\n").unwrap_err().code(), "corrupt");
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b"\r\n \r\n").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(&[0u8, 159, 146, 150, 0, 1, 2]).unwrap_err().code(), "corrupt");
        // An mbox separator line above the headers is fine.
        check(
            b"From ann@example.com Mon Jun  3 10:00:00 2024\nFrom: ann@example.com\nSubject: Hi\n\nHello.\n",
            Some("Hi"),
            &[("From: ann@example.com\nSubject: Hi", &[]), ("Hello.", &[])],
        );
        // Headers only: the summary is what there is to find.
        check(
            b"From: ann@example.com\nSubject: Lunch?\n",
            Some("Lunch?"),
            &[("From: ann@example.com\nSubject: Lunch?", &[])],
        );
    }

    #[test]
    fn damaged_messages_keep_what_was_read() {
        let body = "--b\nContent-Type: text/plain\n\nFirst part text.\n--b\nContent-Type: application/pdf; name=a.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQg";
        let doc =
            parse(&eml(&["From: a@example.com", "Subject: Cut", "Content-Type: multipart/mixed; boundary=b"], body))
                .unwrap();
        assert_eq!(doc.blocks[1].text, "First part text.");
        // Deeply nested attached messages are bounded.
        let mut nested = String::from("From: a@example.com\nSubject: level 0\n\nbottom text\n");
        for i in 1..200 {
            nested = format!("From: a@example.com\nSubject: level {i}\nContent-Type: message/rfc822\n\n{nested}");
        }
        let doc = parse(nested.as_bytes()).unwrap();
        assert_eq!(doc.title.as_deref(), Some("level 199"));
        assert_eq!(doc.blocks.last().unwrap().anchor.heading, ["level 198", "level 197", "level 196", "level 195"]);
        assert_eq!(doc.warnings, [format!("attached messages nested more than {MAX_NESTED} deep were not read")]);
        let hostile =
            format!("{}Subject: bottom\n\nhi\n", "From: a@x\nContent-Type: message/rfc822\n\n".repeat(100_000));
        assert_eq!(
            parse(hostile.as_bytes()).unwrap_err().to_string(),
            "e-mail with more than 256 attached messages is not read"
        );
        let good = eml(HEADERS, "body text\n");
        for cut in (0..good.len()).step_by(7) {
            let _ = parse(&good[..cut]);
        }
    }
}
