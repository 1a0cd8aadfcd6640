//! Records in Dataverse's JSON shape.
//!
//! Reading: attributes by logical name; a lookup `x` as `_x_value` (the id), with the
//! `Microsoft.Dynamics.CRM.lookuplogicalname` annotation when asked for; option sets as
//! integers with an `OData.Community.Display.V1.FormattedValue` label when asked for;
//! `@odata.etag` from `versionnumber`.
//!
//! Writing: attributes by logical name; lookups as `x@odata.bind` or `x_target@odata.bind`
//! with `/set(id)` (absolute URLs too) or null. Instance annotations (`@odata.type`, …) are
//! ignored, and so are the system-managed `createdon`, `modifiedon` and `versionnumber`,
//! which clients often send back as they read them.

use crmsync_model::{
    AttributeMetadata, AttributeType, EntityMetadata, EntityReference, Record, RecordId, Value,
};
use serde_json::{Map, Value as Json};

use super::Prefer;
use crate::ApiError;

const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";
const LOOKUP_NAME: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";

pub fn etag(record: &Record) -> Option<String> {
    match record.get("versionnumber") {
        Some(Value::BigInt(v)) => Some(format!("W/\"{v}\"")),
        _ => None,
    }
}

/// One record as a JSON object (without `@odata.context`): [`RecordJson`]'s shape, as a map
/// for responses that add fields around it.
pub fn record_to_json(entity: &EntityMetadata, record: &Record, prefer: &Prefer) -> Map<String, Json> {
    let shape = JsonShape::new(entity, prefer);
    let json = RecordJson {
        shape: &shape,
        record,
        linked: &[],
        only: None,
    };
    match serde_json::to_value(json) {
        Ok(Json::Object(map)) => map,
        _ => unreachable!("a record always serializes to a JSON object"),
    }
}

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
        if let Some(nav) = key.strip_suffix("@odata.bind") {
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
                        .ok_or_else(|| {
                            ApiError::bad_request(format!("unknown entity set '{set}' in {key}"))
                        })?;
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
            let value = value.coerce(&attr.attribute_type).map_err(|error| {
                crmsync_model::ModelError::InvalidValue {
                    attribute: attr.logical_name.clone(),
                    error,
                }
            })?;
            record.values.insert(attr.logical_name.clone(), value);
            continue;
        }
        if key.contains('@') || key.starts_with("@odata") {
            continue;
        }
        if matches!(key.as_str(), "createdon" | "modifiedon" | "versionnumber") {
            continue;
        }
        if let Some(lookup) = key.strip_prefix('_').and_then(|k| k.strip_suffix("_value")) {
            return Err(ApiError::bad_request(format!(
                "'{key}' is read-only: write the lookup as \"{lookup}@odata.bind\": \"/<set>(<id>)\""
            )));
        }
        let attr = entity.attribute(key).ok_or_else(|| {
            ApiError::bad_request(format!(
                "The property '{key}' does not exist on type '{}'",
                entity.logical_name
            ))
        })?;
        let value = Value::from_json(json, &attr.attribute_type).map_err(|error| {
            crmsync_model::ModelError::InvalidValue {
                attribute: attr.logical_name.clone(),
                error,
            }
        })?;
        if attr.logical_name == entity.primary_id_attribute {
            match value {
                Value::Guid(id) => record.id = Some(id),
                _ => return Err(ApiError::bad_request(format!("'{key}' must be a GUID"))),
            }
            continue;
        }
        record.values.insert(attr.logical_name.clone(), value);
    }
    Ok(record)
}

/// What writing records of one entity needs, worked out once per response: the attributes by
/// name (a record names its values), the property names of lookups and the annotations
/// asked for.
pub struct JsonShape<'a> {
    pub entity: &'a EntityMetadata,
    /// Sorted by name.
    attributes: Vec<(&'a str, &'a AttributeType, Option<String>)>,
    lookup_names: bool,
    formatted: bool,
}

impl<'a> JsonShape<'a> {
    pub fn new(entity: &'a EntityMetadata, prefer: &Prefer) -> Self {
        let mut attributes: Vec<_> = entity
            .attributes
            .iter()
            .map(|a| {
                let name = a.logical_name.as_str();
                let key = matches!(a.attribute_type, AttributeType::Lookup { .. })
                    .then(|| format!("_{name}_value"));
                (name, &a.attribute_type, key)
            })
            .collect();
        attributes.sort_unstable_by_key(|(name, ..)| *name);
        JsonShape {
            entity,
            attributes,
            lookup_names: prefer.wants_annotation(LOOKUP_NAME),
            formatted: prefer.wants_annotation(FORMATTED),
        }
    }

    fn attribute(&self, name: &str) -> Option<&(&'a str, &'a AttributeType, Option<String>)> {
        self.attributes
            .binary_search_by_key(&name, |(n, ..)| n)
            .ok()
            .map(|i| &self.attributes[i])
    }
}

/// Serializes a record as [`record_to_json`] does, straight to the output (no intermediate
/// map): collection reads write thousands of records per page.
pub struct RecordJson<'a> {
    pub shape: &'a JsonShape<'a>,
    pub record: &'a Record,
    /// Link-entity attributes, written as `alias.attribute`.
    pub linked: &'a [(String, crmsync_model::AttributeName, Value)],
    /// Attributes to write (the primary id always); `None` for all. `versionnumber` feeds
    /// the etag either way.
    pub only: Option<&'a [crmsync_model::AttributeName]>,
}

struct ValueJson<'a>(&'a Value);

impl serde::Serialize for ValueJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::String(v) => s.serialize_str(v),
            Value::Integer(i) | Value::OptionSet(i) => s.serialize_i32(*i),
            Value::BigInt(i) => s.serialize_i64(*i),
            Value::Double(f) => s.serialize_f64(*f),
            Value::Boolean(b) => s.serialize_bool(*b),
            Value::Guid(g) => s.collect_str(g),
            Value::Lookup(r) => s.collect_str(&r.id),
            other => other.to_json().serialize(s),
        }
    }
}

impl serde::Serialize for RecordJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        if let Some(tag) = etag(self.record) {
            map.serialize_entry("@odata.etag", &tag)?;
        }
        let shape = self.shape;
        for (name, value) in &self.record.values {
            if let Some(only) = self.only
                && name != &shape.entity.primary_id_attribute
                && !only.contains(name)
            {
                continue;
            }
            match (shape.attribute(name.as_str()), value) {
                (Some((_, _, Some(key))), v) => {
                    map.serialize_entry(key, &ValueJson(v))?;
                    if let (Value::Lookup(r), true) = (v, shape.lookup_names) {
                        map.serialize_entry(&format!("{key}@{LOOKUP_NAME}"), r.entity.as_str())?;
                    }
                }
                (Some((_, ty, None)), Value::OptionSet(v)) => {
                    map.serialize_entry(name.as_str(), v)?;
                    let label = ty
                        .option_set()
                        .and_then(|set| set.options.iter().find(|o| o.value == *v));
                    if let Some(label) = label.filter(|_| shape.formatted) {
                        map.serialize_entry(&format!("{name}@{FORMATTED}"), &label.label)?;
                    }
                }
                (_, v) => map.serialize_entry(name.as_str(), &ValueJson(v))?,
            }
        }
        for (alias, attribute, value) in self.linked {
            map.serialize_entry(&format!("{alias}.{attribute}"), &ValueJson(value))?;
        }
        map.end()
    }
}

/// A JSON object written field by field into one buffer, for collection responses.
pub struct Envelope {
    buf: Vec<u8>,
}

impl Envelope {
    pub fn new(context: &str) -> Self {
        let mut e = Envelope {
            buf: Vec::with_capacity(64 * 1024),
        };
        e.buf.push(b'{');
        e.field("@odata.context", &context);
        e
    }

    pub fn field(&mut self, name: &str, value: &impl serde::Serialize) -> &mut Self {
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        serde_json::to_writer(&mut self.buf, name).expect("writing to a vector cannot fail");
        self.buf.push(b':');
        serde_json::to_writer(&mut self.buf, value).expect("a JSON value serializes");
        self
    }

    /// `"value":[…]` from serializable items.
    pub fn items<T: serde::Serialize>(&mut self, items: impl IntoIterator<Item = T>) -> &mut Self {
        self.buf.extend_from_slice(b",\"value\":[");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            serde_json::to_writer(&mut self.buf, &item).expect("a JSON value serializes");
        }
        self.buf.push(b']');
        self
    }

    pub fn into_response(mut self) -> axum::response::Response {
        use axum::response::IntoResponse;
        self.buf.push(b'}');
        let headers = [(
            axum::http::header::CONTENT_TYPE,
            "application/json; odata.metadata=minimal",
        )];
        (headers, self.buf).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crmsync_model::EntityName;

    fn entities() -> Vec<EntityMetadata> {
        crmsync_sample_like()
    }

    fn crmsync_sample_like() -> Vec<EntityMetadata> {
        let account = EntityMetadata::new("account", "accounts", "name").unwrap();
        let contact = EntityMetadata::new("contact", "contacts", "fullname")
            .unwrap()
            .with_attribute(
                AttributeMetadata::new(
                    "parentcustomerid",
                    AttributeType::Lookup {
                        targets: vec![
                            EntityName::parse("account").unwrap(),
                            EntityName::parse("contact").unwrap(),
                        ],
                    },
                )
                .unwrap(),
            )
            .unwrap();
        vec![account, contact]
    }

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
}
