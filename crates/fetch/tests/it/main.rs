//! The anno-fetch integration tests: one binary, real servers on 127.0.0.1:0,
//! made-up names from a static resolver.

mod errors;
mod fetch;
mod guard;
mod politeness;
mod robots;
mod support;
