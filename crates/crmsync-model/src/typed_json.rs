//! Typed values read straight from JSON text.
//!
//! [`TypedValue`] reads one value of an attribute type exactly as [`Value::from_json`] does,
//! without building a `serde_json::Value` first: bulk paths (a `$batch` of a thousand
//! writes, a page of queued changes) read their values this way. Objects and arrays, which
//! only lookups accept, are read as JSON and handed to [`Value::from_json`], so both paths
//! take and refuse the same values with the same errors.

use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use serde_json::value::RawValue;

use crate::{AttributeType, RecordId, Value, ValueError};

/// Reads one value of the attribute type; the outer result is the JSON syntax, the inner one
/// whether the value fits the type.
#[derive(Clone, Copy)]
pub struct TypedValue<'a>(pub &'a AttributeType);

impl<'de> DeserializeSeed<'de> for TypedValue<'_> {
    type Value = Result<Value, ValueError>;

    /// Decimals and money are read from their text, digit for digit (a double keeps only
    /// about 16 significant digits), which needs a `serde_json` deserializer of borrowed text
    /// (`from_str`, `from_slice`).
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if !matches!(
            self.0,
            AttributeType::Decimal { .. } | AttributeType::Money { .. }
        ) {
            return d.deserialize_any(self);
        }
        let Some(raw) = Option::<&'de RawValue>::deserialize(d)? else {
            return Ok(Value::Null.coerce(self.0));
        };
        let text = raw.get();
        if let Some(d) = crate::value::decimal_from_number(text) {
            return Ok(Value::Decimal(d).coerce(self.0));
        }
        // Text, booleans, objects, numbers no decimal holds: as the JSON tree path takes or
        // refuses them.
        let json: Json = serde_json::from_str(text).map_err(de::Error::custom)?;
        Ok(Value::from_json(&json, self.0))
    }
}

impl TypedValue<'_> {
    fn number(self, n: serde_json::Number) -> Result<Value, ValueError> {
        Value::from_json(&Json::Number(n), self.0)
    }
}

impl<'de> Visitor<'de> for TypedValue<'_> {
    type Value = Result<Value, ValueError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Value::Null.coerce(self.0))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Value::Boolean(b).coerce(self.0))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Self::Value, E> {
        Ok(self.number(i.into()))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Self::Value, E> {
        Ok(self.number(u.into()))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Self::Value, E> {
        Ok(match serde_json::Number::from_f64(f) {
            Some(n) => self.number(n),
            None => Err(ValueError::InvalidNumber(f.to_string())),
        })
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(match self.0 {
            AttributeType::Lookup { .. } => RecordId::parse(s)
                .map_err(|_| ValueError::InvalidGuid(s.to_owned()))
                .and_then(|id| Value::Guid(id).coerce(self.0)),
            _ => Value::String(s.to_owned()).coerce(self.0),
        })
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        match self.0 {
            AttributeType::Lookup { .. } => self.visit_str(&s),
            _ => Ok(Value::String(s).coerce(self.0)),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let json = Json::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Value::from_json(&json, self.0))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let json = Json::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(Value::from_json(&json, self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EntityName, OptionMetadata, OptionSet};
    use proptest::prelude::*;

    fn types() -> Vec<AttributeType> {
        vec![
            AttributeType::String { max_length: 10 },
            AttributeType::Memo { max_length: 100 },
            AttributeType::Integer { min: -5, max: 500 },
            AttributeType::BigInt,
            AttributeType::Decimal { precision: 2 },
            AttributeType::Money { precision: 2 },
            AttributeType::Double,
            AttributeType::Boolean,
            AttributeType::DateTime,
            AttributeType::Uniqueidentifier,
            AttributeType::Lookup {
                targets: vec![EntityName::parse("account").unwrap()],
            },
            AttributeType::Picklist {
                options: OptionSet {
                    options: vec![OptionMetadata {
                        value: 1,
                        label: "One".into(),
                        state: None,
                    }],
                },
            },
        ]
    }

    fn both(text: &str, ty: &AttributeType) -> (Result<Value, ValueError>, Result<Value, ValueError>) {
        let json: Json = serde_json::from_str(text).unwrap();
        let direct = TypedValue(ty)
            .deserialize(&mut serde_json::Deserializer::from_str(text))
            .unwrap();
        (direct, Value::from_json(&json, ty))
    }

    #[test]
    fn reads_every_kind_as_from_json_does() {
        let id = "5f0c3a1e-8d2b-4c7a-9e1f-0a1b2c3d4e5f";
        let texts = [
            "null".to_owned(),
            "true".into(),
            "1".into(),
            "-7".into(),
            "18446744073709551615".into(),
            "2.5".into(),
            "1e300".into(),
            "0.1234567".into(),
            r#""text""#.into(),
            r#""a very long text indeed""#.into(),
            r#""2024-02-29T10:00:00Z""#.into(),
            r#""2024-02-29""#.into(),
            r#""12.30""#.into(),
            format!(r#""{id}""#),
            format!(r#"{{"entity":"account","id":"{id}"}}"#),
            format!(r#"{{"entity":"nosuch!","id":"{id}"}}"#),
            r#"{"a":1}"#.into(),
            "[1,2]".into(),
            r#""esc\"aped \u00e9""#.into(),
        ];
        for ty in types() {
            for text in &texts {
                let (direct, via_json) = both(text, &ty);
                assert_eq!(direct, via_json, "{text} as {ty:?}");
            }
        }
    }

    #[test]
    fn decimals_are_read_digit_for_digit() {
        let money = AttributeType::Money { precision: 4 };
        let read = |text: &str| {
            TypedValue(&money)
                .deserialize(&mut serde_json::Deserializer::from_str(text))
                .unwrap()
        };
        let decimal = |text: &str| Ok(Value::Decimal(text.parse().unwrap()));
        assert_eq!(read("922337203685477.5807"), decimal("922337203685477.5807"));
        assert_eq!(read("-0.00005"), decimal("-0.0001"), "rounded away from zero");
        assert_eq!(read("1.5E+3"), decimal("1500"));
        assert_eq!(read(r#""12.30""#), decimal("12.3"));
        assert_eq!(read("null"), Ok(Value::Null));
        assert!(read("true").is_err() && read("[1]").is_err());
    }

    proptest! {
        #[test]
        fn any_number_or_string_reads_the_same(n in any::<f64>(), i in any::<i64>(), s in "\\PC{0,12}") {
            let texts = [
                serde_json::to_string(&n).unwrap(),
                i.to_string(),
                serde_json::to_string(&s).unwrap(),
            ];
            for ty in types() {
                for text in &texts {
                    if serde_json::from_str::<Json>(text).is_err() {
                        continue;
                    }
                    let (direct, via_json) = both(text, &ty);
                    let decimal = matches!(ty, AttributeType::Decimal { .. } | AttributeType::Money { .. });
                    if decimal && beyond_a_double(text) {
                        // Read digit for digit, as the same digits in quotes are; a JSON tree
                        // keeps only the double's.
                        if !text.contains(['e', 'E']) {
                            prop_assert_eq!(direct, Value::String(text.clone()).coerce(&ty));
                        }
                        continue;
                    }
                    prop_assert_eq!(direct, via_json);
                }
            }
        }
    }

    /// Whether a JSON number has more digits than a double keeps exactly (or an exponent).
    fn beyond_a_double(text: &str) -> bool {
        let digits = text
            .trim_start_matches(['-', '0', '.'])
            .chars()
            .filter(char::is_ascii_digit)
            .count();
        text.starts_with(|c: char| c == '-' || c.is_ascii_digit())
            && text.contains(['.', 'e', 'E'])
            && (digits > 15 || text.contains(['e', 'E']))
    }
}
