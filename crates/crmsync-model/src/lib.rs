//! The vocabulary of crmsync, shared by every other crate: validated names ([`OrgName`],
//! [`EntityName`], [`AttributeName`]), record ids ([`RecordId`]), entity metadata with its
//! attribute types and option sets, typed [`Value`]s and [`Record`]s.
//!
//! Invariants established here and relied upon everywhere else:
//! - a name that exists as a value of one of the name types has passed validation, so storage
//!   code may use it as an SQL identifier (it is still quoted);
//! - an [`EntityMetadata`] that passed [`EntityMetadata::validate`] has its system attributes,
//!   unique attribute names and sane type parameters;
//! - a [`Value`] produced by [`Value::coerce`] fits its attribute (type, length, options).
//!
//! This crate performs no I/O and knows nothing about SQL, HTTP or JSON wire formats beyond
//! plain value conversion.

mod error;
mod metadata;
mod names;
mod record;
mod typed_json;
mod value;

pub use error::{ModelError, ValueError};
pub use metadata::{
    ACTIVITY_ID, AttributeMetadata, AttributeType, EntityMetadata, MAX_MEMO_LENGTH, MAX_STRING_LENGTH,
    MetadataChange, OptionMetadata, OptionSet, SYSTEM_ATTRIBUTES,
};
pub use names::{AttributeName, EntityName, OrgName, RecordId};
pub use record::{EntityReference, Record, RecordBatch};
pub use typed_json::TypedValue;
pub use value::Value;

/// A position in an organization's change history: the `versionnumber` of a write.
/// Version numbers are allocated org-wide, strictly increasing, starting at 1.
pub type Version = i64;
