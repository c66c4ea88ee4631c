//! Image name → local binary.
//!
//! A Pod's container image names the binary that stands in for the image's entrypoint. The table
//! is a YAML file `images: {"fjord/worker:dev": /path/to/fjord}`. A lookup matches the exact image
//! string first, then the repository without tag or digest, so `fjord/worker` also matches
//! `fjord/worker:1.2` and `fjord/worker@sha256:...`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

#[derive(Debug, Default, serde::Deserialize)]
struct ImageFile {
    #[serde(default)]
    images: HashMap<String, PathBuf>,
}

/// The image table.
#[derive(Debug, Default)]
pub struct ImageMap {
    exact: HashMap<String, PathBuf>,
    by_repo: HashMap<String, PathBuf>,
}

/// `registry/repo:tag@digest` → `registry/repo`.
pub fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(colon) if !no_digest[colon..].contains('/') => &no_digest[..colon],
        _ => no_digest,
    }
}

impl ImageMap {
    /// Read the table from `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading image map {}", path.display()))?;
        let file: ImageFile = serde_yaml::from_str(&text)
            .with_context(|| format!("parsing image map {}", path.display()))?;
        Ok(Self::from_pairs(file.images))
    }

    /// Build a table from `(image, binary)` pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, PathBuf)>) -> Self {
        let mut map = Self::default();
        for (image, binary) in pairs {
            map.by_repo
                .insert(repository(&image).to_string(), binary.clone());
            map.exact.insert(image, binary);
        }
        map
    }

    /// The binary for `image`, if the table names one.
    pub fn lookup(&self, image: &str) -> Option<&Path> {
        self.exact
            .get(image)
            .or_else(|| self.by_repo.get(repository(image)))
            .map(PathBuf::as_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_strips_tag_and_digest_but_not_registry_port() {
        assert_eq!(repository("fjord/worker:1.2"), "fjord/worker");
        assert_eq!(repository("fjord/worker@sha256:abc"), "fjord/worker");
        assert_eq!(
            repository("localhost:5000/fjord/worker"),
            "localhost:5000/fjord/worker"
        );
        assert_eq!(
            repository("localhost:5000/fjord/worker:dev"),
            "localhost:5000/fjord/worker"
        );
        assert_eq!(repository("echo"), "echo");
    }

    #[test]
    fn lookup_prefers_exact_then_repository() {
        let map = ImageMap::from_pairs([
            ("fjord/worker:dev".to_string(), PathBuf::from("/bin/dev")),
            ("fjord/echo".to_string(), PathBuf::from("/bin/echo")),
        ]);
        assert_eq!(map.lookup("fjord/worker:dev"), Some(Path::new("/bin/dev")));
        assert_eq!(
            map.lookup("fjord/worker:other"),
            Some(Path::new("/bin/dev"))
        );
        assert_eq!(map.lookup("fjord/echo:1"), Some(Path::new("/bin/echo")));
        assert_eq!(map.lookup("nginx"), None);
    }
}
