//! Typed attribute values and their conversion to and from JSON.
//!
//! [`Value::coerce`] is the single place where an incoming value is checked against its
//! attribute type: every write path (Web API, sync, CLI, sample data) goes through it, so
//! storage only ever sees values that fit their column.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value as Json;

use crate::{AttributeType, EntityName, EntityReference, RecordId, ValueError};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    /// String and Memo.
    String(String),
    Integer(i32),
    BigInt(i64),
    /// Decimal and Money.
    Decimal(Decimal),
    Double(f64),
    Boolean(bool),
    /// Always UTC, microsecond precision.
    DateTime(DateTime<Utc>),
    Guid(RecordId),
    Lookup(EntityReference),
    /// Picklist, State and Status.
    OptionSet(i32),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    fn kind(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::String(s) => format!("text '{}'", truncate(s, 40)),
            Value::Integer(i) => format!("integer {i}"),
            Value::BigInt(i) => format!("integer {i}"),
            Value::Decimal(d) => format!("decimal {d}"),
            Value::Double(d) => format!("number {d}"),
            Value::Boolean(b) => format!("boolean {b}"),
            Value::DateTime(d) => format!("date/time {}", d.to_rfc3339()),
            Value::Guid(g) => format!("GUID {g}"),
            Value::Lookup(r) => format!("reference to {}({})", r.entity, r.id),
            Value::OptionSet(o) => format!("option {o}"),
        }
    }

    /// Converts `self` to the canonical value of an attribute of type `ty`, or explains why it
    /// does not fit. Compatible forms are accepted (an integer for a decimal, a string for a
    /// GUID or a date); decimals are rounded to the attribute's precision and date/times
    /// truncated to microseconds.
    pub fn coerce(self, ty: &AttributeType) -> Result<Value, ValueError> {
        if self.is_null() {
            return Ok(Value::Null);
        }
        let wrong = |v: &Value, expected| ValueError::WrongType {
            expected,
            got: v.kind(),
        };
        match ty {
            AttributeType::String { max_length } | AttributeType::Memo { max_length } => match self {
                Value::String(s) => {
                    // A text has at most as many characters as bytes: most need no count.
                    let max = *max_length as usize;
                    if s.len() > max && s.chars().count() > max {
                        Err(ValueError::TooLong {
                            len: s.chars().count(),
                            max: *max_length,
                        })
                    } else {
                        Ok(Value::String(s))
                    }
                }
                v => Err(wrong(&v, "text")),
            },
            AttributeType::Integer { min, max } => {
                let i = match &self {
                    Value::Integer(i) => i64::from(*i),
                    Value::BigInt(i) => *i,
                    Value::Decimal(d) if d.fract().is_zero() => {
                        d.to_string().parse().map_err(|_| wrong(&self, "integer"))?
                    }
                    Value::Double(d) if d.fract() == 0.0 && d.abs() < 1e15 => *d as i64,
                    v => return Err(wrong(v, "integer")),
                };
                if i < i64::from(*min) || i > i64::from(*max) {
                    return Err(ValueError::OutOfRange {
                        value: i.to_string(),
                        min: min.to_string(),
                        max: max.to_string(),
                    });
                }
                Ok(Value::Integer(i as i32))
            }
            AttributeType::BigInt => match self {
                Value::Integer(i) => Ok(Value::BigInt(i64::from(i))),
                Value::BigInt(i) => Ok(Value::BigInt(i)),
                Value::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e15 => Ok(Value::BigInt(d as i64)),
                v => Err(wrong(&v, "integer")),
            },
            AttributeType::Decimal { precision } | AttributeType::Money { precision } => {
                let d = match &self {
                    Value::Decimal(d) => *d,
                    Value::Integer(i) => Decimal::from(*i),
                    Value::BigInt(i) => Decimal::from(*i),
                    Value::Double(f) => Decimal::from_str(&f.to_string())
                        .or_else(|_| Decimal::from_scientific(&format!("{f:e}")))
                        .map_err(|_| ValueError::InvalidNumber(f.to_string()))?,
                    Value::String(s) => {
                        Decimal::from_str(s.trim()).map_err(|_| ValueError::InvalidNumber(s.clone()))?
                    }
                    v => return Err(wrong(v, "decimal number")),
                };
                Ok(Value::Decimal(
                    d.round_dp_with_strategy(*precision, RoundingStrategy::MidpointAwayFromZero)
                        .normalize(),
                ))
            }
            AttributeType::Double => match self {
                Value::Double(d) if d.is_finite() => Ok(Value::Double(d)),
                Value::Integer(i) => Ok(Value::Double(f64::from(i))),
                Value::BigInt(i) => Ok(Value::Double(i as f64)),
                Value::Decimal(d) => {
                    Ok(Value::Double(d.to_string().parse().unwrap_or(f64::NAN))).and_then(|v| {
                        if matches!(v, Value::Double(f) if f.is_finite()) {
                            Ok(v)
                        } else {
                            Err(ValueError::InvalidNumber(d.to_string()))
                        }
                    })
                }
                v => Err(wrong(&v, "finite number")),
            },
            AttributeType::Boolean => match self {
                Value::Boolean(b) => Ok(Value::Boolean(b)),
                v => Err(wrong(&v, "boolean")),
            },
            AttributeType::DateTime => match self {
                Value::DateTime(d) => Ok(Value::DateTime(truncate_to_micros(d))),
                Value::String(s) => parse_datetime(&s).map(Value::DateTime),
                v => Err(wrong(&v, "date/time")),
            },
            AttributeType::Uniqueidentifier => match self {
                Value::Guid(g) => Ok(Value::Guid(g)),
                Value::String(s) => RecordId::parse(&s)
                    .map(Value::Guid)
                    .map_err(|_| ValueError::InvalidGuid(s)),
                v => Err(wrong(&v, "GUID")),
            },
            AttributeType::Lookup { targets } => match self {
                Value::Lookup(r) if targets.contains(&r.entity) => Ok(Value::Lookup(r)),
                Value::Lookup(r) => Err(ValueError::WrongTarget {
                    got: r.entity.to_string(),
                    allowed: targets.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
                }),
                // A bare id is unambiguous only for a single-target lookup.
                Value::Guid(id) if targets.len() == 1 => Ok(Value::Lookup(EntityReference {
                    entity: targets[0].clone(),
                    id,
                })),
                v => Err(wrong(&v, "entity reference")),
            },
            AttributeType::Picklist { options }
            | AttributeType::State { options }
            | AttributeType::Status { options } => {
                let v = match self {
                    Value::OptionSet(v) | Value::Integer(v) => v,
                    Value::BigInt(v) if i32::try_from(v).is_ok() => v as i32,
                    v => return Err(wrong(&v, "option value")),
                };
                if options.contains(v) {
                    Ok(Value::OptionSet(v))
                } else {
                    Err(ValueError::UnknownOption(v))
                }
            }
        }
    }

    /// Reads a JSON value (as the Web API sends it) as a value of an attribute of type `ty`.
    /// Lookups are written as `{"entity":"account","id":"…"}` or, for single-target lookups,
    /// as a bare GUID string.
    pub fn from_json(json: &Json, ty: &AttributeType) -> Result<Value, ValueError> {
        let raw = match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Boolean(*b),
            Json::Number(n) => match ty {
                AttributeType::Decimal { .. } | AttributeType::Money { .. } => Value::Decimal(
                    Decimal::from_str(&n.to_string())
                        .or_else(|_| Decimal::from_scientific(&n.to_string()))
                        .map_err(|_| ValueError::InvalidNumber(n.to_string()))?,
                ),
                _ => match n.as_i64() {
                    Some(i) => Value::BigInt(i),
                    None => Value::Double(
                        n.as_f64()
                            .ok_or_else(|| ValueError::InvalidNumber(n.to_string()))?,
                    ),
                },
            },
            Json::String(s) => match ty {
                AttributeType::Lookup { .. } => {
                    Value::Guid(RecordId::parse(s).map_err(|_| ValueError::InvalidGuid(s.clone()))?)
                }
                _ => Value::String(s.clone()),
            },
            Json::Object(map) if matches!(ty, AttributeType::Lookup { .. }) => {
                let entity = map.get("entity").and_then(Json::as_str).unwrap_or_default();
                let id = map.get("id").and_then(Json::as_str).unwrap_or_default();
                let entity = EntityName::parse(entity).map_err(|_| ValueError::WrongType {
                    expected: "entity reference",
                    got: json.to_string(),
                })?;
                let id = RecordId::parse(id).map_err(|_| ValueError::InvalidGuid(id.to_owned()))?;
                Value::Lookup(EntityReference { entity, id })
            }
            other => {
                return Err(ValueError::WrongType {
                    expected: "a scalar value",
                    got: truncate(&other.to_string(), 40),
                });
            }
        };
        raw.coerce(ty)
    }

    /// The JSON form of a value, as the Web API returns it. Decimals are JSON numbers,
    /// date/times ISO 8601 UTC with a `Z`, GUIDs hyphenated lowercase.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::String(s) => Json::String(s.clone()),
            Value::Integer(i) | Value::OptionSet(i) => Json::from(*i),
            Value::BigInt(i) => Json::from(*i),
            Value::Decimal(d) => serde_json::Number::from_str(&d.normalize().to_string())
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Value::Double(d) => serde_json::Number::from_f64(*d)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Value::Boolean(b) => Json::Bool(*b),
            Value::DateTime(d) => Json::String(format_datetime(d)),
            Value::Guid(g) => Json::String(g.to_string()),
            Value::Lookup(r) => serde_json::json!({"entity": r.entity.as_str(), "id": r.id.to_string()}),
        }
    }
}

impl Value {
    /// Writes the value as JSON text, as [`Value::to_json`] gives it but with decimals digit
    /// for digit: a JSON tree holds numbers as doubles, which keep only about 16 significant
    /// digits (money has up to 19).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        match self {
            Value::Decimal(d) => write!(out, "{}", d.normalize()),
            other => serde_json::to_writer(out, &other.to_json()).map_err(std::io::Error::other),
        }
        .expect("writing to memory does not fail");
    }
}

/// A decimal from the text of a JSON number, digit for digit; `None` for other JSON text and
/// numbers out of a decimal's range.
pub(crate) fn decimal_from_number(text: &str) -> Option<Decimal> {
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return None;
    }
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .ok()
}

/// ISO 8601 UTC with `Z`; whole seconds when there is no fraction (as Dataverse writes them).
pub fn format_datetime(d: &DateTime<Utc>) -> String {
    if d.nanosecond() == 0 {
        d.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        d.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

fn truncate_to_micros(d: DateTime<Utc>) -> DateTime<Utc> {
    let micros = d.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(d)
}

/// Accepts RFC 3339 (any offset, converted to UTC), a date-time without offset (taken as
/// UTC) and a plain date (midnight UTC).
pub fn parse_datetime(s: &str) -> Result<DateTime<Utc>, ValueError> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(truncate_to_micros(d.with_timezone(&Utc)));
    }
    if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(truncate_to_micros(d.and_utc()));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(ValueError::InvalidDateTime(s.to_owned()))
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OptionSet;

    #[test]
    fn strings_are_checked_against_max_length_in_characters() {
        let ty = AttributeType::String { max_length: 3 };
        assert_eq!(
            Value::String("héé".into()).coerce(&ty),
            Ok(Value::String("héé".into()))
        );
        assert_eq!(
            Value::String("abcd".into()).coerce(&ty),
            Err(ValueError::TooLong { len: 4, max: 3 })
        );
        assert!(matches!(
            Value::Integer(1).coerce(&ty),
            Err(ValueError::WrongType { .. })
        ));
    }

    #[test]
    fn decimals_round_to_precision_and_accept_json_numbers() {
        let money = AttributeType::Money { precision: 2 };
        let v = Value::from_json(&serde_json::json!(12.345), &money).unwrap();
        assert_eq!(v, Value::Decimal(Decimal::from_str("12.35").unwrap()));
        let v = Value::from_json(
            &serde_json::json!(922337203685477_i64),
            &AttributeType::Money { precision: 4 },
        )
        .unwrap();
        assert_eq!(v.to_json().to_string(), "922337203685477");
    }

    #[test]
    fn options_must_exist() {
        let ty = AttributeType::Picklist {
            options: OptionSet::new([(1, "A"), (2, "B")]),
        };
        assert_eq!(Value::Integer(2).coerce(&ty), Ok(Value::OptionSet(2)));
        assert_eq!(Value::Integer(3).coerce(&ty), Err(ValueError::UnknownOption(3)));
    }

    #[test]
    fn datetimes_are_utc_with_microseconds() {
        let v = Value::from_json(
            &serde_json::json!("2026-03-01T10:00:00.1234567+02:00"),
            &AttributeType::DateTime,
        )
        .unwrap();
        assert_eq!(v.to_json(), serde_json::json!("2026-03-01T08:00:00.123456Z"));
        assert!(Value::from_json(&serde_json::json!("yesterday"), &AttributeType::DateTime).is_err());
    }

    #[test]
    fn integer_range_is_enforced() {
        let ty = AttributeType::Integer { min: 0, max: 10 };
        assert!(matches!(
            Value::BigInt(11).coerce(&ty),
            Err(ValueError::OutOfRange { .. })
        ));
        assert!(matches!(
            Value::BigInt(i64::MAX).coerce(&AttributeType::integer()),
            Err(ValueError::OutOfRange { .. })
        ));
    }

    #[test]
    fn lookups_check_their_targets() {
        let account = EntityName::parse("account").unwrap();
        let ty = AttributeType::Lookup {
            targets: vec![account.clone()],
        };
        let id = RecordId::new_random();
        let v = Value::from_json(&serde_json::json!(id.to_string()), &ty).unwrap();
        assert_eq!(v, Value::Lookup(EntityReference { entity: account, id }));
        let wrong = serde_json::json!({"entity": "contact", "id": id.to_string()});
        assert!(matches!(
            Value::from_json(&wrong, &ty),
            Err(ValueError::WrongTarget { .. })
        ));
    }
}
