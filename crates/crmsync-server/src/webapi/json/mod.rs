//! Records in Dataverse's JSON shape: [`answers`] writes the records a client reads,
//! [`bodies`] reads the records a client writes.

mod answers;
mod bodies;

use crmsync_model::{Record, Value};

pub use answers::{EntityJson, Envelope, JsonShape, RecordJson, RowJson};
pub use bodies::record_from_body;

const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";
const LOOKUP_NAME: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";

pub fn etag(record: &Record) -> Option<String> {
    match record.get("versionnumber") {
        Some(Value::BigInt(v)) => Some(format!("W/\"{v}\"")),
        _ => None,
    }
}

/// Entities the tests of both halves use.
#[cfg(test)]
mod test_entities {
    use crmsync_model::{AttributeMetadata, AttributeType, EntityMetadata, EntityName};

    pub(super) fn entities() -> Vec<EntityMetadata> {
        crmsync_sample_like()
    }

    fn crmsync_sample_like() -> Vec<EntityMetadata> {
        let account = EntityMetadata::new("account", "accounts", "name").unwrap();
        let contact = EntityMetadata::new("contact", "contacts", "fullname")
            .unwrap()
            .with_attribute(
                AttributeMetadata::new(
                    "parentcustomerid",
                    AttributeType::Lookup {
                        targets: vec![
                            EntityName::parse("account").unwrap(),
                            EntityName::parse("contact").unwrap(),
                        ],
                    },
                )
                .unwrap(),
            )
            .unwrap();
        vec![account, contact]
    }
}
