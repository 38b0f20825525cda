//! The server's shared state: configuration, the catalog, caches of keys,
//! models and cascades, the cascade scorer, metrics and the request log.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kaskad_registry::{Catalog, RegistryError, Role, request_log_dir};

use crate::auth::hash_key;
use crate::cascades::CascadeCache;
use crate::error::{ApiError, ServeError};
use crate::metrics::Metrics;
use crate::models::{ModelStore, Served, lock};
use crate::refreshing::{Known, Refreshing};
use crate::request_log::RequestLog;
use crate::scorer::CascadeScorer;

/// How the server runs; [`ServeConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The home's `kaskad.db`.
    pub db_path: PathBuf,
    /// The model a bare `/health/ready` checks: its champion must load.
    pub default_model: String,
    /// The target column, which a pushed batch must hold.
    pub target: String,
    /// The directory source that `POST /v1/batches` writes into; `None` when
    /// the home's source is a file.
    pub inbox: Option<PathBuf>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest a request may take, reading its body included.
    pub timeout: Duration,
    /// How long a resolved alias (`name`, `name@champion`) is trusted before
    /// the catalog is asked again.
    pub alias_ttl: Duration,
    /// Entries the request-log queue holds before new ones are dropped.
    pub log_queue: usize,
    /// Where the request log's segment files go (`request-log/` beside the
    /// catalog by default).
    pub log_dir: PathBuf,
    /// The longest the current segment stays open before it is closed and
    /// imported into the catalog's `requests` table.
    pub log_import_every: Duration,
    /// A pause in the traffic this long imports the current segment
    /// before `log_import_every` is up.
    pub log_import_after_pause: Duration,
    /// Entries older than this are deleted from the `requests` table (and
    /// counted in `kaskad_request_log_pruned_total`); `None` keeps them all.
    pub log_retention: Option<Duration>,
    /// API key sent to remote cascade modules (another `kaskad serve`).
    pub remote_key: Option<String>,
    /// The model that scores applications too unusual for the one asked.
    pub fallback: Option<Fallback>,
}

/// `[inference]` of `kaskad.toml`: which applications are too unusual for
/// a model (see `ModelArtifact::unusual_rows`) and who scores them instead.
#[derive(Debug, Clone)]
pub struct Fallback {
    /// `name@alias` or `name@version`.
    pub model: String,
    pub max_missing_share: f64,
    pub range_factor: f64,
}

impl ServeConfig {
    pub fn new(db_path: PathBuf, default_model: String, target: String) -> ServeConfig {
        ServeConfig {
            log_dir: request_log_dir(&db_path),
            db_path,
            default_model,
            target,
            inbox: None,
            body_limit: 1024 * 1024,
            timeout: Duration::from_secs(5),
            alias_ttl: Duration::from_secs(1),
            log_queue: 10_000,
            log_import_every: Duration::from_secs(60),
            log_import_after_pause: Duration::from_secs(1),
            log_retention: None,
            remote_key: None,
            fallback: None,
        }
    }
}

/// Cheap to clone: every handler gets one.
#[derive(Clone)]
pub(crate) struct App(Arc<Inner>);

pub(crate) struct Inner {
    pub config: ServeConfig,
    catalog: Arc<Mutex<Catalog>>,
    /// Roles of keys seen before, by the key itself, so that a request
    /// costs no hashing; checked again in the background once `alias_ttl`
    /// old, so a revoked key stops working about that long after. Misses
    /// always ask the catalog (by the key's hash), so a key made by `kaskad
    /// keys create` while the server runs works at once.
    keys: Arc<Refreshing<Role>>,
    pub models: Arc<ModelStore>,
    pub cascades: CascadeCache,
    pub scorer: CascadeScorer,
    pub metrics: Metrics,
    pub log: RequestLog,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    pub(crate) fn new(
        config: ServeConfig,
        catalog: Catalog,
        metrics: Metrics,
        log: RequestLog,
    ) -> Result<App, ServeError> {
        let catalog = Arc::new(Mutex::new(catalog));
        let ttl = config.alias_ttl;
        let models = Arc::new(ModelStore::new(Arc::clone(&catalog), ttl));
        let scorer = CascadeScorer::new(Arc::clone(&models), config.remote_key.clone())?;
        Ok(App(Arc::new(Inner {
            config,
            catalog,
            keys: Arc::new(Refreshing::new(ttl)),
            models,
            cascades: CascadeCache::new(ttl),
            scorer,
            metrics,
            log,
        })))
    }

    /// Runs `work` on the catalog on a blocking thread: SQLite may wait for
    /// another process's write (busy timeout), which must not stall the
    /// async workers.
    pub(crate) async fn db<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Catalog) -> Result<T, RegistryError> + Send + 'static,
    {
        let catalog = Arc::clone(&self.catalog);
        tokio::task::spawn_blocking(move || work(&mut lock(&catalog)))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    /// The role of API key `key`, if it is one.
    pub(crate) async fn role_of(&self, key: &str) -> Result<Option<Role>, ApiError> {
        match self.keys.get(key) {
            Known::Fresh(role) => Ok(Some(role)),
            Known::Stale(role) => {
                self.keys
                    .refresh_in_background(key, "an API key's role", || {
                        let app = self.clone();
                        let owned = key.to_string();
                        async move {
                            app.look_up_key(&owned)
                                .await
                                .map(drop)
                                .map_err(|e| e.message)
                        }
                    });
                Ok(Some(role))
            }
            Known::Unknown => self.look_up_key(key).await,
        }
    }

    /// Asks the catalog for the role of `key` (by its hash) and caches it.
    async fn look_up_key(&self, key: &str) -> Result<Option<Role>, ApiError> {
        let asked = Instant::now();
        let hash = hash_key(key);
        let found = self.db(move |c| c.find_key(&hash)).await?.map(|k| k.role);
        match found {
            Some(role) => self.keys.store(key, asked, role),
            None => self.keys.remove(key, asked),
        }
        Ok(found)
    }

    /// Resolves a reference and loads its artifact (see [`ModelStore`]).
    pub(crate) async fn model(&self, reference: &str) -> Result<Served, ApiError> {
        self.models.model(reference).await
    }

    /// Forgets every resolution, after this server moved an alias itself.
    pub(crate) fn forget_resolutions(&self) {
        self.models.forget_resolutions();
    }
}
