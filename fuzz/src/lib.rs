//! Fixtures shared by the fuzz targets: a fixed metadata set (`account` with one attribute of
//! every type, `contact`), the evaluation context and the rows filters are evaluated against.
//!
//! Everything is fixed so that a crashing input reproduces exactly; nothing depends on the
//! clock.

use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use crmsync_model::{
    AttributeMetadata, AttributeType, EntityMetadata, EntityName, EntityReference, OptionSet, Record,
    RecordId, Value,
};
use crmsync_query::{EvalContext, Filter, LinkEntity, Query, Row, eval, lower};
use rust_decimal::Decimal;

/// `account` and `contact`, built once.
pub static METADATA: LazyLock<Vec<EntityMetadata>> = LazyLock::new(|| vec![account(), contact()]);

fn attr(name: &str, ty: AttributeType) -> AttributeMetadata {
    AttributeMetadata::new(name, ty).expect("fixture attribute name is valid")
}

fn lookup(name: &str, targets: &[&str]) -> AttributeMetadata {
    let targets = targets
        .iter()
        .map(|t| EntityName::parse(t).expect("fixture entity name is valid"))
        .collect();
    attr(name, AttributeType::Lookup { targets })
}

fn with_attributes(mut entity: EntityMetadata, attributes: Vec<AttributeMetadata>) -> EntityMetadata {
    for a in attributes {
        entity = entity.with_attribute(a).expect("fixture attribute is valid");
    }
    entity
}

/// `account` with one attribute of every type.
pub fn account() -> EntityMetadata {
    let entity = EntityMetadata::new("account", "accounts", "name").expect("fixture entity is valid");
    with_attributes(
        entity,
        vec![
            attr("accountnumber", AttributeType::String { max_length: 20 }),
            attr("description", AttributeType::Memo { max_length: 2000 }),
            attr(
                "numberofemployees",
                AttributeType::Integer {
                    min: 0,
                    max: 1_000_000,
                },
            ),
            attr("versioncount", AttributeType::BigInt),
            attr("exchangerate", AttributeType::Decimal { precision: 6 }),
            attr("revenue", AttributeType::Money { precision: 2 }),
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
        ],
    )
}

/// `contact`, the target of `account.primarycontactid`.
pub fn contact() -> EntityMetadata {
    let entity = EntityMetadata::new("contact", "contacts", "fullname").expect("fixture entity is valid");
    with_attributes(
        entity,
        vec![
            attr("emailaddress1", AttributeType::String { max_length: 100 }),
            attr("birthdate", AttributeType::DateTime),
            lookup("parentcustomerid", &["account", "contact"]),
        ],
    )
}

fn guid(n: u8) -> RecordId {
    RecordId::parse(&format!("00000000-0000-0000-0000-0000000000{n:02x}")).expect("fixture GUID is valid")
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("fixture date is valid")
}

/// The current time and user every filter is lowered with.
pub fn context() -> EvalContext {
    EvalContext::new(at(2026, 3, 2, 9)).with_user(guid(9))
}

fn reference(entity: &str, n: u8) -> Value {
    Value::Lookup(EntityReference {
        entity: EntityName::parse(entity).expect("fixture entity name is valid"),
        id: guid(n),
    })
}

/// A record holding a value for every attribute of both fixture entities, with text that
/// exercises LIKE wildcards and case folding.
pub static FULL_ROW: LazyLock<Record> = LazyLock::new(|| {
    Record::new(guid(1))
        .with("accountid", Value::Guid(guid(1)))
        .with("contactid", Value::Guid(guid(2)))
        .with("name", Value::String("Contoso 50% off_[x]".into()))
        .with("fullname", Value::String("Ada Lovelace".into()))
        .with("accountnumber", Value::String("AC-001".into()))
        .with("emailaddress1", Value::String("ada@example.com".into()))
        .with("description", Value::String("é\\É\t\n".into()))
        .with("numberofemployees", Value::Integer(50))
        .with("versioncount", Value::BigInt(i64::MAX))
        .with("versionnumber", Value::BigInt(42))
        .with("exchangerate", Value::Decimal(Decimal::new(1_234_567, 6)))
        .with("revenue", Value::Decimal(Decimal::new(-99_999_999, 2)))
        .with("latitude", Value::Double(47.6))
        .with("creditonhold", Value::Boolean(true))
        .with("createdon", Value::DateTime(at(2026, 3, 1, 12)))
        .with("modifiedon", Value::DateTime(at(2026, 3, 2, 8)))
        .with("lastusedincampaign", Value::DateTime(at(1970, 1, 1, 0)))
        .with("birthdate", Value::DateTime(at(1815, 12, 10, 0)))
        .with("externalid", Value::Guid(guid(3)))
        .with("primarycontactid", reference("contact", 2))
        .with("parentaccountid", reference("account", 4))
        .with("parentcustomerid", reference("account", 1))
        .with("ownerid", reference("systemuser", 9))
        .with("industrycode", Value::OptionSet(2))
        .with("statecode", Value::OptionSet(0))
        .with("statuscode", Value::OptionSet(1))
});

/// A record without values: every attribute is NULL.
pub static EMPTY_ROW: LazyLock<Record> = LazyLock::new(Record::default);

/// The filters of a query: the root's and every link-entity's.
pub fn filters(query: &Query) -> Vec<&Filter> {
    fn walk<'q>(links: &'q [LinkEntity], out: &mut Vec<&'q Filter>) {
        for link in links {
            out.extend(link.filter.as_ref());
            walk(&link.links, out);
        }
    }
    let mut out: Vec<&Filter> = query.filter.iter().collect();
    walk(&query.links, &mut out);
    out
}

/// The aliases of a query's link-entities, at any depth.
pub fn aliases(query: &Query) -> Vec<&str> {
    fn walk<'q>(links: &'q [LinkEntity], out: &mut Vec<&'q str>) {
        for link in links {
            out.push(&link.alias);
            walk(&link.links, out);
        }
    }
    let mut out = Vec::new();
    walk(&query.links, &mut out);
    out
}

/// Lowers `filter` with [`context`] and evaluates it against `row`.
pub fn evaluate(filter: &Filter, row: &dyn Row) -> Option<bool> {
    eval(&lower(filter, &context()), row)
}
