//! 2-D convolution (NCHW, f32, groups 1, dilation 1) with its backward pass, for the CPU backend
//! (flex), through `burnlab_kernels::conv` (Winograd or direct convolutions for stride 1, direct
//! convolutions on the input's phases for strided layers).
//!
//! Why: burn-flex computes the weight gradient as a convolution of the input by the output
//! gradient with batch and channels swapped (for ResNet-20's first stage a 32×32 "kernel" over
//! 128 "channels"), through a generic 3-D path, and the input gradient as a transposed
//! convolution in plain loops; on ResNet-20 that backward took ~530 ms a step of 128 images where
//! its FLOPs take ~100 ms.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};
use burnlab_kernels::conv::{ConvDims, conv2d_backward, conv2d_forward};
use burnlab_kernels::{Cpu, Isa};

use crate::{contiguous, f32s, flex, register_grads};

#[backend_extension(Flex, Autodiff)]
pub trait FusedConv: Backend {
    /// conv2d of x [N, Ci, H, W] by w [Co, Ci, kh, kw] plus bias [Co], groups 1, dilation 1,
    /// symmetric zero padding.
    fn conv2d_nchw(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self>;
}

/// Whether burnlab's kernels take a layer with `ci` input channels, a `kh`×`kw` kernel and
/// `out_pixels` output pixels per image on `cpu`: everywhere they have vector tiles, and on the
/// plain floor (`BURNLAB_ISA=plain`, or a CPU without AVX2 or NEON) all but the deep layers on
/// small maps (a kernel larger than 1×1 reducing over at least 400 inputs a pixel with at most
/// 28×28 outputs, or over at least 288 with at most 8×8), where Burn's conv is the faster one:
/// its `gemm` picks its own ISA. Per layer on a Zen 4 (`just bench-layers`, plain against Burn's
/// conv at AVX-512, training step): ResNet-18's 3×3 layers from 128 channels and its 3×3/2 into
/// them 0.4–0.85× Burn's, its 56×56 ones, stem and 1×1/2 shortcuts 1.2–3.9×; ResNet-20's
/// 64-channel 8×8 layers 0.55–0.72× and its 3×3/2 into them 0.8–0.94× (one run of four 1.3×),
/// its 16- and 32-channel layers on 32×32 and 16×16 outputs 1.1–3.2×.
pub fn uses_kernel(cpu: Cpu, ci: usize, [kh, kw]: [usize; 2], out_pixels: usize) -> bool {
    let depth = ci * kh * kw;
    let deep = kh * kw > 1
        && ((depth >= 400 && out_pixels <= 28 * 28) || (depth >= 288 && out_pixels <= 8 * 8));
    cpu.isa() != Isa::Plain || !deep
}

/// `conv.forward(x)`, through [`FusedConv`] on flex where the layer is one it covers (groups 1,
/// dilation 1, symmetric explicit or no padding) and [`uses_kernel`], through Burn's own op
/// elsewhere. The module stays Burn's `Conv2d` (same parameters, same records).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    };
    let [_, ci, h, w] = x.dims();
    let [kh, kw] = conv.kernel_size;
    let [sh, sw] = conv.stride;
    match padding {
        Some(pad)
            if x.device() == Device::flex()
                && crate::enabled()
                && conv.groups == 1
                && conv.dilation == [1, 1]
                && h + 2 * pad[0] >= kh
                && w + 2 * pad[1] >= kw
                && sh > 0
                && sw > 0
                && uses_kernel(
                    Cpu::current(),
                    ci,
                    [kh, kw],
                    ((h + 2 * pad[0] - kh) / sh + 1) * ((w + 2 * pad[1] - kw) / sw + 1),
                ) =>
        {
            let co = conv.weight.dims()[0];
            let bias = conv
                .bias
                .as_ref()
                .map(|b| b.val())
                .unwrap_or_else(|| Tensor::zeros([co], &x.device()));
            Tensor::from_dispatch(<Dispatch as FusedConv>::conv2d_nchw(
                x.into_dispatch(),
                conv.weight.val().into_dispatch(),
                bias.into_dispatch(),
                conv.stride,
                pad,
            ))
        }
        _ => conv.forward(x),
    }
}

fn conv_dims(x: &FlexTensor, w: &FlexTensor, stride: [usize; 2], padding: [usize; 2]) -> ConvDims {
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    assert!(
        xs.num_dims() == 4 && ws.num_dims() == 4 && xs[1] == ws[1],
        "conv2d_nchw: x [N, C, H, W] and w [Co, C, kh, kw], got {xs:?} and {ws:?}"
    );
    assert!(stride[0] > 0 && stride[1] > 0, "conv2d_nchw: stride 0");
    ConvDims {
        n: xs[0],
        ci: xs[1],
        h: xs[2],
        w: xs[3],
        co: ws[0],
        kh: ws[2],
        kw: ws[3],
        stride,
        padding,
    }
}

fn conv_forward(
    x: &FlexTensor,
    w: &FlexTensor,
    bias: &FlexTensor,
    stride: [usize; 2],
    padding: [usize; 2],
) -> (FlexTensor, ConvDims) {
    let d = conv_dims(x, w, stride, padding);
    let (x, w, bias) = (contiguous(x), contiguous(w), contiguous(bias));
    let (ho, wo) = d.out_hw();
    (
        flex(
            conv2d_forward(Cpu::current(), &d, f32s(&x), f32s(&w), f32s(&bias)),
            &[d.n, d.co, ho, wo],
        ),
        d,
    )
}

impl FusedConv for Flex {
    fn conv2d_nchw(
        x: FlexTensor,
        w: FlexTensor,
        bias: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FlexTensor {
        conv_forward(&x, &w, &bias, stride, padding).0
    }
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    /// Shapes, and x and w (contiguous).
    type State = (ConvDims, [FlexTensor; 2]);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (d, [x, w]) = ops.state;
        let parents = ops.parents.map(|p| p.map(|n| n.id));
        let (dx, dw, db) = conv2d_backward(
            Cpu::current(),
            &d,
            f32s(&x),
            f32s(&w),
            f32s(&dy),
            parents[0].is_some(),
        );
        let parts = [
            dx.map(|dx| (dx, vec![d.n, d.ci, d.h, d.w])),
            Some((dw, vec![d.co, d.ci, d.kh, d.kw])),
            Some((db, vec![d.co])),
        ];
        register_grads(grads, parents, parts);
    }
}

impl<C: CheckpointStrategy> FusedConv for Autodiff<Flex, C> {
    fn conv2d_nchw(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), w.node(), bias.node()];
        let (x, w, b) = (x.into_primitive(), w.into_primitive(), bias.into_primitive());
        match ConvBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (y, d) = conv_forward(&x, &w, &b, stride, padding);
                prep.finish((d, [contiguous(&x), contiguous(&w)]), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(conv_forward(&x, &w, &b, stride, padding).0),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    use super::*;

    use crate::testing::{close, vec};

    /// The plain floor hands ResNet-18's deep 3×3 layers and ResNet-20's 64-channel ones to
    /// Burn's conv and keeps the rest; every vector ISA keeps them all.
    #[test]
    fn plain_floor_routes_deep_small_maps_to_burn() {
        let plain = Cpu::new(Isa::Plain).expect("plain is always there");
        // (ci, kernel, output pixels, burnlab's kernels on plain)
        let layers = [
            (3, [7, 7], 112 * 112, true), // ResNet-18's stem
            (64, [3, 3], 56 * 56, true),  // its first stage
            (64, [3, 3], 28 * 28, false), // 3×3/2 into the second
            (64, [1, 1], 28 * 28, true),  // 1×1/2 shortcut
            (512, [3, 3], 7 * 7, false),  // its last stage
            (16, [3, 3], 32 * 32, true),  // ResNet-20's first stage
            (32, [3, 3], 16 * 16, true),  // its second
            (64, [3, 3], 8 * 8, false),   // its third
            (6, [5, 5], 10 * 10, true),   // LeNet-5's second conv
            (48, [3, 3], 16 * 16, false), // 432 inputs a pixel
            (44, [3, 3], 16 * 16, true),  // 396
        ];
        for (ci, k, out, expected) in layers {
            assert_eq!(uses_kernel(plain, ci, k, out), expected, "ci {ci} k {k:?} out {out}");
            for cpu in Cpu::all().into_iter().filter(|c| c.isa() != Isa::Plain) {
                assert!(uses_kernel(cpu, ci, k, out), "{:?} ci {ci} k {k:?}", cpu.isa());
            }
        }
    }

    /// Values and the gradients of x, weight and bias against Burn's own conv2d on the same
    /// draws: strides 1 and 2, padding 0/1/2, 1×1, odd sizes and channel counts, batch 1,
    /// kernels as large as the padded input.
    #[test]
    fn matches_burn_conv2d_values_and_gradients() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex().autodiff();
        dev.seed(11);
        // (n, ci, co, h, w, k, stride, pad, bias)
        let cases = [
            (2, 3, 5, 7, 9, 3, 1, 1, true),
            (1, 4, 3, 8, 8, 3, 2, 1, false),
            (3, 2, 7, 5, 6, 1, 1, 0, false),
            (2, 5, 4, 9, 7, 1, 2, 0, true),
            (1, 1, 2, 6, 5, 5, 1, 2, true),
            (2, 3, 17, 11, 10, 5, 2, 0, true),
            (1, 2, 3, 3, 3, 3, 1, 0, false),
            (1, 3, 2, 4, 5, 3, 3, 2, true),
            // LeNet-5's and ResNet-20's own layers.
            (3, 3, 6, 32, 32, 5, 1, 0, true),
            (2, 6, 16, 14, 14, 5, 1, 0, true),
            (2, 16, 16, 32, 32, 3, 1, 1, false),
            (2, 32, 64, 16, 16, 3, 2, 1, false),
            (2, 64, 64, 8, 8, 3, 1, 1, false),
        ];
        for (n, ci, co, h, w, k, stride, pad, bias) in cases {
            let conv = Conv2dConfig::new([ci, co], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(bias)
                .init(&dev);
            let x = Tensor::<4>::random([n, ci, h, w], Distribution::Default, &dev).require_grad();
            let ours = conv2d(&conv, x.clone());
            let theirs = conv.forward(x.clone());
            let what = format!("n {n} ci {ci} co {co} {h}x{w} k {k} stride {stride} pad {pad}");
            assert_eq!(ours.dims(), theirs.dims(), "{what}: shape");
            let r = Tensor::<4>::random(ours.dims(), Distribution::Default, &dev);
            let (g1, g2) = (
                (ours.clone() * r.clone()).sum().backward(),
                (theirs.clone() * r).sum().backward(),
            );
            close(&vec(ours), &vec(theirs), 2e-5, &format!("{what}: y"));
            close(
                &vec(x.grad(&g1).expect("dx")),
                &vec(x.grad(&g2).expect("dx")),
                2e-5,
                &format!("{what}: dx"),
            );
            close(
                &vec(conv.weight.grad(&g1).expect("dw")),
                &vec(conv.weight.grad(&g2).expect("dw")),
                2e-5,
                &format!("{what}: dw"),
            );
            if let Some(b) = &conv.bias {
                close(
                    &vec(b.grad(&g1).expect("db")),
                    &vec(b.grad(&g2).expect("db")),
                    2e-5,
                    &format!("{what}: db"),
                );
            }
        }
    }
}
