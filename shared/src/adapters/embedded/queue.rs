//! The delivery queue of `nexus serve`, with SQS's semantics: delays, visibility timeouts,
//! receive counts and redrive to a dead-letter table after `max_receive_count` receives.
//!
//! Its messages are kept durable by the rows they name rather than rows of their own:
//! every message is a `deliver.v1` for a delivery the outbound store (the same database)
//! holds as pending or retrying, with the time of its next attempt, and publishing and
//! manual retries store the delivery before they send its message. So a send, a receive,
//! a `retry_in` and a delete only change the in-memory [`Schedule`], and opening the queue
//! rebuilds the schedule from those rows. What a crash loses is leases and receive counts:
//! messages in flight become visible again at once, which is at-least-once, as on SQS; the
//! deliver step finds a delivery already settled and does not send it again. Only the
//! dead-letter table is written.
//!
//! A consumer parks in [`SqliteQueue::wait_for_work`], which a send wakes at once and which
//! otherwise returns when the earliest hidden message becomes visible: no polling interval
//! adds latency.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::db::{db_error, Database};
use super::outbound::SqliteOutbound;
use super::queue_sql::{
    as_millis, handle, insert_dead_letter, millis, parse_handle, time, unsettled, Refused,
    Unsettled,
};
use crate::ports::queue::{DeliveryQueue, QueueError, QueueMessage, Received};
use crate::ports::store::StoreResult;
use crate::ports::Clock;

/// Longest delay of a send, as on SQS.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Longest visibility timeout, as on SQS.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

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

/// The local delivery queue. Cheap to share behind an `Arc`.
pub struct SqliteQueue {
    db: Arc<Database>,
    clock: Arc<dyn Clock>,
    max_receive_count: u32,
    schedule: Mutex<Schedule>,
    /// Woken on every send and `retry_in`.
    work: Notify,
    /// Consumers parked in `wait_for_work`, for tests to know a waiter is listening.
    parked: AtomicUsize,
}

/// A queued message as the schedule holds it.
#[derive(Debug)]
struct Entry {
    message: QueueMessage,
    /// Unix milliseconds: when it was sent, and from when it may be received (again).
    sent_at: i64,
    visible_at: i64,
    receive_count: u32,
    /// Received and neither retried nor settled since; it is visible again at
    /// `visible_at`, when its visibility timeout runs out.
    in_flight: bool,
}

/// Every queued message, by number and by the time it is next visible.
#[derive(Debug, Default)]
struct Schedule {
    messages: HashMap<u64, Entry>,
    /// `(visible_at, number)` of every message, earliest first.
    by_time: BTreeSet<(i64, u64)>,
    /// The number of the next message sent: never reused, so a stale handle cannot name a
    /// newer message.
    next: u64,
}

impl Schedule {
    fn push(&mut self, message: QueueMessage, sent_at: i64, visible_at: i64) {
        let number = self.next;
        self.next += 1;
        self.by_time.insert((visible_at, number));
        let entry = Entry {
            message,
            sent_at,
            visible_at,
            receive_count: 0,
            in_flight: false,
        };
        self.messages.insert(number, entry);
    }

    fn remove(&mut self, number: u64) -> Option<Entry> {
        let entry = self.messages.remove(&number)?;
        self.by_time.remove(&(entry.visible_at, number));
        Some(entry)
    }

    /// Moves message `number` to `visible_at`; returns its entry.
    fn reschedule(&mut self, number: u64, visible_at: i64) -> Option<&mut Entry> {
        let entry = self.messages.get_mut(&number)?;
        self.by_time.remove(&(entry.visible_at, number));
        self.by_time.insert((visible_at, number));
        entry.visible_at = visible_at;
        Some(entry)
    }

    /// The number of the earliest message visible at `now`.
    fn first_visible(&self, now: i64) -> Option<u64> {
        self.by_time
            .first()
            .filter(|(at, _)| *at <= now)
            .map(|&(_, number)| number)
    }
}

impl SqliteQueue {
    /// Opens the delivery queue over `outbound`'s database: every pending or retrying
    /// delivery is queued, visible when its next attempt is due. A message received more
    /// than `max_receive_count` times moves to the dead-letter table instead of being
    /// handed out again, as SQS's redrive policy does.
    pub async fn open(
        outbound: &SqliteOutbound,
        max_receive_count: u32,
        clock: Arc<dyn Clock>,
    ) -> StoreResult<Self> {
        let db = outbound.database();
        let mut schedule = Schedule::default();
        for Unsettled {
            delivery_id,
            created_at,
            due_at,
        } in db.read(unsettled).await?
        {
            schedule.push(QueueMessage::Deliver { delivery_id }, created_at, due_at);
        }
        Ok(Self {
            db,
            clock,
            max_receive_count,
            schedule: Mutex::new(schedule),
            work: Notify::new(),
            parked: AtomicUsize::new(0),
        })
    }

    /// Enqueues every message, each visible after `delay`.
    fn send_all(&self, messages: &[QueueMessage], delay: Duration) -> Result<(), QueueError> {
        if delay > MAX_DELAY {
            return Err(QueueError::new(Refused::Delay(delay)));
        }
        let now = self.now();
        let visible_at = now + as_millis(delay);
        {
            let mut schedule = self.schedule();
            for message in messages {
                schedule.push(message.clone(), now, visible_at);
            }
        }
        self.work.notify_waiters();
        Ok(())
    }

    /// Waits until there may be work: returns at once when a message is visible, as soon
    /// as a send or `retry_in` happens, when the earliest hidden message becomes visible,
    /// or after `max_wait`, whichever comes first. A consumer loop calls it between
    /// receives that came back empty.
    pub async fn wait_for_work(&self, max_wait: Duration) {
        // Created before the schedule is read, so a send from here on is not missed.
        let sent = self.work.notified();
        let now = self.now();
        let earliest = self.schedule().by_time.first().map(|&(at, _)| at);
        let wait = match earliest {
            Some(at) if at <= now => return,
            Some(at) => max_wait.min(millis(at - now)),
            None => max_wait,
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

    fn now(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        self.schedule.lock().expect("queue schedule lock poisoned")
    }

    /// Writes messages taken off the schedule to the dead-letter table; if that fails, they
    /// go back on the schedule, visible at once.
    async fn dead_letter_all(&self, moved: Vec<Entry>) -> Result<(), QueueError> {
        if moved.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let rows: Vec<(QueueMessage, i64, u32)> = moved
            .iter()
            .map(|entry| (entry.message.clone(), entry.sent_at, entry.receive_count))
            .collect();
        let written = self
            .db
            .write(move |tx| {
                for (message, sent_at, count) in &rows {
                    insert_dead_letter(tx, message, *sent_at, *count, now)?;
                }
                Ok(())
            })
            .await;
        if let Err(error) = written {
            let mut schedule = self.schedule();
            for entry in moved {
                schedule.push(entry.message, entry.sent_at, now);
            }
            return Err(QueueError::new(error));
        }
        Ok(())
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
        self.send_all(std::slice::from_ref(message), delay)
    }

    async fn send_batch(
        &self,
        messages: &[QueueMessage],
        delay: Duration,
    ) -> Result<(), QueueError> {
        self.send_all(messages, delay)
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        if visibility > MAX_VISIBILITY {
            return Err(QueueError::new(Refused::Visibility(visibility)));
        }
        let now = self.now();
        // At least a millisecond, so a message taken here is not visible again within
        // this same receive.
        let hidden_until = now + as_millis(visibility).max(1);
        let mut received = Vec::new();
        let mut redriven = Vec::new();
        {
            let mut schedule = self.schedule();
            while received.len() < max {
                let Some(number) = schedule.first_visible(now) else {
                    break;
                };
                let count = schedule.messages[&number].receive_count;
                if count >= self.max_receive_count {
                    // Redrive, as SQS does: the receive that would exceed the limit moves it.
                    tracing::warn!(
                        message = number,
                        receive_count = count,
                        "queue message dead-lettered"
                    );
                    redriven.extend(schedule.remove(number));
                    continue;
                }
                let entry = schedule
                    .reschedule(number, hidden_until)
                    .expect("the message is scheduled");
                entry.receive_count += 1;
                entry.in_flight = true;
                received.push(Received {
                    message: entry.message.clone(),
                    handle: handle(number, entry.receive_count),
                    receive_count: entry.receive_count,
                });
            }
        }
        self.dead_letter_all(redriven).await?;
        Ok(received)
    }

    /// A handle from an earlier receive (its visibility ran out and the message was
    /// received again) changes nothing: the message belongs to its latest receiver.
    async fn retry_in(&self, handle: &str, delay: Duration) -> Result<(), QueueError> {
        if delay > MAX_VISIBILITY {
            return Err(QueueError::new(Refused::Visibility(delay)));
        }
        let (number, count) = parse_handle(handle)?;
        let visible_at = self.now() + as_millis(delay);
        {
            let mut schedule = self.schedule();
            match schedule.messages.get(&number) {
                Some(entry) if entry.receive_count == count => {}
                _ => return Ok(()),
            }
            let entry = schedule
                .reschedule(number, visible_at)
                .expect("the message is scheduled");
            entry.in_flight = false;
        }
        self.work.notify_waiters();
        Ok(())
    }

    async fn delete(&self, handle: &str) -> Result<(), QueueError> {
        let (number, _) = parse_handle(handle)?;
        self.schedule().remove(number);
        Ok(())
    }

    async fn dead_letter(&self, received: &Received) -> Result<(), QueueError> {
        let (number, _) = parse_handle(&received.handle)?;
        let entry = self.schedule().remove(number);
        match entry {
            Some(entry) => self.dead_letter_all(vec![entry]).await,
            // Not queued any more (settled through another handle): nothing to move.
            None => Ok(()),
        }
    }

    /// Visible and delayed messages; like SQS's figures, not those in flight.
    async fn approximate_size(&self) -> Result<u64, QueueError> {
        let now = self.now();
        let schedule = self.schedule();
        let waiting = schedule
            .messages
            .values()
            .filter(|entry| !entry.in_flight || entry.visible_at <= now)
            .count();
        Ok(waiting as u64)
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
