//! Saving configuration changes made at run time (sources added, changed or removed through the
//! API, settings changed through `PUT /api/settings`) back to the configuration file.
//!
//! Only what changed is rewritten (the `[[sources]]` tables, or the settings' keys); everything
//! else in the file — comments included — is kept as the user wrote it (toml_edit). The write is atomic: the new text goes to a
//! temporary file in the same folder, is flushed to disk, and is renamed over the old file, whose
//! previous version is kept as `<file>.bak`. A crash at any point leaves either the old or the
//! new file, never a mix.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::{Config, ConfigError, SourceDef};

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

    /// The file as an editable document (empty when there is no file yet).
    pub fn read_document(&self) -> anyhow::Result<toml_edit::DocumentMut> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()))
            }
        };
        text.parse()
            .with_context(|| format!("{} is not valid TOML", self.path.display()))
    }

    /// Loads the configuration `text` would give — the embedded defaults, `text`, then the
    /// environment, validated — exactly as the daemon would load this file, without touching
    /// the file itself. The text goes to a scratch file beside it because the loader reads
    /// files; callers serialise edits (the configuration lock), so one scratch name suffices.
    pub fn check_text(&self, text: &str) -> anyhow::Result<Result<Config, ConfigError>> {
        let dir = self.dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let scratch = dir.join(format!(".{}.check", self.file_name()));
        std::fs::write(&scratch, text)
            .with_context(|| format!("cannot write {}", scratch.display()))?;
        let loaded = Config::load(Some(&scratch), std::env::vars());
        let _ = std::fs::remove_file(&scratch);
        // A syntax or read error would name the scratch file; name the real one instead.
        Ok(loaded.map_err(|e| match e {
            ConfigError::Syntax { reason, .. } => ConfigError::Syntax {
                path: self.path.clone(),
                reason,
            },
            ConfigError::Read { reason, .. } => ConfigError::Read {
                path: self.path.clone(),
                reason,
            },
            other => other,
        }))
    }

    /// Replaces the whole file with `text`, atomically (see the module comment).
    pub fn save_text(&self, text: &str) -> anyhow::Result<()> {
        self.write_atomically(text)
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.toml".into())
    }

    fn write_atomically(&self, text: &str) -> anyhow::Result<()> {
        let dir = self.dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let name = self.file_name();
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

/// Sets the key at `path` (`["hearing", "events", "clap", "threshold"]`) in `doc`, creating the
/// tables on the way (implicit ones: no empty `[hearing.events]` header is written). A value that
/// replaces another keeps the old one's decoration, so `window_s = 60 # one minute` becomes
/// `window_s = 120 # one minute`. Fails when a key on the way is not a table.
pub fn set_value(
    doc: &mut toml_edit::DocumentMut,
    path: &[&str],
    mut value: toml_edit::Value,
) -> anyhow::Result<()> {
    let Some((last, parents)) = path.split_last() else {
        anyhow::bail!("empty key path");
    };
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    for (i, key) in parents.iter().enumerate() {
        if !table.contains_key(key) {
            let mut fresh = toml_edit::Table::new();
            fresh.set_implicit(true);
            table.insert(key, toml_edit::Item::Table(fresh));
        }
        let Some(next) = table.get_mut(key).and_then(|item| item.as_table_like_mut()) else {
            anyhow::bail!("{} is not a table in the file", parents[..=i].join("."));
        };
        table = next;
    }
    match table.get_mut(last) {
        Some(toml_edit::Item::Value(old)) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        Some(_) => anyhow::bail!("{} is not a plain value in the file", path.join(".")),
        None => {
            table.insert(last, toml_edit::Item::Value(value));
        }
    }
    Ok(())
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

    #[test]
    fn values_are_set_in_place_keeping_comments_and_created_where_missing() {
        let mut doc: toml_edit::DocumentMut =
            "# mine\n[classifier]\nwindow_s = 60 # one minute\n\n[obs]\nenabled = false\n"
                .parse()
                .unwrap();
        set_value(&mut doc, &["classifier", "window_s"], 120.0.into()).unwrap();
        set_value(
            &mut doc,
            &["hearing", "events", "clap", "threshold"],
            0.5.into(),
        )
        .unwrap();
        set_value(&mut doc, &["obs", "host"], "10.0.0.2".into()).unwrap();
        let text = doc.to_string();
        assert!(text.contains("# mine"), "{text}");
        assert!(text.contains("window_s = 120.0 # one minute"), "{text}");
        assert!(text.contains("[hearing.events.clap]"), "{text}");
        assert!(!text.contains("[hearing]\n"), "{text}");
        assert!(!text.contains("[hearing.events]\n"), "{text}");
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(value["obs"]["host"].as_str(), Some("10.0.0.2"));
        assert_eq!(
            value["hearing"]["events"]["clap"]["threshold"].as_float(),
            Some(0.5)
        );
        // A key that is a value cannot become a table.
        assert!(set_value(&mut doc, &["obs", "host", "x"], 1.into()).is_err());
    }

    #[test]
    fn text_is_checked_with_the_loader_without_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cav.toml");
        std::fs::write(&path, "[classifier]\nwindow_s = 60\n").unwrap();
        let file = ConfigFile::new(path.clone());
        let ok = file
            .check_text("[classifier]\nwindow_s = 30\n")
            .unwrap()
            .unwrap();
        assert_eq!(ok.classifier.window_s, 30.0);
        let e = file
            .check_text("[classifier]\nwindow_s = 0\n")
            .unwrap()
            .unwrap_err();
        assert_eq!(e.key(), Some("classifier.window_s"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[classifier]\nwindow_s = 60\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
