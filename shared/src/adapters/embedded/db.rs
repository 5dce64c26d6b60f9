//! One SQLite database file as the embedded stores use it: migrated on open, written by a
//! group-commit [`Writer`] thread, read through a pool of connections beside it (WAL).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;

use super::writer::Writer;
use crate::ports::store::StoreResult;
use crate::ports::StoreError;

/// How much of a database file connections map into memory.
const MMAP_BYTES: i64 = 1 << 30;
/// WAL pages after which a commit checkpoints (copies the WAL back into the database).
const CHECKPOINT_PAGES: i64 = 8192;
/// Page cache of the writing connection, in KiB.
const WRITER_CACHE_KIB: i64 = 8 * 1024;

/// A migrated database: its writer thread and its readers. Cheap to share behind an `Arc`.
pub(super) struct Database {
    writer: Writer,
    readers: Arc<ReaderPool>,
}

impl Database {
    /// Opens (creating if needed) the database at `path`, applies the `migrations` it has
    /// not seen yet (counted in `user_version`) and starts its writer thread `name`.
    pub(super) fn open(path: &Path, migrations: &[&str], name: &str) -> StoreResult<Self> {
        let mut conn = open_connection(path)?;
        // The writer touches the same index pages commit after commit; SQLite's default
        // 2 MiB cache spills and re-reads them once a table outgrows it.
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .map_err(db_error)?;
        // Checkpoint less often than every 1000 pages: pages rewritten by many commits
        // (indexes, counters) are copied back to the database once per checkpoint.
        conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)
            .map_err(db_error)?;
        migrate(&mut conn, migrations)?;
        Ok(Self {
            writer: Writer::spawn(name, conn)?,
            readers: Arc::new(ReaderPool {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `work` in the writer's next group commit; see [`Writer::write`].
    pub(super) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.writer.write(work).await
    }

    /// Runs `work` on a reader connection, off the async runtime.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(work))
            .await
            .map_err(StoreError::unavailable)?
    }
}

impl Database {
    /// Runs a point lookup (rows by key, microseconds of work) on a reader connection right
    /// here: cheaper than handing it to the blocking pool and back, which on a busy
    /// delivery path costs more than the lookup.
    pub(super) fn read_point<T>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.readers.with(work)
    }
}

pub(super) fn db_error(error: rusqlite::Error) -> StoreError {
    StoreError::unavailable(error)
}

/// A timestamp as stored: RFC 3339, UTC, microseconds; it sorts as text.
pub(super) fn text_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(super) fn parse_time(value: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {value:?}: {e}")))
}

fn open_connection(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(db_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db_error)?;
    // WAL lets readers run beside the writer; FULL fsyncs the WAL on every commit, which
    // is what makes an answer durable across power loss, not only across a crash.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .map_err(db_error)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_error)?;
    // A reader's page cache is dropped whenever another connection has committed since its
    // last read, which under steady writes is every time: reading the file through a
    // memory map instead of read(2) makes refilling it cheap.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)
        .map_err(db_error)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, migrations: &[&str]) -> StoreResult<()> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_error)?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > migrations.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this nexus ({})",
            migrations.len()
        )));
    }
    for (index, sql) in migrations.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(db_error)?;
        tx.execute_batch(sql).map_err(db_error)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
    }
    Ok(())
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn with<T>(&self, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let pooled = self.idle.lock().expect("reader pool lock poisoned").pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path)?,
        };
        let result = work(&conn);
        self.idle
            .lock()
            .expect("reader pool lock poisoned")
            .push(conn);
        result
    }
}
