//! Forwarding a request to the service that owns it: client-sent internal
//! headers are dropped, the caller's internal token is attached, bodies stream.

use anno_api::transport::Transport;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};
use tower::ServiceExt;

/// Headers a client may not set for the services behind the gateway, and the
/// hop-by-hop headers that never cross a proxy.
fn dropped(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(
        name,
        "authorization"
            | "x-api-key"
            | "x-tenant-id"
            | "x-key-id"
            | "x-user-id"
            | "x-scopes"
            | "cookie"
            | "forwarded"
            | "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    ) || name.starts_with("x-anno-")
        || name.starts_with("x-internal-")
}

fn clean(headers: &HeaderMap) -> HeaderMap {
    headers.iter().filter(|(name, _)| !dropped(name)).map(|(n, v)| (n.clone(), v.clone())).collect()
}

/// Sends the request on, authenticated with `bearer` (`Bearer <internal
/// token>`), or anonymously.
pub async fn forward(transport: &Transport, request: Request, bearer: Option<HeaderValue>) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut builder = http::Request::builder().method(parts.method.clone()).uri(path);
    if let Some(headers) = builder.headers_mut() {
        *headers = clean(&parts.headers);
        if let Some(bearer) = bearer {
            headers.insert(header::AUTHORIZATION, bearer);
        }
    }
    // The tenant, for routing by affinity; other extensions stay on this side.
    if let Some(affinity) = parts.extensions.get::<crate::upstream::Affinity>() {
        builder = builder.extension(affinity.clone());
    }
    let upstream = match builder.body(Body::new(body)) {
        Ok(request) => request,
        Err(e) => return axum::response::IntoResponse::into_response(anno_errors::ApiError::internal(e)),
    };
    let response = match transport.clone().oneshot(upstream).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (mut parts, body) = response.into_parts();
    for name in [header::CONNECTION, HeaderName::from_static("keep-alive"), header::TRANSFER_ENCODING] {
        parts.headers.remove(name);
    }
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_and_credential_headers_never_pass() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-tenant-id", "ten_0123456789abcdefghjkmnpqrs"),
            ("x-anno-units", "0"),
            ("authorization", "Bearer anno_live_x"),
            ("x-api-key", "anno_live_x"),
            ("content-type", "application/json"),
            ("x-request-id", "abc"),
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        let kept = clean(&headers);
        let names: Vec<_> = kept.keys().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(kept.contains_key("content-type") && kept.contains_key("x-request-id"));
    }
}
