//! OData resource paths of the Web API.

use crmsync_model::RecordId;

use crate::ApiError;

/// `EntityDefinitions…` addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionPath {
    /// `(LogicalName='x')`
    pub logical_name: Option<String>,
    /// `/Attributes`
    pub attributes: bool,
    /// `/Attributes(LogicalName='y')`
    pub attribute: Option<String>,
    /// A type-cast segment such as `Microsoft.Dynamics.CRM.PicklistAttributeMetadata`.
    pub cast: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Root,
    Metadata,
    Batch,
    WhoAmI,
    EntityDefinitions(DefinitionPath),
    Collection(String),
    Record { set: String, id: RecordId },
}

/// `name(key)` -> (`name`, `key`).
fn split_key(segment: &str) -> Option<(&str, &str)> {
    let open = segment.find('(')?;
    let inner = segment[open + 1..].strip_suffix(')')?;
    Some((&segment[..open], inner))
}

/// `LogicalName='x'` (or `'x'`) -> `x`.
fn logical_name_key(key: &str) -> Result<String, ApiError> {
    let value = key.strip_prefix("LogicalName=").unwrap_or(key);
    value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request(format!("unsupported key '{key}': use (LogicalName='name')")))
}

impl Resource {
    pub fn parse(path: &str) -> Result<Resource, ApiError> {
        let path = path.trim_matches('/');
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            [""] => Ok(Resource::Root),
            ["$metadata"] => Ok(Resource::Metadata),
            ["$batch"] => Ok(Resource::Batch),
            ["WhoAmI" | "WhoAmI()"] => Ok(Resource::WhoAmI),
            [first, rest @ ..] if first.starts_with("EntityDefinitions") => Self::definitions(first, rest),
            [segment] => match split_key(segment) {
                None => Ok(Resource::Collection((*segment).to_owned())),
                Some((set, key)) => {
                    let key = key.rsplit_once('=').map(|(_, v)| v).unwrap_or(key);
                    let id = RecordId::parse(key).map_err(|_| {
                        ApiError::bad_request(format!("'{key}' is not a valid record id: expected a GUID"))
                    })?;
                    Ok(Resource::Record {
                        set: set.to_owned(),
                        id,
                    })
                }
            },
            _ => Err(ApiError::not_found(format!(
                "Resource not found for the segment '{path}'"
            ))),
        }
    }

    fn definitions(first: &str, rest: &[&str]) -> Result<Resource, ApiError> {
        let mut def = DefinitionPath {
            logical_name: None,
            attributes: false,
            attribute: None,
            cast: None,
        };
        if first != "EntityDefinitions" {
            let (name, key) = split_key(first)
                .filter(|(n, _)| *n == "EntityDefinitions")
                .ok_or_else(|| {
                    ApiError::not_found(format!("Resource not found for the segment '{first}'"))
                })?;
            debug_assert_eq!(name, "EntityDefinitions");
            def.logical_name = Some(logical_name_key(key)?);
        }
        for segment in rest {
            if *segment == "Attributes" {
                def.attributes = true;
            } else if let Some(("Attributes", key)) = split_key(segment) {
                def.attributes = true;
                def.attribute = Some(logical_name_key(key)?);
            } else if segment.starts_with("Microsoft.Dynamics.CRM.") && def.attributes {
                def.cast = Some(segment.trim_start_matches("Microsoft.Dynamics.CRM.").to_owned());
            } else {
                return Err(ApiError::not_found(format!(
                    "Resource not found for the segment '{segment}'"
                )));
            }
        }
        if def.attributes && def.logical_name.is_none() {
            return Err(ApiError::bad_request(
                "Attributes need an entity: EntityDefinitions(LogicalName='x')/Attributes",
            ));
        }
        Ok(Resource::EntityDefinitions(def))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_resources() {
        assert_eq!(Resource::parse("").unwrap(), Resource::Root);
        assert_eq!(
            Resource::parse("accounts").unwrap(),
            Resource::Collection("accounts".into())
        );
        let id = RecordId::new_random();
        assert_eq!(
            Resource::parse(&format!("accounts({id})")).unwrap(),
            Resource::Record {
                set: "accounts".into(),
                id
            }
        );
        assert_eq!(
            Resource::parse(&format!("accounts(accountid={id})")).unwrap(),
            Resource::Record {
                set: "accounts".into(),
                id
            }
        );
        let def = Resource::parse("EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata").unwrap();
        assert_eq!(
            def,
            Resource::EntityDefinitions(DefinitionPath {
                logical_name: Some("account".into()),
                attributes: true,
                attribute: None,
                cast: Some("PicklistAttributeMetadata".into())
            })
        );
    }

    #[test]
    fn bad_paths_are_clear_errors() {
        let err = Resource::parse("accounts(not-a-guid)").unwrap_err();
        assert!(err.message.contains("not-a-guid"), "{err}");
        assert!(Resource::parse("a/b/c").is_err());
        assert!(Resource::parse("EntityDefinitions(LogicalName=account)").is_err());
        assert!(Resource::parse("EntityDefinitions/Attributes").is_err());
    }
}
