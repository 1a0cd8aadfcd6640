//! The catalog schema (`{ns}catalog`): organizations, users and applications, and the life cycle of the
//! organization schemas (`{ns}org_{name}`) beside it.
//!
//! An organization exists when its catalog row exists. Creation inserts the row first (its
//! primary key makes a concurrent creator of the same name wait, then fail with `Conflict`),
//! then builds the schema and the admin user, all in one transaction. Opening an org takes a
//! share lock on its row while it migrates the schema, so a concurrent delete cannot drop the
//! schema in between.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::OrgName;
use crmsync_store::sql::quote;
use crmsync_store::{
    App, AppSecret, Catalog, NewUser, OrgInfo, OrgStore, Role, StoreError, StoreResult, User, WorkStore,
    password,
};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, Row};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::bind::{db_err, sql_state};
use crate::work::PgWork;
use crate::write::now;
use crate::{PgOrg, migrate};

/// The namespace of [`PgCatalog::connect_default`].
pub const DEFAULT_NAMESPACE: &str = "crmsync_";

/// Longest namespace: `{ns}org_` plus a 40-character org name must fit PostgreSQL's 63-byte
/// identifiers, which it would otherwise silently truncate.
const MAX_NAMESPACE_LEN: usize = 63 - "org_".len() - 40;

pub struct PgCatalog {
    pool: PgPool,
    namespace: String,
    orgs: Mutex<HashMap<OrgName, Arc<PgOrg>>>,
    work: Arc<PgWork>,
}

/// A namespace is a prefix of schema names: `[a-z][a-z0-9_]*`, short enough for every org.
fn check_namespace(namespace: &str) -> StoreResult<()> {
    let b = namespace.as_bytes();
    let valid = !b.is_empty()
        && b.len() <= MAX_NAMESPACE_LEN
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::BadRequest(format!(
            "'{namespace}' is not a valid schema namespace (lowercase letters, digits and '_', \
             starting with a letter, at most {MAX_NAMESPACE_LEN} characters)"
        )))
    }
}

impl PgCatalog {
    /// Connects to `url` and migrates the catalog schema of `namespace` (e.g. `crmsync_`).
    pub async fn connect(url: &str, namespace: &str) -> StoreResult<Self> {
        check_namespace(namespace)?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(Duration::from_secs(300))
            .connect(url)
            .await
            .map_err(|e| StoreError::Database {
                message: format!("cannot connect to PostgreSQL: {e}"),
                retryable: true,
            })?;
        Self::from_pool(pool, namespace).await
    }

    /// A catalog on an existing pool (to choose its size and timeouts), migrating the catalog
    /// schema of `namespace`.
    pub async fn from_pool(pool: PgPool, namespace: &str) -> StoreResult<Self> {
        check_namespace(namespace)?;
        let catalog = Self {
            work: Arc::new(PgWork::new(pool.clone(), &format!("{namespace}catalog"))),
            pool,
            namespace: namespace.to_owned(),
            orgs: Mutex::new(HashMap::new()),
        };
        let mut tx = catalog.pool.begin().await.map_err(db_err)?;
        migrate::run(&mut tx, &catalog.catalog_schema(), migrate::CATALOG, true).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(catalog)
    }

    /// Connects with the default namespace, `crmsync_`.
    pub async fn connect_default(url: &str) -> StoreResult<Self> {
        Self::connect(url, DEFAULT_NAMESPACE).await
    }

    /// The pool every organization of this catalog shares.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn catalog_schema(&self) -> String {
        format!("{}catalog", self.namespace)
    }

    /// The schema of an organization (org names never contain `_`, so this is injective).
    pub fn org_schema(&self, name: &OrgName) -> String {
        format!("{}org_{}", self.namespace, name.as_str().replace('-', "_"))
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{}", quote(&self.catalog_schema()), quote(name))
    }

    async fn insert_user(&self, conn: &mut PgConnection, org: &OrgName, user: &NewUser) -> StoreResult<User> {
        let email = crmsync_store::normalize_email(&user.email)?;
        let hash = password::hash(&user.password)?;
        let id = Uuid::new_v4();
        let statement = format!(
            "INSERT INTO {} (id, org, email, password_hash, role, created_on) VALUES ($1, $2, $3, $4, $5, $6)",
            self.table("users")
        );
        sqlx::query(AssertSqlSafe(statement))
            .bind(id)
            .bind(org.as_str())
            .bind(&email)
            .bind(&hash)
            .bind(user.role.as_str())
            .bind(now())
            .execute(&mut *conn)
            .await
            .map_err(|e| match (sql_state(&e).as_deref(), db_err(e)) {
                (_, StoreError::Conflict(_)) => {
                    StoreError::Conflict(format!("a user with email '{email}' already exists"))
                }
                // The org was deleted since it was looked up.
                (Some("23503"), _) => StoreError::not_found(format!("organization '{org}'")),
                (_, other) => other,
            })?;
        Ok(User {
            id,
            org: org.clone(),
            email,
            role: user.role,
            password_hash: hash,
        })
    }

    async fn find_org(&self, name: &OrgName) -> StoreResult<Option<OrgInfo>> {
        let statement = format!(
            "SELECT name, created_on FROM {} WHERE name = $1",
            self.table("orgs")
        );
        let row = sqlx::query(AssertSqlSafe(statement))
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(org_info).transpose()
    }

    /// Creates the org's row, schema and admin inside `tx`.
    async fn build_org(
        &self,
        tx: &mut PgConnection,
        name: &OrgName,
        admin: &NewUser,
    ) -> StoreResult<OrgInfo> {
        let created_on = now();
        let statement = format!(
            "INSERT INTO {} (name, created_on) VALUES ($1, $2)",
            self.table("orgs")
        );
        sqlx::query(AssertSqlSafe(statement))
            .bind(name.as_str())
            .bind(created_on)
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("organization '{name}' already exists"))
                }
                other => other,
            })?;
        // A schema without a row cannot come from a crmsync transaction; like a stray file
        // of the SQLite backend, it is replaced.
        let schema = quote(&self.org_schema(name));
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        )))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        migrate::run(&mut *tx, &self.org_schema(name), migrate::ORG, false).await?;
        self.insert_user(tx, name, admin).await?;
        Ok(OrgInfo {
            name: name.clone(),
            created_on,
        })
    }
}

fn org_info(row: &PgRow) -> StoreResult<OrgInfo> {
    let name: String = row.try_get("name").map_err(db_err)?;
    let created_on: DateTime<Utc> = row.try_get("created_on").map_err(db_err)?;
    Ok(OrgInfo {
        name: OrgName::parse(&name)?,
        created_on,
    })
}

fn user_of(row: &PgRow) -> StoreResult<User> {
    let role: String = row.try_get("role").map_err(db_err)?;
    let org: String = row.try_get("org").map_err(db_err)?;
    Ok(User {
        id: row.try_get("id").map_err(db_err)?,
        org: OrgName::parse(&org)?,
        email: row.try_get("email").map_err(db_err)?,
        role: Role::parse(&role).ok_or_else(|| StoreError::database(format!("unknown role '{role}'")))?,
        password_hash: row.try_get("password_hash").map_err(db_err)?,
    })
}

fn app_of(row: &PgRow) -> StoreResult<App> {
    let role: String = row.try_get("role").map_err(db_err)?;
    let org: String = row.try_get("org").map_err(db_err)?;
    Ok(App {
        client_id: row.try_get("client_id").map_err(db_err)?,
        org: OrgName::parse(&org)?,
        name: row.try_get("name").map_err(db_err)?,
        role: Role::parse(&role).ok_or_else(|| StoreError::database(format!("unknown role '{role}'")))?,
        secret_hash: row.try_get("secret_hash").map_err(db_err)?,
        created_on: row.try_get("created_on").map_err(db_err)?,
    })
}

#[async_trait]
impl Catalog for PgCatalog {
    async fn create_org(&self, name: &OrgName, admin: NewUser) -> StoreResult<OrgInfo> {
        admin.validate()?;
        let mut cache = self.orgs.lock().await;
        if self.find_org(name).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "organization '{name}' already exists"
            )));
        }
        let admin = NewUser {
            role: Role::Admin,
            ..admin
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let info = self.build_org(&mut tx, name, &admin).await?;
        tx.commit().await.map_err(db_err)?;
        let org = PgOrg::open(name.clone(), self.org_schema(name), self.pool.clone()).await?;
        cache.insert(name.clone(), Arc::new(org));
        tracing::info!(org = %name, "organization created");
        Ok(info)
    }

    async fn list_orgs(&self) -> StoreResult<Vec<OrgInfo>> {
        let statement = format!(
            "SELECT name, created_on FROM {} ORDER BY name COLLATE \"C\"",
            self.table("orgs")
        );
        let rows = sqlx::query(AssertSqlSafe(statement))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(org_info).collect()
    }

    async fn org_info(&self, name: &OrgName) -> StoreResult<OrgInfo> {
        self.find_org(name)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("organization '{name}'")))
    }

    async fn delete_org(&self, name: &OrgName) -> StoreResult<()> {
        let mut cache = self.orgs.lock().await;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let statement = format!("DELETE FROM {} WHERE name = $1", self.table("orgs"));
        let done = sqlx::query(AssertSqlSafe(statement))
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("organization '{name}'")));
        }
        let statement = format!("DELETE FROM {} WHERE org = $1", self.table("work"));
        sqlx::query(AssertSqlSafe(statement))
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&self.org_schema(name)));
        sqlx::raw_sql(AssertSqlSafe(drop))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        cache.remove(name);
        tracing::info!(org = %name, "organization deleted");
        Ok(())
    }

    async fn open_org(&self, name: &OrgName) -> StoreResult<Arc<dyn OrgStore>> {
        let mut cache = self.orgs.lock().await;
        if let Some(org) = cache.get(name) {
            return Ok(org.clone());
        }
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let statement = format!(
            "SELECT name FROM {} WHERE name = $1 FOR SHARE",
            self.table("orgs")
        );
        let exists = sqlx::query(AssertSqlSafe(statement))
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if exists.is_none() {
            return Err(StoreError::not_found(format!("organization '{name}'")));
        }
        migrate::run(&mut tx, &self.org_schema(name), migrate::ORG, false).await?;
        tx.commit().await.map_err(db_err)?;
        let org = Arc::new(PgOrg::open(name.clone(), self.org_schema(name), self.pool.clone()).await?);
        cache.insert(name.clone(), org.clone());
        Ok(org)
    }

    async fn create_user(&self, org: &OrgName, user: NewUser) -> StoreResult<User> {
        self.org_info(org).await?;
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        self.insert_user(&mut conn, org, &user).await
    }

    async fn find_user(&self, org: &OrgName, email: &str) -> StoreResult<Option<User>> {
        let statement = format!(
            "SELECT * FROM {} WHERE org = $1 AND email = $2",
            self.table("users")
        );
        let row = sqlx::query(AssertSqlSafe(statement))
            .bind(org.as_str())
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(user_of).transpose()
    }

    async fn list_users(&self, org: &OrgName) -> StoreResult<Vec<User>> {
        let statement = format!(
            "SELECT * FROM {} WHERE org = $1 ORDER BY email COLLATE \"C\"",
            self.table("users")
        );
        let rows = sqlx::query(AssertSqlSafe(statement))
            .bind(org.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(user_of).collect()
    }

    async fn create_app(&self, org: &OrgName, name: &str, role: Role) -> StoreResult<(App, AppSecret)> {
        self.org_info(org).await?;
        let (app, secret) = crmsync_store::app::new_app(org, name, role)?;
        let statement = format!(
            "INSERT INTO {} (client_id, org, name, secret_hash, role, created_on) VALUES ($1, $2, $3, $4, $5, $6)",
            self.table("apps")
        );
        sqlx::query(AssertSqlSafe(statement))
            .bind(app.client_id)
            .bind(org.as_str())
            .bind(&app.name)
            .bind(&app.secret_hash)
            .bind(app.role.as_str())
            .bind(app.created_on)
            .execute(&self.pool)
            .await
            .map_err(|e| match sql_state(&e).as_deref() {
                // The org was deleted since it was looked up.
                Some("23503") => StoreError::not_found(format!("organization '{org}'")),
                _ => db_err(e),
            })?;
        Ok((app, secret))
    }

    async fn find_app(&self, org: &OrgName, client_id: Uuid) -> StoreResult<Option<App>> {
        let statement = format!(
            "SELECT * FROM {} WHERE org = $1 AND client_id = $2",
            self.table("apps")
        );
        let row = sqlx::query(AssertSqlSafe(statement))
            .bind(org.as_str())
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(app_of).transpose()
    }

    async fn list_apps(&self, org: &OrgName) -> StoreResult<Vec<App>> {
        self.org_info(org).await?;
        let statement = format!(
            "SELECT * FROM {} WHERE org = $1 ORDER BY created_on, client_id",
            self.table("apps")
        );
        let rows = sqlx::query(AssertSqlSafe(statement))
            .bind(org.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(app_of).collect()
    }

    async fn delete_app(&self, org: &OrgName, client_id: Uuid) -> StoreResult<()> {
        let statement = format!(
            "DELETE FROM {} WHERE org = $1 AND client_id = $2",
            self.table("apps")
        );
        let done = sqlx::query(AssertSqlSafe(statement))
            .bind(org.as_str())
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!(
                "application '{client_id}' of organization '{org}'"
            )));
        }
        Ok(())
    }

    fn work(&self) -> Arc<dyn WorkStore> {
        self.work.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::check_namespace;

    #[test]
    fn namespaces_are_schema_name_prefixes_that_fit_every_org() {
        for ok in ["crmsync_", "t0a1b2c3d_", "x"] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Crm_", "1abc", "a-b", "a\"b", "abcdefghijklmnopqrst"] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
    }
}
