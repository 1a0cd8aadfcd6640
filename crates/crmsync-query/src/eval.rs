//! In-memory evaluation of a [`Predicate`] against one row, with the semantics the SQL
//! renderers must reproduce (a differential test compares both). The reference choices:
//!
//! - **NULL**: an attribute the row does not hold, or holds as [`Value::Null`], is NULL.
//!   Three-valued logic as in SQL: `Compare` and `Like` with a NULL operand are *unknown*
//!   (`ne` does not match NULL); `In` is unknown when the column is NULL, and when no value
//!   matched but one of the values is NULL; `NOT unknown` is unknown; `AND` is false if any
//!   part is false, else unknown if any part is unknown; `OR` dually. A row matches only when
//!   the result is true ([`matches`]).
//! - **Text** compares case-insensitively by folding ASCII letters only (`A`-`Z` to `a`-`z`)
//!   and then comparing code points, exactly SQLite's `COLLATE NOCASE`; `é` and `É` differ.
//!   Trailing spaces are significant.
//! - **Like**: `%` any sequence (possibly empty), `_` exactly one character (Unicode scalar),
//!   `\` makes the next character literal (a trailing lone `\` is literal); ASCII
//!   case-insensitive, as SQLite's `LIKE`. The whole text must match.
//! - **Numbers** (Integer, BigInt, Decimal, Double, OptionSet) compare by numeric value across
//!   types: exactly when neither side is a Double, as `f64` otherwise.
//! - **Date/times** compare as instants; **GUIDs and lookups** compare by id (a lookup's
//!   target entity is ignored); **booleans** `false < true`.
//! - Values of unrelated types (text with a number…) are *unknown*; validation prevents them.

use std::cmp::Ordering;

use crmsync_model::{AttributeName, Record, RecordId, Value};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::predicate::{CompareOp, LIKE_ESCAPE, Predicate};

/// A row as the evaluator sees it: attribute values by (link alias, attribute name).
pub trait Row {
    /// The value of `attribute` of the queried entity (`alias` = `None`) or of the linked
    /// entity with that alias. `None` means the row holds no value: it is treated as NULL.
    fn value(&self, alias: Option<&str>, attribute: &str) -> Option<&Value>;
}

/// A record's own values; it holds no linked values. Its primary id is visible only if it
/// is among the values: use [`RecordRow`] to expose [`Record::id`].
impl Row for Record {
    fn value(&self, alias: Option<&str>, attribute: &str) -> Option<&Value> {
        match alias {
            None => self.get(attribute),
            Some(_) => None,
        }
    }
}

/// A record together with the name of its primary id attribute, so that filters on
/// `accountid` see [`Record::id`].
pub struct RecordRow<'a> {
    record: &'a Record,
    id_attribute: &'a str,
    id: Option<Value>,
}

impl<'a> RecordRow<'a> {
    pub fn new(record: &'a Record, id_attribute: &'a str) -> Self {
        Self {
            record,
            id_attribute,
            id: record.id.map(Value::Guid),
        }
    }
}

impl Row for RecordRow<'_> {
    fn value(&self, alias: Option<&str>, attribute: &str) -> Option<&Value> {
        match (alias, self.record.get(attribute)) {
            (Some(_), _) => None,
            (None, Some(v)) => Some(v),
            (None, None) if attribute == self.id_attribute => self.id.as_ref(),
            (None, None) => None,
        }
    }
}

/// One joined row: the queried entity's row plus the rows of linked entities by alias (an
/// outer link without a match is simply absent, so all its attributes are NULL).
pub struct JoinedRow<'a> {
    pub main: &'a dyn Row,
    pub linked: Vec<(&'a str, &'a dyn Row)>,
}

impl Row for JoinedRow<'_> {
    fn value(&self, alias: Option<&str>, attribute: &str) -> Option<&Value> {
        match alias {
            None => self.main.value(None, attribute),
            Some(a) => self
                .linked
                .iter()
                .find(|(x, _)| *x == a)
                .and_then(|(_, row)| row.value(None, attribute)),
        }
    }
}

/// True only if `predicate` is true for `row` (false and unknown do not match).
pub fn matches(predicate: &Predicate, row: &dyn Row) -> bool {
    eval(predicate, row) == Some(true)
}

/// Three-valued evaluation: `Some(true)`, `Some(false)` or `None` (unknown).
pub fn eval(predicate: &Predicate, row: &dyn Row) -> Option<bool> {
    let get = |alias: &Option<String>, attribute: &AttributeName| {
        row.value(alias.as_deref(), attribute.as_str())
            .filter(|v| !v.is_null())
    };
    match predicate {
        Predicate::And(ps) => and(ps.iter().map(|p| eval(p, row))),
        Predicate::Or(ps) => and(ps.iter().map(|p| eval(p, row).map(|b| !b))).map(|b| !b),
        Predicate::Not(p) => eval(p, row).map(|b| !b),
        Predicate::Const(b) => Some(*b),
        Predicate::Compare {
            alias,
            attribute,
            op,
            value,
        } => compare(get(alias, attribute)?, value).map(|o| holds(*op, o)),
        Predicate::Like {
            alias,
            attribute,
            pattern,
            negated,
        } => match get(alias, attribute)? {
            Value::String(s) => Some(like(pattern, s) != *negated),
            _ => None,
        },
        Predicate::In {
            alias,
            attribute,
            values,
            negated,
        } => in_list(get(alias, attribute)?, values).map(|b| b != *negated),
        Predicate::IsNull {
            alias,
            attribute,
            negated,
        } => Some(get(alias, attribute).is_none() != *negated),
    }
}

/// SQL `AND` over three-valued results.
fn and(results: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for r in results {
        match r {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown { None } else { Some(true) }
}

fn holds(op: CompareOp, o: Ordering) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
    }
}

fn in_list(x: &Value, values: &[Value]) -> Option<bool> {
    let mut unknown = false;
    for v in values {
        match compare(x, v) {
            Some(Ordering::Equal) => return Some(true),
            Some(_) => {}
            None => unknown = true,
        }
    }
    if unknown { None } else { Some(false) }
}

enum Number {
    Exact(Decimal),
    Float(f64),
}

fn number(v: &Value) -> Option<Number> {
    match v {
        Value::Integer(i) | Value::OptionSet(i) => Some(Number::Exact(Decimal::from(*i))),
        Value::BigInt(i) => Some(Number::Exact(Decimal::from(*i))),
        Value::Decimal(d) => Some(Number::Exact(*d)),
        Value::Double(f) => Some(Number::Float(*f)),
        _ => None,
    }
}

fn id(v: &Value) -> Option<RecordId> {
    match v {
        Value::Guid(g) => Some(*g),
        Value::Lookup(r) => Some(r.id),
        _ => None,
    }
}

/// Orders two non-NULL values of compatible types; `None` when either is NULL or the types
/// are unrelated.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::String(x), Value::String(y)) => Some(fold_cmp(x, y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Boolean(x), Value::Boolean(y)) => Some(x.cmp(y)),
        _ => {
            if let (Some(x), Some(y)) = (number(a), number(b)) {
                return match (x, y) {
                    (Number::Exact(x), Number::Exact(y)) => Some(x.cmp(&y)),
                    (x, y) => as_f64(x)?.partial_cmp(&as_f64(y)?),
                };
            }
            Some(id(a)?.cmp(&id(b)?))
        }
    }
}

fn as_f64(n: Number) -> Option<f64> {
    match n {
        Number::Exact(d) => d.to_f64(),
        Number::Float(f) => Some(f),
    }
}

/// SQLite `NOCASE`: ASCII letters folded, then code point (UTF-8 byte) order.
fn fold_cmp(a: &str, b: &str) -> Ordering {
    let fa = a.bytes().map(|c| c.to_ascii_lowercase());
    let fb = b.bytes().map(|c| c.to_ascii_lowercase());
    fa.cmp(fb)
}

#[derive(Clone, Copy, PartialEq)]
enum Token {
    Any,
    One,
    Char(char),
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '%' => Token::Any,
            '_' => Token::One,
            LIKE_ESCAPE => Token::Char(chars.next().unwrap_or(LIKE_ESCAPE)),
            c => Token::Char(c.to_ascii_lowercase()),
        });
    }
    out
}

/// `text LIKE pattern ESCAPE '\'`, ASCII case-insensitive. Greedy matching with a single
/// backtrack point (the last `%`), linear in practice and never exponential.
pub fn like(pattern: &str, text: &str) -> bool {
    let pat = tokens(pattern);
    let txt: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < txt.len() {
        match pat.get(p) {
            Some(Token::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Token::One) => (p, t) = (p + 1, t + 1),
            Some(Token::Char(c)) if c.to_ascii_lowercase() == txt[t] => (p, t) = (p + 1, t + 1),
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    (p, t) = (sp + 1, st + 1);
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|tok| *tok == Token::Any)
}
