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

/// Orders entities so that lookup targets come before the entities that point at them
/// (cycles are broken in the given order).
pub fn parents_first(entities: &[EntityName], metadata: &[EntityMetadata]) -> Vec<EntityName> {
    let targets = |e: &EntityName| -> Vec<EntityName> {
        metadata
            .iter()
            .find(|m| &m.logical_name == e)
            .map(|m| {
                m.attributes
                    .iter()
                    .filter_map(|a| match &a.attribute_type {
                        crmsync_model::AttributeType::Lookup { targets } => Some(targets.clone()),
                        _ => None,
                    })
                    .flatten()
                    .filter(|t| t != e && entities.contains(t))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out: Vec<EntityName> = Vec::new();
    let mut visiting: Vec<EntityName> = Vec::new();
    fn visit(
        e: &EntityName,
        targets: &dyn Fn(&EntityName) -> Vec<EntityName>,
        out: &mut Vec<EntityName>,
        visiting: &mut Vec<EntityName>,
    ) {
        if out.contains(e) || visiting.contains(e) {
            return;
        }
        visiting.push(e.clone());
        for t in targets(e) {
            visit(&t, targets, out, visiting);
        }
        visiting.pop();
        out.push(e.clone());
    }
    for e in entities {
        visit(e, &targets, &mut out, &mut visiting);
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
        assert_eq!(order, vec![en("account"), en("contact"), en("task")]);
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
