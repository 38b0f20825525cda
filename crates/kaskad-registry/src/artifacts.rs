//! Model artifacts on disk: one folder per version, written atomically.
//!
//! The artifact is JSON, stored gzip-compressed as [`ARTIFACT_FILE`]: field
//! names, category levels and base64 tensors all compress, so every version
//! takes about 70 % of its plain size, and a variant's size compares with
//! another's by what they hold rather than by how JSON spells it. `zcat`
//! shows it; plain `model.json` files written before still read.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::RegistryError;

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The artifact's file in a version's folder.
pub const ARTIFACT_FILE: &str = "model.json.gz";

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Writes `artifact` as `dir/`[`ARTIFACT_FILE`]. The folder is built under a
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
    let file_path = tmp.join(ARTIFACT_FILE);
    let bytes = serde_json::to_vec(artifact).map_err(|e| RegistryError::Corrupt {
        path: file_path.clone(),
        message: e.to_string(),
    })?;
    let file = std::fs::File::create(&file_path).map_err(io(&file_path))?;
    let mut writer = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    writer.write_all(&bytes).map_err(io(&file_path))?;
    writer
        .finish()
        .map_err(io(&file_path))?
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
    Ok(dir.join(ARTIFACT_FILE))
}

/// Reads `path`: an [`ARTIFACT_FILE`], or a plain `model.json` from before.
pub fn read_artifact<T: DeserializeOwned>(path: &Path) -> Result<T, RegistryError> {
    let mut bytes = fs_err::read(path).map_err(|e| RegistryError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(e.kind(), e.to_string()),
    })?;
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut json = Vec::with_capacity(bytes.len() * 4);
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut json)
            .map_err(|e| RegistryError::Corrupt {
                path: path.to_path_buf(),
                message: format!("not a complete gzip stream: {e}"),
            })?;
        bytes = json;
    }
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_are_stored_compressed_and_plain_ones_still_read() {
        let home = tempfile::tempdir().unwrap();
        let artifact = serde_json::json!({"name": "m", "levels": vec!["owner"; 200]});
        let path = write_artifact(&home.path().join("m/1"), &artifact).unwrap();
        assert!(path.ends_with(ARTIFACT_FILE));
        let stored = std::fs::read(&path).unwrap();
        assert!(stored.starts_with(&GZIP_MAGIC));
        assert!(stored.len() < serde_json::to_vec(&artifact).unwrap().len() / 10);
        assert_eq!(read_artifact::<serde_json::Value>(&path).unwrap(), artifact);

        let plain = home.path().join("model.json");
        std::fs::write(&plain, serde_json::to_vec(&artifact).unwrap()).unwrap();
        assert_eq!(
            read_artifact::<serde_json::Value>(&plain).unwrap(),
            artifact
        );

        std::fs::write(&path, &stored[..stored.len() / 2]).unwrap();
        let error = read_artifact::<serde_json::Value>(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a complete gzip stream"), "{error}");
        assert!(error.contains(ARTIFACT_FILE), "{error}");
    }
}
