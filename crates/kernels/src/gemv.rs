//! Matrix-vector products for sampling one character at a time (batch 1): y += x·W with W
//! packed once into column blocks, each a sequential stream.

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
                data[dst..dst + width].copy_from_slice(&w[r * n + b * BLOCK..r * n + b * BLOCK + width]);
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

/// y += x·W.
pub fn gemv_acc(cpu: Cpu, x: &[f32], w: &GemvMatrix, y: &mut [f32]) {
    assert!(x.len() == w.k && y.len() == w.n, "gemv: sizes");
    cpu.run(Gemv { x, w, y })
}

struct Gemv<'a> {
    x: &'a [f32],
    w: &'a GemvMatrix,
    y: &'a mut [f32],
}

impl Kernel for Gemv<'_> {
    type Output = ();

    /// Plain loops over a 64-float accumulator: compiled inside the ISA's features, the
    /// compiler keeps it in registers and vectorises the multiply-adds.
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let Gemv { x, w, y } = self;
        let k = w.k;
        if k == 0 {
            return;
        }
        for (b, block) in w.data.chunks_exact(k * BLOCK).enumerate() {
            let start = b * BLOCK;
            let width = BLOCK.min(w.n - start);
            let mut acc = [0f32; BLOCK];
            acc[..width].copy_from_slice(&y[start..start + width]);
            for (&xr, row) in x.iter().zip(block.chunks_exact(BLOCK)) {
                for j in 0..BLOCK {
                    acc[j] = s.mul_add1(xr, row[j], acc[j]);
                }
            }
            y[start..start + width].copy_from_slice(&acc[..width]);
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
            for (k, n) in [(1, 1), (3, 63), (7, 64), (5, 65), (17, 130), (33, 200)] {
                let x: Vec<f32> = (0..k).map(|i| (i as f32 * 0.37).sin()).collect();
                let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
                let y0: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
                let mut y = y0.clone();
                gemv_acc(cpu, &x, &GemvMatrix::new(&w, k, n), &mut y);
                for j in 0..n {
                    let want = y0[j] + (0..k).map(|i| x[i] * w[i * n + j]).sum::<f32>();
                    assert!((y[j] - want).abs() < 1e-5 * (1.0 + want.abs()), "{:?} k {k} n {n} j {j}: {} vs {want}", cpu.isa(), y[j]);
                }
            }
        }
    }
}
