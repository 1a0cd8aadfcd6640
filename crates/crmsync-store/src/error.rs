use crmsync_model::{ModelError, Version};

pub type StoreResult<T> = Result<T, StoreError>;

/// Errors of every storage backend. Messages are safe to show to the organization's users;
/// backend details of [`StoreError::Database`] are meant for logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// Input the store refuses for a reason other than metadata validation.
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "change tracking token for '{entity}' has expired (version {since} is older than the retention horizon {horizon}); a full resynchronization is needed"
    )]
    Expired {
        entity: String,
        since: Version,
        horizon: Version,
    },
    #[error("database error: {message}")]
    Database { message: String, retryable: bool },
}

impl StoreError {
    pub fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound(what.into())
    }

    pub fn database(message: impl Into<String>) -> Self {
        StoreError::Database {
            message: message.into(),
            retryable: false,
        }
    }

    /// Whether the same operation may succeed if simply tried again (lock timeouts,
    /// serialization failures, dropped connections).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Database { retryable: true, .. })
    }
}
