//! The catalog in SQLite: batches, runs, stage results, model versions,
//! aliases, cascades, and the server's API keys, request log and outcomes.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::RegistryError;

/// Bumped when the schema changes; `open` migrates older catalogs.
const SCHEMA_VERSION: i64 = 8;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    rows INTEGER NOT NULL,
    columns INTEGER NOT NULL,
    content_hash TEXT NOT NULL UNIQUE,
    time_min TEXT,
    time_max TEXT,
    meta TEXT NOT NULL,
    raw_path TEXT NOT NULL,
    collected_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
);
CREATE TABLE IF NOT EXISTS analyses (
    batch_id INTEGER PRIMARY KEY REFERENCES batches(id),
    quality TEXT NOT NULL,
    drift TEXT,
    cleaned_path TEXT,
    ok INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    batch_id INTEGER REFERENCES batches(id),
    started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
    finished_at TEXT,
    ok INTEGER,
    failed_stage TEXT,
    error TEXT,
    stages TEXT NOT NULL DEFAULT '[]',
    peak_rss_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    params TEXT NOT NULL,
    metrics TEXT NOT NULL,
    cv_auc REAL,
    trained_on TEXT NOT NULL,
    artifact_path TEXT NOT NULL,
    run_id INTEGER REFERENCES runs(id),
    train_seconds REAL NOT NULL,
    peak_rss_bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES versions(name, version)
);
CREATE TABLE IF NOT EXISTS inferences (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
    model TEXT NOT NULL,
    input_path TEXT NOT NULL,
    output_path TEXT NOT NULL,
    rows INTEGER NOT NULL,
    seconds REAL NOT NULL,
    peak_rss_bytes INTEGER NOT NULL
);
"#;

/// Version 2: what `kaskad serve` keeps. Keys are stored as SHA-256 hashes
/// only; `requests` is the request log (one row per scored application);
/// `outcomes` holds the observed outcome of earlier requests, the latest
/// report winning.
const MIGRATION_2: &str = r#"
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'scorer', 'viewer')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    at TEXT NOT NULL,
    route TEXT NOT NULL,
    model TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT NOT NULL,
    latency_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_request_id ON requests(request_id);
CREATE TABLE IF NOT EXISTS outcomes (
    request_id TEXT PRIMARY KEY,
    outcome INTEGER NOT NULL CHECK (outcome IN (0, 1)),
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
);
"#;

/// Version 3: the cascade catalog. Every `PUT` adds a version and nothing
/// is overwritten, so the request log's `name@version` always finds the
/// definition that answered. A deletion is a tombstone version (no
/// definition), so a later `PUT` of the name never reuses a version number.
const MIGRATION_3: &str = r#"
CREATE TABLE IF NOT EXISTS cascades (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
    PRIMARY KEY (name, version)
);
"#;

/// Version 4: meta-learning. `searches` holds the meta-features of the
/// data every hyperparameter search ran on; `candidates` every (variant ×
/// hyperparameters) pair it considered: the meta-model's predicted CV AUC,
/// its place in the search order, and, when the budget let it be
/// evaluated, its CV AUC (mean and standard deviation over the folds) and
/// the seconds its fold fits took.
const MIGRATION_4: &str = r#"
CREATE TABLE IF NOT EXISTS searches (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    batch_id INTEGER REFERENCES batches(id),
    meta_features TEXT NOT NULL,
    budget INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
);
CREATE TABLE IF NOT EXISTS candidates (
    run_id INTEGER NOT NULL REFERENCES searches(run_id),
    position INTEGER NOT NULL,
    family TEXT NOT NULL,
    variant TEXT NOT NULL,
    params TEXT NOT NULL,
    predicted_auc REAL,
    evaluated INTEGER NOT NULL,
    cv_auc REAL,
    cv_auc_sd REAL,
    fit_seconds REAL NOT NULL,
    PRIMARY KEY (run_id, position)
);
"#;

/// Version 5: the request log arrives in segment files (see
/// `request_log.rs`); `request_log_segments` records, in the transaction
/// that adds a segment's rows, the byte offset its import reached, so that
/// no row is imported twice.
const MIGRATION_5: &str = r#"
CREATE TABLE IF NOT EXISTS request_log_segments (
    name TEXT PRIMARY KEY,
    imported_through INTEGER NOT NULL,
    imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
);
"#;

/// Version 6: inputs the collect stage rejected (a file or stream entry that
/// cannot be read as a batch), with the error, so that the stream goes on
/// without them and nothing is lost. One row per input and content: a file
/// is recorded again only when its bytes change.
const MIGRATION_6: &str = r#"
CREATE TABLE IF NOT EXISTS rejected_inputs (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    error TEXT NOT NULL,
    rejected_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
    UNIQUE (origin, content_hash)
);
"#;

/// Version 7: revoked API keys. A key is never deleted, so the catalog
/// still says who held an id and when it stopped working.
const MIGRATION_7: &str = r#"
CREATE TABLE IF NOT EXISTS revoked_keys (
    key_id INTEGER PRIMARY KEY REFERENCES api_keys(id),
    revoked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
);
"#;

/// Version 8: the request log by time, so that entries older than a
/// server's retention are found without reading the table.
const MIGRATION_8: &str = r#"
CREATE INDEX IF NOT EXISTS requests_at ON requests(at);
"#;

/// Writes `at_unix` (seconds since the epoch) as SQLite's
/// `strftime('%Y-%m-%dT%H:%M:%fZ', at_unix, 'unixepoch')` does, rounded to
/// the millisecond the same way, without asking SQLite: its date functions
/// were a tenth of a request-log import.
fn write_sqlite_millis(out: &mut String, at_unix: f64) {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    // SQLite keeps times as milliseconds of the Julian day.
    const UNIX_EPOCH_JULIAN_MS: f64 = 210_866_760_000_000.0;
    let millis =
        (at_unix * 1000.0 + UNIX_EPOCH_JULIAN_MS + 0.5) as i64 - UNIX_EPOCH_JULIAN_MS as i64;
    let t = chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default();
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis()
    );
}

/// What an API key may do; the server maps roles to routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Scorer,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Scorer => "scorer",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Role, RegistryError> {
        match text {
            "admin" => Ok(Role::Admin),
            "scorer" => Ok(Role::Scorer),
            "viewer" => Ok(Role::Viewer),
            other => Err(RegistryError::UnknownRole {
                role: other.to_string(),
            }),
        }
    }
}

/// A stored API key: its hash, never the key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: i64,
    pub role: Role,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// One scored application in the request log. `input` and `output` are JSON
/// text, serialized by the server that answered.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub request_id: String,
    /// Seconds since the Unix epoch when the request arrived.
    pub at_unix: f64,
    pub route: String,
    pub model: String,
    pub input: String,
    pub output: String,
    pub latency_ms: f64,
}

/// A batch to record; the raw file is already in place.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub origin: String,
    pub rows: usize,
    pub columns: usize,
    pub content_hash: String,
    pub time_range: Option<(String, String)>,
    pub meta: Value,
    pub raw_path: PathBuf,
}

/// A batch as the catalog holds it, with its analysis when there is one.
#[derive(Debug, Clone)]
pub struct BatchRecord {
    pub id: i64,
    pub origin: String,
    pub rows: usize,
    pub columns: usize,
    pub content_hash: String,
    pub time_range: Option<(String, String)>,
    pub meta: Value,
    pub raw_path: PathBuf,
    pub collected_at: String,
    pub quality: Option<Value>,
    pub drift: Option<Value>,
    pub cleaned_path: Option<PathBuf>,
    /// Whether a run took this batch through every stage.
    pub processed: bool,
}

/// An input the collect stage rejected, as the catalog holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RejectedInputRecord {
    pub id: i64,
    /// The file's name, or `stream NAME entry ID`.
    pub origin: String,
    /// SHA-256 of the file's bytes or of the entry's fields.
    pub content_hash: String,
    pub error: String,
    pub rejected_at: String,
}

/// One stage's outcome within a run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageRecord {
    pub stage: String,
    pub ok: bool,
    pub seconds: f64,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: i64,
    pub batch_id: Option<i64>,
    pub started_at: String,
    pub ok: bool,
    pub failed_stage: Option<String>,
    pub error: Option<String>,
    pub stages: Vec<StageRecord>,
    pub peak_rss_bytes: u64,
}

/// A model version to register.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub name: String,
    pub algorithm: String,
    pub params: Value,
    pub metrics: Value,
    pub cv_auc: Option<f64>,
    pub trained_on: Vec<i64>,
    pub artifact_path: PathBuf,
    pub run_id: Option<i64>,
    pub train_seconds: f64,
    pub peak_rss_bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionRecord {
    pub name: String,
    pub version: i64,
    pub algorithm: String,
    pub params: Value,
    pub metrics: Value,
    pub cv_auc: Option<f64>,
    pub trained_on: Vec<i64>,
    pub artifact_path: PathBuf,
    pub aliases: Vec<String>,
    pub train_seconds: f64,
    pub peak_rss_bytes: u64,
    pub created_at: String,
}

/// One hyperparameter search: the meta-features of the data it ran on
/// (named, in the meta-model's order) and its candidates in search order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchRecord {
    pub run_id: i64,
    pub batch_id: Option<i64>,
    pub meta_features: Vec<(String, f64)>,
    /// Most candidates evaluated; 0 = all.
    pub budget: usize,
    pub candidates: Vec<CandidateRecord>,
}

/// One (variant × hyperparameters) pair of a search.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CandidateRecord {
    pub family: String,
    pub variant: String,
    pub params: Value,
    /// The meta-model's estimate of its CV AUC; `None` before it has a
    /// measurement of this pair.
    pub predicted_auc: Option<f64>,
    /// Whether the search budget let it be cross-validated.
    pub evaluated: bool,
    /// Mean and standard deviation over the CV folds; `None` when not
    /// evaluated or no fold had both classes.
    pub cv_auc: Option<f64>,
    pub cv_auc_sd: Option<f64>,
    /// Seconds of its fold fits and predictions (shared preprocessing excluded).
    pub fit_seconds: f64,
}

/// One stored version of a cascade: its definition as sent (JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CascadeRecord {
    pub name: String,
    pub version: i64,
    pub definition: Value,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct InferenceRecord {
    pub at: String,
    pub model: String,
    pub input_path: PathBuf,
    pub output_path: PathBuf,
    pub rows: usize,
    pub seconds: f64,
    pub peak_rss_bytes: u64,
}

/// The metadata store of one home.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path`.
    pub fn open(path: &Path) -> Result<Catalog, RegistryError> {
        let conn = Connection::open(path).map_err(|source| RegistryError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        let catalog = Catalog {
            conn,
            path: path.to_path_buf(),
        };
        catalog.exec(
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
        )?;
        let version: i64 = catalog
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| catalog.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(RegistryError::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "catalog schema {version} is newer than this kaskad understands ({SCHEMA_VERSION})"
                ),
            });
        }
        if version == SCHEMA_VERSION {
            return Ok(catalog);
        }
        // The schema, the migrations and the version bump are one
        // transaction: a process killed halfway leaves the old version, and
        // each migration is idempotent (IF NOT EXISTS), so two processes
        // migrating at once both succeed.
        let mut migration = String::from("BEGIN IMMEDIATE;");
        migration.push_str(SCHEMA);
        for (from, sql) in [
            (2, MIGRATION_2),
            (3, MIGRATION_3),
            (4, MIGRATION_4),
            (5, MIGRATION_5),
            (6, MIGRATION_6),
            (7, MIGRATION_7),
            (8, MIGRATION_8),
        ] {
            if version < from {
                migration.push_str(sql);
            }
        }
        migration.push_str(&format!("PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"));
        catalog.exec(&migration)?;
        Ok(catalog)
    }

    fn err(&self, source: rusqlite::Error) -> RegistryError {
        RegistryError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// A connection for importing the server's request log (see
    /// [`Catalog::import_request_log`]): its commits are not synced one by
    /// one (WAL with `synchronous = NORMAL`: a crash of the process loses
    /// nothing, a power cut may lose the last commits, never corrupts), and
    /// it keeps more pages in memory for the large import transactions.
    pub fn open_request_log(path: &Path) -> Result<Catalog, RegistryError> {
        let catalog = Catalog::open(path)?;
        catalog.exec("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768;")?;
        Ok(catalog)
    }

    fn exec(&self, sql: &str) -> Result<(), RegistryError> {
        self.conn.execute_batch(sql).map_err(|e| self.err(e))
    }

    fn json(&self, text: &str) -> Result<Value, RegistryError> {
        serde_json::from_str(text).map_err(|e| RegistryError::Corrupt {
            path: self.path.clone(),
            message: format!("stored JSON does not parse: {e}"),
        })
    }

    pub fn setting(&self, key: &str) -> Result<Option<Value>, RegistryError> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        text.map(|t| self.json(&t)).transpose()
    }

    pub fn set_setting(&self, key: &str, value: &Value) -> Result<(), RegistryError> {
        self.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value.to_string()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The id of the batch with this content hash, if stored.
    pub fn batch_by_hash(&self, hash: &str) -> Result<Option<i64>, RegistryError> {
        self.conn
            .query_row(
                "SELECT id FROM batches WHERE content_hash = ?1",
                [hash],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The id the next batch will get; the raw file is named after it.
    pub fn next_batch_id(&self) -> Result<i64, RegistryError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM batches", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    /// Records a collected batch; a batch with the same content is refused.
    pub fn insert_batch(&self, batch: &NewBatch) -> Result<i64, RegistryError> {
        if let Some(id) = self.batch_by_hash(&batch.content_hash)? {
            return Err(RegistryError::DuplicateBatch {
                hash: batch.content_hash.clone(),
                id,
            });
        }
        let (time_min, time_max) = batch.time_range.clone().unzip();
        self.conn
            .execute(
                "INSERT INTO batches (origin, rows, columns, content_hash, time_min, time_max, meta, raw_path)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    batch.origin,
                    batch.rows as i64,
                    batch.columns as i64,
                    batch.content_hash,
                    time_min,
                    time_max,
                    batch.meta.to_string(),
                    batch.raw_path.display().to_string(),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the analyze stage's results for a batch (replacing a retry's).
    pub fn record_analysis(
        &self,
        batch_id: i64,
        quality: &Value,
        drift: Option<&Value>,
        cleaned_path: Option<&Path>,
        ok: bool,
    ) -> Result<(), RegistryError> {
        self.conn
            .execute(
                "INSERT INTO analyses (batch_id, quality, drift, cleaned_path, ok) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(batch_id) DO UPDATE SET quality = excluded.quality, drift = excluded.drift,
                 cleaned_path = excluded.cleaned_path, ok = excluded.ok",
                params![
                    batch_id,
                    quality.to_string(),
                    drift.map(Value::to_string),
                    cleaned_path.map(|p| p.display().to_string()),
                    ok
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Every batch in collection order, with analysis and processing status.
    pub fn batches(&self) -> Result<Vec<BatchRecord>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT b.id, b.origin, b.rows, b.columns, b.content_hash, b.time_min, b.time_max, b.meta,
                        b.raw_path, b.collected_at, a.quality, a.drift, a.cleaned_path,
                        EXISTS (SELECT 1 FROM runs r WHERE r.batch_id = b.id AND r.ok = 1)
                 FROM batches b LEFT JOIN analyses a ON a.batch_id = b.id ORDER BY b.id",
            )
            .map_err(|e| self.err(e))?;
        type Row = (
            i64,
            String,
            i64,
            i64,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            bool,
        );
        let rows: Vec<Row> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                    r.get(13)?,
                ))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(
                |(
                    id,
                    origin,
                    rows,
                    columns,
                    hash,
                    tmin,
                    tmax,
                    meta,
                    raw,
                    at,
                    quality,
                    drift,
                    cleaned,
                    processed,
                )| {
                    Ok(BatchRecord {
                        id,
                        origin,
                        rows: rows as usize,
                        columns: columns as usize,
                        content_hash: hash,
                        time_range: tmin.zip(tmax),
                        meta: self.json(&meta)?,
                        raw_path: raw.into(),
                        collected_at: at,
                        quality: quality.map(|q| self.json(&q)).transpose()?,
                        drift: drift.map(|d| self.json(&d)).transpose()?,
                        cleaned_path: cleaned.map(Into::into),
                        processed,
                    })
                },
            )
            .collect()
    }

    /// Records a rejected input; `false` when this origin with this content
    /// was recorded before.
    pub fn record_rejection(
        &self,
        origin: &str,
        content_hash: &str,
        error: &str,
    ) -> Result<bool, RegistryError> {
        self.conn
            .execute(
                "INSERT INTO rejected_inputs (origin, content_hash, error) VALUES (?1, ?2, ?3)
                 ON CONFLICT (origin, content_hash) DO NOTHING",
                params![origin, content_hash, error],
            )
            .map(|inserted| inserted == 1)
            .map_err(|e| self.err(e))
    }

    /// Every rejected input, oldest first.
    pub fn rejected_inputs(&self) -> Result<Vec<RejectedInputRecord>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, origin, content_hash, error, rejected_at FROM rejected_inputs ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            Ok(RejectedInputRecord {
                id: r.get(0)?,
                origin: r.get(1)?,
                content_hash: r.get(2)?,
                error: r.get(3)?,
                rejected_at: r.get(4)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }

    /// Opens a run for a batch (or for no batch, as in `kaskad train`).
    pub fn start_run(&self, batch_id: Option<i64>) -> Result<i64, RegistryError> {
        self.conn
            .execute("INSERT INTO runs (batch_id) VALUES (?1)", params![batch_id])
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Closes a run with each stage's outcome.
    pub fn finish_run(
        &self,
        run_id: i64,
        stages: &[StageRecord],
        error: Option<(&str, &str)>,
        peak_rss_bytes: u64,
    ) -> Result<(), RegistryError> {
        let stages_json = serde_json::to_string(stages).map_err(|e| RegistryError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        self.conn
            .execute(
                "UPDATE runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%SZ','now'), ok = ?2,
                 failed_stage = ?3, error = ?4, stages = ?5, peak_rss_bytes = ?6 WHERE id = ?1",
                params![
                    run_id,
                    error.is_none(),
                    error.map(|e| e.0),
                    error.map(|e| e.1),
                    stages_json,
                    peak_rss_bytes as i64
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn runs(&self) -> Result<Vec<RunRecord>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, batch_id, started_at, ok, failed_stage, error, stages, peak_rss_bytes
                 FROM runs ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        type Row = (
            i64,
            Option<i64>,
            String,
            Option<bool>,
            Option<String>,
            Option<String>,
            String,
            i64,
        );
        let rows: Vec<Row> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(
                |(id, batch_id, started_at, ok, failed_stage, error, stages, rss)| {
                    let stages =
                        serde_json::from_str(&stages).map_err(|e| RegistryError::Corrupt {
                            path: self.path.clone(),
                            message: format!("run {id}: stages do not parse: {e}"),
                        })?;
                    Ok(RunRecord {
                        id,
                        batch_id,
                        started_at,
                        // A run without an outcome was interrupted.
                        ok: ok.unwrap_or(false),
                        failed_stage: failed_stage
                            .or_else(|| ok.is_none().then(|| "interrupted".to_string())),
                        error,
                        stages,
                        peak_rss_bytes: rss as u64,
                    })
                },
            )
            .collect()
    }

    /// The version number the next registration of `name` will get.
    pub fn next_version(&self, name: &str) -> Result<i64, RegistryError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Registers a version (its artifact already written) and, when
    /// `aliases` is not empty, points those aliases at it, in one transaction.
    pub fn register(
        &mut self,
        version: i64,
        new: &NewVersion,
        aliases: &[&str],
    ) -> Result<(), RegistryError> {
        self.register_all(&[(version, new, aliases)])
    }

    /// Registers several versions, each with its aliases, in one transaction:
    /// an `update` killed or failing halfway registers none of its candidates
    /// rather than some, so resuming the batch does not leave orphans.
    pub fn register_all(
        &mut self,
        versions: &[(i64, &NewVersion, &[&str])],
    ) -> Result<(), RegistryError> {
        let path = self.path.clone();
        let err = |source| RegistryError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        for &(version, new, aliases) in versions {
            tx.execute(
                "INSERT INTO versions (name, version, algorithm, params, metrics, cv_auc, trained_on,
                     artifact_path, run_id, train_seconds, peak_rss_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    new.name,
                    version,
                    new.algorithm,
                    new.params.to_string(),
                    new.metrics.to_string(),
                    new.cv_auc,
                    serde_json::to_string(&new.trained_on).unwrap_or_else(|_| "[]".into()),
                    new.artifact_path.display().to_string(),
                    new.run_id,
                    new.train_seconds,
                    new.peak_rss_bytes as i64,
                ],
            )
            .map_err(err)?;
            for alias in aliases {
                set_alias_in(&tx, &new.name, alias, version).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Points `alias` of `name` at an existing version.
    pub fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<(), RegistryError> {
        self.resolve(&format!("{name}@{version}"))?;
        set_alias_in(&self.conn, name, alias, version).map_err(|e| self.err(e))
    }

    /// Every version, of one model or all, oldest first.
    pub fn versions(&self, name: Option<&str>) -> Result<Vec<VersionRecord>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT v.name, v.version, v.algorithm, v.params, v.metrics, v.cv_auc, v.trained_on,
                        v.artifact_path, v.train_seconds, v.peak_rss_bytes, v.created_at,
                        (SELECT group_concat(alias, ',') FROM aliases a WHERE a.name = v.name AND a.version = v.version)
                 FROM versions v WHERE ?1 IS NULL OR v.name = ?1 ORDER BY v.name, v.version",
            )
            .map_err(|e| self.err(e))?;
        type Row = (
            String,
            i64,
            String,
            String,
            String,
            Option<f64>,
            String,
            String,
            f64,
            i64,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = stmt
            .query_map([name], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(
                |(
                    name,
                    version,
                    algorithm,
                    params,
                    metrics,
                    cv_auc,
                    trained_on,
                    artifact,
                    secs,
                    rss,
                    at,
                    aliases,
                )| {
                    let trained_on: Vec<i64> =
                        serde_json::from_str(&trained_on).map_err(|e| RegistryError::Corrupt {
                            path: self.path.clone(),
                            message: format!("{name}@{version}: trained_on does not parse: {e}"),
                        })?;
                    let mut aliases: Vec<String> = aliases
                        .map(|a| a.split(',').map(str::to_string).collect())
                        .unwrap_or_default();
                    aliases.sort();
                    Ok(VersionRecord {
                        params: self.json(&params)?,
                        metrics: self.json(&metrics)?,
                        name,
                        version,
                        algorithm,
                        cv_auc,
                        trained_on,
                        artifact_path: artifact.into(),
                        aliases,
                        train_seconds: secs,
                        peak_rss_bytes: rss as u64,
                        created_at: at,
                    })
                },
            )
            .collect()
    }

    /// The version `reference` names (see [`Self::resolve`]) with its
    /// artifact loaded and checked.
    pub fn load_model(
        &self,
        reference: &str,
    ) -> Result<(VersionRecord, crate::Servable), RegistryError> {
        let record = self.resolve(reference)?;
        let artifact = crate::Servable::load(&record.artifact_path)?;
        Ok((record, artifact))
    }

    /// Resolves `name`, `name@VERSION` or `name@ALIAS`; a bare name means the champion.
    pub fn resolve(&self, reference: &str) -> Result<VersionRecord, RegistryError> {
        let (name, selector) = reference.split_once('@').unwrap_or((reference, "champion"));
        let unknown = |reason: String| RegistryError::UnknownModel {
            reference: reference.to_string(),
            reason,
        };
        let versions = self.versions(Some(name))?;
        if versions.is_empty() {
            let known: Vec<String> = {
                let mut names: Vec<String> =
                    self.versions(None)?.into_iter().map(|v| v.name).collect();
                names.dedup();
                names
            };
            return Err(unknown(if known.is_empty() {
                "no model is registered yet; run `kaskad update` first".into()
            } else {
                format!("no model called `{name}` (known: {})", known.join(", "))
            }));
        }
        let found = match selector.parse::<i64>() {
            Ok(number) => versions.into_iter().find(|v| v.version == number),
            Err(_) => versions
                .into_iter()
                .find(|v| v.aliases.iter().any(|a| a == selector)),
        };
        found.ok_or_else(|| unknown(format!("`{name}` has no version or alias `{selector}`")))
    }

    pub fn record_inference(&self, record: &InferenceRecord) -> Result<(), RegistryError> {
        self.conn
            .execute(
                "INSERT INTO inferences (model, input_path, output_path, rows, seconds, peak_rss_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    record.model,
                    record.input_path.display().to_string(),
                    record.output_path.display().to_string(),
                    record.rows as i64,
                    record.seconds,
                    record.peak_rss_bytes as i64
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records a search with its candidates (in search order), in one transaction.
    pub fn record_search(&mut self, search: &SearchRecord) -> Result<(), RegistryError> {
        let path = self.path.clone();
        let err = |source| RegistryError::Sqlite {
            path: path.clone(),
            source,
        };
        let features =
            serde_json::to_string(&search.meta_features).map_err(|e| RegistryError::Corrupt {
                path: self.path.clone(),
                message: format!("meta-features do not serialize: {e}"),
            })?;
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO searches (run_id, batch_id, meta_features, budget) VALUES (?1, ?2, ?3, ?4)",
            params![
                search.run_id,
                search.batch_id,
                features,
                search.budget as i64
            ],
        )
        .map_err(err)?;
        for (position, c) in search.candidates.iter().enumerate() {
            tx.execute(
                "INSERT INTO candidates (run_id, position, family, variant, params, predicted_auc,
                     evaluated, cv_auc, cv_auc_sd, fit_seconds)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    search.run_id,
                    position as i64,
                    c.family,
                    c.variant,
                    c.params.to_string(),
                    c.predicted_auc,
                    c.evaluated,
                    c.cv_auc,
                    c.cv_auc_sd,
                    c.fit_seconds,
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Every recorded search, oldest first, with its candidates in search order.
    pub fn searches(&self) -> Result<Vec<SearchRecord>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT run_id, batch_id, meta_features, budget FROM searches ORDER BY run_id")
            .map_err(|e| self.err(e))?;
        let rows: Vec<(i64, Option<i64>, String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT family, variant, params, predicted_auc, evaluated, cv_auc, cv_auc_sd, fit_seconds
                 FROM candidates WHERE run_id = ?1 ORDER BY position",
            )
            .map_err(|e| self.err(e))?;
        type Row = (
            String,
            String,
            String,
            Option<f64>,
            bool,
            Option<f64>,
            Option<f64>,
            f64,
        );
        rows.into_iter()
            .map(|(run_id, batch_id, features, budget)| {
                let meta_features =
                    serde_json::from_str(&features).map_err(|e| RegistryError::Corrupt {
                        path: self.path.clone(),
                        message: format!("search of run {run_id}: meta-features do not parse: {e}"),
                    })?;
                let candidates: Vec<Row> = stmt
                    .query_map([run_id], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                        ))
                    })
                    .and_then(Iterator::collect)
                    .map_err(|e| self.err(e))?;
                let candidates = candidates
                    .into_iter()
                    .map(
                        |(
                            family,
                            variant,
                            params,
                            predicted_auc,
                            evaluated,
                            cv_auc,
                            cv_auc_sd,
                            fit_seconds,
                        )| {
                            Ok(CandidateRecord {
                                family,
                                variant,
                                params: self.json(&params)?,
                                predicted_auc,
                                evaluated,
                                cv_auc,
                                cv_auc_sd,
                                fit_seconds,
                            })
                        },
                    )
                    .collect::<Result<_, RegistryError>>()?;
                Ok(SearchRecord {
                    run_id,
                    batch_id,
                    meta_features,
                    budget: budget as usize,
                    candidates,
                })
            })
            .collect()
    }

    pub fn inferences(&self) -> Result<Vec<InferenceRecord>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, model, input_path, output_path, rows, seconds, peak_rss_bytes FROM inferences ORDER BY id")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            Ok(InferenceRecord {
                at: r.get(0)?,
                model: r.get(1)?,
                input_path: r.get::<_, String>(2)?.into(),
                output_path: r.get::<_, String>(3)?.into(),
                rows: r.get::<_, i64>(4)? as usize,
                seconds: r.get(5)?,
                peak_rss_bytes: r.get::<_, i64>(6)? as u64,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }
}

/// The server's tables: API keys, the request log, outcomes.
impl Catalog {
    /// Stores a new key's SHA-256 `hash` (hex) with its role; returns its id.
    pub fn create_key(&self, hash: &str, role: Role) -> Result<i64, RegistryError> {
        self.conn
            .execute(
                "INSERT INTO api_keys (hash, role) VALUES (?1, ?2)",
                params![hash, role.as_str()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The key whose SHA-256 hash (hex) is `hash`, if there is one and it
    /// is not revoked.
    pub fn find_key(&self, hash: &str) -> Result<Option<ApiKeyRecord>, RegistryError> {
        self.keys_where("k.hash = ?1 AND r.key_id IS NULL", [hash])
            .map(|mut keys| keys.pop())
    }

    /// Every key ever made, revoked ones included, oldest first.
    pub fn keys(&self) -> Result<Vec<ApiKeyRecord>, RegistryError> {
        self.keys_where("1", [])
    }

    /// Revokes key `id`: it stops working (a running server notices within
    /// its alias time to live). `false` when there is no such key; revoking
    /// twice keeps the first time.
    pub fn revoke_key(&self, id: i64) -> Result<bool, RegistryError> {
        if self.keys_where("k.id = ?1", [id])?.is_empty() {
            return Ok(false);
        }
        self.conn
            .execute(
                "INSERT INTO revoked_keys (key_id) VALUES (?1) ON CONFLICT(key_id) DO NOTHING",
                [id],
            )
            .map_err(|e| self.err(e))?;
        Ok(true)
    }

    fn keys_where(
        &self,
        condition: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<ApiKeyRecord>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT k.id, k.role, k.created_at, r.revoked_at FROM api_keys k
                 LEFT JOIN revoked_keys r ON r.key_id = k.id WHERE {condition} ORDER BY k.id"
            ))
            .map_err(|e| self.err(e))?;
        let rows: Vec<(i64, String, String, Option<String>)> = stmt
            .query_map(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(id, role, created_at, revoked_at)| {
                Ok(ApiKeyRecord {
                    id,
                    role: role.parse()?,
                    created_at,
                    revoked_at,
                })
            })
            .collect()
    }

    /// Adds request-log rows read from segment `name` and records that its
    /// import reached byte `through`, in one transaction.
    pub(crate) fn import_requests(
        &mut self,
        name: &str,
        records: &[RequestRecord],
        through: u64,
    ) -> Result<(), RegistryError> {
        let path = self.path.clone();
        let err = |source| RegistryError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO requests (request_id, at, route, model, input, output, latency_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err)?;
            let mut at = String::new();
            for r in records {
                at.clear();
                write_sqlite_millis(&mut at, r.at_unix);
                stmt.execute(params![
                    r.request_id,
                    at,
                    r.route,
                    r.model,
                    r.input,
                    r.output,
                    r.latency_ms
                ])
                .map_err(err)?;
            }
            tx.execute(
                "INSERT INTO request_log_segments (name, imported_through) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET imported_through = excluded.imported_through,
                 imported_at = excluded.imported_at",
                params![name, through as i64],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Deletes request-log entries that arrived before `before_unix`
    /// (seconds since the epoch), in transactions of 10,000 rows so that
    /// other writers get the catalog in between; returns how many. Their
    /// outcomes stay.
    pub fn prune_requests(&mut self, before_unix: f64) -> Result<u64, RegistryError> {
        const CHUNK: usize = 10_000;
        let mut pruned = 0;
        loop {
            let deleted = self
                .conn
                .execute(
                    "DELETE FROM requests WHERE id IN (SELECT id FROM requests
                     WHERE at < strftime('%Y-%m-%dT%H:%M:%fZ', ?1, 'unixepoch') LIMIT ?2)",
                    params![before_unix, CHUNK as i64],
                )
                .map_err(|e| self.err(e))?;
            pruned += deleted as u64;
            if deleted < CHUNK {
                return Ok(pruned);
            }
        }
    }

    /// The byte offset the import of segment `name` reached, if it began.
    pub(crate) fn segment_progress(&self, name: &str) -> Result<Option<u64>, RegistryError> {
        self.conn
            .query_row(
                "SELECT imported_through FROM request_log_segments WHERE name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|o| o.map(|v| v as u64))
            .map_err(|e| self.err(e))
    }

    /// Request-log rows, oldest first (`at_unix` to the second).
    pub fn logged_requests(&self) -> Result<Vec<RequestRecord>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT request_id, CAST(strftime('%s', at) AS REAL), route, model, input, output, latency_ms
                 FROM requests ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            Ok(RequestRecord {
                request_id: r.get(0)?,
                at_unix: r.get(1)?,
                route: r.get(2)?,
                model: r.get(3)?,
                input: r.get(4)?,
                output: r.get(5)?,
                latency_ms: r.get(6)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.err(e))
    }

    /// Stores observed outcomes (0 or 1) of earlier requests in one
    /// transaction; a later report for the same request replaces the earlier.
    pub fn record_outcomes(&mut self, outcomes: &[(String, u8)]) -> Result<(), RegistryError> {
        let path = self.path.clone();
        let err = |source| RegistryError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO outcomes (request_id, outcome) VALUES (?1, ?2)
                     ON CONFLICT(request_id) DO UPDATE SET outcome = excluded.outcome,
                     received_at = excluded.received_at",
                )
                .map_err(err)?;
            for (request_id, outcome) in outcomes {
                stmt.execute(params![request_id, outcome]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// The logged output of every request on `route` answered by `model`
    /// (`name` matches every version, `name@3` one) that has an observed
    /// outcome: `(output JSON, outcome)`, oldest first.
    pub fn outputs_with_outcomes(
        &self,
        route: &str,
        model: &str,
    ) -> Result<Vec<(String, u8)>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.output, o.outcome FROM requests r \
                 JOIN outcomes o ON o.request_id = r.request_id \
                 WHERE r.route = ?1 AND (r.model = ?2 OR r.model LIKE ?2 || '@%') \
                 ORDER BY r.id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![route, model], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }

    /// Every stored outcome: `(request_id, outcome)`, by request id.
    pub fn outcomes(&self) -> Result<Vec<(String, u8)>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT request_id, outcome FROM outcomes ORDER BY request_id")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))
    }
}

/// The cascade catalog: versioned definitions, deletions as tombstones.
impl Catalog {
    /// Stores `definition` as the next version of cascade `name` and returns
    /// that version. The caller has compiled it; the catalog only keeps it.
    pub fn put_cascade(&mut self, name: &str, definition: &Value) -> Result<i64, RegistryError> {
        self.next_cascade_version(name, Some(definition.to_string()))
    }

    /// Deletes cascade `name` by storing a tombstone version; returns the
    /// version that was live, or `None` when there was none. Earlier
    /// versions stay readable by number for the request log's sake.
    pub fn delete_cascade(&mut self, name: &str) -> Result<Option<i64>, RegistryError> {
        let Some(live) = self.cascade(name)? else {
            return Ok(None);
        };
        self.next_cascade_version(name, None)?;
        Ok(Some(live.version))
    }

    /// Appends a version (a definition, or `None` for a tombstone). The
    /// write lock is taken first, so a server and `kaskad cascades apply`
    /// storing the same name at once get different versions.
    fn next_cascade_version(
        &mut self,
        name: &str,
        definition: Option<String>,
    ) -> Result<i64, RegistryError> {
        let path = self.path.clone();
        let err = |source| RegistryError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let version: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM cascades WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .map_err(err)?;
        tx.execute(
            "INSERT INTO cascades (name, version, definition) VALUES (?1, ?2, ?3)",
            params![name, version, definition],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(version)
    }

    /// The latest version of cascade `name`, unless it was deleted since.
    pub fn cascade(&self, name: &str) -> Result<Option<CascadeRecord>, RegistryError> {
        let row = self
            .conn
            .query_row(
                "SELECT name, version, definition, created_at FROM cascades
                 WHERE name = ?1 ORDER BY version DESC LIMIT 1",
                [name],
                cascade_row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        row.and_then(|row| self.cascade_record(row).transpose())
            .transpose()
    }

    /// Version `version` of cascade `name`, also after a deletion; `None`
    /// when there is no such version or it is a tombstone.
    pub fn cascade_version(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<CascadeRecord>, RegistryError> {
        let row = self
            .conn
            .query_row(
                "SELECT name, version, definition, created_at FROM cascades
                 WHERE name = ?1 AND version = ?2",
                params![name, version],
                cascade_row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        row.and_then(|row| self.cascade_record(row).transpose())
            .transpose()
    }

    /// The latest version of every cascade that is not deleted, by name.
    pub fn cascades(&self) -> Result<Vec<CascadeRecord>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.name, c.version, c.definition, c.created_at FROM cascades c
                 WHERE c.version = (SELECT MAX(version) FROM cascades WHERE name = c.name)
                   AND c.definition IS NOT NULL
                 ORDER BY c.name",
            )
            .map_err(|e| self.err(e))?;
        let rows: Vec<CascadeRow> = stmt
            .query_map([], cascade_row)
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .filter_map(|row| self.cascade_record(row).transpose())
            .collect()
    }

    /// `None` for a tombstone.
    fn cascade_record(&self, row: CascadeRow) -> Result<Option<CascadeRecord>, RegistryError> {
        let (name, version, definition, created_at) = row;
        let Some(definition) = definition else {
            return Ok(None);
        };
        Ok(Some(CascadeRecord {
            definition: self.json(&definition)?,
            name,
            version,
            created_at,
        }))
    }
}

type CascadeRow = (String, i64, Option<String>, String);

fn cascade_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CascadeRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn set_alias_in(conn: &Connection, name: &str, alias: &str, version: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO aliases (name, alias, version) VALUES (?1, ?2, ?3)
         ON CONFLICT(name, alias) DO UPDATE SET version = excluded.version",
        params![name, alias, version],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn version(name: &str) -> NewVersion {
        NewVersion {
            name: name.into(),
            algorithm: "lr".into(),
            params: json!({"c": 1.0}),
            metrics: json!({"auc": 0.8}),
            cv_auc: Some(0.79),
            trained_on: vec![1, 2],
            artifact_path: "models/x/1/model.json".into(),
            run_id: None,
            train_seconds: 0.1,
            peak_rss_bytes: 1,
        }
    }

    #[test]
    fn request_times_are_written_as_sqlite_writes_them() {
        let conn = Connection::open_in_memory().unwrap();
        for at in [
            0.0,
            1_700_000_000.0,
            1_700_000_000.000_5,
            1_700_000_000.999_5,
            1_790_123_456.789_4,
            1_790_123_456.999_9,
            951_782_400.25, // 2000-02-29
            4_102_444_799.999_6,
        ] {
            let sqlite: String = conn
                .query_row(
                    "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ?1, 'unixepoch')",
                    [at],
                    |r| r.get(0),
                )
                .unwrap();
            let mut ours = String::new();
            write_sqlite_millis(&mut ours, at);
            assert_eq!(ours, sqlite, "{at}");
        }
    }

    #[test]
    fn pruning_deletes_only_entries_older_than_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("kaskad.db")).unwrap();
        let records: Vec<RequestRecord> = [100.0, 200.5, 300.0, 150.0]
            .iter()
            .enumerate()
            .map(|(i, &t)| RequestRecord {
                request_id: format!("r{i}"),
                at_unix: 1_700_000_000.0 + t,
                route: "/v1/models/{name}/score".into(),
                model: "m@1".into(),
                input: "{}".into(),
                output: "{}".into(),
                latency_ms: 0.1,
            })
            .collect();
        c.import_requests("s1", &records, 8).unwrap();
        assert_eq!(c.prune_requests(1_700_000_000.0 + 200.0).unwrap(), 2);
        let left: Vec<String> = c
            .logged_requests()
            .unwrap()
            .into_iter()
            .map(|r| r.request_id)
            .collect();
        assert_eq!(left, ["r1", "r2"]);
        assert_eq!(c.prune_requests(1_700_000_000.0).unwrap(), 0);
    }

    #[test]
    fn batches_are_unique_by_content_and_runs_mark_them_processed() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("k.db")).unwrap();
        let b = NewBatch {
            origin: "f rows 1–2".into(),
            rows: 2,
            columns: 3,
            content_hash: "abc".into(),
            time_range: None,
            meta: json!({}),
            raw_path: "raw/1.parquet".into(),
        };
        let id = c.insert_batch(&b).unwrap();
        assert!(matches!(
            c.insert_batch(&b),
            Err(RegistryError::DuplicateBatch { id: 1, .. })
        ));
        assert!(!c.batches().unwrap()[0].processed);
        let run = c.start_run(Some(id)).unwrap();
        c.finish_run(run, &[], None, 0).unwrap();
        assert!(c.batches().unwrap()[0].processed);
        let failed = c.start_run(Some(id)).unwrap();
        let _ = failed;
        assert_eq!(
            c.runs().unwrap()[1].failed_stage.as_deref(),
            Some("interrupted")
        );
    }

    #[test]
    fn registering_several_versions_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("k.db")).unwrap();
        c.register(1, &version("m"), &["champion"]).unwrap();
        let (two, three) = (version("m"), version("m"));
        // The second entry repeats version 1, so the whole batch is refused:
        // version 2 is not left behind and the champion does not move.
        assert!(
            c.register_all(&[(2, &two, &["champion"]), (1, &three, &[])])
                .is_err()
        );
        assert_eq!(c.next_version("m").unwrap(), 2);
        assert_eq!(c.resolve("m@champion").unwrap().version, 1);
        c.register_all(&[(2, &two, &[]), (3, &three, &["champion"])])
            .unwrap();
        assert_eq!(c.next_version("m").unwrap(), 4);
        assert_eq!(c.resolve("m@champion").unwrap().version, 3);
    }

    #[test]
    fn versions_aliases_and_references_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(&dir.path().join("k.db")).unwrap();
        assert!(
            c.resolve("m")
                .unwrap_err()
                .to_string()
                .contains("no model is registered")
        );
        c.register(1, &version("m"), &["champion"]).unwrap();
        c.register(2, &version("m"), &[]).unwrap();
        assert_eq!(c.next_version("m").unwrap(), 3);
        assert_eq!(c.resolve("m").unwrap().version, 1);
        assert_eq!(c.resolve("m@2").unwrap().version, 2);
        c.set_alias("m", "champion", 2).unwrap();
        assert_eq!(c.resolve("m@champion").unwrap().version, 2);
        assert!(c.resolve("m@9").is_err());
        assert!(c.set_alias("m", "champion", 9).is_err());
        assert!(
            c.resolve("other")
                .unwrap_err()
                .to_string()
                .contains("known: m")
        );
        // Reopening keeps everything.
        drop(c);
        let c = Catalog::open(&dir.path().join("k.db")).unwrap();
        assert_eq!(c.versions(Some("m")).unwrap()[1].aliases, vec!["champion"]);
    }

    #[test]
    fn a_version_1_catalog_migrates_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch("PRAGMA user_version = 1; INSERT INTO settings VALUES ('k', '1');")
                .unwrap();
        }
        let mut c = Catalog::open(&path).unwrap();
        assert_eq!(c.setting("k").unwrap(), Some(json!(1)));
        let id = c.create_key("ab12", Role::Scorer).unwrap();
        let key = c.find_key("ab12").unwrap().unwrap();
        assert_eq!((key.id, key.role), (id, Role::Scorer));
        assert!(c.find_key("ffff").unwrap().is_none());
        assert!(
            c.create_key("ab12", Role::Admin).is_err(),
            "hashes are unique"
        );
        assert!("root".parse::<Role>().is_err());
        // A revoked key is found no more, and stays listed with its time.
        let other = c.create_key("cd34", Role::Viewer).unwrap();
        assert!(c.revoke_key(id).unwrap());
        let first = c.keys().unwrap()[0].revoked_at.clone();
        assert!(c.revoke_key(id).unwrap(), "revoking twice is fine");
        assert!(c.find_key("ab12").unwrap().is_none());
        assert_eq!(c.find_key("cd34").unwrap().unwrap().id, other);
        assert!(!c.revoke_key(999).unwrap(), "no such key");
        let keys = c.keys().unwrap();
        assert_eq!(keys.iter().map(|k| k.id).collect::<Vec<_>>(), [id, other]);
        assert!(first.is_some() && keys[0].revoked_at == first);
        assert_eq!(keys[1].revoked_at, None);

        c.import_requests(
            "s1",
            &[RequestRecord {
                request_id: "r1".into(),
                at_unix: 1_700_000_000.5,
                route: "/v1/models/{name}/score".into(),
                model: "m@1".into(),
                input: "{}".into(),
                output: "{}".into(),
                latency_ms: 1.5,
            }],
            100,
        )
        .unwrap();
        assert_eq!(c.segment_progress("s1").unwrap(), Some(100));
        let logged = c.logged_requests().unwrap();
        assert_eq!(logged.len(), 1);
        assert_eq!(
            logged[0].at_unix, 1_700_000_000.0,
            "stored to the second and back"
        );

        c.record_outcomes(&[("r1".into(), 1), ("r2".into(), 0)])
            .unwrap();
        c.record_outcomes(&[("r1".into(), 0)]).unwrap();
        assert_eq!(
            c.outcomes().unwrap(),
            vec![("r1".to_string(), 0), ("r2".to_string(), 0)]
        );
    }

    #[test]
    fn cascades_are_versioned_and_deleted_by_tombstone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let mut c = Catalog::open(&path).unwrap();
        assert_eq!(c.cascade("a").unwrap(), None);
        assert_eq!(c.delete_cascade("a").unwrap(), None);
        assert_eq!(c.put_cascade("a", &json!({"v": 1})).unwrap(), 1);
        assert_eq!(c.put_cascade("a", &json!({"v": 2})).unwrap(), 2);
        assert_eq!(c.put_cascade("b", &json!({"v": 1})).unwrap(), 1);
        let latest = c.cascade("a").unwrap().unwrap();
        assert_eq!((latest.version, latest.definition), (2, json!({"v": 2})));
        assert_eq!(
            c.cascade_version("a", 1).unwrap().unwrap().definition,
            json!({"v": 1})
        );
        let listed: Vec<(String, i64)> = c
            .cascades()
            .unwrap()
            .into_iter()
            .map(|r| (r.name, r.version))
            .collect();
        assert_eq!(listed, [("a".to_string(), 2), ("b".to_string(), 1)]);

        assert_eq!(c.delete_cascade("a").unwrap(), Some(2));
        assert_eq!(c.cascade("a").unwrap(), None);
        assert_eq!(c.delete_cascade("a").unwrap(), None);
        assert_eq!(c.cascade_version("a", 3).unwrap(), None, "the tombstone");
        assert!(
            c.cascade_version("a", 2).unwrap().is_some(),
            "history stays"
        );
        assert_eq!(c.cascades().unwrap().len(), 1);
        // A new definition after a deletion takes the next number.
        assert_eq!(c.put_cascade("a", &json!({"v": 4})).unwrap(), 4);
        drop(c);
        let c = Catalog::open(&path).unwrap();
        assert_eq!(c.cascade("a").unwrap().unwrap().version, 4);
    }

    #[test]
    fn a_version_2_catalog_gains_cascades() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch(MIGRATION_2).unwrap();
            conn.execute_batch("PRAGMA user_version = 2;").unwrap();
        }
        let mut c = Catalog::open(&path).unwrap();
        assert_eq!(c.put_cascade("a", &json!({})).unwrap(), 1);
        let version: i64 = c
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    fn search(run_id: i64) -> SearchRecord {
        let candidate = |family: &str, cv: Option<f64>| CandidateRecord {
            family: family.into(),
            variant: "onehot".into(),
            params: json!({"algorithm": family}),
            predicted_auc: Some(0.7),
            evaluated: cv.is_some(),
            cv_auc: cv,
            cv_auc_sd: cv.map(|_| 0.01),
            fit_seconds: 0.5,
        };
        SearchRecord {
            run_id,
            batch_id: Some(1),
            meta_features: vec![("log_rows".into(), 6.9), ("positive_rate".into(), 0.3)],
            budget: 1,
            candidates: vec![candidate("tree", Some(0.74)), candidate("lr", None)],
        }
    }

    #[test]
    fn a_version_3_catalog_keeps_its_rows_and_gains_searches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch(MIGRATION_2).unwrap();
            conn.execute_batch(MIGRATION_3).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 3;
                 INSERT INTO settings VALUES ('k', '3');
                 INSERT INTO batches (origin, rows, columns, content_hash, meta, raw_path)
                     VALUES ('f', 10, 2, 'h1', '{}', 'raw/1.parquet');
                 INSERT INTO runs (batch_id, ok) VALUES (1, 1);
                 INSERT INTO cascades (name, version, definition) VALUES ('c', 1, '{}');",
            )
            .unwrap();
        }
        let mut c = Catalog::open(&path).unwrap();
        assert_eq!(c.setting("k").unwrap(), Some(json!(3)));
        assert!(c.batches().unwrap()[0].processed);
        assert_eq!(c.cascade("c").unwrap().unwrap().version, 1);
        let version: i64 = c
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert!(c.searches().unwrap().is_empty());
        c.record_search(&search(1)).unwrap();
        assert!(c.record_search(&search(1)).is_err(), "one search per run");
        drop(c);
        let c = Catalog::open(&path).unwrap();
        assert_eq!(c.searches().unwrap(), vec![search(1)]);
    }

    #[test]
    fn a_version_5_catalog_gains_rejected_inputs_recorded_once_per_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in [SCHEMA, MIGRATION_2, MIGRATION_3, MIGRATION_4, MIGRATION_5] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch("PRAGMA user_version = 5;").unwrap();
        }
        let c = Catalog::open(&path).unwrap();
        assert!(c.record_rejection("b.csv", "h1", "b.csv:2: bad").unwrap());
        assert!(!c.record_rejection("b.csv", "h1", "b.csv:2: bad").unwrap());
        assert!(c.record_rejection("b.csv", "h2", "b.csv:3: bad").unwrap());
        let rejected = c.rejected_inputs().unwrap();
        assert_eq!(rejected.len(), 2);
        assert_eq!(
            (rejected[1].origin.as_str(), rejected[1].error.as_str()),
            ("b.csv", "b.csv:3: bad")
        );
    }
}
