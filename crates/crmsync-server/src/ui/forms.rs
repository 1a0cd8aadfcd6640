//! Form helpers: messages shown next to the field they are about, and the connection form
//! shared by the Connector screen and the public Connect page (its fields, their checks, and
//! where an error of the connect belongs).

use crmsync_store::StoreError;
use crmsync_sync::{BackendType, SyncError};
use serde::Deserialize;

/// Messages for the fields of a form; `""` is the form as a whole.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        if self.get(field).is_none() {
            self.0.push((field, message.into()));
        }
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }

    /// The message about the whole form, not one field.
    pub fn form(&self) -> Option<&str> {
        self.get("")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The server half of a connection form: backend type, URL and credentials.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ServerFields {
    #[serde(default)]
    pub backend: String,
    #[serde(default)]
    pub server_url: String,
    #[serde(default)]
    pub server_user: String,
    #[serde(default)]
    pub server_password: String,
}

impl ServerFields {
    /// The backend type, or a message next to its field; empty fields get messages too.
    /// `password_optional`: a blank password keeps the stored one (reconnecting).
    pub fn check(&self, errors: &mut FieldErrors, password_optional: bool) -> Option<BackendType> {
        let backend = match BackendType::parse(&self.backend) {
            Ok(b) => Some(b),
            Err(_) => {
                errors.add("backend", "Choose the backend type of the server organization.");
                None
            }
        };
        let url = self.server_url.trim();
        if url.is_empty() {
            errors.add("server_url", "Enter the address of the server organization.");
        } else if !(url.starts_with("http://") || url.starts_with("https://")) {
            errors.add(
                "server_url",
                "The address must start with http:// or https:// (for example https://crm.example.com/contoso).",
            );
        }
        if self.server_user.trim().is_empty() {
            errors.add(
                "server_user",
                "Enter the user name to sign in to the server with.",
            );
        }
        if self.server_password.is_empty() && !password_optional {
            errors.add("server_password", "Enter the password of that user.");
        }
        backend
    }
}

/// Puts an error of a connect next to the field it is about: the address when the server
/// cannot be reached or is not a CRM server, the password when the credentials are refused,
/// the form otherwise (an entity or filter the server does not have).
pub fn connect_error(errors: &mut FieldErrors, e: &SyncError) {
    match e {
        SyncError::Unauthorized(_) => errors.add(
            "server_password",
            "The server refused this user name and password.",
        ),
        SyncError::Network(_) => errors.add(
            "server_url",
            format!("The server cannot be reached at this address: {e}"),
        ),
        SyncError::Server { status: 404, .. } => errors.add(
            "server_url",
            "There is no CRM organization at this address (the server answered 404).",
        ),
        SyncError::Server { .. } | SyncError::Protocol(_) | SyncError::Expired(_) => {
            errors.add("server_url", e.to_string())
        }
        SyncError::Invalid(m) if is_about_the_url(m) => errors.add("server_url", m.clone()),
        SyncError::Invalid(m) | SyncError::NotFound(m) | SyncError::Conflict(m) => errors.add("", m.clone()),
        SyncError::Store(StoreError::Conflict(_)) => errors.add(
            "org",
            "An organization with this name already exists; choose another name.",
        ),
        SyncError::Store(StoreError::BadRequest(m)) if m.contains("password") => {
            errors.add("password", m.clone())
        }
        SyncError::Store(StoreError::BadRequest(m)) if m.contains("email") => errors.add("email", m.clone()),
        SyncError::Store(e) => {
            tracing::error!(error = %e, "connect failed in the store");
            errors.add("", "The connection could not be stored; try again.")
        }
    }
}

fn is_about_the_url(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("url") || m.contains("address") || m.contains("host")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_malformed_server_fields_get_a_message_each() {
        let mut errors = FieldErrors::default();
        let fields = ServerFields {
            backend: "salesforce".into(),
            server_url: "crm.example.com".into(),
            ..Default::default()
        };
        assert_eq!(fields.check(&mut errors, false), None);
        for field in ["backend", "server_url", "server_user", "server_password"] {
            assert!(errors.get(field).is_some(), "{field}");
        }
        let mut errors = FieldErrors::default();
        let fields = ServerFields {
            backend: "crmsync".into(),
            server_url: "https://crm.example.com/contoso".into(),
            server_user: "u@example.com".into(),
            server_password: String::new(),
        };
        assert_eq!(fields.check(&mut errors, true), Some(BackendType::Crmsync));
        assert!(errors.is_empty());
    }

    #[test]
    fn connect_errors_land_next_to_the_field_they_are_about() {
        let cases = [
            (SyncError::Unauthorized("no".into()), "server_password"),
            (SyncError::Network("refused".into()), "server_url"),
            (
                SyncError::Invalid("the server URL 'http://10.0.0.1' is on a private address".into()),
                "server_url",
            ),
            (SyncError::Invalid("the server has no entity 'lead'".into()), ""),
            (SyncError::Store(StoreError::Conflict("exists".into())), "org"),
        ];
        for (error, field) in cases {
            let mut errors = FieldErrors::default();
            connect_error(&mut errors, &error);
            assert!(errors.get(field).is_some(), "{error} -> {field}: {errors:?}");
        }
    }
}
