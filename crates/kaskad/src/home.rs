//! The home: one folder with the configuration, the catalog and the files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kaskad_core::config::Options;
use kaskad_registry::{Catalog, Servable, VersionRecord};

/// Paths inside a kaskad home.
#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    /// A home at `root`, made absolute: the catalog stores the paths of the
    /// files under it, which must still lead there from another directory.
    pub fn new(root: &Path) -> Home {
        Home {
            root: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("kaskad.toml")
    }
    pub fn db_path(&self) -> PathBuf {
        self.root.join("kaskad.db")
    }
    pub fn raw_dir(&self) -> PathBuf {
        self.root.join("raw")
    }
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }
    pub fn reports_dir(&self) -> PathBuf {
        self.root.join("reports")
    }
    pub fn predictions_dir(&self) -> PathBuf {
        self.root.join("predictions")
    }

    /// Checks that this is a home and reads its configuration.
    pub fn options(&self) -> anyhow::Result<Options> {
        let path = self.config_path();
        if !path.exists() {
            anyhow::bail!(
                "{} is not a kaskad home (no kaskad.toml); create one with `kaskad init --home {} ...`",
                self.root.display(),
                self.root.display()
            );
        }
        Ok(Options::load(&path)?)
    }

    pub fn catalog(&self) -> anyhow::Result<Catalog> {
        Catalog::open(&self.db_path())
            .with_context(|| format!("opening the catalog of {}", self.root.display()))
    }

    /// The home's configuration and catalog, and the version `reference`
    /// names (`--model`; the project's champion when it names none) loaded
    /// to score.
    pub fn model(&self, reference: Option<&str>) -> anyhow::Result<HomeModel> {
        let options = self.options()?;
        let catalog = self.catalog()?;
        let (record, artifact) = catalog.load_model(reference.unwrap_or(&options.data.name))?;
        Ok(HomeModel {
            options,
            catalog,
            record,
            artifact,
        })
    }

    /// Creates the folders of a home; fails with the path when it cannot.
    pub fn create_dirs(&self) -> anyhow::Result<()> {
        for dir in [
            self.root.clone(),
            self.raw_dir(),
            self.models_dir(),
            self.reports_dir(),
            self.predictions_dir(),
        ] {
            fs_err::create_dir_all(&dir)
                .with_context(|| format!("cannot create the home folder {}", dir.display()))?;
        }
        Ok(())
    }
}

/// What [`Home::model`] opens.
pub struct HomeModel {
    pub options: Options,
    pub catalog: Catalog,
    pub record: VersionRecord,
    pub artifact: Servable,
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let mut file = fs_err::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}
