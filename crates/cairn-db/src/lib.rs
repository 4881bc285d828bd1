//! cairn-db
