//! Sample CRM data for `crmsync org create --sample crm` and the demo: the standard entities
//! (`account`, `contact`, `opportunity`, `lead`, `task`) and a deterministic stream of realistic
//! records for them.
//!
//! Invariants:
//! - the same seed, account count and reference time give identical metadata, records and ids;
//!   another seed gives other data;
//! - records are produced one batch at a time and any record can be rebuilt from its index
//!   alone, so memory does not grow with the number of records;
//! - every generated value is already what [`crmsync_model::Value::coerce`] makes of it for its
//!   attribute, and every column exists in the entity's metadata;
//! - every lookup names a record the generator produces for the target entity (ids are derived
//!   from `(seed, entity, index)`, see `rng.rs`); about 10% of the records of each entity are
//!   inactive (`statecode` 1, `statuscode` 2), the others active (0, 1).
//!
//! Layout: `entities.rs` (metadata and [`SampleEntity`]), `options.rs` (option sets shared by
//! metadata and rows), `generator.rs` ([`SampleGenerator`], counts, batches), `rows/` (one row
//! generator per entity), `words.rs` (word lists), `rng.rs` (addressed randomness and ids).
//! No I/O: writing the batches to a store is the caller's job, entities in [`SampleEntity::ALL`]
//! order.

mod entities;
mod generator;
mod options;
mod rng;
mod rows;
mod words;

pub use entities::{SampleEntity, crm_entities};
pub use generator::{Batches, MAX_ACCOUNTS, SampleCounts, SampleGenerator};
