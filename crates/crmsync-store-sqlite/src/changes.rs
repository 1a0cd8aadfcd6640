//! Change pages, read on a blocking thread with a plain SQLite connection.
//!
//! The async driver hands every row of a result from its worker thread to the reading task
//! through a channel and wakes the task for it; a change page of thousands of rows, read
//! while a sync's client keeps the machine busy, spent about a quarter of the server's time
//! on those handovers. Here the whole page is read and decoded by one thread, in one read
//! transaction (rows, tombstones and the org's version from the same snapshot), and handed
//! over once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crmsync_model::{EntityName, RecordId};
use crmsync_store::sql::{self, Raw, ReadLayout, SqlNames, Storage};
use crmsync_store::{ChangeCursor, ChangeRows, RowChange, StoreError, StoreResult};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::catalog::CACHE_KIB;
use crate::org::Schema;

/// Idle connections kept for the next page.
const KEEP_IDLE: usize = 2;

/// Plain connections to one org's database, opened when needed and kept for reuse.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Closes the idle connections (the org is being closed).
    pub(crate) fn clear(&self) {
        self.idle.lock().expect("reader list poisoned").clear();
    }

    /// Runs `read` with a connection on a blocking thread.
    pub(crate) async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&mut Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let idle = readers.idle.lock().expect("reader list poisoned").pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => open(&readers.path)?,
            };
            let out = read(&mut conn);
            // A connection left inside a transaction (a read that failed half-way) is closed.
            if conn.is_autocommit() {
                let mut idle = readers.idle.lock().expect("reader list poisoned");
                if idle.len() < KEEP_IDLE {
                    idle.push(conn);
                }
            }
            out
        })
        .await
        .map_err(|e| StoreError::database(format!("a reading thread failed: {e}")))?
    }
}

fn open(path: &Path) -> StoreResult<Connection> {
    // Read-write, so that it may use the write-ahead log's shared memory like the others;
    // `query_only` keeps it from writing.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::database(format!("cannot open database {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
    conn.execute_batch(&format!(
        "PRAGMA query_only = ON; PRAGMA cache_size = -{CACHE_KIB}; PRAGMA temp_store = memory;"
    ))
    .map_err(err)?;
    Ok(conn)
}

/// Maps driver errors: busy and locked are retryable.
fn err(e: rusqlite::Error) -> StoreError {
    let retryable = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    StoreError::Database {
        message: e.to_string(),
        retryable,
    }
}

/// What a read of changes found when the metadata changed after `schema` was loaded.
pub(crate) enum Read {
    Page(ChangeRows),
    /// The org's metadata is at this version now: read again with it.
    Stale(i64),
}

/// Reads one page of changes of `entity` (see [`crmsync_store::ChangeStore::changes`]) with
/// `schema`, which must be the org's metadata as of the snapshot read.
pub(crate) fn read_changes(
    conn: &mut Connection,
    schema: &Schema,
    names: &SqlNames,
    entity: &EntityName,
    cursor: ChangeCursor,
    limit: usize,
) -> StoreResult<Read> {
    let (after, deletes_after) = cursor.bounds();
    let tx = conn.transaction().map_err(err)?;
    // The first read fixes the snapshot every later one sees.
    let (current, metadata_version): (i64, i64) = tx
        .query_row("SELECT version, metadata_version FROM _org_state", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(err)?;
    if metadata_version != schema.version {
        return Ok(Read::Stale(metadata_version));
    }
    let meta = schema.entity(entity.as_str())?;
    if cursor.since > 0 {
        let horizon: Option<i64> = tx
            .query_row(
                "SELECT version FROM _change_horizon WHERE entity = ?1",
                [entity.as_str()],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(err(e)),
            })?;
        if let Some(horizon) = horizon.filter(|h| after < *h) {
            return Err(StoreError::Expired {
                entity: entity.to_string(),
                since: after,
                horizon,
            });
        }
    }
    let layout = ReadLayout::new(meta, None)?;
    let fetch = limit as i64 + 1;
    let mut changes = Vec::with_capacity(limit.min(10_000) + 1);
    {
        let mut statement = tx
            .prepare_cached(&sql::select_changes(names, entity.as_str(), &layout))
            .map_err(err)?;
        let mut rows = statement.query((after, fetch)).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let raws = layout
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| raw(row.get_ref(i).map_err(err)?, c.storage))
                .collect::<StoreResult<Vec<Raw>>>()?;
            let (id, version, values) = sql::decode_row(&layout, raws)?;
            changes.push(RowChange::Upsert { id, version, values });
        }
    }
    let mut tombstones = Vec::new();
    if let Some(deletes_after) = deletes_after {
        let pk = meta.primary_id_attribute.as_str();
        let mut statement = tx
            .prepare_cached(&sql::select_tombstones(names, entity.as_str(), pk))
            .map_err(err)?;
        let mut rows = statement
            .query((entity.as_str(), deletes_after, fetch))
            .map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let id = match raw(row.get_ref(0).map_err(err)?, Storage::Guid)? {
                Raw::Uuid(id) => RecordId::from_uuid(id),
                other => return Err(StoreError::database(format!("a tombstone's id is {other:?}"))),
            };
            let version: i64 = row.get(1).map_err(err)?;
            tombstones.push(RowChange::Delete { id, version });
        }
    }
    let columns = layout.names().cloned().collect();
    Ok(Read::Page(ChangeRows::page(
        columns, changes, tombstones, cursor, limit, current,
    )))
}

/// A column as the async driver reads it (see `bind::read`).
fn raw(value: ValueRef<'_>, storage: Storage) -> StoreResult<Raw> {
    let corrupt = || StoreError::database(format!("stored value does not fit its column: {value:?}"));
    Ok(match (storage, value) {
        (_, ValueRef::Null) => Raw::Null,
        (Storage::Text | Storage::Decimal | Storage::EntityName, ValueRef::Text(t)) => {
            Raw::Text(std::str::from_utf8(t).map_err(|_| corrupt())?.to_owned())
        }
        (Storage::Int32 | Storage::Int64 | Storage::Bool | Storage::DateTime, ValueRef::Integer(i)) => {
            Raw::I64(i)
        }
        (Storage::Double, ValueRef::Real(f)) => Raw::F64(f),
        (Storage::Double, ValueRef::Integer(i)) => Raw::F64(i as f64),
        (Storage::Guid, ValueRef::Blob(b)) => Raw::Uuid(uuid::Uuid::from_slice(b).map_err(|_| corrupt())?),
        _ => return Err(corrupt()),
    })
}
