//! The two ways preprocessing splits work across the cores: columns while
//! fitting, rows while transforming. Small frames (a served application,
//! a test fixture) stay on the calling thread.

/// Below this many rows a frame is prepared on the calling thread: a
/// thread costs more than it saves.
pub(crate) const PARALLEL_ROWS: usize = 20_000;

fn threads(rows: usize) -> usize {
    if rows < PARALLEL_ROWS {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `f` of every item, in order; the items (columns of a frame of `rows`
/// rows) are shared out between the cores.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    rows: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads(rows).min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut done = work();
        for helper in helpers {
            done.extend(helper.join().expect("a preprocessing thread panicked"));
        }
        done
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Runs `f(first_row, rows)` over consecutive chunks of a row-major
/// `data` of `cols` columns, one chunk per core.
pub(crate) fn for_row_chunks(data: &mut [f64], cols: usize, f: impl Fn(usize, &mut [f64]) + Sync) {
    let rows = data.len() / cols.max(1);
    let threads = threads(rows);
    if threads <= 1 || cols == 0 {
        f(0, data);
        return;
    }
    let chunk_rows = rows.div_ceil(threads);
    std::thread::scope(|scope| {
        let mut chunks = data.chunks_mut(chunk_rows * cols).enumerate();
        let (_, own) = chunks.next().expect("at least one chunk");
        for (k, chunk) in chunks {
            let f = &f;
            scope.spawn(move || f(k * chunk_rows, chunk));
        }
        f(0, own);
    });
}
