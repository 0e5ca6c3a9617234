//! Training an image classifier end to end: data, model, burn-train Learner, checkpoints,
//! final model and metrics.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::tensor::Device;
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining};
use burnlab_data::{ImageLoader, ImageSet, Normalization};
use serde::Serialize;

use crate::cli::TrainArgs;
use crate::config::{self, Freeze, ImageExperiment, flag, float_flag};
use crate::insight::tb_logger::{SampleGrid, TbLogger};
use crate::optim::{build_optimizer, module_schedule};
use crate::run::checkpoint::{ResumePoint, epoch_checkpoints};
use crate::run::launch::{Ended, Launch, launch, seeded_init, start};
use crate::run::metrics::ThroughputMetric;
use crate::run::record::{self, ImageRecord, RunRecord, TaskRecord};
use crate::run::{self, Status};
use crate::tasks::image::classifier::ImageClassifier;
use crate::tasks::image::data::load_data;
use crate::tasks::image::eval::eval_batch;
use crate::tasks::image::eval::{EvalReport, evaluate};
use crate::tasks::image::model::{build_model, describe_model};
use crate::weights::init::{describe as describe_init, init_from};

/// Training images the final model is scored on (`metrics.json` `train_sample`): at most this
/// many, and at most [`TRAIN_SAMPLE_BYTES`] of pixels (5,000 CIFAR images are 15 MB; at 224 px
/// the cap is 445 images), so that scoring it never raises the run's peak memory much.
const TRAIN_SAMPLE: usize = 5000;
const TRAIN_SAMPLE_BYTES: usize = 64 << 20;

/// Up to `TRAIN_SAMPLE` training images, a seeded choice, as validation images are seen.
fn train_sample(train: &ImageSet, seed: u64) -> Result<ImageSet> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let image_bytes = (train.channels * train.height * train.width).max(1);
    let count = TRAIN_SAMPLE.min(TRAIN_SAMPLE_BYTES / image_bytes).max(1);
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x7a1e));
    order.truncate(count);
    order.sort_unstable();
    Ok(train.subset(&order).to_fixed()?)
}

#[derive(Serialize)]
struct MetricsFile<'a> {
    epochs: usize,
    train_images: usize,
    train_seconds: f64,
    train_images_per_s: f64,
    /// Per epoch of this session (a GPU backend's first epoch includes kernel autotuning).
    epoch_images_per_s: Vec<f64>,
    /// Peak resident memory of the process so far (Linux), MiB.
    peak_rss_mib: Option<f64>,
    /// The final model on (up to) `TRAIN_SAMPLE` training images, without augmentation (as
    /// CS231n's `check_accuracy(X_train[:1000])`): set beside `valid`, it shows over- and
    /// underfitting, which the epoch's running accuracy (augmented, a moving model) blurs.
    train_sample: &'a EvalReport,
    valid: &'a EvalReport,
    /// None for a cross-validation fold (the test split is not touched).
    #[serde(skip_serializing_if = "Option::is_none")]
    test: Option<&'a EvalReport>,
    /// The split `test` is on: "test", or the data's validation split when it has no test split.
    test_split: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_tta: Option<&'a EvalReport>,
}

fn overrides(args: &TrainArgs) -> Vec<(String, String)> {
    config::overrides(
        &[
            ("train.epochs", flag(args.run.epochs)),
            ("optim.lr", float_flag(args.lr)),
            ("train.batch_size", flag(args.batch_size)),
            ("data.image_size", flag(args.image_size)),
            ("seed", flag(args.run.seed)),
        ],
        &args.run.sets,
    )
}

/// The experiment a new `train mlp|cnn` run with these flags trains (`default_config` unless
/// `--config`; overrides applied, validated).
pub fn load_experiment(args: &TrainArgs, default_config: &str) -> Result<ImageExperiment> {
    let config = args.run.config.clone().unwrap_or_else(|| default_config.into());
    config::load_image(&config, &overrides(args))
}

/// `train cnn`'s flags as an image run's, and its default config: `--model` picks the config and
/// sets the architecture (before the `--set`s, which win).
pub fn cnn_args(mut args: crate::cli::CnnArgs) -> (TrainArgs, &'static str) {
    let (default_config, sets) =
        crate::tasks::image::model::model_choice(args.model.as_deref().unwrap_or("resnet20"));
    if args.model.is_some() {
        args.train.run.sets.splice(0..0, sets);
    }
    (args.train, default_config)
}

/// `burnlab train mlp|cnn`: `default_config` when `--config` is not given, `task` names the run.
pub fn train_image(args: TrainArgs, default_config: &str, task: &str) -> Result<()> {
    let (run_dir, config_path, resume_from) =
        start(&args.run, default_config, |r, dir| r.image(dir).map(drop))?;
    let exp = config::load_image(&config_path, &overrides(&args))?;
    let device = args.run.backend.device()?;
    // Data first: a run folder appears only once there is something to train on.
    let data = load_data(&args.data, &exp.data.options(exp.seed))?;
    let cv = exp.data.cv();
    let (train, valid) = match (cv, data.valid) {
        // A cross-validation fold: folds of the training split only (the data's own validation
        // split, if any, is left out; the test split is never touched).
        (Some((folds, fold)), _) => {
            let (train, valid) = data.train.fold_split(folds, fold, exp.seed)?;
            println!("cross-validation: fold {fold} of {folds} validates ({} images)", valid.len());
            (train, valid.to_fixed()?)
        }
        // The data's own validation split (a `val/` folder, or split off a folder without splits).
        (None, Some(valid)) => (data.train, valid),
        (None, None) => match exp.data.valid_size.of(data.train.len()) {
            // The final run after model selection: the whole training split trains, and the
            // epoch-end curves are on the test split (nothing is chosen by them any more).
            0 => {
                println!(
                    "data.valid_size = 0: training on all {} training images; the curves' validation is the {} split",
                    data.train.len(),
                    data.test_name
                );
                let test = data.test.clone();
                (data.train, test)
            }
            count => {
                let (train, valid) = data.train.split_validation(count, exp.seed)?;
                // Validation images are seen as test images are: centre-cropped.
                (train, valid.to_fixed()?)
            }
        },
    };
    if valid.is_empty() {
        bail!("the validation split is empty: a validation split is needed to track training");
    }
    let test_split = data.test_name.clone();
    let norm = exp.data.normalization(&train)?;
    let image = [train.channels, train.height, train.width];
    let classes = train.classes.len();
    let ad = device.clone().autodiff();
    let host = args.run.backend.is_host();
    let mut model = seeded_init(exp.seed, |d| build_model(&exp, classes, image, host, d));
    // Starting weights are read before the run folder is touched: a bad file leaves nothing.
    let init = match (&args.init_from, resume_from) {
        (Some(source), None) => Some(init_from(&mut model.net, source, args.init_partial)?),
        _ => None,
    };
    if exp.train.freeze == Freeze::Backbone {
        let head = model.net.head_group();
        model = model.freeze().unfreeze_group(head);
    }
    let model = model.fork(&ad).train();
    // Held until training ends: one writer per run folder.
    let (run_dir, _lock) = run::claim_run_dir(run_dir, args.run.run_dir.as_deref(), &exp.name)?;
    // A resumed run keeps the record of the weights it started from.
    let init = init.or_else(|| {
        let meta = record::read(&run_dir).ok()?;
        meta.image(&run_dir).ok()?.init_from.clone()
    });
    // Atomic: a resume rewrites it, and a kill then must not leave half a config.
    run::write_atomic(&run_dir.join(run::CONFIG_FILE), toml::to_string_pretty(&exp)?.as_bytes())?;
    println!("run folder: {}", run_dir.display());
    if let (Some(r), None) = (&init, resume_from) {
        println!("{}", describe_init(r));
    }
    let part = ImageRecord {
        data_source: data.source.clone(),
        classes: train.classes.clone(),
        image_size: image,
        normalization: norm.clone(),
        trainable_params: match exp.train.freeze {
            Freeze::Backbone => model.net.head_params(),
            Freeze::None => model.net.num_trainable_params(),
        },
        init_from: init,
    };
    let part = if task == "mlp" { TaskRecord::Mlp(part) } else { TaskRecord::Cnn(part) };
    let mut meta =
        RunRecord::new(part, describe_model(&exp, classes, image), args.run.backend.to_string());
    meta.epochs_done = resume_from.map_or(0, |p| p.epochs_done());
    record::write(&run_dir, &meta)?;
    println!(
        "{}: {} trainable parameters, {} train / {} valid images, backend {}",
        meta.model,
        meta.image(&run_dir)?.trainable_params,
        train.len(),
        valid.len(),
        meta.backend
    );

    let steps_per_epoch = train.len().div_ceil(exp.train.batch_size);
    let start = resume_from.unwrap_or(ResumePoint { epoch: 1, step: 0 });
    let train_set = Arc::new(train);
    let train_loader = ImageLoader::new(train_set.clone(), exp.train.batch_size, &norm, ad.clone())
        .shuffle(exp.seed)
        .augment(exp.data.augment())
        .resume_at(start.epoch, start.step);
    let valid_set = Arc::new(valid);
    let eval_batch = eval_batch(exp.train.batch_size, (valid_set.height, valid_set.width));
    let valid_loader = ImageLoader::new(valid_set.clone(), eval_batch, &norm, device.clone());
    let training =
        supervised(&run_dir, &exp, train_loader.clone(), valid_loader, &valid_set, start.epoch)?;
    let schedule = module_schedule(
        &exp.optim,
        &exp.schedule,
        steps_per_epoch,
        exp.train.epochs,
        model.net.head_group(),
    );
    let learner =
        Learner::new(model, build_optimizer(&exp.optim, args.run.backend.is_host()), schedule);
    let spec = Launch {
        run_dir: &run_dir,
        epochs: exp.train.epochs,
        log_every: exp.train.log_every,
        unit: None,
        resume_from,
        resume_asked: args.run.resume,
        command: task,
        diverged_advice: format!("Lower optim.lr (now {}) and train again", exp.optim.lr),
        checkpoint_minutes: exp.train.checkpoint_minutes,
    };
    let (model, wall) = match launch(training, learner, spec, &mut meta)? {
        Ended::Finished { model, wall } => (model, wall),
        Ended::Interrupted => return Ok(()),
    };
    // A cross-validation fold is scored on its validation fold only.
    let test = cv.is_none().then(|| Arc::new(data.test));
    let sets = ((&valid_set, test.as_ref()), test_split.as_str());
    let sample = Arc::new(train_sample(&train_set, exp.seed)?);
    let sets = ((&sample, sets.0.0, sets.0.1), sets.1);
    finish(&run_dir, &mut meta, &exp, &model, sets, &norm, &device, (&train_loader, wall))
}

/// burn-train's supervised training with the image metrics, loggers and the validation sample
/// grid (from `first_epoch`).
fn supervised(
    run_dir: &Path,
    exp: &ImageExperiment,
    train: ImageLoader,
    valid: ImageLoader,
    valid_set: &Arc<ImageSet>,
    first_epoch: usize,
) -> Result<SupervisedTraining<ImageClassifier>> {
    let steps_per_epoch = train.num_items().div_ceil(exp.train.batch_size);
    let batch = eval_batch(exp.train.batch_size, (valid_set.height, valid_set.width));
    let tb = TbLogger::create(run_dir, steps_per_epoch, valid_set.len().div_ceil(batch))?;
    let samples = SampleGrid::new(valid_set.clone(), 32, tb.valid_writer(), first_epoch);
    let training = SupervisedTraining::new(run_dir, Arc::new(train), Arc::new(valid))
        // TensorBoard's logs (burn-train's own metric files are added by the launch).
        .with_metric_logger(tb)
        .metrics((AccuracyMetric::new(),))
        .metric_valid(samples)
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_train_numeric(ThroughputMetric::new())
        .with_application_logger(None)
        .num_epochs(exp.train.epochs);
    Ok(epoch_checkpoints(training, exp.train.keep_checkpoints))
}

/// The trained model's validation and test scores (and flip TTA), `metrics.json`, the record.
/// The training sample, validation and (unless a cross-validation fold) test sets.
type SplitsToScore<'a> = (&'a Arc<ImageSet>, &'a Arc<ImageSet>, Option<&'a Arc<ImageSet>>);

#[allow(clippy::too_many_arguments)]
fn finish(
    run_dir: &Path,
    meta: &mut RunRecord,
    exp: &ImageExperiment,
    model: &ImageClassifier,
    ((sample, valid_set, test_set), test_split): (SplitsToScore, &str),
    norm: &Normalization,
    device: &Device,
    (train_loader, wall): (&ImageLoader, f64),
) -> Result<()> {
    let batch = eval_batch(exp.train.batch_size, (valid_set.height, valid_set.width));
    let sample_report = evaluate(model, sample, norm, device, batch, false);
    let valid_report = evaluate(model, valid_set, norm, device, batch, false);
    let test_report = test_set.map(|t| evaluate(model, t, norm, device, batch, false));
    // Models trained on flipped images are also scored with flip test-time augmentation.
    let test_tta =
        test_set.filter(|_| exp.data.hflip).map(|t| evaluate(model, t, norm, device, batch, true));
    let timings = train_loader.timings();
    let (imgs, secs) =
        timings.iter().fold((0usize, 0f64), |(n, s), t| (n + t.images, s + t.seconds));
    let metrics = MetricsFile {
        epochs: exp.train.epochs,
        train_images: train_loader.num_items(),
        train_seconds: wall,
        train_images_per_s: if secs > 0.0 { imgs as f64 / secs } else { 0.0 },
        epoch_images_per_s: timings.iter().map(|t| t.images as f64 / t.seconds.max(1e-9)).collect(),
        peak_rss_mib: peak_rss_mib(),
        train_sample: &sample_report,
        valid: &valid_report,
        test: test_report.as_ref(),
        test_split,
        test_tta: test_tta.as_ref(),
    };
    run::write_json(&run_dir.join(run::METRICS_FILE), &metrics)?;
    meta.status = Status::Finished;
    meta.epochs_done = exp.train.epochs;
    record::write(run_dir, meta)?;
    let tta = test_tta
        .as_ref()
        .map(|r| format!(" ({:.2}% with flip TTA)", 100.0 * r.accuracy))
        .unwrap_or_default();
    let test = match &test_report {
        Some(t) => format!("{test_split} accuracy {:.2}%{tta}", 100.0 * t.accuracy),
        None => "test split not touched (cross-validation fold)".to_string(),
    };
    println!(
        "done in {wall:.1}s: train accuracy {:.2}% ({} images), valid accuracy {:.2}%, {test}, {:.0} train images/s\nmodel: {}",
        100.0 * sample_report.accuracy,
        sample_report.images,
        100.0 * valid_report.accuracy,
        metrics.train_images_per_s,
        run_dir.join(run::MODEL_FILE).display()
    );
    Ok(())
}

/// `VmHWM` from /proc/self/status: the peak resident set size, in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize, side: usize) -> ImageSet {
        let px = 3 * side * side;
        ImageSet {
            images: (0..n).flat_map(|i| std::iter::repeat_n(i as u8, px)).collect(),
            labels: vec![0; n],
            classes: vec!["a".into()],
            channels: 3,
            height: side,
            width: side,
            own_sizes: None,
            lazy: None,
        }
    }

    /// 5,000 small images at most, and at most 64 MiB of large ones; a seeded, distinct choice.
    #[test]
    fn the_training_sample_and_evaluation_batches_are_capped() {
        assert_eq!(train_sample(&set(6000, 2), 1).expect("small").len(), 5000);
        // Evaluation batches: 256 CIFAR images, the training batch's 32 at 224 px, 64 at 64 px.
        assert_eq!(eval_batch(128, (32, 32)), 256);
        assert_eq!(eval_batch(32, (224, 224)), 32);
        assert_eq!(eval_batch(8, (224, 224)), 8);
        assert_eq!(eval_batch(32, (64, 64)), 64);
        assert_eq!(eval_batch(1000, (32, 32)), 256);
        // 1024² RGB images are 3 MiB: 21 fit in 64 MiB.
        let big = train_sample(&set(25, 1024), 1).expect("big");
        assert_eq!(big.len(), 21);
        let firsts: Vec<u8> = (0..big.len()).map(|i| big.images[i * 3 * 1024 * 1024]).collect();
        let mut distinct = firsts.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 21, "{firsts:?}");
        assert_eq!(train_sample(&set(25, 1024), 1).expect("again").images, big.images);
    }
}
