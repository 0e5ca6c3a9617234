//! Metrics burn-train does not ship: training throughput in images/s, and a loss that stops
//! training as soon as it is not finite.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::tensor::TensorReadError;
use burn::train::Interrupter;
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    LossInput, LossMetric, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};

/// Items (images) per second over the epoch so far, or a unit per item (characters per
/// window of a language model).
#[derive(Clone)]
pub struct ThroughputMetric {
    name: MetricName,
    state: NumericMetricState,
    start: Option<(Instant, usize)>,
    unit: &'static str,
    per_item: f64,
}

impl Default for ThroughputMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl ThroughputMetric {
    pub fn new() -> Self {
        Self::per_item("img/s", 1.0)
    }

    /// `per_item` units in each item: `per_item("chars/s", seq_len)`.
    pub fn per_item(unit: &'static str, per_item: f64) -> Self {
        Self {
            name: Arc::new("Throughput".to_string()),
            state: NumericMetricState::default(),
            start: None,
            unit,
            per_item,
        }
    }
}

impl Metric for ThroughputMetric {
    type Input = ();

    fn update(
        &mut self,
        _: &(),
        metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let done = metadata.progress.items_processed;
        let rate = match self.start {
            // The first batch includes start-up costs; measure from its end.
            None => {
                self.start = Some((Instant::now(), done));
                0.0
            }
            Some((t0, n0)) => {
                (done - n0) as f64 * self.per_item / t0.elapsed().as_secs_f64().max(1e-9)
            }
        };
        self.state.update(rate, 1);
        Ok(self.state.compute_update(FormatOptions::new(self.name()).unit(self.unit).precision(0)))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.state.compute_final(FormatOptions::new(self.name()).unit(self.unit).precision(0)))
    }

    fn clear(&mut self) {
        self.start = None;
        self.state.reset();
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes { unit: Some(self.unit.to_string()), higher_is_better: true }.into()
    }
}

impl Numeric for ThroughputMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }
    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }
    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}

/// burn-train's training loss, which also stops training as soon as the loss is NaN or
/// infinite and remembers where. It keeps the name "Loss", so the dashboard shows one loss.
#[derive(Clone)]
pub struct GuardedLoss {
    inner: LossMetric,
    interrupter: Interrupter,
    pub tripped: Arc<Mutex<Option<String>>>,
}

impl GuardedLoss {
    pub fn new(interrupter: Interrupter) -> Self {
        Self { inner: LossMetric::new(), interrupter, tripped: Arc::new(Mutex::new(None)) }
    }

    /// Why training was stopped, if it was.
    pub fn reason(&self) -> Option<String> {
        self.tripped.lock().ok().and_then(|t| t.clone())
    }
}

impl Metric for GuardedLoss {
    type Input = LossInput;

    fn update(
        &mut self,
        input: &LossInput,
        metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let entry = self.inner.update(input, metadata)?;
        let loss = match self.inner.value() {
            Some(NumericEntry::Value(v)) | Some(NumericEntry::Final(v)) => v,
            Some(NumericEntry::Aggregated { aggregated_value, .. }) => aggregated_value,
            None => 0.0,
        };
        if !loss.is_finite() {
            let at = format!(
                "loss became {loss} at iteration {} ({} of {} items into the epoch)",
                metadata.iteration.unwrap_or(0),
                metadata.progress.items_processed,
                metadata.progress.items_total
            );
            if let Ok(mut t) = self.tripped.lock()
                && t.is_none()
            {
                *t = Some(at.clone());
            }
            self.interrupter.stop(Some(&at));
        }
        Ok(entry)
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        self.inner.compute()
    }

    fn clear(&mut self) {
        self.inner.clear()
    }

    fn name(&self) -> MetricName {
        self.inner.name()
    }

    fn attributes(&self) -> MetricAttributes {
        self.inner.attributes()
    }
}

impl Numeric for GuardedLoss {
    fn value(&self) -> Option<NumericEntry> {
        self.inner.value()
    }
    fn running_value(&self) -> Option<NumericEntry> {
        self.inner.running_value()
    }
    fn final_value(&self) -> NumericEntry {
        self.inner.final_value()
    }
}
