//! Why a fetch fails: stable codes and HTTP statuses, and the mapping to the
//! platform's one error body.

use anno_errors::ApiError;
use http::StatusCode;
use std::time::Duration;

/// Why a fetch failed; each has a stable code and an HTTP status.
///
/// Details name only what the caller sent (the URL's host), never the addresses
/// a name resolved to.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("the URL is not a valid http(s) URL: {0}")]
    InvalidUrl(String),
    #[error("the request header `{0}` is not valid")]
    InvalidHeader(String),
    #[error("the URL is not allowed: {0}")]
    Blocked(BlockReason),
    #[error("robots.txt disallows this URL for our user agent")]
    RobotsDisallowed,
    #[error("the page's content type `{0}` is not supported")]
    UnsupportedContentType(String),
    #[error("the page is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the site answered {0}")]
    Upstream(u16),
    #[error("the site could not be reached: {0}")]
    Unreachable(String),
    #[error("the site did not answer in time")]
    Timeout,
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("the site is being fetched too often; try again in {} s", ceil_secs(.retry_after))]
    HostBusy {
        /// When the host's next free slot comes, as far as we know now.
        retry_after: Duration,
    },
    #[error("the site failed repeatedly; requests to it are paused")]
    CircuitOpen,
}

fn ceil_secs(duration: &Duration) -> u64 {
    let secs = duration.as_secs();
    if duration.subsec_nanos() > 0 { secs.saturating_add(1) } else { secs.max(1) }
}

impl FetchError {
    /// The stable error code of the API body.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::InvalidUrl(_) => "invalid_url",
            FetchError::InvalidHeader(_) => "invalid_header",
            FetchError::Blocked(_) => "url_blocked",
            FetchError::RobotsDisallowed => "robots_disallowed",
            FetchError::UnsupportedContentType(_) => "unsupported_content_type",
            FetchError::TooLarge(_) => "page_too_large",
            FetchError::Upstream(_) => "upstream_error",
            FetchError::Unreachable(_) => "upstream_unreachable",
            FetchError::Timeout => "upstream_timeout",
            FetchError::TooManyRedirects(_) => "too_many_redirects",
            FetchError::HostBusy { .. } => "host_busy",
            FetchError::CircuitOpen => "upstream_circuit_open",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            FetchError::InvalidUrl(_) | FetchError::InvalidHeader(_) => StatusCode::BAD_REQUEST,
            FetchError::Blocked(_) | FetchError::RobotsDisallowed => StatusCode::FORBIDDEN,
            FetchError::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FetchError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            FetchError::Upstream(_) | FetchError::Unreachable(_) | FetchError::TooManyRedirects(_) => {
                StatusCode::BAD_GATEWAY
            }
            FetchError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            FetchError::HostBusy { .. } | FetchError::CircuitOpen => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// When trying again may succeed, in whole seconds (for `Retry-After`).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            FetchError::HostBusy { retry_after } => Some(ceil_secs(retry_after)),
            _ => None,
        }
    }
}

impl From<FetchError> for ApiError {
    fn from(error: FetchError) -> Self {
        let api = ApiError::new(error.status(), error.code(), error.to_string());
        match error.retry_after_secs() {
            Some(seconds) => api.with_retry_after(seconds),
            None => api,
        }
    }
}

/// Why the SSRF guard refused a URL (a bounded set: it labels metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockReason {
    Scheme,
    Credentials,
    OddHostForm,
    Loopback,
    Private,
    LinkLocal,
    SharedAddressSpace,
    Unspecified,
    Multicast,
    Reserved,
    Documentation,
    Benchmarking,
    Metadata,
    Translated,
    UniqueLocal,
    Port,
    Unresolvable,
}

impl BlockReason {
    /// A stable snake_case label, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::Scheme => "scheme",
            BlockReason::Credentials => "credentials",
            BlockReason::OddHostForm => "odd_host_form",
            BlockReason::Loopback => "loopback",
            BlockReason::Private => "private",
            BlockReason::LinkLocal => "link_local",
            BlockReason::SharedAddressSpace => "shared_address_space",
            BlockReason::Unspecified => "unspecified",
            BlockReason::Multicast => "multicast",
            BlockReason::Reserved => "reserved",
            BlockReason::Documentation => "documentation",
            BlockReason::Benchmarking => "benchmarking",
            BlockReason::Metadata => "metadata",
            BlockReason::Translated => "translated",
            BlockReason::UniqueLocal => "unique_local",
            BlockReason::Port => "port",
            BlockReason::Unresolvable => "unresolvable",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            BlockReason::Scheme => "only http and https URLs can be fetched",
            BlockReason::Credentials => "URLs with a user name or password are refused",
            BlockReason::OddHostForm => "the host is an IPv4 address in an unusual notation",
            BlockReason::Loopback => "the host is a loopback address",
            BlockReason::Private => "the host is a private-network address",
            BlockReason::LinkLocal => "the host is a link-local address",
            BlockReason::SharedAddressSpace => "the host is a carrier-grade NAT address",
            BlockReason::Unspecified => "the host is an unspecified address",
            BlockReason::Multicast => "the host is a multicast address",
            BlockReason::Reserved => "the host is a reserved address",
            BlockReason::Documentation => "the host is a documentation address",
            BlockReason::Benchmarking => "the host is a benchmarking address",
            BlockReason::Metadata => "the host is a cloud metadata address",
            BlockReason::Translated => "the host is an address translated to or from IPv4",
            BlockReason::UniqueLocal => "the host is a unique-local address",
            BlockReason::Port => "the port is not allowed",
            BlockReason::Unresolvable => "the host name could not be resolved",
        }
    }
}

impl std::fmt::Display for BlockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}
