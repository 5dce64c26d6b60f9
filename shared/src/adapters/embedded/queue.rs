//! The delivery queue on SQLite, with SQS's semantics: delays, visibility timeouts,
//! receive counts and redrive to a dead-letter table after `max_receive_count` receives.
//!
//! Every change runs in the group-commit writer (`writer.rs`), one job at a time, so two
//! receivers can never take the same message. A consumer parks in
//! [`SqliteQueue::wait_for_work`], which a send wakes at once and which otherwise returns
//! when the earliest hidden message becomes visible: no polling interval adds latency.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use tokio::sync::Notify;

use super::db::{db_error, Database};
use super::queue_sql::{
    as_millis, millis, move_to_dead_letters, parse_handle, receive, time, Refused, MIGRATIONS,
};
use crate::ports::queue::{DeliveryQueue, QueueError, QueueMessage, Received};
use crate::ports::store::StoreResult;
use crate::ports::Clock;

/// Longest delay of a send, as on SQS.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Longest visibility timeout, as on SQS.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
/// Largest message body, as on SQS.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A message in the dead-letter table.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The message as sent; `None` if its body is not a message this version understands.
    pub message: Option<QueueMessage>,
    pub body: String,
    /// How many times it was received before it was moved.
    pub receive_count: u32,
    pub sent_at: DateTime<Utc>,
    pub dead_lettered_at: DateTime<Utc>,
}

/// The SQLite delivery queue. Cheap to share behind an `Arc`.
pub struct SqliteQueue {
    db: Database,
    clock: Arc<dyn Clock>,
    max_receive_count: u32,
    /// Woken on every send and `retry_in`.
    work: Notify,
    /// Consumers parked in `wait_for_work`, for tests to know a waiter is listening.
    parked: AtomicUsize,
}

impl SqliteQueue {
    /// Opens (creating and migrating if needed) the queue at `path`. A message received
    /// more than `max_receive_count` times moves to the dead-letter table instead of being
    /// handed out again, as SQS's redrive policy does.
    pub fn open(
        path: impl AsRef<Path>,
        max_receive_count: u32,
        clock: Arc<dyn Clock>,
    ) -> StoreResult<Self> {
        Ok(Self {
            db: Database::open(path.as_ref(), &MIGRATIONS, "sqlite-queue")?,
            clock,
            max_receive_count,
            work: Notify::new(),
            parked: AtomicUsize::new(0),
        })
    }

    /// Waits until there may be work: returns at once when a message is visible, as soon
    /// as a send or `retry_in` happens, when the earliest hidden message becomes visible,
    /// or after `max_wait`, whichever comes first. A consumer loop calls it between
    /// receives that came back empty.
    pub async fn wait_for_work(&self, max_wait: Duration) {
        // Created before the table is read, so a send from here on is not missed.
        let sent = self.work.notified();
        let now = self.clock.now().timestamp_millis();
        let earliest = self
            .db
            .read(|conn| {
                conn.query_row("SELECT min(visible_at) FROM messages", [], |row| {
                    row.get::<_, Option<i64>>(0)
                })
                .map_err(db_error)
            })
            .await;
        let wait = match earliest {
            Ok(Some(at)) if at <= now => return,
            Ok(Some(at)) => max_wait.min(millis(at - now)),
            Ok(None) => max_wait,
            Err(error) => {
                tracing::warn!(error = %error, "could not read when the next message is due");
                max_wait
            }
        };
        let _parked = Parked::new(&self.parked);
        tokio::select! {
            () = sent => {}
            () = tokio::time::sleep(wait) => {}
        }
    }

    /// How many consumers are parked in [`wait_for_work`](Self::wait_for_work) now.
    pub fn parked_consumers(&self) -> usize {
        self.parked.load(Ordering::SeqCst)
    }

    /// Every dead-lettered message, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        self.db
            .read(|conn| {
                let mut statement = conn
                    .prepare(
                        "SELECT body, receive_count, sent_at, dead_lettered_at
                         FROM dead_letters ORDER BY id",
                    )
                    .map_err(db_error)?;
                let rows = statement
                    .query_map([], |row| {
                        let body: String = row.get(0)?;
                        Ok(DeadLetter {
                            message: serde_json::from_str(&body).ok(),
                            body,
                            receive_count: row.get(1)?,
                            sent_at: time(row.get(2)?),
                            dead_lettered_at: time(row.get(3)?),
                        })
                    })
                    .map_err(db_error)?;
                rows.collect::<Result<_, _>>().map_err(db_error)
            })
            .await
            .map_err(QueueError::new)
    }

    async fn write<T, F>(&self, mut work: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnMut(&Connection, i64) -> StoreResult<T> + Send + 'static,
    {
        let clock = self.clock.clone();
        // The time is read in the writer, when the job runs, not when it was queued.
        self.db
            .write(move |tx| work(tx, clock.now().timestamp_millis()))
            .await
            .map_err(QueueError::new)
    }
}

/// Counts a consumer as parked until it stops waiting, also when its wait is cancelled.
struct Parked<'a>(&'a AtomicUsize);

impl<'a> Parked<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl DeliveryQueue for SqliteQueue {
    async fn send(&self, message: &QueueMessage, delay: Duration) -> Result<(), QueueError> {
        if delay > MAX_DELAY {
            return Err(QueueError::new(Refused::Delay(delay)));
        }
        // Ids and tags only: serializing to memory cannot fail.
        let body = serde_json::to_string(message).expect("a queue message always serializes");
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::new(Refused::TooLarge(body.len())));
        }
        let delay = as_millis(delay);
        self.write(move |tx, now| {
            tx.prepare_cached(
                "INSERT INTO messages (body, sent_at, visible_at) VALUES (?1, ?2, ?3)",
            )
            .map_err(db_error)?
            .execute(params![body, now, now + delay])
            .map_err(db_error)?;
            Ok(())
        })
        .await?;
        self.work.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        if visibility > MAX_VISIBILITY {
            return Err(QueueError::new(Refused::Visibility(visibility)));
        }
        if max == 0 {
            return Ok(Vec::new());
        }
        let visibility = as_millis(visibility);
        let max_receive_count = self.max_receive_count;
        self.write(move |tx, now| receive(tx, max, now, now + visibility, max_receive_count))
            .await
    }

    /// A handle from an earlier receive (its visibility ran out and the message was
    /// received again) changes nothing: the message belongs to its latest receiver.
    async fn retry_in(&self, handle: &str, delay: Duration) -> Result<(), QueueError> {
        if delay > MAX_VISIBILITY {
            return Err(QueueError::new(Refused::Visibility(delay)));
        }
        let (id, count) = parse_handle(handle)?;
        let delay = as_millis(delay);
        self.write(move |tx, now| {
            tx.prepare_cached(
                "UPDATE messages SET visible_at = ?3 WHERE id = ?1 AND receive_count = ?2",
            )
            .map_err(db_error)?
            .execute(params![id, count, now + delay])
            .map_err(db_error)?;
            Ok(())
        })
        .await?;
        self.work.notify_waiters();
        Ok(())
    }

    async fn delete(&self, handle: &str) -> Result<(), QueueError> {
        let (id, _) = parse_handle(handle)?;
        self.write(move |tx, _| {
            tx.prepare_cached("DELETE FROM messages WHERE id = ?1")
                .map_err(db_error)?
                .execute([id])
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn dead_letter(&self, received: &Received) -> Result<(), QueueError> {
        let (id, _) = parse_handle(&received.handle)?;
        self.write(move |tx, now| move_to_dead_letters(tx, id, now))
            .await
    }

    /// Visible and delayed messages; like SQS's figures, not those in flight.
    async fn approximate_size(&self) -> Result<u64, QueueError> {
        let now = self.clock.now().timestamp_millis();
        self.db
            .read(move |conn| {
                conn.query_row(
                    "SELECT count(*) FROM messages WHERE visible_at <= ?1 OR receive_count = 0",
                    [now],
                    |row| row.get::<_, i64>(0),
                )
                .map(|count| u64::try_from(count).unwrap_or(0))
                .map_err(db_error)
            })
            .await
            .map_err(QueueError::new)
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
