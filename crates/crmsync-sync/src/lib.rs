//! The sync engine: keeps a Client organization's store synchronized with a Server
//! organization reached through a [`Connector`].
//!
//! The engine never talks HTTP or SQL itself: the server side is a [`Connector`] (implemented
//! in `crmsync-connectors` over the Dataverse Web API), the client side a
//! `crmsync_store::OrgStore`. Decisions are pure functions (`metadata::diff`, `plan`), tested
//! with tables of cases; the I/O layer only executes them.

mod connector;
mod error;

pub use connector::{ChangesPage, Connector, Continuation, FetchPage, ReadPosition, ServerIdentity};
pub use error::SyncError;
