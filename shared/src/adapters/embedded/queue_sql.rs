//! The queue's table layout and the statements its writer jobs run.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::db::db_error;
use crate::ports::queue::{QueueError, QueueMessage};
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

/// The queue's tables, a migration of the outbound database (`outbound_schema.rs`).
pub(super) const SCHEMA: &str = r#"
-- AUTOINCREMENT: a message id is never reused, so a stale handle cannot name a new message.
-- `visible_at` and `receive_count` are as of the last send or `retry_in`: leases are kept
-- in memory only (queue.rs).
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    body          TEXT    NOT NULL,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY,
    message_id       INTEGER NOT NULL,
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

/// A receipt handle: the message id and which receive it came from, so a consumer whose
/// visibility timed out cannot move the message under the consumer that holds it now.
pub(super) fn handle(id: i64, receive_count: u32) -> String {
    format!("{id}.{receive_count}")
}

/// The message id and receive count a [`handle`] names.
pub(super) fn parse_handle(value: &str) -> Result<(i64, u32), QueueError> {
    value
        .split_once('.')
        .and_then(|(id, count)| Some((id.parse().ok()?, count.parse().ok()?)))
        .ok_or_else(|| QueueError::new(Refused::Handle(value.to_owned())))
}

/// Moves message `id` to the dead-letter table, if it is still in the queue, with the
/// receive count the schedule kept for it.
pub(super) fn move_to_dead_letters(
    tx: &Connection,
    id: i64,
    receive_count: u32,
    now: i64,
) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO dead_letters (message_id, body, sent_at, receive_count, dead_lettered_at)
         SELECT id, body, sent_at, ?2, ?3 FROM messages WHERE id = ?1",
    )
    .and_then(|mut insert| insert.execute(params![id, receive_count, now]))
    .and_then(|_| {
        tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?
            .execute([id])
    })
    .map_err(db_error)?;
    Ok(())
}

/// A queued message as stored.
pub(super) struct Stored {
    pub id: i64,
    pub message: QueueMessage,
    pub visible_at: i64,
    pub receive_count: u32,
}

/// What a queue holds when it opens.
pub(super) struct Loaded {
    pub stored: Vec<Stored>,
    /// Ids and receive counts of messages whose body this version cannot read.
    pub unreadable: Vec<(i64, u32)>,
}

/// Every queued message.
pub(super) fn load(conn: &Connection) -> StoreResult<Loaded> {
    let mut statement = conn
        .prepare("SELECT id, body, visible_at, receive_count FROM messages")
        .map_err(db_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, u32>(3)?,
            ))
        })
        .map_err(db_error)?;
    let mut stored = Vec::new();
    let mut unreadable = Vec::new();
    for row in rows {
        let (id, body, visible_at, receive_count) = row.map_err(db_error)?;
        match serde_json::from_str::<QueueMessage>(&body) {
            Ok(message) => stored.push(Stored {
                id,
                message,
                visible_at,
                receive_count,
            }),
            Err(_) => unreadable.push((id, receive_count)),
        }
    }
    Ok(Loaded { stored, unreadable })
}
