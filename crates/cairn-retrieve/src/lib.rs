//! cairn-retrieve
