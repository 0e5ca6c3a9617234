//! 2-D max pooling (NCHW, f32, zero-free padding: padded cells never win) with its backward pass.
//!
//! Why: burn-flex keeps the argmax of every output as an i64 index into the plane (8 bytes per
//! output: 51 MB for ResNet-18's stem at batch 32) and its backward scatters through them into a
//! freshly allocated full-size buffer; on a ResNet-18 step at 224 px that scatter was ~5% of the
//! time. Here the forward pass keeps the winning tap of each output as one byte and the
//! backward pass fills each input plane in one go (plane in L1/L2), planes over rayon's threads.
//! The forward pass runs tap by tap over whole output rows, so that LLVM vectorises it (window
//! by window, with a branch per tap, it was ~8% of a ResNet-18 step at 224 px with the
//! backward pass).

use rayon::prelude::*;

use crate::isa::{Cpu, Isa, Kernel};
use crate::simd::{Plain, Simd};

/// Shapes of one max-pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolDims {
    /// Planes: batch × channels.
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl PoolDims {
    /// Output height and width (floor, as PyTorch's default and Burn's).
    pub fn out_hw(&self) -> (usize, usize) {
        let ho = (self.h + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1;
        let wo = (self.w + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1;
        (ho, wo)
    }

    /// Whether these kernels take it: a window of at most 255 taps (the argmax is a byte),
    /// padding at most half the window (so that every window holds an input cell, as PyTorch
    /// requires), strides ≥ 1 and a non-empty output.
    pub fn supported(&self) -> bool {
        let [kh, kw] = self.kernel;
        kh >= 1
            && kw >= 1
            && kh * kw <= 255
            && self.stride[0] >= 1
            && self.stride[1] >= 1
            && 2 * self.padding[0] <= kh
            && 2 * self.padding[1] <= kw
            && self.h + 2 * self.padding[0] >= kh
            && self.w + 2 * self.padding[1] >= kw
    }
}

/// No tap yet (windows have at most 255 taps, 0..=254).
const NONE: u8 = u8::MAX;

/// The rows (or columns) of the window of output `o` that lie inside 0..len: taps lo..hi.
#[inline]
fn taps(o: usize, stride: usize, pad: usize, k: usize, len: usize) -> (usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let lo = (-start).max(0) as usize;
    let hi = (len as isize - start).clamp(0, k as isize) as usize;
    (lo.min(hi), hi)
}

/// (y [planes, Ho, Wo], argmax [planes, Ho, Wo]: the winning tap ky·kw + kx of each window, the
/// first in row-major order on ties; NaN wins, as in PyTorch).
pub fn max_pool2d_forward(d: &PoolDims, x: &[f32]) -> (Vec<f32>, Vec<u8>) {
    assert!(d.supported(), "max pool: unsupported shape {d:?}");
    assert_eq!(x.len(), d.planes * d.h * d.w, "max pool: input");
    let (ho, wo) = d.out_hw();
    let mut y = vec![0.0; d.planes * ho * wo];
    let mut arg = vec![0u8; d.planes * ho * wo];
    if y.is_empty() {
        return (y, arg);
    }
    // Tap by tap over a whole output row (loops LLVM vectorises, the strided loads included),
    // each output visiting its taps in row-major order as the definition does. Compiled for
    // AVX-512 (`Cpu::run`) the compare-and-take vectorises with masked blends: ResNet-18's stem
    // pool at batch 32 29 → 19 ms on a Zen 4; built for baseline x86-64 (SSE2) it stays
    // scalar, and LLVM's AVX2 code measured slower still (46–48 ms), so other ISAs run the
    // baseline build.
    let cpu = Cpu::current();
    let vectorised = cpu.isa() == Isa::Avx512;
    y.par_chunks_mut(ho * wo).zip(arg.par_chunks_mut(ho * wo)).enumerate().for_each(
        |(p, (yp, ap))| {
            let plane = &x[p * d.h * d.w..(p + 1) * d.h * d.w];
            let k = PlaneArgMax { d, plane, y: yp, arg: ap };
            if vectorised { cpu.run(k) } else { k.run(Plain::new()) }
        },
    );
    (y, arg)
}

/// One plane of [`max_pool2d_forward`].
struct PlaneArgMax<'a> {
    d: &'a PoolDims,
    plane: &'a [f32],
    y: &'a mut [f32],
    arg: &'a mut [u8],
}

impl Kernel for PlaneArgMax<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, _: S) {
        let PlaneArgMax { d, plane, y, arg } = self;
        let (_, wo) = d.out_hw();
        let ([kh, kw], [sh, sw], [ph, pw]) = (d.kernel, d.stride, d.padding);
        for ((oy, best), at) in y.chunks_exact_mut(wo).enumerate().zip(arg.chunks_exact_mut(wo)) {
            best.fill(f32::NEG_INFINITY);
            at.fill(NONE);
            let (ky0, ky1) = taps(oy, sh, ph, kh, d.h);
            for ky in ky0..ky1 {
                let row = &plane[(oy * sh + ky - ph) * d.w..][..d.w];
                if (kw, sw, pw) == (3, 2, 1) {
                    pool_row_arg_k3s2p1(best, at, row, (ky * kw) as u8);
                    continue;
                }
                for kx in 0..kw {
                    // Outputs whose tap kx lies inside the row: ox·sw + kx − pw in 0..w.
                    let lo = pw.saturating_sub(kx).div_ceil(sw);
                    let hi = (d.w + pw).saturating_sub(kx).div_ceil(sw).min(wo);
                    if lo >= hi {
                        continue;
                    }
                    let t = (ky * kw + kx) as u8;
                    let first = lo * sw + kx - pw;
                    let src = row[first..].iter().step_by(sw);
                    for ((b, a), &v) in best[lo..hi].iter_mut().zip(&mut at[lo..hi]).zip(src) {
                        take(b, a, v, t);
                    }
                }
            }
        }
    }
}

/// One tap of a window: the first tap, a larger value, or a NaN takes the window (tap `t`); a
/// NaN keeps it. Taps visited in row-major order, so ties go to the first, as in the definition.
#[inline(always)]
fn take(b: &mut f32, a: &mut u8, v: f32, t: u8) {
    let take = *a == NONE || v > *b || (v.is_nan() && !b.is_nan());
    *b = if take { v } else { *b };
    *a = if take { t } else { *a };
}

/// [`max_pool2d_forward`]'s row of taps t0, t0 + 1, t0 + 2 for 3 taps, stride 2, padding 1
/// (ResNet-18's stem pool; the strided loop was 2.5% of its training step at 224 px), read as
/// pairs as in [`pool_row_k3s2p1`], each window's taps in order.
#[inline(always)]
fn pool_row_arg_k3s2p1(best: &mut [f32], at: &mut [u8], row: &[f32], t0: u8) {
    let (Some((b0, best)), Some((a0, at))) = (best.split_first_mut(), at.split_first_mut()) else {
        return;
    };
    // Window 0: tap t0 is in the padding.
    for (i, &v) in row.iter().take(2).enumerate() {
        take(b0, a0, v, t0 + 1 + i as u8);
    }
    let (pairs, last) = row.as_chunks::<2>();
    for (((b, a), prev), cur) in
        best.iter_mut().zip(at.iter_mut()).zip(pairs).zip(pairs.iter().skip(1))
    {
        take(b, a, prev[1], t0);
        take(b, a, cur[0], t0 + 1);
        take(b, a, cur[1], t0 + 2);
    }
    // An odd row: the last window holds the last pair's second and the odd one out.
    if let ([v], Some(prev)) = (last, pairs.last())
        && best.len() == pairs.len()
        && let (Some(b), Some(a)) = (best.last_mut(), at.last_mut())
    {
        take(b, a, prev[1], t0);
        take(b, a, *v, t0 + 1);
    }
}

/// The larger of `b` and `v`, a NaN in either winning (as PyTorch's max pool propagates it).
#[inline(always)]
fn max_nan(b: f32, v: f32) -> f32 {
    if v > b || v.is_nan() { v } else { b }
}

/// `best[o] = max(best[o], row[o·K .. o·K + K])` for windows of K taps side by side (stride K,
/// no padding): the row read as K-float arrays, which LLVM vectorises with shuffles, where a
/// strided loop stays scalar.
#[inline(always)]
fn pool_row<const K: usize>(best: &mut [f32], row: &[f32]) {
    let (windows, _) = row.as_chunks::<K>();
    for (b, win) in best.iter_mut().zip(windows) {
        *b = win.iter().fold(*b, |b, &v| max_nan(b, v));
    }
}

/// `best[o] = max(best[o], row[2o − 1], row[2o], row[2o + 1])`: 3 taps, stride 2, padding 1
/// (ResNet-18's stem pool, a strided loop 4% of its inference at 224 px). Window o ≥ 1 is the
/// pair (row[2o], row[2o + 1]) and the previous pair's second, read as 2-float arrays (shuffles,
/// vectorised); window 0 starts in the padding.
#[inline(always)]
fn pool_row_k3s2p1(best: &mut [f32], row: &[f32]) {
    let Some((first, rest)) = best.split_first_mut() else {
        return;
    };
    *first = row.iter().take(2).fold(*first, |b, &v| max_nan(b, v));
    let (pairs, last) = row.as_chunks::<2>();
    for ((b, prev), cur) in rest.iter_mut().zip(pairs).zip(pairs.iter().skip(1)) {
        *b = max_nan(max_nan(max_nan(*b, prev[1]), cur[0]), cur[1]);
    }
    // An odd row: the last window is the last pair's second and the odd one out.
    if let ([v], Some(prev)) = (last, pairs.last())
        && rest.len() == pairs.len()
        && let Some(b) = rest.last_mut()
    {
        *b = max_nan(max_nan(*b, prev[1]), *v);
    }
}

/// y [planes, Ho, Wo] of a max pool without the argmax: inference (no backward pass to route
/// gradients to the winners). The same values as [`max_pool2d_forward`]'s, at a fraction of its
/// time where windows lie side by side (2×2/2, 3×3/3: LeNet-5's pools, with the argmax 36% of its
/// evaluation pass).
pub fn max_pool2d_values(d: &PoolDims, x: &[f32]) -> Vec<f32> {
    assert!(d.supported(), "max pool: unsupported shape {d:?}");
    assert_eq!(x.len(), d.planes * d.h * d.w, "max pool: input");
    let (ho, wo) = d.out_hw();
    let mut y = vec![f32::NEG_INFINITY; d.planes * ho * wo];
    if y.is_empty() {
        return y;
    }
    // Compiled for the CPU's ISA (stem pool at batch 32: 7.7 → 5.1–5.5 ms on a Zen 4, AVX2 and
    // AVX-512 alike).
    let cpu = Cpu::current();
    y.par_chunks_mut(ho * wo).enumerate().for_each(|(p, yp)| {
        let plane = &x[p * d.h * d.w..(p + 1) * d.h * d.w];
        cpu.run(PlaneMax { d, plane, y: yp });
    });
    y
}

/// One plane of [`max_pool2d_values`].
struct PlaneMax<'a> {
    d: &'a PoolDims,
    plane: &'a [f32],
    y: &'a mut [f32],
}

impl Kernel for PlaneMax<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, _: S) {
        let PlaneMax { d, plane, y } = self;
        let (_, wo) = d.out_hw();
        let ([kh, kw], [sh, sw], [ph, pw]) = (d.kernel, d.stride, d.padding);
        for (oy, best) in y.chunks_exact_mut(wo).enumerate() {
            let (ky0, ky1) = taps(oy, sh, ph, kh, d.h);
            for ky in ky0..ky1 {
                let row = &plane[(oy * sh + ky - ph) * d.w..][..d.w];
                match (kw, sw, pw) {
                    (2, 2, 0) => pool_row::<2>(best, row),
                    (3, 3, 0) => pool_row::<3>(best, row),
                    (3, 2, 1) => pool_row_k3s2p1(best, row),
                    _ => {
                        for kx in 0..kw {
                            let lo = pw.saturating_sub(kx).div_ceil(sw);
                            let hi = (d.w + pw).saturating_sub(kx).div_ceil(sw).min(wo);
                            if lo >= hi {
                                continue;
                            }
                            let src = row[lo * sw + kx - pw..].iter().step_by(sw);
                            for (b, &v) in best[lo..hi].iter_mut().zip(src) {
                                *b = max_nan(*b, v);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// dx [planes, H, W] of [`max_pool2d_forward`]: each output's gradient to its window's winner.
pub fn max_pool2d_backward(d: &PoolDims, arg: &[u8], dy: &[f32]) -> Vec<f32> {
    assert!(d.supported(), "max pool backward: unsupported shape {d:?}");
    let (ho, wo) = d.out_hw();
    assert!(
        arg.len() == d.planes * ho * wo && dy.len() == arg.len(),
        "max pool backward: operand sizes"
    );
    let ([kh, kw], [sh, sw], [ph, pw]) = (d.kernel, d.stride, d.padding);
    let mut dx = vec![0.0; d.planes * d.h * d.w];
    if dx.is_empty() {
        return dx;
    }
    // Tap t's offset in the plane from its window's top-left corner (padding included), looked
    // up rather than divided out per output (an integer division per element was ~2% of a
    // ResNet-18 step).
    let offset: Vec<usize> = (0..kh * kw).map(|t| (t / kw) * d.w + t % kw).collect();
    dx.par_chunks_mut(d.h * d.w).enumerate().for_each(|(p, plane)| {
        let (ap, gp) = (&arg[p * ho * wo..(p + 1) * ho * wo], &dy[p * ho * wo..(p + 1) * ho * wo]);
        for oy in 0..ho {
            for ox in 0..wo {
                let t = ap[oy * wo + ox] as usize;
                // In range: the forward pass only picks taps inside the image, so the corner
                // plus the tap's offset is past the padding.
                let at = (oy * sh) * d.w + ox * sw + offset[t] - ph * d.w - pw;
                plane[at] += gp[oy * wo + ox];
            }
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, window by window, in the plainest form.
    fn reference(d: &PoolDims, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (ho, wo) = d.out_hw();
        let mut y = vec![0.0; d.planes * ho * wo];
        let mut dx = vec![0.0; x.len()];
        for p in 0..d.planes {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut best = (f32::NEG_INFINITY, usize::MAX);
                    for ky in 0..d.kernel[0] {
                        for kx in 0..d.kernel[1] {
                            let iy = (oy * d.stride[0] + ky) as isize - d.padding[0] as isize;
                            let ix = (ox * d.stride[1] + kx) as isize - d.padding[1] as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < d.h && (ix as usize) < d.w {
                                let i = (p * d.h + iy as usize) * d.w + ix as usize;
                                if x[i] > best.0 || best.1 == usize::MAX {
                                    best = (x[i], i);
                                }
                            }
                        }
                    }
                    y[(p * ho + oy) * wo + ox] = best.0;
                    dx[best.1] += dy[(p * ho + oy) * wo + ox];
                }
            }
        }
        (y, dx)
    }

    /// Values and gradients against the definition: ResNet's 3×3/2 padding 1 on odd and even
    /// sides, LeNet's 2×2/2, overlapping 3×3/1 windows (an input in several windows), a 1×1
    /// window, non-square kernels and strides.
    #[test]
    fn matches_the_definition() {
        for (planes, h, w, kernel, stride, padding) in [
            (6, 13, 12, [3, 3], [2, 2], [1, 1]),
            (2, 12, 13, [3, 3], [2, 2], [1, 1]),
            (2, 3, 1, [3, 3], [2, 2], [1, 1]),
            (2, 2, 2, [3, 3], [2, 2], [1, 1]),
            (2, 4, 3, [3, 3], [2, 2], [1, 1]),
            (3, 8, 8, [2, 2], [2, 2], [0, 0]),
            (2, 7, 9, [3, 3], [1, 1], [1, 1]),
            (2, 5, 5, [1, 1], [1, 1], [0, 0]),
            (4, 9, 11, [3, 2], [2, 1], [1, 0]),
            // Side-by-side windows with a leftover column and row (floor), and 3×3/3.
            (3, 9, 11, [2, 2], [2, 2], [0, 0]),
            (2, 10, 11, [3, 3], [3, 3], [0, 0]),
        ] {
            let d = PoolDims { planes, h, w, kernel, stride, padding };
            // Distinct values, then three values only (ties everywhere: the first tap in
            // row-major order takes the window, and gets the gradient).
            let distinct = |i: usize| ((i * 7919) % 1013) as f32 - 500.0;
            let ties = |i: usize| ((i * 7919) % 1013 % 2) as f32;
            for x in [distinct, ties].map(|f| (0..planes * h * w).map(f).collect::<Vec<f32>>()) {
                let (ho, wo) = d.out_hw();
                let dy: Vec<f32> = (0..planes * ho * wo).map(|i| (i as f32 * 0.37).sin()).collect();
                let (y, arg) = max_pool2d_forward(&d, &x);
                let (want_y, want_dx) = reference(&d, &x, &dy);
                assert_eq!(y, want_y, "{d:?}");
                assert_eq!(max_pool2d_values(&d, &x), want_y, "values only: {d:?}");
                let dx = max_pool2d_backward(&d, &arg, &dy);
                for (i, (a, b)) in dx.iter().zip(&want_dx).enumerate() {
                    assert!((a - b).abs() < 1e-5, "{d:?} dx[{i}]: {a} vs {b}");
                }
            }
        }
    }

    /// A NaN in a window is its maximum (as in PyTorch), so a diverging run still shows NaN.
    #[test]
    fn nan_wins_its_window() {
        let d = PoolDims { planes: 1, h: 2, w: 2, kernel: [2, 2], stride: [2, 2], padding: [0, 0] };
        let (y, arg) = max_pool2d_forward(&d, &[1.0, f32::NAN, 5.0, 2.0]);
        assert!(y[0].is_nan());
        assert_eq!(arg, [1]);
        for x in [[1.0, f32::NAN, 5.0, 2.0], [f32::NAN, 1.0, 5.0, 2.0], [1.0, 5.0, 2.0, f32::NAN]] {
            assert!(max_pool2d_values(&d, &x)[0].is_nan(), "{x:?}");
            let d3 = PoolDims { kernel: [2, 2], stride: [1, 1], ..d };
            assert!(max_pool2d_values(&d3, &x)[0].is_nan(), "{x:?}");
        }
        let all_low = [f32::NEG_INFINITY; 4];
        assert_eq!(max_pool2d_values(&d, &all_low), [f32::NEG_INFINITY]);
        // ResNet's 3×3/2 padding 1 on a 1×5 row (windows 0..=1, 1..=3, 3..=4): a NaN at each
        // position reaches exactly the windows that hold it.
        let d = PoolDims { planes: 1, h: 1, w: 5, kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
        for at in 0..5 {
            let mut x = [1.0, 2.0, 3.0, 4.0, 5.0];
            x[at] = f32::NAN;
            let y = max_pool2d_values(&d, &x);
            let nan: Vec<bool> = y.iter().map(|v| v.is_nan()).collect();
            let want: Vec<bool> =
                (0..3usize).map(|o| (2 * o).saturating_sub(1) <= at && at <= 2 * o + 1).collect();
            assert_eq!(nan, want, "NaN at {at}: {y:?}");
        }
    }

    /// Shapes it declines rather than computing wrongly.
    #[test]
    fn unsupported_shapes() {
        let ok =
            PoolDims { planes: 1, h: 8, w: 8, kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
        assert!(ok.supported());
        assert!(!PoolDims { padding: [2, 2], ..ok }.supported());
        assert!(!PoolDims { kernel: [16, 16], h: 16, w: 16, ..ok }.supported());
        assert!(!PoolDims { stride: [0, 1], ..ok }.supported());
        assert!(!PoolDims { h: 1, padding: [0, 0], ..ok }.supported());
    }
}
