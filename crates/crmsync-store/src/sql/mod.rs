//! SQL text for the relational backends (SQLite and PostgreSQL).
//!
//! This module only produces strings and layouts; the backends execute them and bind values.
//! Identifiers come from validated metadata names (see `crmsync_model::names`) and are still
//! quoted; user values never appear in SQL text, only as numbered bind parameters in the order
//! the layouts describe.
//!
//! Storage mapping of attribute types (see [`Storage`]):
//!
//! | attribute type                  | SQLite               | PostgreSQL         |
//! |---------------------------------|----------------------|--------------------|
//! | String, Memo                    | TEXT COLLATE NOCASE  | text               |
//! | Integer, Picklist, State, Status| INTEGER              | integer            |
//! | BigInt                          | INTEGER              | bigint             |
//! | Decimal, Money                  | TEXT (canonical)     | numeric            |
//! | Double                          | REAL                 | double precision   |
//! | Boolean                         | INTEGER 0/1          | boolean            |
//! | DateTime                        | INTEGER (µs, UTC)    | timestamptz        |
//! | Uniqueidentifier                | BLOB (16 bytes)      | uuid               |
//! | Lookup `x`                      | `x` BLOB + `x__type` TEXT | `x` uuid + `x__type` text |
//!
//! SQLite compares text case-insensitively (NOCASE), as Dataverse does; lengths are enforced by
//! the model, not by column types, so widening a String is a metadata-only change.
//!
//! Queries: `filter.rs` renders a `crmsync_query::Predicate` (with the semantics of
//! `crmsync_query::eval` on both databases), `select.rs` plans and renders the statement of a
//! `crmsync_query::Query` page (links, order, paging, count).

mod columns;
mod ddl;
mod dml;
mod filter;
mod prepare;
mod select;
mod values;

pub use columns::{ReadLayout, Slot, Storage, StoredColumn, WriteLayout, storage_of};
pub use ddl::{add_attribute, create_entity_table, plan_metadata_change};
pub use dml::{
    OnConflict, delete_returning, insert_tombstones, lookup_params, select_by_id, select_changes,
    select_existing_ids, select_page, select_tombstones, update_changed_lookups, update_rows, update_slots,
    upsert_rows, write_slots,
};
pub use filter::{ArrayKind, Bind, ColumnRef, Resolver, SqlWriter, render_predicate};
pub use prepare::{
    coerce_rows, decode_record, decode_row, distinct_runs, prepare_upsert, record_label, rows_per_statement,
};
pub use select::{PageStatement, SelectPlan};
pub use values::{Param, Raw, RowContext, Versions, param_of, row_params, rows_params, slot_param, value_of};

/// The SQL flavour of a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The `n`th (1-based) bind parameter. Statements always use their parameters in
    /// order of appearance, so SQLite gets anonymous `?`: numbered `?NNN` parameters make
    /// binding quadratic in the parameter count (SQLite looks each name up in a list).
    pub fn param(&self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// The most bind parameters one statement may carry.
    pub fn max_params(&self) -> usize {
        match self {
            Dialect::Sqlite => 32_000,
            Dialect::Postgres => 65_000,
        }
    }
}

/// The longest identifier PostgreSQL keeps whole (it truncates longer ones).
const MAX_IDENTIFIER_LEN: usize = 63;

/// Quotes an identifier. Names are validated upstream; quoting is the second line of defence.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// How a backend names tables: bare in SQLite (one file per org), schema-qualified in
/// PostgreSQL (one schema per org).
#[derive(Clone, Debug)]
pub struct SqlNames {
    pub dialect: Dialect,
    pub schema: Option<String>,
}

impl SqlNames {
    pub fn new(dialect: Dialect, schema: Option<String>) -> Self {
        Self { dialect, schema }
    }

    pub fn table(&self, name: &str) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote(s), quote(name)),
            None => quote(name),
        }
    }

    /// An index name: unqualified (PostgreSQL puts it in the table's schema). PostgreSQL
    /// truncates identifiers to 63 bytes, which could give two long names the same index: a
    /// longer name keeps a prefix and a hash of the whole name.
    pub fn index(&self, table: &str, suffix: &str) -> String {
        let name = format!("ix_{table}_{suffix}");
        if name.len() <= MAX_IDENTIFIER_LEN {
            return quote(&name);
        }
        // FNV-1a: stable across builds, unlike the std hasher.
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        // Names are ASCII (validated metadata), so any byte offset is a char boundary.
        quote(&format!("{}_{hash:016x}", &name[..MAX_IDENTIFIER_LEN - 17]))
    }

    /// A comma-separated list of `count` parameters starting at `first`.
    pub fn params(&self, first: usize, count: usize) -> String {
        (first..first + count)
            .map(|n| self.dialect.param(n))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::{Dialect, SqlNames};

    #[test]
    fn long_index_names_stay_distinct_within_postgres_identifier_limit() {
        let names = SqlNames::new(Dialect::Postgres, Some("s".into()));
        let table = "a".repeat(50);
        let one = names.index(&table, "parent_account_id");
        let two = names.index(&table, "parent_account_owner");
        assert_ne!(one, two);
        assert!(one.len() - 2 <= 63 && two.len() - 2 <= 63, "{one} {two}");
        assert_eq!(names.index("thing", "parentid"), "\"ix_thing_parentid\"");
    }
}
