//! The sync engine: keeps a Client organization's store synchronized with a Server
//! organization reached through a [`Connector`].
//!
//! The engine never talks HTTP or SQL itself: the server side is a [`Connector`] (implemented
//! in `crmsync-connectors` over the Dataverse Web API), the client side a
//! `crmsync_store::OrgStore`. Decisions are pure functions (`metadata::diff`, `plan`), tested
//! with tables of cases; the I/O layer only executes them.

mod connection;
mod connector;
pub mod download;
mod error;
mod local;
pub mod log;
pub mod metadata;
pub mod process;
pub mod run;
pub mod service;
mod settings;
pub mod transactions;
pub mod upload;

pub use connection::{BackendType, CONNECTION_KEY, Connection, DYNAMICS_PROVIDER_ID, SealedSecret};
pub use connector::{
    ChangesPage, Connector, Continuation, FetchPage, PageSizes, ReadPosition, ServerIdentity, ServerWrite,
    WriteAction, WriteFailure, WriteResults,
};
pub use error::SyncError;
pub use local::LocalConnector;
pub use log::{EntityFigures, Level, Message, RunLog, RunStatus, Trigger};
pub use run::{LAST_SUCCESS_KEY, NoProgress, Progress, SyncRunner, last_success, logs};
pub use settings::{ConflictPolicy, SyncSettings, parents_first, parse_sync_filters};
