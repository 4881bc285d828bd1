//! Where a piece of text sits inside its file: page, line range, heading path.

use serde::{Deserialize, Serialize};

/// A location inside one file that a citation can point a reader to.
///
/// Pages are 1-based (as a PDF viewer shows them), lines are 1-based and inclusive.
/// Every field is optional because formats know different things: a PDF knows pages,
/// a text file knows lines, a DOCX knows only headings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub page: Option<u32>,
    pub line_start: Option<u32>,
    pub line_end: Option<u32>,
    /// Heading path from the outermost heading to the innermost, e.g. `["Guide", "Install"]`.
    pub heading: Vec<String>,
}

impl Anchor {
    /// A short human label: `p. 4`, `lines 10-24`, `p. 4, lines 3-9`, or `§ Install` when only
    /// a heading is known.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.page {
            parts.push(format!("p. {p}"));
        }
        match (self.line_start, self.line_end) {
            (Some(a), Some(b)) if a != b => parts.push(format!("lines {a}-{b}")),
            (Some(a), _) => parts.push(format!("line {a}")),
            _ => {}
        }
        if parts.is_empty()
            && let Some(h) = self.heading.last()
        {
            parts.push(format!("§ {h}"));
        }
        parts.join(", ")
    }

    /// The smallest anchor that covers both `self` and `other` (used when a chunk spans blocks).
    /// Pages keep the first page: a citation points where the passage starts.
    pub fn merge(&self, other: &Anchor) -> Anchor {
        let min = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let max = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Anchor {
            page: min(self.page, other.page),
            line_start: min(self.line_start, other.line_start),
            line_end: max(self.line_end, other.line_end),
            heading: if self.heading.is_empty() { other.heading.clone() } else { self.heading.clone() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_like_a_citation() {
        let a = Anchor { page: Some(4), ..Default::default() };
        assert_eq!(a.label(), "p. 4");
        let b = Anchor { line_start: Some(10), line_end: Some(24), ..Default::default() };
        assert_eq!(b.label(), "lines 10-24");
        let c = Anchor { heading: vec!["Guide".into(), "Install".into()], ..Default::default() };
        assert_eq!(c.label(), "§ Install");
        assert_eq!(
            b.merge(&Anchor { line_start: Some(3), line_end: Some(5), ..Default::default() }).label(),
            "lines 3-24"
        );
    }
}
