//! [`ApiError`]: the one error type at the HTTP edge. Every error response is
//! `{"error":{"code":"…","message":"…"}}` with a fitting status; internal details are logged,
//! never returned.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crmsync_model::ModelError;
use crmsync_query::QueryError;
use crmsync_store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing or invalid credentials for this organization",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, "PreconditionFailed", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "this method is not allowed on this resource",
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the server failed to process the request",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} does not exist")),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "Conflict", m),
            StoreError::Invalid(m) => ApiError::bad_request(m.to_string()),
            StoreError::BadRequest(m) => ApiError::bad_request(m),
            e @ StoreError::Expired { .. } => {
                ApiError::new(StatusCode::GONE, "ChangeTokenExpired", e.to_string())
            }
            StoreError::Database {
                message,
                retryable: true,
            } => {
                tracing::warn!(error = %message, "retryable storage error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "the store is busy; try again",
                )
            }
            e @ StoreError::Database { .. } => ApiError::internal(e),
        }
    }
}

/// Errors of the sync engine and of the connection to the server org. Trouble with the
/// server (unreachable, refusing the stored credentials, answering an error) is a 502: the
/// request was fine, the upstream was not.
impl From<crmsync_sync::SyncError> for ApiError {
    fn from(e: crmsync_sync::SyncError) -> Self {
        use crmsync_sync::SyncError;
        match e {
            SyncError::Invalid(m) => ApiError::bad_request(m),
            SyncError::NotFound(m) => ApiError::not_found(m),
            SyncError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "Conflict", m),
            SyncError::Store(e) => e.into(),
            e @ (SyncError::Network(_)
            | SyncError::Unauthorized(_)
            | SyncError::Server { .. }
            | SyncError::Expired(_)
            | SyncError::Protocol(_)) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "UpstreamError", e.to_string())
            }
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidQuery", e.to_string())
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}
