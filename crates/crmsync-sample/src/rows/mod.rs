//! Row generators, one file per entity, and the helpers they share.
//!
//! A row generator turns `(generator, index)` into the record's attribute values, as
//! `(column, value)` pairs in a fixed order: the same names in the same order for every index of
//! an entity (absent data is [`Value::Null`], never a missing pair), so rows of one entity fit one
//! [`crmsync_model::RecordBatch`]. Values are already in the canonical form [`Value::coerce`]
//! returns (option values as [`Value::OptionSet`], decimals with their attribute's precision,
//! date/times in whole seconds). `versionnumber` is never generated: the store assigns it.
//!
//! All randomness of a row comes from its own [`RecordRng`]; references to other records only
//! draw an index and derive the id (see [`crate::rng`]), so rows are independent of each other.

mod account;
mod activity;
mod contact;
mod opportunity;

use chrono::{DateTime, TimeDelta, Utc};
use crmsync_model::{EntityReference, Value};
use rand::Rng;
use rust_decimal::Decimal;

use crate::SampleEntity;
use crate::generator::SampleGenerator;
use crate::rng::{RecordRng, Stream};
use crate::words::{self, Place};

/// One generated row: column names with their values.
pub(crate) type Row = Vec<(&'static str, Value)>;

/// How far back `createdon` reaches from the generator's "now".
const HISTORY_SECONDS: i64 = 5 * 365 * 86_400;
/// Share of records that are inactive (`statecode` 1).
pub(crate) const INACTIVE_SHARE: f64 = 0.1;

pub(crate) fn row(g: &SampleGenerator, entity: SampleEntity, index: u64) -> Row {
    let mut rng = RecordRng::new(g.seed(), entity, index, Stream::Row);
    match entity {
        SampleEntity::Account => account::row(g, index, &mut rng),
        SampleEntity::Contact => contact::row(g, index, &mut rng),
        SampleEntity::Opportunity => opportunity::row(g, &mut rng),
        SampleEntity::Lead => activity::lead_row(g, &mut rng),
        SampleEntity::Task => activity::task_row(g, &mut rng),
    }
}

/// The system attributes every row starts with, and what the rest of the row depends on.
pub(crate) struct Lifecycle {
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub inactive: bool,
}

impl Lifecycle {
    pub(crate) fn draw(g: &SampleGenerator, rng: &mut RecordRng) -> Self {
        let created = seconds_before(g.now(), rng.random_range(0..HISTORY_SECONDS));
        let age = (g.now() - created).num_seconds().max(0);
        // About a third of the records were never edited after their creation.
        let modified = if age == 0 || rng.random_bool(0.3) {
            created
        } else {
            seconds_after(created, rng.random_range(0..=age))
        };
        Self {
            created,
            modified,
            inactive: rng.random_bool(INACTIVE_SHARE),
        }
    }

    pub(crate) fn columns(&self) -> [(&'static str, Value); 4] {
        [
            ("createdon", Value::DateTime(self.created)),
            ("modifiedon", Value::DateTime(self.modified)),
            ("statecode", Value::OptionSet(i32::from(self.inactive))),
            ("statuscode", Value::OptionSet(if self.inactive { 2 } else { 1 })),
        ]
    }
}

pub(crate) fn pick<'a, T>(rng: &mut RecordRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

pub(crate) fn option(rng: &mut RecordRng, options: &[(i32, &str)]) -> Value {
    Value::OptionSet(pick(rng, options).0)
}

/// `value` with probability `p`, otherwise null.
pub(crate) fn maybe(rng: &mut RecordRng, p: f64, value: impl FnOnce(&mut RecordRng) -> Value) -> Value {
    if rng.random_bool(p) {
        value(rng)
    } else {
        Value::Null
    }
}

pub(crate) fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// A memo of two to four sentences.
pub(crate) fn memo(rng: &mut RecordRng) -> Value {
    let n = rng.random_range(2..=4);
    let sentences: Vec<&str> = (0..n).map(|_| *pick(rng, words::SENTENCES)).collect();
    text(sentences.join(" "))
}

/// An amount with two decimals whose order of magnitude is uniform between `10^min_exp` and
/// `10^(max_exp + 1)`, as revenues and deal sizes are.
pub(crate) fn money(rng: &mut RecordRng, min_exp: u32, max_exp: u32) -> Decimal {
    let exp = rng.random_range(min_exp..=max_exp);
    let units = rng.random_range(10i64.pow(exp)..10i64.pow(exp + 1));
    Decimal::new(units * 100 + rng.random_range(0..100), 2)
}

/// A date `days` (a range around 0) from "now" for open work, but never before `created`.
pub(crate) fn days_from_now(
    g: &SampleGenerator,
    rng: &mut RecordRng,
    created: DateTime<Utc>,
    days: std::ops::RangeInclusive<i64>,
) -> DateTime<Utc> {
    let t = seconds_after(
        g.now(),
        rng.random_range(days) * 86_400 + rng.random_range(0..86_400),
    );
    t.max(created)
}

pub(crate) fn phone(rng: &mut RecordRng, place: &Place) -> String {
    format!(
        "+{} {:03} {:03} {:04}",
        place.dialling_code,
        rng.random_range(200..1000),
        rng.random_range(0..1000),
        rng.random_range(0..10_000)
    )
}

pub(crate) fn person(rng: &mut RecordRng) -> (&'static str, &'static str) {
    (*pick(rng, words::FIRST_NAMES), *pick(rng, words::LAST_NAMES))
}

pub(crate) fn person_email(first: &str, last: &str, domain: &str) -> String {
    format!(
        "{}.{}@{domain}",
        words::ascii_slug(first),
        words::ascii_slug(last)
    )
}

/// A random index below `count`, or `None` when there is nothing to point at.
pub(crate) fn index_below(rng: &mut RecordRng, count: u64) -> Option<u64> {
    (count > 0).then(|| rng.random_range(0..count))
}

pub(crate) fn reference(g: &SampleGenerator, entity: SampleEntity, index: Option<u64>) -> Value {
    match index {
        Some(index) => Value::Lookup(EntityReference {
            entity: entity.entity_name(),
            id: g.record_id(entity, index),
        }),
        None => Value::Null,
    }
}

/// A company: the one behind an account (drawn from the account's own stream, so contacts and
/// opportunities of the account can name it) or, for a lead, an independent one.
pub(crate) struct Company {
    pub name: String,
    pub domain: String,
    pub place: &'static Place,
}

impl Company {
    pub(crate) fn of_account(g: &SampleGenerator, index: u64) -> Self {
        Self::draw(&mut RecordRng::new(
            g.seed(),
            SampleEntity::Account,
            index,
            Stream::Company,
        ))
    }

    pub(crate) fn draw(rng: &mut RecordRng) -> Self {
        let prefix = *pick(rng, words::COMPANY_PREFIXES);
        let core = *pick(rng, words::COMPANY_CORES);
        let suffix = *pick(rng, words::COMPANY_SUFFIXES);
        let place = pick(rng, words::PLACES);
        Self {
            name: format!("{prefix} {core} {suffix}"),
            domain: format!(
                "{}{}.{}",
                words::ascii_slug(prefix),
                words::ascii_slug(core),
                place.tld
            ),
            place,
        }
    }
}

/// `t - seconds`; at the far ends of the calendar's range, `t` itself.
pub(crate) fn seconds_before(t: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    t.checked_sub_signed(TimeDelta::seconds(seconds)).unwrap_or(t)
}

/// `t + seconds`; at the far ends of the calendar's range, `t` itself.
pub(crate) fn seconds_after(t: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    t.checked_add_signed(TimeDelta::seconds(seconds)).unwrap_or(t)
}

/// Midnight UTC of the day of `t`.
pub(crate) fn midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
}
