//! The raw limit on SQLite: the generated rows bound straight into multi-row
//! `INSERT … ON CONFLICT DO UPDATE` statements in one transaction, on a connection with the
//! same settings as the store's bulk writes (WAL, synchronous=NORMAL, 64 MiB cache). No validation, no
//! metadata, no version allocation beyond a counter.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crmsync_model::{AttributeType, Value};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection};

const ROWS_PER_STATEMENT: usize = 500;

fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    v: &Value,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    match v {
        Value::Null => q.bind(None::<i64>),
        Value::String(s) => q.bind(s.clone()),
        Value::Integer(i) | Value::OptionSet(i) => q.bind(*i),
        Value::BigInt(i) => q.bind(*i),
        Value::Decimal(d) => q.bind(d.to_string()),
        Value::Double(f) => q.bind(*f),
        Value::Boolean(b) => q.bind(*b),
        Value::DateTime(d) => q.bind(d.timestamp_micros()),
        Value::Guid(g) => q.bind(*g.as_uuid()),
        Value::Lookup(r) => q.bind(*r.id.as_uuid()).bind(r.entity.as_str().to_owned()),
    }
}

/// Copies the write-ahead log of the database at `path` back into it and empties the log, then
/// has the system write its dirty pages out: what one measurement wrote is not copied or
/// flushed while the next one runs.
pub async fn settle(path: &Path) -> anyhow::Result<()> {
    let options = SqliteConnectOptions::from_str("sqlite://")?.filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    tokio::process::Command::new("sync").status().await?;
    Ok(())
}

/// Writes every account of `generator` into the `account` table of the database at `path`;
/// returns the time spent writing (generation excluded).
pub async fn upsert_all(path: &Path, generator: &SampleGenerator) -> anyhow::Result<Duration> {
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory")
        // As crmsync's org databases: the log is copied back after the commit, not in it.
        .pragma("wal_autocheckpoint", "0");
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    let mut elapsed = Duration::ZERO;
    let mut version = 0i64;
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    elapsed += started.elapsed();
    let account = crm_entities()
        .into_iter()
        .next()
        .expect("the sample has an account entity");
    for batch in generator.batches(SampleEntity::Account, 50_000) {
        // Storage columns: id, version, then each attribute (two for a lookup).
        let mut cols = vec!["accountid".to_string(), "versionnumber".to_string()];
        let mut lookups = Vec::new();
        for c in &batch.columns {
            cols.push(c.to_string());
            let lookup = account
                .attribute(c.as_str())
                .is_some_and(|a| matches!(a.attribute_type, AttributeType::Lookup { .. }));
            if lookup {
                cols.push(format!("{c}__type"));
            }
            lookups.push(lookup);
        }
        let width = cols.len();
        let started = Instant::now();
        for chunk in batch.rows.chunks(ROWS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|_| format!("({})", vec!["?"; width].join(",")))
                .collect();
            let updates: Vec<String> = cols[1..]
                .iter()
                .map(|c| format!("\"{c}\" = excluded.\"{c}\""))
                .collect();
            let sql = format!(
                "INSERT INTO account ({}) VALUES {} ON CONFLICT (accountid) DO UPDATE SET {}",
                cols.iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(","),
                values.join(","),
                updates.join(",")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, row) in chunk {
                version += 1;
                q = q.bind(*id.as_uuid()).bind(version);
                for (v, lookup) in row.iter().zip(&lookups) {
                    q = match (v, *lookup) {
                        (Value::Null, true) => q.bind(None::<i64>).bind(None::<i64>),
                        _ => bind(q, v),
                    };
                }
            }
            q.execute(&mut *tx).await?;
        }
        elapsed += started.elapsed();
    }
    let started = Instant::now();
    tx.commit().await?;
    Ok(elapsed + started.elapsed())
}
