//! Writing the records clients read: attributes by logical name; a lookup `x` as
//! `_x_value` (the id), with the `Microsoft.Dynamics.CRM.lookuplogicalname` annotation when
//! asked for; option sets as integers with an `OData.Community.Display.V1.FormattedValue`
//! label when asked for; `@odata.etag` from `versionnumber`; money and decimals digit for
//! digit.

use crmsync_model::{AttributeName, AttributeType, EntityMetadata, Record, Value};
use serde_json::value::RawValue;

use super::{FORMATTED, LOOKUP_NAME, etag};
use crate::webapi::Prefer;

/// What writing records of one entity needs, worked out once per response: the attributes by
/// name (a record names its values), the property names of lookups and their annotations,
/// and which attributes are written.
pub struct JsonShape<'a> {
    pub entity: &'a EntityMetadata,
    /// Sorted by name, as a record's values are.
    attributes: Vec<Shaped<'a>>,
    lookup_names: bool,
    formatted: bool,
    /// Whether only some attributes are written (see [`JsonShape::selecting`]).
    selective: bool,
}

/// One attribute as [`JsonShape`] writes it.
struct Shaped<'a> {
    name: &'a str,
    ty: &'a AttributeType,
    /// `_x_value` of a lookup.
    key: Option<String>,
    /// The lookup's target annotation, or an option set's label annotation.
    annotation: String,
    selected: bool,
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
                let annotation = match &key {
                    Some(key) => format!("{key}@{LOOKUP_NAME}"),
                    None => format!("{name}@{FORMATTED}"),
                };
                Shaped {
                    name,
                    ty: &a.attribute_type,
                    key,
                    annotation,
                    selected: true,
                }
            })
            .collect();
        attributes.sort_unstable_by_key(|a| a.name);
        JsonShape {
            entity,
            attributes,
            lookup_names: prefer.wants_annotation(LOOKUP_NAME),
            formatted: prefer.wants_annotation(FORMATTED),
            selective: false,
        }
    }

    /// Writes only `only` (and the primary id) of each record; `None` writes every value.
    /// `versionnumber` feeds the etag either way.
    pub fn selecting(mut self, only: Option<&[crmsync_model::AttributeName]>) -> Self {
        if let Some(only) = only {
            let pk = self.entity.primary_id_attribute.as_str();
            for a in &mut self.attributes {
                a.selected = a.name == pk || only.iter().any(|o| o.as_str() == a.name);
            }
            self.selective = true;
        }
        self
    }

    /// The attribute `name`, looked for from `*from` on; `*from` moves past it. Called with
    /// names in ascending order (a record's), the walk over the attributes is done once per
    /// record.
    fn attribute_from(&self, name: &str, from: &mut usize) -> Option<&Shaped<'a>> {
        let rest = &self.attributes[*from..];
        let skipped = rest.iter().take_while(|a| a.name < name).count();
        *from += skipped;
        match self.attributes.get(*from) {
            Some(a) if a.name == name => {
                *from += 1;
                Some(a)
            }
            _ => None,
        }
    }
}

/// Serializes a record straight to the output (no intermediate map): collection reads write
/// thousands of records per page.
pub struct RecordJson<'a> {
    pub shape: &'a JsonShape<'a>,
    pub record: &'a Record,
    /// Link-entity attributes, written as `alias.attribute`.
    pub linked: &'a [(String, crmsync_model::AttributeName, Value)],
}

struct ValueJson<'a>(&'a Value);

impl serde::Serialize for ValueJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = uuid::Uuid::encode_buffer();
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::String(v) => s.serialize_str(v),
            Value::Integer(i) | Value::OptionSet(i) => s.serialize_i32(*i),
            Value::BigInt(i) => s.serialize_i64(*i),
            Value::Double(f) => s.serialize_f64(*f),
            Value::Boolean(b) => s.serialize_bool(*b),
            Value::Guid(g) => s.serialize_str(g.as_uuid().hyphenated().encode_lower(&mut text)),
            Value::Lookup(r) => s.serialize_str(r.id.as_uuid().hyphenated().encode_lower(&mut text)),
            // Digit for digit: a double keeps only about 16 significant digits.
            Value::Decimal(d) => RawValue::from_string(d.normalize().to_string())
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
            Value::DateTime(d) => {
                // As `Value::to_json` writes it: whole seconds when there is no fraction.
                use chrono::{SecondsFormat, Timelike};
                let format = match d.nanosecond() {
                    0 => SecondsFormat::Secs,
                    _ => SecondsFormat::Micros,
                };
                s.serialize_str(&d.to_rfc3339_opts(format, true))
            }
        }
    }
}

impl serde::Serialize for RecordJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        self.write_fields(&mut map)?;
        map.end()
    }
}

/// A record answered on its own: `@odata.context`, then the record as [`RecordJson`] writes
/// it (digit for digit, unlike a JSON tree).
pub struct EntityJson<'a> {
    pub context: &'a str,
    pub record: RecordJson<'a>,
}

impl serde::Serialize for EntityJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("@odata.context", self.context)?;
        self.record.write_fields(&mut map)?;
        map.end()
    }
}

impl RecordJson<'_> {
    fn write_fields<M: serde::ser::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        if let Some(tag) = etag(self.record) {
            map.serialize_entry("@odata.etag", &tag)?;
        }
        let shape = self.shape;
        let mut from = 0;
        for (name, value) in &self.record.values {
            let attribute = shape.attribute_from(name.as_str(), &mut from);
            shape.write_value(map, attribute, name.as_str(), value)?;
        }
        for (alias, attribute, value) in self.linked {
            map.serialize_entry(&format!("{alias}.{attribute}"), &ValueJson(value))?;
        }
        Ok(())
    }
}

impl JsonShape<'_> {
    /// Writes one value of a record, as `attribute` of the entity (`None`: not one of its
    /// attributes).
    fn write_value<M: serde::ser::SerializeMap>(
        &self,
        map: &mut M,
        attribute: Option<&Shaped<'_>>,
        name: &str,
        value: &Value,
    ) -> Result<(), M::Error> {
        match (attribute, value) {
            (Some(a), _) if !a.selected => Ok(()),
            (None, _) if self.selective => Ok(()),
            (
                Some(Shaped {
                    key: Some(key),
                    annotation,
                    ..
                }),
                v,
            ) => {
                map.serialize_entry(key, &ValueJson(v))?;
                match (v, self.lookup_names) {
                    (Value::Lookup(r), true) => map.serialize_entry(annotation, r.entity.as_str()),
                    _ => Ok(()),
                }
            }
            (Some(Shaped { ty, annotation, .. }), Value::OptionSet(v)) => {
                map.serialize_entry(name, v)?;
                let label = ty
                    .option_set()
                    .and_then(|set| set.options.iter().find(|o| o.value == *v));
                match label.filter(|_| self.formatted) {
                    Some(label) => map.serialize_entry(annotation, &label.label),
                    None => Ok(()),
                }
            }
            (_, v) => map.serialize_entry(name, &ValueJson(v)),
        }
    }

    /// This shape matched to the columns of rows (names in ascending order), once for all
    /// the rows.
    pub fn for_columns<'s>(&'s self, columns: &'s [AttributeName]) -> ColumnsShape<'s> {
        let mut from = 0;
        let columns = columns
            .iter()
            .map(|name| (name.as_str(), self.attribute_from(name.as_str(), &mut from)))
            .collect();
        ColumnsShape { shape: self, columns }
    }
}

/// A [`JsonShape`] matched to the columns of rows (see [`JsonShape::for_columns`]).
pub struct ColumnsShape<'a> {
    shape: &'a JsonShape<'a>,
    columns: Vec<(&'a str, Option<&'a Shaped<'a>>)>,
}

/// Serializes a row of values in [`ColumnsShape`]'s columns as [`RecordJson`] does a record
/// with those values: a page of changes is written without a map per record.
pub struct RowJson<'a> {
    pub shape: &'a ColumnsShape<'a>,
    pub version: crmsync_model::Version,
    pub values: &'a [Value],
}

impl serde::Serialize for RowJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("@odata.etag", &format_args!("W/\"{}\"", self.version))?;
        for ((name, attribute), value) in self.shape.columns.iter().zip(self.values) {
            self.shape.shape.write_value(&mut map, *attribute, name, value)?;
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
        Self::with_capacity(context, 64 * 1024)
    }

    /// An envelope whose buffer starts with room for `bytes` (it grows past them if need
    /// be): a large page is written without copying what it wrote so far each time it grows.
    pub fn with_capacity(context: &str, bytes: usize) -> Self {
        let mut e = Envelope {
            buf: Vec::with_capacity(bytes),
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
    use crate::webapi::json::test_entities::entities;
    use crmsync_model::{AttributeMetadata, EntityName, EntityReference, RecordId};

    /// A change page's rows are written exactly as the records they are, whatever is selected
    /// and annotated.
    #[test]
    fn a_row_is_written_as_its_record() {
        let es = entities();
        let contact = &es[1];
        let id = RecordId::new_random();
        let record = Record::new(id)
            .with("fullname", Value::String("Ada \"the first\" é".into()))
            .with(
                "parentcustomerid",
                Value::Lookup(EntityReference {
                    entity: EntityName::parse("account").unwrap(),
                    id: RecordId::new_random(),
                }),
            )
            .with("statecode", Value::OptionSet(1))
            .with("statuscode", Value::OptionSet(2))
            .with("versionnumber", Value::BigInt(42))
            .with("createdon", Value::Null)
            .with("contactid", Value::Guid(id));
        let columns: Vec<AttributeName> = record.values.keys().cloned().collect();
        let values: Vec<Value> = record.values.values().cloned().collect();
        let annotated = Prefer {
            include_annotations: Some(vec!["*".into()]),
            ..Prefer::default()
        };
        let fullname = [AttributeName::parse("fullname").unwrap()];
        for prefer in [Prefer::default(), annotated] {
            for only in [None, Some(&fullname[..])] {
                let shape = JsonShape::new(contact, &prefer).selecting(only);
                let as_record = serde_json::to_value(RecordJson {
                    shape: &shape,
                    record: &record,
                    linked: &[],
                })
                .unwrap();
                let columns_shape = shape.for_columns(&columns);
                let as_row = serde_json::to_value(RowJson {
                    shape: &columns_shape,
                    version: 42,
                    values: &values,
                })
                .unwrap();
                assert_eq!(as_row, as_record, "{only:?}");
                assert_eq!(as_row["@odata.etag"], "W/\"42\"");
                let annotation = as_row.get(format!("_parentcustomerid_value@{LOOKUP_NAME}"));
                assert_eq!(
                    annotation.is_some(),
                    prefer.include_annotations.is_some() && only.is_none()
                );
            }
        }
    }

    /// Money and decimals are written digit for digit, guids and date/times as Dataverse
    /// writes them.
    #[test]
    fn values_are_written_digit_for_digit() {
        let entity = EntityMetadata::new("account", "accounts", "name")
            .unwrap()
            .with_attribute(AttributeMetadata::new("revenue", AttributeType::Money { precision: 2 }).unwrap())
            .unwrap();
        let id = RecordId::parse("4464a1e3-87a1-417e-90a4-5cfd42964064").unwrap();
        let when = |text: &str| Value::DateTime(text.parse().unwrap());
        let record = Record::new(id)
            .with("accountid", Value::Guid(id))
            .with("revenue", Value::Decimal("922337203685477.58".parse().unwrap()))
            .with("createdon", when("2024-02-29T10:11:12Z"))
            .with("modifiedon", when("2024-02-29T10:11:12.000250Z"));
        let shape = JsonShape::new(&entity, &Prefer::default());
        let json = serde_json::to_string(&RecordJson {
            shape: &shape,
            record: &record,
            linked: &[],
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"accountid":"4464a1e3-87a1-417e-90a4-5cfd42964064","createdon":"2024-02-29T10:11:12Z","modifiedon":"2024-02-29T10:11:12.000250Z","revenue":922337203685477.58}"#
        );
    }
}
