//! Record pages decoded straight from the response bytes, driven by the entity's metadata:
//! no intermediate `serde_json::Value` tree and no per-record map (a page holds thousands of
//! records, and building a JSON tree first costs about three times the typed decoding).
//!
//! A page is `{"value":[…], "@odata.nextLink"|"@odata.deltaLink"|paging annotations …}`. Each
//! entry is a record or, in a delta, a `$deletedEntity` (or `reason` "deleted") entry with its
//! `id`. Records come out as [`RecordBatch`]es grouped by the attributes present (one batch
//! when every record has the same ones), the primary id as the row id.
//!
//! The rules are those of [`super::mapping`]: annotations and unknown properties are ignored
//! except the lookup target annotation; a lookup is read from `_x_value`; a value that does
//! not fit its attribute is a `Protocol` error naming it; decimals and money come from the
//! JSON number's text (`serde_json::Number`'s string form), never from a float conversion of
//! our own.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use crmsync_model::{
    AttributeType, EntityMetadata, EntityName, EntityReference, RecordBatch, RecordId, TypedValue, Value,
};
use crmsync_sync::SyncError;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::mapping::LOOKUP_NAME;

/// One decoded page.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<RecordBatch>,
    pub deletes: Vec<RecordId>,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
    /// `@Microsoft.Dynamics.CRM.morerecords`.
    pub more_records: bool,
    /// `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie`, as sent.
    pub paging_cookie: Option<String>,
}

/// Bytes at the end of a body searched by [`next_link_hint`].
const LINK_HINT_TAIL: usize = 64 * 1024;

/// The page's `@odata.nextLink`, picked out of the body without decoding it: the last
/// `"@odata.nextLink":` member near the end (where the Web API writes it) that follows a `,`
/// or `{` (a quote inside a JSON string is escaped, so these never come before one there). A
/// hint, for reading the next page while this one decodes: the decoded page says which link
/// is right.
pub fn next_link_hint(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"@odata.nextLink\"";
    let from = body.len().saturating_sub(LINK_HINT_TAIL);
    let at = from + body[from..].windows(KEY.len()).rposition(|w| w == KEY)?;
    if at == 0 || !matches!(body[at - 1], b',' | b'{') {
        return None;
    }
    let rest = body[at + KEY.len()..].trim_ascii_start().strip_prefix(b":")?;
    let mut de = serde_json::Deserializer::from_slice(rest.trim_ascii_start());
    String::deserialize(&mut de).ok()
}

/// Decodes a page of `entity` from a response body.
pub fn page(entity: &EntityMetadata, body: &[u8]) -> Result<Page, SyncError> {
    let plan = Plan::new(entity);
    // Checked as UTF-8 once, not string by string while decoding.
    let body = std::str::from_utf8(body)
        .map_err(|e| SyncError::Protocol(format!("the answer is not JSON: it is not UTF-8 text ({e})")))?;
    let mut de = serde_json::Deserializer::from_str(body);
    let page = PageSeed { plan: &plan }
        .deserialize(&mut de)
        .and_then(|page| de.end().map(|()| page))
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => SyncError::Protocol(format!("{}: {e}", entity.logical_name)),
            _ => SyncError::Protocol(format!("the answer is not JSON: {e}")),
        })?;
    page.ok_or_else(|| SyncError::Protocol("the answer has no 'value' collection".into()))
}

/// What a property of a record entry is.
#[derive(Clone, Copy)]
enum Key {
    /// A non-lookup attribute, by index in the entity's attributes.
    Value(usize),
    /// `_x_value` of lookup attribute `x`.
    Lookup(usize),
    /// `_x_value@Microsoft.Dynamics.CRM.lookuplogicalname`.
    LookupTarget(usize),
    Context,
    Id,
    Reason,
    Other,
}

/// The property names of one entity, resolved once per page.
struct Plan<'a> {
    entity: &'a EntityMetadata,
    keys: HashMap<String, Key>,
    pk: usize,
    /// The property names of the last record, in its order, as resolved: the entries of a
    /// page name their properties in the same order, so the name at a position is mostly
    /// the one the record before had there, checked by comparing it (cheaper than a lookup).
    last: RefCell<Vec<(Box<str>, Key)>>,
}

impl<'a> Plan<'a> {
    fn new(entity: &'a EntityMetadata) -> Self {
        let mut keys = HashMap::from([
            ("@odata.context".to_owned(), Key::Context),
            ("id".to_owned(), Key::Id),
            ("reason".to_owned(), Key::Reason),
        ]);
        let mut pk = usize::MAX;
        for (i, a) in entity.attributes.iter().enumerate() {
            let name = a.logical_name.as_str();
            if a.logical_name == entity.primary_id_attribute {
                pk = i;
            }
            if matches!(a.attribute_type, AttributeType::Lookup { .. }) {
                keys.insert(format!("_{name}_value"), Key::Lookup(i));
                keys.insert(format!("_{name}_value@{LOOKUP_NAME}"), Key::LookupTarget(i));
            } else {
                keys.insert(name.to_owned(), Key::Value(i));
            }
        }
        Plan {
            entity,
            keys,
            pk,
            last: RefCell::new(Vec::new()),
        }
    }

    /// What the property `name` is; `position` is its place in its entry.
    fn key(&self, name: &str, position: usize) -> Key {
        let mut last = self.last.borrow_mut();
        if let Some((seen, key)) = last.get(position)
            && **seen == *name
        {
            return *key;
        }
        let key = self.keys.get(name).copied().unwrap_or(Key::Other);
        last.truncate(position);
        if last.len() == position {
            last.push((name.into(), key));
        }
        key
    }

    fn name(&self, i: usize) -> &str {
        self.entity.attributes[i].logical_name.as_str()
    }
}

struct PageSeed<'p> {
    plan: &'p Plan<'p>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    /// `None` when the page has no `value` collection.
    type Value = Option<Page>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = Option<Page>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with a 'value' collection")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut page = Page::default();
        let mut has_value = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "value" => {
                    has_value = true;
                    map.next_value_seed(EntriesSeed {
                        plan: self.plan,
                        page: &mut page,
                    })?;
                }
                "@odata.nextLink" => page.next_link = map.next_value()?,
                "@odata.deltaLink" => page.delta_link = map.next_value()?,
                "@Microsoft.Dynamics.CRM.morerecords" => {
                    page.more_records = map.next_value::<Option<bool>>()?.unwrap_or(false)
                }
                "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie" => page.paging_cookie = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(has_value.then_some(page))
    }
}

/// The `value` array: every entry appended to the page.
struct EntriesSeed<'p, 'g> {
    plan: &'p Plan<'p>,
    page: &'g mut Page,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let width = self.plan.entity.attributes.len();
        // Which attributes each batch's rows have, beside the batch.
        let mut shapes: Vec<Vec<bool>> = Vec::new();
        while let Some(entry) = seq.next_element_seed(EntrySeed { plan: self.plan })? {
            let (id, slots) = match entry {
                Entry::Deleted(id) => {
                    self.page.deletes.push(id);
                    continue;
                }
                Entry::Record(id, slots) => (id, slots),
            };
            let shape: Vec<bool> = (0..width)
                .map(|i| i != self.plan.pk && slots[i].is_some())
                .collect();
            let index = match shapes.iter().rposition(|s| *s == shape) {
                Some(i) => i,
                None => {
                    let columns = (0..width)
                        .filter(|i| shape[*i])
                        .map(|i| self.plan.entity.attributes[i].logical_name.clone())
                        .collect();
                    self.page.records.push(RecordBatch::new(columns));
                    shapes.push(shape);
                    shapes.len() - 1
                }
            };
            let values = slots
                .into_iter()
                .enumerate()
                .filter(|(i, _)| *i != self.plan.pk)
                .filter_map(|(_, v)| v)
                .collect();
            self.page.records[index].push(id, values);
        }
        Ok(())
    }
}

enum Entry {
    Record(RecordId, Vec<Option<Value>>),
    Deleted(RecordId),
}

struct EntrySeed<'p> {
    plan: &'p Plan<'p>,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = Entry;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
        d.deserialize_map(self)
    }
}

/// A property name resolved through the plan without allocating.
struct KeySeed<'p> {
    plan: &'p Plan<'p>,
    position: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a property name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(self.plan.key(v, self.position))
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let plan = self.plan;
        let attributes = &plan.entity.attributes;
        let mut slots: Vec<Option<Value>> = vec![None; attributes.len()];
        let mut targets: Vec<(usize, String)> = Vec::new();
        let (mut deleted, mut id) = (false, None::<String>);
        let mut position = 0;
        while let Some(key) = map.next_key_seed(KeySeed { plan, position })? {
            position += 1;
            match key {
                Key::Value(i) => {
                    let ty = &attributes[i].attribute_type;
                    // Read and coerced as the Web API reads a body (decimals digit for digit).
                    let value = map
                        .next_value_seed(TypedValue(ty))?
                        .map_err(|e| de::Error::custom(format!("{}: {e}", plan.name(i))))?;
                    slots[i] = Some(value);
                }
                Key::Lookup(i) => {
                    let value = match map.next_value::<Option<std::borrow::Cow<'de, str>>>()? {
                        None => Value::Null,
                        Some(s) => Value::Guid(RecordId::parse(&s).map_err(|_| {
                            de::Error::custom(format!("_{}_value is not a GUID: '{s}'", plan.name(i)))
                        })?),
                    };
                    slots[i] = Some(value);
                }
                Key::LookupTarget(i) => {
                    if let Some(name) = map.next_value::<Option<String>>()? {
                        targets.push((i, name));
                    }
                }
                Key::Context => {
                    let context = map.next_value::<Option<std::borrow::Cow<'de, str>>>()?;
                    deleted |= context.is_some_and(|c| c.ends_with("$deletedEntity"));
                }
                Key::Reason => {
                    let reason = map.next_value::<Option<std::borrow::Cow<'de, str>>>()?;
                    deleted |= reason.as_deref() == Some("deleted");
                }
                Key::Id => id = map.next_value::<Option<String>>()?,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if deleted {
            let id = id.unwrap_or_default();
            return RecordId::parse(&id)
                .map(Entry::Deleted)
                .map_err(|_| de::Error::custom(format!("a deleted entry with id '{id}'")));
        }
        for (i, attribute) in attributes.iter().enumerate() {
            let AttributeType::Lookup { targets: allowed } = &attribute.attribute_type else {
                continue;
            };
            let Some(Value::Guid(target_id)) = slots[i] else {
                continue;
            };
            let name = attribute.logical_name.as_str();
            let target = match targets.iter().find(|(t, _)| *t == i) {
                // One of the attribute's targets (shared, not allocated again), or a name
                // the coercion below refuses.
                Some((_, entity)) => match allowed.iter().find(|a| a.as_str() == entity) {
                    Some(known) => known.clone(),
                    None => EntityName::parse(entity).map_err(de::Error::custom)?,
                },
                None if allowed.len() == 1 => allowed[0].clone(),
                None => {
                    return Err(de::Error::custom(format!(
                        "_{name}_value has several possible targets and the server did not name one"
                    )));
                }
            };
            let value = Value::Lookup(EntityReference {
                entity: target,
                id: target_id,
            })
            .coerce(&attribute.attribute_type)
            .map_err(|e| de::Error::custom(format!("{name}: {e}")))?;
            slots[i] = Some(value);
        }
        match slots.get(plan.pk) {
            Some(Some(Value::Guid(id))) => Ok(Entry::Record(*id, slots)),
            _ => Err(de::Error::custom(format!(
                "a record without its {}",
                plan.entity.primary_id_attribute
            ))),
        }
    }
}
