//! Metrics burn-train does not ship: training throughput in images/s, and a guard that stops
//! training as soon as the loss is not finite.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::tensor::{Tensor, TensorReadError};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes, NumericEntry,
    SerializedEntry,
};
use burn::train::{ClassificationOutput, Interrupter};

/// Images per second over the epoch so far.
#[derive(Clone)]
pub struct ThroughputMetric {
    name: MetricName,
    state: NumericMetricState,
    start: Option<(Instant, usize)>,
}

impl ThroughputMetric {
    pub fn new() -> Self {
        Self { name: Arc::new("Throughput".to_string()), state: NumericMetricState::default(), start: None }
    }
}

impl Metric for ThroughputMetric {
    type Input = ();

    fn update(&mut self, _: &(), metadata: &MetricMetadata) -> Result<SerializedEntry, TensorReadError> {
        let done = metadata.progress.items_processed;
        let rate = match self.start {
            // The first batch includes start-up costs; measure from its end.
            None => {
                self.start = Some((Instant::now(), done));
                0.0
            }
            Some((t0, n0)) => (done - n0) as f64 / t0.elapsed().as_secs_f64().max(1e-9),
        };
        self.state.update(rate, 1);
        Ok(self.state.compute_update(FormatOptions::new(self.name()).unit("img/s").precision(0)))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.state.compute_final(FormatOptions::new(self.name()).unit("img/s").precision(0)))
    }

    fn clear(&mut self) {
        self.start = None;
        self.state.reset();
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes { unit: Some("img/s".to_string()), higher_is_better: true }.into()
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

/// Input of [`NonFiniteGuard`]: the batch loss.
pub struct GuardInput(Tensor<1>);

impl Adaptor<GuardInput> for ClassificationOutput {
    fn adapt(&self) -> GuardInput {
        GuardInput(self.loss.clone())
    }
}

/// Stops training when the loss becomes NaN or infinite, and remembers where.
#[derive(Clone)]
pub struct NonFiniteGuard {
    interrupter: Interrupter,
    pub tripped: Arc<Mutex<Option<String>>>,
}

impl NonFiniteGuard {
    pub fn new(interrupter: Interrupter) -> Self {
        Self { interrupter, tripped: Arc::new(Mutex::new(None)) }
    }
}

impl Metric for NonFiniteGuard {
    type Input = GuardInput;

    fn update(&mut self, input: &GuardInput, metadata: &MetricMetadata) -> Result<SerializedEntry, TensorReadError> {
        let loss = input.0.clone().into_data().try_to_vec::<f32>().ok().and_then(|v| v.first().copied()).unwrap_or(0.0);
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
        Ok(SerializedEntry::new(String::new(), String::new()))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(SerializedEntry::new(String::new(), String::new()))
    }

    fn clear(&mut self) {}

    fn name(&self) -> MetricName {
        Arc::new("non-finite guard".to_string())
    }
}
