//! `burnlab train rnn`: a character language model (vanilla RNN, LSTM or GRU) on a text, with
//! burn-train's Learner and dashboard; `burnlab sample` and `burnlab eval` for its runs.

pub mod stepper;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::TensorReadError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    AccuracyMetric, Adaptor, LearningRateMetric, LossMetric, Metric, MetricAttributes,
    MetricMetadata, MetricName, Numeric, NumericAttributes, NumericEntry, PerplexityMetric,
    SerializedEntry,
};
use burn::train::{
    ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep,
};
use burnlab_data::chars::{self, CharBatch, CharLoader, CharVocab};
use burnlab_data::download::{Checksum, Download};
use burnlab_models::{CellKind, CharLm, CharLmConfig, RecurrentConfig};

use crate::tasks::charlm::stepper::CharLmStepper;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::cli::{RnnArgs, SampleArgs};
use crate::config::{self, OptimConfig, ScheduleConfig, flag, float_flag};
use crate::insight::tb_logger::TbLogger;
use crate::optim::{Schedule, build_optimizer};
use crate::run::checkpoint::{ResumePoint, epoch_checkpoints};
use crate::run::launch::{Ended, Launch, launch, seeded_init, start};
use crate::run::metrics::ThroughputMetric;
use crate::run::record::{self, CharLmRecord, RunRecord, TaskRecord};
use crate::run::{self, Status};

pub const DEFAULT_CONFIG: &str = "configs/charlm-shakespeare.toml";
pub const VOCAB_FILE: &str = "chars.json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CharLmExperiment {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    pub data: TextData,
    pub model: RnnModel,
    pub train: RnnTrain,
    pub optim: OptimConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextData {
    /// "tinyshakespeare" (downloaded into the cache) or a path to a UTF-8 text file.
    pub source: String,
    /// The last part of the text, by position, held out for validation.
    pub valid_fraction: f64,
    /// Characters per training window (the model sees seq_len and predicts the next of each).
    pub seq_len: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RnnModel {
    pub cell: CellKind,
    pub embed: usize,
    pub hidden: usize,
    pub layers: usize,
    #[serde(default)]
    pub dropout: f64,
    /// Initial forget-gate bias of an LSTM (1: remember by default).
    #[serde(default = "one")]
    pub forget_bias: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RnnTrain {
    pub epochs: usize,
    /// Training steps (batches of random windows) per epoch.
    pub steps_per_epoch: usize,
    pub batch_size: usize,
    /// Clip the global gradient norm to this (0: no clipping).
    pub clip: f64,
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Checkpoints kept: the last N epochs'.
    #[serde(default = "crate::config::default_keep_checkpoints")]
    pub keep_checkpoints: usize,
    /// Minutes between checkpoints inside an epoch (0: at epoch ends only).
    #[serde(default = "crate::config::default_checkpoint_minutes")]
    pub checkpoint_minutes: f64,
}

fn default_log_every() -> usize {
    50
}

impl CharLmExperiment {
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Self> {
        let exp: Self = crate::config::load_toml(path, overrides)?;
        exp.validate().with_context(|| format!("{}: invalid config", path.display()))?;
        Ok(exp)
    }

    fn validate(&self) -> Result<()> {
        let (d, m, t) = (&self.data, &self.model, &self.train);
        if self.optim.backbone_lr_scale != 1.0 {
            bail!("optim.backbone_lr_scale is for image models (a head on a backbone)");
        }
        if !(d.valid_fraction > 0.0 && d.valid_fraction < 1.0) {
            bail!("data.valid_fraction must be in (0, 1), got {}", d.valid_fraction);
        }
        for (name, v) in [
            ("data.seq_len", d.seq_len),
            ("model.embed", m.embed),
            ("model.hidden", m.hidden),
            ("model.layers", m.layers),
            ("train.epochs", t.epochs),
            ("train.steps_per_epoch", t.steps_per_epoch),
            ("train.batch_size", t.batch_size),
            ("train.keep_checkpoints", t.keep_checkpoints),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if !(0.0..1.0).contains(&m.dropout) {
            bail!("model.dropout must be in [0, 1), got {}", m.dropout);
        }
        crate::config::check_checkpoint_minutes(t.checkpoint_minutes)?;
        if !(t.clip.is_finite() && t.clip >= 0.0) {
            bail!("train.clip must be >= 0, got {}", t.clip);
        }
        if !(self.optim.lr.is_finite() && self.optim.lr > 0.0) {
            bail!("optim.lr must be a positive number, got {}", self.optim.lr);
        }
        Ok(())
    }

    fn model_config(&self, vocab: usize, host: bool) -> CharLmConfig {
        let m = &self.model;
        CharLmConfig::new(
            vocab,
            RecurrentConfig::new(m.cell, m.embed, m.hidden)
                .with_layers(m.layers)
                .with_dropout(m.dropout)
                .with_host_dropout(host)
                .with_forget_bias(m.forget_bias),
        )
    }
}

/// The model plus what a training step needs.
#[derive(Module, Debug)]
pub struct CharModel {
    pub net: CharLm,
    #[module(skip)]
    pub clip: f64,
}

/// Bits per character: the loss in nats divided by ln 2, weighted by characters.
#[derive(Clone)]
pub struct BitsPerChar {
    name: MetricName,
    state: NumericMetricState,
}

pub struct BpcInput {
    loss: Tensor<1>,
    chars: usize,
}

impl Adaptor<BpcInput> for ClassificationOutput {
    fn adapt(&self) -> BpcInput {
        BpcInput { loss: self.loss.clone(), chars: self.targets.dims()[0] }
    }
}

impl Default for BitsPerChar {
    fn default() -> Self {
        Self::new()
    }
}

impl BitsPerChar {
    pub fn new() -> Self {
        Self { name: Arc::new("Bits per char".to_string()), state: NumericMetricState::default() }
    }
}

impl Metric for BitsPerChar {
    type Input = BpcInput;

    fn update(
        &mut self,
        input: &BpcInput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let nats = input.loss.clone().mean().try_into_scalar::<f64>()?;
        self.state.update(nats / std::f64::consts::LN_2, input.chars);
        Ok(self.state.compute_update(FormatOptions::new(self.name()).precision(3)))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.state.compute_final(FormatOptions::new(self.name()).precision(3)))
    }

    fn clear(&mut self) {
        self.state.reset()
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes { unit: Some("bits".into()), higher_is_better: false }.into()
    }
}

impl Numeric for BitsPerChar {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }
    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }
    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}

/// Scale every gradient so that their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`); returns the norm before clipping. Burn's own norm clipping is per
/// parameter tensor.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    struct SquaredNorms<'a> {
        grads: &'a GradientsParams,
        sums: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for SquaredNorms<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.sums.push(g.square().sum());
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut norms = SquaredNorms { grads, sums: Vec::new() };
    module.visit(&mut norms);
    if norms.sums.is_empty() {
        return 0.0;
    }
    let total = Tensor::cat(norms.sums, 0).sum().sqrt().into_scalar::<f64>();
    if total > max_norm {
        module.visit(&mut Scale { grads, factor: max_norm / (total + 1e-6) });
    }
    total
}

impl CharModel {
    fn output(&self, batch: CharBatch) -> ClassificationOutput {
        let [b, t] = batch.targets.dims();
        let (loss, logits) = self.net.loss(batch.inputs, batch.targets.clone());
        ClassificationOutput { loss, output: logits, targets: batch.targets.reshape([b * t]) }
    }
}

impl TrainStep for CharModel {
    type Input = CharBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: CharBatch) -> TrainOutput<ClassificationOutput> {
        let item = self.output(batch);
        let mut grads = GradientsParams::from_grads(item.loss.backward(), self);
        if self.clip > 0.0 {
            clip_global_norm(self, &mut grads, self.clip);
        }
        TrainOutput { grads, item }
    }
}

impl InferenceStep for CharModel {
    type Input = CharBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: CharBatch) -> ClassificationOutput {
        self.output(batch)
    }
}

fn overrides(args: &RnnArgs) -> Vec<(String, String)> {
    config::overrides(
        &[
            ("model.cell", args.cell.clone()),
            ("model.layers", flag(args.layers)),
            ("model.hidden", flag(args.hidden)),
            ("train.epochs", flag(args.run.epochs)),
            ("train.steps_per_epoch", flag(args.steps)),
            ("train.batch_size", flag(args.batch_size)),
            ("data.seq_len", flag(args.seq_len)),
            ("optim.lr", float_flag(args.lr)),
            ("seed", flag(args.run.seed)),
        ],
        &args.run.sets,
    )
}

/// Tiny Shakespeare from karpathy's char-rnn repository, or a mirror's URL and MD5 when
/// `BURNLAB_SHAKESPEARE_URL` and `BURNLAB_SHAKESPEARE_MD5` are set.
fn shakespeare_download() -> Download {
    let mut d = chars::shakespeare_download();
    if let Ok(url) = std::env::var("BURNLAB_SHAKESPEARE_URL") {
        d.url = url;
    }
    if let Ok(md5) = std::env::var("BURNLAB_SHAKESPEARE_MD5") {
        d.checksum = Checksum::Md5(md5.to_lowercase());
    }
    d
}

/// The run's record, which must be a character model's.
fn read_meta(run_dir: &Path) -> Result<RunRecord> {
    let meta = record::read(run_dir)?;
    meta.charlm(run_dir)?;
    Ok(meta)
}

/// The experiment a new `train rnn` run with these flags trains (its config, overrides applied,
/// validated).
pub fn load_experiment(args: &RnnArgs) -> Result<CharLmExperiment> {
    let config = args.run.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    CharLmExperiment::load(&config, &overrides(args))
}

pub fn train_command(args: RnnArgs) -> Result<()> {
    let (run_dir, config_path, resume_from) =
        start(&args.run, DEFAULT_CONFIG, |r, dir| r.charlm(dir).map(drop))?;
    let exp = CharLmExperiment::load(&config_path, &overrides(&args))?;
    let device = args.run.backend.device()?;

    let corpus = corpus_path(&args, &exp, run_dir.as_ref().map(|(d, _)| d.as_path()))?;
    let text = chars::read_text(&corpus)?;
    let vocab = match &run_dir {
        // A resumed run keeps its vocabulary: the rows of the embedding are its characters.
        Some((dir, _)) => CharVocab::read(&dir.join(VOCAB_FILE))?,
        None => CharVocab::from_text(&text),
    };
    let ids = vocab.encode(&text);
    let (train_ids, valid_ids) = chars::split(&ids, exp.data.valid_fraction);
    let (train_chars, valid_chars) = (train_ids.len(), valid_ids.len());
    let ad = device.clone().autodiff();
    let seq = exp.data.seq_len;
    let valid_set = Arc::new(valid_ids);
    let (train_loader, valid_loader) =
        loaders(&exp, [Arc::new(train_ids), valid_set.clone()], [&ad, &device], resume_from)
            .map_err(|e| anyhow::anyhow!("{}: {e}", corpus.display()))?;

    let resumed = run_dir.is_some();
    // Held until training ends: one writer per run folder.
    let (run_dir, _lock) = run::claim_run_dir(run_dir, args.run.run_dir.as_deref(), &exp.name)?;
    // Atomic: a resume rewrites it, and a kill then must not leave half a config.
    run::write_atomic(&run_dir.join(run::CONFIG_FILE), toml::to_string_pretty(&exp)?.as_bytes())?;
    // A resumed run keeps the vocabulary it was read from; a new one writes it (over whatever a
    // process killed before its record left).
    if !resumed {
        vocab.write(&run_dir.join(VOCAB_FILE))?;
    }
    println!("run folder: {}", run_dir.display());

    let model = initial_model(&exp, vocab.len(), args.run.backend.is_host(), &ad);
    let describe = format!(
        "{} {}x{} (embedding {})",
        exp.model.cell.name(),
        exp.model.layers,
        exp.model.hidden,
        exp.model.embed
    );
    let part = CharLmRecord {
        corpus: std::fs::canonicalize(&corpus).unwrap_or(corpus.clone()).display().to_string(),
        train_chars,
        valid_chars,
        trainable_params: model.num_params(),
    };
    let trainable_params = part.trainable_params;
    let mut meta =
        RunRecord::new(TaskRecord::Charlm(part), describe.clone(), args.run.backend.to_string());
    meta.epochs_done = resume_from.map_or(0, |p| p.epochs_done());
    record::write(&run_dir, &meta)?;
    println!(
        "{describe}: {} parameters, {} characters in the vocabulary, {train_chars} train / {valid_chars} valid characters, backend {}",
        trainable_params,
        vocab.chars.len(),
        meta.backend
    );

    let training = supervised(&run_dir, &exp, train_loader.clone(), valid_loader)?;
    let schedule =
        Schedule::new(&exp.schedule, exp.optim.lr, exp.train.steps_per_epoch, exp.train.epochs);
    let learner =
        Learner::new(model, build_optimizer(&exp.optim, args.run.backend.is_host()), schedule);
    let spec = Launch {
        run_dir: &run_dir,
        epochs: exp.train.epochs,
        log_every: exp.train.log_every,
        unit: Some("windows"),
        resume_from,
        resume_asked: args.run.resume,
        command: "rnn",
        diverged_advice: format!(
            "Lower optim.lr (now {}) or set train.clip, and train again",
            exp.optim.lr
        ),
        checkpoint_minutes: exp.train.checkpoint_minutes,
    };
    let (model, wall) = match launch(training, learner, spec, &mut meta)? {
        Ended::Finished { model, wall } => (model, wall),
        Ended::Interrupted => return Ok(()),
    };
    let valid = validation_loss(&model.net, &valid_set, seq, &device);
    finish(&run_dir, &mut meta, &exp, valid, (&train_loader, wall))
}

/// A finished run's metrics (validation loss in nats, bits and perplexity; throughput) and
/// record.
fn finish(
    run_dir: &Path,
    meta: &mut RunRecord,
    exp: &CharLmExperiment,
    valid: f64,
    (train_loader, wall): (&CharLoader, f64),
) -> Result<()> {
    let timings = train_loader.timings();
    let (n, s) = timings.iter().fold((0usize, 0f64), |(n, s), t| (n + t.1, s + t.2));
    let chars_per_s = if s > 0.0 { n as f64 / s } else { 0.0 };
    let metrics = serde_json::json!({
        "epochs": exp.train.epochs,
        "steps": exp.train.epochs * exp.train.steps_per_epoch,
        "train_seconds": wall,
        "chars_per_s": chars_per_s,
        "valid_loss": valid,
        "valid_bits_per_char": valid / std::f64::consts::LN_2,
        "valid_perplexity": valid.exp(),
    });
    run::write_json(&run_dir.join(run::METRICS_FILE), &metrics)?;
    meta.status = Status::Finished;
    meta.epochs_done = exp.train.epochs;
    record::write(run_dir, meta)?;
    println!(
        "done in {wall:.1}s: validation loss {valid:.4} nats/char ({:.3} bits/char, perplexity {:.2}), {chars_per_s:.0} train chars/s\nmodel: {}",
        valid / std::f64::consts::LN_2,
        valid.exp(),
        run_dir.join(run::MODEL_FILE).display()
    );
    Ok(())
}

/// The training loader (random windows from where the run resumes, on the autodiff device) and
/// the validation loader (every window in order, batches of 64).
fn loaders(
    exp: &CharLmExperiment,
    [train, valid]: [Arc<Vec<u32>>; 2],
    [train_device, valid_device]: [&Device; 2],
    resume: Option<ResumePoint>,
) -> std::result::Result<(CharLoader, CharLoader), burnlab_data::DataError> {
    let seq = exp.data.seq_len;
    let (batch, steps) = (exp.train.batch_size, exp.train.steps_per_epoch);
    let train = CharLoader::random(train, seq, batch, steps, exp.seed, train_device.clone())?
        .resume_at(resume.map_or(1, |p| p.epoch), resume.map_or(0, |p| p.step));
    let valid = CharLoader::contiguous(valid, seq, 64, valid_device.clone())?;
    Ok((train, valid))
}

/// The text: --corpus, else the resumed run's, else the config's source.
fn corpus_path(args: &RnnArgs, exp: &CharLmExperiment, resumed: Option<&Path>) -> Result<PathBuf> {
    Ok(match (&args.corpus, resumed) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) => PathBuf::from(&read_meta(dir)?.charlm(dir)?.corpus),
        (None, None) if exp.data.source == "tinyshakespeare" => {
            chars::ensure_shakespeare(&args.cache, &shakespeare_download())?
        }
        (None, None) => PathBuf::from(&exp.data.source),
    })
}

/// The network initialised on the CPU from the seed, then moved to `device`: the same seed gives
/// the same starting weights on every backend.
fn initial_model(exp: &CharLmExperiment, vocab: usize, host: bool, device: &Device) -> CharModel {
    let net = seeded_init(exp.seed, |d| exp.model_config(vocab, host).init(d));
    CharModel { net, clip: exp.train.clip }.fork(device).train()
}

/// burn-train's supervised training with the character model's metrics and loggers.
fn supervised(
    run_dir: &Path,
    exp: &CharLmExperiment,
    train: CharLoader,
    valid: CharLoader,
) -> Result<SupervisedTraining<CharModel>> {
    let valid_batches = burn::data::dataloader::DataLoader::num_items(&valid).div_ceil(64);
    let tb = TbLogger::create(run_dir, exp.train.steps_per_epoch, valid_batches)?;
    let chars_per_window = exp.data.seq_len as f64;
    let training = SupervisedTraining::new(run_dir, Arc::new(train), Arc::new(valid))
        .with_metric_logger(tb)
        .metrics((BitsPerChar::new(), PerplexityMetric::new(), AccuracyMetric::new()))
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train_numeric(ThroughputMetric::per_item("chars/s", chars_per_window))
        .with_application_logger(None)
        .num_epochs(exp.train.epochs);
    Ok(epoch_checkpoints(training, exp.train.keep_checkpoints))
}

/// Mean cross-entropy (nats/char) over every complete window of `seq` characters of `ids`,
/// each window from a zero state, as the PyTorch peer measures it.
pub fn validation_loss(net: &CharLm, ids: &Arc<Vec<u32>>, seq: usize, device: &Device) -> f64 {
    let net = net.clone().fork(device);
    let Ok(loader) = CharLoader::contiguous(ids.clone(), seq, 64, device.clone()) else {
        return f64::NAN;
    };
    let (mut total, mut count) = (0.0, 0usize);
    for batch in burn::data::dataloader::DataLoader::iter(&loader).flatten() {
        let [b, t] = batch.targets.dims();
        let (loss, _) = net.loss(batch.inputs, batch.targets);
        total += loss.into_scalar::<f64>() * (b * t) as f64;
        count += b * t;
    }
    total / count.max(1) as f64
}

/// Rebuild a trained run's network on `device`.
pub(crate) fn load_run(
    run_dir: &Path,
    device: &Device,
) -> Result<(CharLm, CharVocab, CharLmExperiment, RunRecord)> {
    let meta = read_meta(run_dir)?;
    let exp = CharLmExperiment::load(&run_dir.join(run::CONFIG_FILE), &[])?;
    let vocab = CharVocab::read(&run_dir.join(VOCAB_FILE))?;
    let path = run::model_file(run_dir, meta.status)?;
    let model = CharModel { net: exp.model_config(vocab.len(), true).init(device), clip: 0.0 };
    let model = model
        .try_load_file(&path)
        .with_context(|| format!("{}: cannot load the model", path.display()))?;
    Ok((model.net, vocab, exp, meta))
}

/// `burnlab eval RUN` for a character model: validation loss of the run's own split.
pub fn eval_command(run_dir: &Path, backend: crate::backend::Backend) -> Result<()> {
    let device = backend.device()?;
    let (net, vocab, exp, meta) = load_run(run_dir, &device)?;
    let part = meta.charlm(run_dir)?;
    let text = chars::read_text(Path::new(&part.corpus))?;
    let ids = vocab.encode(&text);
    let (_, valid) = chars::split(&ids, exp.data.valid_fraction);
    let started = Instant::now();
    let loss = validation_loss(&net, &Arc::new(valid), exp.data.seq_len, &device);
    println!("model={}", meta.model);
    println!("valid_chars={}", part.valid_chars);
    println!("valid_loss={loss:.4}");
    println!("valid_bits_per_char={:.4}", loss / std::f64::consts::LN_2);
    println!("valid_perplexity={:.3}", loss.exp());
    println!("eval_chars_per_s={:.0}", part.valid_chars as f64 / started.elapsed().as_secs_f64());
    Ok(())
}

/// Draw `length` characters after `prime` at `temperature` (seeded): the prime runs through
/// the network once, then each sampled character is fed back. On a CPU backend the steps run
/// in [`CharLmStepper`] (batch-1 matrix-vector kernels on a host copy of the weights); on a GPU
/// through the model's own ops, with the state kept on the device and only the V
/// probabilities read back. Both give the same text for a seed (tested).
pub fn sample(
    net: &CharLm,
    vocab: &CharVocab,
    prime: &str,
    length: usize,
    temperature: f64,
    seed: u64,
    device: &Device,
) -> Result<String> {
    let prime_ids = if prime.is_empty() { vec![vocab.id('\n')] } else { vocab.encode(prime) };
    if is_cpu(device) {
        let mut stepper =
            CharLmStepper::new(net).context("copying the model's weights to the host")?;
        return Ok(sample_with(vocab, &prime_ids, length, seed, |id, probs| {
            softmax_at(stepper.step(id), temperature, probs)
        }));
    }
    Ok(sample_on_device(net, vocab, &prime_ids, length, temperature, seed, device))
}

/// Sampling through the model's own tensor ops on `device`.
fn sample_on_device(
    net: &CharLm,
    vocab: &CharVocab,
    prime_ids: &[u32],
    length: usize,
    temperature: f64,
    seed: u64,
    device: &Device,
) -> String {
    let mut state = Some(net.rnn.zero_state(1, device));
    let token =
        |id: u32| Tensor::<1, Int>::from_data(TensorData::new(vec![id as i64], [1]), device);
    sample_with(vocab, prime_ids, length, seed, |id, probs| {
        let (l, s) =
            net.step(token(id), state.take().unwrap_or_else(|| net.rnn.zero_state(1, device)));
        state = Some(s);
        // Softmax at the temperature on the device; only V probabilities come back.
        *probs = burn::tensor::activation::softmax(l.div_scalar(temperature), 1)
            .into_data()
            .try_to_vec()
            .unwrap_or_default();
    })
}

fn is_cpu(device: &Device) -> bool {
    #[allow(deprecated)]
    let ndarray = Device::ndarray();
    *device == Device::flex() || *device == ndarray
}

/// probs ← softmax(logits / temperature), in f64 from the largest logit down.
fn softmax_at(logits: &[f32], temperature: f64, probs: &mut Vec<f32>) {
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    probs.clear();
    probs.extend(logits.iter().map(|&l| ((l as f64 - max) / temperature).exp() as f32));
    let total: f32 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
}

/// The sampling loop of both paths: `feed(id, probs)` feeds one character and writes the
/// probabilities of the next.
fn sample_with(
    vocab: &CharVocab,
    prime_ids: &[u32],
    length: usize,
    seed: u64,
    mut feed: impl FnMut(u32, &mut Vec<f32>),
) -> String {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut probs: Vec<f32> = Vec::new();
    for &id in prime_ids {
        feed(id, &mut probs);
    }
    let mut out = Vec::with_capacity(length);
    for i in 0..length {
        // The unknown token is never sampled.
        let usable = &probs[..vocab.chars.len().min(probs.len())];
        let total: f32 = usable.iter().sum();
        let mut u = rng.random::<f32>() * total;
        let mut next = usable.len().saturating_sub(1);
        for (i, &p) in usable.iter().enumerate() {
            if u < p {
                next = i;
                break;
            }
            u -= p;
        }
        out.push(next as u32);
        if i + 1 < length {
            feed(next as u32, &mut probs);
        }
    }
    vocab.decode(&out)
}

pub fn sample_command(args: SampleArgs) -> Result<()> {
    if !(args.temperature.is_finite() && args.temperature > 0.0) {
        bail!("--temperature must be a positive number, got {}", args.temperature);
    }
    let device = args.backend.device()?;
    let (net, vocab, _, _) = load_run(&args.run_dir, &device)?;
    // `--prime "ROMEO:\n"` as typed in a shell means a newline.
    let args = SampleArgs { prime: args.prime.replace("\\n", "\n"), ..args };
    let unknown: Vec<char> =
        args.prime.chars().filter(|&c| vocab.id(c) == vocab.unknown()).collect();
    if !unknown.is_empty() {
        tracing::warn!(
            "characters not in the training text are read as the unknown token: {unknown:?}"
        );
    }
    let started = Instant::now();
    // On a rayon worker, so that the host stepper's matrix-vector products split over the
    // other workers by work stealing rather than by waking a sleeping pool for each product.
    let text = rayon::scope(|_| {
        sample(&net, &vocab, &args.prime, args.length, args.temperature, args.seed, &device)
    })?;
    println!("{}{text}", args.prime);
    tracing::info!("{:.0} chars/s", args.length as f64 / started.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clipping scales every gradient by the same factor so that the global norm is the bound.
    #[test]
    fn clip_global_norm_scales_to_the_bound() {
        let plain = Device::flex();
        plain.seed(4);
        let ad = plain.clone().autodiff();
        let net = CharLmConfig::new(7, RecurrentConfig::new(CellKind::Gru, 3, 5))
            .init(&plain)
            .fork(&ad)
            .train();
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 4, 5, 6], [2, 3]), &ad);
        let (loss, _) = net.loss(tokens.clone(), tokens);
        let mut grads = GradientsParams::from_grads(loss.mul_scalar(100.0).backward(), &net);
        let before: f32 = grads
            .get::<2>(net.head.weight.id)
            .expect("g")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f")[0];
        let norm = clip_global_norm(&net, &mut grads, 0.5);
        assert!(norm > 0.5, "{norm}");
        let after: f32 = grads
            .get::<2>(net.head.weight.id)
            .expect("g")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f")[0];
        assert!((after - before * (0.5 / norm) as f32).abs() < 1e-6 * before.abs().max(1.0));
        assert!(
            (clip_global_norm(&net, &mut grads, 10.0) - 0.5).abs() < 1e-4,
            "the clipped norm is the bound"
        );
    }

    /// Overfit a 200-character text: the loss goes to near zero, and greedy-ish sampling
    /// (low temperature) from its start reproduces it; a fixed seed reproduces a sample.
    #[test]
    fn overfits_a_short_text_and_samples_reproducibly() {
        use crate::config::{OptimConfig, OptimKind};
        use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
        let text = "the quick brown fox jumps over the lazy dog. ".repeat(5);
        let text = &text[..200];
        let vocab = CharVocab::from_text(text);
        let ids = vocab.encode(text);
        let plain = Device::flex();
        plain.seed(1);
        let ad = plain.clone().autodiff();
        let mut net = CharLmConfig::new(vocab.len(), RecurrentConfig::new(CellKind::Lstm, 16, 64))
            .init(&plain)
            .fork(&ad)
            .train();
        let x: Vec<i64> = ids[..199].iter().map(|&c| c as i64).collect();
        let y: Vec<i64> = ids[1..].iter().map(|&c| c as i64).collect();
        let xs = Tensor::<2, Int>::from_data(TensorData::new(x, [1, 199]), &ad);
        let ys = Tensor::<2, Int>::from_data(TensorData::new(y, [1, 199]), &ad);
        let mut opt = build_optimizer(
            &OptimConfig {
                name: OptimKind::Adam,
                lr: 0.01,
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.0,
                backbone_lr_scale: 1.0,
            },
            true,
        );
        let mut loss_v = f64::MAX;
        for _ in 0..150 {
            let (loss, _) = net.loss(xs.clone(), ys.clone());
            loss_v = loss.clone().into_scalar::<f64>();
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = opt.step(ModuleLearningRate::from(0.01), net, grads);
            if loss_v < 0.02 {
                break;
            }
        }
        assert!(loss_v < 0.05, "loss after training: {loss_v}");
        let net = net.valid();
        let a = sample(&net, &vocab, "the quick", 40, 0.1, 3, &plain).expect("sample");
        assert!(text.contains(&format!("the quick{a}")), "{a:?}");
        let b = sample(&net, &vocab, "the", 30, 1.5, 9, &plain).expect("sample");
        assert_eq!(b, sample(&net, &vocab, "the", 30, 1.5, 9, &plain).expect("sample"));
        // The host stepper (CPU backends) and the model's own ops (GPU backends) draw the
        // same text for a seed, at a temperature where the choice is far from certain.
        assert_eq!(b, sample_on_device(&net, &vocab, &vocab.encode("the"), 30, 1.5, 9, &plain));
        // An unseen character in the prime is read as the unknown token, not a crash.
        let z = sample(&net, &vocab, "Zebra!", 5, 1.0, 1, &plain).expect("sample");
        assert_eq!(z.chars().count(), 5);
    }
}
