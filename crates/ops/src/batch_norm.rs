//! Training-mode batch norm over NCHW (optionally followed by ReLU) as one operation on the CPU
//! backend (flex), forward and backward each a couple of passes shared out over the channels.
//!
//! Why: Burn's `batch_norm_train` and its backward are built from tensor operations (swap
//! dims, reshapes, means, broadcasts), each one pass over the activation, many of them copies
//! and all single-threaded on flex; with the ReLU after it, a ResNet-20 step spent more time in
//! batch norm than in the convolutions it follows.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor,
};
use burn::nn::BatchNorm;
use burn::tensor::activation::relu as relu_op;
use burn::tensor::{Device, Tensor};
use burnlab_kernels::batch_norm::{backward, forward, stats};

use crate::{contiguous, f32s, flex, register_grads};

#[backend_extension(Flex, Autodiff)]
pub trait FusedBatchNorm: Backend {
    /// Per-channel mean and biased variance of x [N, C, ...] over everything but the channel,
    /// [2, C]. Not differentiated (callers use it as the statistics of x, see below).
    fn channel_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Training-mode batch norm of x [N, C, ...] whose batch statistics are `stats` [2, C]
    /// ([`FusedBatchNorm::channel_stats`] of the same x), then ReLU if `relu`. Differentiated in
    /// x (through the statistics too, as batch norm must be), gamma and beta.
    fn batch_norm_train_nc(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self>;
}

/// `relu(bn.forward(x))` (or `bn.forward(x)` without `relu`): in training mode on flex through
/// [`FusedBatchNorm`], updating the running statistics exactly as Burn's `BatchNorm` does; for
/// inference on flex (no autodiff) the same one-pass kernel with the running statistics;
/// Burn's own path everywhere else (other backends, a frozen layer on an autodiff device).
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    let device = x.device();
    if device == Device::flex() && !device.is_autodiff() && crate::enabled() {
        let c = bn.gamma.dims()[0];
        let stats =
            Tensor::cat(vec![bn.running_mean.value(), bn.running_var.value()], 0).reshape([2, c]);
        return Tensor::from_dispatch(<Dispatch as FusedBatchNorm>::batch_norm_train_nc(
            x.into_dispatch(),
            bn.gamma.val().into_dispatch(),
            bn.beta.val().into_dispatch(),
            stats.into_dispatch(),
            bn.epsilon,
            relu,
        ));
    }
    if !(device == Device::flex()
        && device.is_autodiff()
        && bn.training.is_enabled()
        && crate::enabled())
    {
        let y = bn.forward(x);
        return if relu { relu_op(y) } else { y };
    }
    let stats = Tensor::<2>::from_dispatch(<Dispatch as FusedBatchNorm>::channel_stats(
        x.clone().into_dispatch(),
    ))
    .detach();
    let y = Tensor::from_dispatch(<Dispatch as FusedBatchNorm>::batch_norm_train_nc(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        stats.clone().into_dispatch(),
        bn.epsilon,
        relu,
    ));
    let c = stats.dims()[1];
    let [mean, var]: [Tensor<1>; 2] = [0, 1].map(|i| stats.clone().slice([i..i + 1]).reshape([c]));
    let m = bn.momentum;
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean.update(running_mean.mul_scalar(1.0 - m).add(mean.mul_scalar(m)).detach());
    bn.running_var.update(running_var.mul_scalar(1.0 - m).add(var.mul_scalar(m)).detach());
    y
}

/// Channels, and elements per channel per sample.
fn nc_dims(x: &FlexTensor) -> (usize, usize, usize) {
    let s = x.layout().shape();
    assert!(s.num_dims() >= 2, "batch norm: x must be [N, C, ...], got {s:?}");
    let (n, c) = (s[0], s[1]);
    let inner = s.num_elements().checked_div(n * c).unwrap_or(0);
    (n, c, inner)
}

fn bn_forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    st: &FlexTensor,
    eps: f64,
    relu: bool,
) -> FlexTensor {
    let (_, c, inner) = nc_dims(x);
    let (xc, g, b, s) = (contiguous(x), contiguous(gamma), contiguous(beta), contiguous(st));
    let y = forward(f32s(&xc), c, inner, f32s(&g), f32s(&b), f32s(&s), eps, relu);
    flex(y, x.layout().shape().as_slice())
}

impl FusedBatchNorm for Flex {
    fn channel_stats(x: FlexTensor) -> FlexTensor {
        let (n, c, inner) = nc_dims(&x);
        let xc = contiguous(&x);
        flex(stats(f32s(&xc), n, c, inner), &[2, c])
    }

    fn batch_norm_train_nc(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        stats: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> FlexTensor {
        bn_forward(&x, &gamma, &beta, &stats, epsilon, relu)
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 4> for BatchNormBackward {
    /// x, γ, β, the statistics (contiguous), ε and whether a ReLU follows.
    type State = ([FlexTensor; 4], f64, bool);

    fn backward(
        self,
        ops: Ops<Self::State, 4>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let ([x, gamma, beta, st], eps, relu) = ops.state;
        let (n, c, inner) = nc_dims(&x);
        let (dx, dg, db) = backward(
            f32s(&x),
            n,
            c,
            inner,
            f32s(&gamma),
            f32s(&beta),
            f32s(&st),
            eps,
            relu,
            f32s(&dy),
        );
        let parts = [
            Some((dx, x.layout().shape().to_vec())),
            Some((dg, vec![c])),
            Some((db, vec![c])),
            None,
        ];
        register_grads(grads, ops.parents.map(|p| p.map(|n| n.id)), parts);
    }
}

impl<C: CheckpointStrategy> FusedBatchNorm for Autodiff<Flex, C> {
    fn channel_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(<Flex as FusedBatchNorm>::channel_stats(x.into_primitive()))
    }

    fn batch_norm_train_nc(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), gamma.node(), beta.node(), stats.node()];
        let (x, g, b, s) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
            stats.into_primitive(),
        );
        let y = bn_forward(&x, &g, &b, &s, epsilon, relu);
        match BatchNormBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(
                ([contiguous(&x), contiguous(&g), contiguous(&b), contiguous(&s)], epsilon, relu),
                y,
            ),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::nn::BatchNormConfig;
    use burn::tensor::Distribution;

    use super::*;

    use crate::testing::{close, vec};

    /// Output, running statistics and the gradients of x, γ and β against Burn's `BatchNorm`
    /// (then ReLU) on the same draws: odd channel counts and sizes, batch 1, 1×1 maps, with
    /// and without the ReLU, γ and β away from their initial 1 and 0.
    #[test]
    fn matches_burn_batch_norm_values_running_stats_and_gradients() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex().autodiff();
        dev.seed(3);
        for (n, c, h, w) in [(4, 3, 5, 7), (1, 5, 4, 4), (6, 2, 1, 1), (3, 17, 3, 2)] {
            for relu in [false, true] {
                let gamma = Tensor::<1>::random([c], Distribution::Uniform(0.5, 1.5), &dev);
                let beta = Tensor::<1>::random([c], Distribution::Uniform(-0.5, 0.5), &dev);
                // Two layers with the same γ and β but their own parameters and running state.
                let make = || {
                    let mut bn = BatchNormConfig::new(c).init(&dev);
                    bn.gamma = Param::from_tensor(gamma.clone().detach().require_grad());
                    bn.beta = Param::from_tensor(beta.clone().detach().require_grad());
                    bn
                };
                let (bn, reference) = (make(), make());
                let x = (Tensor::<4>::random([n, c, h, w], Distribution::Default, &dev) * 3.0
                    + 1.0)
                    .detach()
                    .require_grad();
                let r = Tensor::<4>::random([n, c, h, w], Distribution::Default, &dev);
                let ours = batch_norm(&bn, x.clone(), relu);
                let theirs = if relu {
                    relu_op(reference.forward(x.clone()))
                } else {
                    reference.forward(x.clone())
                };
                let what = format!("[{n}, {c}, {h}, {w}] relu {relu}");
                let (g1, g2) = (
                    (ours.clone() * r.clone()).sum().backward(),
                    (theirs.clone() * r).sum().backward(),
                );
                close(&vec(ours), &vec(theirs), 1e-5, &format!("{what}: y"));
                close(
                    &vec(x.grad(&g1).expect("dx")),
                    &vec(x.grad(&g2).expect("dx")),
                    1e-4,
                    &format!("{what}: dx"),
                );
                close(
                    &vec(bn.gamma.grad(&g1).expect("dγ")),
                    &vec(reference.gamma.grad(&g2).expect("dγ")),
                    1e-4,
                    &format!("{what}: dγ"),
                );
                close(
                    &vec(bn.beta.grad(&g1).expect("dβ")),
                    &vec(reference.beta.grad(&g2).expect("dβ")),
                    1e-4,
                    &format!("{what}: dβ"),
                );
                close(
                    &vec(bn.running_mean.value()),
                    &vec(reference.running_mean.value()),
                    1e-6,
                    &format!("{what}: running mean"),
                );
                close(
                    &vec(bn.running_var.value()),
                    &vec(reference.running_var.value()),
                    1e-5,
                    &format!("{what}: running var"),
                );
                // Inference (no autodiff) with the updated running statistics, on an input
                // centred so that the ReLU has negatives to clip.
                let (bn_i, ref_i) = (bn.valid(), reference.valid());
                let xi = x.clone().inner() - 2.5;
                let ours = batch_norm(&bn_i, xi.clone(), relu);
                let theirs =
                    if relu { relu_op(ref_i.forward(xi.clone())) } else { ref_i.forward(xi) };
                close(&vec(ours), &vec(theirs), 1e-5, &format!("{what}: inference"));
            }
        }
    }
}
