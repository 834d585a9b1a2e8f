//! A typed JSON caller over a [`Transport`], the base of every service client.

use crate::transport::Transport;
use anno_errors::{ApiError, Problem};
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

/// Why a call to another service failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The service answered with an error status.
    #[error("{service} answered {status}")]
    Status { service: &'static str, status: StatusCode, problem: Option<Problem> },
    /// The answer was not what the contract says.
    #[error("{service} answered something unreadable: {cause}")]
    Decode { service: &'static str, cause: String },
}

impl CallError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            CallError::Decode { .. } => None,
        }
    }

    /// For a caller that cannot do better: everything is unavailable.
    pub fn into_api_error(self) -> ApiError {
        ApiError::unavailable(self)
    }

    /// Passes a client error (4xx with a problem body) on to our caller as it
    /// was; anything else is unavailable.
    pub fn pass_client_errors(self) -> ApiError {
        match self {
            CallError::Status { status, problem: Some(problem), .. } if status.is_client_error() => {
                ApiError::from_problem(status, problem)
            }
            other => other.into_api_error(),
        }
    }
}

#[derive(Clone)]
pub struct ServiceClient {
    service: &'static str,
    transport: Transport,
}

impl ServiceClient {
    pub fn new(service: &'static str, transport: Transport) -> Self {
        Self { service, transport }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Sends a request and decodes a JSON answer; non-2xx is [`CallError::Status`].
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, CallError> {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = bearer {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(id) = anno_errors::current_request_id() {
            builder = builder.header("x-request-id", id);
        }
        let body = match body {
            Some(value) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(value).map_err(|e| self.decode(e))?)
            }
            None => Body::empty(),
        };
        let request = builder.body(body).map_err(|e| self.decode(e))?;
        let response = match self.transport.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| self.decode(e))?.to_bytes();
        if !status.is_success() {
            return Err(CallError::Status {
                service: self.service,
                status,
                problem: serde_json::from_slice(&bytes).ok(),
            });
        }
        let bytes = if bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes).map_err(|e| self.decode(e))
    }

    fn decode(&self, cause: impl std::fmt::Display) -> CallError {
        CallError::Decode { service: self.service, cause: cause.to_string() }
    }
}
