//! Turns a stream of byte pieces (llama.cpp tokens) into text without splitting a character.
//!
//! A token may end in the middle of a multi-byte UTF-8 sequence (emoji, CJK). This holds the
//! incomplete tail back until the next piece completes it. It is not a general decoder: input is
//! assumed to be UTF-8, and truly invalid bytes become U+FFFD.

/// Buffers at most one incomplete character between pieces.
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Add a piece; returns the text that is now complete (possibly empty).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete sequence at the end: keep it for the next piece.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes that can never be valid: replace them and go on.
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Flush whatever is left at the end of generation (an unfinished character becomes U+FFFD).
    pub(crate) fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_split_characters() {
        let crab = "🦀".as_bytes();
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"a"), "a");
        assert_eq!(s.push(&crab[..1]), "");
        assert_eq!(s.push(&crab[1..3]), "");
        assert_eq!(s.push(&[crab[3], b'b']), "🦀b");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn replaces_invalid_bytes_and_flushes_tail() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(&[b'x', 0xFF, b'y']), "x\u{FFFD}y");
        assert_eq!(s.push(&"é".as_bytes()[..1]), "");
        assert_eq!(s.finish(), "\u{FFFD}");
    }
}
