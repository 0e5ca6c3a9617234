//! 2-D convolution (NCHW, f32, groups 1, dilation 1) with its backward pass on f32 slices:
//! 3×3 stride-1 layers of 64 channels and more by Winograd's algorithms ([`crate::winograd`]),
//! other stride-1 layers as direct convolutions ([`crate::direct`]) on the padded input,
//! strided layers as direct convolutions on the input's phases ([`crate::layout::Phases`]),
//! 1×1 stride-1 layers as one matrix product per image; images shared out over rayon's threads.
//!
//! Why: burn-flex computes the weight gradient as a convolution of the input by the output
//! gradient with batch and channels swapped (for ResNet-20's first stage a 32×32 "kernel" over
//! 128 "channels"), through a generic 3-D path, and the input gradient as a transposed
//! convolution in plain loops; on ResNet-20 that backward took ~530 ms a step of 128 images where
//! its FLOPs take ~100 ms. Here both gradients are the textbook ones, dW = Σ_n dY_n ⋆ X_n and
//! dX_n = dY_n ⋆ flipped Wᵀ, in the same register tiles as the forward pass.

use rayon::prelude::*;

use crate::channels::{self, ChannelWeights, channel_conv};
use crate::direct::{Pixels, SLACK, wide_conv, wide_weight_grad_images};
use crate::isa::Cpu;
use crate::layout::{Layout, Padding, PhaseGrad, Phases};
use crate::matmul::matmul;
use crate::par::{lane_total, par_chunks_uninit, write_all};
use crate::{winograd, winograd_wgrad};

/// Shapes of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    pub n: usize,
    pub ci: usize,
    pub h: usize,
    pub w: usize,
    pub co: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl ConvDims {
    pub fn out_hw(&self) -> (usize, usize) {
        let ho = (self.h + 2 * self.padding[0] - self.kh) / self.stride[0] + 1;
        let wo = (self.w + 2 * self.padding[1] - self.kw) / self.stride[1] + 1;
        (ho, wo)
    }

    /// Rows of the column matrix: Ci·kh·kw.
    fn k(&self) -> usize {
        self.ci * self.kh * self.kw
    }

    /// Columns of the column matrix: output pixels per image.
    fn p(&self) -> usize {
        let (ho, wo) = self.out_hw();
        ho * wo
    }

    /// Whether the forward pass and the gradients run as direct convolutions
    /// ([`crate::direct`]): stride 1 with a column matrix to avoid (on every ISA: the plain
    /// tiles are faster than im2col's copies too).
    fn direct(&self) -> bool {
        self.stride == [1, 1]
            && !self.identity_cols()
            && self.padding[0] < self.kh
            && self.padding[1] < self.kw
    }

    /// Whether the layer runs on its input's phases ([`crate::layout::Phases`]): every layer
    /// that is neither direct nor 1×1 stride 1 (strided ones, and stride 1 with padding as
    /// large as the kernel).
    fn phased(&self) -> bool {
        !self.direct() && !self.identity_cols() && self.kh > 0 && self.kw > 0
    }

    /// Whether the column matrix is the image itself (1×1, stride 1, no padding).
    fn identity_cols(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

/// Images per rayon task: enough to keep a thread's scratch buffers warm.
pub(crate) fn chunk(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads().max(1) * 4).max(1)
}

/// y [N, Co, Ho, Wo] = conv(x [N, Ci, H, W], w [Co, Ci, kh, kw]) + bias [Co].
pub fn conv2d_forward(cpu: Cpu, d: &ConvDims, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    let (k, p) = (d.k(), d.p());
    assert_eq!(x.len(), d.n * d.ci * d.h * d.w, "conv2d: input");
    assert_eq!(w.len(), d.co * k, "conv2d: weight");
    assert_eq!(bias.len(), d.co, "conv2d: bias");
    if p == 0 || d.co == 0 {
        return vec![0.0; d.n * d.co * p];
    }
    if winograd::applies(d) {
        return winograd::forward(cpu, d, x, w, bias);
    }
    if d.direct() {
        let layout = Padding::new((d.ci, d.h, d.w), (d.kh, d.kw), d.padding);
        return direct_images(cpu, d.n, &layout, (x, d.ci * d.h * d.w), d.out_hw(), w, bias);
    }
    if d.phased() {
        return direct_images(
            cpu,
            d.n,
            &Phases::new(d),
            (x, d.ci * d.h * d.w),
            d.out_hw(),
            w,
            bias,
        );
    }
    // 1×1 stride 1: one matrix product per image.
    let c = chunk(d.n);
    // SAFETY: each image's rows are set to the bias first (write_all), then accumulated into.
    unsafe {
        par_chunks_uninit(
            d.n * d.co * p,
            c * d.co * p,
            || (),
            |_, i, ys| {
                for (j, yi) in ys.chunks_exact_mut(d.co * p).enumerate() {
                    let img = i * c + j;
                    let xi = &x[img * d.ci * d.h * d.w..(img + 1) * d.ci * d.h * d.w];
                    let yi = write_all(yi, |i| bias[i / p]);
                    matmul(d.co, p, k, yi, true, w, k, 1, xi, p, 1, false);
                }
            },
        )
    }
}

/// A convolution of `n` images x [N, Ci, H, W] (`img_in` floats each) by w [Co, K] (+ bias)
/// into y [N, Co, Ho, Wo] through [`crate::direct`], the input laid out by `layout`; images
/// shared out over rayon's threads.
fn direct_images(
    cpu: Cpu,
    n: usize,
    layout: &impl Layout,
    (x, img_in): (&[f32], usize),
    (ho, wo): (usize, usize),
    w: &[f32],
    bias: &[f32],
) -> Vec<f32> {
    let (co, wp, offs) = (bias.len(), layout.wp(), layout.offsets());
    let len = ho * wp;
    let img_out = co * ho * wo;
    assert!(x.len() >= n * img_in, "direct conv: input");
    if img_out == 0 || n == 0 {
        return vec![0.0; n * img_out];
    }
    let per = chunk(n);
    if channels::pays(cpu, ho, wo, wp) {
        // Small maps: output channels as the vectors, real pixels only (see `channels`).
        let k = offs.len();
        let packed = ChannelWeights::new(cpu, w, co, k);
        let pixels: Vec<usize> = (0..ho).flat_map(|y| (0..wo).map(move |x| y * wp + x)).collect();
        // SAFETY: every value of every image of the chunk is written (write_all; the kernel
        // then overwrites them).
        return unsafe {
            par_chunks_uninit(
                n * img_out,
                per * img_out,
                || vec![0.0; layout.size()],
                |xp, i, ys| {
                    for (j, yi) in ys.chunks_exact_mut(img_out).enumerate() {
                        let img = i * per + j;
                        layout.fill(&x[img * img_in..(img + 1) * img_in], xp);
                        let yi = write_all(yi, |_| 0.0);
                        channel_conv(cpu, &packed, &offs, xp, &pixels, bias, yi, ho * wo, false);
                    }
                },
            )
        };
    }
    // SAFETY: the copy out of the padded-width rows writes every row of every channel of every
    // image of the chunk (write_all).
    unsafe {
        par_chunks_uninit(
            n * img_out,
            per * img_out,
            || (vec![0.0; layout.size()], vec![0.0; co * len]),
            |(xp, wide), i, ys| {
                for (j, yi) in ys.chunks_exact_mut(img_out).enumerate() {
                    let img = i * per + j;
                    layout.fill(&x[img * img_in..(img + 1) * img_in], xp);
                    wide_conv(cpu, w, &offs, xp, len, bias, wide);
                    // Drop the junk columns of the padded-width rows.
                    for (c, plane) in yi.chunks_exact_mut(ho * wo).enumerate() {
                        for (oy, row) in plane.chunks_exact_mut(wo).enumerate() {
                            let at = c * len + oy * wp;
                            for (o, &v) in row.iter_mut().zip(&wide[at..at + wo]) {
                                o.write(v);
                            }
                        }
                    }
                }
            },
        )
    }
}

/// The sum of two threads' partial (dW, dbias). Partials are per fixed chunk of images, collected
/// in order and added on one thread: the result does not depend on how rayon split the work,
/// so a resumed run repeats the uninterrupted one exactly.
pub(crate) fn add_partials(
    (mut a, mut b): (Vec<f32>, Vec<f32>),
    (a2, b2): (Vec<f32>, Vec<f32>),
) -> (Vec<f32>, Vec<f32>) {
    a.iter_mut().zip(&a2).for_each(|(x, y)| *x += y);
    b.iter_mut().zip(&b2).for_each(|(x, y)| *x += y);
    (a, b)
}

/// Weights (k·Co floats) from which the direct weight gradient takes one part a thread.
const LARGE_DW: usize = 1 << 18;

/// dW [Co, K] = Σ over the parts' dWᵀ [K, Co], in the parts' order (so the result does not
/// depend on scheduling), in blocks of 16 output channels over the threads: each block
/// writes 16 rows of dW in order and reads one 64-byte run of each part per tap.
fn sum_transposed(parts: &[(Vec<f32>, Vec<f32>)], k: usize, co: usize) -> Vec<f32> {
    const BLOCK: usize = 16;
    let mut dw = vec![0.0; co * k];
    if k == 0 {
        return dw;
    }
    assert!(parts.iter().all(|(p, _)| p.len() >= k * co), "weight gradient: parts");
    dw.par_chunks_mut(BLOCK * k).enumerate().for_each(|(b, rows)| {
        let c0 = b * BLOCK;
        let n = rows.len() / k;
        let mut acc = [0.0f32; BLOCK];
        for p in 0..k {
            acc[..n].fill(0.0);
            for (part, _) in parts {
                let src = &part[p * co + c0..p * co + c0 + n];
                acc.iter_mut().zip(src).for_each(|(a, v)| *a += v);
            }
            for (j, a) in acc[..n].iter().enumerate() {
                rows[j * k + p] = *a;
            }
        }
    });
    dw
}

/// Bytes of transposed output gradient per weight-gradient call (see [`direct_weight_grad`]).
const GROUP_BYTES: usize = 512 << 10;

/// dW [Co, K] and dbias through [`crate::direct::wide_weight_grad`]: per image the input laid out by `layout`
/// and the output gradient at its padded width, transposed; the threads' partial sums are
/// added at the end.
fn direct_weight_grad(
    cpu: Cpu,
    d: &ConvDims,
    layout: &impl Layout,
    x: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let (k, (ho, wo)) = (d.k(), d.out_hw());
    let (wp, offs) = (layout.wp(), layout.offsets());
    let px = Pixels::new(ho, wo, wp);
    let len = px.span();
    let (img_in, img_out) = (d.ci * d.h * d.w, d.co * ho * wo);
    let zero = || (vec![0.0; k * d.co], vec![0.0; d.co]);
    // Every part is a dW of its own, zeroed, then read again when the parts are summed: where
    // dW is large (ResNet-18's 512-channel layers: 9.4 MB) one part per thread rather than
    // [`chunk`]'s four (those were 11 of the 7×7 layer's ~55 ms).
    let c = if k * d.co >= LARGE_DW {
        d.n.div_ceil(rayon::current_num_threads().max(1))
    } else {
        chunk(d.n)
    };
    // Images per call of the kernel: as many as keep their transposed dy within half an L2
    // (ResNet-18's 7×7 stage: 4, its 14×14 one 2, larger maps 1), so that dW, read and written
    // once per call, is not streamed through for every small image.
    let group = (GROUP_BYTES / (4 * len * d.co).max(1)).clamp(1, c);
    let parts = (0..d.n.div_ceil(c))
        .into_par_iter()
        .map(|part| {
            let (mut dwt, mut db) = zero();
            let mut xps = vec![vec![0.0; layout.size()]; group];
            let mut dyts = vec![vec![0.0; len * d.co + SLACK]; group];
            let images: Vec<usize> = (part * c..((part + 1) * c).min(d.n)).collect();
            for imgs in images.chunks(group) {
                for ((&img, xp), dyt) in imgs.iter().zip(&mut xps).zip(&mut dyts) {
                    layout.fill(&x[img * img_in..(img + 1) * img_in], xp);
                    let dyi = &dy[img * img_out..(img + 1) * img_out];
                    // Junk columns (ox ≥ wo) of dyt are never written: they stay zero.
                    for (c, plane) in dyi.chunks_exact(ho * wo).enumerate() {
                        db[c] += lane_total(plane);
                    }
                    // Transposed a block of 16 pixels at a time, all channels, so that the rows
                    // of dyt being written (16 × Co floats) stay in L1 rather than one whole
                    // pass over dyt per channel.
                    for oy in 0..ho {
                        for x0 in (0..wo).step_by(16) {
                            let x1 = (x0 + 16).min(wo);
                            let base = (oy * wp + x0) * d.co;
                            for (c, plane) in dyi.chunks_exact(ho * wo).enumerate() {
                                let src = &plane[oy * wo + x0..oy * wo + x1];
                                for (j, &v) in src.iter().enumerate() {
                                    dyt[base + j * d.co + c] = v;
                                }
                            }
                        }
                    }
                }
                let n = imgs.len();
                let xs: Vec<&[f32]> = xps[..n].iter().map(|v| &v[..]).collect();
                let ds: Vec<&[f32]> = dyts[..n].iter().map(|v| &v[..]).collect();
                wide_weight_grad_images(cpu, &offs, &xs, px, &ds, d.co, &mut dwt, true);
            }
            (dwt, db)
        })
        .collect::<Vec<_>>();
    (
        sum_transposed(&parts, k, d.co),
        parts.iter().fold(vec![0.0; d.co], |mut db, (_, b)| {
            db.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            db
        }),
    )
}

/// dx of the direct path: the convolution of dy, padded by k − 1 − p, by the flipped weights
/// with input and output channels swapped: Wf[ci][co][ky][kx] = W[co][ci][kh−1−ky][kw−1−kx].
fn direct_input_grad(cpu: Cpu, d: &ConvDims, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let (ho, wo) = d.out_hw();
    let mut wf = vec![0.0; w.len()];
    for co in 0..d.co {
        for ci in 0..d.ci {
            for ky in 0..d.kh {
                for kx in 0..d.kw {
                    wf[((ci * d.co + co) * d.kh + ky) * d.kw + kx] =
                        w[((co * d.ci + ci) * d.kh + d.kh - 1 - ky) * d.kw + d.kw - 1 - kx];
                }
            }
        }
    }
    let pad = [d.kh - 1 - d.padding[0], d.kw - 1 - d.padding[1]];
    let layout = Padding::new((d.co, ho, wo), (d.kh, d.kw), pad);
    direct_images(cpu, d.n, &layout, (dy, d.co * ho * wo), (d.h, d.w), &wf, &vec![0.0; d.ci])
}

/// dx of a strided layer ([`crate::layout::Phases`]), one phase (a, b) of dx at a time: its
/// rows a, a + s, … and columns b, b + s, … are a stride-1 convolution of the padded dy by the
/// taps that read that phase (the rest of dx, read by no tap, is zero).
fn phased_input_grad(cpu: Cpu, d: &ConvDims, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let (ho, wo) = d.out_hw();
    let g = PhaseGrad::new(d);
    let phases = g.phases();
    // Per phase: Wp[ci][(co, tap)] = W[co][ci][ky][kx].
    let weights: Vec<Vec<f32>> = phases
        .iter()
        .map(|ph| {
            let nt = ph.taps.len();
            let mut wp = vec![0.0; d.ci * d.co * nt];
            for ci in 0..d.ci {
                for co in 0..d.co {
                    for (j, &(ky, kx)) in ph.taps.iter().enumerate() {
                        wp[(ci * d.co + co) * nt + j] =
                            w[((co * d.ci + ci) * d.kh + ky) * d.kw + kx];
                    }
                }
            }
            wp
        })
        .collect();
    let wide_len = phases.iter().map(|ph| ph.rows * g.wp()).max().unwrap_or(0);
    let zeros = vec![0.0; d.ci];
    let (img_in, img_out) = (d.ci * d.h * d.w, d.co * ho * wo);
    let mut dx = vec![0.0; d.n * img_in];
    if dx.is_empty() {
        return dx;
    }
    let [sy, sx] = d.stride;
    let per = chunk(d.n);
    dx.par_chunks_mut(per * img_in).enumerate().for_each_init(
        || (vec![0.0; g.size()], vec![0.0; d.ci * wide_len]),
        |(dyp, wide), (i, dxs)| {
            for (j, dxi) in dxs.chunks_exact_mut(img_in).enumerate() {
                let img = i * per + j;
                g.fill(&dy[img * img_out..(img + 1) * img_out], dyp);
                for (ph, wp) in phases.iter().zip(&weights) {
                    if ph.taps.is_empty() {
                        continue;
                    }
                    let len = ph.rows * g.wp();
                    wide_conv(cpu, wp, &ph.offsets, dyp, len, &zeros, &mut wide[..d.ci * len]);
                    for (ci, plane) in dxi.chunks_exact_mut(d.h * d.w).enumerate() {
                        for r in 0..ph.rows {
                            let src = &wide[ci * len + r * g.wp()..][..ph.cols];
                            let row = &mut plane[(r * sy + ph.a) * d.w..][..d.w];
                            for (v, o) in src.iter().zip(row[ph.b..].iter_mut().step_by(sx)) {
                                *o = *v;
                            }
                        }
                    }
                }
            }
        },
    );
    dx
}

/// Gradients of [`conv2d_forward`]: (dx if `want_dx`, dw, dbias) from dy [N, Co, Ho, Wo].
pub fn conv2d_backward(
    cpu: Cpu,
    d: &ConvDims,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (k, p) = (d.k(), d.p());
    let img_in = d.ci * d.h * d.w;
    assert_eq!(x.len(), d.n * img_in, "conv2d backward: input");
    assert_eq!(w.len(), d.co * k, "conv2d backward: weight");
    assert_eq!(dy.len(), d.n * d.co * p, "conv2d backward: output gradient");
    if d.n == 0 || img_in == 0 || p == 0 || d.co == 0 {
        return (want_dx.then(|| vec![0.0; d.n * img_in]), vec![0.0; d.co * k], vec![0.0; d.co]);
    }
    if d.direct() {
        let dx = if !want_dx {
            None
        } else if winograd::applies(d) {
            Some(winograd::input_grad(cpu, d, w, dy))
        } else {
            Some(direct_input_grad(cpu, d, w, dy))
        };
        let (dw, db) = if winograd_wgrad::takes(d) {
            winograd_wgrad::weight_grad(cpu, d, x, dy)
        } else {
            let layout = Padding::new((d.ci, d.h, d.w), (d.kh, d.kw), d.padding);
            direct_weight_grad(cpu, d, &layout, x, dy)
        };
        return (dx, dw, db);
    }
    if d.phased() {
        let dx = want_dx.then(|| phased_input_grad(cpu, d, w, dy));
        let (dw, db) = direct_weight_grad(cpu, d, &Phases::new(d), x, dy);
        return (dx, dw, db);
    }
    // 1×1 stride 1: dW [Co, Ci] = Σ_n dY_n · X_nᵀ, dX_n = Wᵀ · dY_n.
    let c = chunk(d.n);
    let mut dx = vec![0.0; if want_dx { d.n * img_in } else { 0 }];
    let dx_chunks: Vec<Option<&mut [f32]>> = if want_dx {
        dx.chunks_mut(c * img_in).map(Some).collect()
    } else {
        (0..d.n.div_ceil(c)).map(|_| None).collect()
    };
    let zero = || (vec![0.0; d.co * k], vec![0.0; d.co]);
    let (dw, db) = dx_chunks
        .into_par_iter()
        .enumerate()
        .map(|(i, mut dxs)| {
            let (mut dw, mut db) = zero();
            let first = i * c;
            for img in first..(first + c).min(d.n) {
                let xi = &x[img * img_in..(img + 1) * img_in];
                let dyi = &dy[img * d.co * p..(img + 1) * d.co * p];
                matmul(d.co, k, p, &mut dw, true, dyi, p, 1, xi, 1, p, false);
                for (acc, row) in db.iter_mut().zip(dyi.chunks_exact(p)) {
                    *acc += lane_total(row);
                }
                if let Some(dxs) = dxs.as_deref_mut() {
                    let dxi = &mut dxs[(img - first) * img_in..(img - first + 1) * img_in];
                    matmul(d.ci, p, d.co, dxi, false, w, 1, k, dyi, p, 1, false);
                }
            }
            (dw, db)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .reduce(add_partials)
        .unwrap_or_else(zero);
    (want_dx.then_some(dx), dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gradients are the same bits on every call (partial sums per fixed chunk of images, added
    /// in order), whatever rayon's work stealing did: resumed runs repeat uninterrupted ones.
    #[test]
    fn gradients_do_not_depend_on_thread_scheduling() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().expect("pool");
        // The last one: Winograd's input and weight gradients (64 channels, 28×27).
        for (stride, pad, ci, co, hw) in [(1, 1, 3, 5, 9), (2, 1, 3, 5, 9), (1, 1, 64, 64, 28)] {
            let d = ConvDims {
                n: if ci == 64 { 9 } else { 37 },
                ci,
                h: hw,
                w: hw - 1,
                co,
                kh: 3,
                kw: 3,
                stride: [stride, stride],
                padding: [pad, pad],
            };
            let (ho, wo) = d.out_hw();
            let x: Vec<f32> =
                (0..d.n * d.ci * d.h * d.w).map(|i| (i as f32 * 0.731).sin()).collect();
            let w: Vec<f32> = (0..d.co * d.ci * 9).map(|i| (i as f32 * 0.37).cos()).collect();
            let dy: Vec<f32> =
                (0..d.n * d.co * ho * wo).map(|i| (i as f32 * 0.113).sin()).collect();
            let first = pool.install(|| conv2d_backward(Cpu::best(), &d, &x, &w, &dy, true));
            for _ in 0..8 {
                let again = pool.install(|| conv2d_backward(Cpu::best(), &d, &x, &w, &dy, true));
                assert!(
                    again.1 == first.1 && again.2 == first.2 && again.0 == first.0,
                    "stride {stride}: gradients changed between calls"
                );
            }
        }
    }

    /// x [n, ci, h, w] ⊛ w + bias, and the three gradients of Σ y·r, by the definition.
    fn reference(d: &ConvDims, x: &[f32], w: &[f32], b: &[f32], r: &[f32]) -> [Vec<f32>; 4] {
        let (ho, wo) = d.out_hw();
        let mut y = vec![0.0f64; d.n * d.co * ho * wo];
        let (mut dx, mut dw, mut db) =
            (vec![0.0f64; x.len()], vec![0.0f64; w.len()], vec![0.0f64; b.len()]);
        for n in 0..d.n {
            for co in 0..d.co {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let o = ((n * d.co + co) * ho + oy) * wo + ox;
                        y[o] += b[co] as f64;
                        db[co] += r[o] as f64;
                        for ci in 0..d.ci {
                            for ky in 0..d.kh {
                                for kx in 0..d.kw {
                                    let (iy, ix) = (
                                        (oy * d.stride[0] + ky) as isize - d.padding[0] as isize,
                                        (ox * d.stride[1] + kx) as isize - d.padding[1] as isize,
                                    );
                                    if iy < 0 || ix < 0 || iy >= d.h as isize || ix >= d.w as isize
                                    {
                                        continue;
                                    }
                                    let xi =
                                        ((n * d.ci + ci) * d.h + iy as usize) * d.w + ix as usize;
                                    let wi = ((co * d.ci + ci) * d.kh + ky) * d.kw + kx;
                                    y[o] += (x[xi] * w[wi]) as f64;
                                    dx[xi] += (r[o] * w[wi]) as f64;
                                    dw[wi] += (r[o] * x[xi]) as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        [y, dx, dw, db].map(|v| v.into_iter().map(|a| a as f32).collect())
    }

    /// Every ISA this CPU has, direct (stride 1) and im2col (stride 2, 1×1) paths, odd sizes
    /// and channel counts across the tile widths: values and all three gradients against the
    /// definition.
    #[test]
    fn every_isa_matches_the_definition() {
        let val = |len: usize, seed: u32| -> Vec<f32> {
            (0..len)
                .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
                .collect()
        };
        // (n, ci, co, h, w, k, stride, pad)
        let square = |(n, ci, co, h, w, k, s, p)| ConvDims {
            n,
            ci,
            h,
            w,
            co,
            kh: k,
            kw: k,
            stride: [s, s],
            padding: [p, p],
        };
        // (n, ci, co, h, w, k, stride, pad)
        let mut cases: Vec<ConvDims> = [
            (2, 3, 5, 7, 9, 3, 1, 1),
            (1, 4, 17, 8, 8, 3, 2, 1),
            (3, 2, 33, 5, 6, 1, 1, 0),
            (2, 5, 7, 9, 7, 5, 1, 2),
            (1, 16, 16, 6, 6, 3, 1, 1),
            // Winograd: forward and input gradient (7×7 tiles), and the weight gradient too
            // (14×14 tiles, 64 output channels).
            (2, 64, 70, 13, 14, 3, 1, 1),
            (1, 64, 64, 28, 27, 3, 1, 1),
            // On the input's phases: ResNet-18's stem (7×7/2 pad 3) on odd sizes, a 1×1/2
            // shortcut (one phase read, dx zero on the others), 3×3/2 on an odd image, a
            // patchify 2×2/2, stride 3, and stride 1 with padding as large as the kernel.
            (2, 3, 9, 11, 13, 7, 2, 3),
            (2, 6, 13, 9, 7, 1, 2, 0),
            (1, 5, 7, 9, 9, 3, 2, 1),
            (2, 3, 4, 8, 6, 2, 2, 0),
            (1, 2, 5, 10, 8, 3, 3, 1),
            (1, 3, 4, 5, 4, 1, 1, 1),
            (1, 2, 3, 3, 2, 3, 2, 3),
        ]
        .into_iter()
        .map(square)
        .collect();
        // Different strides, kernels and padding per axis.
        cases.push(ConvDims {
            n: 2,
            ci: 3,
            h: 9,
            w: 8,
            co: 7,
            kh: 3,
            kw: 5,
            stride: [2, 1],
            padding: [1, 2],
        });
        cases.push(ConvDims {
            n: 1,
            ci: 2,
            h: 6,
            w: 11,
            co: 9,
            kh: 1,
            kw: 3,
            stride: [1, 3],
            padding: [0, 1],
        });
        for d in cases {
            let ConvDims { n, ci, co, h, w, kh: k, stride: [s, _], padding: [p, _], .. } = d;
            let kw = d.kw;
            let (ho, wo) = d.out_hw();
            let (x, wt, b, r) = (
                val(n * ci * h * w, 1),
                val(co * ci * k * kw, 2),
                val(co, 3),
                val(n * co * ho * wo, 4),
            );
            let want = reference(&d, &x, &wt, &b, &r);
            for cpu in Cpu::all() {
                let y = conv2d_forward(cpu, &d, &x, &wt, &b);
                let (dx, dw, db) = conv2d_backward(cpu, &d, &x, &wt, &r, true);
                let what = format!(
                    "{:?} n {n} ci {ci} co {co} {h}x{w} k {k}x{kw} stride {s}/{:?} pad {p}/{:?}",
                    cpu.isa(),
                    d.stride,
                    d.padding
                );
                for (name, got, want) in [
                    ("y", &y, &want[0]),
                    ("dx", &dx.expect("dx"), &want[1]),
                    ("dw", &dw, &want[2]),
                    ("db", &db, &want[3]),
                ] {
                    assert_eq!(got.len(), want.len(), "{what}: {name} length");
                    // Winograd F(4×4, 3×3) rounds in proportion to the terms summed, not the
                    // sum: near-zero outputs of a layer whose values reach ±20 may be off by
                    // ~1e-4, hence the share of the largest value (a wrong index or tap would
                    // be off by a share near 1).
                    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                    for (i, (a, e)) in got.iter().zip(want).enumerate() {
                        assert!(
                            (a - e).abs() < 1e-4 * (1.0 + e.abs()) + 2e-5 * scale,
                            "{what}: {name}[{i}] {a} vs {e}"
                        );
                    }
                }
            }
        }
    }

    /// The weight gradient with several images per kernel call (a one-thread pool: 9 images
    /// make chunks of 3, and these small maps groups of 3) against the definition, stride 1 and
    /// on the input's phases, every ISA.
    #[test]
    fn weight_gradient_of_image_groups_matches_the_definition() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
        for (s, k, p) in [(1, 3, 1), (2, 3, 1), (2, 1, 0)] {
            let d = ConvDims {
                n: 9,
                ci: 5,
                h: 7,
                w: 6,
                co: 19,
                kh: k,
                kw: k,
                stride: [s, s],
                padding: [p, p],
            };
            let (ho, wo) = d.out_hw();
            let val = |len: usize, f: f32| -> Vec<f32> {
                (0..len).map(|i| (i as f32 * f).sin()).collect()
            };
            let (x, w, b) = (
                val(d.n * d.ci * d.h * d.w, 0.731),
                val(d.co * d.ci * k * k, 0.37),
                val(d.co, 0.5),
            );
            let r = val(d.n * d.co * ho * wo, 0.113);
            let want = reference(&d, &x, &w, &b, &r);
            for cpu in Cpu::all() {
                let (_, dw, db) = pool.install(|| conv2d_backward(cpu, &d, &x, &w, &r, false));
                for (name, got, want) in [("dw", &dw, &want[2]), ("db", &db, &want[3])] {
                    for (i, (a, e)) in got.iter().zip(want).enumerate() {
                        assert!(
                            (a - e).abs() < 1e-4 * (1.0 + e.abs()),
                            "{:?} stride {s} k {k}: {name}[{i}] {a} vs {e}",
                            cpu.isa()
                        );
                    }
                }
            }
        }
    }

    /// The kernel's weight gradient against central finite differences of the kernel itself.
    #[test]
    fn weight_gradient_matches_finite_differences() {
        let d = ConvDims {
            n: 2,
            ci: 2,
            h: 5,
            w: 4,
            co: 3,
            kh: 3,
            kw: 3,
            stride: [2, 1],
            padding: [1, 1],
        };
        let val = |len: usize, seed: u32| -> Vec<f32> {
            (0..len)
                .map(|i| (((i as u32 * 2654435761u32) ^ seed) % 1000) as f32 / 500.0 - 1.0)
                .collect()
        };
        let x = val(d.n * d.ci * d.h * d.w, 1);
        let w = val(d.co * d.ci * 9, 2);
        let b = val(d.co, 3);
        let (ho, wo) = d.out_hw();
        let r = val(d.n * d.co * ho * wo, 4);
        let loss = |w: &[f32]| -> f64 {
            conv2d_forward(Cpu::best(), &d, &x, w, &b)
                .iter()
                .zip(&r)
                .map(|(a, b)| (*a * *b) as f64)
                .sum()
        };
        let (_, dw, _) = conv2d_backward(Cpu::best(), &d, &x, &w, &r, false);
        let eps = 1e-2f32;
        for k in 0..w.len() {
            let (mut wp, mut wm) = (w.clone(), w.clone());
            wp[k] += eps;
            wm[k] -= eps;
            let fd = (loss(&wp) - loss(&wm)) / (2.0 * eps as f64);
            assert!(
                (fd - dw[k] as f64).abs() < 2e-3,
                "dW[{k}]: analytic {} vs finite difference {fd}",
                dw[k]
            );
        }
    }
}
