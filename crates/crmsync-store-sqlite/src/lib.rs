//! The embedded SQLite backend: a data directory holding `catalog.db` (organizations and
//! users) and `orgs/<name>.db`, one database file per organization.
//!
//! Every database runs in WAL mode with a busy timeout, so a CLI command and a running server
//! can share a data directory. Writes of one organization take an in-process lock and then
//! `BEGIN IMMEDIATE`, so writers never deadlock on a lock upgrade and the version counter is
//! allocated and committed in order (see `crmsync_store`'s invariants).
//!
//! Layout: `catalog.rs` (the [`SqliteCatalog`]), `org.rs` (one organization: schema cache and
//! metadata), `write/` (write sets; `upsert.rs`: multi-row upserts and updates), `read.rs`
//! (records), `changes.rs` (change pages, read on a blocking thread with a plain connection),
//! `query.rs` (FetchXML/OData queries, one page per statement), `bind.rs` (values to and from
//! SQLite), `work.rs` (the durable work queue), `migrate.rs` (append-only migrations in
//! `migrations/`).

mod bind;
mod catalog;
mod changes;
mod migrate;
mod org;
mod query;
mod read;
mod work;
mod write;

pub use catalog::SqliteCatalog;
pub use org::SqliteOrg;
pub use work::SqliteWork;
