//! Matrix-vector products for sampling one character at a time (batch 1): y += x·W with W
//! packed once into column blocks, each a sequential stream.

use rayon::prelude::*;

use crate::isa::{Cpu, Kernel};
use crate::simd::Simd;

/// Outputs per block of [`GemvMatrix`]: 4 AVX-512 (or 8 AVX2) registers of accumulators. Why
/// not the 16-column tiles of [`crate::packed`] at one row: one accumulator per tile is one
/// dependent chain of multiply-adds, and sampling measured 19.6k chars/s that way against ~22k
/// here.
const BLOCK: usize = 64;

/// A weight matrix W [K, N] laid out for [`gemv_acc`]: column blocks of [`BLOCK`], each block's
/// K rows contiguous (the last block padded with zero columns). Walking W row-major by column
/// blocks would jump a whole row (4 KB for N = 1024) between consecutive reads, a new page
/// each time, which the hardware prefetchers do not follow; packed, every block is one
/// sequential stream.
pub struct GemvMatrix {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl GemvMatrix {
    pub fn new(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "weight size");
        let blocks = n.div_ceil(BLOCK);
        let mut data = vec![0.0; blocks * k * BLOCK];
        for b in 0..blocks {
            let width = BLOCK.min(n - b * BLOCK);
            for r in 0..k {
                let dst = (b * k + r) * BLOCK;
                data[dst..dst + width]
                    .copy_from_slice(&w[r * n + b * BLOCK..r * n + b * BLOCK + width]);
            }
        }
        Self { k, n, data }
    }

    pub fn rows(&self) -> usize {
        self.k
    }

    pub fn cols(&self) -> usize {
        self.n
    }
}

/// Weights (k·n) from which a product is split over rayon's threads: a 256×1024 LSTM matrix
/// (1 MB, streamed from L3) is; the 256×65 output head is not worth waking a thread for.
const PAR_MIN: usize = 1 << 17;

/// y += x·W. Large matrices are split by column blocks over rayon's threads: one core streams
/// ~50 GB/s from L3 here, so sampling a 2×256 LSTM (3 MB of weights a step) was bound by one
/// core's bandwidth (17.6–18.1k chars/s on a Zen 3).
pub fn gemv_acc(cpu: Cpu, x: &[f32], w: &GemvMatrix, y: &mut [f32]) {
    assert!(x.len() == w.k && y.len() == w.n, "gemv: sizes");
    let (k, blocks, threads) = (w.k, w.n.div_ceil(BLOCK), rayon::current_num_threads());
    if threads > 1 && blocks > 1 && k * w.n >= PAR_MIN {
        let per = blocks.div_ceil(threads);
        y.par_chunks_mut(per * BLOCK)
            .zip(w.data.par_chunks(per * k * BLOCK))
            .for_each(|(y, data)| cpu.run(Gemv { x, k, data, y }));
    } else {
        cpu.run(Gemv { x, k, data: &w.data, y })
    }
}

/// y += x·W over whole blocks of W (`data`, [blocks][k][BLOCK]) for y's width.
struct Gemv<'a> {
    x: &'a [f32],
    k: usize,
    data: &'a [f32],
    y: &'a mut [f32],
}

impl Kernel for Gemv<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let Gemv { x, k, data, y } = self;
        assert!(x.len() == k && data.len() == y.len().div_ceil(BLOCK) * k * BLOCK, "gemv: blocks");
        if k == 0 {
            return;
        }
        for (block, y) in data.chunks_exact(k * BLOCK).zip(y.chunks_mut(BLOCK)) {
            let width = y.len();
            let mut acc = [0f32; BLOCK];
            acc[..width].copy_from_slice(y);
            for (&xr, row) in x.iter().zip(block.chunks_exact(BLOCK)) {
                for j in 0..BLOCK {
                    acc[j] = s.mul_add1(xr, row[j], acc[j]);
                }
            }
            y.copy_from_slice(&acc[..width]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemv_matches_the_straightforward_sum_on_every_isa() {
        for cpu in Cpu::all() {
            // Widths below, at and across the 64-wide block; K = 1 and odd.
            // And two past PAR_MIN, split over the threads (16 and 5 blocks, the last partial).
            for (k, n) in
                [(1, 1), (3, 63), (7, 64), (5, 65), (17, 130), (33, 200), (128, 1024), (600, 300)]
                    .into_iter()
                    .take(if cfg!(miri) { 6 } else { 8 })
            {
                let x: Vec<f32> = (0..k).map(|i| (i as f32 * 0.37).sin()).collect();
                let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
                let y0: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
                let mut y = y0.clone();
                gemv_acc(cpu, &x, &GemvMatrix::new(&w, k, n), &mut y);
                for j in 0..n {
                    let want = y0[j] + (0..k).map(|i| x[i] * w[i * n + j]).sum::<f32>();
                    assert!(
                        (y[j] - want).abs() < 1e-5 * (1.0 + want.abs()),
                        "{:?} k {k} n {n} j {j}: {} vs {want}",
                        cpu.isa(),
                        y[j]
                    );
                }
            }
        }
    }
}
