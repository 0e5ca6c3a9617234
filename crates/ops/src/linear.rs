//! Inference-time linear layer (y = x·W + b) on the CPU backend (flex) through the kernels
//! crate's packed GEMM (`burnlab_kernels::linear`).
//!
//! Why: the `gemm` crate, which flex's matmul uses, ran the MLP's 256×3072×512 product at
//! 138–167 GFLOP/s on a Zen 4 with AVX-512 (PyTorch's MKL: 174), so MLP inference was at
//! 0.80–0.86× PyTorch's; where it runs: [`uses_kernel`]. Training keeps Burn's maths (x·W + b
//! and its gradients) with the products through [`crate::matmul`].

use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::nn::Linear;
use burn::tensor::{Device, Shape, Tensor};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use burnlab_kernels::linear::{BLOCK, PackedW, forward_packed};
use burnlab_kernels::{Cpu, Isa};

use crate::{contiguous, f32s, flex};

#[backend_extension(Flex, Autodiff)]
pub trait FusedLinear: Backend {
    /// x [M, K] · w [K, N] + bias [N].
    fn linear_forward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Whether inference goes through the kernel on this CPU: wherever it has vector tiles, except
/// AVX-512 where `gemm` has its AVX-512 kernels too ([`Isa::of_gemm`]). On a Zen 3 (AVX2), eval
/// passes of the MLP alternated run for run: this kernel 28.6–35.0k images/s, Burn's matmul
/// (the `gemm` crate, AVX2) 25.3–30.4k. On an Intel Xeon (Emerald Rapids) with gemm's AVX-512
/// kernels: the MLP's 128×3072·3072×512 at 56 GFLOP/s here against gemm's 95–97 (one core,
/// `just bench-kernels linear` with `--features gemm-avx512`, rounds alternated), eval passes
/// 31.9–35.2k against 32.2–40.5k images/s (4 runs alternated, `BURNLAB_FUSED=0` for gemm).
/// On the plain floor Burn's op, whose `gemm` picks its own ISA and keeps its vector kernels,
/// is the faster one. Under `BURNLAB_ISA=avx2` on an AVX-512 CPU the kernel runs (AVX2), as
/// the override asks.
pub fn uses_kernel(cpu: Cpu) -> bool {
    match cpu.isa() {
        Isa::Plain => false,
        Isa::Avx512 => Isa::of_gemm() != Isa::Avx512,
        _ => true,
    }
}

/// `layer.forward(x)`: through [`FusedLinear`] for inference on flex (no autodiff) when the
/// kernel covers the shape (N a multiple of 32, so that full vector loads stay inside W) and
/// wins on this CPU ([`uses_kernel`]); for training on flex, x·W through [`crate::matmul`] plus
/// the bias (the MLP on AVX2, Zen 5, 2 epochs, 3 runs alternated: 16.8–17.1k → 17.4–17.7k
/// images/s, test accuracy unchanged); Burn's own op everywhere else.
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    let device = x.device();
    let [_, n] = layer.weight.dims();
    if device == Device::flex()
        && !device.is_autodiff()
        && n % BLOCK == 0
        && crate::enabled()
        && uses_kernel(Cpu::current())
    {
        let bias =
            layer.bias.as_ref().map(|b| b.val()).unwrap_or_else(|| Tensor::zeros([n], &device));
        return Tensor::from_dispatch(<Dispatch as FusedLinear>::linear_forward(
            x.into_dispatch(),
            layer.weight.val().into_dispatch(),
            bias.into_dispatch(),
        ));
    }
    if device == Device::flex() && device.is_autodiff() && crate::enabled() {
        // Training: Burn's maths, with the products (and their gradients) written straight
        // into their outputs (see `crate::matmul`).
        let y = crate::matmul::matmul(x, layer.weight.val());
        return match &layer.bias {
            Some(b) => y + b.val().unsqueeze(),
            None => y,
        };
    }
    layer.forward(x)
}

/// Packed weights kept between calls inside [`with_packed_weights`], on the thread that opened
/// the scope (flex runs a model's ops on the calling thread; another thread's training or
/// validation never sees them): by the address and shape of the weight's storage, which the
/// entry keeps alive (a clone of the tensor), so that the address cannot be reused by other
/// data and the storage cannot change in place (flex copies a shared buffer before writing)
/// while the entry exists. `None` outside every scope.
#[derive(Default)]
struct PackedCache {
    depth: usize,
    map: Option<HashMap<StorageKey, (FlexTensor, Arc<PackedW>)>>,
}

/// The address and length of a contiguous weight's values, and K.
type StorageKey = (usize, usize, usize);

thread_local! {
    static PACKED: RefCell<PackedCache> = RefCell::new(PackedCache::default());
}

/// Runs `f` with the inference linear layers' weights packed once and kept until `f` returns,
/// instead of packed on every call: for evaluation passes (the MLP's first layer packs 6 MB of
/// W per batch otherwise). The cache holds a reference to each weight, released when the
/// outermost scope on this thread ends; an optimizer step inside the scope would copy the
/// weights it updates rather than update them in place, so keep training out of it.
pub fn with_packed_weights<R>(f: impl FnOnce() -> R) -> R {
    struct Scope;
    impl Drop for Scope {
        fn drop(&mut self) {
            PACKED.with_borrow_mut(|cache| {
                cache.depth -= 1;
                if cache.depth == 0 {
                    cache.map = None;
                }
            });
        }
    }
    PACKED.with_borrow_mut(|cache| {
        cache.depth += 1;
        cache.map.get_or_insert_with(HashMap::new);
    });
    let _scope = Scope;
    f()
}

/// W packed for this CPU: from the scope's cache where one is open and W's storage is
/// contiguous (packed and kept on the first call), packed for this call only otherwise.
fn packed_weight(cpu: Cpu, w: &FlexTensor, k: usize, n: usize) -> Arc<PackedW> {
    let pack = || Arc::new(PackedW::new(cpu, f32s(&contiguous(w)), k, n));
    let Some(key) = w.as_slice::<f32>().map(|ws| (ws.as_ptr() as usize, ws.len(), k)) else {
        return pack();
    };
    PACKED.with_borrow_mut(|cache| match cache.map.as_mut() {
        Some(map) => map.entry(key).or_insert_with(|| (w.clone(), pack())).1.clone(),
        None => pack(),
    })
}

fn linear_flex(x: FlexTensor, w: FlexTensor, bias: FlexTensor) -> FlexTensor {
    let (xs, ws) = (x.layout().shape().clone(), w.layout().shape().clone());
    assert!(
        xs.num_dims() == 2 && ws.num_dims() == 2 && xs[1] == ws[0],
        "linear: x [M, K] and w [K, N], got {xs:?} and {ws:?}"
    );
    let (m, k, n) = (xs[0], xs[1], ws[1]);
    let cpu = Cpu::current();
    let packed = packed_weight(cpu, &w, k, n);
    let (x, bias) = (contiguous(&x), contiguous(&bias));
    flex(forward_packed(cpu, f32s(&x), &packed, f32s(&bias), m), &[m, n])
}

impl FusedLinear for Flex {
    fn linear_forward(x: FlexTensor, w: FlexTensor, bias: FlexTensor) -> FlexTensor {
        linear_flex(x, w, bias)
    }
}

/// On an autodiff device, Burn's own differentiable ops ([`linear`] does not route training
/// here; this keeps the extension whole).
impl<C: CheckpointStrategy> FusedLinear for Autodiff<Flex, C> {
    fn linear_forward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let n = w.shape()[1];
        let y = Self::float_matmul(x, w);
        Self::float_add(y, Self::float_reshape(bias, Shape::new([1, n])))
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;

    use super::*;
    use crate::testing::{close, vec};

    /// Against Burn's `Linear::forward` on the same draws: batch rows across the row tiles and
    /// thread chunks (1, 5, 7, 130), K odd, N 32 and 64, with and without bias; shapes the
    /// kernel does not cover go to Burn's op.
    #[test]
    fn matches_burns_linear() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex();
        dev.seed(5);
        for (m, k, n, bias) in [
            (1, 3, 32, true),
            (5, 17, 64, false),
            (7, 300, 32, true),
            (130, 64, 96, true),
            (4, 8, 10, true),
        ] {
            let layer = LinearConfig::new(k, n).with_bias(bias).init(&dev);
            let x = Tensor::<2>::random([m, k], Distribution::Default, &dev);
            let want = vec(layer.forward(x.clone()));
            close(
                &vec(linear(&layer, x.clone())),
                &want,
                1e-5,
                &format!("m {m} k {k} n {n} bias {bias}"),
            );
            // The extension itself, whether or not `linear` picks it on this CPU.
            if n % BLOCK == 0 {
                let b = layer
                    .bias
                    .as_ref()
                    .map(|b| b.val())
                    .unwrap_or_else(|| Tensor::zeros([n], &dev));
                let ours = Tensor::<2>::from_dispatch(<Dispatch as FusedLinear>::linear_forward(
                    x.into_dispatch(),
                    layer.weight.val().into_dispatch(),
                    b.into_dispatch(),
                ));
                close(&vec(ours), &want, 1e-5, &format!("kernel: m {m} k {k} n {n} bias {bias}"));
            }
        }
    }

    /// Inside [`with_packed_weights`] a layer's W is packed once and reused, a changed W (a new
    /// tensor, as an optimizer step makes) is packed anew, and the cache is gone when the
    /// outermost scope ends; every result equals Burn's `Linear::forward`.
    #[test]
    fn packed_weights_scope_reuses_and_follows_changes() {
        use burn::module::Param;
        let _rng = crate::device_rng_lock();
        let dev = Device::flex();
        dev.seed(7);
        let mut layer = LinearConfig::new(40, 64).init(&dev);
        let x = Tensor::<2>::random([9, 40], Distribution::Default, &dev);
        let cached = || PACKED.with_borrow(|c| c.map.as_ref().map(|m| m.len()));
        assert_eq!(cached(), None, "no cache outside a scope");
        let kernel = takes_kernel(&layer);
        with_packed_weights(|| {
            for round in 0..2 {
                let want = vec(layer.forward(x.clone()));
                close(&vec(linear(&layer, x.clone())), &want, 1e-5, &format!("round {round}"));
                assert_eq!(cached(), Some(usize::from(kernel)), "one entry, reused");
            }
            with_packed_weights(|| {
                layer.weight = Param::from_tensor(layer.weight.val() * 2.0 - 0.5);
                let want = vec(layer.forward(x.clone()));
                close(&vec(linear(&layer, x.clone())), &want, 1e-5, "changed weights");
            });
            assert_eq!(cached(), Some(2 * usize::from(kernel)), "the nested scope keeps the cache");
        });
        assert_eq!(cached(), None, "released when the outermost scope ends");
    }

    /// The kernel on AVX2 and NEON; not on plain; on AVX-512 only where gemm lacks its AVX-512
    /// kernels (every ISA this CPU has).
    #[test]
    fn kernel_only_where_it_beats_gemm() {
        for cpu in Cpu::all() {
            let takes = uses_kernel(cpu);
            match cpu.isa() {
                Isa::Plain => assert!(!takes, "plain"),
                Isa::Avx2 | Isa::Neon => assert!(takes, "{:?}", cpu.isa()),
                Isa::Avx512 => assert_eq!(takes, Isa::of_gemm() != Isa::Avx512, "avx512"),
            }
        }
    }

    /// Whether `linear` takes the kernel for this layer on this CPU.
    fn takes_kernel(layer: &burn::nn::Linear) -> bool {
        layer.weight.dims()[1].is_multiple_of(BLOCK)
            && crate::enabled()
            && uses_kernel(Cpu::current())
    }

    /// Training through `linear` (autodiff, flex) gives Linear's values and gradients, with
    /// and without bias.
    #[test]
    fn training_path_is_burns_linear() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex().autodiff();
        dev.seed(9);
        for (m, k, n, bias) in [(3, 5, 7, true), (130, 300, 64, false)] {
            let layer = LinearConfig::new(k, n).with_bias(bias).init(&dev);
            let x = Tensor::<2>::random([m, k], Distribution::Default, &dev).require_grad();
            let r = Tensor::<2>::random([m, n], Distribution::Default, &dev);
            let (ours, theirs) = (linear(&layer, x.clone()), layer.forward(x.clone()));
            let what = format!("{m}×{k}·{k}×{n} bias {bias}");
            close(&vec(ours.clone()), &vec(theirs.clone()), 1e-5, &format!("{what}: values"));
            let (g1, g2) = ((ours * r.clone()).sum().backward(), (theirs * r).sum().backward());
            let grad = |t: &Tensor<2>, g| vec(t.grad(g).expect("gradient"));
            close(&grad(&x, &g1), &grad(&x, &g2), 1e-5, &format!("{what}: dx"));
            let w = layer.weight.val();
            close(&grad(&w, &g1), &grad(&w, &g2), 1e-5, &format!("{what}: dw"));
            if let Some(b) = &layer.bias {
                let (b1, b2) = (b.grad(&g1).expect("db"), b.grad(&g2).expect("db"));
                close(&vec(b1), &vec(b2), 1e-5, &format!("{what}: db"));
            }
        }
    }

    /// The extension on an autodiff device (Burn's ops) gives Linear's values and gradients.
    #[test]
    fn autodiff_extension_is_burns_linear() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex().autodiff();
        dev.seed(6);
        let layer = LinearConfig::new(5, 32).init(&dev);
        let x = Tensor::<2>::random([3, 5], Distribution::Default, &dev).require_grad();
        let bias = layer.bias.as_ref().expect("bias").val();
        let ours = Tensor::<2>::from_dispatch(<Dispatch as FusedLinear>::linear_forward(
            x.clone().into_dispatch(),
            layer.weight.val().into_dispatch(),
            bias.into_dispatch(),
        ));
        let theirs = layer.forward(x.clone());
        close(&vec(ours.clone()), &vec(theirs.clone()), 1e-6, "values");
        let (g1, g2) = (ours.sum().backward(), theirs.sum().backward());
        close(&vec(x.grad(&g1).expect("dx")), &vec(x.grad(&g2).expect("dx")), 1e-6, "dx");
        close(
            &vec(layer.weight.grad(&g1).expect("dw")),
            &vec(layer.weight.grad(&g2).expect("dw")),
            1e-6,
            "dw",
        );
    }
}
