//! Training-mode batch norm over NCHW (optionally followed by ReLU) on f32 slices: statistics,
//! forward and backward each a couple of passes shared out over the channels' blocks.
//!
//! Why: Burn's `batch_norm_train` and its backward are built from tensor operations (swap
//! dims, reshapes, means, broadcasts), each one pass over the activation, many of them copies
//! and all single-threaded on flex; with the ReLU after it, a ResNet-20 step spent more time in
//! batch norm than in the convolutions it follows. These loops are memory-bound: they are
//! compiled for the target's baseline and vectorised by the compiler, the same on every ISA.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::par::{lane_sum, lane_total, par_chunks_uninit};

/// Panics unless x is [n, c, inner] and the per-channel operands have c values.
fn check(x: &[f32], n: usize, c: usize, inner: usize, gamma: &[f32], beta: &[f32], st: &[f32]) {
    assert_eq!(x.len(), n * c * inner, "batch norm: x is not [N, C, inner]");
    assert!(
        gamma.len() == c && beta.len() == c && st.len() == 2 * c,
        "batch norm: γ, β need C values and the statistics 2·C"
    );
}

/// Mean and biased variance of every channel: [means…, variances…]. Each block (one sample's
/// channel, ≤ 1,024 values here) gives its sum and its squared deviations from its own mean
/// (f32 lanes, the second pass over the block in L1), and blocks combine in f64 (Chan et al.:
/// M2 = Σ M2_b + Σ m·(mean_b − mean)²): one pass over the activation, not two.
pub fn stats(x: &[f32], n: usize, c: usize, inner: usize) -> Vec<f32> {
    assert_eq!(x.len(), n * c * inner, "batch norm statistics: x is not [N, C, inner]");
    let count = (n * inner).max(1) as f64;
    let per: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let blocks: Vec<(f64, f64)> = (0..n)
                .map(|i| {
                    let b = &x[(i * c + ch) * inner..(i * c + ch + 1) * inner];
                    let sum = lane_total(b);
                    let m = sum / inner.max(1) as f32;
                    (sum as f64, lane_sum(b, b, |x, _| (x - m) * (x - m)) as f64)
                })
                .collect();
            let mean = blocks.iter().map(|b| b.0).sum::<f64>() / count;
            let m = inner as f64;
            let var =
                blocks.iter().map(|&(s, m2)| m2 + m * (s / m.max(1.0) - mean).powi(2)).sum::<f64>()
                    / count;
            (mean as f32, var as f32)
        })
        .collect();
    per.iter().map(|p| p.0).chain(per.iter().map(|p| p.1)).collect()
}

/// y = γ·(x − mean)/√(var + ε) + β, then max(·, 0) if `relu`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    x: &[f32],
    c: usize,
    inner: usize,
    gamma: &[f32],
    beta: &[f32],
    st: &[f32],
    eps: f64,
    relu: bool,
) -> Vec<f32> {
    assert!(
        c > 0 && inner > 0 && x.len().is_multiple_of(c * inner) || x.is_empty(),
        "batch norm: x is not [N, C, inner]"
    );
    check(x, x.len() / (c * inner).max(1), c, inner, gamma, beta, st);
    if inner == 0 {
        return vec![0.0; x.len()];
    }
    let (scale, shift) = affine(c, gamma, beta, st, eps);
    // SAFETY: every element of each block is written.
    unsafe {
        par_chunks_uninit(
            x.len(),
            inner,
            || (),
            |_, i, yb| {
                let xb = &x[i * inner..(i + 1) * inner];
                let (a, b) = (scale[i % c], shift[i % c]);
                if relu {
                    for (o, &v) in yb.iter_mut().zip(xb) {
                        o.write((a * v + b).max(0.0));
                    }
                } else {
                    for (o, &v) in yb.iter_mut().zip(xb) {
                        o.write(a * v + b);
                    }
                }
            },
        )
    }
}

/// Per channel, y = scale·x + shift.
fn affine(c: usize, gamma: &[f32], beta: &[f32], st: &[f32], eps: f64) -> (Vec<f32>, Vec<f32>) {
    (0..c)
        .map(|ch| {
            let inv = 1.0 / (st[c + ch] as f64 + eps).sqrt();
            let a = gamma[ch] as f64 * inv;
            (a as f32, (beta[ch] as f64 - st[ch] as f64 * a) as f32)
        })
        .unzip()
}

/// Gradients (dx, dγ, dβ) of [`forward`] from dy; with `relu`, dy is first masked where the
/// output was 0. Two passes over blocks (one sample's channel each), both parallel: the masked
/// gradient g with its per-block sums Σg and Σg·(x − mean), then
/// dx = γ·inv·(g − Σg/M − x̂·Σ(g·x̂)/M) with x̂ = (x − mean)·inv.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    n: usize,
    c: usize,
    inner: usize,
    gamma: &[f32],
    beta: &[f32],
    st: &[f32],
    eps: f64,
    relu: bool,
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    check(x, n, c, inner, gamma, beta, st);
    // Without this, a short dy would end the zipped chunks early and leave dx uninitialised.
    assert_eq!(dy.len(), x.len(), "batch norm backward: dy and x differ in length");
    if inner == 0 || n == 0 {
        return (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
    }
    let (scale, shift) = affine(c, gamma, beta, st, eps);
    let inv: Vec<f64> = (0..c).map(|ch| 1.0 / (st[c + ch] as f64 + eps).sqrt()).collect();
    // Not `vec![0.0; n]`: a serial memset of the whole activation while the other threads
    // wait; the first pass writes every block.
    let mut fresh = Box::<[f32]>::new_uninit_slice(x.len());
    let partial: Vec<(f32, f32)> = fresh
        .par_chunks_mut(inner)
        .zip(x.par_chunks(inner).zip(dy.par_chunks(inner)))
        .enumerate()
        .map(|(blk, (g, (xb, dyb)))| {
            let ch = blk % c;
            if relu {
                let (a, b) = (scale[ch], shift[ch]);
                for ((o, &v), &d) in g.iter_mut().zip(xb).zip(dyb) {
                    o.write(if a * v + b > 0.0 { d } else { 0.0 });
                }
            } else {
                for (o, &d) in g.iter_mut().zip(dyb) {
                    o.write(d);
                }
            }
            // SAFETY: every element of the block was written just above.
            let g = unsafe { &*(g as *const [MaybeUninit<f32>] as *const [f32]) };
            let m = st[ch];
            (lane_total(g), lane_sum(g, xb, |v, x| v * (x - m)))
        })
        .collect();
    // SAFETY: the blocks cover the buffer and each was written above.
    let mut dx = unsafe { fresh.assume_init() }.into_vec();
    let mut sums = vec![(0f64, 0f64); c];
    for (blk, (s1, s2)) in partial.into_iter().enumerate() {
        sums[blk % c].0 += s1 as f64;
        sums[blk % c].1 += s2 as f64;
    }
    let count = (n * inner) as f64;
    dx.par_chunks_mut(inner).zip(x.par_chunks(inner)).enumerate().for_each(|(blk, (g, xb))| {
        let ch = blk % c;
        let (s, sxm) = sums[ch];
        let k = (gamma[ch] as f64 * inv[ch]) as f32;
        let mean_g = (s / count) as f32;
        // x̂·Σ(g·x̂)/M = (x − mean)·inv²·Σ(g·(x − mean))/M
        let proj = (sxm * inv[ch] * inv[ch] / count) as f32;
        let m = st[ch];
        for (o, &v) in g.iter_mut().zip(xb) {
            *o = k * (*o - mean_g - (v - m) * proj);
        }
    });
    let dgamma = sums.iter().zip(&inv).map(|(p, i)| (p.1 * i) as f32).collect();
    let dbeta = sums.iter().map(|p| p.0 as f32).collect();
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forward, statistics and backward against the definitions in f64 (odd sizes, with and
    /// without ReLU).
    #[test]
    fn matches_the_definitions() {
        let (n, c, inner) = (3, 5, 7);
        let x: Vec<f32> =
            (0..n * c * inner).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 3.0 + 0.5).collect();
        let dy: Vec<f32> = (0..x.len()).map(|i| (i * 53 % 97) as f32 / 48.0 - 1.0).collect();
        let gamma: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 * 0.2).collect();
        let beta: Vec<f32> = (0..c).map(|i| i as f32 * 0.1 - 0.2).collect();
        let st = stats(&x, n, c, inner);
        let m = (n * inner) as f64;
        let at = |i: usize, ch: usize, j: usize| (i * c + ch) * inner + j;
        for ch in 0..c {
            let vals: Vec<f64> = (0..n)
                .flat_map(|i| (0..inner).map(move |j| (i, j)))
                .map(|(i, j)| x[at(i, ch, j)] as f64)
                .collect();
            let mean = vals.iter().sum::<f64>() / m;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
            assert!(
                (st[ch] as f64 - mean).abs() < 1e-5 && (st[c + ch] as f64 - var).abs() < 1e-4,
                "channel {ch} statistics"
            );
        }
        for relu in [false, true] {
            let y = forward(&x, c, inner, &gamma, &beta, &st, 1e-5, relu);
            let (dx, dg, db) = backward(&x, n, c, inner, &gamma, &beta, &st, 1e-5, relu, &dy);
            for ch in 0..c {
                let inv = 1.0 / (st[c + ch] as f64 + 1e-5).sqrt();
                let xhat = |i: usize, j: usize| (x[at(i, ch, j)] as f64 - st[ch] as f64) * inv;
                let g = |i: usize, j: usize| {
                    let pre = gamma[ch] as f64 * xhat(i, j) + beta[ch] as f64;
                    if relu && pre <= 0.0 { 0.0 } else { dy[at(i, ch, j)] as f64 }
                };
                let (mut sg, mut sgx) = (0.0, 0.0);
                for i in 0..n {
                    for j in 0..inner {
                        let pre = gamma[ch] as f64 * xhat(i, j) + beta[ch] as f64;
                        let want = if relu { pre.max(0.0) } else { pre };
                        assert!((y[at(i, ch, j)] as f64 - want).abs() < 1e-5, "y relu {relu}");
                        sg += g(i, j);
                        sgx += g(i, j) * xhat(i, j);
                    }
                }
                assert!(
                    (db[ch] as f64 - sg).abs() < 1e-4 && (dg[ch] as f64 - sgx).abs() < 1e-4,
                    "dγ, dβ relu {relu}"
                );
                for i in 0..n {
                    for j in 0..inner {
                        let want =
                            gamma[ch] as f64 * inv * (g(i, j) - sg / m - xhat(i, j) * sgx / m);
                        assert!((dx[at(i, ch, j)] as f64 - want).abs() < 1e-4, "dx relu {relu}");
                    }
                }
            }
        }
    }

    /// A dy shorter than x is refused, not left half-written (it was public and safe).
    #[test]
    #[should_panic(expected = "dy and x differ")]
    fn backward_refuses_a_short_output_gradient() {
        let x = vec![1.0, 2.0, 3.0, 4.0];
        let st = stats(&x, 2, 1, 2);
        backward(&x, 2, 1, 2, &[1.0], &[0.0], &st, 1e-5, false, &[1.0, 1.0]);
    }

    #[test]
    #[should_panic(expected = "not [N, C, inner]")]
    fn backward_refuses_a_misshapen_input() {
        let x = vec![1.0, 2.0, 3.0, 4.0];
        backward(&x, 3, 1, 2, &[1.0], &[0.0], &[0.0, 1.0], 1e-5, false, &x);
    }
}
