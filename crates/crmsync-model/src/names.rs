//! Validated names and ids. Every name type can only be built through `parse`, so a value of
//! one of these types is always safe to use as an identifier in storage (which still quotes it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::ModelError;

/// Longest logical name of an entity or attribute. PostgreSQL identifiers are limited to 63
/// bytes and storage appends suffixes such as `__type` to lookup columns.
pub const MAX_LOGICAL_NAME_LEN: usize = 50;

macro_rules! string_newtype {
    ($name:ident, $check:path, $what:literal) => {
        /// Shared text: records carry a name per value, so a clone must not copy it.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ModelError> {
                if $check(s) {
                    Ok(Self(s.into()))
                } else {
                    Err(ModelError::InvalidName {
                        kind: $what,
                        name: s.to_owned(),
                        rule: rule_of($what),
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, ModelError> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype!(OrgName, is_org_name, "organization");
string_newtype!(EntityName, is_logical_name, "entity");
string_newtype!(AttributeName, is_logical_name, "attribute");

fn rule_of(kind: &str) -> &'static str {
    match kind {
        "organization" => {
            "3 to 40 characters: lowercase letters, digits and '-', starting and ending with a letter or digit"
        }
        _ => {
            "1 to 50 characters: lowercase letters, digits and '_', starting with a letter, without '__' and not ending with '_'"
        }
    }
}

/// `[a-z0-9][a-z0-9-]{1,38}[a-z0-9]`
fn is_org_name(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (3..=40).contains(&b.len())
        && inner(&b[0])
        && inner(&b[b.len() - 1])
        && b.iter().all(|c| inner(c) || *c == b'-')
}

/// `[a-z][a-z0-9_]*`, at most 50 characters, no `__` (reserved for storage suffixes), no
/// trailing `_`.
fn is_logical_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LOGICAL_NAME_LEN
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'_'
        && !s.contains("__")
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// The primary key of a record: a GUID, client-generated or server-generated.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(Uuid);

impl RecordId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Accepts the hyphenated form, with or without braces (`{…}`), in any case.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let t = s.trim();
        let t = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(t);
        if t.len() != 36 {
            return Err(ModelError::InvalidGuid(s.to_owned()));
        }
        Uuid::parse_str(t)
            .map(Self)
            .map_err(|_| ModelError::InvalidGuid(s.to_owned()))
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for RecordId {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_names_follow_the_documented_rule() {
        for ok in ["abc", "acme", "a-1", "contoso-sales-2026", &"a".repeat(40)] {
            assert!(OrgName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "-abc",
            "abc-",
            "Acme",
            "ac_me",
            "a b",
            &"a".repeat(41),
            "acmé",
        ] {
            assert!(OrgName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn logical_names_reject_storage_reserved_shapes() {
        for ok in ["account", "new_field", "x1", "a"] {
            assert!(EntityName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "_x",
            "1x",
            "Account",
            "a__b",
            "a_",
            "a-b",
            "x\"; drop table y",
            &"a".repeat(51),
        ] {
            let err = AttributeName::parse(bad).unwrap_err().to_string();
            assert!(err.contains("attribute"), "{err}");
        }
    }

    #[test]
    fn record_ids_parse_with_braces_and_any_case() {
        let a = RecordId::parse("{6F9619FF-8B86-D011-B42D-00C04FC964FF}").unwrap();
        assert_eq!(a.to_string(), "6f9619ff-8b86-d011-b42d-00c04fc964ff");
        assert!(RecordId::parse("6f9619ff8b86d011b42d00c04fc964ff").is_err());
        assert!(RecordId::parse("not-a-guid").is_err());
    }
}
