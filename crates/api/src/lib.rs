//! The contract between Anno's services.
//!
//! - [`transport`]: a `tower::Service` that reaches another service, in process
//!   (its router, no socket) or over HTTP; the contract is the same.
//! - [`auth`], [`tenant`]: each service's wire types and typed client, so callers
//!   depend on the contract, never on the handlers.
//! - [`token`]: the short-lived internal token every service demands, and the
//!   extractor that verifies it.
//! - [`server`]: the middleware stack and health routes every service shares.

pub mod auth;
pub mod client;
pub mod config;
pub mod gateway;
pub mod server;
pub mod tenant;
pub mod token;
pub mod transport;

use serde::{Deserialize, Serialize};

/// A page of a cursor-paginated list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Query parameters of a paginated list.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl PageQuery {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 200;

    /// The page size asked for, within bounds.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(Self::DEFAULT_LIMIT).clamp(1, Self::MAX_LIMIT)
    }
}

/// Builds a page from `limit + 1` rows fetched in id order: the extra row only
/// says there is more, and the cursor is the last id returned.
pub fn page_from_rows<T>(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(id) } else { None };
    Page { data: rows, next_cursor }
}
