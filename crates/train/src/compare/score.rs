//! What a finished run scored, read from the files it wrote: its training and validation
//! metric side by side (over- and underfitting show as their gap).

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::setup::Kind;
use crate::insight::tb::read_scalars;
use crate::insight::tb_logger::TB_DIR;
use crate::run;
use crate::tasks::word2vec::words::{Embedding, analogies, similarity};

/// The word-vector benchmarks a word2vec point is scored on (word2vec has no validation split).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WordBench {
    pub analogies: Option<std::path::PathBuf>,
    pub similarity: Option<std::path::PathBuf>,
}

/// The metric a comparison ranks by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Image classifiers: accuracy in %, higher is better.
    Accuracy,
    /// Character models: cross-entropy in nats per character, lower is better.
    Loss,
    /// word2vec: analogy accuracy in % (3CosAdd over the questions covered).
    AnalogyAccuracy,
    /// word2vec: Spearman ρ of cosine similarity against human scores.
    SimilarityRho,
}

impl Metric {
    pub fn for_kind(kind: Kind, words: &WordBench) -> Metric {
        match kind {
            Kind::Image => Metric::Accuracy,
            Kind::Charlm => Metric::Loss,
            Kind::Word2vec if words.analogies.is_some() => Metric::AnalogyAccuracy,
            Kind::Word2vec => Metric::SimilarityRho,
        }
    }

    pub fn higher_is_better(self) -> bool {
        self != Metric::Loss
    }

    /// Column headings: (train, validation).
    pub fn headings(self) -> (&'static str, &'static str) {
        match self {
            Metric::Accuracy => ("train acc %", "valid acc %"),
            Metric::Loss => ("train loss", "valid loss"),
            Metric::AnalogyAccuracy => ("train loss", "analogy %"),
            Metric::SimilarityRho => ("train loss", "similarity ρ"),
        }
    }

    /// Is `a` better than `b`?
    pub fn better(self, a: f64, b: f64) -> bool {
        if self.higher_is_better() { a > b } else { a < b }
    }
}

/// A run's scores.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The training metric: image classifiers, the final model on up to 5,000 training images
    /// (at most 64 MB of them; no augmentation); character models, the last epoch's loss;
    /// word2vec, its training loss.
    pub train: Option<f64>,
    /// The ranking metric on the validation split (the final model's).
    pub valid: Option<f64>,
    /// Validation loss, where the metric is not the loss itself.
    pub valid_loss: Option<f64>,
    /// word2vec with both benchmarks: the similarity ρ beside the analogy accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
    pub train_seconds: Option<f64>,
}

fn read_json(path: &Path) -> Result<Json> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

fn get(v: &Json, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// The last epoch's value of `metric` in the run's TensorBoard `split` logs.
fn last_epoch(dir: &Path, split: &str, metric: &str) -> Option<f64> {
    let scalars = read_scalars(&dir.join(TB_DIR).join(split)).ok()?;
    scalars.get(&format!("epoch/{metric}"))?.last().map(|p| p.1)
}

/// Reads a finished run's scores.
pub fn read(dir: &Path, metric: Metric, words: &WordBench) -> Result<Score> {
    let m = read_json(&dir.join(run::METRICS_FILE))?;
    let seconds = get(&m, &["train_seconds"]);
    Ok(match metric {
        Metric::Accuracy => Score {
            // The final model on a training sample without augmentation; else (older runs) the
            // last epoch's running accuracy (TensorBoard's is in %).
            train: get(&m, &["train_sample", "accuracy"])
                .map(|a| 100.0 * a)
                .or_else(|| last_epoch(dir, "train", "accuracy")),
            valid: get(&m, &["valid", "accuracy"]).map(|a| 100.0 * a),
            valid_loss: get(&m, &["valid", "loss"]),
            similarity: None,
            train_seconds: seconds,
        },
        Metric::Loss => Score {
            train: last_epoch(dir, "train", "loss"),
            valid: get(&m, &["valid_loss"]),
            valid_loss: None,
            similarity: None,
            train_seconds: seconds,
        },
        Metric::AnalogyAccuracy | Metric::SimilarityRho => {
            let e = Embedding::load(dir)?;
            let analogy = match &words.analogies {
                Some(p) => {
                    let (_, mut all, syn) = analogies(&e, p)?;
                    all.add(&syn);
                    Some(100.0 * all.accuracy())
                }
                None => None,
            };
            let rho = match &words.similarity {
                Some(p) => Some(similarity(&e, p)?.0),
                None => None,
            };
            Score {
                train: get(&m, &["final_loss"]),
                valid: if metric == Metric::AnalogyAccuracy { analogy } else { rho },
                valid_loss: None,
                similarity: if metric == Metric::AnalogyAccuracy { rho } else { None },
                train_seconds: seconds,
            }
        }
    })
}

/// Mean and sample standard deviation (n − 1; 0 for one value) of the values present.
pub fn mean_std(values: impl IntoIterator<Item = Option<f64>>) -> Option<(f64, f64)> {
    let v: Vec<f64> = values.into_iter().flatten().collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Some((mean, var.sqrt()))
}

/// A cell: the value to `digits` decimals, or `-`.
pub fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std_by_hand() {
        // 70, 72, 74, 76: mean 73; squared deviations 9+1+1+9 = 20; 20/3 → std 2.5820.
        let (m, s) = mean_std([Some(70.0), Some(72.0), None, Some(74.0), Some(76.0)]).expect("ms");
        assert!((m - 73.0).abs() < 1e-12, "{m}");
        assert!((s - (20.0f64 / 3.0).sqrt()).abs() < 1e-12, "{s}");
        assert_eq!(mean_std([Some(5.0)]), Some((5.0, 0.0)));
        assert_eq!(mean_std([None]), None);
    }

    #[test]
    fn metrics_rank_their_way() {
        assert!(Metric::Accuracy.better(0.9, 0.8));
        assert!(Metric::Loss.better(1.2, 1.5));
        let w = WordBench { analogies: None, similarity: Some("s.tsv".into()) };
        assert_eq!(Metric::for_kind(Kind::Word2vec, &w), Metric::SimilarityRho);
    }
}
