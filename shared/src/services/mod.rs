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
/// One reference count to clone, however many ports: the router clones it per request.
#[derive(Clone)]
pub struct AppState(Arc<Wiring>);

impl AppState {
    pub fn new(wiring: Wiring) -> Self {
        Self(Arc::new(wiring))
    }
}

impl std::ops::Deref for AppState {
    type Target = Wiring;

    fn deref(&self) -> &Wiring {
        &self.0
    }
}

/// The ports of one host, wired to its backend, and its configuration.
pub struct Wiring {
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
