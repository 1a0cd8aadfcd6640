//! FetchXML: parsing into a validated [`Query`] and writing a [`Query`] back.
//!
//! Layout: [`xml`] reads the document defensively into an element tree (size, depth and
//! DOCTYPE limits live there), `parse` turns the tree into a query checked against metadata,
//! `write` serializes. Supported: `<fetch top count page paging-cookie returntotalrecordcount
//! distinct>`, `<entity>`, `<attribute>`, `<all-attributes>`, `<order>`, nested `<filter>`,
//! `<condition>` (with `<value>` children and `entityname`), nested `<link-entity>` (inner and
//! outer). Aggregates, column aliases, `valueof` and other link types are refused with a
//! message that says so.

mod parse;
mod write;
pub(crate) mod xml;

pub use parse::MAX_PAGE;
pub use write::to_fetchxml;
pub use xml::{MAX_DEPTH, MAX_INPUT_BYTES};

use crate::{MetadataSource, Query, QueryError};

/// Parses a FetchXML query and validates it against `metadata`.
pub fn parse_fetchxml(xml: &str, metadata: &dyn MetadataSource) -> Result<Query, QueryError> {
    let root = xml::parse(xml)?;
    parse::build_query(&root, metadata)
}
