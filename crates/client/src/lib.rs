//! Rust SDK for Anno Platform's public API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), anno_client::Error> {
//! let anno = anno_client::Client::new("http://127.0.0.1:5213").with_credential("anno_live_…");
//! let me = anno.me().await?;
//! println!("{} on the {} plan", me.tenant.name, me.tenant.plan);
//! # Ok(()) }
//! ```

use anno_api::Page;
use anno_api::auth::{
    ApiKey, CreateKeyRequest, CreateUserRequest, CreatedKey, LoginRequest, LoginResponse, RotateKeyRequest, User,
};
use anno_api::gateway::Me;
use anno_api::tenant::{CreateTenantRequest, CreateTenantResponse, Tenant, UpdateTenantRequest};
use anno_errors::Problem;
use anno_tenancy::TenantId;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use anno_api;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The platform answered with an error: its problem body says why.
    #[error("{status}: {} ({})", problem.code, problem.detail)]
    Api { status: StatusCode, problem: Box<Problem> },
    /// The platform could not be reached, or the answer was cut short.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The answer was not what the API promises.
    #[error("unexpected answer ({status}): {detail}")]
    Unexpected { status: StatusCode, detail: String },
}

impl Error {
    /// The problem's stable code (`unauthorized`, `insufficient_scope`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { problem, .. } => Some(&problem.code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } | Error::Unexpected { status, .. } => Some(*status),
            Error::Transport(e) => e.status(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A client of one Anno Platform, optionally holding a credential (an API key,
/// an access token, or the platform admin key).
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    credential: Option<String>,
}

impl Client {
    pub fn new(base_url: &str) -> Self {
        Self { http: reqwest::Client::new(), base: base_url.trim_end_matches('/').to_owned(), credential: None }
    }

    pub fn with_credential(&self, credential: &str) -> Self {
        Self { credential: Some(credential.to_owned()), ..self.clone() }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.credential {
            Some(credential) => builder.bearer_auth(credential),
            None => builder,
        }
    }

    async fn send<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T> {
        let response = builder.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<Problem>(&bytes) {
                Ok(problem) => Error::Api { status, problem: Box::new(problem) },
                Err(_) => {
                    Error::Unexpected { status, detail: String::from_utf8_lossy(&bytes).chars().take(200).collect() }
                }
            });
        }
        let bytes = if bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes).map_err(|e| Error::Unexpected { status, detail: e.to_string() })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(Method::GET, path)).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    fn page(path: &str, cursor: Option<&str>) -> String {
        match cursor {
            Some(cursor) => format!("{path}?cursor={cursor}"),
            None => path.to_owned(),
        }
    }

    /// `GET /v1/me`
    pub async fn me(&self) -> Result<Me> {
        self.get("/v1/me").await
    }

    /// `POST /v1/admin/tenants` (admin key): the tenant and its first key.
    pub async fn create_tenant(&self, request: &CreateTenantRequest) -> Result<CreateTenantResponse> {
        self.post("/v1/admin/tenants", request).await
    }

    pub async fn list_tenants(&self, cursor: Option<&str>) -> Result<Page<Tenant>> {
        self.get(&Self::page("/v1/admin/tenants", cursor)).await
    }

    pub async fn get_tenant(&self, id: &TenantId) -> Result<Tenant> {
        self.get(&format!("/v1/admin/tenants/{id}")).await
    }

    pub async fn update_tenant(&self, id: &TenantId, update: &UpdateTenantRequest) -> Result<Tenant> {
        self.send(self.request(Method::PATCH, &format!("/v1/admin/tenants/{id}")).json(update)).await
    }

    pub async fn delete_tenant(&self, id: &TenantId) -> Result<Tenant> {
        self.send(self.request(Method::DELETE, &format!("/v1/admin/tenants/{id}"))).await
    }

    pub async fn list_keys(&self, cursor: Option<&str>) -> Result<Page<ApiKey>> {
        self.get(&Self::page("/v1/keys", cursor)).await
    }

    pub async fn get_key(&self, id: &str) -> Result<ApiKey> {
        self.get(&format!("/v1/keys/{id}")).await
    }

    pub async fn create_key(&self, request: &CreateKeyRequest) -> Result<CreatedKey> {
        self.post("/v1/keys", request).await
    }

    /// `DELETE /v1/keys/{id}`: revoked on every gateway within a second.
    pub async fn revoke_key(&self, id: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, &format!("/v1/keys/{id}"))).await
    }

    /// `POST /v1/keys/{id}/rotate`: a new key now; the old one works for the grace period.
    pub async fn rotate_key(&self, id: &str, grace_period_seconds: u64) -> Result<CreatedKey> {
        self.post(&format!("/v1/keys/{id}/rotate"), &RotateKeyRequest { grace_period_seconds }).await
    }

    pub async fn create_user(&self, request: &CreateUserRequest) -> Result<User> {
        self.post("/v1/users", request).await
    }

    /// `POST /v1/admin/tenants/{id}/users` (admin key).
    pub async fn admin_create_user(&self, tenant: &TenantId, request: &CreateUserRequest) -> Result<User> {
        self.post(&format!("/v1/admin/tenants/{tenant}/users"), request).await
    }

    /// `POST /v1/auth/login`: an access token usable like a key.
    pub async fn login(&self, tenant: &TenantId, email: &str, password: &str) -> Result<LoginResponse> {
        let request =
            LoginRequest { tenant_id: tenant.clone(), email: email.to_owned(), password: password.to_owned() };
        self.send(self.http.post(format!("{}/v1/auth/login", self.base)).json(&request)).await
    }
}
