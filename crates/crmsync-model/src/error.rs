use crate::{AttributeName, EntityName};

/// Validation errors of names, metadata and values. Messages name the offending item so that a
/// user can fix the input without reading logs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("invalid {kind} name '{name}': {rule}")]
    InvalidName {
        kind: &'static str,
        name: String,
        rule: &'static str,
    },
    #[error("invalid GUID '{0}'")]
    InvalidGuid(String),
    #[error("invalid metadata for entity '{entity}': {message}")]
    InvalidMetadata { entity: String, message: String },
    #[error("entity '{entity}' has no attribute '{attribute}'")]
    UnknownAttribute { entity: EntityName, attribute: String },
    #[error("invalid value for attribute '{attribute}': {error}")]
    InvalidValue {
        attribute: AttributeName,
        error: ValueError,
    },
}

/// Why a value does not fit its attribute.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("expected {expected}, got {got}")]
    WrongType { expected: &'static str, got: String },
    #[error("text of {len} characters exceeds the maximum length of {max}")]
    TooLong { len: usize, max: u32 },
    #[error("{value} is outside the allowed range {min}..={max}")]
    OutOfRange { value: String, min: String, max: String },
    #[error("{0} is not a valid option value")]
    UnknownOption(i32),
    #[error("invalid GUID '{0}'")]
    InvalidGuid(String),
    #[error("invalid date/time '{0}' (expected ISO 8601, e.g. 2026-01-31T12:00:00Z)")]
    InvalidDateTime(String),
    #[error("invalid number '{0}'")]
    InvalidNumber(String),
    #[error("lookup target '{got}' is not one of {allowed}")]
    WrongTarget { got: String, allowed: String },
    #[error("attribute is read-only")]
    ReadOnly,
    #[error("a value is required")]
    Required,
}
