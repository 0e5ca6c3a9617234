use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend::Backend;

/// Every model name `summary`, `profile` and `train cnn --model` take (CNNs from index 2).
const MODELS: [&str; 11] = [
    "mlp",
    "softmax",
    "lenet5",
    "resnet9",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet18",
    "resnet34",
];

/// burnlab: train the classic deep-learning models on real data, on CPU or GPU.
#[derive(Parser, Debug)]
#[command(name = "burnlab", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model.
    #[command(subcommand)]
    Train(TrainTask),
    /// Test accuracy and per-class accuracy of a trained run.
    Eval(EvalArgs),
    /// Classify image files with a trained run.
    Predict(PredictArgs),
    /// Generate text with a trained character model.
    Sample(SampleArgs),
    /// Nearest words by cosine similarity (a word2vec run folder or a vectors file).
    Similar(SimilarArgs),
    /// Analogy by 3CosAdd: `analogy RUN king man woman` asks king − man + woman.
    Analogy(AnalogyArgs),
    /// Word-vector benchmarks: analogy accuracy per section, similarity Spearman ρ.
    EvalWords(EvalWordsArgs),
    /// Layer table of a model: output shape, parameters and receptive field per layer.
    Summary(SummaryArgs),
    /// Time the phases of a training step (data, forward, backward, optimiser) and inference.
    Profile(ProfileArgs),
    /// Pictures of one or several runs (curves, LR schedule, confusion matrix, worst mistakes,
    /// word map) and an index.html linking them.
    Report(ReportArgs),
    /// List the runs of a folder: task, model, backend, epochs, best valid, test, time, status.
    Runs(RunsArgs),
    /// Write a trained run's weights for other tools: safetensors with PyTorch's names.
    Export(ExportArgs),
    /// Stratified N-fold cross-validation of a training setup over the training split:
    /// `burnlab cv --folds 5 mlp --epochs 10` (the test split is not touched; `--final` then
    /// trains on the whole training split and reports test).
    Cv(CvArgs),
    /// Train every point of a grid of config values and rank them by validation score:
    /// `burnlab sweep mlp --grid model.hidden=[],[128] --grid optim.weight_decay=0,1e-3`.
    Sweep(SweepArgs),
    /// The 2-D classification demo: decision regions of a small net on spiral, moons, circles,
    /// xor or blobs as it trains, the loss curve, and `--compare hidden=1,2,4,16` panels.
    Playground(PlaygroundArgs),
    /// List what each backend can see.
    Devices,
}

/// Tasks `cv` and `sweep` run (the `train` subcommands).
const TASKS: [&str; 4] = ["mlp", "cnn", "word2vec", "rnn"];

#[derive(Args, Debug)]
pub struct CvArgs {
    /// The `burnlab train` task: mlp or cnn (word2vec and rnn: see `burnlab sweep`).
    #[arg(value_parser = TASKS)]
    pub task: String,
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Folds trained at once (the CPU threads are split between them).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Parent folder of the fold runs (default runs/<name>-cv<N>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Then train on the whole training split with these settings and report the test score.
    #[arg(long)]
    pub r#final: bool,
    /// `burnlab train <task>` flags: --epochs 10 --set model.hidden=[128] …
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "TRAIN ARGS")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The `burnlab train` task: mlp, cnn, word2vec or rnn.
    #[arg(value_parser = TASKS)]
    pub task: String,
    /// A config key and its values: model.hidden=[],[16],[128] (repeat for a grid).
    #[arg(long, value_name = "KEY=V1,V2,…")]
    pub grid: Vec<String>,
    /// Cross-validate every point over this many folds (image tasks).
    #[arg(long)]
    pub folds: Option<usize>,
    /// Points trained at once (the CPU threads are split between them).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Parent folder of the point runs (default runs/<name>-sweep).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// word2vec: rank by accuracy on these analogy questions (questions-words.txt format).
    #[arg(long, env = "BURNLAB_ANALOGIES")]
    pub analogies: Option<PathBuf>,
    /// word2vec: rank by Spearman ρ on these word pairs (WordSim-353 TSV) when no --analogies.
    #[arg(long, env = "BURNLAB_SIMILARITY")]
    pub similarity: Option<PathBuf>,
    /// `burnlab train <task>` flags: --epochs 10 --data DIR …
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "TRAIN ARGS")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct PlaygroundArgs {
    /// spiral, moons, circles, xor, blobs, or a CSV file of x,y,label rows.
    #[arg(long, default_value = "spiral")]
    pub data: String,
    /// Points generated (split evenly between the classes).
    #[arg(long, default_value_t = 500)]
    pub points: usize,
    /// Gaussian noise on each coordinate (standard deviation).
    #[arg(long, default_value_t = 0.1)]
    pub noise: f64,
    /// Classes of spiral and blobs (default 3; the others have 2).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Fraction of the points held out for validation (stratified).
    #[arg(long, default_value_t = 0.2)]
    pub valid: f64,
    #[arg(long, value_enum, default_value_t = crate::tasks::playground::ModelKind::Mlp)]
    pub model: crate::tasks::playground::ModelKind,
    /// Hidden layer widths of the MLP: 8,8 (empty or 0: none, softmax regression).
    #[arg(long, default_value = "8,8")]
    pub hidden: String,
    #[arg(long, value_enum, default_value_t = crate::tasks::playground::net::Activation::Tanh)]
    pub activation: crate::tasks::playground::net::Activation,
    /// L2 penalty λ: the loss adds (λ/2)·‖W‖².
    #[arg(long, default_value_t = 0.0)]
    pub l2: f64,
    /// Dropout probability of hidden units.
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Inputs, as TensorFlow Playground offers them: x,y,x2,y2,xy,sinx,siny.
    #[arg(long, default_value = "x,y")]
    pub features: String,
    /// Full-batch epochs.
    #[arg(long, default_value_t = 1000)]
    pub epochs: usize,
    /// Learning rate (Adam; with --sgd, gradient descent with momentum 0.9).
    #[arg(long, default_value_t = 0.03)]
    pub lr: f64,
    /// Plain gradient descent with momentum instead of Adam.
    #[arg(long)]
    pub sgd: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A picture every this many epochs (default: a tenth of them).
    #[arg(long)]
    pub snapshot_every: Option<usize>,
    /// One panel per value on one picture: hidden=1,2,4,16 | l2=0,1e-3,1e-2 | activation=… |
    /// dropout=… | lr=… | model=… | features=x+y,x+y+x2+y2 (layers of a hidden value: 8x8).
    #[arg(long, value_name = "KEY=V1,V2,…")]
    pub compare: Option<String>,
    /// Picture side in pixels.
    #[arg(long, default_value_t = 360)]
    pub size: u32,
    /// Output folder (default runs/playground-<data>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    pub run_dir: PathBuf,
    #[arg(long, value_enum, default_value_t = ExportFormat::Safetensors)]
    pub format: ExportFormat,
    /// Output file (default: RUN/model.safetensors).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Safetensors,
    Onnx,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run folders (several: their curves are overlaid).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Output folder (default: RUN/report for one run, report-A-vs-B beside them for several).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Words in a word2vec run's PCA map (the most frequent).
    #[arg(long, default_value_t = 100)]
    pub words: usize,
    /// Most confidently wrong test images shown for an image run.
    #[arg(long, default_value_t = 32)]
    pub mistakes: usize,
    /// Test data for image runs (default: the data the run was trained on).
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, env = "BURNLAB_BACKEND", value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    /// A folder of runs (or one run folder).
    #[arg(default_value = "runs")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct ProfileArgs {
    #[arg(value_parser = MODELS)]
    pub model: String,
    #[arg(long, env = "BURNLAB_BACKEND", value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Input image side (default: the model config's data.image_size).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Timed steps (after 2 warm-up steps); medians are printed.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Override a config field of the model's config.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub sets: Vec<(String, String)>,
}

#[derive(Args, Debug)]
pub struct SimilarArgs {
    /// A word2vec run folder or a vectors file (word2vec text or binary, e.g. from gensim).
    pub target: PathBuf,
    pub word: String,
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
}

#[derive(Args, Debug)]
pub struct AnalogyArgs {
    pub target: PathBuf,
    /// b − a + c for `analogy RUN b a c`: king man woman → queen.
    pub b: String,
    pub a: String,
    pub c: String,
    #[arg(short, long, default_value_t = 5)]
    pub k: usize,
}

#[derive(Args, Debug)]
pub struct EvalWordsArgs {
    pub target: PathBuf,
    /// Analogy questions (questions-words.txt format).
    #[arg(long)]
    pub analogies: Option<PathBuf>,
    /// Word pairs with human scores (WordSim-353 TSV).
    #[arg(long)]
    pub similarity: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    #[arg(value_parser = MODELS)]
    pub model: String,
    /// Experiment config to read the model from (default: the model's own).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override a config field: --set model.hidden=[1024]
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub sets: Vec<(String, String)>,
    /// Input image side (square).
    #[arg(long, visible_alias = "image-size", default_value_t = 32)]
    pub size: usize,
    #[arg(long, default_value_t = 3)]
    pub channels: usize,
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
}

#[derive(Subcommand, Debug)]
pub enum TrainTask {
    /// Multi-layer perceptron (or linear softmax/SVM classifier) on CIFAR-10.
    Mlp(TrainArgs),
    /// Convolutional network on CIFAR-10.
    Cnn(CnnArgs),
    /// word2vec (skip-gram or CBOW with negative sampling) on a text corpus.
    Word2vec(W2vArgs),
    /// Character language model (vanilla RNN, LSTM or GRU) on a text.
    Rnn(RnnArgs),
}

#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct RnnArgs {
    #[command(flatten)]
    pub run: RunFlags,
    /// A UTF-8 text file (default: the config's data.source; Tiny Shakespeare is downloaded
    /// into --cache).
    #[arg(long, env = "BURNLAB_TEXT")]
    pub corpus: Option<PathBuf>,
    /// Download cache.
    #[arg(long, env = "BURNLAB_CACHE", default_value = "datasets")]
    pub cache: PathBuf,
    /// rnn (vanilla tanh), lstm or gru.
    #[arg(long, value_parser = ["rnn", "lstm", "gru"])]
    pub cell: Option<String>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Training steps per epoch.
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub seq_len: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct SampleArgs {
    pub run_dir: PathBuf,
    /// Text to start from (characters the model never saw are read as its unknown token).
    #[arg(long, default_value = "\n")]
    pub prime: String,
    /// Characters to generate.
    #[arg(long, default_value_t = 500)]
    pub length: usize,
    /// Below 1 sharper and more repetitive, above 1 more random.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, env = "BURNLAB_BACKEND", value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct W2vArgs {
    #[command(flatten)]
    pub run: RunFlags,
    /// A text file, or a folder of text files (default: the config's corpus.source; text8 is
    /// downloaded into --cache).
    #[arg(long, env = "BURNLAB_CORPUS")]
    pub corpus: Option<PathBuf>,
    /// Download cache.
    #[arg(long, env = "BURNLAB_CACHE", default_value = "datasets")]
    pub cache: PathBuf,
    /// skipgram or cbow.
    #[arg(long, value_parser = ["skipgram", "cbow"])]
    pub arch: Option<String>,
    #[arg(long)]
    pub dim: Option<usize>,
    #[arg(long)]
    pub window: Option<usize>,
    #[arg(long)]
    pub negative: Option<usize>,
    #[arg(long)]
    pub min_count: Option<u64>,
    /// CPU worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct CnnArgs {
    /// Network (overrides model.arch, and model.depth for ResNets).
    #[arg(long, value_parser = MODELS[2..].to_vec())]
    pub model: Option<String>,
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Local dataset: an image folder (train/<class>/*, test/<class>/*) or a CIFAR-10 binary
    /// folder. Without it, CIFAR-10 is downloaded into the cache.
    #[arg(long, env = "BURNLAB_DATA")]
    pub data: Option<PathBuf>,
    /// Download cache.
    #[arg(long, env = "BURNLAB_CACHE", default_value = "datasets")]
    pub cache: PathBuf,
}

#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub data: DataArgs,
    /// Override optim.lr.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Override train.batch_size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Override data.image_size (the side of the square images the model sees).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Start from these weights: a PyTorch checkpoint (.pth/.pt, e.g. torchvision's
    /// resnet18-f37072fd.pth), a .safetensors file with PyTorch's names, or a run folder. A head
    /// for another class count starts fresh.
    #[arg(long, value_name = "FILE|RUN", conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// With --init-from: start the network's tensors the source lacks from scratch (listed)
    /// rather than refusing.
    #[arg(long, requires = "init_from")]
    pub init_partial: bool,
}

/// The flags every `train` takes.
#[derive(Args, Debug, Clone)]
pub struct RunFlags {
    /// Experiment config (TOML); default: the task's own in configs/.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    #[arg(long, env = "BURNLAB_BACKEND", value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Override train.epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run folder (default: runs/<name>, numbered if taken).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue the run in --run-dir from its last checkpoint (its config, and for word2vec its
    /// vocabulary and corpus).
    #[arg(long, requires = "run_dir")]
    pub resume: bool,
    /// Override any config field: --set model.hidden=[1024] --set optim.name=adam
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub sets: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))?;
    if k.is_empty() {
        return Err(format!("empty key in `{s}`"));
    }
    Ok((k.trim().to_string(), v.trim().to_string()))
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, env = "BURNLAB_BACKEND", value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Images per batch [default: 256 of 32×32, as many pixels of larger ones, at least 32]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Flip test-time augmentation: average the logits of each image and its mirror image.
    #[arg(long)]
    pub tta: bool,
    /// Time this many extra passes over the test set (data preparation, forward, argmax; as
    /// the PyTorch peer's inference benchmark) and report their median images/s.
    #[arg(long, default_value_t = 0)]
    pub timed_passes: usize,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    pub run_dir: PathBuf,
    /// Image files (any size; resized to the training size).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    pub top_k: usize,
    #[arg(long, env = "BURNLAB_BACKEND", value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// clap's own consistency checks (duplicate flags across flattened structs, bad defaults),
    /// which a release build does not run by itself.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The shared flags land in `run` for every task, beside the task's own.
    #[test]
    fn every_train_task_takes_the_shared_flags() {
        let common =
            ["--epochs", "3", "--seed", "7", "--run-dir", "r", "--resume", "--set", "a.b=1"];
        for task in ["mlp", "rnn", "word2vec"] {
            let cli = Cli::try_parse_from(["burnlab", "train", task].into_iter().chain(common))
                .unwrap_or_else(|e| panic!("{task}: {e}"));
            let run = match cli.command {
                Command::Train(TrainTask::Mlp(a)) => a.run,
                Command::Train(TrainTask::Rnn(a)) => a.run,
                Command::Train(TrainTask::Word2vec(a)) => a.run,
                other => panic!("{other:?}"),
            };
            assert_eq!((run.epochs, run.seed, run.resume), (Some(3), Some(7), true), "{task}");
            assert_eq!(run.sets, [("a.b".to_string(), "1".to_string())], "{task}");
        }
        let cli =
            Cli::try_parse_from(["burnlab", "train", "cnn", "--model", "lenet5", "--epochs", "2"])
                .expect("cnn");
        let Command::Train(TrainTask::Cnn(a)) = cli.command else { panic!("cnn") };
        assert_eq!((a.model.as_deref(), a.train.run.epochs), (Some("lenet5"), Some(2)));
    }
}
