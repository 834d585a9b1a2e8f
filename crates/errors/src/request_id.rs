//! The request id of the request being handled, reachable from anywhere inside
//! its handler, so every error body can carry it.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request this task is handling, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The request id, as an extension on the request.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Accepts a well-formed incoming id (1–128 of `[A-Za-z0-9._-]`) or makes one.
pub fn accept_or_generate(incoming: Option<&HeaderValue>) -> String {
    incoming
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map(str::to_owned)
        .unwrap_or_else(anno_id)
}

fn anno_id() -> String {
    use rand::Rng;
    format!("req_{:032x}", rand::thread_rng().r#gen::<u128>())
}

/// Middleware: sets the request id (header, extension, task-local) and echoes it.
pub async fn with_request_id(mut request: Request, next: Next) -> Response {
    let (id, echoed) = assign(&mut request);
    let mut response = in_scope(id, next.run(request)).await;
    response.headers_mut().insert(HEADER, echoed);
    response
}

/// Gives a request its id (the header, as it will be echoed, and the
/// [`RequestId`] extension): what [`with_request_id`] does first, for a stack
/// that does it inside a middleware of its own.
pub fn assign(request: &mut Request) -> (String, HeaderValue) {
    let id = accept_or_generate(request.headers().get(HEADER));
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    request.headers_mut().insert(HEADER, value.clone());
    request.extensions_mut().insert(RequestId(id.clone()));
    (id, value)
}

/// Runs the handling of a request with `id` as [`current_request_id`].
pub async fn in_scope<F: std::future::Future<Output = Response>>(id: String, handling: F) -> Response {
    REQUEST_ID.scope(id, handling).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_are_kept_and_others_replaced() {
        let good = HeaderValue::from_static("abc-123_x.y");
        assert_eq!(accept_or_generate(Some(&good)), "abc-123_x.y");
        let bad = HeaderValue::from_static("has space");
        let made = accept_or_generate(Some(&bad));
        assert!(made.starts_with("req_") && made.len() == 36, "{made}");
        assert_ne!(accept_or_generate(None), accept_or_generate(None));
    }
}
