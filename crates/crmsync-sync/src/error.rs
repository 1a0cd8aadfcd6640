use crmsync_store::StoreError;

/// Errors of a sync run and of the connectors. [`SyncError::is_retryable`] tells the retry
/// loops which ones may succeed when simply tried again.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the server: {0}")]
    Network(String),
    /// The server refused the credentials.
    #[error("the server refused the credentials: {0}")]
    Unauthorized(String),
    /// The server answered with an error status.
    #[error("the server answered {status}: {message}")]
    Server {
        status: u16,
        message: String,
        retry_after: Option<std::time::Duration>,
    },
    /// A change-tracking token the server no longer accepts: the entity must be reconciled.
    #[error("the server's change tracking token has expired: {0}")]
    Expired(String),
    /// The server sent something the engine cannot use.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// Configuration or input that cannot work (bad URL, unknown entity, invalid filter).
    #[error("{0}")]
    Invalid(String),
    /// Something asked for does not exist (a transaction, a run).
    #[error("{0}")]
    NotFound(String),
    /// A change the current state does not allow (a transaction that is already Processed).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
    /// Network errors, 5xx, 429 and retryable store errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Network(_) => true,
            SyncError::Server { status, .. } => *status == 429 || *status >= 500,
            SyncError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}
