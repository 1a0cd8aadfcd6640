//! The serving benchmark: every account read over HTTP from a real server in pages of 5,000
//! (`GET /accounts` following `@odata.nextLink`), beside the raw limit measured in the same
//! run: the same rows read with plain keyset-paged SQL selects on the same database and
//! serialized to JSON. It also prints the database's plan for a filtered FetchXML query, to
//! show it uses an index.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crmsync_model::{AttributeType, MetadataChange, OrgName};
use crmsync_query::{EvalContext, parse_fetchxml};
use crmsync_sample::{SampleEntity, SampleGenerator, crm_entities};
use crmsync_server::{AppState, ServerConfig};
use crmsync_store::{Catalog, NewUser, PageRequest, Role, UpsertMode, WriteSet};
use crmsync_store_sqlite::SqliteCatalog;
use serde_json::{Map, Value as Json};
use sqlx::{AssertSqlSafe, Connection, Row};

const PAGE: usize = 5000;

#[derive(clap::Args)]
pub struct ServeBench {
    /// Number of account records.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
}

fn line(label: &str, rows: u64, d: Duration) {
    println!(
        "  {label:<58} {:>7.2} s {:>9.0} records/s",
        d.as_secs_f64(),
        rows as f64 / d.as_secs_f64().max(1e-9)
    );
}

impl ServeBench {
    pub async fn run(self) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let catalog = Arc::new(SqliteCatalog::open(dir.path()).await?);
        let org = OrgName::parse("bench")?;
        let admin = NewUser {
            email: "bench@example.com".into(),
            password: "bench-password".into(),
            role: Role::Admin,
        };
        catalog.create_org(&org, admin).await?;
        let store = catalog.open_org(&org).await?;
        let changes: Vec<MetadataChange> = crm_entities()
            .into_iter()
            .map(|entity| MetadataChange::CreateEntity { entity })
            .collect();
        store.apply_metadata(&changes).await?;
        let generator = SampleGenerator::new(42, self.records);
        for batch in generator.batches(SampleEntity::Account, crmsync_store::BULK_BATCH_ROWS) {
            store
                .write(WriteSet::new().upsert(SampleEntity::Account.entity_name(), batch, UpsertMode::Upsert))
                .await?;
        }
        println!(
            "serving benchmark: {} accounts in pages of {PAGE}, SQLite in {}",
            self.records,
            dir.path().display()
        );

        let raw = raw_read(&catalog.org_path(&org)).await?;
        line("raw  (keyset-paged SQL select, serialized to JSON)", raw.1, raw.0);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/bench/api/data/v9.2/accounts", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(catalog.clone() as Arc<dyn Catalog>, ServerConfig::default());
        let server = tokio::spawn(crmsync_server::serve(listener, state, async {
            let _ = rx.await;
        }));
        let (http, rows, bytes) = http_read(&url).await?;
        line(
            "http (GET /accounts, odata.maxpagesize=5000, nextLink)",
            rows,
            http,
        );
        println!("  {:.0} MB of JSON over HTTP", bytes as f64 / 1e6);
        anyhow::ensure!(rows == self.records, "the server returned {rows} records");
        println!(
            "  ratio http/raw: {:.2} (target <= 1.5)",
            http.as_secs_f64() / raw.0.as_secs_f64().max(1e-9)
        );
        let _ = tx.send(());
        let _ = server.await;

        let entities = store.entities().await?;
        let fetch = r#"<fetch count="50"><entity name="contact"><attribute name="fullname"/><filter><condition attribute="parentcustomerid" operator="eq" value="00000000-0000-0000-0000-000000000001"/></filter></entity></fetch>"#;
        let query = parse_fetchxml(fetch, &entities)?;
        let plan = store
            .explain(
                &query,
                &EvalContext::new(chrono::Utc::now()),
                &PageRequest::first(50),
            )
            .await?;
        println!(
            "plan of a FetchXML query filtered on contact.parentcustomerid:\n{}",
            plan.trim_end()
        );
        Ok(())
    }
}

/// Reads every account with keyset-paged `SELECT *` and serializes each page as JSON.
async fn raw_read(path: &std::path::Path) -> anyhow::Result<(Duration, u64)> {
    let account = crm_entities().into_iter().next().context("account")?;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
    let started = Instant::now();
    let mut after: Option<uuid::Uuid> = None;
    let mut rows_read = 0u64;
    loop {
        let sql = match after {
            Some(_) => format!("SELECT * FROM account WHERE accountid > ? ORDER BY accountid LIMIT {PAGE}"),
            None => format!("SELECT * FROM account ORDER BY accountid LIMIT {PAGE}"),
        };
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(a) = after {
            q = q.bind(a);
        }
        let rows = q.fetch_all(&mut conn).await?;
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut m = Map::new();
            for a in &account.attributes {
                let name = a.logical_name.as_str();
                let v = match a.attribute_type {
                    AttributeType::Uniqueidentifier | AttributeType::Lookup { .. } => row
                        .try_get::<Option<uuid::Uuid>, _>(name)?
                        .map(|u| Json::String(u.to_string())),
                    AttributeType::String { .. }
                    | AttributeType::Memo { .. }
                    | AttributeType::Decimal { .. }
                    | AttributeType::Money { .. } => {
                        row.try_get::<Option<String>, _>(name)?.map(Json::String)
                    }
                    AttributeType::Double => row.try_get::<Option<f64>, _>(name)?.map(Json::from),
                    _ => row.try_get::<Option<i64>, _>(name)?.map(Json::from),
                };
                m.insert(name.to_owned(), v.unwrap_or(Json::Null));
            }
            page.push(Json::Object(m));
        }
        let bytes = serde_json::to_vec(&page)?;
        std::hint::black_box(bytes);
        rows_read += rows.len() as u64;
        match rows.last() {
            Some(last) if rows.len() == PAGE => after = Some(last.try_get("accountid")?),
            _ => break,
        }
    }
    Ok((started.elapsed(), rows_read))
}

#[derive(serde::Deserialize)]
struct Page {
    value: Vec<serde::de::IgnoredAny>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// Follows the next links of `GET url`; returns the time, the records and the bytes read.
async fn http_read(url: &str) -> anyhow::Result<(Duration, u64, u64)> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let (mut next, mut rows, mut bytes) = (Some(url.to_owned()), 0u64, 0u64);
    while let Some(link) = next.take() {
        let body = client
            .get(&link)
            .basic_auth("bench@example.com", Some("bench-password"))
            .header("prefer", format!("odata.maxpagesize={PAGE}"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        bytes += body.len() as u64;
        // Tokenize the page as any client must, without building values.
        let page: Page = serde_json::from_slice(&body)?;
        rows += page.value.len() as u64;
        next = page.next_link;
    }
    Ok((started.elapsed(), rows, bytes))
}
