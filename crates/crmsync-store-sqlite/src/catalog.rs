//! The catalog database (`catalog.db`): organizations, users, applications and the work queue
//! (`work.rs`). Organization files live in
//! `orgs/<name>.db` beside it; an organization exists when its catalog row exists (a file
//! without a row, left by a crash during creation, is replaced on the next create).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_model::OrgName;
use crmsync_store::{
    App, AppSecret, Catalog, NewUser, OrgInfo, OrgStore, Role, StoreError, StoreResult, User, WorkStore,
    password,
};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::bind::db_err;
use crate::work::SqliteWork;
use crate::{SqliteOrg, migrate};

pub struct SqliteCatalog {
    dir: PathBuf,
    pool: SqlitePool,
    orgs: Mutex<HashMap<OrgName, Arc<SqliteOrg>>>,
    work: Arc<SqliteWork>,
}

/// Page cache of a connection, in KiB: bounded, since an org's pool holds several
/// connections and a large database fills every one of them.
pub(crate) const CACHE_KIB: u32 = 16 * 1024;
/// Page cache of the connection of a bulk write (a sync's initial download) while it lasts:
/// inserts of random-key rows into a large table touch index pages all over it.
pub(crate) const BULK_CACHE_KIB: u32 = 64 * 1024;

/// How the write-ahead log of a database is copied back into it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checkpoints {
    /// By SQLite, in the commit that makes the log long enough.
    OnCommit,
    /// By the owner of the pool, off the committing writer's path (see `org::checkpointer`);
    /// by SQLite in a commit only when the log has grown very long.
    Background,
}

/// Opens a pool on one SQLite file with the settings every crmsync database uses.
pub(crate) async fn open_pool(
    path: &Path,
    max_connections: u32,
    checkpoints: Checkpoints,
) -> StoreResult<SqlitePool> {
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(db_err)?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        .pragma("cache_size", format!("-{CACHE_KIB}"))
        .pragma("temp_store", "memory");
    let options = match checkpoints {
        Checkpoints::OnCommit => options,
        // The commit still copies the log back once it is very long (about 400 MB), should
        // the background checkpointer ever not run.
        Checkpoints::Background => options.pragma("wal_autocheckpoint", "100000"),
    };
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::database(format!("cannot open database {}: {e}", path.display())))
}

impl SqliteCatalog {
    /// Opens (creating if needed) the data directory `dir`.
    pub async fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir.join("orgs")).map_err(|e| {
            StoreError::database(format!("cannot create data directory {}: {e}", dir.display()))
        })?;
        let pool = open_pool(&dir.join("catalog.db"), 4, Checkpoints::OnCommit).await?;
        migrate::run(&mut *pool.acquire().await.map_err(db_err)?, migrate::CATALOG).await?;
        Ok(Self {
            dir: dir.to_owned(),
            work: Arc::new(SqliteWork::new(pool.clone())),
            pool,
            orgs: Mutex::new(HashMap::new()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file of an organization.
    pub fn org_path(&self, name: &OrgName) -> PathBuf {
        self.dir.join("orgs").join(format!("{name}.db"))
    }

    fn remove_org_files(&self, name: &OrgName) {
        let path = self.org_path(name);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    async fn insert_user(
        &self,
        conn: &mut sqlx::SqliteConnection,
        org: &OrgName,
        user: &NewUser,
    ) -> StoreResult<User> {
        let hash = password::hash(&user.password)?;
        let email = crmsync_store::normalize_email(&user.email)?;
        let id = Uuid::new_v4();
        sqlx::query("INSERT INTO users (id, org, email, password_hash, role, created_on) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .bind(id)
            .bind(org.as_str())
            .bind(&email)
            .bind(&hash)
            .bind(user.role.as_str())
            .bind(Utc::now().timestamp_micros())
            .execute(&mut *conn)
            .await
            .map_err(|e| match db_err(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("a user with email '{email}' already exists")),
                other => other,
            })?;
        Ok(User {
            id,
            org: org.clone(),
            email,
            role: user.role,
            password_hash: hash,
        })
    }
}

fn org_info(row: &sqlx::sqlite::SqliteRow) -> StoreResult<OrgInfo> {
    let name: String = row.try_get("name").map_err(db_err)?;
    let created: i64 = row.try_get("created_on").map_err(db_err)?;
    Ok(OrgInfo {
        name: OrgName::parse(&name)?,
        created_on: DateTime::from_timestamp_micros(created).unwrap_or_default(),
    })
}

fn user_of(row: &sqlx::sqlite::SqliteRow) -> StoreResult<User> {
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

fn app_of(row: &sqlx::sqlite::SqliteRow) -> StoreResult<App> {
    let role: String = row.try_get("role").map_err(db_err)?;
    let org: String = row.try_get("org").map_err(db_err)?;
    let created: i64 = row.try_get("created_on").map_err(db_err)?;
    Ok(App {
        client_id: row.try_get("client_id").map_err(db_err)?,
        org: OrgName::parse(&org)?,
        name: row.try_get("name").map_err(db_err)?,
        role: Role::parse(&role).ok_or_else(|| StoreError::database(format!("unknown role '{role}'")))?,
        secret_hash: row.try_get("secret_hash").map_err(db_err)?,
        created_on: DateTime::from_timestamp_micros(created).unwrap_or_default(),
    })
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn create_org(&self, name: &OrgName, admin: NewUser) -> StoreResult<OrgInfo> {
        admin.validate()?;
        let mut cache = self.orgs.lock().await;
        if self.find_org(name).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "organization '{name}' already exists"
            )));
        }
        self.remove_org_files(name);
        let org = SqliteOrg::open(name.clone(), &self.org_path(name)).await?;
        let created_on = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        sqlx::query("INSERT INTO orgs (name, created_on) VALUES (?1, ?2)")
            .bind(name.as_str())
            .bind(created_on.timestamp_micros())
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("organization '{name}' already exists"))
                }
                other => other,
            })?;
        self.insert_user(
            &mut tx,
            name,
            &NewUser {
                role: Role::Admin,
                ..admin
            },
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        cache.insert(name.clone(), Arc::new(org));
        Ok(OrgInfo {
            name: name.clone(),
            created_on,
        })
    }

    async fn list_orgs(&self) -> StoreResult<Vec<OrgInfo>> {
        let rows = sqlx::query("SELECT name, created_on FROM orgs ORDER BY name")
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let done = sqlx::query("DELETE FROM orgs WHERE name = ?1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("organization '{name}'")));
        }
        sqlx::query("DELETE FROM work WHERE org = ?1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        if let Some(org) = cache.remove(name) {
            org.close().await;
        }
        self.remove_org_files(name);
        Ok(())
    }

    async fn open_org(&self, name: &OrgName) -> StoreResult<Arc<dyn OrgStore>> {
        let mut cache = self.orgs.lock().await;
        if let Some(org) = cache.get(name) {
            return Ok(org.clone());
        }
        self.org_info(name).await?;
        let org = Arc::new(SqliteOrg::open(name.clone(), &self.org_path(name)).await?);
        cache.insert(name.clone(), org.clone());
        Ok(org)
    }

    async fn create_user(&self, org: &OrgName, user: NewUser) -> StoreResult<User> {
        self.org_info(org).await?;
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        self.insert_user(&mut conn, org, &user).await
    }

    async fn find_user(&self, org: &OrgName, email: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE org = ?1 AND email = ?2")
            .bind(org.as_str())
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(user_of).transpose()
    }

    async fn list_users(&self, org: &OrgName) -> StoreResult<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users WHERE org = ?1 ORDER BY email")
            .bind(org.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(user_of).collect()
    }

    async fn create_app(&self, org: &OrgName, name: &str, role: Role) -> StoreResult<(App, AppSecret)> {
        self.org_info(org).await?;
        let (app, secret) = crmsync_store::app::new_app(org, name, role)?;
        sqlx::query(
            "INSERT INTO apps (client_id, org, name, secret_hash, role, created_on) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(app.client_id)
        .bind(org.as_str())
        .bind(&app.name)
        .bind(&app.secret_hash)
        .bind(app.role.as_str())
        .bind(app.created_on.timestamp_micros())
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            // The org was deleted since it was looked up.
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                StoreError::not_found(format!("organization '{org}'"))
            }
            _ => db_err(e),
        })?;
        Ok((app, secret))
    }

    async fn find_app(&self, org: &OrgName, client_id: Uuid) -> StoreResult<Option<App>> {
        let row = sqlx::query("SELECT * FROM apps WHERE org = ?1 AND client_id = ?2")
            .bind(org.as_str())
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(app_of).transpose()
    }

    async fn list_apps(&self, org: &OrgName) -> StoreResult<Vec<App>> {
        self.org_info(org).await?;
        let rows = sqlx::query("SELECT * FROM apps WHERE org = ?1 ORDER BY created_on, client_id")
            .bind(org.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(app_of).collect()
    }

    async fn delete_app(&self, org: &OrgName, client_id: Uuid) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM apps WHERE org = ?1 AND client_id = ?2")
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

impl SqliteCatalog {
    async fn find_org(&self, name: &OrgName) -> StoreResult<Option<OrgInfo>> {
        let row = sqlx::query("SELECT name, created_on FROM orgs WHERE name = ?1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(org_info).transpose()
    }
}
