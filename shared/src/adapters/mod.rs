//! Adapters: the ports implemented on real backends.
//!
//! - `embedded` (feature `embedded`): SQLite store and environment secrets, for `nexus serve`;
//! - `aws` (feature `aws`): DynamoDB store and Secrets Manager, for the Lambdas;
//! - `cached_secrets`: a TTL cache in front of any secret store.

pub mod cached_secrets;
pub mod http_client;
pub mod metrics;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "embedded")]
pub mod embedded;
