//! Coercion of condition operands to the type of the attribute they are compared with.
//!
//! Both parsers hand operands over as [`Value`]s: FetchXML as [`Value::String`] (the text of the
//! `value` attribute), OData as the typed literal it wrote. A text operand is parsed into the
//! attribute's type; a typed operand must be compatible with it. Unlike
//! [`Value::coerce`] (which guards writes), operands are not checked against the attribute's
//! MaxLength, integer range or decimal precision: a filter may compare with any value of the
//! type, it simply matches nothing when out of range. Option-set operands must be declared
//! options, as in Dataverse.
//!
//! Results: text attributes get [`Value::String`], Integer [`Value::Integer`], BigInt
//! [`Value::BigInt`], Decimal/Money [`Value::Decimal`] (normalized), Double [`Value::Double`],
//! Boolean [`Value::Boolean`], DateTime [`Value::DateTime`] (UTC, microseconds),
//! Uniqueidentifier *and Lookup* [`Value::Guid`] (lookups are compared by id), option sets
//! [`Value::OptionSet`].

use std::str::FromStr;

use chrono::NaiveDate;
use crmsync_model::{AttributeMetadata, AttributeType, RecordId, Value};
use rust_decimal::Decimal;

use crate::QueryError;

/// Text shown for an operand in error messages.
pub(crate) fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_json().to_string().trim_matches('"').to_owned(),
    }
}

/// Coerces one operand to the type of `attribute`.
pub(crate) fn coerce(attribute: &AttributeMetadata, value: Value) -> Result<Value, QueryError> {
    let name = attribute.logical_name.as_str();
    let shown = display(&value);
    let bad = |reason: &str| QueryError::invalid_value(name, &shown, reason);
    if value.is_null() {
        return Err(bad(
            "null is only allowed with the 'null' and 'not-null' operators",
        ));
    }
    match &attribute.attribute_type {
        AttributeType::String { .. } | AttributeType::Memo { .. } => match value {
            Value::String(s) => Ok(Value::String(s)),
            _ => Err(bad("expected text")),
        },
        AttributeType::Integer { .. } => {
            let i = integer(&value).ok_or_else(|| bad("expected a whole number"))?;
            i32::try_from(i)
                .map(Value::Integer)
                .map_err(|_| bad("the number is outside the range of a whole number (32 bits)"))
        }
        AttributeType::BigInt => integer(&value)
            .map(Value::BigInt)
            .ok_or_else(|| bad("expected a whole number")),
        AttributeType::Decimal { .. } | AttributeType::Money { .. } => decimal(&value)
            .map(|d| Value::Decimal(d.normalize()))
            .ok_or_else(|| bad("expected a decimal number")),
        AttributeType::Double => double(&value)
            .map(Value::Double)
            .ok_or_else(|| bad("expected a number")),
        AttributeType::Boolean => boolean(&value)
            .map(Value::Boolean)
            .ok_or_else(|| bad("expected true, false, 1 or 0")),
        AttributeType::DateTime => value
            .coerce(&AttributeType::DateTime)
            .map_err(|e| QueryError::from_value_error(name, &shown, e)),
        AttributeType::Uniqueidentifier | AttributeType::Lookup { .. } => guid(&value)
            .map(Value::Guid)
            .ok_or_else(|| bad("expected a GUID such as 00000000-0000-0000-0000-000000000001")),
        t @ (AttributeType::Picklist { .. } | AttributeType::State { .. } | AttributeType::Status { .. }) => {
            option(t, &value, &bad)
        }
    }
}

fn option(ty: &AttributeType, value: &Value, bad: &dyn Fn(&str) -> QueryError) -> Result<Value, QueryError> {
    let v = match value {
        Value::OptionSet(v) => i64::from(*v),
        other => integer(other).ok_or_else(|| bad("expected an option value (a whole number)"))?,
    };
    let set = ty.option_set().ok_or_else(|| bad("not an option set"))?;
    match i32::try_from(v) {
        Ok(v) if set.contains(v) => Ok(Value::OptionSet(v)),
        _ => {
            let valid: Vec<String> = set.options.iter().map(|o| o.value.to_string()).collect();
            Err(bad(&format!(
                "not an option of this attribute (valid: {})",
                valid.join(", ")
            )))
        }
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) | Value::OptionSet(i) => Some(i64::from(*i)),
        Value::BigInt(i) => Some(*i),
        Value::Decimal(d) if d.fract().is_zero() => d.to_string().parse().ok(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn decimal(value: &Value) -> Option<Decimal> {
    match value {
        Value::Integer(i) => Some(Decimal::from(*i)),
        Value::BigInt(i) => Some(Decimal::from(*i)),
        Value::Decimal(d) => Some(*d),
        Value::Double(f) => Decimal::from_str(&f.to_string()).ok(),
        Value::String(s) => {
            let t = s.trim();
            Decimal::from_str(t).or_else(|_| Decimal::from_scientific(t)).ok()
        }
        _ => None,
    }
}

fn double(value: &Value) -> Option<f64> {
    let f = match value {
        Value::Integer(i) => f64::from(*i),
        Value::BigInt(i) => *i as f64,
        Value::Decimal(d) => d.to_string().parse().ok()?,
        Value::Double(f) => *f,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Boolean(b) => Some(*b),
        Value::Integer(0) | Value::BigInt(0) => Some(false),
        Value::Integer(1) | Value::BigInt(1) => Some(true),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn guid(value: &Value) -> Option<RecordId> {
    match value {
        Value::Guid(g) => Some(*g),
        Value::Lookup(r) => Some(r.id),
        Value::String(s) => RecordId::parse(s).ok(),
        _ => None,
    }
}

/// The UTC date of a date or date/time operand (operators `on`, `on-or-before`, `on-or-after`).
pub(crate) fn date(attribute: &str, value: &Value) -> Result<NaiveDate, QueryError> {
    let shown = display(value);
    match value.clone().coerce(&AttributeType::DateTime) {
        Ok(Value::DateTime(d)) => Ok(d.date_naive()),
        _ => Err(QueryError::invalid_value(
            attribute,
            &shown,
            "expected a date such as 2026-01-31",
        )),
    }
}

/// The whole-number operand of the `x` operators (`last-x-days`…), at most `max`.
pub(crate) fn count(attribute: &str, value: &Value, max: u32) -> Result<u32, QueryError> {
    let shown = display(value);
    integer(value)
        .and_then(|i| u32::try_from(i).ok())
        .filter(|n| *n <= max)
        .ok_or_else(|| {
            QueryError::invalid_value(
                attribute,
                &shown,
                format!("expected a whole number from 0 to {max}"),
            )
        })
}
