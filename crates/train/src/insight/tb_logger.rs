//! TensorBoard logging of burn-train runs: a metric logger beside burn-train's file logger, and
//! a validation "metric" that draws a grid of sample predictions each epoch.
//!
//! Layout (Keras's): `RUN/tb/train/` and `RUN/tb/valid/` each hold an event file with the same
//! tags, so TensorBoard overlays train and valid curves on one chart:
//! `step/<metric>` per batch (x: global batch number of that split) and `epoch/<metric>` per
//! epoch (x: epoch), metric names as tags (`Learning Rate` → `learning_rate`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorReadError};
use burn::train::ClassificationOutput;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{
    Adaptor, Metric, MetricDefinition, MetricId, MetricMetadata, MetricName, NumericEntry,
    SerializedEntry,
};
use burnlab_data::ImageSet;

use crate::insight::plot::{Tile, image_grid, png_bytes};
use crate::insight::tb::{EventWriter, tag_name};

pub const TB_DIR: &str = "tb";

/// A writer shared between the logger and the sample grid.
pub type SharedWriter = Arc<Mutex<EventWriter>>;

#[derive(Default)]
struct SplitLog {
    epoch: usize,
    batch: usize,
    batches_per_epoch: usize,
    /// tag -> (weighted sum, weight) over the epoch so far
    sums: BTreeMap<String, (f64, f64)>,
    finals: BTreeMap<String, f64>,
}

/// Writes every numeric metric burn-train logs to TensorBoard event files.
pub struct TbLogger {
    writers: [SharedWriter; 2],
    splits: [SplitLog; 2],
    names: HashMap<MetricId, String>,
}

impl TbLogger {
    /// `batches` per epoch of the train and valid loaders place a resumed run's steps after
    /// the checkpoint's.
    pub fn create(run_dir: &Path, train_batches: usize, valid_batches: usize) -> Result<Self> {
        let dir = run_dir.join(TB_DIR);
        let writers = [
            Arc::new(Mutex::new(EventWriter::create(&dir.join("train"))?)),
            Arc::new(Mutex::new(EventWriter::create(&dir.join("valid"))?)),
        ];
        let split = |n| SplitLog { batches_per_epoch: n, ..Default::default() };
        Ok(Self {
            writers,
            splits: [split(train_batches), split(valid_batches)],
            names: HashMap::new(),
        })
    }

    pub fn valid_writer(&self) -> SharedWriter {
        self.writers[1].clone()
    }

    fn index(split: &Split) -> Option<usize> {
        match split {
            Split::Train => Some(0),
            Split::Valid => Some(1),
            Split::Test(_) => None,
        }
    }

    fn write(&self, i: usize, tag: &str, step: i64, value: f64) {
        if let Ok(mut w) = self.writers[i].lock()
            && let Err(e) = w.scalar(tag, step, value)
        {
            tracing::warn!("TensorBoard log: {e:#}");
        }
    }
}

impl MetricLogger for TbLogger {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        let Some(i) = Self::index(split) else { return };
        // The epoch-end update carries the final values; it is not a batch.
        let is_final = update
            .entries_numeric
            .iter()
            .any(|u| matches!(u.numeric_entry, Some(NumericEntry::Final(_))));
        let s = &mut self.splits[i];
        if s.epoch != epoch {
            (s.epoch, s.batch) = (epoch, 0);
            s.sums.clear();
            s.finals.clear();
        }
        if !is_final {
            s.batch += 1;
        }
        let step = ((epoch.max(1) - 1) * s.batches_per_epoch + s.batch) as i64;
        let mut points = Vec::new();
        for u in &update.entries_numeric {
            let Some(name) = self.names.get(&u.entry.metric_id) else {
                continue;
            };
            match &u.numeric_entry {
                Some(NumericEntry::Final(v)) => {
                    s.finals.insert(name.clone(), *v);
                }
                Some(e @ NumericEntry::Value(v))
                | Some(e @ NumericEntry::Aggregated { aggregated_value: v, .. }) => {
                    let w = if let NumericEntry::Aggregated { count, .. } = e {
                        *count as f64
                    } else {
                        1.0
                    };
                    let acc = s.sums.entry(name.clone()).or_insert((0.0, 0.0));
                    (acc.0, acc.1) = (acc.0 + v * w, acc.1 + w);
                    points.push((format!("step/{name}"), *v));
                }
                None => {}
            }
        }
        for (tag, v) in points {
            self.write(i, &tag, step, v);
        }
    }

    fn read_numeric(
        &mut self,
        name: &str,
        _epoch: usize,
        _split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        // burn-train's file logger, registered first, answers these.
        Err(format!("the TensorBoard logger does not read back {name}"))
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id.clone(), tag_name(&definition.name));
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        let Some(i) = Self::index(&summary.split) else {
            return;
        };
        let s = &self.splits[i];
        let mut values: BTreeMap<String, f64> = s
            .sums
            .iter()
            .filter(|(_, (_, w))| *w > 0.0)
            .map(|(k, (sum, w))| (k.clone(), sum / w))
            .collect();
        values.extend(s.finals.clone());
        for (name, v) in values {
            self.write(i, &format!("epoch/{name}"), summary.epoch_number as i64, v);
        }
        if let Ok(mut w) = self.writers[i].lock() {
            let _ = w.flush();
        }
    }
}

/// The first `count` validation images with the model's prediction and the truth, drawn into
/// TensorBoard each epoch (tag `samples`). It rides along as a validation metric because
/// burn-train hands metrics the model's outputs; the valid loader is not shuffled, so the
/// outputs of the first batch are those of `images[0..count]`.
#[derive(Clone)]
pub struct SampleGrid {
    images: Arc<ImageSet>,
    count: usize,
    writer: SharedWriter,
    epoch: usize,
    drawn: bool,
    text: String,
}

/// The logits the grid needs from a classification output.
pub struct Logits(Tensor<2>);

impl Adaptor<Logits> for ClassificationOutput {
    fn adapt(&self) -> Logits {
        Logits(self.output.clone())
    }
}

impl SampleGrid {
    pub fn new(
        images: Arc<ImageSet>,
        count: usize,
        writer: SharedWriter,
        first_epoch: usize,
    ) -> Self {
        Self { images, count, writer, epoch: first_epoch, drawn: false, text: String::new() }
    }

    fn draw(&self, logits: &Tensor<2>) -> Result<String> {
        let n = self.count.min(logits.dims()[0]).min(self.images.len());
        let probs = softmax(logits.clone().slice([0..n]), 1);
        let k = probs.dims()[1];
        let p: Vec<f32> = probs
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let set = &self.images;
        let mut right = 0;
        let tiles: Vec<Tile> = (0..n)
            .map(|i| {
                let row = &p[i * k..(i + 1) * k];
                let (pred, conf) = row
                    .iter()
                    .enumerate()
                    .fold((0, f32::MIN), |b, (j, &v)| if v > b.1 { (j, v) } else { b });
                let truth = set.labels[i] as usize;
                right += usize::from(pred == truth);
                let name = |c: usize| set.classes.get(c).cloned().unwrap_or_else(|| c.to_string());
                let caption = if pred == truth {
                    format!("{} {:.0}%", name(pred), 100.0 * conf)
                } else {
                    format!("{} {:.0}%\ntrue: {}", name(pred), 100.0 * conf, name(truth))
                };
                Tile {
                    chw: set.image(i),
                    channels: set.channels,
                    height: set.height,
                    width: set.width,
                    caption,
                    correct: pred == truth,
                }
            })
            .collect();
        let title = format!(
            "epoch {}: predictions on the first {n} validation images ({right} right)",
            self.epoch
        );
        let img = image_grid(&tiles, 8, 3, &title)?;
        let (w, h) = img.dimensions();
        let mut writer =
            self.writer.lock().map_err(|_| anyhow::anyhow!("TensorBoard writer poisoned"))?;
        writer.image("samples", self.epoch as i64, w, h, png_bytes(&img)?)?;
        Ok(format!("{right}/{n} right"))
    }
}

impl Metric for SampleGrid {
    type Input = Logits;

    fn update(
        &mut self,
        item: &Logits,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        if !self.drawn {
            self.drawn = true;
            self.text = match self.draw(&item.0) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("sample grid: {e:#}");
                    "not drawn".into()
                }
            };
        }
        Ok(SerializedEntry::new(self.text.clone(), self.text.clone()))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(SerializedEntry::new(self.text.clone(), self.text.clone()))
    }

    fn clear(&mut self) {
        // Called at the end of each validation epoch.
        self.drawn = false;
        self.epoch += 1;
    }

    fn name(&self) -> MetricName {
        Arc::new("Samples".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::train::metric::store::NumericMetricUpdate;
    use burn::train::metric::{MetricAttributes, MetricEntry};

    fn id(name: &str) -> MetricId {
        MetricId::new(Arc::new(name.to_string()))
    }

    fn update(entries: &[(&str, NumericEntry)]) -> MetricsUpdate {
        let numeric = entries
            .iter()
            .map(|(n, e)| {
                NumericMetricUpdate::new(
                    MetricEntry::new(id(n), SerializedEntry::new(String::new(), String::new())),
                    Some(e.clone()),
                    None,
                )
            })
            .collect();
        MetricsUpdate::new(Vec::new(), numeric)
    }

    #[test]
    fn batches_and_epoch_means_reach_the_event_files_at_resumed_steps() {
        let dir = tempfile::tempdir().expect("tmp");
        // 3 train and 2 valid batches per epoch; this session starts at epoch 2.
        let mut logger = TbLogger::create(dir.path(), 3, 2).expect("logger");
        for name in ["Loss", "Learning Rate"] {
            logger.log_metric_definition(MetricDefinition {
                metric_id: id(name),
                name: Arc::new(name.to_string()),
                description: None,
                attributes: MetricAttributes::None,
            });
        }
        let agg = |v: f64, count: usize| NumericEntry::Aggregated { aggregated_value: v, count };
        for (loss, n, lr) in [(1.0, 10, 0.1), (2.0, 30, 0.2), (4.0, 10, 0.3)] {
            logger.log(
                update(&[("Loss", agg(loss, n)), ("Learning Rate", NumericEntry::Value(lr))]),
                2,
                &Split::Train,
            );
        }
        logger.log_epoch_summary(EpochSummary::new(2, Split::Train));
        logger.log(update(&[("Loss", agg(3.0, 5))]), 2, &Split::Valid);
        logger.log(update(&[("Loss", agg(6.0, 5))]), 2, &Split::Valid);
        // burn-train's epoch-end update: its final value wins over our running mean.
        logger.log(update(&[("Loss", NumericEntry::Final(4.75))]), 2, &Split::Valid);
        logger.log_epoch_summary(EpochSummary::new(2, Split::Valid));
        // An unregistered metric and a test split are ignored.
        logger.log(update(&[("Other", NumericEntry::Value(9.0))]), 2, &Split::Train);
        logger.log(update(&[("Loss", NumericEntry::Value(9.0))]), 2, &Split::Test(None));
        drop(logger);

        let train = crate::insight::tb::read_scalars(&dir.path().join(TB_DIR).join("train"))
            .expect("train");
        assert_eq!(train["step/loss"], vec![(4, 1.0), (5, 2.0), (6, 4.0)]);
        assert_eq!(train["epoch/loss"].len(), 1);
        assert_eq!(train["epoch/loss"][0].0, 2);
        assert!(
            (train["epoch/loss"][0].1 - (10.0 + 60.0 + 40.0) / 50.0).abs() < 1e-6,
            "weighted by batch size"
        );
        assert!((train["epoch/learning_rate"][0].1 - 0.2).abs() < 1e-7);
        assert_eq!(train.len(), 4, "{:?}", train.keys());
        let valid = crate::insight::tb::read_scalars(&dir.path().join(TB_DIR).join("valid"))
            .expect("valid");
        assert_eq!(valid["step/loss"], vec![(3, 3.0), (4, 6.0)]);
        assert_eq!(valid["epoch/loss"], vec![(2, 4.75)]);
    }

    #[test]
    fn sample_grid_draws_one_image_per_epoch() {
        let dir = tempfile::tempdir().expect("tmp");
        let writer: SharedWriter =
            Arc::new(Mutex::new(EventWriter::create(dir.path()).expect("writer")));
        let set = ImageSet {
            images: vec![0u8; 3 * 3 * 4 * 4],
            labels: vec![0, 1, 1],
            classes: vec!["a".into(), "b".into()],
            channels: 3,
            height: 4,
            width: 4,
            own_sizes: None,
            lazy: None,
        };
        let mut grid = SampleGrid::new(Arc::new(set), 2, writer.clone(), 5);
        let device = burn::tensor::Device::flex();
        let logits =
            Logits(Tensor::<2>::from_floats([[2.0, 0.0], [3.0, 0.0], [0.0, 1.0]], &device));
        let meta = MetricMetadata {
            progress: burn::data::dataloader::Progress {
                items_processed: 3,
                items_total: 3,
                unit: None,
            },
            iteration: Some(1),
            lr: None,
        };
        let first = grid.update(&logits, &meta).expect("update");
        assert_eq!(first.formatted, "1/2 right");
        grid.update(&logits, &meta).expect("second batch draws nothing");
        grid.clear();
        grid.update(&logits, &meta).expect("next epoch");
        writer.lock().expect("lock").flush().expect("flush");
        let path = writer.lock().expect("lock").path().to_path_buf();
        let images: Vec<(i64, u32)> = crate::insight::tb::read_events(&path)
            .expect("read")
            .into_iter()
            .flat_map(|e| {
                e.values.into_iter().filter_map(move |(_, v)| {
                    if let crate::insight::tb::Value::Image { width, png, .. } = v {
                        assert!(image::load_from_memory(&png).is_ok());
                        Some((e.step, width))
                    } else {
                        None
                    }
                })
            })
            .collect();
        assert_eq!(images, vec![(5, 2 * 120 + 10), (6, 2 * 120 + 10)], "two tiles: two columns");
    }
}
