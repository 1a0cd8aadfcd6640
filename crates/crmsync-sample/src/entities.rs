//! The standard CRM entities of the sample: `account`, `contact`, `opportunity`, `lead` and
//! `task`, with Dataverse's logical names, entity set names, primary name attributes and
//! typical `MaxLength`s.
//!
//! Invariants: [`crm_entities`] lists the entities parents first (the order [`SampleEntity::ALL`]
//! uses too); every entity passes [`EntityMetadata::validate`]. `account.primarycontactid`
//! names `contact`, which comes later: lookups may point forward, the order only says which
//! entity's records should be written first.
//!
//! Where Dataverse and the task at hand differ, the sample follows the product: `birthdate` and
//! `estimatedclosedate` are DateTime (midnight UTC) because the model has no date-only type, and
//! `task.percentcomplete` is a Decimal so that the sample exercises that type.

use crmsync_model::{AttributeMetadata, AttributeType, EntityMetadata, EntityName, OptionSet};

use crate::options;

/// One of the sample entities. The order of [`SampleEntity::ALL`] is the dependency order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SampleEntity {
    Account,
    Contact,
    Opportunity,
    Lead,
    Task,
}

impl SampleEntity {
    /// Every sample entity, parents first.
    pub const ALL: [SampleEntity; 5] = [
        SampleEntity::Account,
        SampleEntity::Contact,
        SampleEntity::Opportunity,
        SampleEntity::Lead,
        SampleEntity::Task,
    ];

    pub fn logical_name(self) -> &'static str {
        match self {
            SampleEntity::Account => "account",
            SampleEntity::Contact => "contact",
            SampleEntity::Opportunity => "opportunity",
            SampleEntity::Lead => "lead",
            SampleEntity::Task => "task",
        }
    }

    /// The Web API entity set name, also the plural a summary prints.
    pub fn entity_set_name(self) -> &'static str {
        match self {
            SampleEntity::Account => "accounts",
            SampleEntity::Contact => "contacts",
            SampleEntity::Opportunity => "opportunities",
            SampleEntity::Lead => "leads",
            SampleEntity::Task => "tasks",
        }
    }

    pub fn from_logical_name(name: &str) -> Option<SampleEntity> {
        SampleEntity::ALL.into_iter().find(|e| e.logical_name() == name)
    }

    pub fn entity_name(self) -> EntityName {
        EntityName::parse(self.logical_name()).expect("sample entity names are valid logical names")
    }
}

impl std::fmt::Display for SampleEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.logical_name())
    }
}

/// The metadata of the standard CRM entities, parents first.
pub fn crm_entities() -> Vec<EntityMetadata> {
    vec![account(), contact(), opportunity(), lead(), task()]
}

fn string(max_length: u32) -> AttributeType {
    AttributeType::String { max_length }
}

fn memo() -> AttributeType {
    AttributeType::Memo { max_length: 2000 }
}

fn money() -> AttributeType {
    AttributeType::Money { precision: 2 }
}

fn picklist(options: &'static [(i32, &'static str)]) -> AttributeType {
    AttributeType::Picklist {
        options: OptionSet::new(options.iter().copied()),
    }
}

fn lookup(targets: &[SampleEntity]) -> AttributeType {
    AttributeType::Lookup {
        targets: targets.iter().map(|t| t.entity_name()).collect(),
    }
}

/// Builds one entity from constant definitions; [`crm_entities`]'s test proves them valid.
fn entity(
    entity: SampleEntity,
    display_name: &str,
    primary_name: (&str, &str, u32),
    attributes: Vec<(&str, &str, AttributeType)>,
) -> EntityMetadata {
    const VALID: &str = "sample metadata is a valid constant";
    let (name, name_display, name_length) = primary_name;
    let mut meta = EntityMetadata::new(entity.logical_name(), entity.entity_set_name(), name).expect(VALID);
    meta.display_name = display_name.to_owned();
    let primary = AttributeMetadata::new(name, string(name_length)).expect(VALID);
    meta = meta
        .with_attribute(primary.with_display_name(name_display))
        .expect(VALID);
    for (name, display, ty) in attributes {
        let attribute = AttributeMetadata::new(name, ty)
            .expect(VALID)
            .with_display_name(display);
        meta = meta.with_attribute(attribute).expect(VALID);
    }
    meta
}

fn account() -> EntityMetadata {
    use SampleEntity::{Account, Contact};
    entity(
        Account,
        "Account",
        ("name", "Account Name", 160),
        vec![
            ("accountnumber", "Account Number", string(20)),
            ("telephone1", "Main Phone", string(50)),
            ("emailaddress1", "Email", string(100)),
            ("websiteurl", "Website", string(200)),
            ("address1_city", "Address 1: City", string(80)),
            ("address1_country", "Address 1: Country/Region", string(80)),
            ("industrycode", "Industry", picklist(options::INDUSTRY)),
            ("revenue", "Annual Revenue", money()),
            (
                "numberofemployees",
                "Number of Employees",
                AttributeType::Integer {
                    min: 0,
                    max: 1_000_000_000,
                },
            ),
            ("description", "Description", memo()),
            ("creditonhold", "Credit Hold", AttributeType::Boolean),
            (
                "lastusedincampaign",
                "Last Date Included in Campaign",
                AttributeType::DateTime,
            ),
            ("parentaccountid", "Parent Account", lookup(&[Account])),
            ("primarycontactid", "Primary Contact", lookup(&[Contact])),
        ],
    )
}

fn contact() -> EntityMetadata {
    use SampleEntity::{Account, Contact};
    entity(
        Contact,
        "Contact",
        ("fullname", "Full Name", 160),
        vec![
            ("firstname", "First Name", string(50)),
            ("lastname", "Last Name", string(50)),
            ("emailaddress1", "Email", string(100)),
            ("telephone1", "Business Phone", string(50)),
            ("jobtitle", "Job Title", string(100)),
            ("address1_city", "Address 1: City", string(80)),
            ("birthdate", "Birthday", AttributeType::DateTime),
            ("parentcustomerid", "Company Name", lookup(&[Account, Contact])),
            (
                "preferredcontactmethodcode",
                "Preferred Method of Contact",
                picklist(options::CONTACT_METHOD),
            ),
            ("donotemail", "Do not allow Emails", AttributeType::Boolean),
            ("description", "Description", memo()),
        ],
    )
}

fn opportunity() -> EntityMetadata {
    use SampleEntity::{Account, Contact, Opportunity};
    entity(
        Opportunity,
        "Opportunity",
        ("name", "Topic", 300),
        vec![
            ("parentaccountid", "Account", lookup(&[Account])),
            ("parentcontactid", "Contact", lookup(&[Contact])),
            ("estimatedvalue", "Est. Revenue", money()),
            (
                "closeprobability",
                "Probability",
                AttributeType::Integer { min: 0, max: 100 },
            ),
            ("estimatedclosedate", "Est. Close Date", AttributeType::DateTime),
            ("stepname", "Pipeline Phase", string(200)),
            ("salesstagecode", "Process Code", picklist(options::SALES_STAGE)),
            ("opportunityratingcode", "Rating", picklist(options::RATING)),
            (
                "purchasetimeframe",
                "Purchase Timeframe",
                picklist(options::PURCHASE_TIMEFRAME),
            ),
            ("description", "Description", memo()),
        ],
    )
}

fn lead() -> EntityMetadata {
    entity(
        SampleEntity::Lead,
        "Lead",
        ("fullname", "Name", 160),
        vec![
            ("subject", "Topic", string(300)),
            ("firstname", "First Name", string(50)),
            ("lastname", "Last Name", string(50)),
            ("companyname", "Company Name", string(100)),
            ("jobtitle", "Job Title", string(100)),
            ("emailaddress1", "Email", string(100)),
            ("telephone1", "Business Phone", string(50)),
            ("leadsourcecode", "Lead Source", picklist(options::LEAD_SOURCE)),
            ("leadqualitycode", "Rating", picklist(options::RATING)),
            ("industrycode", "Industry", picklist(options::INDUSTRY)),
            ("revenue", "Annual Revenue", money()),
            (
                "numberofemployees",
                "No. of Employees",
                AttributeType::Integer {
                    min: 0,
                    max: 1_000_000_000,
                },
            ),
            ("description", "Description", memo()),
        ],
    )
}

fn task() -> EntityMetadata {
    use SampleEntity::{Account, Contact, Lead, Opportunity, Task};
    entity(
        Task,
        "Task",
        ("subject", "Subject", 200),
        vec![
            ("description", "Description", memo()),
            ("scheduledend", "Due", AttributeType::DateTime),
            ("prioritycode", "Priority", picklist(options::PRIORITY)),
            (
                "regardingobjectid",
                "Regarding",
                lookup(&[Account, Contact, Opportunity, Lead]),
            ),
            (
                "actualdurationminutes",
                "Actual Duration",
                AttributeType::Integer {
                    min: 0,
                    max: 2_147_483_647,
                },
            ),
            (
                "percentcomplete",
                "Percent Complete",
                AttributeType::Decimal { precision: 2 },
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_entities_validate_and_come_parents_first() {
        let entities = crm_entities();
        let names: Vec<&str> = entities.iter().map(|e| e.logical_name.as_str()).collect();
        let expected: Vec<&str> = SampleEntity::ALL.iter().map(|e| e.logical_name()).collect();
        assert_eq!(names, expected);
        for e in &entities {
            e.validate().expect("sample entity validates");
            let sample = SampleEntity::from_logical_name(e.logical_name.as_str()).expect("known entity");
            assert_eq!(e.entity_set_name, sample.entity_set_name());
        }
    }

    #[test]
    fn lookups_name_only_sample_entities() {
        for e in crm_entities() {
            for a in &e.attributes {
                if let AttributeType::Lookup { targets } = &a.attribute_type {
                    for t in targets {
                        assert!(SampleEntity::from_logical_name(t.as_str()).is_some(), "{t}");
                    }
                }
            }
        }
    }

    #[test]
    fn primary_names_have_dataverse_lengths() {
        let entities = crm_entities();
        let length = |entity: &str, attribute: &str| {
            entities
                .iter()
                .find(|e| e.logical_name.as_str() == entity)
                .and_then(|e| e.attribute(attribute))
                .map(|a| a.attribute_type.clone())
        };
        assert_eq!(length("account", "name"), Some(string(160)));
        assert_eq!(length("contact", "fullname"), Some(string(160)));
        assert_eq!(length("opportunity", "name"), Some(string(300)));
        assert_eq!(length("task", "subject"), Some(string(200)));
    }
}
