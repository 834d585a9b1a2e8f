//! The gateway's integration tests: one binary, a module per area.

mod routing;
