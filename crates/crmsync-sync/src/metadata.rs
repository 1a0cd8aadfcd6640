//! Metadata update: what the client needs to look like the server (SPEC §6.7).
//!
//! [`diff`] is pure: given the server's and the client's entities (and which entities the
//! connection syncs), it lists the changes to apply to the client — missing entities and
//! attributes, widened lengths, new option values, new lookup targets — and reports, without
//! applying anything, what the client has that the server no longer has and what cannot be
//! changed in place (a different type). Client data is never dropped.

use std::collections::BTreeSet;

use crmsync_model::{
    AttributeMetadata, AttributeType, EntityMetadata, EntityName, MetadataChange, OptionSet,
};
use serde::{Deserialize, Serialize};

/// The outcome of comparing server and client metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataDiff {
    /// Changes to apply to the client, in an order that can be applied.
    pub changes: Vec<MetadataChange>,
    /// Differences reported but not applied (removed on the server, incompatible types).
    pub notes: Vec<String>,
}

impl MetadataDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.notes.is_empty()
    }

    /// One line per change, for logs and previews.
    pub fn describe(&self) -> Vec<String> {
        self.changes.iter().map(describe_change).collect()
    }
}

pub fn describe_change(change: &MetadataChange) -> String {
    match change {
        MetadataChange::CreateEntity { entity } => {
            format!(
                "create entity {} ({} attributes)",
                entity.logical_name,
                entity.attributes.len()
            )
        }
        MetadataChange::AddAttribute { entity, attribute } => format!(
            "add attribute {entity}.{} ({})",
            attribute.logical_name,
            attribute.attribute_type.type_name()
        ),
        MetadataChange::WidenAttribute {
            entity,
            attribute,
            max_length,
        } => {
            format!("widen {entity}.{attribute} to {max_length} characters")
        }
        MetadataChange::AddOptions {
            entity,
            attribute,
            options,
        } => {
            let values: Vec<String> = options
                .iter()
                .map(|o| format!("{} ({})", o.value, o.label))
                .collect();
            format!("add options to {entity}.{attribute}: {}", values.join(", "))
        }
        MetadataChange::AddLookupTarget {
            entity,
            attribute,
            target,
        } => {
            format!("allow {entity}.{attribute} to point at {target}")
        }
    }
}

/// Compares the server's entities (those in `selected`, or all) with the client's.
pub fn diff(
    server: &[EntityMetadata],
    client: &[EntityMetadata],
    selected: Option<&[EntityName]>,
) -> MetadataDiff {
    let mut out = MetadataDiff::default();
    let wanted = |e: &EntityMetadata| selected.is_none_or(|s| s.contains(&e.logical_name));
    for s in server.iter().filter(|e| wanted(e)) {
        match client.iter().find(|c| c.logical_name == s.logical_name) {
            None => out
                .changes
                .push(MetadataChange::CreateEntity { entity: s.clone() }),
            Some(c) => diff_entity(s, c, &mut out),
        }
    }
    // The offline transaction queue is the client's own entity.
    let own = |c: &EntityMetadata| c.logical_name.as_str() == crate::transactions::ENTITY;
    for c in client.iter().filter(|c| wanted(c) && !own(c)) {
        if !server.iter().any(|s| s.logical_name == c.logical_name) {
            out.notes.push(format!(
                "entity {} no longer exists on the server; the client keeps it",
                c.logical_name
            ));
        }
    }
    out
}

fn diff_entity(s: &EntityMetadata, c: &EntityMetadata, out: &mut MetadataDiff) {
    let entity = &s.logical_name;
    for sa in &s.attributes {
        match c.attribute(sa.logical_name.as_str()) {
            None => out.changes.push(MetadataChange::AddAttribute {
                entity: entity.clone(),
                attribute: sa.clone(),
            }),
            Some(ca) => diff_attribute(entity, sa, ca, out),
        }
    }
    for ca in &c.attributes {
        if s.attribute(ca.logical_name.as_str()).is_none() {
            out.notes.push(format!(
                "attribute {entity}.{} no longer exists on the server; the client keeps it and its data",
                ca.logical_name
            ));
        }
    }
}

fn new_options(server: &OptionSet, client: &OptionSet) -> Vec<crmsync_model::OptionMetadata> {
    server
        .options
        .iter()
        .filter(|o| !client.contains(o.value))
        .cloned()
        .collect()
}

fn diff_attribute(entity: &EntityName, s: &AttributeMetadata, c: &AttributeMetadata, out: &mut MetadataDiff) {
    let attribute = s.logical_name.clone();
    match (&s.attribute_type, &c.attribute_type) {
        (AttributeType::String { max_length: sl }, AttributeType::String { max_length: cl })
        | (AttributeType::Memo { max_length: sl }, AttributeType::Memo { max_length: cl }) => {
            if sl > cl {
                out.changes.push(MetadataChange::WidenAttribute {
                    entity: entity.clone(),
                    attribute,
                    max_length: *sl,
                });
            } else if sl < cl {
                out.notes.push(format!(
                    "{entity}.{attribute} is shorter on the server ({sl} < {cl}); the client keeps {cl}"
                ));
            }
        }
        (AttributeType::Lookup { targets: st }, AttributeType::Lookup { targets: ct }) => {
            let known: BTreeSet<&EntityName> = ct.iter().collect();
            for target in st.iter().filter(|t| !known.contains(t)) {
                out.changes.push(MetadataChange::AddLookupTarget {
                    entity: entity.clone(),
                    attribute: attribute.clone(),
                    target: target.clone(),
                });
            }
        }
        (st, ct) if st.type_name() != ct.type_name() => out.notes.push(format!(
            "{entity}.{attribute} is a {} on the server but a {} on the client; it is left as it is",
            st.type_name(),
            ct.type_name()
        )),
        (st, ct) => {
            if let (Some(so), Some(co)) = (st.option_set(), ct.option_set()) {
                let options = new_options(so, co);
                if !options.is_empty() {
                    out.changes.push(MetadataChange::AddOptions {
                        entity: entity.clone(),
                        attribute,
                        options,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crmsync_model::{AttributeName, OptionMetadata};

    fn account() -> EntityMetadata {
        EntityMetadata::new("account", "accounts", "name").unwrap()
    }

    fn with(e: EntityMetadata, name: &str, t: AttributeType) -> EntityMetadata {
        e.with_attribute(AttributeMetadata::new(name, t).unwrap())
            .unwrap()
    }

    fn en(s: &str) -> EntityName {
        EntityName::parse(s).unwrap()
    }

    #[test]
    fn same_metadata_means_no_changes() {
        let e = with(account(), "code", AttributeType::String { max_length: 10 });
        let same = std::slice::from_ref(&e);
        assert!(diff(same, same, None).is_empty());
    }

    #[test]
    fn each_kind_of_server_change_becomes_one_client_change() {
        let picklist = |opts: &[(i32, &'static str)]| AttributeType::Picklist {
            options: OptionSet::new(opts.iter().copied()),
        };
        let client = with(
            with(account(), "code", AttributeType::String { max_length: 10 }),
            "kind",
            picklist(&[(1, "A")]),
        );
        let client = with(
            client,
            "parentid",
            AttributeType::Lookup {
                targets: vec![en("account")],
            },
        );
        let server = with(
            with(account(), "code", AttributeType::String { max_length: 50 }),
            "kind",
            picklist(&[(1, "A"), (2, "B")]),
        );
        let server = with(
            server,
            "parentid",
            AttributeType::Lookup {
                targets: vec![en("account"), en("contact")],
            },
        );
        let server = with(server, "extra", AttributeType::BigInt);
        let contact = EntityMetadata::new("contact", "contacts", "fullname").unwrap();
        let d = diff(&[server, contact.clone()], &[client], None);
        let a = |n: &str| AttributeName::parse(n).unwrap();
        assert_eq!(
            d.changes,
            vec![
                MetadataChange::WidenAttribute {
                    entity: en("account"),
                    attribute: a("code"),
                    max_length: 50
                },
                MetadataChange::AddOptions {
                    entity: en("account"),
                    attribute: a("kind"),
                    options: vec![OptionMetadata::new(2, "B")]
                },
                MetadataChange::AddLookupTarget {
                    entity: en("account"),
                    attribute: a("parentid"),
                    target: en("contact")
                },
                MetadataChange::AddAttribute {
                    entity: en("account"),
                    attribute: AttributeMetadata::new("extra", AttributeType::BigInt).unwrap()
                },
                MetadataChange::CreateEntity { entity: contact },
            ]
        );
        assert!(d.notes.is_empty());
        assert_eq!(d.describe()[0], "widen account.code to 50 characters");
    }

    #[test]
    fn removals_and_type_changes_are_reported_not_applied() {
        let client = with(
            with(account(), "gone", AttributeType::BigInt),
            "code",
            AttributeType::Integer { min: 0, max: 9 },
        );
        let server = with(account(), "code", AttributeType::String { max_length: 9 });
        let other = EntityMetadata::new("other", "others", "name").unwrap();
        let d = diff(&[server], &[client, other], None);
        assert!(d.changes.is_empty(), "{:?}", d.changes);
        assert_eq!(d.notes.len(), 3, "{:?}", d.notes);
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("account.gone no longer exists"))
        );
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("account.code is a String on the server but a Integer"))
        );
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("entity other no longer exists"))
        );
    }

    #[test]
    fn only_selected_entities_are_compared() {
        let contact = EntityMetadata::new("contact", "contacts", "fullname").unwrap();
        let d = diff(&[account(), contact], &[], Some(&[en("contact")]));
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.changes[0].entity(), &en("contact"));
    }
}
