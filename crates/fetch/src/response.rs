//! Request headers we send, and what we read from a response: content type,
//! validators, `Retry-After`, and the body within its size and time limits.

use crate::{Accept, FetchError, Validators};
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Headers that are ours to set, or that describe one connection only.
const DROPPED: &[&str] = &[
    "host",
    "user-agent",
    "accept-encoding",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
];

/// Headers that must not follow a redirect to another origin.
pub(crate) const CREDENTIAL_HEADERS: [HeaderName; 3] =
    [header::AUTHORIZATION, header::COOKIE, header::PROXY_AUTHORIZATION];

/// The caller's headers, validated, without the ones we own; plus `Accept` and
/// the validators of a conditional request.
pub(crate) fn request_headers(
    caller: &[(String, String)],
    validators: Option<&Validators>,
    accept: Accept,
) -> Result<HeaderMap, FetchError> {
    let mut headers = HeaderMap::new();
    let mut connection_named = Vec::new();
    for (name, value) in caller {
        let name =
            HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| FetchError::InvalidHeader(safe_name(name)))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| FetchError::InvalidHeader(name.to_string()))?;
        if name == header::CONNECTION {
            connection_named
                .extend(value.to_str().unwrap_or_default().split(',').map(|n| n.trim().to_ascii_lowercase()));
        }
        if !DROPPED.contains(&name.as_str()) {
            headers.append(name, value);
        }
    }
    for name in connection_named {
        headers.remove(name.as_str());
    }
    if !headers.contains_key(header::ACCEPT) {
        let accept = match accept {
            Accept::Html => "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.8,*/*;q=0.1",
            Accept::Any => "*/*",
        };
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
    }
    if let Some(validators) = validators {
        let etag = validators.etag.as_deref().and_then(|v| HeaderValue::from_str(v).ok());
        if let Some(etag) = etag {
            headers.insert(header::IF_NONE_MATCH, etag);
        }
        let since = validators.last_modified.as_deref().and_then(|v| HeaderValue::from_str(v).ok());
        if let Some(since) = since {
            headers.insert(header::IF_MODIFIED_SINCE, since);
        }
    }
    Ok(headers)
}

/// A header name for an error message: printable and short.
fn safe_name(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_graphic()).take(64).collect()
}

/// The media type without parameters, lower-cased (`text/html`).
pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}

pub(crate) fn check_content_type(accept: Accept, content_type: Option<&str>) -> Result<(), FetchError> {
    match (accept, content_type) {
        (Accept::Any, _) | (Accept::Html, None | Some("text/html" | "application/xhtml+xml" | "text/plain")) => Ok(()),
        (Accept::Html, Some(other)) => Err(FetchError::UnsupportedContentType(other.chars().take(100).collect())),
    }
}

pub(crate) fn validators(headers: &HeaderMap) -> Validators {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
    Validators { etag: text(header::ETAG), last_modified: text(header::LAST_MODIFIED) }
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// What to do with a body larger than the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Oversize {
    Fail,
    /// Keep the first `limit` bytes (robots.txt: only the first 500 KiB count).
    Truncate,
}

/// Reads the body, decompressed, stopping as soon as it passes `limit`.
pub(crate) async fn read_body(
    response: &mut reqwest::Response,
    limit: usize,
    oversize: Oversize,
    deadline: Instant,
) -> Result<Bytes, ReadError> {
    let declared = response.content_length().unwrap_or(0);
    if oversize == Oversize::Fail && declared > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(ReadError::Fetch(FetchError::TooLarge(limit)));
    }
    let capacity = usize::try_from(declared).unwrap_or(usize::MAX).min(limit).min(1 << 20);
    let mut body = BytesMut::with_capacity(capacity);
    loop {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => return Err(ReadError::Timeout),
            Ok(Err(error)) => return Err(ReadError::Network(error)),
            Ok(Ok(None)) => return Ok(body.freeze()),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let room = limit - body.len();
        if chunk.len() > room {
            if oversize == Oversize::Truncate {
                body.extend_from_slice(&chunk[..room]);
                return Ok(body.freeze());
            }
            return Err(ReadError::Fetch(FetchError::TooLarge(limit)));
        }
        body.extend_from_slice(&chunk);
    }
}

/// A body read failure; the fetcher decides what it means for the host.
#[derive(Debug)]
pub(crate) enum ReadError {
    Fetch(FetchError),
    Timeout,
    Network(reqwest::Error),
}
