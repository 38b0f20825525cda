//! Registry models ready to score: references resolved with a time to live,
//! artifacts loaded once per `name@version`. The server's routes, cascade
//! compilation and `kaskad cascades` share it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kaskad_cascade::{Field, FieldKind, ModelCatalog, ModelInfo};
use kaskad_core::ColumnKind;
use kaskad_registry::{Catalog, RegistryError, Servable};

use crate::error::ApiError;

/// A model ready to score: the artifact and its `name@version`.
#[derive(Clone)]
pub struct Served {
    pub artifact: Arc<Servable>,
    pub label: String,
}

/// The models of one catalog, cached.
pub struct ModelStore {
    catalog: Arc<Mutex<Catalog>>,
    ttl: Duration,
    resolved: Mutex<Resolutions>,
    /// Loaded artifacts by `name@version` (a trained one compiled into its
    /// scoring plan); a version never changes, so they stay as long as the
    /// store.
    artifacts: Mutex<HashMap<String, Arc<Servable>>>,
}

/// Reference (`name`, `name@alias`, `name@3`) → when the catalog was asked
/// and what it answered (`name@version`, artifact path).
///
/// A resolution is kept only if no later-asked one is, and none asked
/// before the last [`ModelStore::forget_resolutions`]: a slow lookup that
/// read the catalog before a promotion cannot put the old champion back
/// after a request was answered by the new one.
#[derive(Default)]
struct Resolutions {
    by_reference: HashMap<String, (Instant, String, PathBuf)>,
    forgotten_at: Option<Instant>,
    /// References being resolved again in the background.
    refreshing: HashSet<String>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a cache lock leaves a usable map behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ModelStore {
    /// A resolution is reused for `ttl`, so a champion promoted by another
    /// process (`kaskad update`) is served at most that long after its
    /// promotion, while a request costs no catalog query.
    pub fn new(catalog: Arc<Mutex<Catalog>>, ttl: Duration) -> ModelStore {
        ModelStore {
            catalog,
            ttl,
            resolved: Mutex::default(),
            artifacts: Mutex::default(),
        }
    }

    /// What `reference` resolved to less than `ttl` ago.
    fn fresh(&self, reference: &str) -> Option<(String, PathBuf)> {
        lock(&self.resolved)
            .by_reference
            .get(reference)
            .filter(|(at, _, _)| at.elapsed() < self.ttl)
            .map(|(_, label, path)| (label.clone(), path.clone()))
    }

    /// What `reference` last resolved to, and whether that is `ttl` old.
    fn last_resolved(&self, reference: &str) -> Option<(String, bool)> {
        lock(&self.resolved)
            .by_reference
            .get(reference)
            .map(|(at, label, _)| (label.clone(), at.elapsed() >= self.ttl))
    }

    fn loaded(&self, label: String) -> Option<Served> {
        let artifact = Arc::clone(lock(&self.artifacts).get(&label)?);
        Some(Served { artifact, label })
    }

    /// Resolves a reference and loads its artifact, blocking on the catalog
    /// and the disk; async code calls [`ModelStore::model`].
    pub fn load(&self, reference: &str) -> Result<Served, RegistryError> {
        let (label, path) = match self.fresh(reference) {
            Some(found) => found,
            None => {
                let asked = Instant::now();
                let record = lock(&self.catalog).resolve(reference)?;
                let label = format!("{}@{}", record.name, record.version);
                let mut resolved = lock(&self.resolved);
                let current = resolved.forgotten_at.is_none_or(|at| asked >= at)
                    && resolved
                        .by_reference
                        .get(reference)
                        .is_none_or(|(at, _, _)| asked >= *at);
                if current {
                    resolved.by_reference.insert(
                        reference.to_string(),
                        (asked, label.clone(), record.artifact_path.clone()),
                    );
                }
                (label, record.artifact_path)
            }
        };
        if let Some(served) = self.loaded(label.clone()) {
            return Ok(served);
        }
        // Two requests may load the same new version at once; both succeed
        // and one copy is kept, which is cheaper than serializing loads.
        let artifact = Servable::load(&path)?;
        let artifact = Arc::clone(
            lock(&self.artifacts)
                .entry(label.clone())
                .or_insert_with(|| Arc::new(artifact)),
        );
        Ok(Served { artifact, label })
    }

    /// [`ModelStore::load`] for async code: a cached model costs no thread
    /// hop; anything else goes to a blocking thread, since SQLite may wait
    /// for another process's write and must not stall the async workers.
    ///
    /// A resolution older than `ttl` still answers while one background
    /// task asks the catalog again (and loads a new champion's artifact):
    /// a busy server would otherwise send every request that arrives
    /// during the lookup to the catalog, once a second.
    pub async fn model(self: &Arc<Self>, reference: &str) -> Result<Served, ApiError> {
        if let Some((label, stale)) = self.last_resolved(reference)
            && let Some(served) = self.loaded(label)
        {
            if stale {
                self.refresh_in_background(reference);
            }
            return Ok(served);
        }
        let store = Arc::clone(self);
        let owned = reference.to_string();
        tokio::task::spawn_blocking(move || store.load(&owned))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    /// Resolves `reference` again on a blocking thread, unless that is
    /// under way. A reference that no longer resolves is forgotten, so the
    /// next request gets the catalog's answer; any other failure (the
    /// catalog busy, an artifact unreadable) keeps the last resolution for
    /// another `ttl`.
    fn refresh_in_background(self: &Arc<Self>, reference: &str) {
        if !lock(&self.resolved)
            .refreshing
            .insert(reference.to_string())
        {
            return;
        }
        let store = Arc::clone(self);
        let owned = reference.to_string();
        tokio::task::spawn_blocking(move || {
            let outcome = store.load(&owned);
            let mut resolved = lock(&store.resolved);
            resolved.refreshing.remove(&owned);
            match outcome {
                Ok(_) => {}
                Err(RegistryError::UnknownModel { .. }) => {
                    resolved.by_reference.remove(&owned);
                }
                Err(e) => {
                    eprintln!(
                        "kaskad serve: resolving {owned} again failed, still serving the last resolution: {e}"
                    );
                    if let Some(entry) = resolved.by_reference.get_mut(&owned) {
                        entry.0 = Instant::now();
                    }
                }
            }
        });
    }

    /// Forgets every resolution, after this process moved an alias itself.
    pub fn forget_resolutions(&self) {
        let mut resolved = lock(&self.resolved);
        resolved.by_reference.clear();
        resolved.forgotten_at = Some(Instant::now());
    }
}

/// What a cascade module sees of a registry model: its raw columns in, and
/// what the scorer returns out (see [`crate::CascadeScorer`]).
pub(crate) fn model_info(artifact: &Servable) -> ModelInfo {
    ModelInfo {
        inputs: artifact
            .input_columns()
            .iter()
            .map(|(name, kind)| {
                let kind = match kind {
                    ColumnKind::Numeric => FieldKind::Numeric,
                    ColumnKind::Categorical => FieldKind::Categorical,
                };
                Field::new(name.clone(), kind)
            })
            .collect(),
        outputs: vec![
            Field::new("score", FieldKind::Numeric),
            Field::new("decision", FieldKind::Categorical),
            Field::new("reasons", FieldKind::Categorical),
            Field::new("model", FieldKind::Categorical),
        ],
    }
}

/// The compiler asks the registry; it blocks, so the server compiles on a
/// blocking thread.
impl ModelCatalog for ModelStore {
    fn resolve(&self, reference: &str) -> Result<ModelInfo, String> {
        match self.load(reference) {
            Ok(served) => Ok(model_info(&served.artifact)),
            Err(RegistryError::UnknownModel { reason, .. }) => Err(reason),
            Err(other) => Err(other.to_string()),
        }
    }
}
