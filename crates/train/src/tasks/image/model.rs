//! The image models: which config each `--model` starts from, building one from an experiment,
//! describing it, and loading a trained run's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use burnlab_models::{CifarResNetConfig, LeNet5Config, MlpConfig, ResNet9Config, ResNetConfig};

use crate::config::{self, Arch, ImageExperiment};
use crate::run;
use crate::run::record::RunRecord;
use crate::tasks::image::classifier::{ImageClassifier, ImageNet};

pub const DEFAULT_MLP_CONFIG: &str = "configs/mlp-cifar10.toml";
pub const DEFAULT_CNN_CONFIG: &str = "configs/resnet20-cifar10.toml";
pub const DEFAULT_LENET5_CONFIG: &str = "configs/lenet5-cifar10.toml";
pub const DEFAULT_RESNET9_CONFIG: &str = "configs/resnet9-cifar10.toml";
pub const DEFAULT_FOLDER_CONFIG: &str = "configs/resnet18-folder.toml";

/// The default config of a `--model` name and the overrides that select it in any config.
pub fn model_choice(model: &str) -> (&'static str, Vec<(String, String)>) {
    let set = |k: &str, v: &str| (k.to_string(), v.to_string());
    match model {
        "mlp" => (DEFAULT_MLP_CONFIG, vec![set("model.arch", "mlp")]),
        "softmax" => (
            "configs/softmax-cifar10.toml",
            vec![set("model.arch", "mlp"), set("model.hidden", "[]")],
        ),
        "lenet5" => (DEFAULT_LENET5_CONFIG, vec![set("model.arch", "lenet5")]),
        "resnet9" => (DEFAULT_RESNET9_CONFIG, vec![set("model.arch", "resnet9")]),
        "resnet18" | "resnet34" => (
            DEFAULT_FOLDER_CONFIG,
            vec![set("model.arch", "imagenet-resnet"), set("model.depth", &model[6..])],
        ),
        other => {
            let depth = other.strip_prefix("resnet").unwrap_or("20");
            (DEFAULT_CNN_CONFIG, vec![set("model.arch", "resnet"), set("model.depth", depth)])
        }
    }
}

/// `burnlab summary MODEL`: the layer table of a model as its config builds it.
pub fn summary_command(args: crate::cli::SummaryArgs) -> Result<()> {
    let (default_config, mut sets) = model_choice(&args.model);
    if args.config.is_some() {
        sets.clear(); // the config names its own model
    }
    sets.extend(args.sets.iter().cloned());
    let path = args.config.clone().unwrap_or_else(|| PathBuf::from(default_config));
    let exp = config::load_image(&path, &sets)?;
    let image = [args.channels, args.size, args.size];
    let device = Device::flex();
    let model = build_model(&exp, args.classes, image, true, &device);
    let rows = match &model.net {
        ImageNet::Mlp(m) => m.summary(image),
        ImageNet::LeNet5(m) => m.summary(image),
        ImageNet::ResNet(m) => m.summary(image),
        ImageNet::ResNet9(m) => m.summary(image),
        ImageNet::ImagenetResNet(m) => m.summary(image),
    };
    println!("{} ({})", describe_model(&exp, args.classes, image), path.display());
    print!("{}", burnlab_models::format_table(&rows));
    Ok(())
}

pub fn build_model(
    exp: &ImageExperiment,
    classes: usize,
    image: [usize; 3],
    host: bool,
    device: &Device,
) -> ImageClassifier {
    let m = &exp.model;
    let net = match m.arch {
        Arch::Mlp => ImageNet::Mlp(
            MlpConfig::new()
                .with_d_input(image.iter().product())
                .with_num_classes(classes)
                .with_hidden(m.hidden.clone())
                .with_activation(m.activation)
                .with_dropout(m.dropout)
                .with_init(m.init)
                .with_host_dropout(host)
                .init(device),
        ),
        Arch::Lenet5 => ImageNet::LeNet5(
            LeNet5Config::new()
                .with_in_channels(image[0])
                .with_num_classes(classes)
                .with_activation(m.activation)
                .init(device),
        ),
        Arch::Resnet => ImageNet::ResNet(
            CifarResNetConfig::new()
                .with_depth(m.depth)
                .with_in_channels(image[0])
                .with_num_classes(classes)
                .with_shortcut(m.shortcut)
                .init(device),
        ),
        Arch::Resnet9 => ImageNet::ResNet9(
            ResNet9Config::new().with_in_channels(image[0]).with_num_classes(classes).init(device),
        ),
        Arch::ImagenetResnet => ImageNet::ImagenetResNet(
            ResNetConfig::new()
                .with_depth(m.depth)
                .with_in_channels(image[0])
                .with_num_classes(classes)
                .init(device),
        ),
    };
    ImageClassifier {
        net,
        loss: m.loss,
        label_smoothing: m.label_smoothing,
        frozen_backbone: exp.train.freeze == config::Freeze::Backbone,
    }
}

pub fn describe_model(exp: &ImageExperiment, classes: usize, image: [usize; 3]) -> String {
    match exp.model.arch {
        Arch::Mlp => {
            let mut dims = vec![image.iter().product::<usize>()];
            dims.extend(&exp.model.hidden);
            dims.push(classes);
            let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            format!("mlp {}", dims.join("-"))
        }
        Arch::Lenet5 => format!("lenet5 {}x{}x{} -> {classes}", image[0], image[1], image[2]),
        Arch::Resnet => {
            format!("resnet{} (shortcut {:?}) -> {classes}", exp.model.depth, exp.model.shortcut)
        }
        Arch::Resnet9 => format!("resnet9 -> {classes}"),
        Arch::ImagenetResnet => format!(
            "resnet{} (torchvision layout) {}x{}x{} -> {classes}",
            exp.model.depth, image[0], image[1], image[2]
        ),
    }
}

/// Rebuild a trained run's model (weights loaded) on `device`.
pub fn load_run_model(
    run_dir: &Path,
    meta: &RunRecord,
    device: &Device,
) -> Result<ImageClassifier> {
    let exp = config::load_image(&run_dir.join(run::CONFIG_FILE), &[])?;
    // Dropout is inactive outside training, so where masks are drawn does not matter here.
    let image = meta.image(run_dir)?;
    let model = build_model(&exp, image.classes.len(), image.image_size, true, device);
    let path = run::model_file(run_dir, meta.status)?;
    model.try_load_file(&path).with_context(|| format!("{}: cannot load the model", path.display()))
}
