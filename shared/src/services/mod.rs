//! Services: the use cases, written against ports only. Nothing here knows which host
//! (Lambda or `nexus serve`) or which backend it runs on.

pub mod auth;
pub mod consume;
pub mod error;
pub mod ingest;
pub mod outbound;

use std::sync::Arc;

use crate::config::Config;
use crate::ports::{
    Clock, DeliveryQueue, HttpClient, InboxStore, Metrics, OutboundStore, SecretStore,
};

pub use error::{ServiceError, ServiceResult};

/// Everything a request needs: the ports, wired to one backend, and the configuration.
/// Cheap to clone; shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn InboxStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// Subscriptions, events and deliveries.
    pub outbound: Arc<dyn OutboundStore>,
    pub queue: Arc<dyn DeliveryQueue>,
    pub http: Arc<dyn HttpClient>,
    pub metrics: Arc<dyn Metrics>,
}
