//! Tables of entities, created and altered from metadata at run time.

use crmsync_model::{AttributeMetadata, EntityMetadata, MetadataChange};

use crate::{StoreError, StoreResult};

use super::columns::stored_columns;
use super::{SqlNames, quote};

/// Statements creating the table of `entity` with its indexes: the primary key, a unique
/// index on `versionnumber` (change queries; it also enforces version uniqueness) and one on
/// each lookup (joins and filters on parents).
pub fn create_entity_table(names: &SqlNames, entity: &EntityMetadata) -> Vec<String> {
    let table = entity.logical_name.as_str();
    let pk = entity.primary_id_attribute.as_str();
    let mut defs = Vec::new();
    let mut lookups = Vec::new();
    for attr in &entity.attributes {
        for col in stored_columns(attr) {
            let mut def = format!("{} {}", quote(&col.name), col.storage.sql_type(names.dialect));
            match col.name.as_str() {
                n if n == pk => def.push_str(" NOT NULL PRIMARY KEY"),
                "versionnumber" | "createdon" | "modifiedon" => def.push_str(" NOT NULL"),
                "statecode" => def.push_str(" NOT NULL DEFAULT 0"),
                "statuscode" => def.push_str(" NOT NULL DEFAULT 1"),
                _ => {}
            }
            defs.push(def);
        }
        if matches!(attr.attribute_type, crmsync_model::AttributeType::Lookup { .. }) {
            lookups.push(attr.logical_name.as_str());
        }
    }
    let mut out = vec![format!(
        "CREATE TABLE {} ({})",
        names.table(table),
        defs.join(", ")
    )];
    out.push(format!(
        "CREATE UNIQUE INDEX {} ON {} ({})",
        names.index(table, "versionnumber"),
        names.table(table),
        quote("versionnumber")
    ));
    for l in lookups {
        out.push(lookup_index(names, table, l));
    }
    out
}

fn lookup_index(names: &SqlNames, table: &str, attribute: &str) -> String {
    format!(
        "CREATE INDEX {} ON {} ({})",
        names.index(table, attribute),
        names.table(table),
        quote(attribute)
    )
}

/// Statements adding an attribute's columns (nullable) to an existing entity table.
pub fn add_attribute(names: &SqlNames, entity: &EntityMetadata, attr: &AttributeMetadata) -> Vec<String> {
    let table = entity.logical_name.as_str();
    let mut out: Vec<String> = stored_columns(attr)
        .into_iter()
        .map(|col| {
            format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                names.table(table),
                quote(&col.name),
                col.storage.sql_type(names.dialect)
            )
        })
        .collect();
    if matches!(attr.attribute_type, crmsync_model::AttributeType::Lookup { .. }) {
        out.push(lookup_index(names, table, attr.logical_name.as_str()));
    }
    out
}

/// Works out the entity after a change, and the DDL that goes with it.
pub fn plan_metadata_change(
    names: &SqlNames,
    entities: &[EntityMetadata],
    change: &MetadataChange,
) -> StoreResult<(EntityMetadata, Vec<String>)> {
    let existing = entities.iter().find(|e| &e.logical_name == change.entity());
    match (change, existing) {
        (MetadataChange::CreateEntity { entity }, None) => {
            entity.validate()?;
            if let Some(other) = entities
                .iter()
                .find(|e| e.entity_set_name == entity.entity_set_name)
            {
                return Err(StoreError::Conflict(format!(
                    "EntitySetName '{}' is already used by entity '{}'",
                    entity.entity_set_name, other.logical_name
                )));
            }
            Ok((entity.clone(), create_entity_table(names, entity)))
        }
        (MetadataChange::CreateEntity { entity }, Some(_)) => Err(StoreError::Conflict(format!(
            "entity '{}' already exists",
            entity.logical_name
        ))),
        (_, None) => Err(StoreError::not_found(format!("entity '{}'", change.entity()))),
        (change, Some(current)) => {
            let next = current.apply(change)?;
            let ddl = match change {
                MetadataChange::AddAttribute { attribute, .. } => add_attribute(names, current, attribute),
                // Lengths and options are enforced by the model: no column change.
                _ => Vec::new(),
            };
            Ok((next, ddl))
        }
    }
}
