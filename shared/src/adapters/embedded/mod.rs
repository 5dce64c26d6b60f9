//! The embedded backend for `nexus serve`: SQLite and the process environment.

mod db;
mod env_secrets;
mod outbound;
mod outbound_cache;
mod outbound_schema;
mod outbound_sql;
mod queue;
mod queue_sql;
mod sqlite;
mod writer;

pub use env_secrets::EnvSecrets;
pub use outbound::SqliteOutbound;
pub use queue::{DeadLetter, SqliteQueue};
pub use sqlite::SqliteStore;
