//! Progress for word2vec training: burn-train's terminal dashboard when stdout is a terminal,
//! plain lines otherwise.
//!
//! Why not the Learner: word2vec's step is a sparse update of the rows a batch touches (or, on
//! the CPU, Hogwild threads updating rows in place); the Learner's optimizer step is dense over
//! whole parameters, O(vocab·dim) per step. So the training loop is our own and this module
//! feeds burn-train's renderer (metrics, progress through the corpus) from the shared
//! [`Progress`] counters, a few times a second.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use burn::train::Interrupter;
use burn::train::metric::{
    MetricAttributes, MetricDefinition, MetricEntry, MetricId, NumericAttributes, NumericEntry,
    SerializedEntry,
};
use burn::train::renderer::{MetricState, MetricsRenderer, tui::TuiMetricsRendererWrapper};

use crate::insight::tb_logger::SharedWriter;
use crate::tasks::word2vec::native::Progress;

const METRICS: [(&str, bool); 3] = [("Loss", false), ("Learning Rate", false), ("Words/s", true)];

/// Writes the counters to TensorBoard once a second: `step/*` tags with the number of words
/// processed as the step.
struct TbTicker {
    writer: SharedWriter,
    last: (u64, Instant),
}

impl TbTicker {
    /// `last`: the run has ended; write the final point whatever the time since the previous.
    fn tick(&mut self, progress: &Progress, last: bool) {
        if !last && self.last.1.elapsed() < Duration::from_secs(1) {
            return;
        }
        let words = progress.words.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (words - self.last.0.min(words)) as f64
            / now.duration_since(self.last.1).as_secs_f64().max(1e-9);
        self.last = (words, now);
        let pairs = progress.loss_pairs.load(Ordering::Relaxed);
        let Ok(mut w) = self.writer.lock() else {
            return;
        };
        let mut values = vec![
            ("step/learning_rate", progress.alpha_nano.load(Ordering::Relaxed) as f64 / 1e9),
            ("step/words_per_s", rate),
        ];
        if pairs > 0 {
            values.push((
                "step/loss",
                progress.loss_milli.load(Ordering::Relaxed) as f64 / 1e3 / pairs as f64,
            ));
        }
        for (tag, v) in values {
            if let Err(e) = w.scalar(tag, words as i64, v) {
                tracing::warn!("TensorBoard log: {e:#}");
            }
        }
        if last {
            let _ = w.flush();
        }
    }
}

/// Drives the dashboard from a monitor thread until `finished` is set.
pub struct Dashboard {
    renderer: Option<Box<dyn MetricsRenderer>>,
    tb: Option<TbTicker>,
    interrupter: Interrupter,
    ids: Vec<MetricId>,
    words_per_epoch: u64,
    epochs: usize,
}

impl Dashboard {
    /// The terminal dashboard if stdout is a terminal, else none (plain lines are printed by
    /// the caller at each epoch).
    pub fn new(words_per_epoch: u64, first_epoch: usize, epochs: usize) -> Self {
        let interrupter = Interrupter::new();
        let ids: Vec<MetricId> =
            METRICS.iter().map(|(n, _)| MetricId::new(Arc::new(n.to_string()))).collect();
        let renderer: Option<Box<dyn MetricsRenderer>> = if std::io::stdout().is_terminal() {
            let mut r: Box<dyn MetricsRenderer> =
                Box::new(TuiMetricsRendererWrapper::new(interrupter.clone(), None));
            for ((name, higher), id) in METRICS.iter().zip(&ids) {
                r.register_metric(MetricDefinition {
                    metric_id: id.clone(),
                    name: Arc::new(name.to_string()),
                    description: None,
                    attributes: MetricAttributes::Numeric(NumericAttributes {
                        unit: None,
                        higher_is_better: *higher,
                    }),
                });
            }
            r.start(epochs, first_epoch + 1, Some(words_per_epoch as usize), Some("word2vec"));
            r.start_split("train", words_per_epoch as usize);
            Some(r)
        } else {
            None
        };
        Self { renderer, tb: None, interrupter, ids, words_per_epoch, epochs }
    }

    /// Also write the counters to a TensorBoard event file.
    pub fn tensorboard(mut self, writer: SharedWriter, words_done: u64) -> Self {
        self.tb = Some(TbTicker { writer, last: (words_done, Instant::now()) });
        self
    }

    /// Stopping it stops training (the dashboard's `q`, or a signal).
    pub fn interrupter(&self) -> Interrupter {
        self.interrupter.clone()
    }

    pub fn is_terminal(&self) -> bool {
        self.renderer.is_some()
    }

    /// Push the counters to the dashboard until `finished`; sets `progress.stop` when the user
    /// quits from the dashboard.
    pub fn run(&mut self, progress: &Progress, finished: &std::sync::atomic::AtomicBool) {
        let Some(r) = self.renderer.as_mut() else {
            return self.run_plain(progress, finished);
        };
        let mut epoch = u64::MAX;
        let (mut last_words, mut last_t) = (progress.words.load(Ordering::Relaxed), Instant::now());
        while !finished.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(250));
            if let Some(tb) = self.tb.as_mut() {
                tb.tick(progress, false);
            }
            if self.interrupter.should_stop() {
                progress.stop.store(true, Ordering::Relaxed);
            }
            let words = progress.words.load(Ordering::Relaxed);
            let e = (words / self.words_per_epoch.max(1)).min(self.epochs as u64 - 1);
            if e != epoch {
                if epoch != u64::MAX {
                    r.end_split();
                    r.update_epoch(epoch as usize);
                    r.start_split("train", self.words_per_epoch as usize);
                }
                epoch = e;
            }
            r.update_split((words - e * self.words_per_epoch) as usize);
            let now = Instant::now();
            let rate =
                (words - last_words) as f64 / now.duration_since(last_t).as_secs_f64().max(1e-9);
            (last_words, last_t) = (words, now);
            let pairs = progress.loss_pairs.load(Ordering::Relaxed);
            let loss = (pairs > 0)
                .then(|| progress.loss_milli.load(Ordering::Relaxed) as f64 / 1e3 / pairs as f64);
            let alpha = progress.alpha_nano.load(Ordering::Relaxed) as f64 / 1e9;
            for (id, value, text) in [
                (&self.ids[0], loss, loss.map(|l| format!("{l:.4}"))),
                (&self.ids[1], Some(alpha), Some(format!("{alpha:.3e}"))),
                (&self.ids[2], Some(rate), Some(format!("{rate:.0}"))),
            ] {
                let Some(v) = value else { continue };
                let text = text.unwrap_or_default();
                let entry = MetricEntry::new(id.clone(), SerializedEntry::new(text.clone(), text));
                r.update_train(MetricState::Numeric(entry, Some(NumericEntry::Value(v))));
            }
        }
        if let Some(tb) = self.tb.as_mut() {
            tb.tick(progress, true);
        }
    }

    /// Off a terminal: a line every 10 seconds, so a long epoch is never silent.
    fn run_plain(&mut self, progress: &Progress, finished: &std::sync::atomic::AtomicBool) {
        let start = Instant::now();
        let first = progress.words.load(Ordering::Relaxed);
        let mut next = Duration::from_secs(10);
        while !finished.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(tb) = self.tb.as_mut() {
                tb.tick(progress, false);
            }
            if self.interrupter.should_stop() {
                progress.stop.store(true, Ordering::Relaxed);
            }
            if start.elapsed() < next {
                continue;
            }
            next += Duration::from_secs(10);
            let words = progress.words.load(Ordering::Relaxed);
            let total = self.words_per_epoch * self.epochs as u64;
            let pairs = progress.loss_pairs.load(Ordering::Relaxed);
            let loss =
                progress.loss_milli.load(Ordering::Relaxed) as f64 / 1e3 / pairs.max(1) as f64;
            println!(
                "{:.1}% of {} words  loss {loss:.4}  lr {:.3e}  {:.0} words/s",
                100.0 * words as f64 / total.max(1) as f64,
                total,
                progress.alpha_nano.load(Ordering::Relaxed) as f64 / 1e9,
                (words - first) as f64 / start.elapsed().as_secs_f64()
            );
        }
        if let Some(tb) = self.tb.as_mut() {
            tb.tick(progress, true);
        }
    }

    /// Close the dashboard (restores the terminal) before the summary is printed.
    pub fn close(mut self) {
        if let Some(mut r) = self.renderer.take() {
            r.end_split();
            r.end();
            let _ = r.on_train_end(None);
            drop(r);
        }
    }
}
