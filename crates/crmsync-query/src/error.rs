//! The one error type of the query crate. Every message names what is wrong (the element,
//! attribute, operator or value) in the words a CRM administrator uses, so that an error
//! returned by the Web API or the sync setup can be fixed without reading logs.

use crmsync_model::ValueError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("the query is {size} bytes long; the limit is {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("the FetchXML nests elements more than {max} levels deep")]
    TooDeep { max: usize },
    #[error("the FetchXML contains a DOCTYPE declaration, which is not allowed")]
    DoctypeNotAllowed,
    #[error("the FetchXML is not well-formed XML (near byte {position}): {message}")]
    MalformedXml { position: u64, message: String },
    #[error("unexpected element <{element}> inside <{parent}>")]
    UnexpectedElement { element: String, parent: String },
    #[error("<{element}> needs the attribute '{attribute}'")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    #[error("invalid {attribute}=\"{value}\" on <{element}>: expected {expected}")]
    InvalidAttributeValue {
        element: &'static str,
        attribute: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("there is no entity '{0}'")]
    UnknownEntity(String),
    #[error("entity '{entity}' has no attribute '{attribute}'")]
    UnknownAttribute { entity: String, attribute: String },
    #[error("no link-entity has the alias '{0}'")]
    UnknownAlias(String),
    #[error("the alias '{0}' is used by more than one link-entity")]
    DuplicateAlias(String),
    #[error("unknown condition operator '{0}'")]
    UnknownOperator(String),
    #[error("operator '{operator}' cannot be used on attribute '{attribute}' of type {attribute_type}")]
    OperatorNotAllowed {
        operator: String,
        attribute: String,
        attribute_type: &'static str,
    },
    #[error("invalid value '{value}' for attribute '{attribute}': {reason}")]
    InvalidValue {
        attribute: String,
        value: String,
        reason: String,
    },
    #[error("operator '{operator}' on attribute '{attribute}' needs {expected}, got {got}")]
    WrongValueCount {
        operator: String,
        attribute: String,
        expected: &'static str,
        got: usize,
    },
    #[error("syntax error in {part} at position {position}: {message}")]
    Syntax {
        part: &'static str,
        position: usize,
        message: String,
    },
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("this filter cannot be written as FetchXML: {0}")]
    NotExpressibleAsFetchXml(String),
}

impl QueryError {
    pub(crate) fn invalid_value(attribute: &str, value: &str, reason: impl ToString) -> Self {
        QueryError::InvalidValue {
            attribute: attribute.to_owned(),
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn from_value_error(attribute: &str, value: &str, error: ValueError) -> Self {
        Self::invalid_value(attribute, value, error)
    }
}
