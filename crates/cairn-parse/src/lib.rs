//! cairn-parse
