//! `burnlab export RUN --format safetensors [--out FILE]`: a trained run's weights with
//! PyTorch's names and layouts, so that PyTorch loads them strictly: for the torchvision-layout
//! ResNets `torchvision.models.resnet18(num_classes=N).load_state_dict(load_file(f))`, for the
//! other models the few-line `nn.Module`s the README shows.
//!
//! Layouts: linear weights transposed to [out, in], BatchNorm's `gamma`/`beta` written as
//! `weight`/`bias` beside `running_mean`/`running_var` (Burn's `BurnToPyTorchAdapter`), and a
//! `num_batches_tracked` per BatchNorm, which `load_state_dict(strict=True)` expects: 0, as Burn
//! does not count batches (PyTorch reads it only for BatchNorm with `momentum=None`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use burn::store::{BurnToPyTorchAdapter, bridge};
use burn::tensor::{DType, Device};
use safetensors::tensor::{Dtype, TensorView};

use crate::run;
use crate::tasks::image::classifier::ImageNet;
use crate::weights::to_torch_name;

/// One tensor as written: a PyTorch name, a shape and little-endian f32 or i64 bytes.
pub struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Data,
}

pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// The network's tensors under PyTorch's names and layouts (see the module note).
pub fn torch_tensors(net: &ImageNet) -> Result<Vec<Named>> {
    let mut out = Vec::new();
    for t in net.tensors(Some(Box::new(BurnToPyTorchAdapter))) {
        let name = to_torch_name(&t.name);
        let shape = t.shape.to_vec();
        let data = bridge::into_data(t).map_err(|e| anyhow!("reading {name}: {e:?}"))?;
        if data.dtype() != DType::F32 {
            return Err(anyhow!("{name}: {:?} tensors are not exported (f32 only)", data.dtype()));
        }
        let values = data.try_to_vec::<f32>().map_err(|e| anyhow!("reading {name}: {e:?}"))?;
        if let Some(prefix) = name.strip_suffix(".running_var") {
            out.push(Named {
                name: format!("{prefix}.num_batches_tracked"),
                shape: vec![],
                data: Data::I64(vec![0]),
            });
        }
        out.push(Named { name, shape, data: Data::F32(values) });
    }
    Ok(out)
}

/// Writes `tensors` as a safetensors file (atomically: a failed write leaves no partial file),
/// with `metadata` in its header.
pub fn write_safetensors(
    path: &Path,
    tensors: &[Named],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = tensors
        .iter()
        .map(|t| {
            let (bytes, dtype) = match &t.data {
                Data::F32(v) => (v.iter().flat_map(|x| x.to_le_bytes()).collect(), Dtype::F32),
                Data::I64(v) => (v.iter().flat_map(|x| x.to_le_bytes()).collect(), Dtype::I64),
            };
            (t.name.clone(), bytes, dtype, t.shape.clone())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, b, dtype, shape)| {
            TensorView::new(*dtype, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| anyhow!("{name}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let file = safetensors::serialize(views, Some(metadata))
        .map_err(|e| anyhow!("encoding {}: {e}", path.display()))?;
    run::write_atomic(path, &file).with_context(|| format!("writing {}", path.display()))
}

/// A character model's tensors under the names of PyTorch's `nn.Embedding` + `nn.LSTM` /
/// `nn.GRU` / `nn.RNN` (`batch_first`) + `nn.Linear`: each layer's fused input and hidden
/// projections are PyTorch's `weight_ih_l{k}` / `weight_hh_l{k}` (same gate order: i, f, g, o
/// and r, z, n) and their biases.
pub fn charlm_torch_tensors(net: &burnlab_models::CharLm) -> Result<Vec<Named>> {
    use burn::store::ModuleSnapshot;
    let mut out = Vec::new();
    for t in net.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true) {
        let name = charlm_torch_name(&t.name);
        let shape = t.shape.to_vec();
        let data = bridge::into_data(t).map_err(|e| anyhow!("reading {name}: {e:?}"))?;
        let values = data.try_to_vec::<f32>().map_err(|e| anyhow!("reading {name}: {e:?}"))?;
        out.push(Named { name, shape, data: Data::F32(values) });
    }
    Ok(out)
}

/// `rnn.layers.K.input.weight` → `rnn.weight_ih_lK` (and `hidden` → `hh`, biases alike).
fn charlm_torch_name(path: &str) -> String {
    let Some(rest) = path.strip_prefix("rnn.layers.") else { return path.to_string() };
    let mut parts = rest.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(k), Some(proj @ ("input" | "hidden")), Some(kind @ ("weight" | "bias")), None) => {
            let which = if proj == "input" { "ih" } else { "hh" };
            format!("rnn.{kind}_{which}_l{k}")
        }
        _ => path.to_string(),
    }
}

#[cfg(feature = "onnx")]
/// An image network as an ONNX model (opset 18) through burn-onnx's exporter, which traces
/// forward passes on its capture device (where burnlab's layers take Burn's own operations):
/// with a dynamic batch axis where the trace allows it, else (a network that creates tensors
/// sized by the batch, as the CIFAR ResNets' zero-padding shortcut does) for batches of one.
/// Returns the bytes and whether the batch axis is dynamic.
pub fn onnx_bytes(net: &ImageNet, image: [usize; 3]) -> Result<(Vec<u8>, bool)> {
    use burn::module::Module;
    use burn::tensor::Tensor;
    use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
    let model = net.valid();
    let dev = Device::flex();
    let [c, h, w] = image;
    let input = |n: usize| Tensor::<4>::zeros([n, c, h, w], &dev);
    let forward = |m: &ImageNet, x: Tensor<4>| m.forward(x);
    let specs = [InputSpec::new([
        AxisSpec::dynamic("batch"),
        AxisSpec::Static,
        AxisSpec::Static,
        AxisSpec::Static,
    ])];
    let exporter = OnnxExporter::new();
    match exporter.export_dynamic(&model, input(1), input(2), &specs, forward) {
        Ok(onnx) => Ok((onnx.into_bytes(), true)),
        Err(dynamic) => {
            tracing::debug!("dynamic-batch ONNX export failed ({dynamic}); exporting batch 1");
            let onnx = exporter
                .export(&model, input(1), forward)
                .map_err(|e| anyhow!("ONNX export: {e}"))?;
            Ok((onnx.into_bytes(), false))
        }
    }
}

/// `export --format onnx` of an image run.
#[cfg(feature = "onnx")]
fn export_onnx(args: &crate::cli::ExportArgs, meta: &crate::run::record::RunRecord) -> Result<()> {
    use crate::run::record::TaskRecord;
    let dir = &args.run_dir;
    let image = match &meta.task {
        TaskRecord::Mlp(r) | TaskRecord::Cnn(r) => r.image_size,
        _ => anyhow::bail!(
            "{}: ONNX export covers image models; a character model's recurrence is a Rust \
                 loop over time steps that the exporter cannot trace as one graph (export \
                 safetensors and load them into PyTorch's nn.LSTM/GRU/RNN, as the README shows)",
            dir.display()
        ),
    };
    let model = crate::tasks::image::model::load_run_model(dir, &meta, &Device::flex())?;
    let out = args.out.clone().unwrap_or_else(|| dir.join("model.onnx"));
    let (bytes, dynamic) = onnx_bytes(&model.net, image)?;
    run::write_atomic(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {} (ONNX opset 18: images [{}, {}, {}, {}], normalised as the run normalises \
             them, to logits; {})",
        out.display(),
        if dynamic { "batch" } else { "1" },
        image[0],
        image[1],
        image[2],
        meta.model
    );
    Ok(())
}

#[cfg(not(feature = "onnx"))]
fn export_onnx(_: &crate::cli::ExportArgs, _: &crate::run::record::RunRecord) -> Result<()> {
    anyhow::bail!(
        "this burnlab was built without the ONNX exporter (Burn's exporter is experimental \
         upstream and adds a few minutes to every build, so it is a feature): `just export-onnx \
         RUN` builds burnlab with `--features onnx` and exports"
    )
}

/// `burnlab export RUN --format safetensors|onnx [--out FILE]`.
pub fn export_command(args: crate::cli::ExportArgs) -> Result<()> {
    use crate::run::record::{self, TaskRecord};
    use crate::tasks::word2vec::{VECTORS_BIN, VECTORS_TEXT};
    let dir = &args.run_dir;
    let meta = record::read(dir)?;
    if let TaskRecord::Word2vec(_) = meta.task {
        anyhow::bail!(
            "{} is a word2vec run: its vectors are already in word2vec's own formats, which \
             gensim (KeyedVectors.load_word2vec_format) and word2vec.c read: {} and {}",
            dir.display(),
            dir.join(VECTORS_TEXT).display(),
            dir.join(VECTORS_BIN).display()
        );
    }
    if args.format == crate::cli::ExportFormat::Onnx {
        return export_onnx(&args, &meta);
    }
    let device = Device::flex();
    let tensors = match &meta.task {
        TaskRecord::Mlp(_) | TaskRecord::Cnn(_) => {
            let model = crate::tasks::image::model::load_run_model(dir, &meta, &device)?;
            torch_tensors(&model.net)?
        }
        TaskRecord::Charlm(_) => {
            let (net, ..) = crate::tasks::charlm::load_run(dir, &device)?;
            charlm_torch_tensors(&net)?
        }
        TaskRecord::Word2vec(_) => unreachable!("refused above"),
    };
    let out = args.out.clone().unwrap_or_else(|| dir.join("model.safetensors"));
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("burnlab_task".to_string(), meta.task.name().to_string()),
        ("burnlab_model".to_string(), meta.model.clone()),
    ]);
    write_safetensors(&out, &tensors, metadata)?;
    let params: usize = tensors
        .iter()
        .filter(|t| matches!(t.data, Data::F32(_)))
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    println!(
        "wrote {} ({} tensors, {params} values, PyTorch names and layouts; {})",
        out.display(),
        tensors.len(),
        meta.model
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;
    use burnlab_models::{CifarResNetConfig, LeNet5Config, MlpConfig, ResNet9Config, ResNetConfig};

    use super::*;
    use crate::weights::init::init_from;
    use crate::weights::testing::{fixed_input, formula};

    /// The logits `scripts/fixtures/SCRIPT ARGS` prints, or `None` (after saying SKIPPED and
    /// why) when that Python lacks the packages the script needs (its exit status 3).
    fn python_logits(python: &std::ffi::OsStr, script: &str, args: &[String]) -> Option<Vec<f32>> {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fixtures").join(script);
        let out = std::process::Command::new(python)
            .arg(&script)
            .args(args)
            .output()
            .expect("run python");
        if out.status.code() == Some(3) {
            eprintln!("SKIPPED: {}", String::from_utf8_lossy(&out.stderr).trim());
            return None;
        }
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let theirs: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).expect("logits");
        Some(theirs.concat())
    }

    /// `net`'s logits on the fixed input against `theirs`, within 1e-4.
    fn assert_logits(net: &ImageNet, input: [usize; 4], theirs: &[f32], model: &str, who: &str) {
        let ours = net.forward(fixed_input(input)).into_data().try_to_vec::<f32>().expect("f32");
        assert_eq!(ours.len(), theirs.len());
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            assert!((a - b).abs() <= 1e-4, "{model} logit {i}: burnlab {a} vs {who} {b}");
        }
    }

    /// A network with the fixtures' formula weights (BatchNorm statistics included, so that a
    /// swapped scale and shift or mean and variance would show), exported, loaded strictly into
    /// PyTorch's module (torchvision's resnet18; for the others the README's modules,
    /// scripts/fixtures/torch_modules.py): the same logits. Needs a
    /// Python with torch and torchvision in BURNLAB_TEST_PYTHON; otherwise (CI's Python has
    /// tensorboard only) says SKIPPED and why.
    #[test]
    fn pytorch_loads_the_export_strictly_and_gives_the_same_logits() {
        let Some(python) = std::env::var_os("BURNLAB_TEST_PYTHON") else {
            eprintln!(
                "SKIPPED: set BURNLAB_TEST_PYTHON to a Python with torch and torchvision to load \
                 the exports into PyTorch"
            );
            return;
        };
        let dev = Device::flex();
        let cases = [
            (
                "resnet18",
                3,
                ImageNet::ImagenetResNet(ResNetConfig::new().with_num_classes(3).init(&dev)),
                [2, 3, 64, 64],
            ),
            (
                "lenet5",
                4,
                ImageNet::LeNet5(LeNet5Config::new().with_num_classes(4).init(&dev)),
                [2, 3, 32, 32],
            ),
            (
                "mlp",
                5,
                ImageNet::Mlp(
                    MlpConfig::new()
                        .with_d_input(3 * 32 * 32)
                        .with_num_classes(5)
                        .with_hidden(vec![32, 16])
                        .init(&dev),
                ),
                [2, 3, 32, 32],
            ),
            (
                "resnet20",
                3,
                ImageNet::ResNet(CifarResNetConfig::new().with_num_classes(3).init(&dev)),
                [2, 3, 32, 32],
            ),
            (
                "resnet9",
                3,
                ImageNet::ResNet9(ResNet9Config::new().with_num_classes(3).init(&dev)),
                [2, 3, 32, 32],
            ),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        for (model, classes, mut net, input) in cases {
            let formula_file = dir.path().join(format!("{model}-formula.safetensors"));
            let tensors: Vec<Named> = torch_tensors(&net)
                .expect("tensors")
                .into_iter()
                .map(|t| Named { data: formula(&t.name, &t.shape), ..t })
                .collect();
            write_safetensors(&formula_file, &tensors, HashMap::new()).expect("write");
            init_from(&mut net, &formula_file, false).expect("init");
            let file = dir.path().join(format!("{model}.safetensors"));
            write_safetensors(&file, &torch_tensors(&net).expect("export"), HashMap::new())
                .expect("write");
            let mut args = vec![model.to_string(), classes.to_string(), file.display().to_string()];
            args.extend(input.map(|v| v.to_string()));
            let Some(theirs) = python_logits(&python, "check_export.py", &args) else { return };
            assert_logits(&net, input, &theirs, model, "PyTorch");
        }
    }

    /// The ONNX export of ResNet-18 and LeNet-5 with the formula's weights passes
    /// onnx.checker and gives burnlab's logits in onnxruntime, at another batch size than the
    /// traced ones (the batch axis is dynamic). Needs BURNLAB_TEST_PYTHON with onnx and
    /// onnxruntime; otherwise says SKIPPED and why.
    #[cfg(feature = "onnx")]
    #[test]
    fn the_onnx_export_runs_in_onnxruntime_with_the_same_logits() {
        let Some(python) = std::env::var_os("BURNLAB_TEST_PYTHON") else {
            eprintln!("SKIPPED: set BURNLAB_TEST_PYTHON to a Python with onnx and onnxruntime");
            return;
        };
        let dev = Device::flex();
        let cases = [
            (
                "resnet18",
                ImageNet::ImagenetResNet(ResNetConfig::new().with_num_classes(3).init(&dev)),
                [3, 3, 64, 64],
            ),
            (
                "lenet5",
                ImageNet::LeNet5(LeNet5Config::new().with_num_classes(4).init(&dev)),
                [3, 3, 32, 32],
            ),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        for (model, mut net, input) in cases {
            let formula_file = dir.path().join(format!("{model}-formula.safetensors"));
            let tensors: Vec<Named> = torch_tensors(&net)
                .expect("tensors")
                .into_iter()
                .map(|t| Named { data: formula(&t.name, &t.shape), ..t })
                .collect();
            write_safetensors(&formula_file, &tensors, HashMap::new()).expect("write");
            init_from(&mut net, &formula_file, false).expect("init");
            let file = dir.path().join(format!("{model}.onnx"));
            let (bytes, dynamic) = onnx_bytes(&net, [input[1], input[2], input[3]]).expect("onnx");
            assert!(dynamic, "{model}: the batch axis is dynamic");
            std::fs::write(&file, bytes).expect("write");
            let mut args = vec![file.display().to_string()];
            args.extend(input.map(|v| v.to_string()));
            let Some(theirs) = python_logits(&python, "check_onnx.py", &args) else { return };
            assert_logits(&net, input, &theirs, model, "onnxruntime");
        }
    }

    #[test]
    fn charlm_cells_take_pytorchs_recurrent_names() {
        let cases = [
            ("rnn.layers.0.input.weight", "rnn.weight_ih_l0"),
            ("rnn.layers.1.hidden.bias", "rnn.bias_hh_l1"),
            ("rnn.layers.0.input.bias", "rnn.bias_ih_l0"),
            ("embedding.weight", "embedding.weight"),
            ("head.weight", "head.weight"),
        ];
        for (ours, torch) in cases {
            assert_eq!(charlm_torch_name(ours), torch);
        }
    }
}
