//! 2-D max pooling with its backward pass on the CPU backend (flex), through
//! `burnlab_kernels::pool` (the winning tap of each window kept as one byte).
//!
//! Why: burn-flex keeps an i64 index per output and scatters the gradient through it into a
//! fresh full-size buffer; on a ResNet-18 step at 224 px that was ~5% of the time.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::tensor::module::max_pool2d as burn_max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use burnlab_kernels::pool::{PoolDims, max_pool2d_backward, max_pool2d_forward, max_pool2d_values};

use crate::{contiguous, f32s, flex, register_grads};

#[backend_extension(Flex, Autodiff)]
pub trait FusedMaxPool: Backend {
    /// Max pooling of x [N, C, H, W], symmetric padding (padded cells never win), dilation 1,
    /// floor rounding.
    fn max_pool2d_nchw(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self>;
}

/// Burn's `max_pool2d` (dilation 1, floor rounding), through [`FusedMaxPool`] on flex where the
/// kernel covers the shape, through Burn's own op elsewhere.
pub fn max_pool2d(
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let d = PoolDims { planes: n * c, h, w, kernel, stride, padding };
    if x.device() == Device::flex() && crate::enabled() && d.supported() {
        return Tensor::from_dispatch(<Dispatch as FusedMaxPool>::max_pool2d_nchw(
            x.into_dispatch(),
            kernel,
            stride,
            padding,
        ));
    }
    burn_max_pool2d(x, MaxPoolOptions::new(kernel).with_stride(stride).with_padding(padding))
}

/// Runs `kernel` on x [N, C, H, W] with its pooling dims; the output as [N, C, Ho, Wo].
fn pool_with<A>(
    x: &FlexTensor,
    (kernel, stride, padding): ([usize; 2], [usize; 2], [usize; 2]),
    run: impl FnOnce(&PoolDims, &[f32]) -> (Vec<f32>, A),
) -> (FlexTensor, PoolDims, A) {
    let s = x.layout().shape();
    assert!(s.num_dims() == 4, "max pool: x [N, C, H, W], got {s:?}");
    let (n, c) = (s[0], s[1]);
    let d = PoolDims { planes: n * c, h: s[2], w: s[3], kernel, stride, padding };
    let x = contiguous(x);
    let (y, extra) = run(&d, f32s(&x));
    let (ho, wo) = d.out_hw();
    (flex(y, &[n, c, ho, wo]), d, extra)
}

/// Training's forward pass: the output, its dims and each window's winning tap.
fn pool_forward(
    x: &FlexTensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> (FlexTensor, PoolDims, Vec<u8>) {
    pool_with(x, (kernel, stride, padding), max_pool2d_forward)
}

impl FusedMaxPool for Flex {
    fn max_pool2d_nchw(
        x: FlexTensor,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FlexTensor {
        // Inference (flex without autodiff): no backward pass, so no argmax to keep.
        pool_with(&x, (kernel, stride, padding), |d, x| (max_pool2d_values(d, x), ())).0
    }
}

#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    /// Shapes, and the winning tap of each window.
    type State = (PoolDims, Vec<u8>);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (d, arg) = ops.state;
        let parents = ops.parents.map(|p| p.map(|n| n.id));
        let s = dy.layout().shape();
        let shape = vec![s[0], s[1], d.h, d.w];
        let dx = parents[0].is_some().then(|| (max_pool2d_backward(&d, &arg, f32s(&dy)), shape));
        register_grads(grads, parents, [dx]);
    }
}

impl<C: CheckpointStrategy> FusedMaxPool for Autodiff<Flex, C> {
    fn max_pool2d_nchw(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        let nodes = [x.node()];
        let x = x.into_primitive();
        match PoolBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (y, d, arg) = pool_forward(&x, kernel, stride, padding);
                prep.finish((d, arg), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(pool_forward(&x, kernel, stride, padding).0),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::testing::{close, vec};

    /// Values and gradients against Burn's own max_pool2d on the same draws: ResNet-18's
    /// 3×3/2 padding 1 (odd and even sides), LeNet's 2×2/2, the 1×1/2 subsampling of
    /// ResNet-20's shortcut, overlapping windows, a non-square kernel.
    #[test]
    fn matches_burns_max_pool2d() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex().autodiff();
        dev.seed(21);
        for (n, c, h, w, kernel, stride, padding) in [
            (2, 3, 13, 12, [3, 3], [2, 2], [1, 1]),
            (3, 2, 8, 8, [2, 2], [2, 2], [0, 0]),
            (2, 4, 9, 9, [1, 1], [2, 2], [0, 0]),
            (1, 2, 7, 9, [3, 3], [1, 1], [1, 1]),
            (2, 2, 9, 11, [3, 2], [2, 1], [1, 0]),
        ] {
            let what = format!("{n}x{c}x{h}x{w} k {kernel:?} s {stride:?} p {padding:?}");
            let x = Tensor::<4>::random([n, c, h, w], Distribution::Default, &dev).require_grad();
            let ours = max_pool2d(x.clone(), kernel, stride, padding);
            let theirs = burn_max_pool2d(
                x.clone(),
                MaxPoolOptions::new(kernel).with_stride(stride).with_padding(padding),
            );
            assert_eq!(ours.dims(), theirs.dims(), "{what}: shape");
            let r = Tensor::<4>::random(ours.dims(), Distribution::Default, &dev);
            let (g1, g2) = (
                (ours.clone() * r.clone()).sum().backward(),
                (theirs.clone() * r).sum().backward(),
            );
            close(&vec(ours), &vec(theirs), 0.0, &format!("{what}: y"));
            close(
                &vec(x.grad(&g1).expect("dx")),
                &vec(x.grad(&g2).expect("dx")),
                1e-6,
                &format!("{what}: dx"),
            );
        }
    }

    /// Without autodiff (inference, no argmax kept) the same values: ResNet-18's 3×3/2,
    /// LeNet-5's 2×2/2 and 3×3/3 side-by-side windows on sides they do not divide, ResNet-20's
    /// 1×1/2 shortcut.
    #[test]
    fn inference_matches_burns_max_pool2d() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex();
        dev.seed(22);
        for (kernel, stride, padding) in [
            ([3, 3], [2, 2], [1, 1]),
            ([2, 2], [2, 2], [0, 0]),
            ([3, 3], [3, 3], [0, 0]),
            ([1, 1], [2, 2], [0, 0]),
        ] {
            let x = Tensor::<4>::random([2, 3, 11, 10], Distribution::Default, &dev);
            let ours = max_pool2d(x.clone(), kernel, stride, padding);
            let theirs = burn_max_pool2d(
                x,
                MaxPoolOptions::new(kernel).with_stride(stride).with_padding(padding),
            );
            assert_eq!(ours.dims(), theirs.dims(), "{kernel:?}/{stride:?}");
            close(&vec(ours), &vec(theirs), 0.0, &format!("inference y {kernel:?}/{stride:?}"));
        }
    }
}
