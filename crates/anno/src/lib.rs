//! Anno Platform in one binary: `anno serve` runs every service in one process,
//! `anno serve --service <name>` runs a chosen few for the distributed shape.

pub mod bench;
pub mod cli;
pub mod config;
pub mod platform;
pub mod scale;

pub use config::{Config, Overrides};
pub use platform::{ServiceName, run};
