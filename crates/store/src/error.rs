use anno_errors::ApiError;

/// A database failure, classified by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such row")]
    NotFound,
    #[error("conflicts with an existing row: {0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    pub fn io(e: std::io::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match e {
            E::RowNotFound => StoreError::NotFound,
            E::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_owned()),
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Protocol(_) => {
                StoreError::Unavailable(e.to_string())
            }
            E::Configuration(_) => StoreError::Config(e.to_string()),
            other => StoreError::Other(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("Resource"),
            StoreError::Conflict(_) => ApiError::conflict("conflict", "The resource already exists."),
            StoreError::Unavailable(_) => ApiError::unavailable(e),
            StoreError::Config(_) | StoreError::Other(_) => ApiError::internal(e),
        }
    }
}
