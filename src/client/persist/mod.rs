//! Persistence across crashes: the session's QoS 1/2 state in an
//! append-only log per client id (see `log` for the files, `record` for
//! the format), so that the next process with the same client id and
//! directory resends what this one had accepted, in order, and does not
//! deliver an incoming QoS 2 message twice.
//!
//! **Appending.** Every change of the persisted state is one record,
//! appended by the session under its own lock ([`Store::append`]), so the
//! log's order is the order of the session's changes. Appending only
//! copies the record into a shared buffer and returns its ticket (a
//! sequence number); it never does I/O, so it is fine under a lock and on
//! a Tokio worker.
//!
//! **Group commit (flat combining).** Whoever appends to an idle store
//! starts a commit job on the runtime's blocking pool. The job takes the
//! whole buffer and writes it with one `write`, and goes on while more was
//! appended meanwhile; it ends when the buffer is empty, so an idle client
//! has no job and no thread. Callers that need a record on disk await
//! [`Store::commit`] of its ticket, which asks the job for an `fdatasync`:
//! the job's next batch is synced, and with it everything written before,
//! so the publishers waiting at that moment share one. Records nobody
//! waits for (a completion) are written without a sync of their own: a
//! process crash cannot lose them (the kernel has them), a power cut can,
//! which costs a resend. No Tokio worker ever blocks on the disk.
//!
//! **Compaction.** When the log would grow past four times what the live
//! state needs (and past [`COMPACT_MIN`]), the job writes a snapshot of
//! the live state instead, to a new file that replaces the log (see
//! `LogFile::rewrite`). A failed write (a full disk) leaves the log in
//! doubt: the tickets in that batch fail, and the next batch rewrites the
//! whole live state, which recovers once there is room again. The job does
//! not retry on its own: the next record appended starts the next try (a
//! disk that stays full would otherwise keep the job rewriting the state
//! in a loop).

mod log;
mod record;
mod state;

pub use self::log::Torn;
pub use record::{Outgoing, QueuedMessage, Record};
pub use state::State;

use self::log::LogFile;
use super::logging::{Level, Logger};
use super::Error;
use bytes::Bytes;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// The smallest log that is compacted.
pub const COMPACT_MIN: u64 = 1 << 20;

/// The store of one client.
pub struct Store {
    shared: Mutex<Shared>,
    /// Held by the commit job while it writes, and by `shutdown`.
    log: Mutex<Option<LogFile>>,
    progress: watch::Sender<Progress>,
    runtime: Handle,
    /// The log's path, for error texts.
    path: String,
    /// How many fdatasyncs the commit jobs made.
    syncs: AtomicU64,
    /// The client's diagnostic lines (persistence errors).
    logger: Arc<Logger>,
    /// The last number given to a queued publish (see `QueueSlot`).
    last_qseq: AtomicU64,
}

struct Shared {
    /// The state the appended records make (durable or not).
    live: State,
    /// Records appended and not yet taken by the commit job.
    buf: Vec<u8>,
    /// The buffer the job gave back, reused for the next batch.
    spare: Vec<u8>,
    /// The ticket of the last record appended.
    appended: u64,
    /// The highest ticket a caller of `commit` waits to see synced.
    wanted: u64,
    /// The highest ticket written and synced (as `Progress::durable`).
    synced: u64,
    /// The log's size after the last write.
    log_len: u64,
    /// A commit job runs.
    job: bool,
    /// The last write failed: the next one rewrites the whole state.
    broken: bool,
    /// The last ticket a failed write covered: its waiters were told.
    /// Until a record comes after it, the job does not try again (a full
    /// disk stays full: retrying at once would spin).
    failed: u64,
    closed: bool,
}

/// How far the commit job got. A ticket is on disk once `durable`
/// reaches it; it failed if `failed` reached it first.
#[derive(Debug, Clone, Default)]
struct Progress {
    durable: u64,
    failed: u64,
    error: Option<Arc<str>>,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The critical sections leave the data consistent even if a panic
    // (a bug) interrupted one; poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What opening a store found.
pub struct Opened {
    pub store: Arc<Store>,
    /// The state the log held (to load into the session).
    pub state: State,
    /// A torn or corrupt record that ended the replay (already logged).
    #[cfg_attr(not(test), allow(dead_code))] // for the tests' eyes
    pub torn: Option<Torn>,
}

impl Store {
    /// Opens and locks the log of `client_id` in `dir` (creating what is
    /// missing) and reads its state. The commit jobs run on `runtime`'s
    /// blocking pool. Blocks on file I/O. Fails when another process or
    /// client holds the lock, or the log is unreadable or not ours.
    pub fn open(
        dir: &Path,
        client_id: &str,
        runtime: Handle,
        logger: Arc<Logger>,
    ) -> Result<Opened, Error> {
        let (log, state, torn) = LogFile::open(dir, client_id).map_err(Error::Persistence)?;
        let path = log.path().display().to_string();
        if let Some(t) = &torn {
            logger.log(
                Level::Warning,
                format_args!(
                    "persistence: {path}: the record at offset {} is damaged ({}), as after a \
                 power cut during its write; it and the {} bytes after it were discarded",
                    t.offset, t.why, t.discarded
                ),
            );
        }
        let store = Store {
            shared: Mutex::new(Shared {
                live: state.clone(),
                buf: Vec::new(),
                spare: Vec::new(),
                appended: 0,
                wanted: 0,
                synced: 0,
                log_len: log.len(),
                job: false,
                broken: false,
                failed: 0,
                closed: false,
            }),
            log: Mutex::new(Some(log)),
            progress: watch::Sender::new(Progress::default()),
            runtime,
            path,
            syncs: AtomicU64::new(0),
            logger,
            last_qseq: AtomicU64::new(state.queued().last().map_or(0, |q| q.qseq)),
        };
        Ok(Opened {
            store: Arc::new(store),
            state,
            torn,
        })
    }

    /// Appends `r` and returns its ticket, for [`Store::commit`]. No I/O:
    /// a commit job (started if none runs) writes it soon. After
    /// `shutdown` nothing is appended, and a commit of the ticket fails.
    pub fn append(self: &Arc<Self>, r: Record) -> u64 {
        let mut s = lock(&self.shared);
        if s.closed {
            return u64::MAX;
        }
        record::encode(&r, &mut s.buf);
        s.live.apply(r);
        s.appended += 1;
        self.start_job(&mut s);
        s.appended
    }

    /// Starts a commit job unless one runs (or the store is closed).
    fn start_job(self: &Arc<Self>, s: &mut Shared) {
        if !s.job && !s.closed {
            s.job = true;
            let store = self.clone();
            self.runtime.spawn_blocking(move || store.run_job());
        }
    }

    /// The ticket of the last record appended (0 before any).
    pub fn last_ticket(&self) -> u64 {
        lock(&self.shared).appended
    }

    /// A new number for a publish in the offline queue.
    pub fn next_qseq(&self) -> u64 {
        self.last_qseq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records a QoS 1/2 publish queued as `qseq` while the client
    /// reconnects (`packet` encoded with a placeholder packet id).
    pub fn record_queued(self: &Arc<Self>, qseq: u64, qos: crate::packet::QoS, packet: Bytes) {
        let queued_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.append(Record::Queued(QueuedMessage {
            qseq,
            qos,
            queued_at_ms,
            packet,
        }));
    }

    /// The slot of the queued publish `qseq`, to record how it leaves
    /// the queue.
    pub fn slot(self: &Arc<Self>, qseq: u64) -> QueueSlot {
        QueueSlot {
            store: self.clone(),
            qseq,
        }
    }

    /// Waits until the record of `ticket` is on disk (fdatasync returned).
    /// `Err(Persistence)` when the write failed or the store was shut
    /// down first. Cancel-safe: the job does not depend on the waiter.
    pub async fn commit(self: &Arc<Self>, ticket: u64) -> Result<(), Error> {
        // Subscribed first: a sync that ends in between is seen.
        let mut rx = self.progress.subscribe();
        {
            let mut s = lock(&self.shared);
            if ticket > s.synced {
                s.wanted = s.wanted.max(ticket.min(s.appended));
                self.start_job(&mut s);
            }
        }
        let p = rx
            .wait_for(|p| p.durable >= ticket || p.failed >= ticket || p.closed)
            .await
            .map(|p| p.clone())
            .map_err(|_| Error::Internal("persistence store gone"))?;
        if p.durable >= ticket {
            return Ok(());
        }
        Err(Error::Persistence(match p.error {
            Some(e) if p.failed >= ticket => e.to_string(),
            _ => format!("{}: the store was closed before the write", self.path),
        }))
    }

    /// How many fdatasyncs the store has made: fewer than the records
    /// committed when publishers share them.
    #[cfg(test)]
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Makes the next appends fail as on a full disk (for the tests).
    #[cfg(test)]
    fn break_for_test(&self) {
        if let Some(l) = lock(&self.log).as_mut() {
            l.break_for_test();
        }
    }

    /// The commit job: writes batches until the buffer is empty and no
    /// sync is wanted.
    fn run_job(self: Arc<Self>) {
        while let Some(batch) = self.next_batch() {
            if batch.sync || batch.rewrite {
                self.syncs.fetch_add(1, Ordering::Relaxed);
            }
            let r = {
                let mut log = lock(&self.log);
                match log.as_mut() {
                    Some(l) if batch.rewrite => l.rewrite(&batch.bytes).map(|()| l.len()),
                    Some(l) => l.append(&batch.bytes, batch.sync).map(|()| l.len()),
                    None => Err(std::io::Error::other("closed")),
                }
            };
            self.finish(batch, r);
        }
    }

    /// Takes the next batch, or ends the job (under the same lock as
    /// `append` and `commit` look at `job`, so no record and no wish for
    /// a sync is left without a job).
    fn next_batch(&self) -> Option<Batch> {
        let mut s = lock(&self.shared);
        let sync = s.wanted > s.synced;
        // After a failure, only a new record is worth another try.
        let failed_last = s.broken && s.appended <= s.failed;
        if (s.buf.is_empty() && !sync) || s.closed || failed_last {
            s.job = false;
            return None;
        }
        let upto = s.appended;
        let grown = s.log_len + s.buf.len() as u64;
        let rewrite = s.broken || should_compact(grown, s.live.snapshot_len());
        if !rewrite {
            let spare = std::mem::take(&mut s.spare);
            let bytes = std::mem::replace(&mut s.buf, spare);
            return Some(Batch {
                bytes,
                upto,
                rewrite,
                sync,
            });
        }
        // The snapshot holds everything appended so far: the buffer's
        // records are in it. The state is cloned (payloads are shared,
        // not copied) so that encoding happens outside the lock.
        s.buf.clear();
        let live = s.live.clone();
        drop(s);
        let mut bytes = Vec::new();
        live.snapshot(&mut bytes);
        Some(Batch {
            bytes,
            upto,
            rewrite,
            sync: true,
        })
    }

    /// Records the outcome of a batch and wakes the waiters.
    fn finish(&self, mut batch: Batch, r: std::io::Result<u64>) {
        let error = {
            let mut s = lock(&self.shared);
            if !batch.rewrite && s.spare.is_empty() {
                batch.bytes.clear();
                s.spare = std::mem::take(&mut batch.bytes);
            }
            match &r {
                Ok(len) => {
                    s.log_len = *len;
                    s.broken = false;
                    if batch.sync {
                        s.synced = s.synced.max(batch.upto);
                    }
                    None
                }
                Err(e) => {
                    s.broken = true;
                    s.failed = s.failed.max(batch.upto);
                    Some(format!("{}: write failed: {e}", self.path))
                }
            }
        };
        match error {
            // A write without a sync makes nothing durable yet; the next
            // sync covers it (fdatasync flushes the whole file).
            None if !batch.sync => {}
            None => self
                .progress
                .send_modify(|p| p.durable = p.durable.max(batch.upto)),
            Some(e) => {
                self.logger
                    .log(Level::Error, format_args!("persistence: {e}"));
                self.progress.send_modify(|p| {
                    p.failed = p.failed.max(batch.upto);
                    p.error = Some(e.into());
                });
            }
        }
    }

    /// Writes what is still buffered and syncs (one fdatasync), then closes the
    /// log and releases the lock; later appends are ignored and commits
    /// fail. Blocks on the disk (and on a commit job's write in progress):
    /// for `close`, which runs outside the runtime's workers.
    pub fn shutdown(&self) {
        let (rest, upto, broken) = {
            let mut s = lock(&self.shared);
            if s.closed {
                return;
            }
            s.closed = true;
            (std::mem::take(&mut s.buf), s.appended, s.broken)
        };
        let mut log = lock(&self.log);
        if let Some(l) = log.as_mut() {
            let r = if broken {
                let mut all = Vec::new();
                lock(&self.shared).live.snapshot(&mut all);
                l.rewrite(&all)
            } else {
                l.append(&rest, true)
            };
            // Max: a job's last batch may report after this, lower.
            match r {
                Ok(()) => self
                    .progress
                    .send_modify(|p| p.durable = p.durable.max(upto)),
                Err(e) => self.logger.log(
                    Level::Error,
                    format_args!("persistence: {}: {e}", self.path),
                ),
            }
        }
        *log = None;
        self.progress.send_modify(|p| p.closed = true);
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// A publish's place in the stored offline queue.
pub struct QueueSlot {
    store: Arc<Store>,
    pub qseq: u64,
}

impl QueueSlot {
    /// Records that the publish left the queue unsent.
    pub fn unqueued(&self) {
        self.store.append(Record::Unqueued(self.qseq));
    }
}

/// A batch of the commit job: records to append (possibly none, for a
/// sync alone), or a snapshot to replace the log with; everything up to
/// ticket `upto` is written once it is, and durable if it is synced.
struct Batch {
    bytes: Vec<u8>,
    upto: u64,
    rewrite: bool,
    /// Someone waits for a ticket of it, or of an earlier batch written
    /// without a sync: fdatasync after the write.
    sync: bool,
}

/// Whether a log of `len` bytes is worth replacing by a snapshot of
/// `live` bytes.
fn should_compact(len: u64, live: usize) -> bool {
    len >= COMPACT_MIN && len >= 4 * live as u64
}

#[cfg(test)]
mod tests;
