//! A server-sent events decoder fed with network chunks in any size.
//!
//! Follows the WHATWG event-stream rules that matter to model APIs: `event:` and `data:` fields,
//! multi-line data joined with `\n`, one optional space after the colon, `:` comment lines
//! (keep-alives) and `id:`/`retry:` ignored, an event dispatched at a blank line. Lines may end in
//! `\n` or `\r\n`; a bare `\r` line ending (allowed by the spec, used by no provider we know) is
//! not supported. Text is decoded per complete line, so a character split across chunks survives.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field; `None` means the default type (`message`).
    pub event: Option<String>,
    pub data: String,
}

/// Longest line we buffer (4 MiB). A longer one is dropped whole and reported as malformed by
/// the caller seeing an event with this data.
const MAX_LINE: usize = 4 << 20;
pub(crate) const OVERLONG: &str = "\u{0}overlong line\u{0}";

#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    overlong: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feed bytes; returns the events completed by them.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.push_bytes(&rest[..nl]);
            rest = &rest[nl + 1..];
            let line = std::mem::take(&mut self.line);
            let overlong = std::mem::replace(&mut self.overlong, false);
            if overlong {
                self.add_data(OVERLONG);
                continue;
            }
            self.line_done(&line, &mut out);
        }
        self.push_bytes(rest);
        out
    }

    /// The stream ended: an event not followed by a blank line still counts.
    pub(crate) fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.line_done(&line, &mut out);
        }
        self.dispatch(&mut out);
        out
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        if self.overlong {
            return;
        }
        if self.line.len() + bytes.len() > MAX_LINE {
            self.overlong = true;
            self.line.clear();
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => self.add_data(value),
            _ => {}
        }
    }

    fn add_data(&mut self, value: &str) {
        match &mut self.data {
            Some(d) => {
                d.push('\n');
                d.push_str(value);
            }
            None => self.data = Some(value.to_owned()),
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take().filter(|e| !e.is_empty());
        if let Some(data) = self.data.take() {
            out.push(SseEvent { event, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::default();
        let mut out: Vec<SseEvent> = chunks.iter().flat_map(|c| d.feed(c)).collect();
        out.extend(d.finish());
        out
    }

    #[test]
    fn events_split_anywhere() {
        let stream =
            "event: message_start\r\ndata: {\"a\":1}\r\n\r\n: ping\n\nevent: delta\ndata:x\ndata: y\n\ndata: é\n\n";
        let whole = all(&[stream.as_bytes()]);
        assert_eq!(
            whole,
            [
                SseEvent { event: Some("message_start".into()), data: "{\"a\":1}".into() },
                SseEvent { event: Some("delta".into()), data: "x\ny".into() },
                SseEvent { event: None, data: "é".into() },
            ]
        );
        // Byte by byte, including through the two bytes of "é".
        let bytes: Vec<&[u8]> = stream.as_bytes().chunks(1).collect();
        assert_eq!(all(&bytes), whole);
    }

    #[test]
    fn last_event_without_blank_line_and_event_without_data() {
        assert_eq!(all(&[b"event: ping\n\ndata: [DONE]"]), [SseEvent { event: None, data: "[DONE]".into() }]);
    }
}
