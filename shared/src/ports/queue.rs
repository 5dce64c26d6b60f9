//! The delivery queue: SQS on AWS, SQLite tables with the same semantics locally.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::outbound::OutboundDeliveryId;

/// A queue message: ids only, the payload lives in the store (SQS messages are ≤ 256 KiB).
/// Tagged and versioned, so a new kind of message can be added without breaking old ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum QueueMessage {
    #[serde(rename = "deliver.v1")]
    Deliver { delivery_id: OutboundDeliveryId },
}

/// A failure of the queue itself.
#[derive(Debug, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl QueueError {
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

/// A received message and the handle to settle it with.
#[derive(Debug, Clone)]
pub struct Received {
    pub message: QueueMessage,
    /// SQS's receipt handle, or the local queue's row id.
    pub handle: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
}

/// Sending deliveries to the queue and settling received ones.
///
/// Semantics both backends share: a received message is invisible for `visibility`, then
/// comes back unless deleted; `retry_in` makes it visible again after a delay;
/// `dead_letter` moves it to the dead-letter queue.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Enqueues, visible after `delay` (at most 15 minutes, as on SQS).
    async fn send(&self, message: &QueueMessage, delay: Duration) -> Result<(), QueueError>;
    /// Enqueues several messages, each visible after `delay`: as one commit locally, in
    /// batches of ten on SQS. An error may leave some of them sent.
    async fn send_batch(
        &self,
        messages: &[QueueMessage],
        delay: Duration,
    ) -> Result<(), QueueError>;
    /// Up to `max` visible messages, each hidden for `visibility`.
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Received>, QueueError>;
    /// Makes a received message visible again after `delay` (at most 12 hours).
    async fn retry_in(&self, handle: &str, delay: Duration) -> Result<(), QueueError>;
    /// Removes a received message for good.
    async fn delete(&self, handle: &str) -> Result<(), QueueError>;
    /// Moves a received message to the dead-letter queue.
    async fn dead_letter(&self, received: &Received) -> Result<(), QueueError>;
    /// Messages waiting (visible or delayed), for the queue-size metric.
    async fn approximate_size(&self) -> Result<u64, QueueError>;
    /// How late a delayed message may come back: one asked back after `d` reaches a
    /// consumer within `[d, d + resolution]`. Exact (zero) unless a backend says otherwise.
    fn delay_resolution(&self) -> Duration {
        Duration::ZERO
    }
}
