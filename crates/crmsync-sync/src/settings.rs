//! What a connection syncs, as the engine needs it: enabled entities, per-entity FetchXML
//! filters, the write mode and the conflict policy. Credentials are not here: the connector
//! holds them.

use std::collections::BTreeMap;

use crmsync_model::{EntityMetadata, EntityName};
use crmsync_query::{Query, parse_fetchxml};
use serde::{Deserialize, Serialize};

use crate::SyncError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConflictPolicy {
    #[default]
    ClientWins,
    ServerWins,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncSettings {
    /// Entities synced, by logical name.
    pub entities: Vec<EntityName>,
    /// FetchXML sync filter per entity (`<fetch><entity name="…"><filter>…`).
    #[serde(default)]
    pub filters: BTreeMap<EntityName, String>,
    #[serde(default)]
    pub write_offline: bool,
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,
}

impl SyncSettings {
    /// The parsed filter of `entity`, validated against the server's metadata.
    pub fn filter(&self, entity: &EntityName, server: &[EntityMetadata]) -> Result<Option<Query>, SyncError> {
        let Some(xml) = self.filters.get(entity) else {
            return Ok(None);
        };
        let query = parse_fetchxml(xml, &server.to_vec())
            .map_err(|e| SyncError::Invalid(format!("the sync filter of {entity} is invalid: {e}")))?;
        if &query.entity != entity {
            return Err(SyncError::Invalid(format!(
                "the sync filter of {entity} queries {} instead",
                query.entity
            )));
        }
        Ok(Some(query))
    }

    /// Checks every filter against the server's metadata (on save, before anything runs).
    pub fn validate(&self, server: &[EntityMetadata]) -> Result<(), SyncError> {
        for entity in &self.entities {
            if !server.iter().any(|e| &e.logical_name == entity) {
                return Err(SyncError::Invalid(format!("the server has no entity '{entity}'")));
            }
        }
        for entity in self.filters.keys() {
            self.filter(entity, server)?;
        }
        Ok(())
    }
}

/// Largest `SyncFiltersXml` accepted.
pub const MAX_FILTERS_XML: usize = 1024 * 1024;

/// Reads `<SyncFilters><fetch><entity name="account">…</entity></fetch>…</SyncFilters>` (or
/// bare `<fetch>` elements) into one FetchXML per entity. Each FetchXML is validated later,
/// against the server's metadata ([`SyncSettings::validate`]).
pub fn parse_sync_filters(xml: &str) -> Result<BTreeMap<EntityName, String>, SyncError> {
    if xml.len() > MAX_FILTERS_XML {
        return Err(SyncError::Invalid(format!(
            "the sync filters are larger than {MAX_FILTERS_XML} bytes"
        )));
    }
    if xml.to_ascii_uppercase().contains("<!DOCTYPE") {
        return Err(SyncError::Invalid(
            "the sync filters must not contain a DOCTYPE".into(),
        ));
    }
    let mut out = BTreeMap::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<fetch") {
        let end = rest[start..].find("</fetch>").ok_or_else(|| {
            SyncError::Invalid("a <fetch> element of the sync filters is not closed".into())
        })?;
        let fetch = &rest[start..start + end + "</fetch>".len()];
        let name = entity_name_of(fetch)?;
        if out.insert(name.clone(), fetch.to_owned()).is_some() {
            return Err(SyncError::Invalid(format!(
                "the sync filters name entity '{name}' twice"
            )));
        }
        rest = &rest[start + end + "</fetch>".len()..];
    }
    Ok(out)
}

fn entity_name_of(fetch: &str) -> Result<EntityName, SyncError> {
    let missing = || SyncError::Invalid("a <fetch> of the sync filters has no <entity name=\"…\">".into());
    let entity = fetch.find("<entity").ok_or_else(missing)?;
    let attrs = &fetch[entity..];
    let at = attrs.find("name=").ok_or_else(missing)? + 5;
    let quote = attrs[at..]
        .chars()
        .next()
        .filter(|c| *c == '"' || *c == '\'')
        .ok_or_else(missing)?;
    let value = &attrs[at + 1..];
    let end = value.find(quote).ok_or_else(missing)?;
    EntityName::parse(&value[..end]).map_err(|e| SyncError::Invalid(e.to_string()))
}

/// Orders entities so that lookup targets come before the entities that point at them.
/// A cycle (account.primarycontactid <-> contact.parentcustomerid) is broken by taking the
/// entity with the fewest unplaced targets, then the one listed first.
pub fn parents_first(entities: &[EntityName], metadata: &[EntityMetadata]) -> Vec<EntityName> {
    let targets = |e: &EntityName| -> Vec<EntityName> {
        let Some(m) = metadata.iter().find(|m| &m.logical_name == e) else {
            return Vec::new();
        };
        m.attributes
            .iter()
            .filter_map(|a| match &a.attribute_type {
                crmsync_model::AttributeType::Lookup { targets } => Some(targets.clone()),
                _ => None,
            })
            .flatten()
            .filter(|t| t != e && entities.contains(t))
            .collect()
    };
    let mut remaining: Vec<(EntityName, Vec<EntityName>)> =
        entities.iter().map(|e| (e.clone(), targets(e))).collect();
    let mut out: Vec<EntityName> = Vec::new();
    while !remaining.is_empty() {
        let unplaced = |ts: &[EntityName]| ts.iter().filter(|t| !out.contains(t)).count();
        let next = remaining
            .iter()
            .enumerate()
            .min_by_key(|(i, (_, ts))| (unplaced(ts), *i))
            .map(|(i, _)| i)
            .expect("remaining is not empty");
        out.push(remaining.remove(next).0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crmsync_model::{AttributeMetadata, AttributeType};

    fn en(s: &str) -> EntityName {
        EntityName::parse(s).unwrap()
    }

    fn entity(name: &str, set: &str, lookups: &[&str]) -> EntityMetadata {
        let mut e = EntityMetadata::new(name, set, "name").unwrap();
        for (i, t) in lookups.iter().enumerate() {
            e = e
                .with_attribute(
                    AttributeMetadata::new(
                        &format!("ref{i}"),
                        AttributeType::Lookup { targets: vec![en(t)] },
                    )
                    .unwrap(),
                )
                .unwrap();
        }
        e
    }

    #[test]
    fn parents_come_first_and_cycles_do_not_loop() {
        let meta = vec![
            entity("task", "tasks", &["contact", "account"]),
            entity("contact", "contacts", &["account"]),
            entity("account", "accounts", &["contact"]),
        ];
        let order = parents_first(&[en("task"), en("contact"), en("account")], &meta);
        assert_eq!(order, vec![en("contact"), en("account"), en("task")]);
        let order = parents_first(&[en("account"), en("contact"), en("task")], &meta);
        assert_eq!(order, vec![en("account"), en("contact"), en("task")]);
        let plain = vec![entity("lead", "leads", &[]), entity("note", "notes", &["lead"])];
        assert_eq!(
            parents_first(&[en("note"), en("lead")], &plain),
            vec![en("lead"), en("note")]
        );
    }

    #[test]
    fn sync_filters_split_per_entity() {
        let xml = r#"<SyncFilters><fetch><entity name="account"><filter/></entity></fetch>
            <fetch><entity name='contact'/></fetch></SyncFilters>"#;
        let filters = parse_sync_filters(xml).unwrap();
        assert_eq!(filters.len(), 2);
        assert!(filters[&en("contact")].starts_with("<fetch>"));
        assert!(
            parse_sync_filters("<fetch><entity name=\"a\"></fetch><fetch><entity name=\"a\"></fetch>")
                .is_err()
        );
        assert!(parse_sync_filters("<!DOCTYPE x><SyncFilters/>").is_err());
        assert!(parse_sync_filters("<fetch><entity/></fetch>").is_err());
        assert!(parse_sync_filters("<fetch><entity name=\"a\">").is_err());
        assert!(parse_sync_filters("<SyncFilters/>").unwrap().is_empty());
    }

    #[test]
    fn filters_are_validated_against_server_metadata() {
        let meta = vec![entity("account", "accounts", &[])];
        let mut s = SyncSettings {
            entities: vec![en("account")],
            ..Default::default()
        };
        s.filters.insert(en("account"), r#"<fetch><entity name="account"><filter><condition attribute="name" operator="like" value="A%"/></filter></entity></fetch>"#.into());
        assert!(s.validate(&meta).is_ok());
        s.filters.insert(en("account"), r#"<fetch><entity name="account"><filter><condition attribute="nosuch" operator="eq" value="1"/></filter></entity></fetch>"#.into());
        let err = s.validate(&meta).unwrap_err().to_string();
        assert!(err.contains("account") && err.contains("nosuch"), "{err}");
        let missing = SyncSettings {
            entities: vec![en("lead")],
            ..Default::default()
        };
        assert!(missing.validate(&meta).unwrap_err().to_string().contains("lead"));
    }
}
