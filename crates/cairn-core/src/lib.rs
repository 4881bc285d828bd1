//! Cairn's shared vocabulary: documents, anchors, chunks, hits, citations and error codes.
//!
//! This crate is plain data. It deliberately does no I/O, knows no file formats, no store and
//! no model: every other crate speaks in these types, so they must stay cheap to depend on.

mod anchor;
mod document;
mod error;
mod hit;

pub use anchor::Anchor;
pub use document::{Block, ChunkDraft, Document, Format, TokenCounter, WhitespaceCounter};
pub use error::ErrorCode;
pub use hit::{Citation, Hit};
