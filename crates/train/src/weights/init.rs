//! `--init-from FILE|RUN`: start a network from another's weights. A weights file (PyTorch or
//! safetensors, PyTorch's names and layouts) or a burnlab image run folder. When the class
//! counts differ the head is left out and starts fresh (torchvision's fine-tuning recipe);
//! every tensor the network has and the source lacks is an error unless `partial`; tensors the
//! source has and the network does not are listed; a shape mismatch names the tensor and both
//! shapes.

use std::path::Path;

use anyhow::{Result, bail};
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ApplyError, ModuleAdapter, PyTorchToBurnAdapter};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::run::record::{self, TaskRecord};
use crate::tasks::image::classifier::ImageNet;
use crate::tasks::image::model::load_run_model;
use crate::weights::checkpoint;
use crate::weights::from_torch_name;

/// Where a run's starting weights came from, as `run.json` records it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InitRecord {
    /// The file or run folder given to `--init-from`.
    pub from: String,
    /// "pytorch", "safetensors" or "run".
    pub format: String,
    /// SHA-256 of the file (of the run's model file for a run).
    pub sha256: String,
    /// Tensors loaded.
    pub loaded: usize,
    /// Tensors that started fresh: the head when the class count differs, and with
    /// `--init-partial` the ones the source lacks.
    #[serde(default)]
    pub fresh: Vec<String>,
    /// Tensors of the source the network has no place for (BatchNorm's `num_batches_tracked`
    /// counters not listed: nothing in Burn holds them).
    #[serde(default)]
    pub unused: Vec<String>,
}

/// Loads `source` into `net` (whose head is sized for its own classes).
pub fn init_from(net: &mut ImageNet, source: &Path, partial: bool) -> Result<InitRecord> {
    let (tensors, adapter, format, sha256): (_, Option<Box<dyn ModuleAdapter>>, _, _) =
        if source.is_dir() {
            let (tensors, sha) = run_tensors(source)?;
            (tensors, None, "run".to_string(), sha)
        } else {
            let c = checkpoint::read(source)?;
            let tensors = c
                .tensors
                .into_iter()
                .map(|mut t| {
                    t.name = from_torch_name(&t.name);
                    t
                })
                .collect();
            (tensors, Some(Box::new(PyTorchToBurnAdapter)), c.format.name().to_string(), c.sha256)
        };
    let from = source.display().to_string();
    let mut record = load(net, tensors, adapter, partial, &from)?;
    record.format = format;
    record.sha256 = sha256;
    Ok(record)
}

/// The trained weights of an image run folder, by their paths in its network.
fn run_tensors(dir: &Path) -> Result<(Vec<PackTensor>, String)> {
    let meta = record::read(dir)?;
    if !matches!(meta.task, TaskRecord::Mlp(_) | TaskRecord::Cnn(_)) {
        bail!(
            "--init-from {}: a {} run has no image network to start from (only mlp and cnn runs do)",
            dir.display(),
            meta.task.name()
        );
    }
    let model = load_run_model(dir, &meta, &Device::flex())?;
    let file = crate::run::model_file(dir, meta.status)?;
    Ok((model.net.tensors(None), checkpoint::sha256_file(&file)?))
}

/// Applies `tensors` to `net`: the head left out when its class count differs, then the
/// checks this module's note lists.
fn load(
    net: &mut ImageNet,
    mut tensors: Vec<PackTensor>,
    adapter: Option<Box<dyn ModuleAdapter>>,
    partial: bool,
    from: &str,
) -> Result<InitRecord> {
    let head = net.head_name();
    let head_prefix = format!("{head}.");
    let bias = format!("{head}.bias");
    let ours = net.tensors(None).into_iter().find(|t| t.name == bias).map(|t| t.shape.to_vec());
    let theirs = tensors.iter().find(|t| t.name == bias).map(|t| t.shape.to_vec());
    let new_head = matches!((&ours, &theirs), (Some(a), Some(b)) if a != b);
    if new_head {
        tensors.retain(|t| !t.name.starts_with(&head_prefix));
    }
    let result = net.load_tensors(tensors, adapter);
    if let Some(e) = result.errors.first() {
        let what = match e {
            ApplyError::ShapeMismatch { path, expected, found } => format!(
                "{path} is {:?} in it but {:?} in the network",
                found.to_vec(),
                expected.to_vec()
            ),
            other => other.to_string(),
        };
        bail!("--init-from {from}: {what} (is it a checkpoint of another architecture?)");
    }
    let mut fresh: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for (path, _) in &result.missing {
        if new_head && path.starts_with(&head_prefix) {
            fresh.push(path.clone());
        } else {
            missing.push(path.clone());
        }
    }
    if !missing.is_empty() && !partial {
        bail!(
            "--init-from {from}: the network's {} is not in it ({} of the network's tensors are \
             missing{}); is it a checkpoint of another architecture? --init-partial starts the \
             missing ones from scratch",
            missing[0],
            missing.len(),
            if result.unused.is_empty() {
                String::new()
            } else {
                format!("; it has {} the network has no place for", list(&result.unused))
            }
        );
    }
    if result.applied.is_empty() {
        bail!("--init-from {from}: none of its tensors has a place in the network");
    }
    fresh.extend(missing);
    let unused =
        result.unused.into_iter().filter(|n| !n.ends_with("num_batches_tracked")).collect();
    Ok(InitRecord {
        from: from.to_string(),
        format: String::new(),
        sha256: String::new(),
        loaded: result.applied.len(),
        fresh,
        unused,
    })
}

/// The first few of `names` and how many more.
pub fn list(names: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s += &format!(" and {} more", names.len() - SHOWN);
    }
    s
}

/// One line for the console: what was loaded, what starts fresh, what went unused.
pub fn describe(r: &InitRecord) -> String {
    let mut s = format!(
        "initialised from {} ({}, sha256 {}…): {} tensors loaded",
        r.from,
        r.format,
        &r.sha256[..r.sha256.len().min(12)],
        r.loaded
    );
    if !r.fresh.is_empty() {
        s += &format!("; starting fresh: {}", list(&r.fresh));
    }
    if !r.unused.is_empty() {
        s += &format!("; unused: {}", list(&r.unused));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use burnlab_models::{LeNet5Config, ResNetConfig};

    use super::*;
    use crate::weights::export::{Named, torch_tensors, write_safetensors};
    use crate::weights::testing::{fixed_input, fixture, formula};

    /// The fixture's logits against the network's on the fixture's input.
    fn assert_logits(net: &ImageNet, json: &str, tol: f32) {
        let f: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture(json)).expect("fixture"))
                .expect("json");
        let shape: Vec<usize> = serde_json::from_value(f["input"].clone()).expect("input");
        let want: Vec<Vec<f32>> = serde_json::from_value(f["logits"].clone()).expect("logits");
        let got = net.forward(fixed_input([shape[0], shape[1], shape[2], shape[3]]));
        let got = got.into_data().try_to_vec::<f32>().expect("f32");
        let want: Vec<f32> = want.concat();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= tol, "{json}: logit {i}: burnlab {g} vs PyTorch {w}");
        }
    }

    /// torchvision's resnet18(num_classes=3) with the formula's weights, written as PyTorch
    /// names them into a safetensors file, loaded into burnlab's ResNet-18 (another seed's
    /// weights before): torchvision's logits (scripts/fixtures/make_torch_fixture.py).
    #[test]
    fn resnet18_with_torchvision_weights_gives_torchvisions_logits() {
        let dev = Device::flex();
        dev.seed(1);
        let mut net = ImageNet::ImagenetResNet(ResNetConfig::new().with_num_classes(3).init(&dev));
        let tensors: Vec<Named> = torch_tensors(&net)
            .expect("names")
            .into_iter()
            .map(|t| Named { data: formula(&t.name, &t.shape), ..t })
            .collect();
        assert_eq!(tensors.len(), 122, "torchvision's resnet18 state dict has 122 entries");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("resnet18.safetensors");
        write_safetensors(&file, &tensors, HashMap::new()).expect("write");
        let r = init_from(&mut net, &file, false).expect("init");
        assert_eq!((r.loaded, r.format.as_str()), (102, "safetensors"), "{r:?}");
        assert!(r.fresh.is_empty() && r.unused.is_empty(), "{r:?}");
        assert_logits(&net, "resnet18_formula.json", 1e-5);
    }

    /// A real torch.save file (zip + pickle), plain and wrapped in {"state_dict": …}.
    #[test]
    fn lenet5_from_a_pth_gives_pytorchs_logits() {
        for file in ["lenet5.pth", "lenet5_wrapped.pth"] {
            let mut net = ImageNet::LeNet5(LeNet5Config::new().init(&Device::flex()));
            let r = init_from(&mut net, &fixture(file), false).expect("init");
            assert_eq!((r.loaded, r.format.as_str()), (10, "pytorch"), "{file}: {r:?}");
            assert_logits(&net, "lenet5.json", 1e-5);
        }
    }

    #[test]
    fn another_class_count_starts_the_head_fresh() {
        let mut net =
            ImageNet::LeNet5(LeNet5Config::new().with_num_classes(3).init(&Device::flex()));
        let r = init_from(&mut net, &fixture("lenet5.pth"), false).expect("init");
        assert_eq!(r.loaded, 8);
        assert_eq!(r.fresh, ["fc3.bias", "fc3.weight"]);
        assert!(describe(&r).contains("starting fresh: fc3.bias, fc3.weight"), "{}", describe(&r));
    }

    #[test]
    fn a_checkpoint_of_another_architecture_names_the_tensor_and_both_shapes() {
        let mut net = ImageNet::ImagenetResNet(ResNetConfig::new().init(&Device::flex()));
        let e = init_from(&mut net, &fixture("lenet5.pth"), false).expect_err("refused");
        let e = format!("{e:#}");
        assert!(
            e.contains("conv1.weight") && e.contains("[64, 3, 7, 7]") && e.contains("[6, 3, 5, 5]"),
            "{e}"
        );
    }
}
