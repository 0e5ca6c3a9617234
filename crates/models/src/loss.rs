use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

/// Classification loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Softmax cross-entropy.
    #[default]
    Ce,
    /// Multiclass SVM hinge loss with margin 1 (Weston–Watkins, as in CS231n).
    Hinge,
}

impl LossKind {
    /// Mean loss over the batch. `logits`: [batch, classes]; `targets`: [batch].
    pub fn forward(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        match self {
            LossKind::Ce => {
                CrossEntropyLossConfig::new().init(&logits.device()).forward(logits, targets)
            }
            LossKind::Hinge => hinge_loss(logits, targets, 1.0),
        }
    }

    /// As [`forward`](Self::forward), with label smoothing `epsilon` for cross-entropy (the
    /// target distribution is (1 − ε)·onehot + ε/K, as PyTorch's `label_smoothing`).
    pub fn forward_smoothed(
        &self,
        logits: Tensor<2>,
        targets: Tensor<1, Int>,
        epsilon: f64,
    ) -> Tensor<1> {
        match self {
            LossKind::Ce if epsilon > 0.0 => CrossEntropyLossConfig::new()
                .with_smoothing(Some(epsilon as f32))
                .init(&logits.device())
                .forward(logits, targets),
            _ => self.forward(logits, targets),
        }
    }
}

impl std::str::FromStr for LossKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ce" => Ok(Self::Ce),
            "hinge" => Ok(Self::Hinge),
            other => Err(format!("unknown loss `{other}` (expected ce or hinge)")),
        }
    }
}

/// Multiclass hinge loss: mean over the batch of `sum_{j != y} max(0, s_j - s_y + margin)`.
pub fn hinge_loss(logits: Tensor<2>, targets: Tensor<1, Int>, margin: f64) -> Tensor<1> {
    let [batch, _] = logits.dims();
    let correct = logits.clone().gather(1, targets.unsqueeze_dim(1));
    let margins = (logits - correct).add_scalar(margin).clamp_min(0.0);
    // The true class contributes exactly `margin`; remove it rather than masking.
    margins.sum().div_scalar(batch as f64).sub_scalar(margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn hinge_known_answer() {
        let _rng = crate::device_rng_lock();
        // CS231n example: scores [3.2, 5.1, -1.7], true class 0 -> 2.9 + 0 = 2.9.
        let d = device();
        let logits = Tensor::<2>::from_data(TensorData::from([[3.2f32, 5.1, -1.7]]), &d);
        let targets = Tensor::<1, Int>::from_data(TensorData::from([0i64]), &d);
        let loss: f32 = hinge_loss(logits, targets, 1.0).into_scalar::<f32>();
        assert!((loss - 2.9).abs() < 1e-5, "loss {loss}");
    }

    #[test]
    fn hinge_zero_when_margin_met() {
        let _rng = crate::device_rng_lock();
        let d = device();
        let logits =
            Tensor::<2>::from_data(TensorData::from([[5.0f32, 1.0, 2.0], [0.0, 0.0, 9.0]]), &d);
        let targets = Tensor::<1, Int>::from_data(TensorData::from([0i64, 2]), &d);
        let loss: f32 = hinge_loss(logits, targets, 1.0).into_scalar::<f32>();
        assert!(loss.abs() < 1e-6, "loss {loss}");
    }

    #[test]
    fn hinge_gradient_matches_finite_differences() {
        let _rng = crate::device_rng_lock();
        let d = device().autodiff();
        let values: Vec<f32> = vec![0.3, -1.2, 0.8, 0.1, 2.0, 1.7, -0.4, 0.05, 0.9, 1.1, -0.3, 0.6];
        let targets_v = [2i64, 0, 1];
        let targets = Tensor::<1, Int>::from_data(TensorData::from(targets_v), &d);
        let logits =
            Tensor::<2>::from_data(TensorData::new(values.clone(), [3, 4]), &d).require_grad();
        let loss = hinge_loss(logits.clone(), targets.clone(), 1.0);
        let grads = loss.backward();
        let g: Vec<f32> = logits.grad(&grads).expect("grad").into_data().try_to_vec().expect("f32");

        let plain = Device::flex();
        let eval = |v: &[f32]| -> f64 {
            let t = Tensor::<2>::from_data(TensorData::new(v.to_vec(), [3, 4]), &plain);
            let y = Tensor::<1, Int>::from_data(TensorData::from(targets_v), &plain);
            let l: f32 = hinge_loss(t, y, 1.0).into_scalar::<f32>();
            l as f64
        };
        let eps = 1e-2f32;
        for i in 0..values.len() {
            let mut p = values.clone();
            p[i] += eps;
            let mut m = values.clone();
            m[i] -= eps;
            let fd = (eval(&p) - eval(&m)) / (2.0 * eps as f64);
            assert!((fd - g[i] as f64).abs() < 1e-3, "index {i}: fd {fd} vs autodiff {}", g[i]);
        }
    }

    #[test]
    fn cross_entropy_uniform_logits_is_log_classes() {
        let _rng = crate::device_rng_lock();
        let d = device();
        let logits = Tensor::<2>::zeros([4, 10], &d);
        let targets = Tensor::<1, Int>::from_data(TensorData::from([0i64, 3, 5, 9]), &d);
        let loss: f32 = LossKind::Ce.forward(logits, targets).into_scalar::<f32>();
        assert!((loss - (10f32).ln()).abs() < 1e-5);
    }

    #[test]
    fn label_smoothing_known_answer() {
        let _rng = crate::device_rng_lock();
        // logits [ln 1, ln 2, ln 5] → p = [0.125, 0.25, 0.625]; true class 2, ε = 0.3:
        // target [0.1, 0.1, 0.8]; loss = −(0.1 ln 0.125 + 0.1 ln 0.25 + 0.8 ln 0.625).
        let d = device();
        let logits = Tensor::<2>::from_data(TensorData::from([[0.0f32, 2f32.ln(), 5f32.ln()]]), &d);
        let targets = Tensor::<1, Int>::from_data(TensorData::from([2i64]), &d);
        let expected = -(0.1 * 0.125f64.ln() + 0.1 * 0.25f64.ln() + 0.8 * 0.625f64.ln());
        let loss: f32 =
            LossKind::Ce.forward_smoothed(logits.clone(), targets.clone(), 0.3).into_scalar();
        assert!((loss as f64 - expected).abs() < 1e-5, "{loss} vs {expected}");
        let plain: f32 = LossKind::Ce.forward_smoothed(logits, targets, 0.0).into_scalar();
        assert!((plain as f64 + 0.625f64.ln()).abs() < 1e-5, "{plain}");
    }
}
