//! Inference-time linear layer (y = x·W + b) through the direct convolution's kernel
//! ([`crate::direct::wide_conv_ld`]): a matrix product is a convolution whose taps are W's rows,
//! so x's rows are the "weights" broadcast from memory and W's rows are read a tile at a time,
//! from blocks of [`KC`] rows × [`BLOCK`] columns of W copied into a buffer that stays in L1.
//!
//! Why: the `gemm` crate, which flex's matmul uses, ran the MLP's 256×3072×512 product at
//! 138–167 GFLOP/s on a Zen 4 (PyTorch's MKL: 174), so MLP inference was at 0.80–0.86× PyTorch's.

use rayon::prelude::*;

use crate::direct::{SLACK, wide_conv_acc};
use crate::isa::Cpu;
use crate::packed::MR;

/// Columns per block of W: a multiple of every ISA's tile width (8, 16, 32).
pub const BLOCK: usize = 32;

/// Rows of W (taps) per pass over a block: 128 × 32 floats = 16 KB stays in L1 while every
/// row tile of x runs over it. Without it each row tile streamed the whole [K, 32] block
/// (384 KB for the MLP's first layer) from L2 again, and the kernel ran at 35% of the AVX2 peak.
const KC: usize = 128;

/// y [M, N] = x [M, K] · w [K, N] + bias. W is first copied into column blocks of 32, each
/// [K, 32] contiguous (its 6 MB read once per call, in parallel): read in place, every tap of
/// the kernel loaded 128 bytes from another 2 KB-apart row, a TLB miss each, and ran at ~75
/// GFLOP/s a core against ~105 on the blocks. Rows of y are shared out over rayon's threads in
/// tiles of [`MR`] rows; each task runs the kernel over its rows and every column block.
pub fn forward(cpu: Cpu, x: &[f32], w: &[f32], bias: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert!(x.len() == m * k && w.len() == k * n && bias.len() == n, "linear: operand sizes");
    let block = BLOCK;
    assert!(n.is_multiple_of(block), "linear: N must be a multiple of {block}");
    if m == 0 || n == 0 || k == 0 {
        return (0..m * n).map(|i| bias[i % n]).collect();
    }
    let mut y = vec![0.0; m * n];
    let offs: Vec<usize> = (0..KC.min(k)).map(|p| p * block).collect();
    let threads = rayon::current_num_threads().max(1);
    let rows = m.div_ceil(threads).div_ceil(MR).max(1) * MR;
    let zero = vec![0.0; rows];
    y.par_chunks_mut(rows * n).enumerate().for_each(|(i, yr)| {
        let r = yr.len() / n;
        // x's rows with a stride of k + 16: at k a multiple of 1,024 (the MLP's 3,072) the six
        // rows a tile broadcasts from sit a multiple of 4 KB apart, in the same L1 sets, and
        // the kernel ran at 40% of the AVX2 peak.
        let ldx = k + 16;
        let mut xr = Vec::with_capacity(r * ldx);
        for src in x[i * rows * k..(i * rows + r) * k].chunks_exact(k) {
            xr.extend_from_slice(src);
            xr.extend_from_slice(&[0.0; 16]);
        }
        // The kernel's "weights" are x's rows, its taps the block's rows:
        // yr[i][b·32 + j] = Σ_p x[i][p]·W[p][b·32 + j].
        // In passes of KC taps, each adding to the last; within a pass every column block
        // reuses the same KC columns of x's rows (L2-resident), and each block's [KC, 32] of W
        // is copied into a contiguous buffer that stays in L1 (plus the kernel's zero slack).
        let mut wb = vec![0.0; KC * block + SLACK];
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            for b in 0..n / block {
                // Fixed-size copies (inline moves, not a memmove call per 128-byte row).
                for (dst, src) in wb.as_chunks_mut::<BLOCK>().0.iter_mut().zip(w[k0 * n..(k0 + kc) * n].chunks_exact(n)) {
                    *dst = *src[b * BLOCK..].first_chunk::<BLOCK>().expect("a block of columns");
                }
                wide_conv_acc(cpu, &xr[k0..], ldx, &offs[..kc], &wb[..kc * block + SLACK], block, &zero[..r], &mut yr[b * block..], n, k0 > 0);
            }
        }
        for row in yr.chunks_exact_mut(n) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    });
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ISA against the plain product: rows across the row tiles and thread chunks, K odd,
    /// N 32 to 96.
    #[test]
    fn matches_the_plain_product() {
        for cpu in Cpu::all() {
            let cases = [(1, 3, 32), (5, 17, 64), (7, 300, 32), (130, 64, 96)];
            for &(m, k, n) in &cases[..if cfg!(miri) { 2 } else { cases.len() }] {
                let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
                let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
                let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
                let y = forward(cpu, &x, &w, &b, m, k, n);
                for i in 0..m {
                    for j in 0..n {
                        let want = b[j] + (0..k).map(|p| x[i * k + p] * w[p * n + j]).sum::<f32>();
                        assert!((y[i * n + j] - want).abs() < 1e-4 * (1.0 + want.abs()), "{:?} m {m} k {k} n {n} at ({i}, {j})", cpu.isa());
                    }
                }
            }
        }
    }
}
