//! The platform admin key: set by `ANNO_ADMIN_KEY`, or generated on first start and
//! printed once. Only its digest is stored.

use crate::Settings;
use crate::credentials::{ADMIN_PREFIX, digest, generate};
use anno_store::{Db, StoreError};
use anno_tenancy::{new_id, now_ms};

/// The id of a generated bootstrap key: one row, so that replicas starting
/// together generate (and print) only one.
const GENERATED_ID: &str = "adm_bootstrap";

pub async fn bootstrap(db: &Db, settings: &Settings) -> anyhow::Result<()> {
    match &settings.admin_key {
        Some(secret) => {
            anyhow::ensure!(secret.expose().len() >= 24, "the admin key must be at least 24 characters long");
            let digest = digest(settings.pepper.expose(), secret.expose());
            if find(db, &digest).await?.is_some() {
                return Ok(());
            }
            // A new configured key replaces every earlier one.
            sqlx::query("UPDATE admin_keys SET revoked_at = $1 WHERE revoked_at IS NULL")
                .bind(now_ms())
                .execute(db.pool())
                .await?;
            match insert(db, &new_id("adm"), &digest).await {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!("admin key set from configuration");
        }
        None => {
            let (active,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM admin_keys WHERE revoked_at IS NULL").fetch_one(db.pool()).await?;
            if active == 0 {
                let secret = generate(ADMIN_PREFIX);
                if insert(db, GENERATED_ID, &digest(settings.pepper.expose(), &secret)).await? {
                    // Printed once, to the operator's terminal, never to the logs.
                    eprintln!(
                        "\n  Generated the platform admin key (shown only now; keep it safe):\n\n      {secret}\n\n  Send it as `Authorization: Bearer <admin key>` to /v1/admin/*.\n"
                    );
                }
            }
        }
    }
    Ok(())
}

async fn insert(db: &Db, id: &str, digest: &str) -> Result<bool, StoreError> {
    let done =
        sqlx::query("INSERT INTO admin_keys (id, digest, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(digest)
            .bind(now_ms())
            .execute(db.pool())
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The active admin key with this digest: its id.
pub async fn find(db: &Db, digest: &str) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM admin_keys WHERE digest = $1 AND revoked_at IS NULL")
        .bind(digest)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.0))
}
