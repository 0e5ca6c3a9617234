//! `burnlab train word2vec`: corpus (a local text or the text8 download), vocabulary, training
//! (Hogwild threads on the CPU, `w2v_native`; batched Burn tensors on a GPU, `w2v_batched`),
//! and the run folder: vocabulary, vectors in word2vec text and binary formats, metrics.

pub mod batched;
pub mod checkpoint;
pub mod dashboard;
pub mod native;
pub mod words;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burnlab_data::download::{Checksum, Download};
use burnlab_data::{Corpus, Vocab, WordVectors, text8};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::cli::W2vArgs;
use crate::config::{self, flag};
use crate::insight::tb::EventWriter;
use crate::insight::tb_logger::{SharedWriter, TB_DIR};
use crate::run;
use crate::run::record::{self, RunRecord, TaskRecord, W2vRecord};
use crate::tasks::word2vec::dashboard::Dashboard;
use checkpoint::last_epoch;
pub use checkpoint::{load_checkpoint, save_checkpoint};
use native::{NativeConfig, Progress, W2vArch};

pub const DEFAULT_CONFIG: &str = "configs/word2vec-text8.toml";
pub const VOCAB_FILE: &str = "vocab.txt";
pub const VECTORS_TEXT: &str = "vectors.txt";
pub const VECTORS_BIN: &str = "vectors.bin";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct W2vExperiment {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub corpus: CorpusConfig,
    pub model: W2vModel,
    pub train: W2vTrain,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CorpusConfig {
    /// Where the text comes from when --corpus is not given: "text8" (downloaded into the
    /// cache) or a path to a text file or folder.
    pub source: Option<String>,
    pub lowercase: bool,
    pub min_count: u64,
}

impl Default for CorpusConfig {
    fn default() -> Self {
        Self { source: None, lowercase: false, min_count: 5 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct W2vModel {
    pub arch: W2vArch,
    pub dim: usize,
    pub window: usize,
    pub negative: usize,
    /// Sub-sampling threshold s (0 disables it).
    pub sample: f64,
    /// Input vectors start uniform in ±init_range/dim. gensim's 1.0 (the default) scores higher
    /// on analogies and similarity than word2vec.c's 0.5 (measured in the README).
    #[serde(default = "default_init_range")]
    pub init_range: f64,
}

fn default_init_range() -> f64 {
    1.0
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct W2vTrain {
    pub epochs: usize,
    /// Starting learning rate; default 0.025 for skip-gram, 0.05 for CBOW.
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Worker threads; 0 uses every core.
    #[serde(default)]
    pub threads: usize,
    /// Which trainer: `auto` picks native on the CPU backends and batched on the GPU ones.
    #[serde(default)]
    pub path: TrainPath,
    /// Rows (input, positive + negatives) per step of the batched path.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Checkpoints kept: the last N epochs' tables (vocab × dim × 8 bytes each).
    #[serde(default = "crate::config::default_keep_checkpoints")]
    pub keep_checkpoints: usize,
    /// Minutes between checkpoints inside an epoch (0: at epoch ends only; the native path).
    #[serde(default = "crate::config::default_checkpoint_minutes")]
    pub checkpoint_minutes: f64,
}

fn default_batch() -> usize {
    1024
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TrainPath {
    #[default]
    Auto,
    /// Hogwild threads over host memory (word2vec.c's algorithm).
    Native,
    /// Batches of rows on Burn tensors with a sparse SGD step, on the chosen backend's device.
    Batched,
}

impl W2vExperiment {
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Self> {
        let exp: Self = crate::config::load_toml(path, overrides)?;
        exp.validate().with_context(|| format!("{}: invalid config", path.display()))?;
        Ok(exp)
    }

    fn validate(&self) -> Result<()> {
        let m = &self.model;
        if m.dim == 0 || m.window == 0 || self.train.epochs == 0 || self.train.batch == 0 {
            bail!("model.dim, model.window, train.epochs and train.batch must be at least 1");
        }
        if self.train.keep_checkpoints == 0 {
            bail!("train.keep_checkpoints must be at least 1: a resume needs a checkpoint");
        }
        crate::config::check_checkpoint_minutes(self.train.checkpoint_minutes)?;
        if !(m.init_range.is_finite() && m.init_range > 0.0) {
            bail!("model.init_range must be a positive number, got {}", m.init_range);
        }
        if !(m.sample.is_finite() && m.sample >= 0.0) {
            bail!("model.sample must be >= 0, got {}", m.sample);
        }
        if let Some(a) = self.train.alpha
            && !(a.is_finite() && a > 0.0)
        {
            bail!("train.alpha must be a positive number, got {a}");
        }
        if self.corpus.min_count == 0 {
            bail!("corpus.min_count must be at least 1");
        }
        Ok(())
    }

    /// The trainers' settings; `train.threads = 0` is every core.
    pub fn native_config(&self) -> NativeConfig {
        let threads = match self.train.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        NativeConfig {
            arch: self.model.arch,
            dim: self.model.dim,
            window: self.model.window,
            negative: self.model.negative,
            sample: self.model.sample,
            alpha: self.alpha(),
            epochs: self.train.epochs,
            threads,
            seed: self.seed,
        }
    }

    pub fn alpha(&self) -> f64 {
        self.train.alpha.unwrap_or(match self.model.arch {
            W2vArch::Skipgram => 0.025,
            W2vArch::Cbow => 0.05,
        })
    }
}

#[derive(Serialize)]
struct W2vMetrics {
    epochs: usize,
    /// "native" or "batched", and the backend that ran it.
    path: String,
    backend: String,
    threads: usize,
    vocab_size: usize,
    words_per_epoch: u64,
    train_seconds: f64,
    words_per_s: f64,
    final_loss: f64,
}

fn overrides(args: &W2vArgs) -> Vec<(String, String)> {
    config::overrides(
        &[
            ("model.arch", args.arch.clone()),
            ("model.dim", flag(args.dim)),
            ("model.window", flag(args.window)),
            ("model.negative", flag(args.negative)),
            ("corpus.min_count", flag(args.min_count)),
            ("train.epochs", flag(args.run.epochs)),
            ("train.threads", flag(args.threads)),
            ("seed", flag(args.run.seed)),
        ],
        &args.run.sets,
    )
}

/// The experiment a new `train word2vec` run with these flags trains (its config, overrides
/// applied, validated).
pub fn load_experiment(args: &W2vArgs) -> Result<W2vExperiment> {
    let config = args.run.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    W2vExperiment::load(&config, &overrides(args))
}

pub fn train_command(args: W2vArgs) -> Result<()> {
    if args.run.resume {
        let dir = args.run.run_dir.clone().context("--resume needs --run-dir")?;
        return train_in(args, Some(dir));
    }
    train_in(args, None)
}

/// The text8 download, with a mirror's URL and SHA-1 when `BURNLAB_TEXT8_URL` and
/// `BURNLAB_TEXT8_SHA1` are set.
fn text8_download() -> Download {
    let mut d = text8::official_download();
    if let Ok(url) = std::env::var("BURNLAB_TEXT8_URL") {
        d.url = url;
    }
    if let Ok(sha1) = std::env::var("BURNLAB_TEXT8_SHA1") {
        d.checksum = Checksum::Sha1(sha1.to_lowercase());
    }
    d
}

/// The corpus of a run: --corpus, else the resumed run's, else the config's source.
fn corpus_path(args: &W2vArgs, exp: &W2vExperiment, old: Option<&W2vRecord>) -> Result<PathBuf> {
    if let Some(p) = &args.corpus {
        return Ok(p.clone());
    }
    if let Some(m) = old {
        return Ok(PathBuf::from(&m.corpus));
    }
    match exp.corpus.source.as_deref() {
        Some("text8") => Ok(text8::ensure(&args.cache, &text8_download(), text8::SIZE)?),
        Some(path) => Ok(PathBuf::from(path)),
        None => bail!(
            "no corpus: pass --corpus PATH (a text file or a folder of them), set BURNLAB_CORPUS, or set corpus.source (\"text8\" downloads text8)"
        ),
    }
}

/// Whether this run takes the batched Burn-tensor path (else the native Hogwild threads).
fn batched_path(path: TrainPath, backend: crate::backend::Backend) -> Result<bool> {
    Ok(match path {
        TrainPath::Auto => !backend.is_host(),
        TrainPath::Native if !backend.is_host() => {
            bail!("train.path = \"native\" runs on the CPU; it cannot use --backend {backend}")
        }
        TrainPath::Native => false,
        TrainPath::Batched => true,
    })
}

/// The vocabulary and the locked run folder: a resumed run's own (locked by the caller; the
/// rows of its checkpoint are its words), or a new folder with the vocabulary counted from `corpus` and written there.
fn vocabulary_and_folder(
    args: &W2vArgs,
    exp: &W2vExperiment,
    corpus: &Corpus,
    resume: Option<(&Path, run::RunLock)>,
) -> Result<(Vocab, PathBuf, run::RunLock)> {
    if let Some((dir, lock)) = resume {
        return Ok((Vocab::read(&dir.join(VOCAB_FILE))?, dir.to_path_buf(), lock));
    }
    let bar = ProgressBar::new(corpus.bytes()).with_style(
        ProgressStyle::with_template("counting words {bar:30} {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let vocab = Vocab::build(corpus, exp.corpus.min_count, |n| {
        if n % 100_000 < 1000 {
            bar.set_message(format!("{n} words"));
        }
    })?;
    bar.finish_and_clear();
    let (run_dir, lock) = run::new_run_dir(args.run.run_dir.as_deref(), &exp.name)?;
    let mut vocab_file = std::fs::File::create(run_dir.join(VOCAB_FILE))?;
    vocab.write(&mut vocab_file)?;
    Ok((vocab, run_dir, lock))
}

/// Where training starts: the epochs already done, and the point inside the next one (native
/// path), with the tables there.
struct Start {
    epoch: usize,
    within: Option<native::Within>,
    emb: native::Embeddings,
}

/// The tables training starts from, and the epochs already done: a resumed run's last
/// checkpoint (one inside an epoch, when `within` allows it and it is newer), else a fresh
/// initialisation. A run killed after its last epoch's checkpoint but before its vectors were
/// written (`finished` false) resumes with nothing left to train.
fn starting_tables(
    resume: Option<&Path>,
    (finished, within): (bool, bool),
    vocab: usize,
    cfg: &NativeConfig,
    init_range: f64,
) -> Result<Start> {
    let (epoch, emb) = epoch_start(resume, finished, vocab, cfg, init_range)?;
    let inside = match resume {
        // (Not past the epochs asked for: `--epochs` equal to those done writes their vectors.)
        Some(dir) if within && epoch < cfg.epochs => {
            checkpoint::load_within(dir, epoch, vocab, cfg.dim)?
        }
        _ => None,
    };
    Ok(match inside {
        Some((w, emb)) => {
            println!("resuming from the checkpoint of epoch {}, step {}", w.epoch + 1, w.chunks);
            Start { epoch, within: Some(w), emb }
        }
        None => {
            if let (Some(dir), 0) = (resume, epoch) {
                println!("no checkpoint in {}: starting from epoch 1", dir.display());
            } else if epoch > 0 && epoch < cfg.epochs {
                println!("resuming from the checkpoint of epoch {epoch}");
            }
            Start { epoch, within: None, emb }
        }
    })
}

/// The epoch-end checkpoint training starts from.
fn epoch_start(
    resume: Option<&Path>,
    finished: bool,
    vocab: usize,
    cfg: &NativeConfig,
    init_range: f64,
) -> Result<(usize, native::Embeddings)> {
    let fresh = || (0, native::init(vocab, cfg.dim, init_range as f32, cfg.seed));
    let Some(dir) = resume else { return Ok(fresh()) };
    Ok(match load_checkpoint(dir, vocab, cfg.dim)? {
        Some((e, _)) if e == cfg.epochs && finished => {
            bail!(
                "{} already finished ({e} epochs); pass --epochs N (more than {e}) to train further",
                dir.display()
            )
        }
        Some((e, _)) if e > cfg.epochs => {
            bail!(
                "{} has {e} epochs done, more than --epochs {}: pass a larger --epochs, or none to keep the run's",
                dir.display(),
                cfg.epochs
            )
        }
        Some((e, emb)) => {
            if e == cfg.epochs {
                println!("the checkpoint of the last epoch ({e}) is complete: writing the vectors");
            }
            (e, emb)
        }
        None => fresh(),
    })
}

/// What the epochs need besides the tables.
struct Job<'a> {
    run_dir: &'a Path,
    corpus: &'a Corpus,
    vocab: &'a Vocab,
    cfg: &'a NativeConfig,
    /// Rows per step on the batched path, on this device; `None` runs the native threads.
    batched: Option<(usize, &'a burn::tensor::Device)>,
    first_epoch: usize,
    /// Where inside `first_epoch` training resumes (native path).
    within: Option<native::Within>,
    keep_checkpoints: usize,
    /// Time between checkpoints inside an epoch (native path).
    every: Option<std::time::Duration>,
}

/// How the epochs went.
struct Trained {
    emb: native::Embeddings,
    /// The mean loss of the last epoch.
    last_loss: f64,
    /// Epochs completed by this process.
    epochs_run: usize,
    /// Stopped by the user (Ctrl-C or the dashboard's `q`) before the last epoch.
    stopped: bool,
}

/// Trains from `emb` with the dashboard running beside it; after each epoch a checkpoint, the
/// TensorBoard scalars and a line of text.
fn run_epochs(job: Job, emb: native::Embeddings) -> Result<Trained> {
    let Job { run_dir, corpus, vocab, cfg, batched, first_epoch, within, keep_checkpoints, every } =
        job;
    let corpus_words = vocab.total();
    let progress = Progress::default();
    let start_words = corpus_words * first_epoch as u64;
    let started = Instant::now();
    let loss_of = |p: &Progress| {
        p.loss_milli.load(Ordering::Relaxed) as f64
            / 1e3
            / p.loss_pairs.load(Ordering::Relaxed).max(1) as f64
    };
    let tb: SharedWriter =
        Arc::new(Mutex::new(EventWriter::create(&run_dir.join(TB_DIR).join("train"))?));
    let mut dashboard =
        Dashboard::new(corpus_words, first_epoch, cfg.epochs).tensorboard(tb.clone(), start_words);
    let terminal = dashboard.is_terminal();
    let interrupter = dashboard.interrupter();
    let _on_signal = run::signals::on_stop(move || interrupter.stop(None));
    let mut last_loss = 0.0;
    let mut epoch_lines = Vec::new();
    let mut epochs_run = 0;
    // Called after each complete epoch, from either trainer.
    let mut on_epoch = |epoch: usize, emb: &native::Embeddings| -> Result<()> {
        save_checkpoint(run_dir, epoch + 1, emb, keep_checkpoints)?;
        checkpoint::prune_within(run_dir, None);
        epochs_run += 1;
        let loss = loss_of(&progress);
        progress.loss_milli.store(0, Ordering::Relaxed);
        progress.loss_pairs.store(0, Ordering::Relaxed);
        last_loss = loss;
        if let Ok(mut w) = tb.lock() {
            // step/loss is the running mean since the epoch began; its last point is the epoch's.
            w.scalar("step/loss", corpus_words as i64 * (epoch as i64 + 1), loss)?;
            w.scalar("epoch/loss", epoch as i64 + 1, loss)?;
            w.flush()?;
        }
        let line = format!(
            "epoch {}/{}  loss {loss:.4}  {:.0} words/s",
            epoch + 1,
            cfg.epochs,
            (progress.words.load(Ordering::Relaxed) - start_words) as f64
                / started.elapsed().as_secs_f64()
        );
        // Under the dashboard the lines are printed once it has closed.
        if terminal {
            epoch_lines.push(line)
        } else {
            println!("{line}")
        }
        Ok(())
    };
    let finished = std::sync::atomic::AtomicBool::new(false);
    /// Tells the dashboard thread to end however the training ends: a panic unwinding out of
    /// the trainer must not leave the scope waiting for the dashboard for ever.
    struct Finish<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Finish<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let trained = std::thread::scope(|s| -> Result<native::Embeddings> {
        s.spawn(|| dashboard.run(&progress, &finished));
        let _finish = Finish(&finished);
        match batched {
            None => {
                let mut emb = emb;
                let plan = native::Plan {
                    first_epoch,
                    within,
                    every,
                    on_epoch: &mut on_epoch,
                    on_within: &mut |at, emb| checkpoint::save_within(run_dir, at, emb),
                };
                native::train_planned(&mut emb, corpus, vocab, cfg, &progress, plan).map(|()| emb)
            }
            Some((batch, device)) => {
                let model = batched::to_model(&emb, device);
                batched::train(
                    model,
                    corpus,
                    vocab,
                    cfg,
                    batch,
                    first_epoch,
                    &progress,
                    device,
                    |e, m| on_epoch(e, &batched::to_embeddings(m)?),
                )
                .and_then(|m| batched::to_embeddings(&m))
            }
        }
    });
    dashboard.close();
    for line in &epoch_lines {
        println!("{line}");
    }
    Ok(Trained {
        emb: trained?,
        last_loss,
        epochs_run,
        stopped: progress.stop.load(Ordering::Relaxed),
    })
}

fn train_in(args: W2vArgs, resume: Option<PathBuf>) -> Result<()> {
    // Locked before anything in it is read (its config too): one writer per run folder, and a
    // run still starting is refused as in use, not as missing its config.
    let resume_lock = match &resume {
        Some(dir) => Some(run::lock::lock_to_resume(dir)?),
        None => None,
    };
    let config = match &resume {
        Some(dir) => dir.join(run::CONFIG_FILE),
        None => args.run.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
    };
    let exp = W2vExperiment::load(&config, &overrides(&args))?;
    let batched = batched_path(exp.train.path, args.run.backend)?;
    // Fail on a missing GPU before counting a corpus.
    let device = if batched { Some(args.run.backend.device()?) } else { None };
    let old_record = match &resume {
        Some(dir) => Some(record::read(dir)?),
        None => None,
    };
    let old_meta = match (&old_record, &resume) {
        (Some(r), Some(dir)) => Some(r.word2vec(dir)?.clone()),
        _ => None,
    };
    let finished = old_record.as_ref().is_some_and(|r| r.status == run::Status::Finished);
    let corpus_path = corpus_path(&args, &exp, old_meta.as_ref())?;
    let corpus = Corpus::open(&corpus_path, exp.corpus.lowercase)?;
    // The lock is held until training ends: one writer per run folder.
    let resumed = resume.as_deref().zip(resume_lock);
    let (vocab, run_dir, _lock) = vocabulary_and_folder(&args, &exp, &corpus, resumed)?;
    let cfg = exp.native_config();
    // Before the config and record are rewritten: a refused resume changes nothing.
    let Start { epoch: first_epoch, within, emb } = starting_tables(
        resume.as_deref(),
        (finished, !batched),
        vocab.len(),
        &cfg,
        exp.model.init_range,
    )?;
    run::write_atomic(&run_dir.join(run::CONFIG_FILE), toml::to_string_pretty(&exp)?.as_bytes())?;
    let corpus_words = vocab.total();
    let corpus_name = std::fs::canonicalize(&corpus_path).unwrap_or(corpus_path.clone());
    let part = W2vRecord {
        corpus: corpus_name.display().to_string(),
        vocab_size: vocab.len(),
        corpus_words,
    };
    let model = format!("{} dim {}", exp.model.arch.name(), exp.model.dim);
    let mut meta = RunRecord::new(TaskRecord::Word2vec(part), model, args.run.backend.to_string());
    record::write(&run_dir, &meta)?;
    let threads = cfg.threads;
    println!("run folder: {}", run_dir.display());
    println!(
        "word2vec {:?} dim {}: {} words in the vocabulary (min_count {}), {} training words per epoch, {}",
        exp.model.arch,
        exp.model.dim,
        vocab.len(),
        exp.corpus.min_count,
        corpus_words,
        if batched {
            format!("batches of {} rows on {}", exp.train.batch, args.run.backend)
        } else {
            format!("{threads} threads")
        }
    );

    let started = Instant::now();
    let job = Job {
        run_dir: &run_dir,
        corpus: &corpus,
        vocab: &vocab,
        cfg: &cfg,
        batched: device.as_ref().map(|d| (exp.train.batch, d)),
        first_epoch,
        within,
        keep_checkpoints: exp.train.keep_checkpoints,
        every: (exp.train.checkpoint_minutes > 0.0)
            .then(|| std::time::Duration::from_secs_f64(exp.train.checkpoint_minutes * 60.0)),
    };
    let trained = match run_epochs(job, emb) {
        Ok(t) => t,
        Err(e) => {
            // (On a full disk the record may not be writable either; the error is what counts.)
            meta.status = run::Status::Failed;
            meta.message = Some(format!("{e:#}"));
            meta.epochs_done = last_epoch(&run_dir).unwrap_or(0);
            let _ = record::write(&run_dir, &meta);
            let kept = match meta.epochs_done {
                0 => "no epoch had finished".to_string(),
                n => format!(
                    "the checkpoints up to epoch {n} are kept; --resume continues from there"
                ),
            };
            return Err(e.context(format!("training stopped ({kept})")));
        }
    };
    let wall = started.elapsed().as_secs_f64();
    if trained.stopped {
        meta.status = run::Status::Interrupted;
        meta.epochs_done = trained.epochs_run + first_epoch;
        record::write(&run_dir, &meta)?;
        let kept = checkpoint::newest(&run_dir, meta.epochs_done)
            .map(|c| format!(" ({c} is kept)"))
            .unwrap_or_default();
        println!(
            "stopped{kept}: continue with `burnlab train word2vec --resume --run-dir {}`",
            run_dir.display()
        );
        return Ok(());
    }

    let metrics = W2vMetrics {
        epochs: cfg.epochs,
        path: if batched { "batched" } else { "native" }.into(),
        backend: args.run.backend.to_string(),
        threads,
        vocab_size: vocab.len(),
        words_per_epoch: corpus_words,
        train_seconds: wall,
        words_per_s: (corpus_words * (cfg.epochs - first_epoch) as u64) as f64 / wall,
        final_loss: trained.last_loss,
    };
    finish(&run_dir, &mut meta, &vocab, trained.emb, &metrics)
}

/// A finished run's vector files, metrics and record.
fn finish(
    run_dir: &Path,
    meta: &mut RunRecord,
    vocab: &Vocab,
    emb: native::Embeddings,
    metrics: &W2vMetrics,
) -> Result<()> {
    let vectors = WordVectors { words: vocab.words.clone(), dim: emb.dim, vectors: emb.input };
    vectors.write_text(&run_dir.join(VECTORS_TEXT))?;
    vectors.write_binary(&run_dir.join(VECTORS_BIN))?;
    run::write_json(&run_dir.join(run::METRICS_FILE), metrics)?;
    meta.status = run::Status::Finished;
    meta.epochs_done = metrics.epochs;
    record::write(run_dir, meta)?;
    println!(
        "done in {:.1}s: {:.0} words/s, loss {:.4}\nvectors: {} and {}",
        metrics.train_seconds,
        metrics.words_per_s,
        metrics.final_loss,
        run_dir.join(VECTORS_TEXT).display(),
        run_dir.join(VECTORS_BIN).display()
    );
    Ok(())
}
