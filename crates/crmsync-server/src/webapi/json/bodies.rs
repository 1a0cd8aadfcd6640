//! Reading the records clients write: attributes by logical name; lookups as
//! `x@odata.bind` or `x_target@odata.bind` with `/set(id)` (absolute URLs too) or null.
//! Instance annotations (`@odata.type`, …) are ignored, and so are the system-managed
//! `createdon`, `modifiedon` and `versionnumber`, which clients often send back as they read
//! them.

use crmsync_model::{
    AttributeMetadata, AttributeName, AttributeType, EntityMetadata, EntityReference, Record, RecordId, Value,
};
use serde_json::Value as Json;

use crate::ApiError;

/// Finds the lookup attribute a navigation property `nav` (`x` or `x_target`) writes.
fn lookup_for_nav<'e>(
    entity: &'e EntityMetadata,
    nav: &str,
) -> Option<(&'e AttributeMetadata, Option<String>)> {
    let nav = nav.to_ascii_lowercase();
    if let Some(a) = entity
        .attribute(&nav)
        .filter(|a| matches!(a.attribute_type, AttributeType::Lookup { .. }))
    {
        return Some((a, None));
    }
    let (attr, target) = nav.rsplit_once('_')?;
    let a = entity
        .attribute(attr)
        .filter(|a| matches!(a.attribute_type, AttributeType::Lookup { .. }))?;
    Some((a, Some(target.to_owned())))
}

/// `/accounts(guid)`, `accounts(guid)` or an absolute URL ending so -> (`accounts`, id).
fn parse_bind(value: &str) -> Option<(String, RecordId)> {
    let last = value.trim_end_matches('/').rsplit('/').next()?;
    let open = last.find('(')?;
    let id = RecordId::parse(last[open + 1..].strip_suffix(')')?).ok()?;
    Some((last[..open].to_owned(), id))
}

/// Reads a JSON body into a record of `entity`; `entities` resolve `@odata.bind` targets.
pub fn record_from_json<E: std::borrow::Borrow<EntityMetadata>>(
    entity: &EntityMetadata,
    entities: &[E],
    body: &Json,
) -> Result<Record, ApiError> {
    let map = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let mut record = Record::default();
    for (key, json) in map {
        match entry(entity, key)? {
            Entry::Bind(nav) => {
                let (attribute, value) = bind(entity, entities, key, nav, json)?;
                record.values.insert(attribute, value);
            }
            Entry::Ignored => {}
            Entry::Attribute(attr) => {
                let value = Value::from_json(json, &attr.attribute_type).map_err(|error| {
                    crmsync_model::ModelError::InvalidValue {
                        attribute: attr.logical_name.clone(),
                        error,
                    }
                })?;
                set(entity, &mut record, attr, value, key)?;
            }
        }
    }
    Ok(record)
}

/// Reads a request body as [`record_from_json`] does, straight from the text: values are
/// typed as they are read (no JSON tree), which is most of the work of a `$batch` of a
/// thousand writes. A body it cannot read that way is read again through
/// [`record_from_json`], so errors are the same.
pub fn record_from_body<E: std::borrow::Borrow<EntityMetadata>>(
    entity: &EntityMetadata,
    entities: &[E],
    body: &[u8],
) -> Result<Record, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let read = serde::de::DeserializeSeed::deserialize(BodySeed { entity, entities }, &mut de);
    if let Ok(Some(record)) = read
        && de.end().is_ok()
    {
        return Ok(record);
    }
    let json: Json = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    record_from_json(entity, entities, &json)
}

/// What one key of a request body is.
enum Entry<'e, 'k> {
    /// `nav@odata.bind`: a lookup written by reference.
    Bind(&'k str),
    /// Instance annotations and system-managed attributes clients send back as they read them.
    Ignored,
    Attribute(&'e AttributeMetadata),
}

fn entry<'e, 'k>(entity: &'e EntityMetadata, key: &'k str) -> Result<Entry<'e, 'k>, ApiError> {
    if let Some(nav) = key.strip_suffix("@odata.bind") {
        return Ok(Entry::Bind(nav));
    }
    if key.contains('@') || matches!(key, "createdon" | "modifiedon" | "versionnumber") {
        return Ok(Entry::Ignored);
    }
    if let Some(lookup) = key.strip_prefix('_').and_then(|k| k.strip_suffix("_value")) {
        return Err(ApiError::bad_request(format!(
            "'{key}' is read-only: write the lookup as \"{lookup}@odata.bind\": \"/<set>(<id>)\""
        )));
    }
    entity.attribute(key).map(Entry::Attribute).ok_or_else(|| {
        ApiError::bad_request(format!(
            "The property '{key}' does not exist on type '{}'",
            entity.logical_name
        ))
    })
}

/// The lookup a `nav@odata.bind` entry writes, and its value.
fn bind<E: std::borrow::Borrow<EntityMetadata>>(
    entity: &EntityMetadata,
    entities: &[E],
    key: &str,
    nav: &str,
    json: &Json,
) -> Result<(AttributeName, Value), ApiError> {
    let (attr, target) = lookup_for_nav(entity, nav).ok_or_else(|| {
        ApiError::bad_request(format!(
            "'{nav}' is not a lookup navigation property of '{}'",
            entity.logical_name
        ))
    })?;
    let value = match json {
        Json::Null => Value::Null,
        Json::String(s) => {
            let (set, id) = parse_bind(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "'{s}' in {key} is not a reference like /accounts(<guid>)"
                ))
            })?;
            let target_entity = entities
                .iter()
                .map(|e| e.borrow())
                .find(|e| e.entity_set_name == set)
                .ok_or_else(|| ApiError::bad_request(format!("unknown entity set '{set}' in {key}")))?;
            if target
                .as_ref()
                .is_some_and(|t| t != target_entity.logical_name.as_str())
            {
                return Err(ApiError::bad_request(format!(
                    "{key} names '{}' but binds to '{set}'",
                    target.unwrap_or_default()
                )));
            }
            Value::Lookup(EntityReference {
                entity: target_entity.logical_name.clone(),
                id,
            })
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "{key} must be a string like /accounts(<guid>) or null, got {other}"
            )));
        }
    };
    let value =
        value
            .coerce(&attr.attribute_type)
            .map_err(|error| crmsync_model::ModelError::InvalidValue {
                attribute: attr.logical_name.clone(),
                error,
            })?;
    Ok((attr.logical_name.clone(), value))
}

/// Sets an attribute's value; the primary id becomes the record's id.
fn set(
    entity: &EntityMetadata,
    record: &mut Record,
    attr: &AttributeMetadata,
    value: Value,
    key: &str,
) -> Result<(), ApiError> {
    if attr.logical_name == entity.primary_id_attribute {
        match value {
            Value::Guid(id) => record.id = Some(id),
            _ => return Err(ApiError::bad_request(format!("'{key}' must be a GUID"))),
        }
        return Ok(());
    }
    record.values.insert(attr.logical_name.clone(), value);
    Ok(())
}

/// [`record_from_body`]'s reader: `None` at the first entry it cannot take (that body is
/// read again through [`record_from_json`] for its error).
struct BodySeed<'a, E> {
    entity: &'a EntityMetadata,
    entities: &'a [E],
}

impl<'de, E: std::borrow::Borrow<EntityMetadata>> serde::de::DeserializeSeed<'de> for BodySeed<'_, E> {
    type Value = Option<Record>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, E: std::borrow::Borrow<EntityMetadata>> serde::de::Visitor<'de> for BodySeed<'_, E> {
    type Value = Option<Record>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut record = Record::default();
        let mut ok = true;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let found = if ok { entry(self.entity, &key).ok() } else { None };
            ok = match found {
                Some(Entry::Bind(nav)) => {
                    let json: Json = map.next_value()?;
                    match bind(self.entity, self.entities, &key, nav, &json) {
                        Ok((attribute, value)) => {
                            record.values.insert(attribute, value);
                            true
                        }
                        Err(_) => false,
                    }
                }
                Some(Entry::Attribute(attr)) => {
                    match map.next_value_seed(crmsync_model::TypedValue(&attr.attribute_type))? {
                        Ok(value) => set(self.entity, &mut record, attr, value, &key).is_ok(),
                        Err(_) => false,
                    }
                }
                Some(Entry::Ignored) | None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    found.is_some()
                }
            };
        }
        Ok(ok.then_some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webapi::json::test_entities::entities;
    use crmsync_model::EntityName;

    #[test]
    fn binds_and_values_are_read_with_clear_errors() {
        let es = entities();
        let id = RecordId::new_random();
        let body = serde_json::json!({
            "fullname": "Ada",
            "parentcustomerid_account@odata.bind": format!("/accounts({id})"),
            "@odata.type": "#Microsoft.Dynamics.CRM.contact",
            "modifiedon": "2020-01-01T00:00:00Z",
        });
        let r = record_from_json(&es[1], &es, &body).unwrap();
        assert_eq!(r.get("fullname"), Some(&Value::String("Ada".into())));
        assert_eq!(
            r.get("parentcustomerid"),
            Some(&Value::Lookup(EntityReference {
                entity: EntityName::parse("account").unwrap(),
                id
            }))
        );
        assert_eq!(r.get("modifiedon"), None);
        let bad = serde_json::json!({"nosuch": 1});
        assert!(
            record_from_json(&es[1], &es, &bad)
                .unwrap_err()
                .message
                .contains("'nosuch' does not exist")
        );
        let wrong = serde_json::json!({"parentcustomerid_contact@odata.bind": format!("/accounts({id})")});
        assert!(record_from_json(&es[1], &es, &wrong).is_err());
        let ro = serde_json::json!({"_parentcustomerid_value": id.to_string()});
        assert!(
            record_from_json(&es[1], &es, &ro)
                .unwrap_err()
                .message
                .contains("@odata.bind")
        );
        let ty = serde_json::json!({"fullname": 5});
        assert!(
            record_from_json(&es[1], &es, &ty)
                .unwrap_err()
                .message
                .contains("fullname")
        );
        assert!(record_from_json(&es[1], &es, &serde_json::json!([1])).is_err());
    }

    #[test]
    fn a_body_read_from_text_is_the_body_read_as_json() {
        let es = entities();
        let id = RecordId::new_random();
        let other = RecordId::new_random();
        let bodies = [
            format!(r#"{{"fullname": "Ada \"the first\" é", "contactid": "{id}"}}"#),
            format!(r#"{{"parentcustomerid_account@odata.bind": "/accounts({other})", "fullname": null}}"#),
            format!(
                r#"{{"parentcustomerid@odata.bind": "https://x.example/api/data/v9.2/contacts({other})"}}"#
            ),
            r##"{"parentcustomerid@odata.bind": null, "@odata.type": "#x", "modifiedon": "2020-01-01"}"##
                .into(),
            r#"{"fullname": "twice", "fullname": "last wins"}"#.into(),
            r#"{}"#.into(),
            // Each of these fails; the error must be the one the JSON path gives.
            r#"{"nosuch": 1}"#.into(),
            r#"{"fullname": 5}"#.into(),
            r#"{"contactid": "not a guid"}"#.into(),
            format!(r#"{{"_parentcustomerid_value": "{id}"}}"#),
            format!(r#"{{"parentcustomerid_contact@odata.bind": "/accounts({id})"}}"#),
            r#"{"parentcustomerid@odata.bind": 5}"#.into(),
            r#"{"parentcustomerid@odata.bind": "/nosuch(1)"}"#.into(),
            r#"{"fullname": "x"} trailing"#.into(),
            r#"{"fullname": "x""#.into(),
            "[1]".into(),
            "\"text\"".into(),
        ];
        for body in &bodies {
            let from_text = record_from_body(&es[1], &es, body.as_bytes());
            let from_json = serde_json::from_str::<Json>(body)
                .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
                .and_then(|json| record_from_json(&es[1], &es, &json));
            match (from_text, from_json) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{body}"),
                (Err(a), Err(b)) => assert_eq!(a.message, b.message, "{body}"),
                (a, b) => panic!("{body}: {a:?} vs {b:?}"),
            }
        }
    }
}
