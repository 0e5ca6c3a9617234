//! Inference-time linear layer (y = x·W + b) on the CPU backend (flex) through the kernels
//! crate's packed GEMM (`burnlab_kernels::linear`).
//!
//! Why: the `gemm` crate, which flex's matmul uses, ran the MLP's 256×3072×512 product at
//! 138–167 GFLOP/s on a Zen 4 with AVX-512 (PyTorch's MKL: 174), so MLP inference was at
//! 0.80–0.86× PyTorch's; where it runs: [`uses_kernel`]. Training keeps Burn's matmul (and its
//! gradients).

use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::nn::Linear;
use burn::tensor::{Device, Shape, Tensor};
use burnlab_kernels::linear::{BLOCK, forward};
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

/// Whether inference goes through the kernel on this CPU: wherever it has vector tiles. On a
/// Zen 3 (AVX2), eval passes of the MLP alternated run for run: this kernel 28.6–35.0k
/// images/s, Burn's matmul (the `gemm` crate) 25.3–30.4k. On the plain floor Burn's op, whose
/// `gemm` picks its own ISA and keeps its vector kernels, is the faster one.
pub fn uses_kernel(cpu: Cpu) -> bool {
    cpu.isa() != Isa::Plain
}

/// `layer.forward(x)`: through [`FusedLinear`] for inference on flex (no autodiff) when the
/// kernel covers the shape (N a multiple of 32, so that full vector loads stay inside W) and
/// wins on this CPU ([`uses_kernel`]); Burn's own op everywhere else, training included.
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
    layer.forward(x)
}

fn linear_flex(x: FlexTensor, w: FlexTensor, bias: FlexTensor) -> FlexTensor {
    let (xs, ws) = (x.layout().shape().clone(), w.layout().shape().clone());
    assert!(
        xs.num_dims() == 2 && ws.num_dims() == 2 && xs[1] == ws[0],
        "linear: x [M, K] and w [K, N], got {xs:?} and {ws:?}"
    );
    let (m, k, n) = (xs[0], xs[1], ws[1]);
    let (x, w, bias) = (contiguous(&x), contiguous(&w), contiguous(&bias));
    flex(forward(Cpu::current(), f32s(&x), f32s(&w), f32s(&bias), m, k, n), &[m, n])
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
