//! burn-train's metric log files (`train/epoch-<n>/<Metric>.log`, `valid/…`: one serialised
//! entry per line, as its `FileMetricLogger` writes them), written by a logger that turns a
//! failed write (a full disk) into a stopped run with the file named, where burn-train's panics
//! on its logger thread and leaves the run record saying "running".

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};

/// The first write that failed, shared with the launch that reports it.
#[derive(Clone, Default)]
pub struct WriteFailure(Arc<Mutex<Option<String>>>);

impl WriteFailure {
    pub fn get(&self) -> Option<String> {
        self.0.lock().map(|m| m.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set(&self, message: String) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(message);
    }
}

pub struct FileLog {
    dir: PathBuf,
    names: HashMap<MetricId, String>,
    files: HashMap<PathBuf, File>,
    epoch: Option<usize>,
    interrupter: Interrupter,
    failure: WriteFailure,
}

impl FileLog {
    pub fn new(dir: &Path, interrupter: Interrupter, failure: WriteFailure) -> Self {
        Self {
            dir: dir.to_path_buf(),
            names: HashMap::new(),
            files: HashMap::new(),
            epoch: None,
            interrupter,
            failure,
        }
    }

    fn path(&self, name: &str, epoch: usize, split: &Split) -> PathBuf {
        let split_dir = match split {
            Split::Test(Some(tag)) => {
                self.dir.join(split.to_string()).join(tag.trim().replace(' ', "-").to_lowercase())
            }
            _ => self.dir.join(split.to_string()),
        };
        split_dir.join(format!("epoch-{epoch}")).join(format!("{}.log", name.replace(' ', "_")))
    }

    fn write(&mut self, path: PathBuf, line: &str) -> std::io::Result<()> {
        if !self.files.contains_key(&path) {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            self.files.insert(path.clone(), File::create(&path)?);
        }
        match self.files.get_mut(&path) {
            Some(file) => writeln!(file, "{line}"),
            None => Ok(()),
        }
    }
}

impl MetricLogger for FileLog {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        if self.failure.get().is_some() {
            return;
        }
        if self.epoch != Some(epoch) {
            self.files.clear();
            self.epoch = Some(epoch);
        }
        let entries = update.entries.iter().chain(update.entries_numeric.iter().map(|n| &n.entry));
        for entry in entries {
            if entry.serialized_entry.is_not_available() {
                continue;
            }
            let Some(name) = self.names.get(&entry.metric_id).cloned() else { continue };
            let path = self.path(&name, epoch, split);
            if let Err(e) = self.write(path.clone(), &entry.serialized_entry.serialized) {
                let message = format!("writing {}: {e}", path.display());
                self.failure.set(message.clone());
                self.interrupter.stop(Some(&message));
                return;
            }
        }
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        for file in self.files.values_mut() {
            let _ = file.flush();
        }
        let text = std::fs::read_to_string(self.path(name, epoch, split)).unwrap_or_default();
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| NumericEntry::deserialize(l).map_err(|e| e.to_string()))
            .collect()
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id.clone(), definition.name.to_string());
    }

    fn log_epoch_summary(&mut self, _summary: EpochSummary) {
        self.files.clear();
    }
}
