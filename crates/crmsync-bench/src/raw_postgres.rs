//! The raw limit on PostgreSQL: the generated rows bound straight into multi-row
//! `INSERT … ON CONFLICT DO UPDATE` statements in one transaction, typed as the columns are.

use std::time::{Duration, Instant};

use crmsync_model::{AttributeType, Value};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};
use crmsync_store::sql::{Storage, storage_of};
use sqlx::{AssertSqlSafe, PgPool};

const ROWS_PER_STATEMENT: usize = 500;

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind<'q>(q: PgQuery<'q>, v: &Value, storage: Storage) -> PgQuery<'q> {
    match (v, storage) {
        (Value::Null, Storage::Text | Storage::EntityName) => q.bind(None::<String>),
        (Value::Null, Storage::Int32) => q.bind(None::<i32>),
        (Value::Null, Storage::Int64) => q.bind(None::<i64>),
        (Value::Null, Storage::Decimal) => q.bind(None::<rust_decimal::Decimal>),
        (Value::Null, Storage::Double) => q.bind(None::<f64>),
        (Value::Null, Storage::Bool) => q.bind(None::<bool>),
        (Value::Null, Storage::DateTime) => q.bind(None::<chrono::DateTime<chrono::Utc>>),
        (Value::Null, Storage::Guid) => q.bind(None::<uuid::Uuid>),
        (Value::String(s), _) => q.bind(s.clone()),
        (Value::Integer(i) | Value::OptionSet(i), _) => q.bind(*i),
        (Value::BigInt(i), _) => q.bind(*i),
        (Value::Decimal(d), _) => q.bind(*d),
        (Value::Double(f), _) => q.bind(*f),
        (Value::Boolean(b), _) => q.bind(*b),
        (Value::DateTime(d), _) => q.bind(*d),
        (Value::Guid(g), _) => q.bind(*g.as_uuid()),
        (Value::Lookup(r), _) => q.bind(*r.id.as_uuid()).bind(r.entity.as_str().to_owned()),
    }
}

/// Writes every account of `generator` into `{schema}.account`; returns the time spent
/// writing (generation excluded).
pub async fn upsert_all(
    pool: &PgPool,
    schema: &str,
    generator: &SampleGenerator,
) -> anyhow::Result<Duration> {
    let account = crm_entities()
        .into_iter()
        .next()
        .expect("the sample has an account entity");
    let mut elapsed = Duration::ZERO;
    let mut version = 0i64;
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    elapsed += started.elapsed();
    for batch in generator.batches(SampleEntity::Account, 50_000) {
        let mut cols = vec!["accountid".to_string(), "versionnumber".to_string()];
        let mut types = Vec::new();
        for c in &batch.columns {
            let ty = account
                .attribute(c.as_str())
                .map(|a| a.attribute_type.clone())
                .unwrap_or(AttributeType::BigInt);
            cols.push(c.to_string());
            if matches!(ty, AttributeType::Lookup { .. }) {
                cols.push(format!("{c}__type"));
            }
            types.push(ty);
        }
        let width = cols.len();
        let started = Instant::now();
        for chunk in batch.rows.chunks(ROWS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|r| {
                    format!(
                        "({})",
                        (1..=width)
                            .map(|p| format!("${}", r * width + p))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                })
                .collect();
            let updates: Vec<String> = cols[1..]
                .iter()
                .map(|c| format!("\"{c}\" = excluded.\"{c}\""))
                .collect();
            let sql = format!(
                "INSERT INTO \"{schema}\".account ({}) VALUES {} ON CONFLICT (accountid) DO UPDATE SET {}",
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
                for (v, ty) in row.iter().zip(&types) {
                    q = match (v, ty) {
                        (Value::Null, AttributeType::Lookup { .. }) => {
                            q.bind(None::<uuid::Uuid>).bind(None::<String>)
                        }
                        _ => bind(q, v, storage_of(ty)),
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
