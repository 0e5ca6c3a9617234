//! Inference-time linear layer (y = x·W + b): a small GEMM in the BLIS manner. Per pass of
//! [`KC`] rows of W, W's [KC, N] panel is packed into column blocks as wide as the ISA's register
//! tile ([KC, 16] on AVX2 and NEON, [KC, 32] on AVX-512; contiguous, read from W row by row; once
//! per call, shared by the threads) and each thread's rows of x into panels of [`MR`] rows,
//! interleaved (`a[p·MR + r]`); the register tile (MR rows × `Simd::NV` vectors) then
//! broadcasts its six x values from one stream and loads W's vectors from one contiguous stream
//! in L1.
//!
//! Why: the `gemm` crate, which flex's matmul uses, ran the MLP's 256×3072×512 product at
//! 138–167 GFLOP/s on a Zen 4 (PyTorch's MKL: 174), so MLP inference was at 0.80–0.86×
//! PyTorch's. On a Zen 3 (AVX2, one thread, 128×3072·3072×512, rounds alternating with gemm on
//! a noisy shared machine) this kernel runs at 0.87–0.95× gemm (73–75 against 80–84 GFLOP/s in a
//! quiet hour), with 32-wide blocks and KC = 128 (a tile then read half of each 128-byte block
//! row) at 0.78–0.95×: no clear difference. The MLP's whole eval pass measured faster through it
//! than through Burn's matmul (see burnlab-ops `uses_kernel`).

use rayon::prelude::*;

use crate::isa::{Cpu, Kernel};
use crate::packed::MR;
use crate::simd::Simd;

/// N must be a multiple of this: every ISA's tile width (8 plain, 16, 32) divides it.
pub const BLOCK: usize = 32;

/// Rows of W per pass: a block of W ([KC, 16], 16 KB on AVX2) stays in L1 while every row panel
/// of x runs over it, and the thread's x panels ([rows, KC]) stay in L2.
const KC: usize = 256;

/// W [K, N] packed for [`forward_packed`]: per pass of [`KC`] rows, [N/width][kc][width] (each
/// block's rows contiguous), width the ISA's register tile.
pub struct PackedW {
    data: Vec<f32>,
    k: usize,
    n: usize,
    width: usize,
}

impl PackedW {
    /// W [K, N] (N a multiple of [`BLOCK`]) packed for `cpu`'s tiles, in parallel, one pass of
    /// [`KC`] rows per task.
    pub fn new(cpu: Cpu, w: &[f32], k: usize, n: usize) -> Self {
        assert!(w.len() == k * n, "linear: weight size");
        assert!(n.is_multiple_of(BLOCK), "linear: N must be a multiple of {BLOCK}");
        // Block width: the ISA's register tile (16 columns on AVX2 and NEON, 32 on AVX-512; 8
        // on the plain floor), so that a tile reads its block's rows as one contiguous stream.
        let width = cpu.run(TileWidth).max(8);
        debug_assert!(BLOCK.is_multiple_of(width));
        if k * n == 0 {
            return Self { data: Vec::new(), k, n, width };
        }
        // SAFETY: `par_chunks_uninit` needs every value written: chunk i is pass i, kc = its
        // length / n rows of W; (blk, p, j) over blk < n/width, p < kc, j < width writes each
        // of its kc·n once.
        let data = unsafe {
            crate::par::par_chunks_uninit(
                k * n,
                KC * n,
                || (),
                |_, pass, c| {
                    let kc = c.len() / n;
                    for (p, row) in
                        w[pass * KC * n..(pass * KC + kc) * n].chunks_exact(n).enumerate()
                    {
                        for (blk, src) in row.chunks_exact(width).enumerate() {
                            let dst = (blk * kc + p) * width;
                            for (d, &v) in c[dst..dst + width].iter_mut().zip(src) {
                                d.write(v);
                            }
                        }
                    }
                },
            )
        };
        Self { data, k, n, width }
    }
}

/// y [M, N] = x [M, K] · w [K, N] + bias, W packed once per call ([`PackedW`]); see
/// [`forward_packed`].
pub fn forward(
    cpu: Cpu,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    assert!(x.len() == m * k && w.len() == k * n && bias.len() == n, "linear: operand sizes");
    forward_packed(cpu, x, &PackedW::new(cpu, w, k, n), bias, m)
}

/// y [M, N] = x [M, K] · W + bias with W packed by [`PackedW::new`] (for the same ISA: the
/// block width is checked). Rows of y are shared out over rayon's threads in multiples of
/// [`MR`]; each packs its own x panels and runs the tiles over every block of every pass.
pub fn forward_packed(cpu: Cpu, x: &[f32], w: &PackedW, bias: &[f32], m: usize) -> Vec<f32> {
    let (k, n, width) = (w.k, w.n, w.width);
    assert!(x.len() == m * k && bias.len() == n, "linear: operand sizes");
    assert_eq!(width, cpu.run(TileWidth).max(8), "linear: W packed for another ISA");
    if m == 0 || n == 0 || k == 0 {
        return (0..m * n).map(|i| bias[i % n]).collect();
    }
    let packed = &w.data;
    let mut y = vec![0.0; m * n];
    let threads = rayon::current_num_threads().max(1);
    let rows = m.div_ceil(threads).div_ceil(MR).max(1) * MR;
    y.par_chunks_mut(rows * n).enumerate().for_each(|(i, yr)| {
        let r = yr.len() / n;
        let xs = &x[i * rows * k..(i * rows + r) * k];
        let panels = r.div_ceil(MR);
        let mut a = vec![0.0; panels * MR * KC.min(k)];
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            // x's panels: a[t][p][r] = x[t·MR + r][k0 + p], zero past the last row.
            for (t, panel) in a[..panels * MR * kc].chunks_exact_mut(MR * kc).enumerate() {
                for (rr, row) in xs.chunks_exact(k).skip(t * MR).take(MR).enumerate() {
                    for (p, &v) in row[k0..k0 + kc].iter().enumerate() {
                        panel[p * MR + rr] = v;
                    }
                }
                for rr in r.min((t + 1) * MR) - t * MR..MR {
                    (0..kc).for_each(|p| panel[p * MR + rr] = 0.0);
                }
            }
            let pass = &packed[k0 * n..(k0 + kc) * n];
            for (blk, b) in pass.chunks_exact(kc * width).enumerate() {
                cpu.run(Panels {
                    a: &a[..panels * MR * kc],
                    b,
                    kc,
                    width,
                    rows: r,
                    c: &mut yr[blk * width..],
                    ldc: n,
                    acc: k0 > 0,
                });
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

/// The register tile's width in columns on an ISA.
struct TileWidth;

impl Kernel for TileWidth {
    type Output = usize;

    fn run<S: Simd>(self, _: S) -> usize {
        S::NV * S::LANES
    }
}

/// One block of `width` columns of y for every row panel: c[r][j] (+)= Σ_p a[p][r]·b[p][j].
pub(crate) struct Panels<'a> {
    /// [⌈rows/MR⌉][kc][MR], interleaved rows.
    pub a: &'a [f32],
    /// [kc][width].
    pub b: &'a [f32],
    pub kc: usize,
    pub width: usize,
    pub rows: usize,
    pub c: &'a mut [f32],
    pub ldc: usize,
    pub acc: bool,
}

impl Kernel for Panels<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let Panels { a, b, kc, width, rows, c, ldc, acc } = self;
        let step = S::NV * S::LANES;
        assert!(
            width.is_multiple_of(step)
                && a.len() == rows.div_ceil(MR) * MR * kc
                && b.len() == kc * width,
            "linear panels: operands"
        );
        // Column strips outermost: a strip of b ([kc, step]) stays in L1 while every row panel
        // runs over it.
        for q0 in (0..width).step_by(step) {
            for (t, panel) in a.chunks_exact(MR * kc).enumerate() {
                let r = MR.min(rows - t * MR);
                let args = PanelTile {
                    a: panel,
                    b: &b[q0..],
                    kc,
                    width,
                    c: &mut c[t * MR * ldc + q0..],
                    ldc,
                    acc,
                };
                tiles!(panel_tile, s, r, args);
            }
        }
    }
}

struct PanelTile<'a> {
    /// [kc][MR], interleaved rows.
    a: &'a [f32],
    /// Rows `width` apart, the tile's columns first.
    b: &'a [f32],
    kc: usize,
    width: usize,
    c: &'a mut [f32],
    ldc: usize,
    acc: bool,
}

/// R rows × NV vectors of y.
#[inline(always)]
fn panel_tile<S: Simd, const R: usize, const NV: usize>(s: S, t: PanelTile) {
    let PanelTile { a, b, kc, width, c, ldc, acc } = t;
    let full = NV * S::LANES;
    assert!(
        kc > 0
            && R <= MR
            && full <= width
            && a.len() >= kc * MR
            && b.len() >= (kc - 1) * width + full
            && c.len() >= (R - 1) * ldc + full,
        "linear tile: operands"
    );
    let mut tile = [[s.zero(); NV]; R];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for p in 0..kc {
        let mut bv = [s.zero(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            // SAFETY: p < kc and v·LANES + LANES ≤ full: within (kc − 1)·width + full ≤ b.len().
            *x = unsafe { s.load(bp.add(p * width + v * S::LANES)) };
        }
        for (r, row) in tile.iter_mut().enumerate() {
            // SAFETY: p·MR + r < kc·MR ≤ a.len() (asserted).
            let av = s.splat(unsafe { *ap.add(p * MR + r) });
            for (v, y) in row.iter_mut().enumerate() {
                *y = s.mul_add(av, bv[v], *y);
            }
        }
    }
    crate::direct::store_rows(s, &tile, c, ldc, full, acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ISA against the plain product: rows across the row tiles and thread chunks, K odd,
    /// N 32 to 96.
    #[test]
    fn matches_the_plain_product() {
        for cpu in Cpu::all() {
            // K past one pass (KC) and not a multiple of it: 300, 600.
            let cases = [(1, 3, 32), (5, 17, 64), (7, 300, 32), (130, 64, 96), (13, 600, 64)];
            for &(m, k, n) in &cases[..if cfg!(miri) { 2 } else { cases.len() }] {
                let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
                let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
                let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
                let y = forward(cpu, &x, &w, &b, m, k, n);
                for i in 0..m {
                    for j in 0..n {
                        let want = b[j] + (0..k).map(|p| x[i * k + p] * w[p * n + j]).sum::<f32>();
                        assert!(
                            (y[i * n + j] - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "{:?} m {m} k {k} n {n} at ({i}, {j})",
                            cpu.isa()
                        );
                    }
                }
            }
        }
    }
}
