//! Saving configuration changes made at run time (sources added, changed or removed through the
//! API) back to the configuration file.
//!
//! Only the `[[sources]]` tables are rewritten; everything else in the file — comments included —
//! is kept as the user wrote it (toml_edit). The write is atomic: the new text goes to a
//! temporary file in the same folder, is flushed to disk, and is renamed over the old file, whose
//! previous version is kept as `<file>.bak`. A crash at any point leaves either the old or the
//! new file, never a mix.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::SourceDef;

/// The file that run-time changes are saved to.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    path: PathBuf,
}

#[derive(serde::Serialize)]
struct SourcesOnly<'a> {
    sources: &'a [SourceDef],
}

impl ConfigFile {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's `[[sources]]` with `sources`, atomically.
    pub fn save_sources(&self, sources: &[SourceDef]) -> anyhow::Result<()> {
        let old = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()))
            }
        };
        let mut doc: toml_edit::DocumentMut = old
            .parse()
            .with_context(|| format!("{} is not valid TOML", self.path.display()))?;
        let rendered = toml::to_string(&SourcesOnly { sources })
            .context("cannot write the sources as TOML")?;
        let fresh: toml_edit::DocumentMut = rendered
            .parse()
            .context("cannot read back the sources as TOML")?;
        doc.remove("sources");
        if let Some(item) = fresh.get("sources") {
            doc.insert("sources", item.clone());
        }
        self.write_atomically(&doc.to_string())
    }

    fn write_atomically(&self, text: &str) -> anyhow::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.toml".into());
        let tmp = dir.join(format!(".{name}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.sync_all())
                .with_context(|| format!("cannot write {}", tmp.display()))?;
        }
        if self.path.exists() {
            let backup = dir.join(format!("{name}.bak"));
            std::fs::copy(&self.path, &backup)
                .with_context(|| format!("cannot keep a backup at {}", backup.display()))?;
        }
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot replace {}", self.path.display()))?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, SourceKind};

    fn mic(id: &str) -> SourceDef {
        SourceDef {
            id: id.into(),
            name: String::new(),
            kind: SourceKind::Microphone,
            enabled: true,
            webhook: None,
            device: Some("default".into()),
            stream: None,
            sender: None,
            url: None,
            transport: None,
            events: Default::default(),
        }
    }

    #[test]
    fn rewrites_only_the_sources_keeping_comments_and_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cav.toml");
        let original = "# my settings\n[classifier]\nwindow_s = 60 # one minute\n\n[[sources]]\nid = \"old\"\nkind = \"microphone\"\n";
        std::fs::write(&path, original).unwrap();
        let file = ConfigFile::new(path.clone());
        file.save_sources(&[mic("a"), mic("b")]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# my settings") && text.contains("window_s = 60 # one minute"),
            "{text}"
        );
        assert!(!text.contains("\"old\""), "{text}");
        let config = Config::load(Some(&path), Vec::new()).unwrap();
        let ids: Vec<&str> = config.sources.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b"]);
        assert_eq!(config.classifier.window_s, 60.0);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cav.toml.bak")).unwrap(),
            original
        );
        // No temporary file is left behind.
        assert!(!dir.path().join(".cav.toml.tmp").exists());

        file.save_sources(&[]).unwrap();
        let config = Config::load(Some(&path), Vec::new()).unwrap();
        assert!(config.sources.is_empty());
    }

    #[test]
    fn creates_the_file_when_there_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        ConfigFile::new(path.clone())
            .save_sources(&[mic("m")])
            .unwrap();
        let config = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(config.sources[0].id, "m");
    }
}
