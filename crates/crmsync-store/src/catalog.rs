//! The instance-wide catalog: organizations, their users and their applications.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::OrgName;
use uuid::Uuid;

use crate::{App, AppSecret, OrgStore, StoreError, StoreResult, WorkStore};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgInfo {
    pub name: OrgName,
    pub created_on: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// A user to create. The password is hashed (argon2id) by the catalog before it is stored.
#[derive(Clone)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub role: Role,
}

impl NewUser {
    /// Checks the email and the password policy without hashing.
    pub fn validate(&self) -> StoreResult<()> {
        normalize_email(&self.email)?;
        if self.password.chars().count() < crate::password::MIN_PASSWORD_LEN {
            return Err(StoreError::BadRequest(format!(
                "password must have at least {} characters",
                crate::password::MIN_PASSWORD_LEN
            )));
        }
        Ok(())
    }
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// A stored user. `password_hash` is a PHC string; check it with [`crate::password::verify`].
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub org: OrgName,
    pub email: String,
    pub role: Role,
    pub password_hash: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("org", &self.org)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait Catalog: Send + Sync {
    /// Creates an organization with its first user (an admin). `Conflict` if the name is taken.
    async fn create_org(&self, name: &OrgName, admin: NewUser) -> StoreResult<OrgInfo>;
    async fn list_orgs(&self) -> StoreResult<Vec<OrgInfo>>;
    /// `NotFound` if there is no such organization.
    async fn org_info(&self, name: &OrgName) -> StoreResult<OrgInfo>;
    /// Removes an organization with all its data.
    async fn delete_org(&self, name: &OrgName) -> StoreResult<()>;
    /// Opens an organization's store (cached: cheap to call per request).
    async fn open_org(&self, name: &OrgName) -> StoreResult<Arc<dyn OrgStore>>;

    /// Adds a user to an organization. Emails are unique per organization, case-insensitively.
    async fn create_user(&self, org: &OrgName, user: NewUser) -> StoreResult<User>;
    /// Finds a user by email, case-insensitively.
    async fn find_user(&self, org: &OrgName, email: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self, org: &OrgName) -> StoreResult<Vec<User>>;

    /// Registers an application of `org` acting with `role`, with a new random client id and
    /// secret (see [`crate::app`]). The secret is returned here only; the catalog keeps its
    /// argon2id hash. `NotFound` if there is no such organization, `BadRequest` for an
    /// invalid name. Names need not be unique: the client id identifies the application.
    async fn create_app(&self, org: &OrgName, name: &str, role: Role) -> StoreResult<(App, AppSecret)>;
    /// Finds an application of `org`; `None` for an application of another organization and
    /// for an organization that does not exist.
    async fn find_app(&self, org: &OrgName, client_id: Uuid) -> StoreResult<Option<App>>;
    /// The applications of `org`, oldest first. `NotFound` if there is no such organization.
    async fn list_apps(&self, org: &OrgName) -> StoreResult<Vec<App>>;
    /// Removes an application; tokens it was issued stop working. `NotFound` if `org` has no
    /// such application.
    async fn delete_app(&self, org: &OrgName, client_id: Uuid) -> StoreResult<()>;

    /// The durable work queue of this catalog; its items are deleted with their org.
    fn work(&self) -> Arc<dyn WorkStore>;
}

/// Emails are compared case-insensitively: catalogs store them trimmed and lowercase.
pub fn normalize_email(email: &str) -> StoreResult<String> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !e.chars().any(char::is_whitespace);
    if valid {
        Ok(e)
    } else {
        Err(StoreError::BadRequest(format!(
            "'{email}' is not a valid email address"
        )))
    }
}
