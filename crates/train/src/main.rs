//! The `burnlab` command line (the application is the `burnlab` library beside it).
#![forbid(unsafe_code)]

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use burnlab::cli::{Cli, Command, TrainTask};
use burnlab::insight::{report, runs};
use burnlab::run::record::TaskRecord;
use burnlab::tasks::charlm;
use burnlab::tasks::image::{eval as evaluate, model, profile, train as train_image};
use burnlab::tasks::word2vec::{self, words};

fn main() -> std::process::ExitCode {
    // burnlab passes its device everywhere; Burn's own `Device::default()` (reached when an
    // optimiser or scheduler record loads on resume) would otherwise start the GPU backend,
    // seconds of Vulkan set-up and stray driver errors on a CPU run. First: before any thread.
    burnlab_kernels::process::default_env_var("BURN_DEVICE", "flex");
    burnlab_kernels::malloc::tune();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BURNLAB_LOG")
                .unwrap_or_else(|_| EnvFilter::new("warn,burnlab=info,burnlab_data=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let cli = Cli::parse();
    // Commands that only print end quietly when their reader goes (`burnlab runs | head`).
    let trains = matches!(cli.command, Command::Train(_) | Command::Cv(_) | Command::Sweep(_));
    if !trains {
        burnlab_kernels::process::default_sigpipe();
    }
    // Training stops gracefully on SIGINT/SIGTERM (the run is resumable); other commands keep
    // the default: a signal ends them at once.
    // (`cv` and `sweep` stop starting runs; their running children stop by themselves.)
    if trains && let Err(e) = burnlab::run::signals::install() {
        tracing::warn!("cannot handle SIGINT/SIGTERM gracefully: {e}");
    }
    // A bad BURNLAB_ISA is a clear error before any work, not a panic inside a kernel.
    if let Err(e) = burnlab_kernels::Cpu::init() {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Train(TrainTask::Word2vec(args)) => word2vec::train_command(args),
        Command::Train(TrainTask::Rnn(args)) => charlm::train_command(args),
        Command::Sample(args) => charlm::sample_command(args),
        Command::Train(TrainTask::Mlp(args)) => {
            train_image::train_image(args, model::DEFAULT_MLP_CONFIG, "mlp")
        }
        Command::Train(TrainTask::Cnn(args)) => {
            let (args, default_config) = train_image::cnn_args(args);
            train_image::train_image(args, default_config, "cnn")
        }
        Command::Similar(a) => words::similar_command(&a.target, &a.word, a.k),
        Command::Analogy(a) => words::analogy_command(&a.target, &a.a, &a.b, &a.c, a.k),
        Command::EvalWords(a) => {
            words::eval_words_command(&a.target, a.analogies.as_deref(), a.similarity.as_deref())
        }
        Command::Summary(args) => model::summary_command(args),
        Command::Profile(args) => profile::profile_command(args),
        Command::Eval(args) => match burnlab::run::record::read(&args.run_dir).map(|r| r.task) {
            Ok(TaskRecord::Word2vec(_)) => Err(anyhow::anyhow!(
                "{} is a word2vec run: score it with `burnlab eval-words {} --analogies FILE --similarity FILE`, or query it with `burnlab similar` and `burnlab analogy`",
                args.run_dir.display(),
                args.run_dir.display()
            )),
            Ok(TaskRecord::Charlm(_)) => charlm::eval_command(&args.run_dir, args.backend),
            _ => evaluate::eval_command(args),
        },
        Command::Predict(args) => evaluate::predict_command(args),
        Command::Report(args) => report::report_command(args),
        Command::Runs(args) => runs::runs_command(&args.dir),
        Command::Export(args) => burnlab::weights::export::export_command(args),
        Command::Cv(args) => burnlab::compare::cv::cv_command(args),
        Command::Sweep(args) => burnlab::compare::sweep::sweep_command(args),
        Command::Playground(args) => burnlab::tasks::playground::playground_command(args),
        Command::Devices => {
            burnlab::backend::print_devices();
            Ok(())
        }
    };
    match result {
        // Stopped by a signal: the run is recorded as interrupted; exit as the signal would.
        Ok(()) => burnlab::run::signals::exit_code()
            .map_or(std::process::ExitCode::SUCCESS, std::process::ExitCode::from),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
