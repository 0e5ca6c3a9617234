//! `burnlab eval` and `burnlab predict`, and the evaluation loop training also uses.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use burn::train::ClassificationOutput;
use burnlab_data::image_folder::decode_rgb;
use burnlab_data::{ImageLoader, ImageSet, Normalization, load_test_data};
use burnlab_ops::linear::with_packed_weights;
use serde::Serialize;

use crate::cli::{DataArgs, EvalArgs, PredictArgs};
use crate::run;
use crate::run::record::{self, ImageRecord};
use crate::tasks::image::classifier::ImageClassifier;
use crate::tasks::image::data::cifar_download;
use crate::tasks::image::model::load_run_model;

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub images: usize,
    /// Horizontal-flip test-time augmentation: logits averaged over each image and its mirror.
    pub tta: bool,
    /// Inference throughput of the pass, data preparation included.
    pub images_per_s: f64,
    pub loss: f64,
    pub accuracy: f64,
    pub per_class_accuracy: Vec<(String, f64)>,
    /// confusion[true][predicted]
    pub confusion: Vec<Vec<usize>>,
    /// Per image, in the set's order: predicted class and its softmax probability.
    #[serde(skip)]
    pub predictions: Vec<(usize, f32)>,
    /// images/s of each extra timed pass (`burnlab eval --timed-passes N`), see [`timed_passes`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timed_images_per_s: Vec<f64>,
}

/// Evaluation batch size for CIFAR-sized images (the validation sample grid's images are the
/// first batch's); see [`eval_batch`].
const EVAL_BATCH: usize = 256;

/// Batch size of validation passes, the final scoring and `burnlab eval`: [`EVAL_BATCH`]
/// images of 32×32, fewer of larger ones (the same pixels per batch, not below the training
/// batch), so that a 224-px run does not hold 256 images' activations at once (0.8 GB for one
/// tensor after ResNet-18's stem): its peak memory had been set by the final scoring.
pub fn eval_batch(train_batch: usize, (height, width): (usize, usize)) -> usize {
    (EVAL_BATCH * 32 * 32 / (height * width).max(1))
        .clamp(train_batch.clamp(1, EVAL_BATCH), EVAL_BATCH)
}

/// Inference throughput over `set` timed as the PyTorch peer times it (its `infer_bench`):
/// whole passes of data preparation, forward and argmax in eval mode, without the loss,
/// softmax and confusion matrix of [`evaluate`]; images/s of each pass.
pub fn timed_passes(
    model: &ImageClassifier,
    set: &Arc<ImageSet>,
    norm: &Normalization,
    device: &Device,
    batch: usize,
    passes: usize,
) -> Vec<f64> {
    let model = model.valid();
    // The weights do not change here: the linear layers' packed copies are kept across batches.
    with_packed_weights(|| {
        (0..passes)
            .map(|_| {
                let loader = ImageLoader::new(set.clone(), batch, norm, device.clone());
                let started = std::time::Instant::now();
                let mut images = 0;
                for b in loader.iter().flatten() {
                    images += b.targets.dims()[0];
                    // Read back, so that an asynchronous (GPU) backend has finished the batch.
                    let _ = model.logits(b.images).argmax(1).into_data();
                }
                images as f64 / started.elapsed().as_secs_f64().max(1e-9)
            })
            .collect()
    })
}

/// Loss, accuracy and confusion matrix of `model` (used in eval mode: BatchNorm with its running
/// statistics, no dropout) over `set`, with flip test-time augmentation when `tta`.
pub fn evaluate(
    model: &ImageClassifier,
    set: &Arc<ImageSet>,
    norm: &Normalization,
    device: &Device,
    batch: usize,
    tta: bool,
) -> EvalReport {
    let model = model.valid();
    // As in [`timed_passes`]: the weights do not change here.
    with_packed_weights(|| {
        let k = set.classes.len();
        let mut confusion = vec![vec![0usize; k]; k];
        let mut loss_sum = 0f64;
        let mut predictions = Vec::with_capacity(set.len());
        let loader = ImageLoader::new(set.clone(), batch, norm, device.clone());
        let started = std::time::Instant::now();
        for b in loader.iter().flatten() {
            let n = b.targets.dims()[0];
            let out = if tta {
                let logits = (model.logits(b.images.clone()) + model.logits(b.images.flip([3])))
                    .div_scalar(2.0);
                let loss = model.loss.forward(logits.clone(), b.targets.clone());
                ClassificationOutput { loss, output: logits, targets: b.targets }
            } else {
                model.forward_classification(b)
            };
            loss_sum += out.loss.into_scalar::<f32>() as f64 * n as f64;
            let conf: Vec<f32> = softmax(out.output.clone(), 1)
                .max_dim(1)
                .into_data()
                .convert::<f32>()
                .try_to_vec()
                .unwrap_or_default();
            let pred: Vec<i64> =
                out.output.argmax(1).into_data().convert::<i64>().try_to_vec().unwrap_or_default();
            let truth: Vec<i64> =
                out.targets.into_data().convert::<i64>().try_to_vec().unwrap_or_default();
            for ((t, p), c) in truth.iter().zip(&pred).zip(&conf) {
                confusion[*t as usize][*p as usize] += 1;
                predictions.push((*p as usize, *c));
            }
        }
        let total: usize = confusion.iter().flatten().sum();
        let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
        let per_class_accuracy = set
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let n: usize = confusion[i].iter().sum();
                (c.clone(), if n > 0 { confusion[i][i] as f64 / n as f64 } else { 0.0 })
            })
            .collect();
        EvalReport {
            images: total,
            tta,
            images_per_s: total as f64 / started.elapsed().as_secs_f64().max(1e-9),
            loss: loss_sum / total.max(1) as f64,
            accuracy: correct as f64 / total.max(1) as f64,
            per_class_accuracy,
            confusion,
            predictions,
            timed_images_per_s: Vec::new(),
        }
    })
}

/// The split a run's final metrics are on (`test/`, else the folder's validation split), and
/// its name and source: from `--data`, else the data the run was trained on, else the CIFAR-10
/// download, read as the run's config says (a folder without splits is split with its seed);
/// its classes must be the run's.
pub fn run_test_data(
    run_dir: &std::path::Path,
    meta: &ImageRecord,
    args: &DataArgs,
) -> Result<(ImageSet, String, String)> {
    let exp = crate::config::load_image(&run_dir.join(run::CONFIG_FILE), &[])?;
    let opts = exp.data.options(exp.seed);
    let mut data = args.data.clone();
    if data.is_none()
        && let Some((_, path)) = meta.data_source.split_once(':')
        && std::path::Path::new(path).exists()
    {
        data = Some(path.into());
    }
    let (test, name, source) =
        load_test_data(data.as_deref(), &args.cache, &cifar_download(), &meta.classes, &opts)?;
    if test.classes != meta.classes {
        bail!("test classes {:?} differ from the run's classes {:?}", test.classes, meta.classes);
    }
    Ok((test, name, source))
}

pub fn eval_command(args: EvalArgs) -> Result<()> {
    if args.batch_size == Some(0) {
        bail!("--batch-size must be at least 1");
    }
    let record = record::read(&args.run_dir)?;
    let meta = record.image(&args.run_dir)?;
    let device = args.backend.device()?;
    let model = load_run_model(&args.run_dir, &record, &device)?;
    let (test, split, source) = run_test_data(&args.run_dir, meta, &args.data)?;
    let test = Arc::new(test);
    let batch = args.batch_size.unwrap_or_else(|| eval_batch(32, (test.height, test.width)));
    let mut report = evaluate(&model, &test, &meta.normalization, &device, batch, args.tta);
    report.timed_images_per_s =
        timed_passes(&model, &test, &meta.normalization, &device, batch, args.timed_passes);
    let tta = if args.tta { ", flip TTA" } else { "" };
    println!("{} on {} {split} images ({source}{tta})", record.model, report.images);
    println!("{:<15}{:.4}", format!("{split} loss"), report.loss);
    println!("{:<15}{:.2}%", format!("{split} accuracy"), 100.0 * report.accuracy);
    println!("throughput     {:.0} images/s", report.images_per_s);
    if !report.timed_images_per_s.is_empty() {
        let mut t = report.timed_images_per_s.clone();
        t.sort_by(f64::total_cmp);
        let each: Vec<String> =
            report.timed_images_per_s.iter().map(|v| format!("{v:.0}")).collect();
        println!(
            "timed passes   {:.0} images/s (median of {}: {})",
            t[t.len() / 2],
            t.len(),
            each.join(", ")
        );
    }
    println!("per class:");
    for (c, a) in &report.per_class_accuracy {
        println!("  {c:<12} {:6.2}%", 100.0 * a);
    }
    let out = args.run_dir.join("eval.json");
    run::write_json(&out, &report)?;
    let csv = args.run_dir.join("confusion.csv");
    run::write_atomic(&csv, confusion_csv(&meta.classes, &report.confusion).as_bytes())?;
    let png = args.run_dir.join("confusion.png");
    let title = format!("{}: {split} accuracy {:.2}%{tta}", record.model, 100.0 * report.accuracy);
    crate::insight::plot::confusion_png(&png, &meta.classes, &report.confusion, &title)?;
    println!("written: {}, {}, {}", out.display(), csv.display(), png.display());
    Ok(())
}

/// The confusion matrix as CSV: a header of predicted classes, one row per true class.
pub fn confusion_csv(classes: &[String], confusion: &[Vec<usize>]) -> String {
    let quote = |c: &str| {
        if c.contains([',', '"', '\n']) {
            format!("\"{}\"", c.replace('"', "\"\""))
        } else {
            c.to_string()
        }
    };
    let mut out = String::from("true\\predicted");
    for c in classes {
        out.push(',');
        out.push_str(&quote(c));
    }
    out.push('\n');
    for (c, row) in classes.iter().zip(confusion) {
        out.push_str(&quote(c));
        for n in row {
            out.push_str(&format!(",{n}"));
        }
        out.push('\n');
    }
    out
}

pub fn predict_command(args: PredictArgs) -> Result<()> {
    let record = record::read(&args.run_dir)?;
    let meta = record.image(&args.run_dir)?;
    let device = args.backend.device()?;
    let model = load_run_model(&args.run_dir, &record, &device)?.valid();
    let [c, h, w] = meta.image_size;
    if h != w || c != 3 {
        bail!("run has images of shape {:?}; predict supports square RGB", meta.image_size);
    }
    // The run's own resize and centre crop, as its validation images were seen.
    let exp = crate::config::load_image(&args.run_dir.join(run::CONFIG_FILE), &[])?;
    let resize = exp.data.resize() as u32;
    let table = meta.normalization.table();
    let k = args.top_k.clamp(1, meta.classes.len());
    for path in &args.images {
        // (Its errors name the file already.)
        let chw = decode_rgb(path, h as u32, resize)?;
        let plane = h * w;
        let pixels: Vec<f32> =
            chw.iter().enumerate().map(|(i, &p)| table[i / plane][p as usize]).collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [1, c, h, w]), &device);
        let probs: Vec<f32> = softmax(model.logits(x), 1)
            .into_data()
            .try_to_vec()
            .context("reading probabilities")?;
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
        let tops: Vec<String> = order[..k]
            .iter()
            .map(|&i| format!("{} {:.1}%", meta.classes[i], 100.0 * probs[i]))
            .collect();
        println!("{}: {}", path.display(), tops.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_csv_layout_and_quoting() {
        let classes = vec!["cat".to_string(), "a,b".to_string()];
        let csv = confusion_csv(&classes, &[vec![3, 1], vec![0, 4]]);
        assert_eq!(csv, "true\\predicted,cat,\"a,b\"\ncat,3,1\n\"a,b\",0,4\n");
    }
}
