//! The queue's table layout and the statements its writer jobs run.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::db::db_error;
use crate::ports::queue::{QueueError, QueueMessage, Received};
use crate::ports::store::StoreResult;

/// Why the queue refused a call: SQS's limits, or a handle it never issued.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refused {
    #[error("a delay of {0:?} is over the maximum of 15 minutes")]
    Delay(Duration),
    #[error("a visibility timeout of {0:?} is over the maximum of 12 hours")]
    Visibility(Duration),
    #[error("a message of {0} bytes is over the maximum of 256 KiB")]
    TooLarge(usize),
    #[error("{0:?} is not a receipt handle of this queue")]
    Handle(String),
}

pub(super) const MIGRATIONS: [&str; 1] = [r#"
-- AUTOINCREMENT: a message id is never reused, so a stale handle cannot name a new message.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    body          TEXT    NOT NULL,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_visibility ON messages (visible_at, id);
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY,
    message_id       INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    sent_at          INTEGER NOT NULL,
    receive_count    INTEGER NOT NULL,
    dead_lettered_at INTEGER NOT NULL
);
"#];

/// Visible messages, oldest due first; `INDEXED BY` so it can never become a scan.
const VISIBLE: &str = "SELECT id, body, receive_count FROM messages \
     INDEXED BY messages_by_visibility WHERE visible_at <= ?1 ORDER BY visible_at, id LIMIT ?2";

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

/// A receipt handle: the message id and which receive it came from, so a consumer whose
/// visibility timed out cannot move the message under the consumer that holds it now.
fn handle(id: i64, receive_count: u32) -> String {
    format!("{id}.{receive_count}")
}

/// The message id and receive count a [`handle`] names.
pub(super) fn parse_handle(value: &str) -> Result<(i64, u32), QueueError> {
    value
        .split_once('.')
        .and_then(|(id, count)| Some((id.parse().ok()?, count.parse().ok()?)))
        .ok_or_else(|| QueueError::new(Refused::Handle(value.to_owned())))
}

/// Moves message `id` to the dead-letter table, if it is still in the queue.
pub(super) fn move_to_dead_letters(tx: &Connection, id: i64, now: i64) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO dead_letters (message_id, body, sent_at, receive_count, dead_lettered_at)
         SELECT id, body, sent_at, receive_count, ?2 FROM messages WHERE id = ?1",
    )
    .and_then(|mut insert| insert.execute(params![id, now]))
    .and_then(|_| tx.execute("DELETE FROM messages WHERE id = ?1", [id]))
    .map_err(db_error)?;
    Ok(())
}

/// Hands out up to `max` visible messages, each hidden until `hidden_until`.
pub(super) fn receive(
    tx: &Connection,
    max: usize,
    now: i64,
    hidden_until: i64,
    max_receive_count: u32,
) -> StoreResult<Vec<Received>> {
    let due: Vec<(i64, String, u32)> = tx
        .prepare_cached(VISIBLE)
        .map_err(db_error)?
        .query_map(params![now, max as i64], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(db_error)?
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    let mut received = Vec::with_capacity(due.len());
    for (id, body, count) in due {
        if count >= max_receive_count {
            // Redrive, as SQS does: the receive that would exceed the limit moves it instead.
            tracing::warn!(
                message_id = id,
                receive_count = count,
                "queue message dead-lettered"
            );
            move_to_dead_letters(tx, id, now)?;
            continue;
        }
        let Ok(message) = serde_json::from_str::<QueueMessage>(&body) else {
            // No receive will ever understand it: set it aside at once.
            tracing::warn!(message_id = id, "unreadable queue message dead-lettered");
            move_to_dead_letters(tx, id, now)?;
            continue;
        };
        let count = count + 1;
        tx.prepare_cached("UPDATE messages SET visible_at = ?2, receive_count = ?3 WHERE id = ?1")
            .map_err(db_error)?
            .execute(params![id, hidden_until, count])
            .map_err(db_error)?;
        received.push(Received {
            message,
            handle: handle(id, count),
            receive_count: count,
        });
    }
    Ok(received)
}
