//! The write plugin of a Client org (SPEC §6.6): every Web API write (single requests and
//! `$batch` change sets) is stored through [`store`], which decides how it reaches the
//! Server org.
//!
//! - No connection, or an entity the connection does not sync: stored locally only.
//! - `WriteOffline=true`: the change and its `migrate_transaction` row are stored in one local
//!   transaction; the next sync uploads it.
//! - `WriteOffline=false`: the change is sent to the server first (same record id) and stored
//!   locally only when the server accepted it. A refusal is answered with the server's status
//!   and message; an unreachable server is a 503; in both cases nothing is stored.
//!
//! Writes of the sync itself go straight to the store, never through here: they never create
//! transactions, so no change bounces back and forth.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use crmsync_model::{AttributeName, OrgName, Value};
use crmsync_store::{StoreError, UpsertMode, WriteOp, WriteOutcome, WriteSet};
use crmsync_sync::transactions::{self, ClientChange, Operation};
use crmsync_sync::{Connection, Connector, ServerWrite, SyncError, WriteAction, WriteFailure};

use super::Ctx;
use super::records::{WriteKind, WritePlan};
use crate::ApiError;

/// Why a write was not stored.
#[derive(Debug)]
pub enum WriteError {
    /// The local store refused it (the caller words it for its request).
    Store(StoreError),
    /// The server org refused it or could not be reached.
    Api(ApiError),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

impl From<ApiError> for WriteError {
    fn from(e: ApiError) -> Self {
        WriteError::Api(e)
    }
}

/// Connectors of connected orgs, reused across writes (a Dynamics connector holds an access
/// token); replaced when the connection changes.
#[derive(Default)]
pub struct ConnectorCache {
    entries: Mutex<HashMap<OrgName, Cached>>,
}

/// A connector, and the connection fields it was built from.
type Cached = (String, Arc<dyn Connector>);

impl ConnectorCache {
    pub fn get(
        &self,
        org: &OrgName,
        conn: &Connection,
        secrets_key: &[u8; 32],
    ) -> Result<Arc<dyn Connector>, SyncError> {
        let key = format!(
            "{}|{}|{}|{}|{}",
            conn.server_url,
            conn.backend.as_str(),
            conn.user,
            conn.connected_on.timestamp_micros(),
            conn.allow_private_urls
        );
        let mut entries = self.entries.lock().expect("connector cache");
        if let Some((k, connector)) = entries.get(org)
            && *k == key
        {
            return Ok(connector.clone());
        }
        let connector = crmsync_connectors::interactive_connector(org, conn, secrets_key)?;
        entries.insert(org.clone(), (key, connector.clone()));
        Ok(connector)
    }
}

/// The values a plan writes (empty for a delete).
fn plan_values(plan: &WritePlan) -> BTreeMap<AttributeName, Value> {
    let mut out = BTreeMap::new();
    for op in &plan.writes.ops {
        if let WriteOp::Upsert { batch, .. } = op {
            for (_, values) in &batch.rows {
                for (column, value) in batch.columns.iter().zip(values) {
                    out.insert(column.clone(), value.clone());
                }
            }
        }
    }
    out
}

/// Stores `plans` (all or none) as the module header says. The plans' writes are moved out
/// when they are stored locally only; the plans keep what their answers need.
pub async fn store(
    ctx: &Ctx,
    plans: &mut [WritePlan],
    count_created: bool,
) -> Result<WriteOutcome, WriteError> {
    let store = &ctx.caller.store;
    let conn = Connection::load(&**store).await.map_err(ApiError::from)?;
    let synced = |p: &WritePlan| {
        conn.as_ref()
            .is_some_and(|c| c.settings.entities.contains(&p.entity.logical_name))
    };
    if !plans.iter().any(synced) {
        let mut writes = WriteSet::new();
        for p in plans.iter_mut() {
            writes.ops.append(&mut p.writes.ops);
        }
        writes.count_created = count_created;
        let writes = writes.coalesced();
        if writes.ops.is_empty() {
            return Ok(WriteOutcome::default());
        }
        return Ok(store.write(writes).await?);
    }
    let mut writes = WriteSet::new();
    for p in plans.iter() {
        writes.ops.extend(p.writes.ops.iter().cloned());
    }
    writes.count_created = count_created;
    let mut writes = writes.coalesced();
    let synced: Vec<&WritePlan> = plans.iter().filter(|p| synced(p)).collect();
    let conn = conn.expect("a synced plan implies a connection");
    if conn.settings.write_offline {
        let mut changes = Vec::with_capacity(synced.len());
        for p in &synced {
            changes.push(ClientChange {
                entity: p.entity.logical_name.clone(),
                id: p.id,
                operation: operation(ctx, p).await?,
                values: plan_values(p),
            });
        }
        let queued = transactions::queue(&**store, &changes)
            .await
            .map_err(ApiError::from)?;
        writes.ops.extend(queued.ops);
        return Ok(store.write(writes).await?);
    }
    forward(ctx, &conn, &synced).await?;
    Ok(store.write(writes).await?)
}

/// What an offline write does to its record: an upsert creates or updates, as the record
/// exists or not.
async fn operation(ctx: &Ctx, plan: &WritePlan) -> Result<Operation, WriteError> {
    Ok(match plan.kind {
        WriteKind::Create | WriteKind::Patch(UpsertMode::CreateOnly) => Operation::Create,
        WriteKind::Patch(UpsertMode::UpdateOnly) => Operation::Update,
        WriteKind::Delete => Operation::Delete,
        WriteKind::Patch(UpsertMode::Upsert) => {
            let version = [AttributeName::parse("versionnumber").map_err(ApiError::from)?];
            match ctx
                .caller
                .store
                .retrieve(&plan.entity.logical_name, plan.id, Some(&version))
                .await
            {
                Ok(_) => Operation::Update,
                Err(StoreError::NotFound(_)) => Operation::Create,
                Err(e) => return Err(e.into()),
            }
        }
    })
}

/// Sends the synced plans to the server (as one change set when there are several).
async fn forward(ctx: &Ctx, conn: &Connection, plans: &[&WritePlan]) -> Result<(), ApiError> {
    let connector = ctx
        .state
        .connectors
        .get(&ctx.caller.org, conn, &ctx.state.config.secrets_key)?;
    let mut entities = ctx.caller.store.entities().await?;
    let writes: Vec<ServerWrite> = plans
        .iter()
        .map(|p| ServerWrite {
            entity: p.entity.logical_name.clone(),
            id: p.id,
            action: match p.kind {
                // A new record's id is fresh: an upsert lets a retried request succeed.
                WriteKind::Create | WriteKind::Patch(UpsertMode::Upsert) => WriteAction::Upsert,
                WriteKind::Patch(UpsertMode::CreateOnly) => WriteAction::Create,
                WriteKind::Patch(UpsertMode::UpdateOnly) => WriteAction::Update,
                WriteKind::Delete => WriteAction::Delete,
            },
            values: plan_values(p),
        })
        .collect();
    if crmsync_sync::upload::unknown_targets(&entities, &writes) {
        // A lookup to an entity the client does not sync: the server's metadata names it.
        entities = connector.entities().await.map_err(unreachable)?;
    }
    let results = connector
        .write(&entities, &writes, writes.len() > 1)
        .await
        .map_err(unreachable)?;
    for (w, result) in writes.iter().zip(results) {
        match result {
            Ok(()) => {}
            // Already gone on the server: the local delete goes ahead.
            Err(WriteFailure::NotFound(_)) if w.action == WriteAction::Delete => {}
            Err(WriteFailure::NotFound(m)) => {
                return Err(ApiError::not_found(format!(
                    "the server organization has no such record; nothing was stored: {m}"
                )));
            }
            Err(WriteFailure::Rejected { status, message }) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                return Err(ApiError::new(
                    status,
                    "ServerRefused",
                    format!("the server organization refused the change; nothing was stored: {message}"),
                ));
            }
            Err(WriteFailure::Retryable(message)) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServerUnavailable",
                    format!(
                        "the server organization could not apply the change now; nothing was stored: {message}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A failed request to the server: unreachable or failing is a 503; refused credentials or
/// a broken answer a 502. Nothing was stored either way.
fn unreachable(e: SyncError) -> ApiError {
    let message = format!("the change was not stored: {e}");
    if e.is_retryable() {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServerUnavailable", message)
    } else {
        ApiError::new(StatusCode::BAD_GATEWAY, "UpstreamError", message)
    }
}
