//! The queue's table layout and the statements its writer jobs run.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::db::db_error;
use super::outbound_sql::query_docs;
use crate::domain::outbound::{Delivery, DeliveryStatus, OutboundDeliveryId};
use crate::ports::queue::{QueueError, QueueMessage};
use crate::ports::store::StoreResult;

/// Why the queue refused a call: SQS's limits, or a handle it never issued.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refused {
    #[error("a delay of {0:?} is over the maximum of 15 minutes")]
    Delay(Duration),
    #[error("a visibility timeout of {0:?} is over the maximum of 12 hours")]
    Visibility(Duration),
    #[error("{0:?} is not a receipt handle of this queue")]
    Handle(String),
}

/// The queue's table, a migration of the outbound database (`outbound_schema.rs`). Its
/// messages need none: they are the unsettled rows of `deliveries` (queue.rs).
pub(super) const SCHEMA: &str = r#"
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY,
    body             TEXT    NOT NULL,
    sent_at          INTEGER NOT NULL,
    receive_count    INTEGER NOT NULL,
    dead_lettered_at INTEGER NOT NULL
);
"#;

/// Milliseconds as a duration; a negative count is none.
pub(super) fn millis(value: i64) -> Duration {
    Duration::from_millis(u64::try_from(value).unwrap_or(0))
}

/// A duration as stored: whole milliseconds.
pub(super) fn as_millis(value: Duration) -> i64 {
    i64::try_from(value.as_millis()).unwrap_or(i64::MAX)
}

/// A stored instant (Unix milliseconds) as a time.
pub(super) fn time(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

/// A receipt handle: the message's number and which receive it came from, so a consumer
/// whose visibility timed out cannot move the message under the consumer that holds it now.
pub(super) fn handle(id: u64, receive_count: u32) -> String {
    format!("{id}.{receive_count}")
}

/// The message id and receive count a [`handle`] names.
pub(super) fn parse_handle(value: &str) -> Result<(u64, u32), QueueError> {
    value
        .split_once('.')
        .and_then(|(id, count)| Some((id.parse().ok()?, count.parse().ok()?)))
        .ok_or_else(|| QueueError::new(Refused::Handle(value.to_owned())))
}

/// Adds a message to the dead-letter table.
pub(super) fn insert_dead_letter(
    tx: &Connection,
    message: &QueueMessage,
    sent_at: i64,
    receive_count: u32,
    now: i64,
) -> StoreResult<()> {
    // Ids and tags only: serializing to memory cannot fail.
    let body = serde_json::to_string(message).expect("a queue message always serializes");
    tx.prepare_cached(
        "INSERT INTO dead_letters (body, sent_at, receive_count, dead_lettered_at)
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut insert| insert.execute(params![body, sent_at, receive_count, now]))
    .map_err(db_error)?;
    Ok(())
}

/// A delivery waiting for an attempt, as the queue loads it on opening.
pub(super) struct Unsettled {
    pub delivery_id: OutboundDeliveryId,
    /// When it was created, and when its next attempt is due, in Unix milliseconds.
    pub created_at: i64,
    pub due_at: i64,
}

/// Every delivery waiting for an attempt: pending or retrying.
pub(super) fn unsettled(conn: &Connection) -> StoreResult<Vec<Unsettled>> {
    let mut found = Vec::new();
    for status in [DeliveryStatus::Pending, DeliveryStatus::Retrying] {
        let deliveries: Vec<Delivery> = query_docs(
            conn,
            "SELECT doc FROM deliveries INDEXED BY deliveries_by_status WHERE status = ?1",
            [status.as_str()],
        )?;
        found.extend(deliveries.into_iter().map(|delivery| {
            let created_at = delivery.created_at.timestamp_millis();
            Unsettled {
                due_at: delivery
                    .next_attempt_at
                    .map_or(created_at, |at| at.timestamp_millis()),
                created_at,
                delivery_id: delivery.id,
            }
        }));
    }
    Ok(found)
}
