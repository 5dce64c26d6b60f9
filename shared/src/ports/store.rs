//! The inbox store: durable per-agent webhook items.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::ids::AgentId;
use crate::domain::item::{InboxItem, ItemId};

/// A failure of the storage backend itself. Never the client's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What happened to an insert.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertOutcome {
    /// The item is stored durably.
    Stored,
    /// An item with the same delivery id (same agent and source) is already stored:
    /// nothing new was written.
    Duplicate {
        id: ItemId,
        received_at: DateTime<Utc>,
    },
}

/// Which pending items to read.
#[derive(Debug, Clone)]
pub struct PendingQuery {
    /// Only this agent's items, or everyone's.
    pub agent: Option<AgentId>,
    /// Start after this item (exclusive); `None` starts at the oldest.
    pub after: Option<ItemId>,
    pub limit: usize,
}

/// A page of pending items, oldest first.
#[derive(Debug, Clone)]
pub struct PendingPage {
    pub items: Vec<InboxItem>,
    /// Whether more pending items follow the last one.
    pub more: bool,
}

/// What happened to one id of a mark-processed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkOutcome {
    Processed,
    AlreadyProcessed,
    /// No such item (or it was processed and has expired).
    Unknown,
}

/// Durable storage of inbox items.
///
/// Contracts every backend keeps (the behaviour suite checks them on each):
/// - `insert` returns only once the item is durable;
/// - the pending list reads an index of unprocessed items in `(row key, agent)` order, never
///   a scan of the whole store;
/// - marking is idempotent, and a processed item leaves the pending list at once.
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Stores `item`, unless it has a delivery id already seen for the same agent and source
    /// since its dedupe marker was written; a marker is honoured until `dedupe_until`.
    async fn insert(
        &self,
        item: InboxItem,
        now: DateTime<Utc>,
        dedupe_until: DateTime<Utc>,
    ) -> StoreResult<InsertOutcome>;

    /// Pending items in time order, per `query`.
    async fn pending(&self, query: &PendingQuery) -> StoreResult<PendingPage>;

    /// Marks items processed at `now`; they expire at `expires_at`. One outcome per id, in
    /// order.
    async fn mark_processed(
        &self,
        ids: &[ItemId],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Vec<MarkOutcome>>;
}
