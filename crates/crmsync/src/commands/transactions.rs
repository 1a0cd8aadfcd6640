//! `crmsync transactions …`: the offline transaction queue of a client organization, on the
//! store named by `--data` / `--database`, whether or not a server runs on it.

use anyhow::Context;
use crmsync_model::{OrgName, RecordId};
use crmsync_sync::transactions::{self, TxStatus};

use crate::cli::{StoreArgs, TransactionIds, TransactionsCommand, TransactionsList, TxStatusArg};
use crate::store;

pub async fn run(args: &StoreArgs, cmd: TransactionsCommand) -> anyhow::Result<()> {
    match cmd {
        TransactionsCommand::List(list) => self::list(args, list).await,
        TransactionsCommand::SetPending(ids) => set(args, ids, TxStatus::Pending).await,
        TransactionsCommand::Archive(ids) => set(args, ids, TxStatus::Archived).await,
        TransactionsCommand::SetAllPending(org) => {
            let store = open(args, &org.org).await?;
            let changed = transactions::set_all_pending(&*store).await?;
            println!("{changed} transaction(s) set from Error to Pending.");
            Ok(())
        }
    }
}

async fn open(args: &StoreArgs, org: &str) -> anyhow::Result<std::sync::Arc<dyn crmsync_store::OrgStore>> {
    let name = OrgName::parse(org)?;
    store::open(args)
        .await?
        .open_org(&name)
        .await
        .with_context(|| format!("cannot open organization '{name}'"))
}

async fn list(args: &StoreArgs, cmd: TransactionsList) -> anyhow::Result<()> {
    let store = open(args, &cmd.org).await?;
    let status = match cmd.status {
        TxStatusArg::All => None,
        TxStatusArg::Pending => Some(TxStatus::Pending),
        TxStatusArg::Processed => Some(TxStatus::Processed),
        TxStatusArg::Error => Some(TxStatus::Error),
        TxStatusArg::Archived => Some(TxStatus::Archived),
    };
    anyhow::ensure!((1..=5000).contains(&cmd.top), "--top must be between 1 and 5000");
    let page = transactions::list(&*store, status, cmd.top, cmd.skip).await?;
    if page.transactions.is_empty() {
        println!("No transactions.");
        return Ok(());
    }
    println!(
        "{:<36}  {:<9}  {:<7}  {:<16}  {:<36}  {:>8}  error",
        "id", "status", "op", "entity", "record", "attempts"
    );
    for t in &page.transactions {
        println!(
            "{:<36}  {:<9}  {:<7}  {:<16}  {:<36}  {:>8}  {}",
            t.id,
            t.status.label(),
            t.operation.label(),
            t.entity,
            t.record_id,
            t.attempts,
            t.last_error.as_deref().unwrap_or("")
        );
    }
    let shown = cmd.skip + page.transactions.len() as u64;
    println!("{}–{} of {}", cmd.skip + 1, shown, page.total);
    Ok(())
}

async fn set(args: &StoreArgs, cmd: TransactionIds, to: TxStatus) -> anyhow::Result<()> {
    let store = open(args, &cmd.org).await?;
    let ids = cmd
        .ids
        .iter()
        .map(|id| RecordId::parse(id).with_context(|| format!("'{id}' is not a transaction id")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let changed = transactions::set_status(&*store, &ids, to).await?;
    println!("{changed} transaction(s) set to {}.", to.label());
    Ok(())
}
