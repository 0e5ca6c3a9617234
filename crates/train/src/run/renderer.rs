//! Plain-text progress for when stdout is not a terminal (CI, pipes, log files): burn-train's
//! own plain renderer prints no metric values, so this one prints a line every `log_every`
//! steps and a train/valid summary per epoch.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};

#[derive(Default)]
struct SplitStats {
    /// metric name -> (weighted sum, weight, last value, final value)
    values: BTreeMap<String, (f64, f64, f64, Option<f64>)>,
}

impl SplitStats {
    fn add(&mut self, name: &str, entry: &NumericEntry) {
        let v = self.values.entry(name.to_string()).or_insert((0.0, 0.0, f64::NAN, None));
        match entry {
            NumericEntry::Value(x) => {
                v.0 += x;
                v.1 += 1.0;
                v.2 = *x;
            }
            NumericEntry::Aggregated { aggregated_value, count } => {
                v.0 += aggregated_value * *count as f64;
                v.1 += *count as f64;
                v.2 = *aggregated_value;
            }
            NumericEntry::Final(x) => v.3 = Some(*x),
        }
    }

    fn summary(&self, running: bool, rate_unit: &str) -> String {
        self.values
            .iter()
            .map(|(name, (sum, w, last, fin))| {
                let value = match (running, fin) {
                    (false, Some(f)) => *f,
                    _ if name == "Learning Rate" || name == "Throughput" => *last,
                    _ if *w > 0.0 => sum / w,
                    _ => f64::NAN,
                };
                format_metric(name, value, rate_unit)
            })
            .collect::<Vec<_>>()
            .join("  ")
    }
}

fn format_metric(name: &str, value: f64, rate_unit: &str) -> String {
    let short = match name {
        "Loss" => "loss".to_string(),
        "Accuracy" => "acc".to_string(),
        "Learning Rate" => "lr".to_string(),
        "Throughput" => rate_unit.to_string(),
        other => other.to_lowercase(),
    };
    if short == "acc" {
        format!("{short} {value:.2}%")
    } else if name == "Throughput" {
        format!("{short} {value:.0}")
    } else if short == "lr" {
        format!("{short} {value:.3e}")
    } else if value.abs() >= 100.0 {
        format!("{short} {value:.0}")
    } else {
        format!("{short} {value:.4}")
    }
}

pub struct PlainRenderer {
    names: HashMap<MetricId, String>,
    train: SplitStats,
    valid: SplitStats,
    split: String,
    epoch: usize,
    total_epochs: usize,
    steps: usize,
    items_total: usize,
    log_every: usize,
    started: Instant,
    /// What the loader's items are ("images", "windows") and the throughput's unit.
    items: &'static str,
    rate_unit: &'static str,
}

impl PlainRenderer {
    pub fn new(log_every: usize) -> Self {
        Self {
            names: HashMap::new(),
            train: SplitStats::default(),
            valid: SplitStats::default(),
            split: String::new(),
            epoch: 1,
            total_epochs: 0,
            steps: 0,
            items_total: 0,
            log_every,
            started: Instant::now(),
            items: "images",
            rate_unit: "img/s",
        }
    }

    /// Name the loader's items (and the throughput in characters for text windows).
    pub fn unit(mut self, items: &'static str) -> Self {
        self.items = items;
        if items == "windows" {
            self.rate_unit = "chars/s";
        }
        self
    }

    fn record(&mut self, valid: bool, state: MetricState) {
        if let MetricState::Numeric(entry, Some(value)) = state {
            let name = self
                .names
                .get(&entry.metric_id)
                .cloned()
                .unwrap_or_else(|| format!("{:?}", entry.metric_id));
            if valid { &mut self.valid } else { &mut self.train }.add(&name, &value);
        }
    }
}

impl MetricsRendererTraining for PlainRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.record(false, state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record(true, state);
    }
}

impl MetricsRendererEvaluation for PlainRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl TrainingProgressLogger for PlainRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch;
        if starting_epoch > 1 {
            println!("resuming at epoch {starting_epoch}/{total_epochs}");
        }
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.split = split.to_string();
        self.steps = 0;
        self.items_total = total_items;
        if split == "train" {
            self.train = SplitStats::default();
            self.valid = SplitStats::default();
            self.started = Instant::now();
        }
    }

    fn update_split(&mut self, items_processed: usize) {
        self.steps += 1;
        if self.split == "train" && self.log_every > 0 && self.steps.is_multiple_of(self.log_every)
        {
            println!(
                "epoch {}/{} step {} ({items_processed}/{} {})  {}",
                self.epoch,
                self.total_epochs,
                self.steps,
                self.items_total,
                self.items,
                self.train.summary(true, self.rate_unit)
            );
        }
    }

    fn end_split(&mut self) {
        if self.split == "valid" {
            println!(
                "epoch {}/{}  train: {}  |  valid: {}  |  {:.1}s",
                self.epoch,
                self.total_epochs,
                self.train.summary(false, self.rate_unit),
                self.valid.summary(false, self.rate_unit),
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for PlainRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, _name: &str, _total_items: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for PlainRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name.to_string());
    }
}
