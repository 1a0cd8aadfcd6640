//! `crmsync connect | metadata update | sync | logs`: the sync commands, on the store named
//! by `--data` / `--database`, whether or not a server runs on it. Connect, metadata update and
//! sync take their turn in the work queue (`queue.rs`), so they never overlap a server's run of
//! the same organization.

use std::sync::Arc;

use anyhow::{Context, bail};
use crmsync_model::{EntityName, OrgName};
use crmsync_server::scheduler::Local;
use crmsync_server::scheduler::webservice::{
    CONNECT_KIND, METADATA_KIND, SYNC_KIND, connect_payload, metadata_payload, sync_payload,
};
use crmsync_store::{Catalog, OrgStore, StoreError};
use crmsync_sync::service::ConnectRequest;
use crmsync_sync::{
    BackendType, Connection, Connector, EntityFigures, RunLog, SyncRunner, SyncSettings, Trigger,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::queue::{Turn, ended_ok};
use crate::cli::{Connect, Logs, MetadataUpdate, StoreArgs, Sync};
use crate::keys::MasterKey;
use crate::store;

/// Purpose of the master-key derivation that seals connection secrets (shared with the server).
pub use crmsync_server::SECRETS_PURPOSE;

/// A connector for a stored connection.
pub fn connector(org: &OrgName, conn: &Connection, key: &MasterKey) -> anyhow::Result<Arc<dyn Connector>> {
    Ok(crmsync_connectors::for_connection(
        org,
        conn,
        &key.derive(SECRETS_PURPOSE),
    )?)
}

/// The catalog, the name of a connected org, and the master key; an error naming what to do
/// when the org has no connection.
async fn open_connected(
    args: &StoreArgs,
    org: &str,
) -> anyhow::Result<(Arc<dyn Catalog>, OrgName, MasterKey)> {
    let name = OrgName::parse(org)?;
    let catalog = store::open(args).await?;
    let client = catalog
        .open_org(&name)
        .await
        .with_context(|| format!("cannot open organization '{name}'"))?;
    Connection::load(&*client)
        .await?
        .with_context(|| format!("'{name}' has no connection: run crmsync connect first"))?;
    Ok((catalog, name, MasterKey::load(&args.data)?))
}

/// Connects through the shared service, building connectors from the master key, outside the
/// work queue: for `crmsync demo`, whose organizations are its own until it serves them.
pub async fn connect_org(
    catalog: &dyn Catalog,
    key: &MasterKey,
    request: ConnectRequest,
) -> anyhow::Result<(Connection, Vec<String>)> {
    let secrets = key.derive(SECRETS_PURPOSE);
    let factory =
        move |org: &OrgName, conn: &Connection| crmsync_connectors::for_connection(org, conn, &secrets);
    let (conn, update) =
        crmsync_sync::service::connect(catalog, &key.derive(SECRETS_PURPOSE), request, &factory).await?;
    let mut lines = update.describe();
    lines.extend(update.notes);
    Ok((conn, lines))
}

pub async fn connect(args: &StoreArgs, cmd: Connect) -> anyhow::Result<()> {
    let entities = cmd
        .entities
        .iter()
        .map(|e| EntityName::parse(e.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let filters_xml = match &cmd.filters {
        Some(path) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        None => None,
    };
    let org = OrgName::parse(&cmd.client_org)?;
    let request = ConnectRequest {
        client_org: org.clone(),
        server_url: cmd.server_url.clone(),
        backend: BackendType::parse(&cmd.backend)?,
        user: cmd.user.clone(),
        password: cmd.password.clone(),
        entities,
        filters_xml,
        write_offline: cmd.write_offline,
        allow_private_urls: cmd.allow_private_urls,
        registration: None,
    };
    let catalog = store::open(args).await?;
    let key = MasterKey::load(&args.data)?;
    // A connect that creates its org is queued like a registration: before the org exists.
    let new_org = match catalog.org_info(&org).await {
        Ok(_) => false,
        Err(StoreError::NotFound(_)) => true,
        Err(e) => return Err(e.into()),
    };
    let turn = Turn::new(catalog.clone(), &key, &cmd.queue, cmd.allow_private_urls);
    let payload = connect_payload(&key.derive(SECRETS_PURPOSE), &request);
    let ended = turn
        .run(&org, CONNECT_KIND, payload, new_org, &Local::default())
        .await?;
    let result = ended_ok(&ended)?;
    let conn = Connection::load(&*catalog.open_org(&org).await?)
        .await?
        .with_context(|| format!("'{org}' has no connection after connecting"))?;
    println!(
        "Connected '{org}' to {} ({}).",
        conn.server_url,
        conn.backend.as_str()
    );
    let names: Vec<&str> = conn.settings.entities.iter().map(|e| e.as_str()).collect();
    println!(
        "Entities: {}; filtered: {}.",
        names.join(", "),
        conn.settings.filters.len()
    );
    let changes = lines(&result["metadataChanges"]);
    println!("Metadata update: {} change(s).", changes.len());
    for line in changes.iter().chain(&lines(&result["notes"])) {
        println!("  {line}");
    }
    Ok(())
}

/// The strings of a JSON array of a work result.
fn lines(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

pub async fn metadata_update(args: &StoreArgs, cmd: MetadataUpdate) -> anyhow::Result<()> {
    let (catalog, org, key) = open_connected(args, &cmd.client_org).await?;
    let turn = Turn::new(catalog, &key, &cmd.queue, false);
    let ended = turn
        .run(
            &org,
            METADATA_KIND,
            metadata_payload(cmd.preview),
            false,
            &Local::default(),
        )
        .await?;
    let result = ended_ok(&ended)?;
    let changes = lines(&result["changes"]);
    if changes.is_empty() {
        println!("'{org}' is up to date with the server's metadata.");
        return Ok(());
    }
    for line in &changes {
        println!("  {line}");
    }
    for note in lines(&result["notes"]) {
        println!("  note: {note}");
    }
    if cmd.preview {
        println!("Preview: {} change(s), nothing applied.", changes.len());
    } else {
        println!("Applied {} change(s).", changes.len());
    }
    Ok(())
}

/// A progress bar over entities (hidden when not on a terminal).
struct Bar(ProgressBar);

impl crmsync_sync::Progress for Bar {
    fn entity_started(&self, entity: &str, index: usize, count: usize) {
        self.0.set_length(count as u64);
        self.0.set_position(index as u64);
        self.0.set_message(entity.to_owned());
    }

    fn entity_done(&self, _: &EntityFigures) {
        self.0.inc(1);
    }
}

/// Page and batch sizes of a run (the defaults unless a test or benchmark asks otherwise).
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    pub page_size: usize,
    pub batch_rows: usize,
    pub upload_batch: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            page_size: 5000,
            batch_rows: crmsync_store::BULK_BATCH_ROWS,
            upload_batch: crmsync_sync::upload::MAX_BATCH,
        }
    }
}

/// A progress bar over `entities` entities (hidden when not on a terminal).
fn progress_bar(entities: usize) -> ProgressBar {
    let bar = ProgressBar::new(entities as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} entities").expect("valid template"),
    );
    bar
}

/// A sync run straight on the stores, outside the work queue: for `crmsync demo`, whose
/// organizations are its own until it serves them.
pub async fn run_sync(
    client: Arc<dyn OrgStore>,
    server: Arc<dyn Connector>,
    settings: SyncSettings,
    full: bool,
    tuning: Tuning,
) -> anyhow::Result<RunLog> {
    let bar = progress_bar(settings.entities.len());
    let mut runner = SyncRunner::new(client, server, settings);
    runner.page_size = tuning.page_size.max(1);
    runner.batch_rows = tuning.batch_rows.max(1);
    runner.upload_batch = tuning.upload_batch;
    runner.full = full;
    let log = runner.run(Trigger::Manual, &Bar(bar.clone())).await?;
    bar.finish_and_clear();
    Ok(log)
}

pub fn print_run(log: &RunLog) {
    println!(
        "Run {} ({:?}, {:?}) {} — {:.1} s",
        log.id,
        log.trigger,
        log.status,
        log.started.format("%Y-%m-%d %H:%M:%S UTC"),
        log.ended
            .map(|e| (e - log.started).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0)
    );
    println!(
        "  {:<14} {:>8} {:>8} {:>8} {:>12} {:>7}",
        "entity", "created", "updated", "deleted", "filtered-out", "errors"
    );
    for e in log.entities.iter().chain(std::iter::once(&log.totals())) {
        println!(
            "  {:<14} {:>8} {:>8} {:>8} {:>12} {:>7}{}",
            e.entity,
            e.created,
            e.updated,
            e.deleted,
            e.filtered_out,
            e.errors,
            if e.reconciled { "  (reconciled)" } else { "" }
        );
    }
    let u = &log.upload;
    if u.processed + u.errors + u.pending > 0 {
        println!(
            "  upload: {} processed, {} failed (Error), {} conflicts, {} still pending",
            u.processed, u.errors, u.conflicts, u.pending
        );
    }
}

pub async fn sync(args: &StoreArgs, cmd: Sync) -> anyhow::Result<()> {
    let (catalog, org, key) = open_connected(args, &cmd.client_org).await?;
    let client = catalog.open_org(&org).await?;
    let turn = Turn::new(catalog, &key, &cmd.queue, false);
    let bar = progress_bar(0);
    let local = Local {
        progress: Some(Arc::new(Bar(bar.clone()))),
        page_size: Some(cmd.page_size),
        batch_rows: Some(cmd.batch_rows),
        upload_batch: Some(cmd.upload_batch),
    };
    let payload = sync_payload(&[], cmd.full, Trigger::Manual);
    let ended = turn.run(&org, SYNC_KIND, payload, false, &local).await?;
    bar.finish_and_clear();
    let run = ended
        .result
        .as_ref()
        .and_then(|r| r["runId"].as_str())
        .map(str::to_owned);
    let Some(run) = run else {
        // No run: the sync could not start (its failure says why).
        ended_ok(&ended)?;
        bail!("the sync of '{org}' recorded no run");
    };
    let log = crmsync_sync::logs(&*client, usize::MAX)
        .await?
        .into_iter()
        .find(|l| l.id.to_string() == run)
        .with_context(|| format!("the log of run {run} is not stored"))?;
    print_run(&log);
    for m in log
        .messages
        .iter()
        .filter(|m| m.level != crmsync_sync::Level::Info)
    {
        println!(
            "  {:?}: {}{}",
            m.level,
            m.entity.as_deref().map(|e| format!("{e}: ")).unwrap_or_default(),
            m.text
        );
    }
    if log.status == crmsync_sync::RunStatus::Failed {
        bail!("the sync failed; see the messages above");
    }
    Ok(())
}

pub async fn logs(args: &StoreArgs, cmd: Logs) -> anyhow::Result<()> {
    let name = OrgName::parse(&cmd.org)?;
    let client = store::open(args).await?.open_org(&name).await?;
    let runs = crmsync_sync::logs(&*client, usize::MAX).await?;
    match cmd.run_id {
        None => {
            if runs.is_empty() {
                println!("No sync runs.");
            }
            for run in runs.iter().take(cmd.top) {
                let t = run.totals();
                println!(
                    "{}  {}  {:<18} {:<10} created {} updated {} deleted {} filtered-out {} errors {}",
                    run.id,
                    run.started.format("%Y-%m-%d %H:%M:%S"),
                    format!("{:?}", run.status),
                    format!("{:?}", run.trigger).to_lowercase(),
                    t.created,
                    t.updated,
                    t.deleted,
                    t.filtered_out,
                    t.errors
                );
            }
        }
        Some(id) => {
            let run = runs
                .iter()
                .find(|r| r.id.to_string() == id)
                .with_context(|| format!("no run '{id}' in '{name}'"))?;
            print_run(run);
            for m in &run.messages {
                let record = m.record_id.map(|r| format!(" {r}")).unwrap_or_default();
                println!(
                    "  {} {:?} {}{record}: {}",
                    m.time.format("%H:%M:%S"),
                    m.level,
                    m.entity.as_deref().unwrap_or("-"),
                    m.text
                );
            }
            if run.messages_dropped > 0 {
                println!("  … {} more messages not kept", run.messages_dropped);
            }
        }
    }
    Ok(())
}
