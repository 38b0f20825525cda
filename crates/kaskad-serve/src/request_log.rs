//! The request log: every scored application (id, time, model, inputs,
//! outputs, latency) reaches the catalog's `requests` table without
//! holding up the answer, and without a SQLite write per application.
//!
//! Handlers encode entries into a shared buffer, the queue (a copy of the
//! entry's bytes under a lock, no allocation once the buffer has grown). A
//! writer thread wakes at most once per [`TICK`] while entries arrive,
//! swaps the buffer for an empty one and appends it to the current segment
//! file (see `kaskad_registry::SegmentWriter`) with one `write(2)`; an idle
//! writer is parked and woken by the next entry. After a pause in the
//! traffic ([`ServeConfig::log_import_after_pause`](crate::ServeConfig),
//! 1 s), and at the latest every
//! [`ServeConfig::log_import_every`](crate::ServeConfig) (60 s), the segment
//! is closed and an importer thread at the lowest CPU priority adds it to
//! the catalog in transactions of 2,000 rows (about 5 µs per entry, see the
//! `request_log_import` bench of kaskad-registry, against a copy of its
//! bytes for writing it): a busy server imports rarely, a quiet one soon. `GET
//! /v1/cascades/{name}/ab` and shutdown import at once, and the importer
//! first takes in segments an earlier process left.
//!
//! When the queue is full (the writer fell behind the traffic) an entry is
//! dropped and counted in `kaskad_request_log_dropped_total`: scoring never
//! waits for the log. A process killed with SIGKILL loses what was queued
//! and not yet written, at most one tick of entries in practice and never
//! more than the queue holds (`log_queue`, 10,000 by default); what was
//! written stays in its segment and is imported by the next server or
//! `kaskad summary`. A power cut may also lose what the operating system
//! had not yet put on disk (segments are not synced).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use kaskad_registry::{Catalog, LogEntry, RegistryError, SegmentWriter};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;

use crate::app::ServeConfig;
use crate::error::ServeError;
use crate::metrics::Metrics;

/// How long the writer lets entries gather before writing them: one
/// wake-up and one `write(2)` per tick, not per entry.
const TICK: Duration = Duration::from_millis(10);

/// What the handlers hand the writer.
#[derive(Default)]
struct Queue {
    /// Encoded entries (see [`LogEntry::encode`]), not yet written.
    bytes: Vec<u8>,
    entries: u64,
    /// Who waits for everything queued so far to be imported.
    imports: Vec<oneshot::Sender<()>>,
    /// Every [`RequestLog`] is gone: write what is left and stop.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    capacity: u64,
    /// Set by the writer before it parks; whoever queues something next
    /// clears it and wakes the writer.
    parked: AtomicBool,
    writer: Thread,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        // A plain load first: the lock just taken orders it after the
        // writer's `parked = true` if the writer checked the queue before
        // this entry was in it.
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::AcqRel) {
            self.writer.unpark();
        }
    }
}

/// The sending side, held by the app.
pub(crate) struct RequestLog {
    shared: Arc<Shared>,
    dropped: Counter,
    failed: Counter,
}

/// Completes once the last segment is imported, after the
/// [`RequestLog`] is dropped.
pub(crate) type Finished = oneshot::Receiver<()>;

impl RequestLog {
    /// Starts the writer (segments in `config.log_dir`) and the importer
    /// (into the catalog at `config.db_path`, on its own connection).
    pub(crate) fn start(
        config: &ServeConfig,
        metrics: &Metrics,
    ) -> Result<(RequestLog, Finished), ServeError> {
        let segments = SegmentWriter::new(&config.log_dir)?;
        let importer = Importer {
            catalog: Catalog::open_request_log(&config.db_path)?,
            dir: config.log_dir.clone(),
            imported: metrics.log_imported.clone(),
            pruned: metrics.log_pruned.clone(),
            retention: config.log_retention,
        };
        let (imports, jobs) = mpsc::channel();
        let (finished, done) = oneshot::channel();
        thread::Builder::new()
            .name("request-log-import".into())
            .spawn(move || importer.run(jobs, finished))?;
        let writer = Writer {
            segments,
            pending: 0,
            written: metrics.log_written.clone(),
            failed: metrics.log_failed.clone(),
            import_every: config.log_import_every,
            import_after_pause: config.log_import_after_pause,
        };
        // The writer needs the shared state, which needs the writer's
        // handle: it waits for the state on a channel.
        let (give, take) = mpsc::sync_channel::<Arc<Shared>>(1);
        let handle = thread::Builder::new()
            .name("request-log-writer".into())
            .spawn(move || {
                if let Ok(shared) = take.recv() {
                    writer.run(&shared, imports);
                }
            })?;
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            capacity: config.log_queue.max(1) as u64,
            parked: AtomicBool::new(false),
            writer: handle.thread().clone(),
        });
        let _ = give.send(Arc::clone(&shared));
        let log = RequestLog {
            shared,
            dropped: metrics.log_dropped.clone(),
            failed: metrics.log_failed.clone(),
        };
        Ok((log, done))
    }

    /// Queues an entry, or drops and counts it when the queue is full.
    pub(crate) fn push(&self, entry: &LogEntry<'_>) {
        {
            let mut queue = self.shared.queue();
            if queue.entries >= self.shared.capacity {
                drop(queue);
                self.dropped.inc();
                return;
            }
            if !entry.encode(&mut queue.bytes) {
                drop(queue);
                self.failed.inc();
                return;
            }
            queue.entries += 1;
        }
        self.shared.wake();
    }

    /// Imports every entry queued so far into the catalog, for a reader of
    /// the `requests` table in this process.
    pub(crate) async fn import_now(&self) {
        let (reply, imported) = oneshot::channel();
        self.shared.queue().imports.push(reply);
        self.shared.wake();
        let _ = imported.await;
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.writer.unpark();
    }
}

struct Writer {
    segments: SegmentWriter,
    /// Entries appended since the last flush.
    pending: u64,
    written: Counter,
    failed: Counter,
    import_every: Duration,
    import_after_pause: Duration,
}

impl Writer {
    fn run(mut self, shared: &Shared, imports: Sender<Vec<oneshot::Sender<()>>>) {
        let mut spare = Vec::new();
        let mut last_entry = Instant::now();
        // The open segment is imported once it is `import_every` old, or
        // sooner when no entry came for `import_after_pause`: a busy server
        // imports rarely, in large transactions, and a quiet one soon.
        let (import_every, import_after_pause) = (self.import_every, self.import_after_pause);
        let due_in = move |opened: Instant, last_entry: Instant| {
            import_every
                .saturating_sub(opened.elapsed())
                .min(import_after_pause.saturating_sub(last_entry.elapsed()))
        };
        loop {
            let (bytes, entries, replies, closed) = {
                let mut queue = shared.queue();
                let bytes = std::mem::replace(&mut queue.bytes, std::mem::take(&mut spare));
                let entries = std::mem::take(&mut queue.entries);
                (
                    bytes,
                    entries,
                    std::mem::take(&mut queue.imports),
                    queue.closed,
                )
            };
            if entries > 0 {
                match self.segments.append(&bytes) {
                    Ok(()) => self.pending += entries,
                    Err(e) => {
                        eprintln!("kaskad serve: request log: {entries} entries lost: {e}");
                        self.failed.inc_by(entries);
                    }
                }
                last_entry = Instant::now();
            }
            spare = bytes;
            spare.clear();
            self.flush();
            if closed {
                // Dropping `imports` tells the importer to take in this last one.
                self.close();
                return;
            }
            let due = self
                .segments
                .opened()
                .is_some_and(|opened| due_in(opened, last_entry).is_zero());
            if !replies.is_empty() || due {
                self.close();
                let _ = imports.send(replies);
            }
            if entries > 0 {
                thread::sleep(TICK);
                continue;
            }
            // Nothing came during the last tick: park until an entry (or a
            // request, or the end) wakes us, or the open segment is due.
            shared.parked.store(true, Ordering::SeqCst);
            let waiting = {
                let queue = shared.queue();
                queue.entries > 0 || !queue.imports.is_empty() || queue.closed
            };
            if waiting {
                shared.parked.store(false, Ordering::SeqCst);
                continue;
            }
            match self.segments.opened() {
                None => thread::park(),
                Some(opened) => thread::park_timeout(due_in(opened, last_entry)),
            }
            shared.parked.store(false, Ordering::SeqCst);
        }
    }

    fn flush(&mut self) {
        let flushed = self.segments.flush();
        self.count(flushed);
    }

    fn close(&mut self) {
        let closed = self.segments.close();
        self.count(closed);
    }

    fn count(&mut self, outcome: Result<(), RegistryError>) {
        let n = std::mem::take(&mut self.pending);
        match outcome {
            Ok(()) => {
                self.written.inc_by(n);
            }
            Err(e) => {
                eprintln!("kaskad serve: request log: {n} entries lost: {e}");
                self.failed.inc_by(n);
            }
        }
    }
}

/// The importer thread's state.
struct Importer {
    catalog: Catalog,
    dir: PathBuf,
    imported: Counter,
    pruned: Counter,
    retention: Option<Duration>,
}

impl Importer {
    /// Imports closed segments whenever the writer closes one (a burst of
    /// requests needs one import), answers who asked, prunes entries older
    /// than the retention after each import and at least every tenth of
    /// it (between 1 s and a minute), and once the writer is gone imports
    /// its last segment and reports `finished`.
    fn run(mut self, jobs: Receiver<Vec<oneshot::Sender<()>>>, finished: oneshot::Sender<()>) {
        yield_cpu_to_scoring();
        // What an earlier process left.
        self.import_all();
        let prune_every = self
            .retention
            .map(|keep| (keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(60)));
        loop {
            let job = match prune_every {
                Some(every) => jobs.recv_timeout(every),
                None => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match job {
                Ok(mut replies) => {
                    replies.extend(jobs.try_iter().flatten());
                    self.import_all();
                    for reply in replies {
                        let _ = reply.send(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.prune();
        }
        self.import_all();
        let _ = finished.send(());
    }

    fn import_all(&mut self) {
        let imported = &self.imported;
        match self
            .catalog
            .import_request_log_reporting(&self.dir, |entries| {
                imported.inc_by(entries);
            }) {
            Ok(report) => {
                if report.lost_bytes > 0 {
                    eprintln!(
                        "kaskad serve: request log: {} bytes after the last whole entry of a segment \
                         were lost (a write cut short)",
                        report.lost_bytes
                    );
                }
            }
            // The segments stay where they are, for the next import.
            Err(e) => eprintln!("kaskad serve: request log: import failed: {e}"),
        }
    }

    fn prune(&mut self) {
        let Some(keep) = self.retention else {
            return;
        };
        match self
            .catalog
            .prune_requests(crate::v1::unix_now() - keep.as_secs_f64())
        {
            Ok(n) => {
                self.pruned.inc_by(n);
            }
            // What was not deleted is tried again at the next prune.
            Err(e) => eprintln!("kaskad serve: request log: pruning old entries failed: {e}"),
        }
    }
}

/// Lowers the calling thread (the importer) to the lowest CPU priority, so
/// that on a saturated server the handlers keep the cores: at nice 19 the
/// scheduler gives the importer about 1.5 % of a core against a busy
/// thread, and everything a core has to spare. Under sustained saturation
/// the segments wait on disk and the import catches up once there is room.
fn yield_cpu_to_scoring() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        eprintln!("kaskad serve: request log: the importer keeps its CPU priority: {e}");
    }
}
