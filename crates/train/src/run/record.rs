//! The one record of a run folder, `run.json`: what every task shares (model, backend, status,
//! epochs done, the reason a run stopped) and, tagged by `task`, its task's part.
//!
//! Run folders from before the record was one file keep working: a character-LM run wrote
//! `charlm.json` and a word2vec run `word2vec.json`, each already tagged with its task and
//! holding these fields, so they read as the same record ([`read`] falls back to them; nothing
//! rewrites them, and a resumed run writes `run.json`, which is read first from then on).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burnlab_data::Normalization;
use serde::{Deserialize, Serialize};

use super::{META_FILE, Status, write_json};

/// Older layouts' record files, read when a folder has no `run.json`.
pub const LEGACY_FILES: [&str; 2] = ["charlm.json", "word2vec.json"];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(flatten)]
    pub task: TaskRecord,
    /// "mlp 3072-512-256-10", "lstm 2x256", "skipgram dim 100" (empty in word2vec runs from
    /// before it was recorded).
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub backend: String,
    pub status: Status,
    pub epochs_done: usize,
    /// Why a run failed or stopped.
    #[serde(default)]
    pub message: Option<String>,
}

/// The task, as `"task": "mlp" | "cnn" | "charlm" | "word2vec"`, and what only it records.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum TaskRecord {
    Mlp(ImageRecord),
    Cnn(ImageRecord),
    Charlm(CharLmRecord),
    Word2vec(W2vRecord),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Where the images came from (`image-folder:PATH`, `cifar10-binary:PATH`).
    pub data_source: String,
    pub classes: Vec<String>,
    pub image_size: [usize; 3],
    pub normalization: Normalization,
    pub trainable_params: usize,
    /// The weights training started from (`--init-from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<crate::weights::init::InitRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CharLmRecord {
    pub corpus: String,
    pub train_chars: usize,
    pub valid_chars: usize,
    pub trainable_params: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct W2vRecord {
    pub corpus: String,
    pub vocab_size: usize,
    pub corpus_words: u64,
}

impl TaskRecord {
    /// "mlp", "cnn", "charlm", "word2vec": the `task` tag.
    pub fn name(&self) -> &'static str {
        match self {
            TaskRecord::Mlp(_) => "mlp",
            TaskRecord::Cnn(_) => "cnn",
            TaskRecord::Charlm(_) => "charlm",
            TaskRecord::Word2vec(_) => "word2vec",
        }
    }
}

impl RunRecord {
    /// A new run's record: running, no epoch done.
    pub fn new(task: TaskRecord, model: String, backend: String) -> Self {
        Self { task, model, backend, status: Status::Running, epochs_done: 0, message: None }
    }

    /// The image part, or an error saying what kind of run `dir` is instead.
    pub fn image(&self, dir: &Path) -> Result<&ImageRecord> {
        match &self.task {
            TaskRecord::Mlp(r) | TaskRecord::Cnn(r) => Ok(r),
            other => bail!("{} is a {} run, not an image classifier", dir.display(), other.name()),
        }
    }

    pub fn charlm(&self, dir: &Path) -> Result<&CharLmRecord> {
        match &self.task {
            TaskRecord::Charlm(r) => Ok(r),
            other => bail!("{} is a {} run, not a character model", dir.display(), other.name()),
        }
    }

    pub fn word2vec(&self, dir: &Path) -> Result<&W2vRecord> {
        match &self.task {
            TaskRecord::Word2vec(r) => Ok(r),
            other => bail!("{} is a {} run, not word2vec", dir.display(), other.name()),
        }
    }
}

/// The file holding `dir`'s record: `run.json`, else an older layout's; None if neither.
pub fn path(dir: &Path) -> Option<PathBuf> {
    std::iter::once(META_FILE).chain(LEGACY_FILES).map(|f| dir.join(f)).find(|p| p.is_file())
}

/// Whether `dir` holds a run of any task, in any layout.
pub fn exists(dir: &Path) -> bool {
    path(dir).is_some()
}

pub fn read(dir: &Path) -> Result<RunRecord> {
    let Some(path) = path(dir) else {
        bail!("{} is not a burnlab run folder (no {META_FILE})", dir.display());
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: corrupt run record", path.display()))
}

/// Writes `run.json` whole (write beside it, then rename).
pub fn write(dir: &Path, record: &RunRecord) -> Result<()> {
    write_json(&dir.join(META_FILE), record)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact files the previous layout wrote (field for field, as its structs serialised
    /// them) read back as records of their task; a new record round-trips through `run.json`.
    #[test]
    fn old_layouts_read_as_records_and_new_ones_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let charlm = r#"{"task": "charlm", "model": "lstm 2x256", "backend": "flex",
            "corpus": "/data/input.txt", "train_chars": 1003854, "valid_chars": 111539,
            "trainable_params": 830017, "status": "finished", "epochs_done": 1, "message": null}"#;
        std::fs::write(dir.path().join("charlm.json"), charlm).expect("write");
        let r = read(dir.path()).expect("charlm.json");
        assert_eq!((r.task.name(), r.status, r.epochs_done), ("charlm", Status::Finished, 1));
        let c = r.charlm(dir.path()).expect("charlm part");
        assert_eq!((c.train_chars, c.valid_chars, c.trainable_params), (1003854, 111539, 830017));
        let err = format!("{:#}", r.image(dir.path()).expect_err("not an image run"));
        assert!(err.contains("is a charlm run"), "{err}");

        // word2vec.json from before `model`/`backend`/`message` were written.
        let dir = tempfile::tempdir().expect("tempdir");
        let w2v = r#"{"task": "word2vec", "corpus": "text8", "vocab_size": 71290,
            "corpus_words": 17005207, "status": "interrupted", "epochs_done": 2}"#;
        std::fs::write(dir.path().join("word2vec.json"), w2v).expect("write");
        let r = read(dir.path()).expect("word2vec.json");
        assert_eq!((r.model.as_str(), r.message.as_deref()), ("", None));
        assert_eq!(r.word2vec(dir.path()).expect("w2v part").vocab_size, 71290);

        // run.json is read before a legacy file, and round-trips.
        let mut new = RunRecord::new(
            TaskRecord::Mlp(ImageRecord {
                data_source: "image-folder:/x".into(),
                classes: vec!["cat".into(), "dog".into()],
                image_size: [3, 32, 32],
                normalization: Normalization { mean: vec![0.5; 3], std: vec![0.25; 3] },
                trainable_params: 42,
                init_from: None,
            }),
            "mlp 3072-10".into(),
            "flex".into(),
        );
        new.status = Status::Failed;
        new.message = Some("NaN loss".into());
        write(dir.path(), &new).expect("write");
        let text = std::fs::read_to_string(dir.path().join(META_FILE)).expect("run.json");
        assert!(text.contains("\"task\": \"mlp\""), "{text}");
        let back = read(dir.path()).expect("run.json");
        assert_eq!(back.image(dir.path()).expect("image").classes, ["cat", "dog"]);
        assert_eq!((back.status, back.message.as_deref()), (Status::Failed, Some("NaN loss")));
    }

    #[test]
    fn missing_and_corrupt_records_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = format!("{:#}", read(dir.path()).expect_err("empty folder"));
        assert!(err.contains("is not a burnlab run folder"), "{err}");
        std::fs::write(dir.path().join(META_FILE), r#"{"task": "gan"}"#).expect("write");
        let err = format!("{:#}", read(dir.path()).expect_err("unknown task"));
        assert!(err.contains("run.json: corrupt run record"), "{err}");
    }
}
