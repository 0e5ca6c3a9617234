//! A run folder: `runs/<name>/` holds the resolved config, run metadata (normalisation stats,
//! classes, backend, status), burn-train's checkpoints and metric logs, the final model and
//! `metrics.json`.

pub mod launch;
pub mod metrics;
pub mod record;
pub mod renderer;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "config.toml";
pub const META_FILE: &str = "run.json";
pub const MODEL_FILE: &str = "model.bpk";
pub const METRICS_FILE: &str = "metrics.json";
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The id of the process training the run, so that `burnlab runs` can tell a run still
/// training from one whose process was killed (its metadata still says "running").
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

/// Record this process as the one training `run`.
pub fn write_pid(run: &Path) -> Result<()> {
    write_atomic(&run.join(PID_FILE), std::process::id().to_string().as_bytes())
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
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A fresh run folder: `runs/<name>`, or `runs/<name>-2`, `-3`… if taken. An explicit folder
/// must be new or empty: we never mix two runs.
pub fn new_run_dir(explicit: Option<&Path>, name: &str) -> Result<PathBuf> {
    let occupied = |p: &Path| {
        p.exists() && std::fs::read_dir(p).map(|mut d| d.next().is_some()).unwrap_or(true)
    };
    let dir = match explicit {
        Some(p) => {
            if occupied(p) {
                bail!(
                    "run folder {} already holds a run: pass --resume to continue it, or choose another --run-dir",
                    p.display()
                );
            }
            p.to_path_buf()
        }
        None => {
            let base = Path::new("runs").join(name);
            let mut dir = base.clone();
            let mut k = 2;
            while occupied(&dir) {
                dir = PathBuf::from(format!("{}-{k}", base.display()));
                k += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
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
