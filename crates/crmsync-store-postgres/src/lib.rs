//! The PostgreSQL backend: for deployments that outgrow one machine, where several crmsync
//! instances share one database.
//!
//! Layout in the database, for a namespace `ns` (default `crmsync_`):
//!
//! - schema `{ns}catalog`: `orgs`, `users`, `apps` and `work` (the durable work queue, see
//!   `work.rs`), plus `_schema_version`;
//! - schema `{ns}org_{name}` per organization (`-` in the name becomes `_`; org names never
//!   contain `_`, so the mapping is injective): `_org_state` (the version counter, the
//!   metadata version and the org's epoch), `_entities` (metadata as JSON), `_tombstones`,
//!   `_change_horizon`, `_state`, `_schema_version`, and one table per entity, created and
//!   altered from metadata.
//!
//! Invariants (beyond those of `crmsync_store`):
//! - an organization exists exactly when its catalog row exists: its schema, migrations,
//!   catalog row and admin user are created in one transaction, and deleted (`DROP SCHEMA
//!   … CASCADE` with the row) in one transaction, so a crash never leaves half an org;
//! - every write set and metadata change starts with `UPDATE _org_state … RETURNING`: the row
//!   lock serializes an org's writers across all instances until commit, so versions commit
//!   (and become visible) in increasing order, and all writers take locks in the same order;
//! - change reads run in one `REPEATABLE READ` transaction, so rows, tombstones and the
//!   current version come from one snapshot;
//! - migrations are append-only files in `migrations/`, applied under
//!   `pg_advisory_xact_lock` so instances starting at once do not race.
//!
//! Modules: `catalog.rs` (the [`PgCatalog`]), `org.rs` (one organization: schema cache and
//! metadata), `write.rs` (write sets), `read.rs` (records and changes), `query.rs`
//! (FetchXML/OData queries, one page per statement), `bind.rs` (values to
//! and from PostgreSQL, error mapping), `migrate.rs` (migrations).

mod bind;
mod catalog;
mod migrate;
mod org;
mod query;
mod read;
mod work;
mod write;

#[cfg(feature = "testing")]
pub mod testing;

pub use catalog::{DEFAULT_NAMESPACE, PgCatalog};
pub use org::PgOrg;
pub use work::PgWork;
