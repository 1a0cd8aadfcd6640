//! Metadata fixtures shared by the integration tests: `account` and `contact` with one
//! attribute of every type.
#![allow(dead_code)]

use crmsync_model::{AttributeMetadata, AttributeType, EntityMetadata, EntityName, OptionSet, RecordId};

fn attr(name: &str, ty: AttributeType) -> AttributeMetadata {
    AttributeMetadata::new(name, ty).unwrap()
}

fn lookup(name: &str, targets: &[&str]) -> AttributeMetadata {
    attr(
        name,
        AttributeType::Lookup {
            targets: targets.iter().map(|t| EntityName::parse(t).unwrap()).collect(),
        },
    )
}

pub fn account() -> EntityMetadata {
    let mut e = EntityMetadata::new("account", "accounts", "name").unwrap();
    for a in [
        attr("description", AttributeType::Memo { max_length: 2000 }),
        attr(
            "numberofemployees",
            AttributeType::Integer {
                min: 0,
                max: 1_000_000,
            },
        ),
        attr("revenue", AttributeType::Money { precision: 2 }),
        attr("exchangerate", AttributeType::Decimal { precision: 6 }),
        attr("latitude", AttributeType::Double),
        attr("creditonhold", AttributeType::Boolean),
        attr("lastusedincampaign", AttributeType::DateTime),
        attr("externalid", AttributeType::Uniqueidentifier),
        lookup("primarycontactid", &["contact"]),
        lookup("parentaccountid", &["account"]),
        lookup("ownerid", &["systemuser", "team"]),
        attr(
            "industrycode",
            AttributeType::Picklist {
                options: OptionSet::new([(1, "Accounting"), (2, "Agriculture"), (3, "Consulting")]),
            },
        ),
    ] {
        e = e.with_attribute(a).unwrap();
    }
    e
}

pub fn contact() -> EntityMetadata {
    let mut e = EntityMetadata::new("contact", "contacts", "fullname").unwrap();
    for a in [
        attr("emailaddress1", AttributeType::String { max_length: 100 }),
        attr("birthdate", AttributeType::DateTime),
        lookup("parentcustomerid", &["account", "contact"]),
    ] {
        e = e.with_attribute(a).unwrap();
    }
    e
}

pub fn metadata() -> Vec<EntityMetadata> {
    vec![account(), contact()]
}

pub fn guid(n: u8) -> RecordId {
    RecordId::parse(&format!("00000000-0000-0000-0000-0000000000{n:02x}")).unwrap()
}
