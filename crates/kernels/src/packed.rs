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
/// Rows per register tile where a block is one vector (AVX-512): 16 accumulators of AVX-512's
/// 32 registers, so that one thread's 16 batch rows take B in a single pass and the two FMA
/// units (latency 4) always have eight or more independent chains (6 rows left them 25% idle).
pub const MR_WIDE: usize = 16;
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
        // One vector a block (AVX-512): tiles of up to 16 rows, A packed first, tile by tile,
        // as k columns of the tile's rows, so that a tile's broadcasts walk one stream (16 row
        // pointers would not fit the general registers). Measured on an Intel Xeon (one core,
        // best of 6 alternated runs, GFLOP/s): LSTM forward 97 → 117, backward 97 → 110. The
        // same packing on AVX2's 6-row tiles was 3–10% slower than reading A in place.
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
        // k in chunks of KC, so that a tile's chunk of A (16 rows × 256 = 16 KB) stays in L1
        // while B's blocks stream past it from L2 (the backward's k of 1024 would not).
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            for (jb, block) in b.data.chunks_exact(k * NR).enumerate() {
                let (col, width) = (jb * NR, NR.min(n - jb * NR));
                let mut r0 = 0;
                while r0 < m {
                    let rows = MR_WIDE.min(m - r0);
                    let panel = &panels[r0 * k..(r0 + rows) * k];
                    let t = Tile {
                        a: &panel[k0 * rows..(k0 + kc) * rows],
                        k: kc,
                        b: &block[k0 * NR..(k0 + kc) * NR],
                        c: &mut dst[r0 * n + col..],
                        ldc: n,
                        width,
                        acc: acc || k0 > 0,
                    };
                    match rows {
                        16 => tile_panel::<S, 16, 1>(s, t),
                        15 => tile_panel::<S, 15, 1>(s, t),
                        14 => tile_panel::<S, 14, 1>(s, t),
                        13 => tile_panel::<S, 13, 1>(s, t),
                        12 => tile_panel::<S, 12, 1>(s, t),
                        11 => tile_panel::<S, 11, 1>(s, t),
                        10 => tile_panel::<S, 10, 1>(s, t),
                        9 => tile_panel::<S, 9, 1>(s, t),
                        8 => tile_panel::<S, 8, 1>(s, t),
                        7 => tile_panel::<S, 7, 1>(s, t),
                        _ => tiles!(tile_panel, s, 1, rows, t),
                    }
                    r0 += rows;
                }
            }
        }
    }
}

/// One register tile's operands: R rows of A (k each, or k columns of R in a panel), a packed
/// block of B (k × NR), and R rows of C (`ldc` apart) of which `width` columns are real.
struct Tile<'a> {
    a: &'a [f32],
    k: usize,
    b: &'a [f32],
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

/// R rows × NV vectors (= [`NR`] columns) of C in registers.
#[inline(always)]
fn tile<S: Simd, const R: usize, const NV: usize, const PANEL: bool>(s: S, t: Tile) {
    let Tile { a, k, b, c, ldc, width, acc } = t;
    assert!(NV * S::LANES == NR && a.len() >= R * k && b.len() >= k * NR, "gemm tile: operands");
    assert!(c.len() >= (R - 1) * ldc + width && width <= NR, "gemm tile: output");
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
            // SAFETY: p < k and v·LANES + LANES ≤ NR: inside the k × NR block (asserted).
            *x = unsafe { s.load(bp.add(p * NR + v * S::LANES)) };
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
