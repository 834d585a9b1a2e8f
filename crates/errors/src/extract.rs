//! Extractors that answer malformed input with our problem body, naming the field.

use crate::{ApiError, FieldError};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// A JSON body; syntax errors are 400 `invalid_json`, shape errors 422 with the path.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let declared_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            });
        // The size limit is the server's, applied before any handler runs.
        let bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .map_err(|e| ApiError::bad_request("invalid_body", format!("The request body could not be read: {e}")))?;
        let content = bytes.iter().position(|b| !b.is_ascii_whitespace());
        // An empty body reads as `{}`: a call whose fields are all optional needs none.
        let Some(first) = content else { return parse_json(b"{}").map(ApiJson) };
        if declared_json != Some(true) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as `Content-Type: application/json`.",
            ));
        }
        // Every body of the API is an object. (Serde would also read a struct
        // from an array, which must not turn `[]` into a request of defaults.)
        if bytes[first] != b'{' {
            return Err(ApiError::invalid_field("", "the body must be a JSON object"));
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON with the path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request("invalid_json", format!("The body is not valid JSON: {inner}"))
        } else if inner.to_string().starts_with("unknown field") {
            // A name we do not know is not silently dropped: the caller meant
            // something this API does not do.
            let mut error = ApiError::bad_request("unknown_field", format!("{path}: {inner}"));
            error.errors = vec![FieldError { path, message: inner.to_string() }];
            error
        } else {
            ApiError::invalid_fields(vec![FieldError { path, message: inner.to_string() }])
        }
    })
}

/// Path parameters; a malformed one is a 404 since no such resource can exist.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| ApiError::not_found("Resource"))
    }
}

/// A query string; a bad parameter is a 400 naming it.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded_deserializer(query);
        de.map(ApiQuery).map_err(|e| ApiError::bad_request("invalid_query", e))
    }
}

fn serde_urlencoded_deserializer<T: DeserializeOwned>(query: &str) -> Result<T, String> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}").parse().map_err(|_| "malformed query string".to_owned())?,
    )
    .map(|q| q.0)
    .map_err(|e| e.body_text())
}
