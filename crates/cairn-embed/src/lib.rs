//! cairn-embed
