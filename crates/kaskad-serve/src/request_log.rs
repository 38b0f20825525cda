//! The request log: every scored application (id, time, model, inputs,
//! outputs, latency) goes into the catalog's `requests` table without
//! holding up the answer. Handlers put entries on a bounded queue; one task
//! drains it and writes each handful in one SQLite transaction. When the
//! queue is full (the disk is slower than the traffic) an entry is dropped
//! and counted in `kaskad_request_log_dropped_total`: scoring never waits
//! for the log.

use kaskad_registry::{Catalog, RequestRecord};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Most entries written in one transaction; bounds the time a write holds
/// the database's write lock against `kaskad update`.
const MAX_BATCH: usize = 1_000;

/// The sending side, held by the app.
pub(crate) struct RequestLog {
    queue: mpsc::Sender<RequestRecord>,
    dropped: Counter,
}

impl RequestLog {
    /// Starts the writer on its own connection to the catalog. The task
    /// ends once every [`RequestLog`] is dropped and the queue is empty.
    pub(crate) fn start(
        catalog: Catalog,
        capacity: usize,
        written: Counter,
        dropped: Counter,
        failed: Counter,
    ) -> (RequestLog, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let writer = tokio::spawn(drain(receiver, catalog, written, failed));
        (RequestLog { queue, dropped }, writer)
    }

    /// Queues an entry, or drops and counts it when the queue is full.
    pub(crate) fn push(&self, record: RequestRecord) {
        if self.queue.try_send(record).is_err() {
            self.dropped.inc();
        }
    }
}

async fn drain(
    mut receiver: mpsc::Receiver<RequestRecord>,
    catalog: Catalog,
    written: Counter,
    failed: Counter,
) {
    let mut catalog = Some(catalog);
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        let Some(mut owned) = catalog.take() else {
            failed.inc_by(batch.len() as u64);
            continue;
        };
        let n = batch.len() as u64;
        // SQLite blocks (fsync, a busy writer): off the async workers.
        let outcome = tokio::task::spawn_blocking(move || {
            let result = owned.log_requests(&batch);
            (owned, result)
        })
        .await;
        match outcome {
            Ok((owned, Ok(()))) => {
                written.inc_by(n);
                catalog = Some(owned);
            }
            Ok((owned, Err(e))) => {
                eprintln!("kaskad serve: request log: {n} entries lost: {e}");
                failed.inc_by(n);
                catalog = Some(owned);
            }
            Err(e) => {
                // The write panicked and took the connection with it; later
                // entries are counted as lost rather than silently queued.
                eprintln!("kaskad serve: request log writer failed: {e}");
                failed.inc_by(n);
            }
        }
    }
}
