//! Internal tokens: short-lived JWTs (EdDSA, pinned) that the auth service signs
//! and every service verifies against auth's published JWKS. No service believes
//! a plain tenant header: who is calling is what a valid token says.

use crate::client::ServiceClient;
use crate::transport::InProcess;
use anno_errors::ApiError;
use anno_tenancy::{Scope, ScopeSet, TenantContext, TenantId};
use axum::extract::FromRef;
use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{Method, header};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub const ISSUER: &str = "anno-auth";
/// Audience of tokens forwarded between services.
pub const INTERNAL_AUDIENCE: &str = "anno-internal";
/// Audience of access tokens given to users at login.
pub const ACCESS_AUDIENCE: &str = "anno-access";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    Key,
    User,
    Admin,
    /// One of the platform's own services, acting for no tenant (see
    /// [`crate::auth::ServiceIdentity`]).
    Service,
}

/// What a token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The key id, user id, or admin key id.
    pub sub: String,
    pub knd: PrincipalKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ten: Option<TenantId>,
    pub scp: ScopeSet,
    pub iat: i64,
    pub exp: i64,
}

/// Where a verifier gets the public keys: auth's JWKS endpoint, or auth itself.
#[derive(Clone)]
pub enum KeySource {
    Remote(ServiceClient),
    Local(Arc<dyn Fn() -> futures::future::BoxFuture<'static, Result<JwkSet, String>> + Send + Sync>),
}

/// Verifies tokens against the current key set, refreshing it when a token names
/// a key it does not know yet (rotation), at most once a second. A token once
/// verified is remembered until it expires: a caller sends the same token on
/// every request, and checking its signature again would cost each of them.
#[derive(Clone)]
pub struct TokenVerifier {
    source: KeySource,
    keys: Arc<RwLock<KeyCache>>,
    verified: moka::sync::Cache<String, Claims>,
}

/// How many verified tokens a verifier remembers.
const VERIFIED_CAPACITY: u64 = 10_000;

/// Forgets a verified token when it expires.
struct UntilExpiry;

impl moka::Expiry<String, Claims> for UntilExpiry {
    fn expire_after_create(&self, _token: &String, claims: &Claims, _now: Instant) -> Option<Duration> {
        let left = claims.exp.saturating_sub(anno_tenancy::now_ms() / 1000);
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

impl TokenVerifier {
    pub fn new(source: KeySource) -> Self {
        let verified = moka::sync::Cache::builder().max_capacity(VERIFIED_CAPACITY).expire_after(UntilExpiry).build();
        Self { source, keys: Arc::default(), verified }
    }

    /// Verifies a token for `audience`; any failure is 401 with the same body.
    pub async fn verify(&self, token: &str, audience: &str) -> Result<Claims, ApiError> {
        if let Some(claims) = self.verified.get(token).filter(|c| c.exp > anno_tenancy::now_ms() / 1000) {
            return if claims.aud == audience { Ok(claims) } else { Err(ApiError::unauthorized()) };
        }
        let claims = self.verify_signature(token, audience).await?;
        self.verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str, audience: &str) -> Result<Claims, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| ApiError::unauthorized())?;
        if header.alg != Algorithm::EdDSA {
            return Err(ApiError::unauthorized());
        }
        let kid = header.kid.ok_or_else(ApiError::unauthorized)?;
        let key = match self.cached(&kid) {
            Some(key) => key,
            None => {
                self.refresh().await?;
                self.cached(&kid).ok_or_else(ApiError::unauthorized)?
            }
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::unauthorized())
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok()?.keys.get(kid).cloned()
    }

    async fn refresh(&self) -> Result<(), ApiError> {
        let recently =
            self.keys.read().ok().and_then(|k| k.fetched).is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        if recently {
            return Ok(());
        }
        let set = match &self.source {
            KeySource::Local(keys) => keys().await.map_err(ApiError::unavailable)?,
            KeySource::Remote(client) => client
                .call::<JwkSet>(Method::GET, "/internal/v1/jwks", None, None::<&()>)
                .await
                .map_err(ApiError::unavailable)?,
        };
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        if let Ok(mut cache) = self.keys.write() {
            *cache = KeyCache { keys, fetched: Some(Instant::now()) };
        }
        Ok(())
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The verified caller of an internal request. Extracting it refuses any request
/// without a valid internal token, whatever other headers it carries.
#[derive(Clone, Debug)]
pub struct Caller {
    pub claims: Claims,
    /// The token itself, to forward on calls made on the caller's behalf.
    pub token: String,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.claims.knd == PrincipalKind::Admin
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() { Ok(()) } else { Err(ApiError::insufficient_scope("admin")) }
    }

    /// The platform service calling, for the internal routes only a service may use.
    pub fn require_service(&self) -> Result<&str, ApiError> {
        match self.claims.knd {
            PrincipalKind::Service => Ok(&self.claims.sub),
            _ => Err(ApiError::insufficient_scope("service")),
        }
    }

    /// The tenant the caller acts for, having `scope`.
    pub fn tenant(&self, scope: Scope) -> Result<TenantContext, ApiError> {
        let tenant_id = self.claims.ten.clone().ok_or_else(|| ApiError::insufficient_scope(scope.as_str()))?;
        if !self.claims.scp.contains(scope) {
            return Err(ApiError::insufficient_scope(scope.as_str()));
        }
        Ok(TenantContext { tenant_id, actor: self.claims.sub.clone(), scopes: self.claims.scp })
    }

    /// May the caller see this tenant's data? Admins may; a tenant only its own.
    pub fn may_access(&self, tenant: &TenantId) -> bool {
        self.is_admin() || self.claims.ten.as_ref() == Some(tenant)
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    TokenVerifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?.to_owned();
        let verifier = TokenVerifier::from_ref(state);
        let claims = verifier.verify(&token, INTERNAL_AUDIENCE).await?;
        // A call from a service in the same process runs in its caller's span,
        // which has the tenant already.
        if let Some(tenant) = claims.ten.as_ref().filter(|_| parts.extensions.get::<InProcess>().is_none()) {
            crate::server::record_tenant(tenant);
        }
        Ok(Caller { claims, token })
    }
}
