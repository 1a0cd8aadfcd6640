//! [`SampleGenerator`]: how many records of each entity there are, and the batches that stream
//! them.
//!
//! Counts scale with the number of accounts `n`: `n` accounts, `2n` contacts, `n`
//! opportunities, `n / 2` leads (rounded down) and `2n` tasks. A generator holds no records:
//! [`SampleGenerator::batches`] builds one batch at a time from `(seed, entity, index)`, so
//! memory stays flat for a million accounts, and any record can be rebuilt alone
//! ([`SampleGenerator::record`]).
//!
//! The output depends only on the seed, the number of accounts and the reference time "now"
//! (a fixed date unless [`SampleGenerator::with_now`] sets another one): the same inputs give
//! the same records, values and ids.

use std::fmt;

use chrono::{DateTime, Utc};
use crmsync_model::{AttributeName, Record, RecordBatch, RecordId};

use crate::{SampleEntity, rng, rows};

/// The largest number of accounts a generator produces; larger requests are capped. Far beyond
/// what a store holds, it keeps every derived count and account number in range.
pub const MAX_ACCOUNTS: u64 = 1_000_000_000_000;

/// Generates the sample records of an organization.
#[derive(Clone, Debug)]
pub struct SampleGenerator {
    seed: u64,
    accounts: u64,
    now: DateTime<Utc>,
}

impl SampleGenerator {
    /// A generator of `accounts` accounts (at most [`MAX_ACCOUNTS`]) and the records that scale
    /// with them, dated up to 2026-01-01T00:00:00Z.
    pub fn new(seed: u64, accounts: u64) -> Self {
        Self {
            seed,
            accounts: accounts.min(MAX_ACCOUNTS),
            now: DateTime::from_timestamp(1_767_225_600, 0)
                .expect("2026-01-01T00:00:00Z is a valid timestamp"),
        }
    }

    /// Dates records relative to `now` (truncated to whole seconds) instead of the fixed default:
    /// creation dates fall in the five years before it, due and close dates up to a few months
    /// after. The output then depends on `now` as well.
    pub fn with_now(mut self, now: DateTime<Utc>) -> Self {
        self.now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        self
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// How many records of `entity` this generator produces.
    pub fn count(&self, entity: SampleEntity) -> u64 {
        let n = self.accounts;
        match entity {
            SampleEntity::Account | SampleEntity::Opportunity => n,
            SampleEntity::Contact | SampleEntity::Task => 2 * n,
            SampleEntity::Lead => n / 2,
        }
    }

    /// The counts of every entity, for a summary such as "created 10 accounts, 20 contacts, …".
    pub fn counts(&self) -> SampleCounts {
        SampleCounts(SampleEntity::ALL.map(|e| (e, self.count(e))))
    }

    /// The id of record `index` of `entity`, whether or not `index` is below its count.
    pub fn record_id(&self, entity: SampleEntity, index: u64) -> RecordId {
        rng::record_id(self.seed, entity, index)
    }

    /// Record `index` of `entity` with every generated attribute, or `None` past the count.
    pub fn record(&self, entity: SampleEntity, index: u64) -> Option<Record> {
        (index < self.count(entity)).then(|| {
            let mut record = Record::new(self.record_id(entity, index));
            for (column, value) in rows::row(self, entity, index) {
                record.set(column, value);
            }
            record
        })
    }

    /// The records of `entity`, in index order, in batches of `batch_size` rows (at least 1)
    /// with the same columns. Only the current batch is held in memory.
    pub fn batches(&self, entity: SampleEntity, batch_size: usize) -> Batches<'_> {
        Batches {
            generator: self,
            entity,
            next: 0,
            end: self.count(entity),
            batch_size: batch_size.max(1) as u64,
        }
    }
}

/// The batches of one entity, built on demand. See [`SampleGenerator::batches`].
#[derive(Clone, Debug)]
pub struct Batches<'a> {
    generator: &'a SampleGenerator,
    entity: SampleEntity,
    next: u64,
    end: u64,
    batch_size: u64,
}

impl Batches<'_> {
    pub fn entity(&self) -> SampleEntity {
        self.entity
    }

    /// Records not yet returned.
    pub fn remaining_records(&self) -> u64 {
        self.end - self.next
    }
}

impl Iterator for Batches<'_> {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        if self.next >= self.end {
            return None;
        }
        let stop = self.end.min(self.next + self.batch_size);
        let mut batch = RecordBatch::default();
        for index in self.next..stop {
            let row = rows::row(self.generator, self.entity, index);
            if batch.columns.is_empty() {
                batch.columns = row
                    .iter()
                    .map(|(column, _)| {
                        AttributeName::parse(column).expect("sample column names are valid logical names")
                    })
                    .collect();
            }
            debug_assert!(
                row.iter()
                    .map(|(c, _)| *c)
                    .eq(batch.columns.iter().map(|c| c.as_str())),
                "every row of an entity has the same columns"
            );
            let values = row.into_iter().map(|(_, value)| value).collect();
            batch.push(self.generator.record_id(self.entity, index), values);
        }
        self.next = stop;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let batches = self.remaining_records().div_ceil(self.batch_size);
        let batches = usize::try_from(batches).unwrap_or(usize::MAX);
        (batches, Some(batches))
    }
}

impl ExactSizeIterator for Batches<'_> {}

/// Records per entity, parents first. Displays as "10 accounts, 20 contacts, 10 opportunities,
/// 5 leads, 20 tasks".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleCounts(pub [(SampleEntity, u64); 5]);

impl SampleCounts {
    pub fn get(&self, entity: SampleEntity) -> u64 {
        self.0.iter().find(|(e, _)| *e == entity).map_or(0, |(_, n)| *n)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (SampleEntity, u64)> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for SampleCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (entity, n)) in self.0.iter().enumerate() {
            let noun = if *n == 1 {
                entity.logical_name()
            } else {
                entity.entity_set_name()
            };
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{n} {noun}")?;
        }
        Ok(())
    }
}
