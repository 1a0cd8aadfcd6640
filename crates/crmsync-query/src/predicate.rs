//! [`Predicate`]: the closed, time-free filter language that SQL renderers and the in-memory
//! evaluator both consume. Everything relative (today, the current user, "begins with") has
//! been resolved by [`crate::lower`]; what is left maps one-to-one onto SQL.
//!
//! Contract for renderers (one recursive function, values only as bind parameters):
//!
//! | variant | SQL |
//! |---|---|
//! | `And(ps)` | `(p1 AND p2 …)`; empty: `1=1` (true) |
//! | `Or(ps)` | `(p1 OR p2 …)`; empty: `1=0` (false) |
//! | `Not(p)` | `NOT (p)` |
//! | `Compare{op, value}` | `col op ?` — text compared case-insensitively (ASCII folding, SQLite `COLLATE NOCASE`) |
//! | `Like{pattern, negated}` | `col [NOT] LIKE ? ESCAPE '\'`, case-insensitive for ASCII letters |
//! | `In{values, negated}` | `col [NOT] IN (?, ?, …)`; `values` is never empty after lowering an `in` |
//! | `IsNull{negated}` | `col IS [NOT] NULL` |
//! | `Const(b)` | `1=1` / `1=0` |
//!
//! `alias` is `None` for the queried entity and a link-entity alias otherwise. Values are
//! typed as the column: a lookup column is compared with a [`Value::Guid`] (its id; the stored
//! target entity is not compared), an option set with [`Value::OptionSet`], decimals with
//! [`Value::Decimal`], date/times with UTC [`Value::DateTime`]. Compare values are never
//! [`Value::Null`]. NULL follows SQL's three-valued logic (see [`crate::eval`]).
//!
//! `Like` patterns: `%` matches any sequence of characters, `_` exactly one character, and
//! `\` makes the next character literal (so `\%`, `\_`, `\\`). No other character is special.

use std::fmt;

use crmsync_model::{AttributeName, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Predicate {
    And(Vec<Predicate>),
    Or(Vec<Predicate>),
    Not(Box<Predicate>),
    Compare {
        alias: Option<String>,
        attribute: AttributeName,
        op: CompareOp,
        value: Value,
    },
    Like {
        alias: Option<String>,
        attribute: AttributeName,
        pattern: String,
        negated: bool,
    },
    In {
        alias: Option<String>,
        attribute: AttributeName,
        values: Vec<Value>,
        negated: bool,
    },
    IsNull {
        alias: Option<String>,
        attribute: AttributeName,
        negated: bool,
    },
    Const(bool),
}

/// The escape character of [`Predicate::Like`] patterns.
pub const LIKE_ESCAPE: char = '\\';

/// Escapes `%`, `_` and `\` so that `text` matches itself literally in a `Like` pattern.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            out.push(LIKE_ESCAPE);
        }
        out.push(c);
    }
    out
}
