//! Anno's extraction engine.

pub mod decode;
pub mod tokens;
