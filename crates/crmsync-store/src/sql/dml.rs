//! Statements reading and writing records, tombstones and changes.

use crmsync_model::{RecordId, Value};

use super::columns::{ReadLayout, Slot, Storage, WriteLayout};
use super::values::{Param, param_of};
use super::{SqlNames, quote};

/// What a multi-row insert does with a row whose id exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnConflict {
    /// The statement fails.
    Fail,
    /// The row is updated: every written column except the id and a defaulted `createdon`.
    Update,
    /// As `Update`, but the lookup ids are left as they are, for [`update_changed_lookups`]
    /// to set where they differ. SQLite rewrites the index entries of every column an
    /// update sets, changed or not; most updates leave a record's parents alone.
    UpdateExceptLookups,
}

/// A multi-row insert of `rows` rows in `layout`.
pub fn upsert_rows(
    names: &SqlNames,
    table: &str,
    pk: &str,
    layout: &WriteLayout,
    rows: usize,
    on_conflict: OnConflict,
) -> String {
    let width = layout.width();
    let values: Vec<String> = (0..rows)
        .map(|r| format!("({})", names.params(r * width + 1, width)))
        .collect();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        names.table(table),
        layout.column_list(),
        values.join(", ")
    );
    if on_conflict == OnConflict::Fail {
        return sql;
    }
    let lookups: Vec<&str> = match on_conflict {
        OnConflict::UpdateExceptLookups => layout.lookup_ids().iter().map(|(c, _)| c.name.as_str()).collect(),
        _ => Vec::new(),
    };
    let sets: Vec<String> = layout
        .columns
        .iter()
        .filter(|(c, slot)| *slot != Slot::Id && !(c.name == "createdon" && *slot == Slot::Now))
        .filter(|(c, _)| !lookups.contains(&c.name.as_str()))
        .map(|(c, _)| format!("{0} = excluded.{0}", quote(&c.name)))
        .collect();
    sql.push_str(&format!(
        " ON CONFLICT ({}) DO UPDATE SET {}",
        quote(pk),
        sets.join(", ")
    ));
    sql
}

/// Sets the lookup ids of `rows` records where they differ from the stored ones, binding
/// [`lookup_params`]: `UPDATE t SET a = v.column2, … FROM (VALUES (…), …) AS v WHERE t.pk =
/// v.column1 AND (t.a IS NOT v.column2 OR …)`. Records that do not exist are left alone.
pub fn update_changed_lookups(
    names: &SqlNames,
    table: &str,
    pk: &str,
    layout: &WriteLayout,
    rows: usize,
) -> String {
    let lookups = layout.lookup_ids();
    let width = lookups.len() + 1;
    let column = |i: usize| format!("v.column{}", i + 2);
    let sets: Vec<String> = lookups
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{} = {}", quote(&c.name), column(i)))
        .collect();
    let table = names.table(table);
    let differs: Vec<String> = lookups
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{table}.{} IS NOT {}", quote(&c.name), column(i)))
        .collect();
    let values: Vec<String> = (0..rows)
        .map(|r| format!("({})", names.params(r * width + 1, width)))
        .collect();
    format!(
        "UPDATE {table} SET {} FROM (VALUES {}) AS v WHERE {table}.{} = v.column1 AND ({})",
        sets.join(", "),
        values.join(", "),
        quote(pk),
        differs.join(" OR "),
    )
}

/// The parameters of [`update_changed_lookups`] for `rows`: each id with its lookup ids, once
/// per id (its last row: the values an upsert of the rows leaves), and how many rows that is.
pub fn lookup_params<'a>(
    layout: &WriteLayout,
    rows: &'a [(RecordId, Vec<Value>)],
) -> (Vec<Param<'a>>, usize) {
    let lookups = layout.lookup_ids();
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    let mut params = Vec::with_capacity(rows.len() * (lookups.len() + 1));
    let mut count = 0;
    for (id, values) in rows.iter().rev() {
        if !seen.insert(*id) {
            continue;
        }
        count += 1;
        params.push(Param::Uuid(*id.as_uuid()));
        params.extend(lookups.iter().map(|(_, i)| param_of(&values[*i], Storage::Guid)));
    }
    (params, count)
}

/// The slots an insert or upsert binds per row (every written column), with their storage.
pub fn write_slots(layout: &WriteLayout) -> Vec<(Slot, Storage)> {
    layout
        .columns
        .iter()
        .map(|(c, slot)| (*slot, c.storage))
        .collect()
}

/// The slots an update binds per row, with their storage: every written column except the id
/// and a defaulted `createdon`, then the id.
pub fn update_slots(layout: &WriteLayout) -> Vec<(Slot, Storage)> {
    let mut slots: Vec<(Slot, Storage)> = layout
        .columns
        .iter()
        .filter(|(c, slot)| *slot != Slot::Id && !(c.name == "createdon" && *slot == Slot::Now))
        .map(|(c, slot)| (*slot, c.storage))
        .collect();
    slots.push((Slot::Id, Storage::Guid));
    slots
}

/// An update of `rows` existing records in one statement, binding [`update_slots`] row after
/// row: `UPDATE t SET c = v.column1, … FROM (VALUES (…), …) AS v WHERE t.pk = v.columnN`. The
/// ids of one statement must be distinct (a record matched twice would be updated once).
pub fn update_rows(names: &SqlNames, table: &str, pk: &str, layout: &WriteLayout, rows: usize) -> String {
    let slots = update_slots(layout);
    let width = slots.len();
    let sets: Vec<String> = layout
        .columns
        .iter()
        .filter(|(c, slot)| *slot != Slot::Id && !(c.name == "createdon" && *slot == Slot::Now))
        .enumerate()
        .map(|(i, (c, _))| format!("{} = v.column{}", quote(&c.name), i + 1))
        .collect();
    let values: Vec<String> = (0..rows)
        .map(|r| format!("({})", names.params(r * width + 1, width)))
        .collect();
    let table = names.table(table);
    format!(
        "UPDATE {table} SET {} FROM (VALUES {}) AS v WHERE {table}.{} = v.column{width}",
        sets.join(", "),
        values.join(", "),
        quote(pk),
    )
}

/// Which of `n` ids exist.
pub fn select_existing_ids(names: &SqlNames, table: &str, pk: &str, n: usize) -> String {
    format!(
        "SELECT {0} FROM {1} WHERE {0} IN ({2})",
        quote(pk),
        names.table(table),
        names.params(1, n)
    )
}

/// Deletes `n` ids and returns those that existed.
pub fn delete_returning(names: &SqlNames, table: &str, pk: &str, n: usize) -> String {
    format!(
        "DELETE FROM {1} WHERE {0} IN ({2}) RETURNING {0}",
        quote(pk),
        names.table(table),
        names.params(1, n)
    )
}

/// Inserts `n` tombstones `(entity, id, versionnumber, deletedon)`.
pub fn insert_tombstones(names: &SqlNames, n: usize) -> String {
    let values: Vec<String> = (0..n)
        .map(|r| format!("({})", names.params(r * 4 + 1, 4)))
        .collect();
    format!(
        "INSERT INTO {} (entity, id, versionnumber, deletedon) VALUES {}",
        names.table("_tombstones"),
        values.join(", ")
    )
}

pub fn select_by_id(names: &SqlNames, table: &str, pk: &str, layout: &ReadLayout) -> String {
    format!(
        "SELECT {} FROM {} WHERE {} = {}",
        layout.select_list(),
        names.table(table),
        quote(pk),
        names.dialect.param(1)
    )
}

/// A keyset page ordered by id: parameters are `(after?, limit)`.
pub fn select_page(names: &SqlNames, table: &str, pk: &str, layout: &ReadLayout, after: bool) -> String {
    let (filter, limit) = if after {
        (
            format!(" WHERE {} > {}", quote(pk), names.dialect.param(1)),
            names.dialect.param(2),
        )
    } else {
        (String::new(), names.dialect.param(1))
    };
    format!(
        "SELECT {} FROM {}{filter} ORDER BY {} LIMIT {limit}",
        layout.select_list(),
        names.table(table),
        quote(pk)
    )
}

/// Live rows changed after a version: parameters `(since, limit)`.
pub fn select_changes(names: &SqlNames, table: &str, layout: &ReadLayout) -> String {
    format!(
        "SELECT {} FROM {} WHERE versionnumber > {} ORDER BY versionnumber LIMIT {}",
        layout.select_list(),
        names.table(table),
        names.dialect.param(1),
        names.dialect.param(2)
    )
}

/// Tombstones of an entity after a version, except those of records that exist again:
/// parameters `(entity, after, limit)`.
pub fn select_tombstones(names: &SqlNames, table: &str, pk: &str) -> String {
    format!(
        "SELECT t.id, t.versionnumber FROM {} t WHERE t.entity = {} AND t.versionnumber > {} \
         AND NOT EXISTS (SELECT 1 FROM {} r WHERE r.{} = t.id) ORDER BY t.versionnumber LIMIT {}",
        names.table("_tombstones"),
        names.dialect.param(1),
        names.dialect.param(2),
        names.table(table),
        quote(pk),
        names.dialect.param(3)
    )
}
