//! Entity metadata: the schema of an organization, in Dataverse's terms.
//!
//! Every entity carries the system attributes (`<entity>id`, `createdon`, `modifiedon`,
//! `versionnumber`, `statecode`, `statuscode`); [`EntityMetadata::new`] adds them and
//! [`EntityMetadata::validate`] insists on them. Schema changes are expressed as
//! [`MetadataChange`]s, which [`EntityMetadata::apply`] checks and applies in memory; storage
//! applies the same change to its tables in the same transaction.

use serde::{Deserialize, Serialize};

use crate::{AttributeName, EntityName, ModelError};

/// Names of the attributes every entity has besides its primary id.
pub const SYSTEM_ATTRIBUTES: [&str; 5] = [
    "createdon",
    "modifiedon",
    "versionnumber",
    "statecode",
    "statuscode",
];

/// Largest `MaxLength` of a String attribute (as in Dataverse).
pub const MAX_STRING_LENGTH: u32 = 4000;
/// Largest `MaxLength` of a Memo attribute (as in Dataverse).
pub const MAX_MEMO_LENGTH: u32 = 1_048_576;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityMetadata {
    pub logical_name: EntityName,
    /// Plural used in Web API URLs, e.g. `accounts`.
    pub entity_set_name: String,
    pub primary_id_attribute: AttributeName,
    pub primary_name_attribute: AttributeName,
    #[serde(default)]
    pub display_name: String,
    pub attributes: Vec<AttributeMetadata>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeMetadata {
    pub logical_name: AttributeName,
    #[serde(default)]
    pub display_name: String,
    #[serde(rename = "type")]
    pub attribute_type: AttributeType,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum AttributeType {
    String {
        max_length: u32,
    },
    Memo {
        max_length: u32,
    },
    Integer {
        min: i32,
        max: i32,
    },
    BigInt,
    /// Exact decimal with `precision` digits after the point (0..=10).
    Decimal {
        precision: u32,
    },
    /// Exact currency amount with `precision` digits after the point (0..=4).
    Money {
        precision: u32,
    },
    Double,
    Boolean,
    DateTime,
    Uniqueidentifier,
    Lookup {
        targets: Vec<EntityName>,
    },
    Picklist {
        options: OptionSet,
    },
    State {
        options: OptionSet,
    },
    Status {
        options: OptionSet,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OptionSet {
    pub options: Vec<OptionMetadata>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptionMetadata {
    pub value: i32,
    pub label: String,
    /// For Status options: the statecode this status reason belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<i32>,
}

/// One schema change, as applied by a metadata update or an administrator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum MetadataChange {
    CreateEntity {
        entity: EntityMetadata,
    },
    AddAttribute {
        entity: EntityName,
        attribute: AttributeMetadata,
    },
    /// Raise the `MaxLength` of a String or Memo attribute.
    WidenAttribute {
        entity: EntityName,
        attribute: AttributeName,
        max_length: u32,
    },
    /// Add values to the option set of a Picklist, State or Status attribute.
    AddOptions {
        entity: EntityName,
        attribute: AttributeName,
        options: Vec<OptionMetadata>,
    },
    /// Allow a lookup to point at one more entity.
    AddLookupTarget {
        entity: EntityName,
        attribute: AttributeName,
        target: EntityName,
    },
}

impl MetadataChange {
    pub fn entity(&self) -> &EntityName {
        match self {
            MetadataChange::CreateEntity { entity } => &entity.logical_name,
            MetadataChange::AddAttribute { entity, .. }
            | MetadataChange::WidenAttribute { entity, .. }
            | MetadataChange::AddOptions { entity, .. }
            | MetadataChange::AddLookupTarget { entity, .. } => entity,
        }
    }
}

impl AttributeType {
    /// The Dataverse `AttributeType` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeType::String { .. } => "String",
            AttributeType::Memo { .. } => "Memo",
            AttributeType::Integer { .. } => "Integer",
            AttributeType::BigInt => "BigInt",
            AttributeType::Decimal { .. } => "Decimal",
            AttributeType::Money { .. } => "Money",
            AttributeType::Double => "Double",
            AttributeType::Boolean => "Boolean",
            AttributeType::DateTime => "DateTime",
            AttributeType::Uniqueidentifier => "Uniqueidentifier",
            AttributeType::Lookup { .. } => "Lookup",
            AttributeType::Picklist { .. } => "Picklist",
            AttributeType::State { .. } => "State",
            AttributeType::Status { .. } => "Status",
        }
    }

    pub fn option_set(&self) -> Option<&OptionSet> {
        match self {
            AttributeType::Picklist { options }
            | AttributeType::State { options }
            | AttributeType::Status { options } => Some(options),
            _ => None,
        }
    }

    pub fn integer() -> Self {
        AttributeType::Integer {
            min: i32::MIN,
            max: i32::MAX,
        }
    }

    fn validate(&self) -> Result<(), String> {
        match self {
            AttributeType::String { max_length } if !(1..=MAX_STRING_LENGTH).contains(max_length) => Err(
                format!("String MaxLength must be 1..={MAX_STRING_LENGTH}, got {max_length}"),
            ),
            AttributeType::Memo { max_length } if !(1..=MAX_MEMO_LENGTH).contains(max_length) => Err(
                format!("Memo MaxLength must be 1..={MAX_MEMO_LENGTH}, got {max_length}"),
            ),
            AttributeType::Integer { min, max } if min > max => {
                Err(format!("Integer MinValue {min} is greater than MaxValue {max}"))
            }
            AttributeType::Decimal { precision } if *precision > 10 => {
                Err(format!("Decimal precision must be 0..=10, got {precision}"))
            }
            AttributeType::Money { precision } if *precision > 4 => {
                Err(format!("Money precision must be 0..=4, got {precision}"))
            }
            AttributeType::Lookup { targets } if targets.is_empty() => {
                Err("a Lookup needs at least one target entity".into())
            }
            AttributeType::Lookup { targets } if has_duplicates(targets.iter()) => {
                Err("a Lookup lists the same target twice".into())
            }
            t => match t.option_set() {
                Some(set) if set.options.is_empty() => {
                    Err(format!("a {} needs at least one option", t.type_name()))
                }
                Some(set) if has_duplicates(set.options.iter().map(|o| o.value)) => {
                    Err(format!("a {} lists the same option value twice", t.type_name()))
                }
                _ => Ok(()),
            },
        }
    }
}

fn has_duplicates<T: Ord, I: Iterator<Item = T>>(it: I) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    it.into_iter().any(|x| !seen.insert(x))
}

impl OptionSet {
    pub fn new(options: impl IntoIterator<Item = (i32, &'static str)>) -> Self {
        Self {
            options: options
                .into_iter()
                .map(|(value, label)| OptionMetadata::new(value, label))
                .collect(),
        }
    }

    pub fn contains(&self, value: i32) -> bool {
        self.options.iter().any(|o| o.value == value)
    }
}

impl OptionMetadata {
    pub fn new(value: i32, label: &str) -> Self {
        Self {
            value,
            label: label.to_owned(),
            state: None,
        }
    }
}

impl AttributeMetadata {
    pub fn new(name: &str, attribute_type: AttributeType) -> Result<Self, ModelError> {
        Ok(Self {
            logical_name: AttributeName::parse(name)?,
            display_name: String::new(),
            attribute_type,
        })
    }

    pub fn with_display_name(mut self, display_name: &str) -> Self {
        self.display_name = display_name.to_owned();
        self
    }

    pub fn name(&self) -> &AttributeName {
        &self.logical_name
    }
}

/// The primary id of every activity entity in Dataverse (`task`, `email`, `phonecall`, …),
/// the one primary id not named after its entity.
pub const ACTIVITY_ID: &str = "activityid";

impl EntityMetadata {
    /// A new entity with its system attributes and a primary name attribute `primary_name`
    /// (String, 100 characters unless added again with another length).
    pub fn new(logical_name: &str, entity_set_name: &str, primary_name: &str) -> Result<Self, ModelError> {
        Self::with_primary_id(
            logical_name,
            entity_set_name,
            &format!("{logical_name}id"),
            primary_name,
        )
    }

    /// A new activity entity (`task`, `email`, `phonecall`, …): as [`EntityMetadata::new`], its
    /// primary id named [`ACTIVITY_ID`], as Dataverse names the ids of every activity.
    pub fn activity(
        logical_name: &str,
        entity_set_name: &str,
        primary_name: &str,
    ) -> Result<Self, ModelError> {
        Self::with_primary_id(logical_name, entity_set_name, ACTIVITY_ID, primary_name)
    }

    fn with_primary_id(
        logical_name: &str,
        entity_set_name: &str,
        primary_id: &str,
        primary_name: &str,
    ) -> Result<Self, ModelError> {
        let entity = EntityName::parse(logical_name)?;
        let id = AttributeName::parse(primary_id)?;
        let mut attributes = vec![AttributeMetadata {
            logical_name: id.clone(),
            display_name: String::new(),
            attribute_type: AttributeType::Uniqueidentifier,
        }];
        attributes.extend(system_attributes());
        attributes.push(AttributeMetadata::new(
            primary_name,
            AttributeType::String { max_length: 100 },
        )?);
        let meta = Self {
            logical_name: entity,
            entity_set_name: entity_set_name.to_owned(),
            primary_id_attribute: id,
            primary_name_attribute: AttributeName::parse(primary_name)?,
            display_name: String::new(),
            attributes,
        };
        meta.validate()?;
        Ok(meta)
    }

    /// Adds (or replaces, for the primary name) an attribute; validates the result.
    pub fn with_attribute(mut self, attribute: AttributeMetadata) -> Result<Self, ModelError> {
        match self
            .attributes
            .iter_mut()
            .find(|a| a.logical_name == attribute.logical_name)
        {
            Some(existing) if existing.logical_name == self.primary_name_attribute => *existing = attribute,
            Some(_) => {
                return Err(self.invalid(format!("attribute '{}' is defined twice", attribute.logical_name)));
            }
            None => self.attributes.push(attribute),
        }
        self.validate()?;
        Ok(self)
    }

    pub fn attribute(&self, name: &str) -> Option<&AttributeMetadata> {
        self.attributes.iter().find(|a| a.logical_name.as_str() == name)
    }

    /// The attribute or an error naming it.
    pub fn require_attribute(&self, name: &str) -> Result<&AttributeMetadata, ModelError> {
        self.attribute(name).ok_or_else(|| ModelError::UnknownAttribute {
            entity: self.logical_name.clone(),
            attribute: name.to_owned(),
        })
    }

    pub fn is_system_attribute(&self, name: &str) -> bool {
        name == self.primary_id_attribute.as_str() || SYSTEM_ATTRIBUTES.contains(&name)
    }

    fn invalid(&self, message: String) -> ModelError {
        ModelError::InvalidMetadata {
            entity: self.logical_name.to_string(),
            message,
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        EntityName::parse(&self.entity_set_name)
            .map_err(|_| self.invalid(format!("invalid EntitySetName '{}'", self.entity_set_name)))?;
        let id = self.primary_id_attribute.as_str();
        if id != format!("{}id", self.logical_name) && id != ACTIVITY_ID {
            return Err(self.invalid(format!(
                "PrimaryIdAttribute must be '{}id' (or '{ACTIVITY_ID}' for an activity)",
                self.logical_name
            )));
        }
        if has_duplicates(self.attributes.iter().map(|a| a.logical_name.as_str())) {
            return Err(self.invalid("an attribute name is defined twice".into()));
        }
        match self
            .attribute(self.primary_id_attribute.as_str())
            .map(|a| &a.attribute_type)
        {
            Some(AttributeType::Uniqueidentifier) => {}
            _ => return Err(self.invalid("the primary id attribute must be a Uniqueidentifier".into())),
        }
        for expected in system_attributes() {
            match self.attribute(expected.logical_name.as_str()) {
                Some(a) if a.attribute_type.type_name() == expected.attribute_type.type_name() => {}
                _ => {
                    return Err(self.invalid(format!(
                        "system attribute '{}' ({}) is missing or has another type",
                        expected.logical_name,
                        expected.attribute_type.type_name()
                    )));
                }
            }
        }
        match self
            .attribute(self.primary_name_attribute.as_str())
            .map(|a| &a.attribute_type)
        {
            Some(AttributeType::String { .. }) => {}
            _ => return Err(self.invalid("the primary name attribute must be a String attribute".into())),
        }
        for a in &self.attributes {
            a.attribute_type
                .validate()
                .map_err(|m| self.invalid(format!("attribute '{}': {m}", a.logical_name)))?;
        }
        Ok(())
    }

    /// Checks `change` against this entity and returns the entity as it is after the change.
    /// `CreateEntity` is not applicable to an existing entity.
    pub fn apply(&self, change: &MetadataChange) -> Result<EntityMetadata, ModelError> {
        let mut next = self.clone();
        match change {
            MetadataChange::CreateEntity { .. } => {
                return Err(self.invalid("the entity already exists".into()));
            }
            MetadataChange::AddAttribute { attribute, .. } => {
                if self.attribute(attribute.logical_name.as_str()).is_some() {
                    return Err(
                        self.invalid(format!("attribute '{}' already exists", attribute.logical_name))
                    );
                }
                next.attributes.push(attribute.clone());
            }
            MetadataChange::WidenAttribute {
                attribute,
                max_length,
                ..
            } => {
                let a = next.attribute_mut(attribute)?;
                match &mut a.attribute_type {
                    AttributeType::String { max_length: m } | AttributeType::Memo { max_length: m } => {
                        if *max_length < *m {
                            return Err(self.invalid(format!(
                                "attribute '{attribute}': MaxLength can only grow ({m} -> {max_length})"
                            )));
                        }
                        *m = *max_length;
                    }
                    other => {
                        return Err(self.invalid(format!(
                            "attribute '{attribute}' is a {}, not a String or Memo",
                            other.type_name()
                        )));
                    }
                }
            }
            MetadataChange::AddOptions {
                attribute, options, ..
            } => {
                let a = next.attribute_mut(attribute)?;
                let type_name = a.attribute_type.type_name();
                match &mut a.attribute_type {
                    AttributeType::Picklist { options: set }
                    | AttributeType::State { options: set }
                    | AttributeType::Status { options: set } => {
                        if let Some(dup) = options.iter().find(|o| set.contains(o.value)) {
                            return Err(self.invalid(format!(
                                "attribute '{attribute}' already has option value {}",
                                dup.value
                            )));
                        }
                        set.options.extend(options.iter().cloned());
                    }
                    _ => {
                        return Err(self.invalid(format!(
                            "attribute '{attribute}' is a {type_name}, not an option set"
                        )));
                    }
                }
            }
            MetadataChange::AddLookupTarget {
                attribute, target, ..
            } => {
                let a = next.attribute_mut(attribute)?;
                match &mut a.attribute_type {
                    AttributeType::Lookup { targets } => {
                        if !targets.contains(target) {
                            targets.push(target.clone());
                        }
                    }
                    other => {
                        return Err(self.invalid(format!(
                            "attribute '{attribute}' is a {}, not a Lookup",
                            other.type_name()
                        )));
                    }
                }
            }
        }
        next.validate()?;
        Ok(next)
    }

    fn attribute_mut(&mut self, name: &AttributeName) -> Result<&mut AttributeMetadata, ModelError> {
        let entity = self.logical_name.clone();
        self.attributes
            .iter_mut()
            .find(|a| &a.logical_name == name)
            .ok_or(ModelError::UnknownAttribute {
                entity,
                attribute: name.to_string(),
            })
    }
}

fn system_attributes() -> Vec<AttributeMetadata> {
    let attr = |name: &str, t| AttributeMetadata::new(name, t).expect("system attribute names are valid");
    vec![
        attr("createdon", AttributeType::DateTime),
        attr("modifiedon", AttributeType::DateTime),
        attr("versionnumber", AttributeType::BigInt),
        attr(
            "statecode",
            AttributeType::State {
                options: OptionSet::new([(0, "Active"), (1, "Inactive")]),
            },
        ),
        attr(
            "statuscode",
            AttributeType::Status {
                options: OptionSet {
                    options: vec![
                        OptionMetadata {
                            value: 1,
                            label: "Active".into(),
                            state: Some(0),
                        },
                        OptionMetadata {
                            value: 2,
                            label: "Inactive".into(),
                            state: Some(1),
                        },
                    ],
                },
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> EntityMetadata {
        EntityMetadata::new("account", "accounts", "name").unwrap()
    }

    #[test]
    fn new_entity_has_system_attributes() {
        let a = account();
        for name in [
            "accountid",
            "createdon",
            "modifiedon",
            "versionnumber",
            "statecode",
            "statuscode",
            "name",
        ] {
            assert!(a.attribute(name).is_some(), "{name}");
        }
        assert_eq!(a.primary_id_attribute.as_str(), "accountid");
    }

    #[test]
    fn activities_are_identified_by_activityid_and_no_other_entity_by_a_foreign_id() {
        let task = EntityMetadata::activity("task", "tasks", "subject").unwrap();
        assert_eq!(task.primary_id_attribute.as_str(), ACTIVITY_ID);
        assert!(task.attribute("activityid").is_some());
        assert!(task.attribute("taskid").is_none());
        let mut odd = account();
        odd.primary_id_attribute = AttributeName::parse("contactid").unwrap();
        odd.attributes[0].logical_name = AttributeName::parse("contactid").unwrap();
        let error = odd.validate().unwrap_err().to_string();
        assert!(error.contains("'accountid' (or 'activityid'"), "{error}");
    }

    #[test]
    fn duplicate_and_invalid_attributes_are_rejected_with_their_name() {
        let a = account();
        let dup = AttributeMetadata::new("createdon", AttributeType::DateTime).unwrap();
        let err = a.clone().with_attribute(dup).unwrap_err().to_string();
        assert!(err.contains("createdon"), "{err}");
        let long = AttributeMetadata::new("x", AttributeType::String { max_length: 5000 }).unwrap();
        let err = a.clone().with_attribute(long).unwrap_err().to_string();
        assert!(err.contains("'x'") && err.contains("4000"), "{err}");
        let no_options = AttributeMetadata::new(
            "p",
            AttributeType::Picklist {
                options: OptionSet::default(),
            },
        )
        .unwrap();
        assert!(a.with_attribute(no_options).is_err());
    }

    #[test]
    fn widen_only_grows() {
        let a = account();
        let name = AttributeName::parse("name").unwrap();
        let e = a.logical_name.clone();
        let wider = a
            .apply(&MetadataChange::WidenAttribute {
                entity: e.clone(),
                attribute: name.clone(),
                max_length: 200,
            })
            .unwrap();
        assert_eq!(
            wider.attribute("name").unwrap().attribute_type,
            AttributeType::String { max_length: 200 }
        );
        let err = wider
            .apply(&MetadataChange::WidenAttribute {
                entity: e,
                attribute: name,
                max_length: 50,
            })
            .unwrap_err();
        assert!(err.to_string().contains("only grow"));
    }

    #[test]
    fn add_options_rejects_existing_values() {
        let a = account();
        let change = MetadataChange::AddOptions {
            entity: a.logical_name.clone(),
            attribute: AttributeName::parse("statecode").unwrap(),
            options: vec![OptionMetadata::new(1, "Dup")],
        };
        assert!(a.apply(&change).is_err());
    }

    #[test]
    fn metadata_round_trips_through_json() {
        let a = account()
            .with_attribute(
                AttributeMetadata::new(
                    "parentaccountid",
                    AttributeType::Lookup {
                        targets: vec![EntityName::parse("account").unwrap()],
                    },
                )
                .unwrap(),
            )
            .unwrap();
        let json = serde_json::to_string(&a).unwrap();
        let back: EntityMetadata = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back);
    }
}
