//! Importing the request log: a closed segment of 20,000 entries shaped as
//! `kaskad serve` logs one application of `data/credit_data.csv` (a
//! 204-byte input, a 301-byte answer with three reasons) into a fresh
//! catalog's `requests` table. Divide the time by 20,000 for the cost per
//! entry; the segment is written before the timer starts.
//!
//!   cargo bench -p kaskad-registry --bench request_log_import

use std::path::PathBuf;

use kaskad_registry::{Catalog, LogEntry, SegmentWriter, request_log_dir};

const ENTRIES: usize = 20_000;
const INPUT: &str = r#"{"Seniority": 9, "Home": "rent", "Time": 60, "Age": 30, "Marital": "married", "Records": "no", "Job": "freelance", "Expenses": 73, "Income": 129.0, "Assets": 0.0, "Debt": 0.0, "Amount": 800, "Price": 846}"#;
const OUTPUT: &str = r#"{"score":0.29248303190559233,"decision":"approve","reasons":[{"column":"Price","contribution":0.7180109517566368},{"column":"Assets","contribution":0.32618492961252726},{"column":"Home","contribution":0.28104001511095555}],"model":"default_risk@13","request_id":"01a21d89-2f98-71a5-bc7d-b5e8dceb99a2"}"#;

fn main() {
    divan::main();
}

/// A home with an empty catalog and one closed segment.
fn home_with_a_segment() -> (tempfile::TempDir, Catalog, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kaskad.db");
    let catalog = Catalog::open_request_log(&db).unwrap();
    let logs = request_log_dir(&db);
    let mut writer = SegmentWriter::new(&logs).unwrap();
    let mut encoded = Vec::new();
    for i in 0..ENTRIES {
        let request_id = format!("01a21d89-2f98-71a5-bc7d-{i:012}");
        encoded.clear();
        let entry = LogEntry {
            request_id: &request_id,
            at_unix: 1_790_000_000.0 + i as f64 * 2e-5,
            route: "/v1/models/{name}/score",
            model: "default_risk@13",
            input: INPUT,
            output: OUTPUT,
            latency_ms: 0.05,
        };
        assert!(entry.encode(&mut encoded));
        writer.append(&encoded).unwrap();
    }
    writer.close().unwrap();
    (dir, catalog, logs)
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn import_20k_entries(bencher: divan::Bencher) {
    bencher
        .with_inputs(home_with_a_segment)
        .bench_local_values(|(dir, mut catalog, logs)| {
            let report = catalog.import_request_log(&logs).unwrap();
            assert_eq!(report.entries, ENTRIES as u64);
            (dir, catalog)
        });
}
