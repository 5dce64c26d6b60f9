//! Ports: the traits services use to reach the outside world. Adapters implement them
//! (`adapters::embedded` on SQLite and the environment, `adapters::aws` on DynamoDB and
//! Secrets Manager).

pub mod clock;
pub mod http_client;
pub mod metrics;
pub mod outbound;
pub mod queue;
pub mod secrets;
pub mod store;

pub use clock::Clock;
pub use http_client::HttpClient;
pub use metrics::Metrics;
pub use outbound::OutboundStore;
pub use queue::DeliveryQueue;
pub use secrets::{SecretStore, SecretsError};
pub use store::{InboxStore, InsertOutcome, MarkOutcome, PendingPage, PendingQuery, StoreError};
