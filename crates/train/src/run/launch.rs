//! The one burn-train launch every Learner-trained task goes through (image classifiers and
//! character models): the loss guard, the plain renderer off a terminal, resuming from a
//! checkpoint, and what the run record says when training fails, diverges or is interrupted.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use burn::train::metric::{Adaptor, LossInput};
use burn::train::{Learner, LearnerModel, SupervisedTraining, TrainStep, TrainingStrategy};

use super::checkpoint::{ResumePoint, load_within_epoch, remove_within_epoch, resume_point};
use super::file_log::{FileLog, WriteFailure};
use super::lock::{RunLock, lock_to_resume};
use super::metrics::GuardedLoss;
use super::record::{self, RunRecord};
use super::renderer::PlainRenderer;
use super::signals;
use super::strategy::Checkpointed;
use super::{CHECKPOINT_DIR, CONFIG_FILE, MODEL_FILE, Status, last_checkpoint};
use crate::cli::RunFlags;

/// A run folder being resumed, and its lock (held until training ends).
pub type Resumed = (PathBuf, RunLock);

/// Where a run starts: the run folder and its lock (when resuming), the config to read, and the
/// checkpoint to resume from (at an epoch end or inside an epoch). A resumed run reads the config it was started with (overrides still
/// apply, e.g. more epochs); `check` refuses a folder of another task; a finished run is refused
/// unless `--epochs` asks for more.
pub fn start(
    flags: &RunFlags,
    default_config: &str,
    check: impl Fn(&RunRecord, &Path) -> Result<()>,
) -> Result<(Option<Resumed>, PathBuf, Option<ResumePoint>)> {
    if !flags.resume {
        let config = flags.config.clone().unwrap_or_else(|| PathBuf::from(default_config));
        return Ok((None, config, None));
    }
    let dir = flags.run_dir.clone().context("--resume needs --run-dir")?;
    let lock = lock_to_resume(&dir)?;
    let meta = record::read(&dir)?;
    check(&meta, &dir)?;
    // The epochs asked for: `--set train.epochs=N` wins over `--epochs`, as in the config.
    let set = flags.sets.iter().rev().find(|(k, _)| k == "train.epochs");
    let asked: Option<usize> = set.and_then(|(_, v)| v.parse().ok()).or(flags.epochs);
    if meta.status == Status::Finished && asked.is_none_or(|e| e <= meta.epochs_done) {
        bail!(
            "{} already finished ({} epochs); pass --epochs N to train further",
            dir.display(),
            meta.epochs_done
        );
    }
    super::checkpoint::remove_leftovers(&dir);
    let point = resume_point(&dir);
    // Fewer epochs than are done (or than the one a checkpoint is inside) cannot be trained.
    if let (Some(e), Some(p)) = (asked, point)
        && (e < p.epochs_done() || (p.within_epoch() && e < p.epoch))
    {
        bail!(
            "{} has trained up to {p}, more than --epochs {e}: pass a larger --epochs, or none to keep the run's",
            dir.display()
        );
    }
    let config = dir.join(CONFIG_FILE);
    Ok((Some((dir, lock)), config, point))
}

/// What a task tells the launch besides its configured training.
pub struct Launch<'a> {
    pub run_dir: &'a Path,
    /// Epochs the run should reach.
    pub epochs: usize,
    /// A plain progress line every this many steps when stdout is not a terminal.
    pub log_every: usize,
    /// What the renderer counts items as ("windows" for a character model).
    pub unit: Option<&'static str>,
    /// The checkpoint to resume from, and whether `--resume` was asked at all.
    pub resume_from: Option<ResumePoint>,
    pub resume_asked: bool,
    /// The `burnlab train` subcommand, for the "continue with" hint.
    pub command: &'a str,
    /// What to try after the loss diverged ("Lower optim.lr (now 0.1) and train again").
    pub diverged_advice: String,
    /// `train.checkpoint_minutes`: time between checkpoints inside an epoch (0: none).
    pub checkpoint_minutes: f64,
}

/// A model built on the CPU device seeded with `seed`, its parameters initialised there: the
/// same seed gives the same starting weights on every backend (the caller then forks it to the
/// training device).
pub fn seeded_init<M: burn::module::Module>(seed: u64, build: impl FnOnce(&Device) -> M) -> M {
    let device = Device::flex();
    device.seed(seed);
    let model = build(&device);
    // Parameters initialise lazily, on first use: force it here, on the seeded CPU device, or
    // they would be drawn on the training device by its own RNG.
    let _ = model.clone().into_record();
    model
}

/// How a launch ended, when it did not fail.
pub enum Ended<M> {
    /// Every epoch ran: the trained model (in validation mode, saved as the run's model file) and
    /// the wall time in seconds.
    Finished { model: M, wall: f64 },
    /// Stopped early (Ctrl-C, the dashboard's `q`); the record says so and where to resume.
    Interrupted,
}

/// Launches `training` with `learner`, and records a failure (an error or a diverged loss: the
/// run record says failed, why, and the last complete checkpoint) or an interruption (burn-train's
/// dashboard resets its interrupter when it closes, so a run stopped with `q` is told by the
/// epochs it completed).
pub fn launch<M>(
    mut training: SupervisedTraining<M>,
    mut learner: Learner<M>,
    spec: Launch,
    record: &mut RunRecord,
) -> Result<Ended<M>>
where
    M: LearnerModel,
    <M as TrainStep>::Output: Adaptor<LossInput>,
{
    let run_dir = spec.run_dir;
    let guard = GuardedLoss::new(training.interrupter());
    training = training.metric_train_numeric(guard.clone());
    // burn-train's metric files, by a logger that stops the run on a failed write.
    let log_failure = WriteFailure::default();
    let log = FileLog::new(run_dir, training.interrupter(), log_failure.clone());
    training = training.with_metric_logger(log);
    if !std::io::stdout().is_terminal() {
        let renderer = PlainRenderer::new(spec.log_every);
        let renderer = match spec.unit {
            Some(unit) => renderer.unit(unit),
            None => renderer,
        };
        training = training.renderer(Box::new(renderer));
    }
    let start = spec.resume_from.unwrap_or(ResumePoint { epoch: 1, step: 0 });
    match spec.resume_from {
        Some(p) if p.within_epoch() => learner = load_within_epoch(run_dir, p, learner)?,
        // burn-train loads its own epoch-end checkpoints.
        Some(p) => training = training.checkpoint(p.epochs_done()),
        None if spec.resume_asked => {
            println!("no complete checkpoint in {}: starting from epoch 1", run_dir.display())
        }
        None => {}
    }
    if let Some(p) = spec.resume_from {
        println!("resuming from {p}");
    }
    let save_and_stop = Arc::new(AtomicBool::new(false));
    let epochs_done = Arc::new(AtomicUsize::new(0));
    let every = (spec.checkpoint_minutes > 0.0)
        .then(|| Duration::from_secs_f64(spec.checkpoint_minutes * 60.0));
    let device = learner.model().devices().into_iter().next().context("the model has no device")?;
    let strategy = Checkpointed {
        run: run_dir.to_path_buf(),
        device,
        every,
        start,
        save_and_stop: save_and_stop.clone(),
        epochs_done: epochs_done.clone(),
    };
    training = training.with_training_strategy(TrainingStrategy::Custom(Arc::new(strategy)));
    // SIGINT/SIGTERM stop the loop after its current step, which writes a checkpoint first.
    let interrupter = training.interrupter();
    let _on_signal = signals::on_stop(move || {
        save_and_stop.store(true, Ordering::SeqCst);
        interrupter.stop(Some("stopped by a signal"))
    });
    let started = Instant::now();
    let result = training.launch(learner);
    let wall = started.elapsed().as_secs_f64();
    // Closing the dashboard restores the terminal; what follows must print after that.
    drop(result.renderer);

    if let Some(failure) = log_failure.get() {
        record.status = Status::Failed;
        record.epochs_done = last_checkpoint(run_dir).unwrap_or(0);
        record.message = Some(failure.clone());
        // (On a full disk the record may not be writable either; the error is what counts.)
        let _ = record::write(run_dir, record);
        bail!("training stopped: {failure}; {}", kept(run_dir, record.epochs_done));
    }
    if let Some(reason) = guard.reason() {
        record.status = Status::Failed;
        record.epochs_done = last_checkpoint(run_dir).unwrap_or(0);
        record.message = Some(reason.clone());
        record::write(run_dir, record)?;
        let kept = kept(run_dir, record.epochs_done);
        bail!("training stopped: {reason}; {kept}. {}", spec.diverged_advice);
    }
    if let Some(err) = result.error {
        record.status = Status::Failed;
        record.epochs_done = last_checkpoint(run_dir).unwrap_or(0);
        record.message = Some(err.to_string());
        let _ = record::write(run_dir, record);
        bail!("training failed: {err}; {}", kept(run_dir, record.epochs_done));
    }
    let completed = epochs_done.load(Ordering::SeqCst).max(start.epochs_done());
    if result.interrupted.is_some() || completed < spec.epochs {
        record.status = Status::Interrupted;
        record.epochs_done = last_checkpoint(run_dir).unwrap_or(0);
        record::write(run_dir, record)?;
        let kept = resume_point(run_dir).map(|p| format!(" ({p} is kept)")).unwrap_or_default();
        println!(
            "interrupted{kept}; continue with: burnlab train {} --run-dir {} --resume",
            spec.command,
            run_dir.display()
        );
        return Ok(Ended::Interrupted);
    }
    // The epoch-end checkpoints (all written: the strategy waited for them) supersede those
    // taken inside epochs.
    remove_within_epoch(run_dir, |_| true);
    result
        .model
        .clone()
        .save_file(run_dir.join(MODEL_FILE))
        .with_context(|| format!("saving the model to {}", run_dir.display()))?;
    Ok(Ended::Finished { model: result.model, wall })
}

/// What a failed run keeps: "the checkpoints of epochs up to 2 are kept in runs/x/checkpoint".
fn kept(run_dir: &Path, epochs_done: usize) -> String {
    match epochs_done {
        0 => "no epoch had finished".to_string(),
        e => format!(
            "the checkpoints of epochs up to {e} are kept in {}",
            run_dir.join(CHECKPOINT_DIR).display()
        ),
    }
}
