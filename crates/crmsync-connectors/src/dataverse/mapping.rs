//! Dataverse JSON to crmsync's model: `EntityDefinitions` to [`EntityMetadata`], `$select`
//! lists, and the FetchXML paging cookie annotation. Records are decoded by
//! [`super::decode`], by the same rules.
//!
//! Dataverse returns far more than crmsync models, so the mapping is lenient where that is
//! safe and strict where it is not:
//! - unknown properties and every annotation (`x@…`, `@odata.*`) are ignored, except the
//!   lookup target annotation, which decides a lookup's entity;
//! - attribute types crmsync has no column for (`Virtual`, `EntityName`, `ManagedProperty`,
//!   `PartyList`, `CalendarRules`, files, images, multi-select picklists) and helper
//!   attributes (`AttributeOf` set, e.g. `createdbyname`) are skipped and logged; `Owner` and
//!   `Customer` are lookups. An entity that still fails `EntityMetadata::validate` (no
//!   change-tracking system attributes, a primary id other than `<entity>id`) is skipped and
//!   logged, never half-mapped;
//! - a record value that does not fit its attribute is a `Protocol` error naming it: a sync
//!   never stores a silently altered value. Decimals and money are read from the JSON
//!   number's text (`serde_json::Number`'s string form), not through a float conversion of
//!   our own.

use std::collections::HashMap;

use crmsync_model::{
    AttributeMetadata, AttributeName, AttributeType, EntityMetadata, EntityName, OptionMetadata, OptionSet,
};
use crmsync_sync::SyncError;
use percent_encoding::percent_decode_str;
use serde_json::Value as Json;

/// The annotation naming a lookup value's entity.
pub const LOOKUP_NAME: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";

/// The `UserLocalizedLabel` text of a Dataverse `Label`, or the first localized label.
fn label_text(label: Option<&Json>) -> Option<String> {
    let label = label?;
    label
        .pointer("/UserLocalizedLabel/Label")
        .and_then(Json::as_str)
        .or_else(|| label.pointer("/LocalizedLabels/0/Label").and_then(Json::as_str))
        .map(str::to_owned)
}

/// A display name; a label that only repeats the logical name carries nothing.
fn display_name(json: &Json, logical_name: &str) -> String {
    label_text(json.get("DisplayName"))
        .filter(|l| l != logical_name)
        .unwrap_or_default()
}

fn int(json: &Json, key: &str) -> Option<i64> {
    json.get(key).and_then(Json::as_i64)
}

/// The options of an `OptionSet` JSON object, if it has any.
pub fn option_set_from_json(json: Option<&Json>) -> Option<OptionSet> {
    let options = json?.get("Options")?.as_array()?;
    let options: Vec<OptionMetadata> = options
        .iter()
        .filter_map(|o| {
            let value = i32::try_from(int(o, "Value")?).ok()?;
            Some(OptionMetadata {
                value,
                label: label_text(o.get("Label")).unwrap_or_else(|| value.to_string()),
                state: int(o, "State").and_then(|s| i32::try_from(s).ok()),
            })
        })
        .collect();
    (!options.is_empty()).then_some(OptionSet { options })
}

fn is_option_type(ty: &str) -> bool {
    matches!(ty, "Picklist" | "State" | "Status")
}

/// Whether an entity's attributes came without the option sets of its option attributes
/// (Dataverse only returns them when `OptionSet` is expanded on a type-cast segment).
pub fn lacks_option_sets(entity: &Json) -> bool {
    attributes_of(entity).iter().any(|a| {
        a.get("AttributeType")
            .and_then(Json::as_str)
            .is_some_and(is_option_type)
            && option_set_from_json(a.get("OptionSet")).is_none()
    })
}

fn attributes_of(entity: &Json) -> &[Json] {
    entity
        .get("Attributes")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Option sets by attribute logical name, from a type-cast attribute collection.
pub fn option_sets_from_json(attributes: &[Json]) -> HashMap<String, OptionSet> {
    attributes
        .iter()
        .filter_map(|a| {
            let name = a.get("LogicalName")?.as_str()?.to_owned();
            let set = option_set_from_json(a.get("OptionSet"))
                .or_else(|| option_set_from_json(a.get("GlobalOptionSet")))?;
            Some((name, set))
        })
        .collect()
}

/// One attribute's type, or why it has none in crmsync.
fn attribute_type(
    a: &Json,
    ty: &str,
    extra_options: &HashMap<String, OptionSet>,
    name: &str,
) -> Result<AttributeType, String> {
    let length = |default: i64, max: i64| int(a, "MaxLength").unwrap_or(default).clamp(1, max) as u32;
    let precision = |max: i64| int(a, "Precision").unwrap_or(2).clamp(0, max) as u32;
    let options = || {
        option_set_from_json(a.get("OptionSet"))
            .or_else(|| extra_options.get(name).cloned())
            .ok_or_else(|| format!("{ty} without options"))
    };
    Ok(match ty {
        "String" => AttributeType::String {
            max_length: length(100, 4000),
        },
        "Memo" => AttributeType::Memo {
            max_length: length(2000, 1_048_576),
        },
        "Integer" => {
            let bound = |k, d: i32| {
                int(a, k)
                    .map(|v| v.clamp(i32::MIN.into(), i32::MAX.into()) as i32)
                    .unwrap_or(d)
            };
            AttributeType::Integer {
                min: bound("MinValue", i32::MIN),
                max: bound("MaxValue", i32::MAX),
            }
        }
        "BigInt" => AttributeType::BigInt,
        "Decimal" => AttributeType::Decimal {
            precision: precision(10),
        },
        "Money" => AttributeType::Money {
            precision: precision(4),
        },
        "Double" => AttributeType::Double,
        "Boolean" => AttributeType::Boolean,
        "DateTime" => AttributeType::DateTime,
        "Uniqueidentifier" => AttributeType::Uniqueidentifier,
        "Lookup" | "Customer" | "Owner" => {
            let targets: Vec<EntityName> = a
                .get("Targets")
                .and_then(Json::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(|t| EntityName::parse(t.as_str()?).ok())
                        .collect()
                })
                .unwrap_or_default();
            if targets.is_empty() {
                return Err(format!("{ty} without targets"));
            }
            AttributeType::Lookup { targets }
        }
        "Picklist" => AttributeType::Picklist { options: options()? },
        "State" => AttributeType::State { options: options()? },
        "Status" => AttributeType::Status { options: options()? },
        other => return Err(format!("attribute type {other} has no crmsync equivalent")),
    })
}

/// One `EntityDefinitions` entry with its `Attributes`, or `None` (logged) if crmsync cannot
/// hold it. `extra_options` supplies option sets fetched separately.
pub fn entity_from_json(json: &Json, extra_options: &HashMap<String, OptionSet>) -> Option<EntityMetadata> {
    let logical = json.get("LogicalName").and_then(Json::as_str).unwrap_or_default();
    let skip = |why: String| {
        tracing::warn!(entity = logical, reason = %why, "entity skipped");
        None
    };
    let text = |k: &str| json.get(k).and_then(Json::as_str);
    let (Some(set), Some(pk), Some(pname)) = (
        text("EntitySetName"),
        text("PrimaryIdAttribute"),
        text("PrimaryNameAttribute"),
    ) else {
        return skip("no entity set, primary id or primary name attribute".into());
    };
    let names = (
        EntityName::parse(logical),
        AttributeName::parse(pk),
        AttributeName::parse(pname),
    );
    let (Ok(logical_name), Ok(primary_id_attribute), Ok(primary_name_attribute)) = names else {
        return skip("a name crmsync cannot use".into());
    };
    let mut attributes = Vec::new();
    for a in attributes_of(json) {
        let name = a.get("LogicalName").and_then(Json::as_str).unwrap_or_default();
        let ty = a.get("AttributeType").and_then(Json::as_str).unwrap_or_default();
        if a.get("AttributeOf").is_some_and(|o| !o.is_null()) {
            tracing::debug!(entity = logical, attribute = name, "helper attribute skipped");
            continue;
        }
        let mapped = AttributeName::parse(name)
            .map_err(|e| e.to_string())
            .and_then(|n| Ok((n, attribute_type(a, ty, extra_options, name)?)));
        match mapped {
            Ok((logical_name, attribute_type)) => attributes.push(AttributeMetadata {
                display_name: display_name(a, name),
                logical_name,
                attribute_type,
            }),
            Err(why) => {
                tracing::debug!(entity = logical, attribute = name, reason = %why, "attribute skipped")
            }
        }
    }
    let entity = EntityMetadata {
        display_name: display_name(json, logical),
        logical_name,
        entity_set_name: set.to_owned(),
        primary_id_attribute,
        primary_name_attribute,
        attributes,
    };
    match entity.validate() {
        Ok(()) => Some(entity),
        Err(e) => skip(e.to_string()),
    }
}

/// The `$select` list of `columns` (lookups as `_x_value`); `None` for all columns.
pub fn select_list(entity: &EntityMetadata, columns: &[AttributeName]) -> Result<Option<String>, SyncError> {
    if columns.is_empty() {
        return Ok(None);
    }
    let mut items = Vec::with_capacity(columns.len());
    for c in columns {
        let a = entity.attribute(c.as_str()).ok_or_else(|| {
            SyncError::Invalid(format!("entity '{}' has no attribute '{c}'", entity.logical_name))
        })?;
        items.push(match a.attribute_type {
            AttributeType::Lookup { .. } => format!("_{c}_value"),
            _ => c.to_string(),
        });
    }
    Ok(Some(items.join(",")))
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The paging cookie to send with the next FetchXML page, from the
/// `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie` annotation: the `pagingcookie` attribute of
/// its `<cookie>` element, URL-decoded twice.
pub fn paging_cookie(annotation: &str) -> Option<String> {
    let start = annotation.find("pagingcookie=\"")? + "pagingcookie=\"".len();
    let end = annotation[start..].find('"')? + start;
    let mut cookie = xml_unescape(&annotation[start..end]);
    for _ in 0..2 {
        cookie = percent_decode_str(&cookie).decode_utf8().ok()?.into_owned();
    }
    Some(cookie)
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
