//! burnlab's fused CPU operations as Burn backend extensions: each runs a `burnlab-kernels`
//! kernel on flex (a custom forward and, on `Autodiff<Flex>`, a hand-registered backward), and
//! its dispatcher falls back to Burn's own layer on every other backend or configuration. The
//! models in burnlab-models call the dispatchers; the layers stay Burn's (`Conv2d`,
//! `BatchNorm`, `Linear`), with the same records. Safe code only: the kernels crate holds the
//! `unsafe`.
#![forbid(unsafe_code)]

pub mod batch_norm;
pub mod conv;
pub mod linear;
pub mod matmul;
pub mod pool;
pub mod recurrence;
pub mod residual;
pub mod slices;

pub use recurrence::{gru_sequence, lstm_sequence, rnn_sequence};

use burn::backend::Flex;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};

/// Whether the fused operations run on flex: `BURNLAB_FUSED=0` turns them off (Burn's own
/// layers everywhere), to measure the kernels against the layers they replace.
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("BURNLAB_FUSED").map_or(true, |v| v.trim() != "0"))
}

/// A contiguous f32 copy-free view where possible.
pub(crate) fn contiguous(t: &FlexTensor) -> FlexTensor {
    let t = t.to_contiguous();
    assert_eq!(t.dtype(), DType::F32, "fused operations are f32 only");
    t
}

pub(crate) fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().unwrap_or_else(|| unreachable!("made contiguous f32 above"))
}

pub(crate) fn flex(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.to_vec()))
}

/// A hand-written backward's gradients, one (values, shape) per parent in the parents' order:
/// each registered for its parent where that parent is tracked (`Some`) and the gradient was
/// computed (`Some`).
pub(crate) fn register_grads<const N: usize>(
    grads: &mut Gradients,
    parents: [Option<NodeId>; N],
    parts: [Option<(Vec<f32>, Vec<usize>)>; N],
) {
    for (node, part) in parents.into_iter().zip(parts) {
        if let (Some(node), Some((data, shape))) = (node, part) {
            grads.register::<Flex>(node, flex(data, &shape));
        }
    }
}

/// Tests that draw from the flex device's RNG (shared by the whole process) hold this, so that a
/// test which seeds it and expects a repeatable draw is not interleaved with another's draws.
#[cfg(test)]
pub(crate) fn device_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Helpers shared by the fused operations' tests.
#[cfg(test)]
pub(crate) mod testing {
    use burn::tensor::Tensor;

    /// A tensor's values.
    pub fn vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32")
    }

    /// Every value of `a` within `tol` × max(1, largest |b|) of `b`'s.
    pub fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * scale, "{what}[{i}]: fused {x} vs reference {y}");
        }
    }
}
