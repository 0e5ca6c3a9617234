//! Inverted dropout. On CPU backends the mask comes from a fast counter-based generator on the
//! host: Burn's `Dropout` draws a Bernoulli sample per element from ChaCha, which cost ~10% of
//! an MLP training step on flex. On other backends it is Burn's arithmetic. Either way the
//! randomness derives from the backend RNG, so `Device::seed` makes it reproducible.

use burn::module::Module;
use burn::tensor::{Distribution, Tensor, TensorData};

#[derive(Module, Debug)]
pub struct Dropout {
    prob: f64,
    /// Draw masks on the host (CPU backends, where tensor data is plain memory).
    #[module(skip)]
    host: bool,
}

impl Dropout {
    /// `prob` in [0, 1) (checked by the caller's config validation).
    pub fn new(prob: f64, host: bool) -> Self {
        Self { prob, host }
    }

    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        // Only active while training: `Module::valid` moves tensors off the autodiff device.
        if self.prob == 0.0 || !input.device().is_autodiff() {
            return input;
        }
        let keep = 1.0 - self.prob;
        if !self.host {
            let mask = input.random_like(Distribution::Bernoulli(keep));
            return input * mask * (1.0 / keep);
        }
        let device = input.device();
        let shape = input.shape();
        // Two draws from the backend RNG seed this call's mask.
        let seed: Vec<f32> =
            Tensor::<1>::random([2], Distribution::Uniform(0.0, 16_777_216.0), &device)
                .into_data()
                .try_to_vec()
                .unwrap_or_else(|_| vec![0.0, 0.0]);
        let seed = ((seed[0] as u64) << 24) ^ (seed[1] as u64);
        let mask = host_mask(shape.num_elements(), keep, seed);
        input * Tensor::<D>::from_data(TensorData::new(mask, shape), &device)
    }
}

/// `n` values, each `1/keep` with probability `keep` and 0 otherwise (SplitMix64 stream).
pub fn host_mask(n: usize, keep: f64, seed: u64) -> Vec<f32> {
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = (1.0 / keep) as f32;
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = next();
        for half in [r & 0xFFFF_FFFF, r >> 32] {
            if out.len() < n {
                out.push(if half < threshold { scale } else { 0.0 });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn mask_has_the_right_rate_and_scale() {
        let _rng = crate::device_rng_lock();
        let m = host_mask(100_001, 0.7, 42);
        assert_eq!(m.len(), 100_001);
        let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / m.len() as f64;
        assert!((kept - 0.7).abs() < 0.01, "kept {kept}");
        assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        assert_ne!(host_mask(64, 0.5, 1), host_mask(64, 0.5, 2));
    }

    fn apply(host: bool, seed: u64, device: &Device) -> Vec<f32> {
        device.seed(seed);
        let x = Tensor::<2>::ones([32, 50], device);
        Dropout::new(0.5, host).forward(x).into_data().try_to_vec().expect("f32")
    }

    #[test]
    fn host_and_tensor_paths_agree_in_law_and_are_seeded() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex().autodiff();
        for host in [true, false] {
            let a = apply(host, 3, &d);
            assert_eq!(a, apply(host, 3, &d), "same seed, same mask (host {host})");
            assert_ne!(a, apply(host, 4, &d));
            let kept = a.iter().filter(|&&v| v != 0.0).count();
            assert!((650..950).contains(&kept), "host {host}: kept {kept} of 1600");
            assert!(a.iter().all(|&v| v == 0.0 || (v - 2.0).abs() < 1e-6));
        }
    }

    #[test]
    fn identity_outside_training() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let x = Tensor::<2>::ones([4, 4], &d);
        let y: Vec<f32> = Dropout::new(0.5, true).forward(x).into_data().try_to_vec().expect("f32");
        assert!(y.iter().all(|&v| v == 1.0));
    }
}
