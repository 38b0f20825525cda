//! The request log: every scored application (id, time, model, inputs,
//! outputs, latency) reaches the catalog's `requests` table without
//! holding up the answer, and without a SQLite write per application.
//!
//! Handlers put entries on a bounded queue. A writer thread wakes at most
//! once per [`TICK`] while entries arrive, appends what is queued to the
//! current segment file (see `kaskad_registry::SegmentWriter`) and hands it
//! to the operating system with one `write(2)`. After a pause in the
//! traffic ([`ServeConfig::log_import_after_pause`](crate::ServeConfig),
//! 1 s), and at the latest every
//! [`ServeConfig::log_import_every`](crate::ServeConfig) (60 s), the segment
//! is closed and an importer thread adds it to the catalog in large
//! transactions (about 3 µs of CPU per entry, against about 1 µs for
//! writing it): a busy server imports rarely, a quiet one soon. `GET
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
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use kaskad_registry::{Catalog, RegistryError, RequestRecord, SegmentWriter};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;

use crate::error::ServeError;
use crate::metrics::Metrics;

/// How long the writer lets entries gather before writing them: one
/// wake-up and one `write(2)` per tick, not per entry.
const TICK: Duration = Duration::from_millis(10);

enum Message {
    Entry(RequestRecord),
    /// Close the segment and import everything, then answer.
    Import(oneshot::Sender<()>),
}

/// The sending side, held by the app.
pub(crate) struct RequestLog {
    queue: SyncSender<Message>,
    dropped: Counter,
}

/// Completes once the last segment is imported, after every
/// [`RequestLog`] is dropped.
pub(crate) type Finished = oneshot::Receiver<()>;

impl RequestLog {
    /// Starts the writer (segments in `dir`) and the importer (into the
    /// catalog at `db_path`, on its own connection).
    pub(crate) fn start(
        db_path: &std::path::Path,
        dir: PathBuf,
        capacity: usize,
        import_every: Duration,
        import_after_pause: Duration,
        metrics: &Metrics,
    ) -> Result<(RequestLog, Finished), ServeError> {
        let catalog = Catalog::open_request_log(db_path)?;
        let segments = SegmentWriter::new(&dir)?;
        let (queue, receiver) = mpsc::sync_channel(capacity.max(1));
        let (imports, jobs) = mpsc::channel();
        let (finished, done) = oneshot::channel();
        let writer = Writer {
            segments,
            pending: 0,
            written: metrics.log_written.clone(),
            failed: metrics.log_failed.clone(),
        };
        thread::Builder::new()
            .name("request-log-writer".into())
            .spawn(move || writer.run(receiver, imports, import_every, import_after_pause))?;
        let imported = metrics.log_imported.clone();
        thread::Builder::new()
            .name("request-log-import".into())
            .spawn(move || import(catalog, dir, jobs, imported, finished))?;
        let log = RequestLog {
            queue,
            dropped: metrics.log_dropped.clone(),
        };
        Ok((log, done))
    }

    /// Queues an entry, or drops and counts it when the queue is full.
    pub(crate) fn push(&self, record: RequestRecord) {
        if self.queue.try_send(Message::Entry(record)).is_err() {
            self.dropped.inc();
        }
    }

    /// Imports every entry queued so far into the catalog, for a reader of
    /// the `requests` table in this process.
    pub(crate) async fn import_now(&self) {
        let (reply, imported) = oneshot::channel();
        let queue = self.queue.clone();
        // Waits for room when the queue is full: this is a reader's route,
        // not scoring.
        let sent = tokio::task::spawn_blocking(move || queue.send(Message::Import(reply)).is_ok())
            .await
            .unwrap_or(false);
        if sent {
            let _ = imported.await;
        }
    }
}

struct Writer {
    segments: SegmentWriter,
    /// Entries appended since the last flush.
    pending: u64,
    written: Counter,
    failed: Counter,
}

impl Writer {
    fn run(
        mut self,
        receiver: Receiver<Message>,
        imports: Sender<Option<oneshot::Sender<()>>>,
        import_every: Duration,
        import_after_pause: Duration,
    ) {
        let mut connected = true;
        let mut last_entry = Instant::now();
        // The open segment is imported once it is `import_every` old, or
        // sooner when no entry came for `import_after_pause`: a busy server
        // imports rarely, in large transactions, and a quiet one soon.
        let due_in = |opened: Instant, last_entry: Instant| {
            import_every
                .saturating_sub(opened.elapsed())
                .min(import_after_pause.saturating_sub(last_entry.elapsed()))
        };
        while connected {
            // Waits for work; with a segment open, no longer than until
            // it is due for import.
            let first = match self.segments.opened() {
                None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(opened) => receiver.recv_timeout(due_in(opened, last_entry)),
            };
            let mut next = match first {
                Ok(message) => {
                    thread::sleep(TICK);
                    Some(message)
                }
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    connected = false;
                    None
                }
            };
            while let Some(message) = next {
                match message {
                    Message::Entry(record) => {
                        self.append(&record);
                        last_entry = Instant::now();
                    }
                    Message::Import(reply) => {
                        self.close();
                        let _ = imports.send(Some(reply));
                    }
                }
                next = match receiver.try_recv() {
                    Ok(message) => Some(message),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => {
                        connected = false;
                        None
                    }
                };
            }
            self.flush();
            let due = self
                .segments
                .opened()
                .is_some_and(|opened| due_in(opened, last_entry).is_zero());
            if due {
                self.close();
                let _ = imports.send(None);
            }
        }
        // Dropping `imports` tells the importer to take in this last one.
        self.close();
    }

    fn append(&mut self, record: &RequestRecord) {
        match self.segments.append(record) {
            Ok(()) => self.pending += 1,
            Err(e) => {
                eprintln!("kaskad serve: request log: an entry is lost: {e}");
                self.failed.inc();
            }
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

/// Imports closed segments whenever the writer closes one (a burst of
/// requests needs one import), answers who asked, and once the writer is
/// gone imports its last segment and reports `finished`.
fn import(
    mut catalog: Catalog,
    dir: PathBuf,
    jobs: Receiver<Option<oneshot::Sender<()>>>,
    imported: Counter,
    finished: oneshot::Sender<()>,
) {
    let mut import_all = || match catalog.import_request_log(&dir) {
        Ok(report) => {
            imported.inc_by(report.entries);
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
    };
    // What an earlier process left.
    import_all();
    while let Ok(job) = jobs.recv() {
        let mut replies: Vec<_> = job.into_iter().collect();
        replies.extend(jobs.try_iter().flatten());
        import_all();
        for reply in replies {
            let _ = reply.send(());
        }
    }
    import_all();
    let _ = finished.send(());
}
