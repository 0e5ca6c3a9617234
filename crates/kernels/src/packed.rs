//! A small-batch matrix product against a weight matrix packed once: C[m×n] (+)= A[m×k]·B[k×n]
//! for the recurrences' per-step products (m = one thread's batch rows, ~16; B = W_hh or
//! W_hhᵀ, the same for all T steps).
//!
//! Why not the `gemm` crate here: it packs B on every call, and a step's B is the whole
//! recurrent weight (1 MB for an LSTM of 256), so an LSTM spent ~19% of its training time
//! re-packing the same matrix 128 times per sequence. Packed once per call of the recurrence,
//! each step is only the register-tiled multiply-adds: tiles of up to [`MR`] rows × [`NR`]
//! columns, written once against [`Simd`].

use crate::direct::store_rows;
use crate::isa::{Cpu, Kernel};
use crate::simd::Simd;

/// Columns per packed block (one AVX-512 register, two AVX2 or plain ones, four NEON).
pub const NR: usize = 16;
/// Rows per register tile where a block is two or four vectors: 6 × 16 accumulators fit AVX2's
/// 16 registers with room for the operands.
pub const MR: usize = 6;
/// Where a block is one vector (AVX-512), a register tile spans [`WIDE_BLOCKS`] blocks side by
/// side and this many rows: 16 accumulators of AVX-512's 32 registers, so that the two FMA units
/// (latency 4) always have eight or more independent chains (6 rows × 1 block left them 25%
/// idle), and 10 loads per 16 multiply-adds (16 rows × 1 block took 17: the broadcasts, not the
/// FMA units, set its pace, at 66–79% of the FMA peak on a Zen 5).
pub const MR_WIDE: usize = 8;
/// Blocks of B per AVX-512 register tile (see [`MR_WIDE`]).
pub const WIDE_BLOCKS: usize = 2;
/// Depth of one pass over B's blocks (see [`Gemm::run`]).
const KC: usize = 256;

/// B [k×n] as column blocks of [`NR`], each block's k rows contiguous (the last block padded
/// with zero columns).
pub struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedB {
    /// Packs B given by its row and column strides (so Wᵀ packs without a copy first).
    pub fn new(b: &[f32], k: usize, n: usize, rs: usize, cs: usize) -> Self {
        assert!(k == 0 || n == 0 || b.len() > (k - 1) * rs + (n - 1) * cs, "pack: B too short");
        if k == 0 {
            return Self { k, n, data: Vec::new() };
        }
        let blocks = n.div_ceil(NR);
        let mut data = vec![0.0; blocks * k * NR];
        for (jb, block) in data.chunks_exact_mut(k * NR).enumerate() {
            let width = NR.min(n - jb * NR);
            for (r, row) in block.chunks_exact_mut(NR).enumerate() {
                for (j, v) in row[..width].iter_mut().enumerate() {
                    *v = b[r * rs + (jb * NR + j) * cs];
                }
            }
        }
        Self { k, n, data }
    }
}

/// dst[m×n] (row-major, contiguous) = (dst if `acc`) + a[m×k] (row-major, contiguous) · B.
pub fn gemm_packed(cpu: Cpu, m: usize, dst: &mut [f32], acc: bool, a: &[f32], b: &PackedB) {
    let (k, n) = (b.k, b.n);
    assert!(dst.len() >= m * n && a.len() >= m * k, "gemm_packed: operand sizes");
    if k == 0 {
        if !acc {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    cpu.run(Gemm { m, dst, acc, a, b })
}

struct Gemm<'a> {
    m: usize,
    dst: &'a mut [f32],
    acc: bool,
    a: &'a [f32],
    b: &'a PackedB,
}

impl Kernel for Gemm<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let Gemm { m, dst, acc, a, b } = self;
        let (k, n) = (b.k, b.n);
        let nv = NR / S::LANES;
        if nv != 1 {
            // Two or four vectors a block: 6-row tiles reading A's rows in place, each block
            // (in L1 or L2) reused by every row tile.
            for (jb, block) in b.data.chunks_exact(k * NR).enumerate() {
                let (col, width) = (jb * NR, NR.min(n - jb * NR));
                let mut r0 = 0;
                while r0 < m {
                    let rows = MR.min(m - r0);
                    let t = Tile {
                        a: &a[r0 * k..(r0 + rows) * k],
                        k,
                        b: block,
                        vs: S::LANES,
                        c: &mut dst[r0 * n + col..],
                        ldc: n,
                        width,
                        acc,
                    };
                    tiles!(tile_rows, s, nv, rows, t);
                    r0 += rows;
                }
            }
            return;
        }
        // One vector a block (AVX-512): tiles of up to 8 rows × 2 blocks, A packed first, tile
        // by tile, as k columns of the tile's rows, so that a tile's broadcasts walk one stream.
        // One thread's 16 batch rows read each pair of blocks twice, the second time from L1.
        let mut panels = vec![0.0; m * k];
        let mut r0 = 0;
        while r0 < m {
            let rows = MR_WIDE.min(m - r0);
            let panel = &mut panels[r0 * k..(r0 + rows) * k];
            for (p, col) in panel.chunks_exact_mut(rows).enumerate() {
                for (r, v) in col.iter_mut().enumerate() {
                    *v = a[(r0 + r) * k + p];
                }
            }
            r0 += rows;
        }
        let blocks = n.div_ceil(NR);
        // k in chunks of KC, so that a tile's chunk of A (8 rows × 256 = 8 KB) and the pair of
        // B blocks it meets (32 KB) stay in L1 for the second row tile (the backward's k of 1024
        // would not).
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            let mut jb = 0;
            while jb < blocks {
                let nb = WIDE_BLOCKS.min(blocks - jb);
                let (col, width) = (jb * NR, (nb * NR).min(n - jb * NR));
                let mut r0 = 0;
                while r0 < m {
                    let rows = MR_WIDE.min(m - r0);
                    let panel = &panels[r0 * k..(r0 + rows) * k];
                    let t = Tile {
                        a: &panel[k0 * rows..(k0 + kc) * rows],
                        k: kc,
                        b: &b.data[jb * k * NR + k0 * NR..],
                        vs: k * NR,
                        c: &mut dst[r0 * n + col..],
                        ldc: n,
                        width,
                        acc: acc || k0 > 0,
                    };
                    match (nb, rows) {
                        (2, 8) => tile_panel::<S, 8, 2>(s, t),
                        (2, 7) => tile_panel::<S, 7, 2>(s, t),
                        (2, 6) => tile_panel::<S, 6, 2>(s, t),
                        (2, 5) => tile_panel::<S, 5, 2>(s, t),
                        (2, 4) => tile_panel::<S, 4, 2>(s, t),
                        (2, 3) => tile_panel::<S, 3, 2>(s, t),
                        (2, 2) => tile_panel::<S, 2, 2>(s, t),
                        (2, _) => tile_panel::<S, 1, 2>(s, t),
                        (_, 8) => tile_panel::<S, 8, 1>(s, t),
                        (_, 7) => tile_panel::<S, 7, 1>(s, t),
                        _ => tiles!(tile_panel, s, 1, rows, t),
                    }
                    r0 += rows;
                }
                jb += nb;
            }
        }
    }
}

/// One register tile's operands: R rows of A (k each, or k columns of R in a panel), B's k rows
/// of [`NR`] with vector v of row p at `p·NR + v·vs` (`vs` = LANES: the vectors of one block;
/// `vs` = a block's length: one vector from each of adjacent blocks), and R rows of C (`ldc`
/// apart) of which `width` columns are real.
struct Tile<'a> {
    a: &'a [f32],
    k: usize,
    b: &'a [f32],
    vs: usize,
    c: &'a mut [f32],
    ldc: usize,
    width: usize,
    acc: bool,
}

/// [`tile`] on A's rows in place.
#[inline(always)]
fn tile_rows<S: Simd, const R: usize, const NV: usize>(s: S, t: Tile) {
    tile::<S, R, NV, false>(s, t)
}

/// [`tile`] on A packed as k columns of R.
#[inline(always)]
fn tile_panel<S: Simd, const R: usize, const NV: usize>(s: S, t: Tile) {
    tile::<S, R, NV, true>(s, t)
}

/// R rows × NV vectors of C in registers.
#[inline(always)]
fn tile<S: Simd, const R: usize, const NV: usize, const PANEL: bool>(s: S, t: Tile) {
    let Tile { a, k, b, vs, c, ldc, width, acc } = t;
    assert!(vs >= S::LANES && a.len() >= R * k, "gemm tile: operands");
    assert!(k == 0 || b.len() >= (NV - 1) * vs + (k - 1) * NR + S::LANES, "gemm tile: operands");
    assert!(c.len() >= (R - 1) * ldc + width && width <= NV * S::LANES, "gemm tile: output");
    let mut t = [[s.zero(); NV]; R];
    if acc {
        for (r, row) in t.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                let lo = (v * S::LANES).min(width);
                let hi = ((v + 1) * S::LANES).min(width);
                let src = &c[r * ldc + lo..r * ldc + hi];
                *x = if hi - lo == S::LANES {
                    // SAFETY: src holds LANES values. (The partial load goes through a copy: a
                    // library memcpy per vector, ~1.5% of an LSTM step in a profile, and the
                    // AVX-512 path reloads C once per 256-deep chunk of k.)
                    unsafe { s.load(src.as_ptr()) }
                } else {
                    s.load_partial(src)
                };
            }
        }
    }
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for p in 0..k {
        let mut bv = [s.zero(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            // SAFETY: p < k and v < NV: p·NR + v·vs + LANES ≤ (k-1)·NR + (NV-1)·vs + LANES ≤ b.len()
            // (asserted).
            *x = unsafe { s.load(bp.add(p * NR + v * vs)) };
        }
        for (r, row) in t.iter_mut().enumerate() {
            let at = if PANEL { p * R + r } else { r * k + p };
            // SAFETY: r < R and p < k: inside a's R × k values (asserted).
            let x = s.splat(unsafe { *ap.add(at) });
            for (v, acc) in row.iter_mut().enumerate() {
                *acc = s.mul_add(x, bv[v], *acc);
            }
        }
    }
    store_rows(s, &t, c, ldc, width, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        b: &[f32],
        rs: usize,
        cs: usize,
        c0: &[f32],
    ) -> Vec<f32> {
        (0..m * n)
            .map(|i| {
                c0[i] + (0..k).map(|p| a[i / n * k + p] * b[p * rs + (i % n) * cs]).sum::<f32>()
            })
            .collect()
    }

    /// Every ISA this CPU has: every tile height (m 1…13), widths below, at and across a
    /// block, k = 1 and odd, B given plainly and transposed, accumulating or not.
    #[test]
    fn matches_the_straightforward_product() {
        for cpu in Cpu::all() {
            let cases = [
                (1, 1, 1),
                (2, 3, 15),
                (5, 7, 16),
                (6, 17, 17),
                (7, 33, 40),
                (13, 9, 64),
                (16, 64, 100),
                (20, 300, 33),
                (31, 520, 17),
            ];
            // Under Miri (a thousand times slower) the first four cases only.
            for &(m, k, n) in &cases[..if cfg!(miri) { 4 } else { cases.len() }] {
                let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.31).sin()).collect();
                let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.17).cos()).collect();
                let c0: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
                for (rs, cs) in [(n, 1), (1, k)] {
                    let packed = PackedB::new(&b, k, n, rs, cs);
                    for acc in [false, true] {
                        let mut c = if acc { c0.clone() } else { vec![f32::NAN; m * n] };
                        gemm_packed(cpu, m, &mut c, acc, &a, &packed);
                        let want = naive(
                            m,
                            k,
                            n,
                            &a,
                            &b,
                            rs,
                            cs,
                            &if acc { c0.clone() } else { vec![0.0; m * n] },
                        );
                        for (i, (x, y)) in c.iter().zip(&want).enumerate() {
                            assert!(
                                (x - y).abs() < 1e-5 * (1.0 + y.abs()),
                                "{:?} m {m} k {k} n {n} strides ({rs}, {cs}) acc {acc} at {i}: {x} vs {y}",
                                cpu.isa()
                            );
                        }
                    }
                }
            }
        }
    }
}
