//! Error codes, statuses and the platform error body.

use anno_errors::ApiError;
use anno_fetch::{BlockReason, FetchError};
use axum::http::StatusCode;
use std::time::Duration;

#[test]
fn every_error_has_its_code_and_status() {
    let cases = [
        (FetchError::InvalidUrl("x".into()), "invalid_url", StatusCode::BAD_REQUEST),
        (FetchError::InvalidHeader("x".into()), "invalid_header", StatusCode::BAD_REQUEST),
        (FetchError::Blocked(BlockReason::Loopback), "url_blocked", StatusCode::FORBIDDEN),
        (FetchError::RobotsDisallowed, "robots_disallowed", StatusCode::FORBIDDEN),
        (
            FetchError::UnsupportedContentType("a/b".into()),
            "unsupported_content_type",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (FetchError::TooLarge(10), "page_too_large", StatusCode::PAYLOAD_TOO_LARGE),
        (FetchError::Upstream(500), "upstream_error", StatusCode::BAD_GATEWAY),
        (FetchError::Unreachable("x".into()), "upstream_unreachable", StatusCode::BAD_GATEWAY),
        (FetchError::Timeout, "upstream_timeout", StatusCode::GATEWAY_TIMEOUT),
        (FetchError::TooManyRedirects(10), "too_many_redirects", StatusCode::BAD_GATEWAY),
        (FetchError::HostBusy { retry_after: Duration::from_millis(1) }, "host_busy", StatusCode::SERVICE_UNAVAILABLE),
        (FetchError::CircuitOpen, "upstream_circuit_open", StatusCode::SERVICE_UNAVAILABLE),
    ];
    for (error, code, status) in cases {
        assert_eq!((error.code(), error.status()), (code, status), "{error:?}");
        let api = ApiError::from(error.clone());
        assert_eq!((api.code.as_ref(), api.status), (code, status));
        assert_eq!(api.detail, error.to_string());
    }
}

#[test]
fn host_busy_carries_a_retry_hint() {
    let api = ApiError::from(FetchError::HostBusy { retry_after: Duration::from_millis(2300) });
    assert_eq!(api.retry_after, Some(3));
    assert!(api.detail.contains("3 s"), "{}", api.detail);
    assert_eq!(ApiError::from(FetchError::Timeout).retry_after, None);
}

#[test]
fn a_blocked_url_says_why_in_words() {
    let error = FetchError::Blocked(BlockReason::Metadata);
    assert_eq!(error.to_string(), "the URL is not allowed: the host is a cloud metadata address");
}
