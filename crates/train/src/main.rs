//! The `burnlab` command line.

mod backend;
mod classifier;
mod cli;
mod config;
mod evaluate;
mod metrics;
mod optim;
mod renderer;
mod run;
mod sgd;
mod train_image;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, TrainTask};

fn main() -> std::process::ExitCode {
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
    let result = match cli.command {
        Command::Train(TrainTask::Mlp(args)) => train_image::train_image(args, train_image::DEFAULT_MLP_CONFIG, "mlp"),
        Command::Train(TrainTask::Cnn(mut args)) => {
            // The default config follows the model: LeNet-5's recipe, or the ResNet one.
            let mut default_config = train_image::DEFAULT_CNN_CONFIG;
            if let Some(m) = args.model.take() {
                match m.strip_prefix("resnet") {
                    Some("9") => {
                        default_config = train_image::DEFAULT_RESNET9_CONFIG;
                        args.train.sets.insert(0, ("model.arch".into(), "resnet9".into()));
                    }
                    Some(depth) => {
                        args.train.sets.insert(0, ("model.depth".into(), depth.to_string()));
                        args.train.sets.insert(0, ("model.arch".into(), "resnet".into()));
                    }
                    None => {
                        default_config = train_image::DEFAULT_LENET5_CONFIG;
                        args.train.sets.insert(0, ("model.arch".into(), m));
                    }
                }
            }
            train_image::train_image(args.train, default_config, "cnn")
        }
        Command::Eval(args) => evaluate::eval_command(args),
        Command::Predict(args) => evaluate::predict_command(args),
        Command::Devices => {
            backend::print_devices();
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
