//! Checkpoints of Learner-trained runs: burn-train's at the end of each epoch
//! (`checkpoint/{model,optim,scheduler}-<epoch>.bpk`), and ours inside an epoch, every
//! `train.checkpoint_minutes` and when a signal stops the run
//! (`checkpoint/epoch-<e>-step-<k>/{model,optim,scheduler}.bpk`: the state after step k of
//! epoch e). Burnpack writes each file to a temporary name, syncs and renames it, so a file that
//! is there is whole; a checkpoint is complete when its three files are there.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::store::ModuleRecord;
use burn::train::checkpoint::{
    AsyncCheckpointer, Checkpoint, Checkpointer, CheckpointerError, CheckpointingAction,
    CheckpointingStrategy, KeepLastNCheckpoints,
};
use burn::train::metric::store::EventStoreClient;
use burn::train::{Interrupter, Learner, LearnerModel, LearningCheckpointer, SupervisedTraining};

use super::{CHECKPOINT_DIR, last_checkpoint};

const PARTS: [&str; 3] = ["model", "optim", "scheduler"];

/// Where a resumed run starts: `step` training steps of `epoch` (1-based) are done. An epoch-end
/// checkpoint of epoch e resumes at (e + 1, 0); one taken after step k of epoch e at (e, k).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResumePoint {
    pub epoch: usize,
    pub step: usize,
}

impl ResumePoint {
    /// The epochs before the one it resumes in (all trained and validated).
    pub fn epochs_done(&self) -> usize {
        self.epoch - 1
    }

    /// Whether it resumes inside an epoch (from one of our checkpoints) rather than at its
    /// start (from burn-train's epoch checkpoint).
    pub fn within_epoch(&self) -> bool {
        self.step > 0
    }
}

impl std::fmt::Display for ResumePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.step {
            0 => write!(f, "the checkpoint of epoch {}", self.epoch - 1),
            k => write!(f, "the checkpoint of epoch {}, step {k}", self.epoch),
        }
    }
}

/// The folder of the checkpoint taken after step `step` of `epoch`.
fn within_dir(run: &Path, p: ResumePoint) -> PathBuf {
    run.join(CHECKPOINT_DIR).join(format!("epoch-{}-step-{}", p.epoch, p.step))
}

/// Checkpoints taken inside an epoch, complete or not, newest first.
fn within_epoch(run: &Path) -> Vec<(ResumePoint, PathBuf)> {
    let Ok(dir) = std::fs::read_dir(run.join(CHECKPOINT_DIR)) else {
        return Vec::new();
    };
    let mut found: Vec<(ResumePoint, PathBuf)> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (epoch, step) = name.strip_prefix("epoch-")?.split_once("-step-")?;
            let p = ResumePoint { epoch: epoch.parse().ok()?, step: step.parse().ok()? };
            (p.epoch > 0 && p.step > 0).then_some((p, e.path()))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found
}

fn complete(dir: &Path) -> bool {
    PARTS.iter().all(|k| dir.join(format!("{k}.bpk")).is_file())
        && ModuleRecord::load(dir.join("model.bpk")).is_ok()
}

/// The newest complete checkpoint of a run, at an epoch end or inside an epoch.
pub fn resume_point(run: &Path) -> Option<ResumePoint> {
    let epoch_end = last_checkpoint(run).map(|e| ResumePoint { epoch: e + 1, step: 0 });
    let within = within_epoch(run).into_iter().find(|(_, d)| complete(d)).map(|(p, _)| p);
    epoch_end.max(within)
}

/// Loads the checkpoint taken inside an epoch at `p` into `learner` (an epoch-end checkpoint
/// is loaded by burn-train itself).
pub fn load_within_epoch<M: LearnerModel>(
    run: &Path,
    p: ResumePoint,
    mut learner: Learner<M>,
) -> Result<Learner<M>> {
    let dir = within_dir(run, p);
    fn read<R: Checkpoint>(dir: &Path, part: &str) -> Result<R> {
        let path = dir.join(format!("{part}.bpk"));
        R::load(path.clone())
            .map_err(|e| anyhow::anyhow!("reading the checkpoint {}: {e}", path.display()))
    }
    learner.load_model(read(&dir, "model")?);
    learner.load_optim(read(&dir, "optim")?);
    learner.load_scheduler(read(&dir, "scheduler")?);
    Ok(learner)
}

/// A checkpointer writing one fixed file (`name.bpk` in `dir`), whatever the epoch it is given.
struct OneFile {
    path: PathBuf,
}

impl<R: Checkpoint> Checkpointer<R> for OneFile {
    fn save(&self, _: usize, record: R) -> Result<(), CheckpointerError> {
        // Named in the error: a full disk says which file it could not write.
        record.save(self.path.clone()).map_err(|e| {
            CheckpointerError::Unknown(format!("writing {}: {e}", self.path.display()))
        })
    }

    fn restore(&self, _: usize) -> Result<R, CheckpointerError> {
        R::load(self.path.clone())
    }

    fn delete(&self, _: usize) -> Result<(), CheckpointerError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CheckpointerError::IOError(e))
            }
            _ => Ok(()),
        }
    }
}

struct SaveOnce;

impl CheckpointingStrategy for SaveOnce {
    fn checkpointing(&mut self, _: usize, _: &EventStoreClient) -> Vec<CheckpointingAction> {
        vec![CheckpointingAction::Save]
    }
}

/// Writes the learner's state after step `p.step` of epoch `p.epoch`, and returns once its
/// files are on disk (a failure is reported through `interrupter`, as burn-train's are). Then
/// removes the checkpoints inside epochs it supersedes.
pub fn save_within_epoch<M: LearnerModel>(
    run: &Path,
    p: ResumePoint,
    learner: &Learner<M>,
    interrupter: &Interrupter,
    store: &EventStoreClient,
) {
    let dir = within_dir(run, p);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        interrupter.fail(CheckpointerError::Unknown(format!("creating {}: {e}", dir.display())));
        return;
    }
    let file = |k: &str| OneFile { path: dir.join(format!("{k}.bpk")) };
    let mut checkpointer = LearningCheckpointer::<M>::new(
        AsyncCheckpointer::new(file("model")).with_interrupter(interrupter.clone()),
        AsyncCheckpointer::new(file("optim")).with_interrupter(interrupter.clone()),
        AsyncCheckpointer::new(file("scheduler")).with_interrupter(interrupter.clone()),
        Box::new(SaveOnce),
    );
    checkpointer.checkpoint(learner, p.epoch, store);
    // Dropping it joins its writer threads: the files are written (or the write failed).
    drop(checkpointer);
    if interrupter.error().is_none() {
        // Complete, so it supersedes every older one (and any torn newer one a kill left).
        remove_within_epoch(run, |q| q != p);
    }
}

/// Removes the checkpoints inside epochs for which `drop` says so (no file is read: this runs
/// in the training loop).
pub fn remove_within_epoch(run: &Path, drop: impl Fn(ResumePoint) -> bool) {
    for (p, dir) in within_epoch(run) {
        if drop(p) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Removes what a process killed while writing a checkpoint left: burnpack's temporary files
/// (`model-3.bpk.<pid>-<n>.tmp`). Only while holding the run's lock, before training starts
/// (a running writer's temporaries are in flight).
pub fn remove_leftovers(run: &Path) {
    let Ok(dir) = std::fs::read_dir(run.join(CHECKPOINT_DIR)) else { return };
    for entry in dir.filter_map(|e| e.ok()) {
        if entry.file_name().to_string_lossy().ends_with(".tmp") && entry.path().is_file() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// burn-train's epoch-end checkpoints, keeping the last `keep`.
pub fn epoch_checkpoints<M: LearnerModel>(
    training: SupervisedTraining<M>,
    keep: usize,
) -> SupervisedTraining<M> {
    training
        .with_default_checkpointers()
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, names: &[&str]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for n in names {
            std::fs::write(dir.join(n), b"x").expect("write");
        }
    }

    #[test]
    fn checkpoints_inside_epochs_are_found_newest_first_and_torn_ones_skipped() {
        let tmp = tempfile::tempdir().expect("tmp");
        let ck = tmp.path().join(CHECKPOINT_DIR);
        touch(&ck.join("epoch-2-step-5"), &["model.bpk", "optim.bpk", "scheduler.bpk"]);
        touch(&ck.join("epoch-2-step-12"), &["model.bpk", "optim.bpk"]);
        touch(&ck.join("epoch-x-step-1"), &[]);
        touch(&ck.join("epoch-1-step-0"), &[]);
        let found: Vec<ResumePoint> =
            within_epoch(tmp.path()).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            found,
            vec![ResumePoint { epoch: 2, step: 12 }, ResumePoint { epoch: 2, step: 5 }]
        );
        // Files that are not burnpack records are not a checkpoint to resume from.
        assert_eq!(resume_point(tmp.path()), None);
        assert!(ResumePoint { epoch: 3, step: 0 } > ResumePoint { epoch: 2, step: 400 });
        assert_eq!(
            ResumePoint { epoch: 2, step: 5 }.to_string(),
            "the checkpoint of epoch 2, step 5"
        );
        assert_eq!(ResumePoint { epoch: 3, step: 0 }.to_string(), "the checkpoint of epoch 2");
        remove_within_epoch(tmp.path(), |p| p.epoch == 2);
        assert!(within_epoch(tmp.path()).is_empty(), "both are removed");
        touch(&ck, &["model-3.bpk.4242-7.tmp", "model-2.bpk"]);
        remove_leftovers(tmp.path());
        assert!(!ck.join("model-3.bpk.4242-7.tmp").exists());
        assert!(ck.join("model-2.bpk").exists());
    }
}
