//! A run folder: `runs/<name>/` holds the resolved config, run metadata (normalisation stats,
//! classes, backend, status), burn-train's checkpoints and metric logs, the final model and
//! `metrics.json`.

pub mod checkpoint;
pub mod file_log;
pub mod launch;
pub mod lock;
pub mod metrics;
pub mod record;
pub mod renderer;
pub mod signals;
pub mod strategy;

pub use lock::{RunLock, claim_run_dir, new_run_dir};

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "config.toml";
pub const META_FILE: &str = "run.json";
pub const MODEL_FILE: &str = "model.bpk";
pub const METRICS_FILE: &str = "metrics.json";
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The run folder's lock (`lock.rs`), holding the id of the process training in it, so that
/// `burnlab runs` can tell a run still training from one whose process was killed (its record
/// still says "running").
pub const PID_FILE: &str = "pid";

/// The trained model's file in `run`, or an error saying the run (now `status`) did not finish.
pub fn model_file(run: &Path, status: Status) -> Result<PathBuf> {
    let path = run.join(MODEL_FILE);
    if !path.is_file() {
        bail!(
            "{} has no trained model ({MODEL_FILE}): the run did not finish (status {status:?})",
            run.display()
        );
    }
    Ok(path)
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Finished,
    Interrupted,
    Failed,
}

pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    // Write then rename: a run killed mid-write keeps the previous file.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Write a file whole or not at all (write beside it, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // A temporary name beside it, synced, then renamed over it: a crash or a full disk leaves
    // the previous file whole, and the temporary one is removed on failure.
    let tmp = path.with_extension("partial");
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::Error::new(e).context(format!("writing {}", tmp.display())));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The newest epoch whose model, optimiser and scheduler checkpoints are all present and whose
/// model record reads back (a run killed while writing leaves a torn file).
pub fn last_checkpoint(run: &Path) -> Option<usize> {
    let dir = run.join(CHECKPOINT_DIR);
    let mut epochs: Vec<usize> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("model-")?.strip_suffix(".bpk")?.parse().ok()
        })
        .collect();
    epochs.sort_unstable();
    epochs.into_iter().rev().find(|e| {
        ["model", "optim", "scheduler"].iter().all(|k| dir.join(format!("{k}-{e}.bpk")).is_file())
            && burn::store::ModuleRecord::load(dir.join(format!("model-{e}.bpk"))).is_ok()
    })
}
