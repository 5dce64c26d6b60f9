//! The embedded backend for `nexus serve`: SQLite and the process environment.

mod env_secrets;
mod sqlite;

pub use env_secrets::EnvSecrets;
pub use sqlite::SqliteStore;
