//! OData literal tokens -> [`Value`]s (before coercion to an attribute's type).

use std::str::FromStr;

use crmsync_model::{AttributeType, RecordId, Value};
use rust_decimal::Decimal;

use super::lexer::{Tok, syntax};
use crate::QueryError;

/// The value a literal token stands for: text, a whole number ([`Value::BigInt`]), a decimal
/// ([`Value::Decimal`]; with an exponent [`Value::Double`]), a boolean, a GUID, a date/time
/// (UTC; a date is its midnight) or NULL.
pub(crate) fn value(tok: Tok, at: usize) -> Result<Value, QueryError> {
    match tok {
        Tok::Str(s) => Ok(Value::String(s)),
        Tok::Number(n) => number(&n).ok_or_else(|| syntax(at, format!("invalid number '{n}'"))),
        Tok::Guid(g) => RecordId::parse(&g)
            .map(Value::Guid)
            .map_err(|_| syntax(at, format!("invalid GUID '{g}'"))),
        Tok::DateTime(d) => Value::String(d.clone())
            .coerce(&AttributeType::DateTime)
            .map_err(|_| syntax(at, format!("invalid date/time '{d}'"))),
        Tok::Ident(word) => match word.as_str() {
            "null" => Ok(Value::Null),
            "true" => Ok(Value::Boolean(true)),
            "false" => Ok(Value::Boolean(false)),
            other => Err(syntax(at, format!("expected a value, found '{other}'"))),
        },
        _ => Err(syntax(at, "expected a value")),
    }
}

fn number(raw: &str) -> Option<Value> {
    let n = raw.trim_end_matches(|c: char| c.is_ascii_alphabetic() && !matches!(c, 'e' | 'E'));
    if n.contains(['e', 'E']) {
        return n.parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::Double);
    }
    if !n.contains('.')
        && let Ok(i) = n.parse::<i64>()
    {
        return Some(Value::BigInt(i));
    }
    Decimal::from_str(n).ok().map(Value::Decimal)
}
