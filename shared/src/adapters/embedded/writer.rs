//! The group-commit writer: one thread owns the only writing connection of a database.
//!
//! Callers send it work (a closure over the connection) and wait. The thread takes every
//! job waiting at that moment into one transaction and fsyncs once (WAL,
//! `synchronous=FULL`): each caller is answered only after the commit that holds its write,
//! so a burst of writes shares one fsync instead of paying one each. Because one thread
//! runs every write, writes are also serialized: a job's read-then-write is atomic.

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::db::db_error;
use crate::ports::store::StoreResult;
use crate::ports::StoreError;

/// Most jobs committed together.
const MAX_BATCH: usize = 512;

/// The handle to a writer thread; the thread stops when the last handle is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread `name` on `conn`.
    pub(super) fn spawn(name: &str, conn: Connection) -> StoreResult<Self> {
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || write_loop(conn, queue))
            .map_err(StoreError::unavailable)?;
        Ok(Self { jobs })
    }

    /// Runs `work` in the next group commit and answers once that commit is durable.
    ///
    /// `work` may run twice: if another job of its batch fails, the batch is rolled back
    /// and redone with a savepoint per job. It must therefore only touch the connection.
    pub(super) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let task = Task {
            work,
            outcome: None,
            reply,
        };
        self.jobs
            .send(Box::new(task))
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::unavailable(std::io::Error::other(
        "the SQLite writer thread has stopped",
    ))
}

/// A job with its type erased, so jobs of any result type share one channel and batch.
trait Job: Send {
    /// Runs the work and keeps its outcome; true when it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller: the kept outcome if its transaction committed, else why not.
    fn answer(self: Box<Self>, commit: Result<(), &str>);
}

struct Task<T, F> {
    work: F,
    outcome: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Task<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> StoreResult<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let outcome = (self.work)(conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn answer(self: Box<Self>, commit: Result<(), &str>) {
        let outcome = match (commit, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Err(message), _) => Err(StoreError::unavailable(std::io::Error::other(
                message.to_owned(),
            ))),
            (Ok(()), None) => unreachable!("every job of a committed batch has run"),
        };
        // A caller that gave up (its client went away) no longer listens: nothing to do.
        drop(self.reply.send(outcome));
    }
}

fn write_loop(mut conn: Connection, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = queue.blocking_recv() {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, &mut batch);
    }
}

/// Applies every job in one transaction, commits, and only then answers. Jobs rarely fail,
/// so the batch first runs without savepoints; if one job does fail, the batch is redone
/// with a savepoint per job, so that one failing job does not sink the others.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<Box<dyn Job>>) {
    let committed = run_batch(conn, batch, false).and_then(|all_ok| {
        if all_ok {
            Ok(true)
        } else {
            run_batch(conn, batch, true)
        }
    });
    match committed {
        Ok(_) => batch.drain(..).for_each(|job| job.answer(Ok(()))),
        Err(error) => {
            tracing::error!(error = %error, "SQLite commit failed");
            let message = error.to_string();
            batch.drain(..).for_each(|job| job.answer(Err(&message)));
        }
    }
}

/// Runs the batch in one transaction and says whether every job succeeded. Without
/// savepoints, the first failing job stops the run and nothing is committed; with them,
/// each job stands alone and the transaction commits whatever the jobs' outcomes.
fn run_batch(
    conn: &mut Connection,
    batch: &mut [Box<dyn Job>],
    isolate: bool,
) -> StoreResult<bool> {
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    for job in batch.iter_mut() {
        if isolate {
            let savepoint = tx.savepoint().map_err(db_error)?;
            if job.run(&savepoint) {
                savepoint.commit().map_err(db_error)?;
            }
        } else if !job.run(&tx) {
            // Dropping the transaction rolls it back.
            return Ok(false);
        }
    }
    tx.commit().map_err(db_error)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::mpsc as std_mpsc;

    use super::super::db::Database;
    use super::*;

    type Write<'a> = Pin<Box<dyn Future<Output = StoreResult<i32>> + 'a>>;

    #[tokio::test]
    async fn a_failing_job_rolls_back_alone_and_the_rest_of_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let schema = ["CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('taken');"];
        let db = Database::open(&dir.path().join("t.db"), &schema, "test-writer").unwrap();
        // Hold the writer in a job of its own while the jobs under test queue up behind
        // it, so that they are certain to share one batch.
        let (started, writer_held) = oneshot::channel();
        let (release, released) = std_mpsc::channel::<()>();
        let mut gate = Some((started, released));
        let gate = db.write(move |_| {
            if let Some((started, released)) = gate.take() {
                started.send(()).unwrap();
                released.recv().unwrap();
            }
            Ok(-1)
        });
        let mut gate: Write<'_> = Box::pin(gate);
        assert!(futures::poll!(gate.as_mut()).is_pending());
        writer_held.await.unwrap();

        let mut writes: Vec<Write<'_>> = (0..64)
            .map(|n| {
                Box::pin(db.write(move |tx| {
                    tx.execute("INSERT INTO t VALUES (?1)", [format!("k{n}")])
                        .map_err(db_error)?;
                    if n == 32 {
                        // Fails after a write of its own, which must not survive.
                        tx.execute("INSERT INTO t VALUES ('taken')", [])
                            .map_err(db_error)?;
                    }
                    Ok(n)
                })) as Write<'_>
            })
            .collect();
        for write in &mut writes {
            // The first poll hands the job to the writer.
            assert!(futures::poll!(write.as_mut()).is_pending());
        }
        release.send(()).unwrap();
        gate.await.unwrap();
        let outcomes = futures::future::join_all(writes).await;

        let failed: Vec<usize> = (0..64).filter(|&n| outcomes[n].is_err()).collect();
        assert_eq!(failed, [32]);
        let keys: Vec<String> = db
            .read(|conn| {
                let mut statement = conn.prepare("SELECT k FROM t").map_err(db_error)?;
                let keys = statement
                    .query_map([], |row| row.get(0))
                    .map_err(db_error)?;
                keys.collect::<Result<_, _>>().map_err(db_error)
            })
            .await
            .unwrap();
        assert_eq!(keys.len(), 64, "63 jobs and the row that was there");
        assert!(!keys.contains(&"k32".to_owned()));
    }
}
