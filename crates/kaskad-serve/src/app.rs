//! The server's shared state: configuration, the catalog, caches of keys,
//! alias resolutions and loaded models, metrics and the request log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use kaskad_registry::{Catalog, ModelArtifact, RegistryError, Role};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::request_log::RequestLog;

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
}

impl ServeConfig {
    pub fn new(db_path: PathBuf, default_model: String, target: String) -> ServeConfig {
        ServeConfig {
            db_path,
            default_model,
            target,
            inbox: None,
            body_limit: 1024 * 1024,
            timeout: Duration::from_secs(5),
            alias_ttl: Duration::from_secs(1),
            log_queue: 10_000,
        }
    }
}

/// A model ready to score: the artifact and its `name@version`.
#[derive(Clone)]
pub(crate) struct Served {
    pub artifact: Arc<ModelArtifact>,
    pub label: String,
}

/// Cheap to clone: every handler gets one.
#[derive(Clone)]
pub(crate) struct App(Arc<Inner>);

pub(crate) struct Inner {
    pub config: ServeConfig,
    catalog: Arc<Mutex<Catalog>>,
    /// Roles of keys seen before. Keys cannot be revoked yet, so a hit never
    /// goes stale; misses always ask the catalog, so a key made by `kaskad
    /// keys create` while the server runs works at once.
    keys: RwLock<HashMap<String, Role>>,
    /// Reference (`name`, `name@alias`, `name@3`) → when it was resolved and
    /// to what (`name@version`, artifact path).
    resolved: Mutex<HashMap<String, (Instant, String, PathBuf)>>,
    /// Loaded artifacts by `name@version`; a version never changes, so they
    /// stay until the server stops.
    artifacts: Mutex<HashMap<String, Arc<ModelArtifact>>>,
    pub metrics: Metrics,
    pub log: RequestLog,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a cache lock leaves a usable map behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl App {
    pub(crate) fn new(
        config: ServeConfig,
        catalog: Catalog,
        metrics: Metrics,
        log: RequestLog,
    ) -> App {
        App(Arc::new(Inner {
            config,
            catalog: Arc::new(Mutex::new(catalog)),
            keys: RwLock::default(),
            resolved: Mutex::default(),
            artifacts: Mutex::default(),
            metrics,
            log,
        }))
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

    /// The role of the key whose hash is `hash`, if it is a key.
    pub(crate) async fn role_of(&self, hash: &str) -> Result<Option<Role>, ApiError> {
        let cached = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .copied();
        if cached.is_some() {
            return Ok(cached);
        }
        let owned = hash.to_string();
        let found = self.db(move |c| c.find_key(&owned)).await?;
        if let Some(key) = &found {
            self.keys
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(hash.to_string(), key.role);
        }
        Ok(found.map(|k| k.role))
    }

    /// Resolves a reference and loads its artifact. A resolution is reused
    /// for `alias_ttl`, so a champion promoted by another process (`kaskad
    /// update`) is served at most that long after its promotion, while a
    /// request costs no catalog query; `name@VERSION` never changes and is
    /// cached the same way.
    pub(crate) async fn model(&self, reference: &str) -> Result<Served, ApiError> {
        let fresh = lock(&self.resolved)
            .get(reference)
            .filter(|(at, _, _)| at.elapsed() < self.config.alias_ttl)
            .map(|(_, label, path)| (label.clone(), path.clone()));
        let (label, path) = match fresh {
            Some(found) => found,
            None => {
                let owned = reference.to_string();
                let record = self.db(move |c| c.resolve(&owned)).await?;
                let label = format!("{}@{}", record.name, record.version);
                lock(&self.resolved).insert(
                    reference.to_string(),
                    (Instant::now(), label.clone(), record.artifact_path.clone()),
                );
                (label, record.artifact_path)
            }
        };
        if let Some(artifact) = lock(&self.artifacts).get(&label) {
            return Ok(Served {
                artifact: Arc::clone(artifact),
                label,
            });
        }
        // Two requests may load the same new version at once; both succeed
        // and one copy is kept, which is cheaper than serializing loads.
        let artifact = tokio::task::spawn_blocking(move || ModelArtifact::load(&path))
            .await
            .map_err(ApiError::internal)??;
        let artifact = Arc::clone(
            lock(&self.artifacts)
                .entry(label.clone())
                .or_insert_with(|| Arc::new(artifact)),
        );
        Ok(Served { artifact, label })
    }

    /// Forgets every resolution, after this server moved an alias itself.
    pub(crate) fn forget_resolutions(&self) {
        lock(&self.resolved).clear();
    }
}
