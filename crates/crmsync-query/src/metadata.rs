//! Where the parsers find entity metadata. A [`MetadataSource`] answers by logical name; it is
//! implemented for slices, vectors and maps of [`EntityMetadata`] so that callers can pass what
//! they already hold (the server's cached org metadata, a test's fixture).

use std::collections::{BTreeMap, HashMap};

use crmsync_model::EntityMetadata;

use crate::QueryError;

/// Looks up an entity's metadata by logical name.
pub trait MetadataSource {
    fn entity(&self, name: &str) -> Option<&EntityMetadata>;
}

impl MetadataSource for [EntityMetadata] {
    fn entity(&self, name: &str) -> Option<&EntityMetadata> {
        self.iter().find(|e| e.logical_name.as_str() == name)
    }
}

impl MetadataSource for Vec<EntityMetadata> {
    fn entity(&self, name: &str) -> Option<&EntityMetadata> {
        self.as_slice().entity(name)
    }
}

impl<S: std::hash::BuildHasher> MetadataSource for HashMap<String, EntityMetadata, S> {
    fn entity(&self, name: &str) -> Option<&EntityMetadata> {
        self.get(name)
    }
}

impl MetadataSource for BTreeMap<String, EntityMetadata> {
    fn entity(&self, name: &str) -> Option<&EntityMetadata> {
        self.get(name)
    }
}

impl MetadataSource for EntityMetadata {
    fn entity(&self, name: &str) -> Option<&EntityMetadata> {
        (self.logical_name.as_str() == name).then_some(self)
    }
}

pub(crate) fn require_entity<'m>(
    metadata: &'m dyn MetadataSource,
    name: &str,
) -> Result<&'m EntityMetadata, QueryError> {
    metadata
        .entity(name)
        .ok_or_else(|| QueryError::UnknownEntity(name.to_owned()))
}
