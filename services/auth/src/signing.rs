//! Ed25519 keys that sign internal and access tokens. Stored in the auth database
//! so every auth replica signs with the same keys; the newest signs, and every key
//! younger than the rotation period plus a day is published, so tokens signed just
//! before a rotation still verify.

use anno_api::token::{Claims, ISSUER, PrincipalKind};
use anno_errors::ApiError;
use anno_store::{Db, StoreError};
use anno_tenancy::{ScopeSet, TenantId, new_id, now_ms};
use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A signing key is replaced after this long.
const ROTATE_AFTER_MS: i64 = 30 * 24 * 3600 * 1000;
/// …and stays published this much longer, covering every token it signed.
const PUBLISH_EXTRA_MS: i64 = 24 * 3600 * 1000;

#[derive(Clone)]
pub struct Signer {
    keys: Arc<RwLock<Keys>>,
}

struct Keys {
    kid: String,
    encoding: EncodingKey,
}

/// kid, private PKCS#8 (base64), public key (base64url), created at.
type StoredKey = (String, String, String, i64);

impl Signer {
    /// Loads the keys, creating the first one (or a rotated one) when due.
    pub async fn load(db: &Db) -> anyhow::Result<Signer> {
        let keys = load_keys(db).await?;
        let signer = Signer { keys: Arc::new(RwLock::new(keys)) };
        // Other replicas may rotate: pick their keys up.
        let (weak, db) = (Arc::downgrade(&signer.keys), db.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(keys) = weak.upgrade() else { return };
                match load_keys(&db).await {
                    Ok(fresh) => {
                        if let Ok(mut k) = keys.write() {
                            *k = fresh;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reloading signing keys failed"),
                }
            }
        });
        Ok(signer)
    }

    /// Signs a token for a principal, valid for `ttl`.
    #[expect(clippy::too_many_arguments, reason = "each is one claim of the token")]
    pub fn sign(
        &self,
        audience: &str,
        kind: PrincipalKind,
        subject: &str,
        tenant: Option<&TenantId>,
        scopes: ScopeSet,
        ttl: Duration,
        not_after_ms: Option<i64>,
    ) -> Result<(String, i64), ApiError> {
        let now = now_ms();
        let mut exp_ms = now + ttl.as_millis() as i64;
        if let Some(limit) = not_after_ms {
            exp_ms = exp_ms.min(limit);
        }
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: audience.to_owned(),
            sub: subject.to_owned(),
            knd: kind,
            ten: tenant.cloned(),
            scp: scopes,
            iat: now / 1000,
            exp: exp_ms / 1000,
        };
        let keys = self.keys.read().map_err(|_| ApiError::internal("signing keys lock poisoned"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &keys.encoding).map_err(ApiError::internal)?;
        Ok((token, claims.exp * 1000))
    }
}

async fn load_keys(db: &Db) -> Result<Keys, StoreError> {
    let mut stored = published(db).await?;
    if stored.first().is_none_or(|newest| newest.3 < now_ms() - ROTATE_AFTER_MS) {
        create(db).await?;
        stored = published(db).await?;
    }
    let newest = stored.first().ok_or(StoreError::NotFound)?;
    let der = STANDARD.decode(&newest.1).map_err(|e| StoreError::Other(e.to_string()))?;
    Ok(Keys { kid: newest.0.clone(), encoding: EncodingKey::from_ed_der(&der) })
}

/// Every published public key, read from the database so that a key another
/// replica just created is there at once.
pub async fn published_jwks(db: &Db) -> Result<JwkSet, StoreError> {
    Ok(JwkSet { keys: published(db).await?.iter().map(|k| jwk(&k.0, &k.2)).collect() })
}

async fn published(db: &Db) -> Result<Vec<StoredKey>, StoreError> {
    let since = now_ms() - ROTATE_AFTER_MS - PUBLISH_EXTRA_MS;
    Ok(sqlx::query_as::<_, StoredKey>(
        "SELECT kid, private_pkcs8, public_key, created_at FROM signing_keys WHERE created_at > $1 ORDER BY created_at DESC, kid DESC",
    )
    .bind(since)
    .fetch_all(db.pool())
    .await?)
}

async fn create(db: &Db) -> Result<(), StoreError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| StoreError::Other(e.to_string()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| StoreError::Other(e.to_string()))?;
    sqlx::query("INSERT INTO signing_keys (kid, private_pkcs8, public_key, created_at) VALUES ($1, $2, $3, $4)")
        .bind(new_id("sig"))
        .bind(STANDARD.encode(pkcs8.as_ref()))
        .bind(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()))
        .bind(now_ms())
        .execute(db.pool())
        .await?;
    tracing::info!("created a new token signing key");
    Ok(())
}

fn jwk(kid: &str, public_key: &str) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: public_key.to_owned(),
        }),
    }
}

/// `GET /internal/v1/jwks`: the public keys, for every service to verify tokens.
pub async fn jwks(State(state): State<crate::AuthState>) -> Result<Json<JwkSet>, ApiError> {
    Ok(Json(published_jwks(state.db()).await?))
}
