//! Model artifacts on disk: one folder per version, written atomically.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::RegistryError;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `artifact` as `dir/model.json`. The folder is built under a
/// temporary name and renamed into place, so a reader (or a process killed
/// half-way) sees the complete version or no version at all.
pub fn write_artifact<T: Serialize>(dir: &Path, artifact: &T) -> Result<PathBuf, RegistryError> {
    write_artifact_with(dir, artifact, &[])
}

/// [`write_artifact`] with further files (name, bytes) in the same folder,
/// all of them in place or none.
pub fn write_artifact_with<T: Serialize>(
    dir: &Path,
    artifact: &T,
    files: &[(&str, &[u8])],
) -> Result<PathBuf, RegistryError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent).map_err(io(parent))?;
    let tmp = parent.join(format!(
        ".{}.tmp",
        dir.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    if tmp.exists() {
        fs_err::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    fs_err::create_dir_all(&tmp).map_err(io(&tmp))?;
    let file_path = tmp.join("model.json");
    let bytes = serde_json::to_vec(artifact).map_err(|e| RegistryError::Corrupt {
        path: file_path.clone(),
        message: e.to_string(),
    })?;
    let file = std::fs::File::create(&file_path).map_err(io(&file_path))?;
    use std::io::Write;
    let mut writer = std::io::BufWriter::new(file);
    writer.write_all(&bytes).map_err(io(&file_path))?;
    writer
        .into_inner()
        .map_err(|e| RegistryError::Io {
            path: file_path.clone(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io(&file_path))?;
    for (name, bytes) in files {
        let path = tmp.join(name);
        let mut file = std::fs::File::create(&path).map_err(io(&path))?;
        file.write_all(bytes).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
    }
    if dir.exists() {
        // A folder left by a run killed after the rename but before the
        // catalog commit: the catalog never referenced it, so it is replaced.
        fs_err::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    Ok(dir.join("model.json"))
}

/// Reads `path` (a `model.json`).
pub fn read_artifact<T: DeserializeOwned>(path: &Path) -> Result<T, RegistryError> {
    let bytes = fs_err::read(path).map_err(|e| RegistryError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(e.kind(), e.to_string()),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
