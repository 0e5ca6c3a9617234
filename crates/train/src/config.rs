//! Experiment configs: one human-readable TOML file per experiment, every field overridable
//! from the command line, validated before anything runs.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burnlab_models::{Activation, LossKind, WeightInit};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageExperiment {
    /// Name of the run folder under `runs/` (a timestamp is added if it exists).
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    pub model: ModelConfig,
    #[serde(default)]
    pub data: DataConfig,
    pub train: TrainConfig,
    pub optim: OptimConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Network: `mlp` (with `hidden`, `dropout`, `init`), `lenet5`, `resnet` (with `depth`,
    /// `shortcut`) or `resnet9` (Page's fast DAWNBench ResNet).
    #[serde(default)]
    pub arch: Arch,
    /// ResNet depth, 6n + 2.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// ResNet shortcut when a block changes shape: `a` (zero padding) or `b` (projection).
    #[serde(default)]
    pub shortcut: burnlab_models::ShortcutKind,
    /// Hidden layer widths; `[]` is the linear softmax/SVM classifier.
    #[serde(default)]
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub init: WeightInit,
    #[serde(default)]
    pub loss: LossKind,
    /// Cross-entropy label smoothing ε (PyTorch's `label_smoothing`): the target puts 1 − ε on
    /// the true class and ε/K on every class. Training loss only; validation reports plain CE.
    #[serde(default)]
    pub label_smoothing: f64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    #[default]
    Mlp,
    Lenet5,
    /// CIFAR ResNet of `depth` = 6n + 2 layers (20, 32, 56, …).
    Resnet,
    /// The DAWNBench ResNet-9 (Page 2018).
    Resnet9,
    /// ResNet-18 or -34 (`depth`) in torchvision's layout, for photos (224 px as on ImageNet).
    #[serde(rename = "imagenet-resnet")]
    ImagenetResnet,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Images held out of training for validation (seeded) when the data has no validation
    /// split of its own: a count, or a fraction in (0, 1).
    pub valid_size: ValidSize,
    /// Skip images that cannot be decoded, with a warning naming each, instead of failing.
    pub skip_bad_images: bool,
    /// Side of the square images the model sees (CIFAR's 32; 224 as on ImageNet).
    pub image_size: usize,
    /// Length the shorter side of each image is resized to before cropping (torchvision's
    /// `Resize`); default `image_size` with `crop_padding`, `image_size` × 256/224 with
    /// `random_resized_crop`.
    pub resize: Option<usize>,
    /// Training crops: torchvision's `RandomResizedCrop(image_size)` (default scale and ratio)
    /// of each image resized to `resize`, instead of the padded random crop of CIFAR.
    pub random_resized_crop: bool,
    /// torchvision's `ColorJitter(j, j, j)` on training images (brightness, contrast and
    /// saturation factors in [max(0, 1 − j), 1 + j]); 0: off.
    pub color_jitter: f64,
    /// Per-channel normalisation: "dataset" (the training images' mean and std), "imagenet"
    /// (torchvision's constants), or `{ mean = [...], std = [...] }`.
    pub normalize: Normalize,
    /// The most memory the decoded training images may take, in MiB (with
    /// `random_resized_crop`, where they are kept at their own sizes); past it they are decoded
    /// from their files each epoch instead.
    pub cache_mib: usize,
    /// Zero padding before the random crop; 0 turns cropping off.
    pub crop_padding: usize,
    pub hflip: bool,
    /// Side of the Cutout square blanked in each training image (0: off).
    pub cutout: usize,
    /// Cross-validation (`burnlab cv` sets these): the training split dealt into `cv_folds`
    /// stratified folds (seeded by `seed`), fold `cv_fold` (from 1) validating and the others
    /// training; the test split is not touched. 0: off.
    #[serde(skip_serializing_if = "is_zero")]
    pub cv_folds: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub cv_fold: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            valid_size: ValidSize::Count(5000),
            skip_bad_images: false,
            image_size: 32,
            resize: None,
            random_resized_crop: false,
            color_jitter: 0.0,
            normalize: Normalize::default(),
            cache_mib: 2048,
            crop_padding: 4,
            hflip: true,
            cutout: 0,
            cv_folds: 0,
            cv_fold: 0,
        }
    }
}

impl DataConfig {
    /// How the data crate reads an image folder for this config.
    pub fn options(&self, seed: u64) -> burnlab_data::DataOptions {
        let mut o = burnlab_data::DataOptions::cifar(seed);
        o.folder.side = self.image_size as u32;
        o.folder.resize = self.resize() as u32;
        o.folder.skip_bad_images = self.skip_bad_images;
        o.train_own_sizes = self.random_resized_crop;
        o.folder.cache_bytes = Some((self.cache_mib as u64) << 20);
        o
    }

    /// `data.resize`, or its default.
    pub fn resize(&self) -> usize {
        match (self.resize, self.random_resized_crop) {
            (Some(r), _) => r,
            (None, true) => (self.image_size as f64 * 256.0 / 224.0).floor() as usize,
            (None, false) => self.image_size,
        }
    }

    /// The training augmentation.
    pub fn augment(&self) -> burnlab_data::Augment {
        burnlab_data::Augment {
            crop_padding: self.crop_padding,
            hflip: self.hflip,
            cutout: self.cutout,
            random_resized: self.random_resized_crop,
            color_jitter: self.color_jitter as f32,
        }
    }

    /// The normalisation of a run whose training images are `train`.
    pub fn normalization(
        &self,
        train: &burnlab_data::ImageSet,
    ) -> Result<burnlab_data::Normalization> {
        Ok(match &self.normalize {
            Normalize::Named(NamedNormalize::Dataset) => train.channel_stats()?,
            Normalize::Named(NamedNormalize::Imagenet) => burnlab_data::Normalization {
                mean: vec![0.485, 0.456, 0.406],
                std: vec![0.229, 0.224, 0.225],
            },
            Normalize::Given { mean, std } => {
                burnlab_data::Normalization { mean: mean.clone(), std: std.clone() }
            }
        })
    }

    /// (folds, fold) of a cross-validation fold run.
    pub fn cv(&self) -> Option<(usize, usize)> {
        (self.cv_folds > 0).then_some((self.cv_folds, self.cv_fold))
    }

    pub fn validate(&self) -> Result<()> {
        match (self.cv_folds, self.cv_fold) {
            (0, 0) => {}
            (0, f) => bail!("data.cv_fold = {f} needs data.cv_folds (the number of folds)"),
            (1, _) => bail!("data.cv_folds must be at least 2, got 1"),
            (k, f) if !(1..=k).contains(&f) => {
                bail!("data.cv_fold must be 1 to data.cv_folds ({k}), got {f}")
            }
            _ => {}
        }
        if !(1..=1024).contains(&self.image_size) {
            bail!("data.image_size must be 1 to 1024 pixels, got {}", self.image_size);
        }
        if self.resize() < self.image_size {
            bail!(
                "data.resize ({}) must be at least data.image_size ({}): the crop is taken from the resized image",
                self.resize(),
                self.image_size
            );
        }
        if !(self.color_jitter.is_finite() && self.color_jitter >= 0.0) {
            bail!("data.color_jitter must be 0 (off) or more, got {}", self.color_jitter);
        }
        if self.resize() > 4096 {
            bail!("data.resize must be at most 4096 pixels, got {}", self.resize());
        }
        if let Normalize::Given { mean, std } = &self.normalize
            && (mean.len() != 3
                || std.len() != 3
                || std.iter().any(|s| !(s.is_finite() && *s > 0.0)))
        {
            bail!(
                "data.normalize needs 3 means and 3 positive stds (RGB), got mean {mean:?}, std {std:?}"
            );
        }
        Ok(())
    }
}

/// `data.normalize`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Normalize {
    Named(NamedNormalize),
    Given { mean: Vec<f32>, std: Vec<f32> },
}

impl Default for Normalize {
    fn default() -> Self {
        Normalize::Named(NamedNormalize::Dataset)
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum NamedNormalize {
    Dataset,
    Imagenet,
}

/// `data.valid_size`: a number of images, or a fraction of the training images.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ValidSize {
    Count(usize),
    Fraction(f64),
}

impl ValidSize {
    /// The number of images it holds out of `n`.
    pub fn of(self, n: usize) -> usize {
        match self {
            ValidSize::Count(c) => c,
            ValidSize::Fraction(f) => (n as f64 * f).round() as usize,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Print a plain progress line every N steps when not on a terminal (0: per epoch only).
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Checkpoints kept: the last N epochs' (a resume needs one; older ones are removed).
    #[serde(default = "default_keep_checkpoints")]
    pub keep_checkpoints: usize,
    /// Minutes between checkpoints inside an epoch (0: at epoch ends only).
    #[serde(default = "default_checkpoint_minutes")]
    pub checkpoint_minutes: f64,
    /// What does not train: "none", or "backbone" (the head only: torchvision's "ConvNet as
    /// fixed feature extractor"; the rest runs without autodiff, BatchNorm in eval mode).
    #[serde(default)]
    pub freeze: Freeze,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Freeze {
    #[default]
    None,
    Backbone,
}

/// Ten: a killed run loses at most ten minutes of training.
pub fn default_checkpoint_minutes() -> f64 {
    10.0
}

/// `train.checkpoint_minutes` must be a number of minutes, 0 or more.
pub fn check_checkpoint_minutes(m: f64) -> Result<()> {
    if !(m.is_finite() && m >= 0.0) {
        bail!("train.checkpoint_minutes must be 0 (epoch ends only) or more, got {m}");
    }
    Ok(())
}

/// Two: the newest, and the one before it in case the newest is torn by a crash.
pub fn default_keep_checkpoints() -> usize {
    2
}

fn default_depth() -> usize {
    20
}

fn default_log_every() -> usize {
    100
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    Sgd,
    Adagrad,
    Adam,
    Adamw,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    pub name: OptimKind,
    pub lr: f64,
    /// SGD momentum (0 disables it).
    #[serde(default)]
    pub momentum: f64,
    #[serde(default)]
    pub nesterov: bool,
    /// L2 penalty λ (coupled weight decay; decoupled for AdamW).
    #[serde(default)]
    pub weight_decay: f64,
    /// Image models: the learning rate of everything but the head, as a multiple of `lr`
    /// (fine-tuning often uses 0.1: the pretrained layers move less than the new head).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub backbone_lr_scale: f64,
}

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    #[default]
    Constant,
    Cosine,
    Onecycle,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default)]
    pub name: ScheduleKind,
    /// Linear warm-up length in epochs (fractions allowed). One-cycle with 0 uses 30%.
    #[serde(default)]
    pub warmup_epochs: f64,
}

/// Command-line overrides in the order they apply: each flag that was given, as its config key
/// (`--epochs 3` is `train.epochs=3`), then the `--set KEY=VALUE`s, so that a `--set` beats a
/// flag for the same key. One table per task: `[("train.epochs", flag(args.epochs)), …]`.
pub fn overrides(
    flags: &[(&str, Option<String>)],
    sets: &[(String, String)],
) -> Vec<(String, String)> {
    let given = flags.iter().filter_map(|(k, v)| Some((k.to_string(), v.clone()?)));
    given.chain(sets.iter().cloned()).collect()
}

/// A flag's value as TOML text, if given.
pub fn flag(v: Option<impl ToString>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// A float flag as TOML text: `1e12` must stay a float (`1000000000000.0`), not become an
/// integer the config's float field would refuse.
pub fn float_flag(v: Option<f64>) -> Option<String> {
    v.map(|v| format!("{v:?}"))
}

/// Set `key` (dotted path, e.g. `optim.lr`) to `value` in a TOML table. The value is read as
/// TOML (`0.1`, `true`, `[512, 256]`, `"relu"`); a bare word is taken as a string.
pub fn set_path(table: &mut toml::Table, key: &str, value: &str) -> Result<()> {
    let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut t) => t.remove("v").context("parsing override")?,
        Err(_) => toml::Value::String(value.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        cur = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("`{key}`: `{p}` is not a section"))?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), parsed);
    Ok(())
}

/// The shipped configs, built in so that the defaults work from any folder (an installed
/// binary, a test's temporary directory); a file on disk at the same path takes precedence.
const SHIPPED: &[(&str, &str)] = &[
    ("configs/mlp-cifar10.toml", include_str!("../../../configs/mlp-cifar10.toml")),
    ("configs/softmax-cifar10.toml", include_str!("../../../configs/softmax-cifar10.toml")),
    ("configs/lenet5-cifar10.toml", include_str!("../../../configs/lenet5-cifar10.toml")),
    ("configs/resnet20-cifar10.toml", include_str!("../../../configs/resnet20-cifar10.toml")),
    ("configs/resnet9-cifar10.toml", include_str!("../../../configs/resnet9-cifar10.toml")),
    ("configs/resnet18-folder.toml", include_str!("../../../configs/resnet18-folder.toml")),
    ("configs/word2vec-text8.toml", include_str!("../../../configs/word2vec-text8.toml")),
    ("configs/charlm-shakespeare.toml", include_str!("../../../configs/charlm-shakespeare.toml")),
];

fn read_config(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SHIPPED
            .iter()
            .find(|(p, _)| Path::new(p) == path)
            .map(|(_, text)| text.to_string())
            .ok_or(e)
            .with_context(|| format!("reading config {}", path.display())),
        other => other.with_context(|| format!("reading config {}", path.display())),
    }
}

/// Read a config file (or a shipped one) and apply `key=value` overrides; any experiment type.
pub fn load_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    overrides: &[(String, String)],
) -> Result<T> {
    let text = read_config(path)?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: invalid TOML", path.display()))?;
    for (k, v) in overrides {
        set_path(&mut table, k, v)?;
    }
    table.try_into().map_err(|e: toml::de::Error| {
        anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim())
    })
}

/// Read an image experiment, apply `key=value` overrides, and validate.
pub fn load_image(path: &Path, overrides: &[(String, String)]) -> Result<ImageExperiment> {
    let exp: ImageExperiment = load_toml(path, overrides)?;
    exp.validate().with_context(|| format!("{}: invalid config", path.display()))?;
    Ok(exp)
}

impl ImageExperiment {
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            bail!("name must be a non-empty folder name, got {:?}", self.name);
        }
        if self.train.keep_checkpoints == 0 {
            bail!("train.keep_checkpoints must be at least 1: a resume needs a checkpoint");
        }
        check_checkpoint_minutes(self.train.checkpoint_minutes)?;
        let scale = self.optim.backbone_lr_scale;
        if !(scale.is_finite() && scale > 0.0) {
            bail!(
                "optim.backbone_lr_scale must be above 0, got {scale} (train.freeze = \"backbone\" \
                 keeps the backbone fixed)"
            );
        }
        if self.train.epochs == 0 {
            bail!("train.epochs must be at least 1");
        }
        self.data.validate()?;
        let size = self.data.image_size;
        match self.model.arch {
            Arch::Lenet5 if size != 32 => {
                bail!(
                    "lenet5 takes 32x32 images (its layers are sized for them): data.image_size must be 32, got {size}"
                )
            }
            Arch::Resnet | Arch::Resnet9 if size < 8 => {
                bail!("data.image_size must be at least 8 for this ResNet, got {size}")
            }
            Arch::ImagenetResnet if size < 32 => {
                bail!(
                    "data.image_size must be at least 32 for resnet18/34 (it downsamples 32 times), got {size}"
                )
            }
            _ => {}
        }
        if let ValidSize::Fraction(f) = self.data.valid_size
            && !(f > 0.0 && f < 1.0)
        {
            bail!("data.valid_size must be a count of images or a fraction in (0, 1), got {f}");
        }
        if self.train.batch_size == 0 {
            bail!("train.batch_size must be at least 1, got 0");
        }
        let o = &self.optim;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            bail!("optim.lr must be a positive number, got {}", o.lr);
        }
        if !(0.0..1.0).contains(&o.momentum) {
            bail!("optim.momentum must be in [0, 1), got {}", o.momentum);
        }
        if o.nesterov && (o.momentum == 0.0 || o.name != OptimKind::Sgd) {
            bail!("optim.nesterov needs optim.name = \"sgd\" and a momentum above 0");
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            bail!("optim.weight_decay must be >= 0, got {}", o.weight_decay);
        }
        if !(0.0..1.0).contains(&self.model.dropout) {
            bail!("model.dropout must be in [0, 1), got {}", self.model.dropout);
        }
        if self.model.arch != Arch::Mlp
            && (!self.model.hidden.is_empty() || self.model.dropout > 0.0)
        {
            bail!("model.hidden and model.dropout apply to arch = \"mlp\" only");
        }
        if self.model.arch == Arch::Resnet
            && (self.model.depth < 8 || !(self.model.depth - 2).is_multiple_of(6))
        {
            bail!("model.depth must be 6n + 2 (20, 32, 44, 56, 110), got {}", self.model.depth);
        }
        if self.model.arch == Arch::ImagenetResnet && ![18, 34].contains(&self.model.depth) {
            bail!(
                "model.depth must be 18 or 34 for arch = \"imagenet-resnet\", got {}",
                self.model.depth
            );
        }
        if self.model.hidden.contains(&0) {
            bail!("model.hidden layer widths must be at least 1, got {:?}", self.model.hidden);
        }
        let w = self.schedule.warmup_epochs;
        if !(w.is_finite() && w >= 0.0 && w < self.train.epochs as f64) {
            bail!("schedule.warmup_epochs must be in [0, epochs), got {w}");
        }
        let ls = self.model.label_smoothing;
        if !(0.0..1.0).contains(&ls) {
            bail!("model.label_smoothing must be in [0, 1), got {ls}");
        }
        if ls > 0.0 && self.model.loss != LossKind::Ce {
            bail!("model.label_smoothing applies to loss = \"ce\" only");
        }
        if self.data.cutout > 32 {
            bail!("data.cutout must be at most 32, got {}", self.data.cutout);
        }
        if self.data.crop_padding > 16 {
            bail!("data.crop_padding must be at most 16, got {}", self.data.crop_padding);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
name = "t"
[model]
hidden = [8]
[train]
epochs = 2
batch_size = 4
[optim]
name = "sgd"
lr = 0.1
momentum = 0.9
nesterov = true
"#;

    fn load(overrides: &[(&str, &str)]) -> Result<ImageExperiment> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("c.toml");
        std::fs::write(&p, BASE)?;
        let o: Vec<(String, String)> =
            overrides.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        load_image(&p, &o)
    }

    fn err(overrides: &[(&str, &str)]) -> String {
        format!("{:#}", load(overrides).expect_err("should fail"))
    }

    #[test]
    fn parses_with_defaults_and_overrides() {
        let e =
            load(&[("optim.lr", "0.5"), ("model.hidden", "[3, 2]"), ("model.activation", "tanh")])
                .expect("ok");
        assert_eq!(e.optim.lr, 0.5);
        assert_eq!(e.model.hidden, vec![3, 2]);
        assert_eq!(e.model.activation, Activation::Tanh);
        assert_eq!(e.data, DataConfig::default());
        assert_eq!(e.schedule.name, ScheduleKind::Constant);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        assert!(err(&[("train.batch_size", "0")]).contains("batch_size must be at least 1"));
        assert!(err(&[("optim.lr", "-0.1")]).contains("optim.lr must be a positive number"));
        assert!(err(&[("model.dropout", "1.0")]).contains("dropout"));
        assert!(err(&[("model.activation", "gelu")]).contains("unknown variant `gelu`"));
        assert!(err(&[("optim.learning_rate", "0.1")]).contains("unknown field `learning_rate`"));
        let e = err(&[("train.batch_size", "-3")]);
        assert!(e.contains("batch_size"), "{e}");
        assert!(err(&[("schedule.warmup_epochs", "5")]).contains("warmup_epochs"));
        assert!(err(&[("model.arch", "lenet5")]).contains("apply to arch = \"mlp\" only"));
        assert!(err(&[("model.arch", "vgg")]).contains("unknown variant `vgg`"));
        let e = err(&[("model.arch", "resnet"), ("model.hidden", "[]"), ("model.depth", "21")]);
        assert!(e.contains("model.depth must be 6n + 2"), "{e}");
        assert!(
            err(&[("model.label_smoothing", "1.5")]).contains("label_smoothing must be in [0, 1)")
        );
        assert!(
            err(&[("model.label_smoothing", "0.1"), ("model.loss", "hinge")]).contains("ce\" only")
        );
        assert!(err(&[("data.cutout", "40")]).contains("data.cutout"));
    }

    /// Flags become their keys in a fixed order, absent ones are skipped, and `--set`s come
    /// last (so they win); floats stay floats.
    #[test]
    fn flags_and_sets_become_overrides_in_order() {
        let sets = vec![("optim.lr".to_string(), "0.5".to_string())];
        let o = overrides(
            &[
                ("train.epochs", flag(Some(3))),
                ("train.batch_size", flag(None::<usize>)),
                ("optim.lr", float_flag(Some(1e12))),
                ("model.cell", flag(Some("gru"))),
            ],
            &sets,
        );
        let o: Vec<(&str, &str)> = o.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            o,
            [
                ("train.epochs", "3"),
                ("optim.lr", "1000000000000.0"),
                ("model.cell", "gru"),
                ("optim.lr", "0.5")
            ]
        );
    }

    #[test]
    fn shipped_configs_load_from_any_folder_and_missing_files_are_errors() {
        // Tests run in crates/train, where no configs/ folder exists.
        assert!(!Path::new("configs/resnet9-cifar10.toml").exists());
        let e = load_image(Path::new("configs/resnet9-cifar10.toml"), &[]).expect("built in");
        assert_eq!(e.model.arch, Arch::Resnet9);
        let err =
            format!("{:#}", load_image(Path::new("configs/nope.toml"), &[]).expect_err("missing"));
        assert!(
            err.contains("reading config configs/nope.toml") && err.contains("No such file"),
            "{err}"
        );
    }
}
