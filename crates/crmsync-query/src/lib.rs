//! The query language of crmsync: FetchXML and OData (`$filter`, `$select`, `$orderby`,
//! `$top`) parsed into one typed [`Query`] tree, validated against entity metadata, lowered to
//! a small [`Predicate`] language that the SQL renderers and the in-memory evaluator share.
//!
//! Pipeline: text -> [`parse_fetchxml`] / [`parse_odata`] -> [`Query`] (validated, operands
//! typed) -> [`lower`] with an [`EvalContext`] (current time, current user) -> [`Predicate`]
//! -> SQL (in the store crate) or [`eval::matches`] (here). The two consumers of a
//! [`Predicate`] must agree row for row; `eval`'s module header is the reference for the
//! semantics the SQL renderers implement.
//!
//! No I/O: the crate knows neither SQL connections nor HTTP. Untrusted text is bounded (input
//! size, XML depth, no DTD) and every failure is a [`QueryError`] that names what is wrong.

mod ast;
mod error;
pub mod eval;
pub mod fetchxml;
mod lower;
mod metadata;
pub mod odata;
mod operand;
mod operators;
mod predicate;

pub use ast::{Columns, Condition, Filter, LinkEntity, LinkType, Operator, OrderBy, Query};
pub use error::QueryError;
pub use eval::{JoinedRow, RecordRow, Row, eval, matches};
/// The defensive XML reader behind FetchXML (no DOCTYPE, bounded size and depth), for other
/// XML the product accepts from untrusted callers.
pub use fetchxml::xml::{Element as XmlElement, parse as parse_xml};
pub use fetchxml::{parse_fetchxml, to_fetchxml};
pub use lower::{EvalContext, lower};
pub use metadata::MetadataSource;
pub use odata::{ODataParams, parse_odata};
pub use operators::{OperandCount, fetchxml_operators};
pub use predicate::{CompareOp, LIKE_ESCAPE, Predicate, escape_like};
