//! Lowering: [`Filter`] + [`EvalContext`] -> [`Predicate`].
//!
//! Everything that depends on "now" or on the caller is resolved here, so that a predicate
//! means the same thing to every consumer. Days are UTC days (crmsync has no per-user time
//! zone); `start(d)` is midnight UTC starting day `d`, `today` is the UTC date of `now`.
//!
//! | operator | predicate |
//! |---|---|
//! | `on d` | `start(d) <= x < start(d+1)` |
//! | `on-or-before d` | `x < start(d+1)` |
//! | `on-or-after d` | `x >= start(d)` |
//! | `today` / `yesterday` / `tomorrow` | the whole UTC day, `[start, next start)` |
//! | `last-x-days n` | `start(today) - n days <= x <= now` |
//! | `next-x-days n` | `now <= x < start(today + n + 1)` (through the end of the n-th day) |
//! | `last-x-hours n` | `now - n hours <= x <= now` |
//! | `next-x-hours n` | `now <= x <= now + n hours` |
//! | `olderthan-x-{minutes,hours,days} n` | `x < now - n units` |
//! | `between a b` / `not-between a b` | `x >= a AND x <= b` / `x < a OR x > b` |
//! | `begins-with s`, `ends-with s`, `contains s` | `LIKE 's%'`, `'%s'`, `'%s%'` with `s` escaped |
//! | `like p` | `p` rewritten from Dataverse brackets (`[%]`) to backslash escapes (`\%`) |
//! | `eq-userid` / `ne-userid` | `x = user` / `x <> user`; without a user: `Const(false)` |
//!
//! The last/next-x-days boundaries follow Dataverse's observed behaviour (the period starts at
//! midnight and ends at the current time, or starts now and ends at midnight); the hour and
//! "older than" operators count from the exact current instant. Date arithmetic that would
//! leave chrono's range saturates at its limits.

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use crmsync_model::{AttributeName, RecordId, Value};

use crate::ast::{Condition, Filter, Operator};
use crate::predicate::{CompareOp, LIKE_ESCAPE, Predicate, escape_like};

/// What a filter is evaluated against besides the row: the current time and user.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalContext {
    pub now: DateTime<Utc>,
    pub user_id: Option<RecordId>,
}

impl EvalContext {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self { now, user_id: None }
    }

    pub fn with_user(mut self, user_id: RecordId) -> Self {
        self.user_id = Some(user_id);
        self
    }
}

/// Lowers `filter` for evaluation at `ctx.now` by `ctx.user_id`.
pub fn lower(filter: &Filter, ctx: &EvalContext) -> Predicate {
    match filter {
        Filter::And(children) => Predicate::And(children.iter().map(|c| lower(c, ctx)).collect()),
        Filter::Or(children) => Predicate::Or(children.iter().map(|c| lower(c, ctx)).collect()),
        Filter::Not(inner) => Predicate::Not(Box::new(lower(inner, ctx))),
        Filter::Condition(c) => lower_condition(c, ctx),
    }
}

struct Target<'a> {
    alias: &'a Option<String>,
    attribute: &'a AttributeName,
}

impl Target<'_> {
    fn cmp(&self, op: CompareOp, value: Value) -> Predicate {
        Predicate::Compare {
            alias: self.alias.clone(),
            attribute: self.attribute.clone(),
            op,
            value,
        }
    }

    fn at(&self, op: CompareOp, t: DateTime<Utc>) -> Predicate {
        self.cmp(op, Value::DateTime(t))
    }

    /// `lo <= x < hi`.
    fn half_open(&self, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Predicate {
        Predicate::And(vec![self.at(CompareOp::Ge, lo), self.at(CompareOp::Lt, hi)])
    }

    /// `lo <= x <= hi`.
    fn closed(&self, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Predicate {
        Predicate::And(vec![self.at(CompareOp::Ge, lo), self.at(CompareOp::Le, hi)])
    }

    fn like(&self, pattern: String, negated: bool) -> Predicate {
        Predicate::Like {
            alias: self.alias.clone(),
            attribute: self.attribute.clone(),
            pattern,
            negated,
        }
    }

    fn is_in(&self, values: &[Value], negated: bool) -> Predicate {
        Predicate::In {
            alias: self.alias.clone(),
            attribute: self.attribute.clone(),
            values: values.to_vec(),
            negated,
        }
    }

    fn is_null(&self, negated: bool) -> Predicate {
        Predicate::IsNull {
            alias: self.alias.clone(),
            attribute: self.attribute.clone(),
            negated,
        }
    }
}

/// One exhaustive table: every operator's lowering is visible here.
fn lower_condition(c: &Condition, ctx: &EvalContext) -> Predicate {
    use CompareOp as C;
    use Operator as O;
    let t = Target {
        alias: &c.alias,
        attribute: &c.attribute,
    };
    let now = ctx.now;
    let today = now.date_naive();
    let day = |d: NaiveDate| t.half_open(start_of(d), start_of(add_days(d, 1)));
    let hours = |n: &u32| TimeDelta::try_hours(i64::from(*n));
    match &c.operator {
        O::Eq(v) => t.cmp(C::Eq, v.clone()),
        O::Ne(v) => t.cmp(C::Ne, v.clone()),
        O::Gt(v) => t.cmp(C::Gt, v.clone()),
        O::Ge(v) => t.cmp(C::Ge, v.clone()),
        O::Lt(v) => t.cmp(C::Lt, v.clone()),
        O::Le(v) => t.cmp(C::Le, v.clone()),
        O::Between(a, b) => Predicate::And(vec![t.cmp(C::Ge, a.clone()), t.cmp(C::Le, b.clone())]),
        O::NotBetween(a, b) => Predicate::Or(vec![t.cmp(C::Lt, a.clone()), t.cmp(C::Gt, b.clone())]),
        O::In(vs) => t.is_in(vs, false),
        O::NotIn(vs) => t.is_in(vs, true),
        O::Null => t.is_null(false),
        O::NotNull => t.is_null(true),
        O::EqUserId => lower_user(&t, C::Eq, ctx),
        O::NeUserId => lower_user(&t, C::Ne, ctx),
        O::Like(p) => t.like(dataverse_pattern(p), false),
        O::NotLike(p) => t.like(dataverse_pattern(p), true),
        O::BeginsWith(s) => t.like(format!("{}%", escape_like(s)), false),
        O::NotBeginWith(s) => t.like(format!("{}%", escape_like(s)), true),
        O::EndsWith(s) => t.like(format!("%{}", escape_like(s)), false),
        O::NotEndWith(s) => t.like(format!("%{}", escape_like(s)), true),
        O::Contains(s) => t.like(format!("%{}%", escape_like(s)), false),
        O::On(d) => day(*d),
        O::OnOrBefore(d) => t.at(C::Lt, start_of(add_days(*d, 1))),
        O::OnOrAfter(d) => t.at(C::Ge, start_of(*d)),
        O::Today => day(today),
        O::Yesterday => day(add_days(today, -1)),
        O::Tomorrow => day(add_days(today, 1)),
        O::LastXDays(n) => t.closed(start_of(add_days(today, -i64::from(*n))), now),
        O::NextXDays(n) => t.half_open(now, start_of(add_days(today, i64::from(*n) + 1))),
        O::LastXHours(n) => t.closed(shift(now, hours(n), false), now),
        O::NextXHours(n) => t.closed(now, shift(now, hours(n), true)),
        O::OlderThanXMinutes(n) => t.at(C::Lt, shift(now, TimeDelta::try_minutes(i64::from(*n)), false)),
        O::OlderThanXHours(n) => t.at(C::Lt, shift(now, hours(n), false)),
        O::OlderThanXDays(n) => t.at(C::Lt, shift(now, TimeDelta::try_days(i64::from(*n)), false)),
    }
}

fn lower_user(t: &Target<'_>, op: CompareOp, ctx: &EvalContext) -> Predicate {
    match ctx.user_id {
        Some(user) => t.cmp(op, Value::Guid(user)),
        None => Predicate::Const(false),
    }
}

/// Rewrites a Dataverse `LIKE` pattern: `[x]` (one literal character) becomes an escaped `x`,
/// a backslash becomes a literal backslash; `%` and `_` stay wildcards. A `[` that does not
/// open a one-character bracket is taken literally.
pub(crate) fn dataverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '[' && chars.get(i + 2) == Some(&']') {
            out.push_str(&escape_like(&chars[i + 1].to_string()));
            i += 3;
            continue;
        }
        if c == LIKE_ESCAPE {
            out.push(LIKE_ESCAPE);
        }
        out.push(c);
        i += 1;
    }
    out
}

fn start_of(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0)
        .map(|n| n.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    let moved = if n >= 0 {
        d.checked_add_days(Days::new(n.unsigned_abs()))
    } else {
        d.checked_sub_days(Days::new(n.unsigned_abs()))
    };
    moved.unwrap_or(if n >= 0 { NaiveDate::MAX } else { NaiveDate::MIN })
}

/// `t + delta`, saturating at chrono's limits.
fn shift(t: DateTime<Utc>, delta: Option<TimeDelta>, forward: bool) -> DateTime<Utc> {
    let moved = delta.and_then(|d| {
        if forward {
            t.checked_add_signed(d)
        } else {
            t.checked_sub_signed(d)
        }
    });
    moved.unwrap_or(if forward {
        DateTime::<Utc>::MAX_UTC
    } else {
        DateTime::<Utc>::MIN_UTC
    })
}
