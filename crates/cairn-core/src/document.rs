//! A parsed file (`Document` made of anchored `Block`s) and what chunking makes of it.

use crate::Anchor;
use serde::{Deserialize, Serialize};

/// The formats Cairn reads. `Text` covers plain text and anything decoded as such (logs,
/// configuration, prose); `Code` is source code split along its definitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Markdown,
    Html,
    Pdf,
    Docx,
    /// Comma- or tab-separated values.
    Csv,
    Xlsx,
    /// OpenDocument spreadsheet.
    Ods,
    Pptx,
    /// OpenDocument text.
    Odt,
    Epub,
    Rtf,
    Code,
    /// A single RFC 5322 message (`.eml`).
    Email,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Ods => "ods",
            Format::Pptx => "pptx",
            Format::Odt => "odt",
            Format::Epub => "epub",
            Format::Rtf => "rtf",
            Format::Code => "code",
            Format::Email => "email",
        }
    }
}

/// One contiguous piece of a document with a single anchor: a paragraph, a list, a table row
/// group, a PDF page's paragraph. Chunking packs blocks together, never splits an anchor wrongly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub text: String,
    pub anchor: Anchor,
}

/// A file after parsing: its blocks plus what went wrong along the way. Warnings are data:
/// a document with warnings is still indexed, and the warnings are shown in `cairn status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub title: Option<String>,
    pub blocks: Vec<Block>,
    pub warnings: Vec<String>,
}

impl Document {
    pub fn is_empty(&self) -> bool {
        self.blocks.iter().all(|b| b.text.trim().is_empty())
    }
}

/// A chunk before it has a vector: text that fits the embedder, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkDraft {
    /// Position of the chunk in its document, from 0.
    pub ordinal: u32,
    /// The passage itself, as shown to a reader and to the answering model.
    pub text: String,
    /// A line of context the embedder sees before `text` (document title and heading path), so a
    /// passage about "it" still carries what "it" is. Empty when there is none.
    pub context: String,
    pub anchor: Anchor,
    /// Tokens the embedder will see for `embed_text()` (special tokens included). Never more than
    /// the counter's `max_tokens()`.
    pub tokens: usize,
}

impl ChunkDraft {
    /// What the embedder is given: the context line, then the passage.
    pub fn embed_text(&self) -> String {
        if self.context.is_empty() { self.text.clone() } else { format!("{}\n{}", self.context, self.text) }
    }
}

/// Counts tokens the way the embedder will. Chunking asks this, never guesses from characters,
/// so no chunk is ever longer than the model takes.
pub trait TokenCounter: Send + Sync {
    /// Tokens for `text` including the model's special tokens ([CLS], [SEP]).
    fn count(&self, text: &str) -> usize;
    /// The most tokens one input may have before the model truncates it.
    fn max_tokens(&self) -> usize;
}

/// A stand-in counter for tests and for tools that run without a model: one token per
/// whitespace-separated word plus two specials. Real indexing always uses the embedder's tokenizer.
#[derive(Clone, Copy, Debug)]
pub struct WhitespaceCounter {
    pub max: usize,
}

impl TokenCounter for WhitespaceCounter {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count() + 2
    }
    fn max_tokens(&self) -> usize {
        self.max
    }
}
