//! The audit trail: every API call becomes an [`AuditEvent`] (who, what, when,
//! from where, the outcome, digests of the bodies; never a key or a body in
//! clear), hash-chained per tenant so that tampering shows.
//!
//! - Producers (the gateway) build events and hand them to a [`Recorder`],
//!   which puts them on the durable `audit` stream of the bus, off the hot path.
//! - With the `service` feature (default): the [`AuditStore`] that links them
//!   into their chain as the stream delivers them (idempotently: delivery is at
//!   least once), verifies chains, answers `/v1/audit` and `/v1/admin/audit`,
//!   and exports each tenant's events to its signed webhook or a JSON Lines file.
//!
//! The chain's arithmetic is in [`chain`]; the signature scheme in [`webhook`].

pub mod chain;
mod event;
mod proxies;
mod recorder;

#[cfg(feature = "service")]
mod export;
#[cfg(feature = "service")]
mod follow;
#[cfg(feature = "service")]
mod service;
#[cfg(feature = "service")]
mod sqlite;
#[cfg(feature = "service")]
mod store;
#[cfg(feature = "service")]
mod storer;
#[cfg(all(test, feature = "service"))]
mod tests;
#[cfg(feature = "service")]
pub mod webhook;

pub use chain::{AuditRecord, Break, Chain, Fault};
pub use event::{Actor, ActorKind, AuditEvent, BodyTally, Timestamp, digest_string};
pub use proxies::{Cidr, TrustedProxies};
pub use recorder::{Recorder, STREAM};

#[cfg(feature = "service")]
pub use export::{Delivery, Export, ExportKind, file_path};
#[cfg(feature = "service")]
pub use follow::ConfigSource;
#[cfg(feature = "service")]
pub use service::{Audit, AuditState, Background, GROUP, Settings, consume, router, start, start_with_resolver};
#[cfg(feature = "service")]
pub use sqlite::Appender;
#[cfg(feature = "service")]
pub use store::{AuditStore, ChainReport, ListFilter, MIGRATIONS, SCHEMA, VerifyReport};
#[cfg(feature = "service")]
pub use storer::Storer;
