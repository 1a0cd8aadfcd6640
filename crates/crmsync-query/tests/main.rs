//! The query language tests: FetchXML, OData `$filter`, evaluation and lowering to SQL.
//!
//! The modules share one test binary, linked once.

mod common;

mod eval;
mod fetchxml_operators;
mod fetchxml_structure;
mod lower;
mod odata;
mod roundtrip;
