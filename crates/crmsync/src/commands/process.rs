//! `crmsync process …`: the processes (Sync Jobs) of a client organization, on the store
//! named by `--data` / `--database`. Changes take effect for a running `crmsync serve` on the
//! same store at its next poll: the schedule lives in the store's work queue.

use anyhow::Context;
use chrono::Utc;
use crmsync_model::{EntityName, OrgName};
use crmsync_sync::process::{self, Frequency, ProcessInput, SYNC_SERVICE, Step, schedule};
use uuid::Uuid;

use crate::cli::{ProcessCommand, ProcessCreate, ProcessRef, ProcessUpdate, StoreArgs};
use crate::store;

pub async fn run(args: &StoreArgs, cmd: ProcessCommand) -> anyhow::Result<()> {
    match cmd {
        ProcessCommand::Create(c) => create(args, c).await,
        ProcessCommand::List(o) => list(args, &o.org).await,
        ProcessCommand::Update(u) => update(args, u).await,
        ProcessCommand::Delete(r) => {
            let ((_, store), id) = open(args, &r).await?;
            process::delete(&*store, id).await?;
            println!("Process {id} deleted.");
            Ok(())
        }
        ProcessCommand::History(r) => history(args, &r).await,
        ProcessCommand::Run(r) => {
            let ((catalog, store), id) = open(args, &r).await?;
            let queued = schedule::run_now(&*catalog.work(), &*store, id, Utc::now()).await?;
            println!("A run of process {id} is queued now.");
            print(&queued);
            Ok(())
        }
    }
}

type Opened = (
    std::sync::Arc<dyn crmsync_store::Catalog>,
    std::sync::Arc<dyn crmsync_store::OrgStore>,
);

async fn open_org(args: &StoreArgs, org: &str) -> anyhow::Result<Opened> {
    let name = OrgName::parse(org)?;
    let catalog = store::open(args).await?;
    let store = catalog
        .open_org(&name)
        .await
        .with_context(|| format!("cannot open organization '{name}'"))?;
    Ok((catalog, store))
}

async fn open(args: &StoreArgs, r: &ProcessRef) -> anyhow::Result<(Opened, Uuid)> {
    let id = Uuid::parse_str(&r.id).with_context(|| format!("'{}' is not a process id", r.id))?;
    Ok((open_org(args, &r.org).await?, id))
}

fn steps(entities: &[String]) -> anyhow::Result<Vec<Step>> {
    let entities = if entities.iter().any(|e| e == "all") {
        Vec::new()
    } else {
        entities
            .iter()
            .map(|e| EntityName::parse(e))
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(vec![Step {
        function: SYNC_SERVICE.into(),
        entities,
    }])
}

fn print(p: &process::Process) {
    let state = match (p.published, p.activated) {
        (false, _) => "draft",
        (true, false) => "published, deactivated",
        (true, true) => "published, activated",
    };
    let next = p.next_run.map_or("-".to_owned(), |t| t.to_rfc3339());
    let failing = match (&p.last_error, p.consecutive_failures) {
        (Some(e), n) if n > 0 => format!("  failing ({n} in a row): {e}"),
        _ => String::new(),
    };
    println!("{}  {:<24}  {:<24}  next {next}{failing}", p.id, p.name, state);
}

async fn create(args: &StoreArgs, c: ProcessCreate) -> anyhow::Result<()> {
    let (catalog, store) = open_org(args, &c.org).await?;
    let input = ProcessInput {
        name: Some(c.name),
        category: None,
        frequency: Some(Frequency::parse(&c.frequency)?),
        steps: Some(steps(&c.entities)?),
        published: Some(c.publish),
        activated: Some(c.activate),
    };
    let created = schedule::create(&*catalog.work(), &*store, input, Utc::now()).await?;
    print(&created);
    Ok(())
}

async fn list(args: &StoreArgs, org: &str) -> anyhow::Result<()> {
    let (_, store) = open_org(args, org).await?;
    let processes = process::list(&*store).await?;
    if processes.is_empty() {
        println!("No processes.");
    }
    for p in &processes {
        print(p);
    }
    Ok(())
}

async fn update(args: &StoreArgs, u: ProcessUpdate) -> anyhow::Result<()> {
    let r = ProcessRef {
        org: u.org.clone(),
        id: u.id.clone(),
    };
    let ((catalog, store), id) = open(args, &r).await?;
    let flag = |on: bool, off: bool| {
        if on {
            Some(true)
        } else if off {
            Some(false)
        } else {
            None
        }
    };
    let input = ProcessInput {
        name: u.name,
        category: None,
        frequency: u.frequency.as_deref().map(Frequency::parse).transpose()?,
        steps: u.entities.as_deref().map(steps).transpose()?,
        published: flag(u.publish, u.unpublish),
        activated: flag(u.activate, u.deactivate),
    };
    let updated = schedule::update(&*catalog.work(), &*store, id, input, Utc::now()).await?;
    print(&updated);
    Ok(())
}

async fn history(args: &StoreArgs, r: &ProcessRef) -> anyhow::Result<()> {
    let ((_, store), id) = open(args, r).await?;
    process::load(&*store, id).await?;
    let executions = process::history(&*store, id, 50).await?;
    if executions.is_empty() {
        println!("No executions yet.");
    }
    for e in &executions {
        let run = e.run_id.map_or("-".to_owned(), |r| r.to_string());
        println!(
            "{}  {:<18}  run {run}  {}",
            e.started.to_rfc3339(),
            e.status,
            e.error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
