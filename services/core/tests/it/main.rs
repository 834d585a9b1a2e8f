//! Core's integration tests: one binary for the crate.

mod crawl;
