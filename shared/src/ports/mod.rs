//! Ports: the traits services use to reach the outside world. Adapters implement them
//! (`adapters::embedded` on SQLite and the environment, `adapters::aws` on DynamoDB and
//! Secrets Manager).

pub mod clock;
pub mod secrets;
pub mod store;

pub use clock::Clock;
pub use secrets::{SecretStore, SecretsError};
pub use store::{InboxStore, InsertOutcome, MarkOutcome, PendingPage, PendingQuery, StoreError};
