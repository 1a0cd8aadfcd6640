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
//! - **Pipelined**: two rounds are out at once (the server reads one while it stores the
//!   other), the next round is prepared while they are, a round's outcomes are stored while
//!   later rounds are sent, and the queue is read ahead meanwhile; a crash in between only
//!   sends those rounds again. Rounds out at once never share a record.
//! - **Failures**: a rejected write (validation, permissions) is Error with the server's
//!   message and blocks no other record; a retryable one (5xx, 429) stays Pending and is tried
//!   again in a later pass after a capped, jittered backoff; when the server cannot be reached
//!   at all the phase stops and everything not acknowledged stays Pending.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use crmsync_model::{AttributeName, EntityMetadata, EntityName, RecordId, Value};
use crmsync_query::Columns;
use futures::StreamExt;
use futures::stream::FuturesOrdered;

use crate::download::{IDS_PER_QUERY, fetch_all, restricted};
use crmsync_store::OrgStore;
use serde::{Deserialize, Serialize};

use crate::log::{Level, RunLog};
use crate::transactions::{self, Operation, Outcome, Queued, TxStatus};
use crate::{ConflictPolicy, Connector, ServerWrite, SyncError, WriteAction, WriteFailure};

/// Most writes per `$batch` (Dataverse's limit).
pub const MAX_BATCH: usize = 1000;
/// Passes over the queue when some writes failed in a way that may pass later.
const PASSES: u32 = 3;
/// Rounds sent and not yet answered: the next one is on its way while the server stores the
/// one before.
const IN_FLIGHT: usize = 2;

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
    &'a Queued,
    &'a EntityMetadata,
    BTreeMap<AttributeName, Value>,
    BTreeMap<AttributeName, Value>,
);

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
        let mut blocked: HashSet<RecordKey> = transactions::all_by_status(self.store, &[TxStatus::Error])
            .await?
            .into_iter()
            .map(|t| (t.entity, t.record_id))
            .collect();
        let mut queue = Queue::new(self.batch);
        let mut retry = false;
        // Outcomes known but not yet stored: stored while the next rounds are sent (the
        // server's answers are already in hand; a crash before they are stored only sends
        // those rounds again).
        let mut unrecorded: Vec<Outcome> = Vec::new();
        // Rounds sent and not yet answered, oldest first, and the records of each.
        let mut in_flight: FuturesOrdered<_> = FuturesOrdered::new();
        let mut busy: VecDeque<HashSet<RecordKey>> = VecDeque::new();
        let mut ready: Option<Prepared> = None;
        let mut answers: Vec<Result<Sent, SyncError>> = Vec::new();
        loop {
            let mut failure = None;
            for answer in answers.drain(..) {
                busy.pop_front();
                match answer {
                    Ok(sent) => retry |= sent.absorb(figures, log, &mut blocked, &mut unrecorded),
                    Err(e) => failure = failure.or(Some(e)),
                }
            }
            if let Some(e) = failure {
                // The server could not be reached: what the other rounds out learnt is kept,
                // and the phase stops.
                while let Some(other) = in_flight.next().await {
                    let other: Result<Sent, SyncError> = other;
                    if let Ok(sent) = other {
                        sent.absorb(figures, log, &mut blocked, &mut unrecorded);
                    }
                }
                self.record(unrecorded).await?;
                return Err(e);
            }
            while in_flight.len() < IN_FLIGHT
                && let Some(prepared) = ready.take()
            {
                busy.push_back(prepared.round.iter().map(key).collect());
                in_flight.push_back(self.send(entities, prepared));
            }
            if in_flight.is_empty() {
                // Nothing out and nothing prepared: read on, or the pass is over.
                match queue.next_round(self.store, &blocked).await? {
                    Some(round) => {
                        ready = Some(self.prepare(entities, round).await?);
                        continue;
                    }
                    None => break,
                }
            }
            // The next round is prepared (decoded, its conflicts read) while the rounds out
            // are sent. It holds none of their records (their later transactions wait for a
            // later round), so their writes change nothing it reads, and their failures
            // block nothing in it.
            let sending: HashSet<RecordKey> = busy.iter().flatten().cloned().collect();
            let ahead = match ready {
                None => queue.round(&blocked, &sending),
                Some(_) => None,
            };
            let refill = queue.wants_refill();
            let (next, recorded, refilled) = {
                let work = async {
                    tokio::join!(
                        async {
                            match ahead {
                                Some(round) => Some(self.prepare(entities, round).await),
                                None => None,
                            }
                        },
                        self.record(std::mem::take(&mut unrecorded)),
                        async {
                            match refill {
                                true => Some(queue.read(self.store).await),
                                false => None,
                            }
                        }
                    )
                };
                tokio::pin!(work);
                let mut done = None;
                loop {
                    tokio::select! {
                        out = &mut work, if done.is_none() => done = Some(out),
                        Some(answer) = in_flight.next(), if !in_flight.is_empty() => answers.push(answer),
                    }
                    // On once the work is done and the next round can go out, or an answer
                    // is in (or nothing is out any more).
                    if let Some((next, recorded, refilled)) = &done {
                        let failed = recorded.is_err()
                            || matches!(next, Some(Err(_)))
                            || matches!(refilled, Some(Err(_)));
                        let can_send = in_flight.len() < IN_FLIGHT && matches!(next, Some(Ok(_)));
                        if failed || can_send || in_flight.is_empty() || !answers.is_empty() {
                            break;
                        }
                    }
                }
                done.expect("the loop ends once the work is done")
            };
            recorded?;
            if let Some(page) = refilled {
                queue.append(page?);
            }
            if let Some(prepared) = next {
                ready = Some(prepared?);
            }
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

    /// Decodes a round (at most one transaction per record), reads the server's current
    /// values of what its updates change and decides what to send; transactions that cannot
    /// be sent end in Error here.
    async fn prepare(&self, entities: &[EntityMetadata], round: Vec<Queued>) -> Result<Prepared, SyncError> {
        let mut done = Done::default();
        let mut decoded = Vec::new();
        for t in &round {
            let Some(meta) = entities.iter().find(|e| e.logical_name.as_str() == t.entity) else {
                done.fail(t, format!("the entity '{}' no longer exists", t.entity));
                continue;
            };
            match (t.typed_changes(meta), t.typed_original(meta)) {
                (Ok(changes), Ok(original)) => decoded.push((t, meta, changes, original)),
                (Err(e), _) | (_, Err(e)) => done.fail(t, e.to_string()),
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
                    done.fail(t, "deleted on the server".into());
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
                    done.figures.conflicts += conflicts.len() as u64;
                    let names = conflicts
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    if self.policy == ConflictPolicy::ServerWins {
                        done.fail(
                            t,
                            format!(
                                "conflict: {names} changed on the server; the server's value is kept (ServerWins)"
                            ),
                        );
                        continue;
                    }
                    done.note(
                        Level::Warning,
                        t,
                        format!("conflict: {names} changed on the server too; the client's value is sent (ClientWins)"),
                    );
                }
            }
            sends.push((
                t.id,
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
        Ok(Prepared { round, sends, done })
    }

    /// Sends a prepared round and decides each outcome.
    async fn send(&self, entities: &[EntityMetadata], prepared: Prepared) -> Result<Sent, SyncError> {
        let Prepared {
            round,
            sends,
            mut done,
        } = prepared;
        if sends.is_empty() {
            return Ok(Sent { round, result: done });
        }
        let by_id: HashMap<RecordId, &Queued> = round.iter().map(|t| (t.id, t)).collect();
        let (ids, writes): (Vec<RecordId>, Vec<ServerWrite>) = sends.into_iter().unzip();
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
                let outcomes: Vec<Outcome> = ids
                    .iter()
                    .map(|id| Outcome {
                        id: *id,
                        status: TxStatus::Pending,
                        attempts: by_id[id].attempts + 1,
                        error: Some(e.to_string()),
                    })
                    .collect();
                self.store.write(transactions::outcome_writes(&outcomes)).await?;
                return Err(e);
            }
        };
        for (id, answer) in ids.iter().zip(answers) {
            let t = by_id[id];
            let outcome = |status, error| Outcome {
                id: t.id,
                status,
                attempts: t.attempts + 1,
                error,
            };
            match answer {
                Ok(()) => {
                    done.figures.processed += 1;
                    done.outcomes.push(outcome(TxStatus::Processed, None));
                }
                Err(WriteFailure::NotFound(_)) if t.operation == Operation::Delete => {
                    done.figures.processed += 1;
                    done.outcomes.push(outcome(TxStatus::Processed, None));
                }
                Err(WriteFailure::NotFound(_)) => done.fail(t, "deleted on the server".into()),
                Err(WriteFailure::Rejected { status, message }) => {
                    done.fail(t, format!("the server refused it ({status}): {message}"))
                }
                Err(WriteFailure::Retryable(message)) => {
                    done.retry = true;
                    done.outcomes.push(outcome(TxStatus::Pending, Some(message)));
                }
            }
        }
        Ok(Sent { round, result: done })
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

/// What is known of a round's transactions so far: outcomes decided, figures and log
/// messages, kept apart from the run's until merged (rounds are prepared and sent at once).
#[derive(Default)]
struct Done {
    outcomes: Vec<Outcome>,
    retry: bool,
    figures: UploadFigures,
    notes: Vec<(Level, String, RecordId, String)>,
}

impl Done {
    fn note(&mut self, level: Level, t: &Queued, text: String) {
        self.notes.push((level, t.entity.clone(), t.record_id, text));
    }

    /// Records a transaction as failed for good (Error, with the reason).
    fn fail(&mut self, t: &Queued, message: String) {
        self.note(
            Level::Error,
            t,
            format!("{} not uploaded: {message}", t.operation.label()),
        );
        self.figures.errors += 1;
        self.outcomes.push(Outcome {
            id: t.id,
            status: TxStatus::Error,
            attempts: t.attempts + 1,
            error: Some(message),
        });
    }
}

/// A round ready to send: its transactions, the writes to send (by transaction id), and
/// what was decided while preparing it.
struct Prepared {
    round: Vec<Queued>,
    sends: Vec<(RecordId, ServerWrite)>,
    done: Done,
}

/// A round sent: its transactions and every outcome.
struct Sent {
    round: Vec<Queued>,
    result: Done,
}

impl Sent {
    /// Takes in a round's answer: its figures and log, the records its failures block, its
    /// outcomes to store. True when some of it may pass if tried again.
    fn absorb(
        self,
        figures: &mut UploadFigures,
        log: &mut RunLog,
        blocked: &mut HashSet<RecordKey>,
        unrecorded: &mut Vec<Outcome>,
    ) -> bool {
        self.merge_into(figures, log);
        for o in self
            .result
            .outcomes
            .iter()
            .filter(|o| o.status != TxStatus::Processed)
        {
            if let Some(t) = self.round.iter().find(|t| t.id == o.id) {
                blocked.insert(key(t));
            }
        }
        unrecorded.extend(self.result.outcomes);
        self.result.retry
    }

    fn merge_into(&self, figures: &mut UploadFigures, log: &mut RunLog) {
        let f = &self.result.figures;
        figures.processed += f.processed;
        figures.errors += f.errors;
        figures.conflicts += f.conflicts;
        for (level, entity, id, text) in &self.result.notes {
            log.message(*level, Some(entity), Some(*id), text.clone());
        }
    }
}

/// A transaction's record.
type RecordKey = (String, RecordId);

fn key(t: &Queued) -> RecordKey {
    (t.entity.clone(), t.record_id)
}

/// The Pending transactions of a pass, read page by page in queue order, cut into rounds.
struct Queue {
    batch: usize,
    /// Read, not yet in a round, in queue order.
    waiting: Vec<Queued>,
    /// Where the next page starts; `None` when the queue has been read to its end.
    next: Option<RecordId>,
    started: bool,
}

impl Queue {
    fn new(batch: usize) -> Queue {
        Queue {
            batch,
            waiting: Vec::new(),
            next: None,
            started: false,
        }
    }

    /// Whether another page should be read: fewer than two rounds' worth wait.
    fn wants_refill(&self) -> bool {
        (!self.started || self.next.is_some()) && self.waiting.len() < 2 * self.batch
    }

    async fn read(&self, store: &dyn OrgStore) -> Result<(Vec<Queued>, Option<RecordId>), SyncError> {
        let after = if self.started { self.next } else { None };
        transactions::queued_page(store, after, self.batch).await
    }

    fn append(&mut self, (page, next): (Vec<Queued>, Option<RecordId>)) {
        self.started = true;
        self.waiting.extend(page);
        self.next = next;
    }

    /// The next round (see [`Queue::round`]), reading pages as needed; `None` once the
    /// queue is read to its end and nothing is left to send.
    async fn next_round(
        &mut self,
        store: &dyn OrgStore,
        blocked: &HashSet<RecordKey>,
    ) -> Result<Option<Vec<Queued>>, SyncError> {
        loop {
            if self.wants_refill() {
                let page = self.read(store).await?;
                self.append(page);
            }
            if let Some(round) = self.round(blocked, &HashSet::new()) {
                return Ok(Some(round));
            }
            if self.next.is_none() {
                return Ok(None);
            }
        }
    }

    /// The next round: the first waiting transaction of each record, in queue order, at most
    /// a batch. Transactions of `blocked` records are dropped (they stay Pending for a later
    /// pass); those of records in `busy` (the round being sent), and each record's later
    /// ones, wait for a later round.
    fn round(&mut self, blocked: &HashSet<RecordKey>, busy: &HashSet<RecordKey>) -> Option<Vec<Queued>> {
        let mut round = Vec::new();
        let mut later = Vec::new();
        let mut in_round = HashSet::new();
        let mut rest = std::mem::take(&mut self.waiting).into_iter();
        for t in rest.by_ref() {
            let k = key(&t);
            if blocked.contains(&k) {
                continue;
            }
            if !busy.contains(&k) && in_round.insert(k) {
                round.push(t);
                if round.len() == self.batch {
                    break;
                }
            } else {
                later.push(t);
            }
        }
        later.extend(rest);
        self.waiting = later;
        (!round.is_empty()).then_some(round)
    }
}

/// Whether some lookup value of `writes` targets an entity `entities` does not describe.
pub fn unknown_targets(entities: &[EntityMetadata], writes: &[ServerWrite]) -> bool {
    writes.iter().flat_map(|w| w.values.values()).any(|v| match v {
        Value::Lookup(r) => !entities.iter().any(|e| e.logical_name == r.entity),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Transaction `n` of the queue, on record `record` of accounts.
    fn tx(n: i64, record: u8) -> Queued {
        Queued {
            id: transactions::ordered_id(n),
            sequence: n,
            operation: Operation::Update,
            entity: "account".into(),
            record_id: RecordId::from_uuid(uuid::Uuid::from_bytes([record; 16])),
            attempts: 0,
            changes: "{}".into(),
            original_values: "{}".into(),
        }
    }

    fn queue(batch: usize, records: &[u8]) -> Queue {
        let mut q = Queue::new(batch);
        let page = records
            .iter()
            .enumerate()
            .map(|(n, r)| tx(n as i64, *r))
            .collect();
        q.append((page, None));
        q
    }

    fn sequences(round: Option<Vec<Queued>>) -> Vec<i64> {
        round.unwrap_or_default().iter().map(|t| t.sequence).collect()
    }

    #[test]
    fn a_round_takes_each_records_first_transaction_up_to_a_batch() {
        let mut q = queue(3, &[1, 2, 1, 3, 4, 2]);
        let none = HashSet::new();
        assert_eq!(sequences(q.round(&none, &none)), [0, 1, 3]);
        // Records 1 and 2 go on in their own order; record 4 was after the cut.
        assert_eq!(sequences(q.round(&none, &none)), [2, 4, 5]);
        assert_eq!(q.round(&none, &none), None);
    }

    #[test]
    fn records_being_sent_wait_and_blocked_records_are_left_out() {
        let mut q = queue(10, &[1, 2, 3, 1, 2]);
        let busy: HashSet<RecordKey> = [key(&tx(0, 1))].into();
        let blocked: HashSet<RecordKey> = [key(&tx(0, 3))].into();
        // Record 1 is being sent: its transactions wait, in order, behind the others.
        assert_eq!(sequences(q.round(&blocked, &busy)), [1]);
        assert_eq!(sequences(q.round(&blocked, &HashSet::new())), [0, 4]);
        assert_eq!(sequences(q.round(&blocked, &HashSet::new())), [3]);
        assert_eq!(q.round(&blocked, &HashSet::new()), None);
    }
}
