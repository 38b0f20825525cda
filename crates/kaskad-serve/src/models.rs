//! Registry models ready to score: references resolved with a time to live,
//! artifacts loaded once per `name@version`. The server's routes, cascade
//! compilation and `kaskad cascades` share it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kaskad_cascade::{Field, FieldKind, ModelCatalog, ModelInfo};
use kaskad_core::ColumnKind;
use kaskad_registry::{Catalog, RegistryError, Servable};

use crate::error::ApiError;
use crate::refreshing::{Known, Refreshing};

/// A model ready to score: the artifact and its `name@version`.
#[derive(Clone)]
pub struct Served {
    pub artifact: Arc<Servable>,
    pub label: String,
}

/// The models of one catalog, cached.
pub struct ModelStore {
    catalog: Arc<Mutex<Catalog>>,
    /// Reference (`name`, `name@alias`, `name@3`) → what the catalog
    /// answered (`name@version`, artifact path). A resolution asked before
    /// the last [`ModelStore::forget_resolutions`] is dropped: a slow lookup
    /// that read the catalog before a promotion cannot put the old champion
    /// back after a request was answered by the new one.
    resolved: Arc<Refreshing<Arc<(String, PathBuf)>>>,
    /// Loaded artifacts by `name@version` (a trained one compiled into its
    /// scoring plan); a version never changes, so they stay as long as the
    /// store.
    artifacts: Mutex<HashMap<String, Arc<Servable>>>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a cache lock leaves a usable map behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ModelStore {
    /// A resolution is reused for `ttl`, then asked again in the background
    /// while it still answers, so a champion promoted by another process
    /// (`kaskad update`) is served about `ttl` after its promotion (plus
    /// the time to load its artifact), and a request never waits for the
    /// catalog once its reference was resolved.
    pub fn new(catalog: Arc<Mutex<Catalog>>, ttl: Duration) -> ModelStore {
        ModelStore {
            catalog,
            resolved: Arc::new(Refreshing::new(ttl)),
            artifacts: Mutex::default(),
        }
    }

    fn loaded(&self, label: String) -> Option<Served> {
        let artifact = Arc::clone(lock(&self.artifacts).get(&label)?);
        Some(Served { artifact, label })
    }

    /// Resolves a reference and loads its artifact, blocking on the catalog
    /// and the disk; async code calls [`ModelStore::model`].
    pub fn load(&self, reference: &str) -> Result<Served, RegistryError> {
        let resolution = match self.resolved.get(reference) {
            Known::Fresh(found) => found,
            Known::Stale(_) | Known::Unknown => {
                let asked = Instant::now();
                let record = lock(&self.catalog).resolve(reference)?;
                let label = format!("{}@{}", record.name, record.version);
                let resolution = Arc::new((label, record.artifact_path));
                self.resolved
                    .store(reference, asked, Arc::clone(&resolution));
                resolution
            }
        };
        let (label, path) = &*resolution;
        if let Some(served) = self.loaded(label.clone()) {
            return Ok(served);
        }
        let label = label.clone();
        // Two requests may load the same new version at once; both succeed
        // and one copy is kept, which is cheaper than serializing loads.
        let artifact = Servable::load(path)?;
        let artifact = Arc::clone(
            lock(&self.artifacts)
                .entry(label.clone())
                .or_insert_with(|| Arc::new(artifact)),
        );
        Ok(Served { artifact, label })
    }

    /// [`ModelStore::load`] for async code: a resolved reference whose
    /// artifact is loaded costs no thread hop (a stale one starts its
    /// refresh in the background); anything else goes to a blocking
    /// thread, since SQLite may wait for another process's write and must
    /// not stall the async workers.
    pub async fn model(self: &Arc<Self>, reference: &str) -> Result<Served, ApiError> {
        let (last, stale) = match self.resolved.get(reference) {
            Known::Fresh(resolution) => (Some(resolution), false),
            Known::Stale(resolution) => (Some(resolution), true),
            Known::Unknown => (None, false),
        };
        if let Some(served) = last.and_then(|resolution| self.loaded(resolution.0.clone())) {
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

    /// Resolves `reference` again (and loads a new version's artifact) on
    /// a blocking thread, unless that is under way. A reference that no
    /// longer resolves is dropped, so the next request gets the catalog's
    /// answer; any other failure (the catalog busy, an artifact
    /// unreadable) keeps the last resolution for another `ttl`.
    fn refresh_in_background(self: &Arc<Self>, reference: &str) {
        self.resolved
            .refresh_in_background(reference, "a model reference", || {
                let store = Arc::clone(self);
                let owned = reference.to_string();
                async move {
                    tokio::task::spawn_blocking(move || {
                        let asked = Instant::now();
                        match store.load(&owned) {
                            Ok(_) => Ok(()),
                            Err(RegistryError::UnknownModel { .. }) => {
                                store.resolved.remove(&owned, asked);
                                Ok(())
                            }
                            Err(e) => Err(format!("{owned}: {e}")),
                        }
                    })
                    .await
                    .map_err(|e| e.to_string())?
                }
            });
    }

    /// Forgets every resolution, after this process moved an alias itself.
    pub fn forget_resolutions(&self) {
        self.resolved.forget_all();
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
