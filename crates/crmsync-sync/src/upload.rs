//! The upload phase of a sync run (SPEC §6.4–6.5): Pending offline transactions sent to the
//! server in queue order, batched, idempotent, and marked Processed only once the server has
//! acknowledged them.
//!
//! - **Order per record**: a round sends at most one transaction per record; a record's next
//!   transaction goes in a later round. A record whose transaction failed (now, or earlier and
//!   still in Error) keeps its later transactions Pending until the failed one is resolved.
//! - **Idempotent**: a create is an upsert of the client's record id, an update only updates
//!   (a record deleted on the server is never resurrected: Error "deleted on the server"), a
//!   delete that finds nothing is done. A run killed after the server applied a round but
//!   before the client recorded it sends the round again, harmlessly.
//! - **Conflicts** are detected per attribute before an update is sent: the server's current
//!   value differs both from the value the client changed from and from the client's new
//!   value. `ClientWins` sends the change and logs the conflict; `ServerWins` keeps the
//!   server's value and sets the transaction to Error "conflict".
//! - **Pipelined**: a round's outcomes are stored while the next round is sent, and the next
//!   page of the queue is read meanwhile; a crash in between only sends that round again.
//! - **Failures**: a rejected write (validation, permissions) is Error with the server's
//!   message and blocks no other record; a retryable one (5xx, 429) stays Pending and is tried
//!   again in a later pass after a capped, jittered backoff; when the server cannot be reached
//!   at all the phase stops and everything not acknowledged stays Pending.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use crmsync_model::{AttributeName, EntityMetadata, EntityName, RecordId, Value};
use crmsync_query::Columns;

use crate::download::{IDS_PER_QUERY, fetch_all, restricted};
use crmsync_store::OrgStore;
use serde::{Deserialize, Serialize};

use crate::log::{Level, RunLog};
use crate::transactions::{self, Operation, Outcome, Transaction, TxStatus};
use crate::{ConflictPolicy, Connector, ServerWrite, SyncError, WriteAction, WriteFailure};

/// Most writes per `$batch` (Dataverse's limit).
pub const MAX_BATCH: usize = 1000;
/// Passes over the queue when some writes failed in a way that may pass later.
const PASSES: u32 = 3;

/// The upload figures of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadFigures {
    /// Transactions the server acknowledged.
    pub processed: u64,
    /// Transactions set to Error.
    pub errors: u64,
    /// Attributes changed on both sides since the client read them.
    pub conflicts: u64,
    /// Transactions still Pending when the phase ended (retryable failures, waiting behind a
    /// failed transaction of the same record, or the server unreachable).
    pub pending: u64,
}

pub struct Upload<'a> {
    pub store: &'a dyn OrgStore,
    pub connector: &'a dyn Connector,
    pub policy: ConflictPolicy,
    /// Writes per `$batch` (at most [`MAX_BATCH`]).
    pub batch: usize,
    /// First wait before a retry pass (doubled each pass, with jitter).
    pub backoff: Duration,
}

/// A transaction with its entity and its changed and original values, typed.
type Decoded<'a> = (
    &'a Transaction,
    &'a EntityMetadata,
    BTreeMap<AttributeName, Value>,
    BTreeMap<AttributeName, Value>,
);

/// What happened to one round's transactions.
#[derive(Default)]
struct RoundResult {
    outcomes: Vec<Outcome>,
    retry: bool,
}

impl Upload<'_> {
    pub fn new<'a>(
        store: &'a dyn OrgStore,
        connector: &'a dyn Connector,
        policy: ConflictPolicy,
    ) -> Upload<'a> {
        Upload {
            store,
            connector,
            policy,
            batch: MAX_BATCH,
            backoff: Duration::from_millis(500),
        }
    }

    /// Sends every Pending transaction it can; see the module header.
    pub async fn run(&self, log: &mut RunLog) -> Result<UploadFigures, SyncError> {
        let mut figures = UploadFigures::default();
        let entities = self.store.entities().await?;
        for pass in 0..PASSES {
            if pass > 0 {
                let base = self
                    .backoff
                    .saturating_mul(1 << (pass - 1))
                    .min(Duration::from_secs(30));
                let jitter = base.mul_f64(rand::random::<f64>() * 0.5);
                tokio::time::sleep(base + jitter).await;
            }
            if !self.pass(&entities, &mut figures, log).await? {
                break;
            }
        }
        figures.pending = transactions::list(self.store, Some(TxStatus::Pending), 1, 0)
            .await?
            .total;
        Ok(figures)
    }

    /// One pass over the queue; true when some writes may pass if tried again.
    async fn pass(
        &self,
        entities: &[EntityMetadata],
        figures: &mut UploadFigures,
        log: &mut RunLog,
    ) -> Result<bool, SyncError> {
        // Records whose earlier transaction failed: their later ones wait.
        let mut blocked: HashSet<(String, RecordId)> =
            transactions::all_by_status(self.store, &[TxStatus::Error])
                .await?
                .into_iter()
                .map(|t| (t.entity, t.record_id))
                .collect();
        let mut retry = false;
        // Outcomes known but not yet stored: stored while the next round is sent (the
        // server's answers are already in hand; a crash before they are stored only sends
        // that round again).
        let mut unrecorded: Vec<Outcome> = Vec::new();
        let (mut page, mut next) =
            transactions::page_by_status(self.store, &[TxStatus::Pending], None, self.batch).await?;
        while !page.is_empty() {
            // The next page is read while the first round of this one is sent: it holds only
            // transactions after this page's, which this page's outcomes do not touch.
            let mut prefetched = None;
            let mut waiting: Vec<Transaction> = std::mem::take(&mut page);
            while !waiting.is_empty() {
                let mut round = Vec::new();
                let mut later = Vec::new();
                let mut in_round = HashSet::new();
                for t in waiting {
                    let key = (t.entity.clone(), t.record_id);
                    if blocked.contains(&key) {
                        continue;
                    }
                    if in_round.insert(key) {
                        round.push(t);
                    } else {
                        later.push(t);
                    }
                }
                let fetch = async {
                    match (next, prefetched.is_none()) {
                        (Some(after), true) => Some(
                            transactions::page_by_status(
                                self.store,
                                &[TxStatus::Pending],
                                Some(after),
                                self.batch,
                            )
                            .await,
                        ),
                        _ => None,
                    }
                };
                let (sent, recorded, fetched) = tokio::join!(
                    self.round(entities, &round, figures, log),
                    self.record(std::mem::take(&mut unrecorded)),
                    fetch
                );
                recorded?;
                if let Some(fetched) = fetched {
                    prefetched = Some(fetched?);
                }
                let result = sent?;
                retry |= result.retry;
                let records: HashMap<RecordId, (String, RecordId)> = round
                    .iter()
                    .map(|t| (t.id, (t.entity.clone(), t.record_id)))
                    .collect();
                for o in result.outcomes.iter().filter(|o| o.status != TxStatus::Processed) {
                    if let Some(key) = records.get(&o.id) {
                        blocked.insert(key.clone());
                    }
                }
                unrecorded = result.outcomes;
                waiting = later;
            }
            (page, next) = match (next, prefetched) {
                (None, _) => break,
                (Some(_), Some(fetched)) => fetched,
                (Some(after), None) => {
                    transactions::page_by_status(self.store, &[TxStatus::Pending], Some(after), self.batch)
                        .await?
                }
            };
        }
        self.record(unrecorded).await?;
        Ok(retry)
    }

    /// Stores the outcomes of a round.
    async fn record(&self, outcomes: Vec<Outcome>) -> Result<(), SyncError> {
        if !outcomes.is_empty() {
            self.store.write(transactions::outcome_writes(&outcomes)).await?;
        }
        Ok(())
    }

    /// Sends one round (at most one transaction per record) and decides each outcome.
    async fn round(
        &self,
        entities: &[EntityMetadata],
        round: &[Transaction],
        figures: &mut UploadFigures,
        log: &mut RunLog,
    ) -> Result<RoundResult, SyncError> {
        let mut result = RoundResult::default();
        // Decode, and read the server's current values of the updated attributes.
        let mut decoded = Vec::new();
        for t in round {
            let Some(meta) = entities.iter().find(|e| e.logical_name.as_str() == t.entity) else {
                fail(
                    t,
                    format!("the entity '{}' no longer exists", t.entity),
                    log,
                    figures,
                    &mut result,
                );
                continue;
            };
            match (t.typed_changes(meta), t.typed_original(meta)) {
                (Ok(changes), Ok(original)) => decoded.push((t, meta, changes, original)),
                (Err(e), _) | (_, Err(e)) => fail(t, e.to_string(), log, figures, &mut result),
            }
        }
        let server = self.server_values(&decoded).await?;
        let mut sends = Vec::new();
        for (t, meta, changes, original) in decoded {
            let action = match t.operation {
                Operation::Create => WriteAction::Upsert,
                Operation::Update => WriteAction::Update,
                Operation::Delete => WriteAction::Delete,
            };
            if t.operation == Operation::Update {
                let Some(current) = server.get(&(meta.logical_name.clone(), t.record_id)) else {
                    fail(t, "deleted on the server".into(), log, figures, &mut result);
                    continue;
                };
                let conflicts: Vec<&AttributeName> = changes
                    .iter()
                    .filter(|(name, new)| {
                        let now = current.get(*name).unwrap_or(&Value::Null);
                        let before = original.get(*name).unwrap_or(&Value::Null);
                        now != before && now != *new
                    })
                    .map(|(name, _)| name)
                    .collect();
                if !conflicts.is_empty() {
                    figures.conflicts += conflicts.len() as u64;
                    let names = conflicts
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    if self.policy == ConflictPolicy::ServerWins {
                        fail(
                            t,
                            format!(
                                "conflict: {names} changed on the server; the server's value is kept (ServerWins)"
                            ),
                            log,
                            figures,
                            &mut result,
                        );
                        continue;
                    }
                    log.message(
                        Level::Warning,
                        Some(&t.entity),
                        Some(t.record_id),
                        format!("conflict: {names} changed on the server too; the client's value is sent (ClientWins)"),
                    );
                }
            }
            sends.push((
                t,
                ServerWrite {
                    entity: meta.logical_name.clone(),
                    id: t.record_id,
                    action,
                    values: if action == WriteAction::Delete {
                        BTreeMap::new()
                    } else {
                        changes
                    },
                },
            ));
        }
        if sends.is_empty() {
            return Ok(result);
        }
        let writes: Vec<ServerWrite> = sends.iter().map(|(_, w)| w.clone()).collect();
        let server_entities;
        let described = if unknown_targets(entities, &writes) {
            // A lookup to an entity the client does not sync: the server's metadata names it.
            server_entities = self.connector.entities().await?;
            &server_entities[..]
        } else {
            entities
        };
        let answers = match self.connector.write(described, &writes, false).await {
            Ok(answers) => answers,
            Err(e) => {
                // Nothing is known of this round: it stays Pending, and the phase stops.
                let outcomes: Vec<Outcome> = sends
                    .iter()
                    .map(|(t, _)| Outcome {
                        id: t.id,
                        status: TxStatus::Pending,
                        attempts: t.attempts + 1,
                        error: Some(e.to_string()),
                    })
                    .collect();
                self.store.write(transactions::outcome_writes(&outcomes)).await?;
                return Err(e);
            }
        };
        for ((t, _), answer) in sends.iter().zip(answers) {
            let outcome = |status, error| Outcome {
                id: t.id,
                status,
                attempts: t.attempts + 1,
                error,
            };
            match answer {
                Ok(()) => {
                    figures.processed += 1;
                    result.outcomes.push(outcome(TxStatus::Processed, None));
                }
                Err(WriteFailure::NotFound(_)) if t.operation == Operation::Delete => {
                    figures.processed += 1;
                    result.outcomes.push(outcome(TxStatus::Processed, None));
                }
                Err(WriteFailure::NotFound(_)) => {
                    fail(t, "deleted on the server".into(), log, figures, &mut result)
                }
                Err(WriteFailure::Rejected { status, message }) => fail(
                    t,
                    format!("the server refused it ({status}): {message}"),
                    log,
                    figures,
                    &mut result,
                ),
                Err(WriteFailure::Retryable(message)) => {
                    result.retry = true;
                    result.outcomes.push(outcome(TxStatus::Pending, Some(message)));
                }
            }
        }
        Ok(result)
    }

    /// The server's current values of the attributes the round's updates change.
    async fn server_values(
        &self,
        decoded: &[Decoded<'_>],
    ) -> Result<HashMap<(EntityName, RecordId), BTreeMap<AttributeName, Value>>, SyncError> {
        let mut wanted: BTreeMap<&EntityName, (&EntityMetadata, HashSet<AttributeName>, Vec<RecordId>)> =
            BTreeMap::new();
        for (t, meta, changes, _) in decoded {
            if t.operation != Operation::Update {
                continue;
            }
            let entry = wanted
                .entry(&meta.logical_name)
                .or_insert_with(|| (meta, HashSet::new(), Vec::new()));
            entry.1.extend(changes.keys().cloned());
            entry.2.push(t.record_id);
        }
        let mut out = HashMap::new();
        for (entity, (meta, columns, ids)) in wanted {
            let mut columns: Vec<AttributeName> = columns.into_iter().collect();
            columns.push(meta.primary_id_attribute.clone());
            for chunk in ids.chunks(IDS_PER_QUERY) {
                let query = restricted(meta, None, chunk, Columns::List(columns.clone()));
                for r in fetch_all(self.connector, meta, query).await? {
                    if let Some(id) = r.id {
                        out.insert((entity.clone(), id), r.values);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Records a transaction as failed for good (Error, with the reason).
fn fail(
    t: &Transaction,
    message: String,
    log: &mut RunLog,
    figures: &mut UploadFigures,
    result: &mut RoundResult,
) {
    log.message(
        Level::Error,
        Some(&t.entity),
        Some(t.record_id),
        format!("{} not uploaded: {message}", t.operation.label()),
    );
    figures.errors += 1;
    result.outcomes.push(Outcome {
        id: t.id,
        status: TxStatus::Error,
        attempts: t.attempts + 1,
        error: Some(message),
    });
}

/// Whether some lookup value of `writes` targets an entity `entities` does not describe.
pub fn unknown_targets(entities: &[EntityMetadata], writes: &[ServerWrite]) -> bool {
    writes.iter().flat_map(|w| w.values.values()).any(|v| match v {
        Value::Lookup(r) => !entities.iter().any(|e| e.logical_name == r.entity),
        _ => false,
    })
}
