//! cairn-ingest
