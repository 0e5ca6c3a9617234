//! Stride-1 convolution without a column matrix ("implicit GEMM"): the input is zero-padded
//! once, and output pixel q of a padded-width row reads input element q + off[p] for every
//! kernel tap p = (ci, ky, kx), with off[p] = ci·Hp·Wp + ky·Wp + kx. So 16 consecutive output
//! pixels read 16 consecutive inputs per tap: one vector load, multiplied by R output
//! channels' weights in R registers (the tiles of [`super::packed`], B read in place).
//!
//! Why: im2col writes Ci·kh·kw values per output pixel (9× the input for 3×3) and the `gemm`
//! crate then packs them again; on ResNet-20 those two copies were a quarter of a training
//! step. The same kernel gives the input gradient of a stride-1 convolution (a convolution of
//! the padded output gradient by the flipped, transposed weights).
//!
//! Rows are computed at the padded width Wp (Wp − Wo junk columns each, dropped when the
//! result is stored), so the tiles run along whole images rather than short rows: an 8×8
//! map would otherwise fill half of each 16-wide tile. Each row carries only its right-hand
//! zero columns (Wp = W + pw, not W + 2·pw): a row's left padding is the previous row's right
//! padding, which is zero too, so a 3×3 "same" layer wastes one column in W + 1, not two in
//! W + 2 (ResNet-20's 8×8 maps: 11% of the multiply-adds instead of 20%).

use super::packed::{Isa, MR, NR};

/// Padded input of one image: [Ci, Hp, Wp] with Wp = W + pw (see the module note), starting
/// at element pw, plus slack, so that full 32-wide loads at any tile start stay inside the
/// buffer. Element (c, y, x) of the input is at pw + (c·Hp + y + ph)·Wp + x.
pub(super) struct Padded {
    pub data: Vec<f32>,
    pub hp: usize,
    pub wp: usize,
}

impl Padded {
    pub fn new(c: usize, h: usize, w: usize, ph: usize, pw: usize) -> Self {
        let (hp, wp) = (h + 2 * ph, w + pw);
        Self { data: vec![0.0; c * hp * wp + wp + 2 * NR], hp, wp }
    }

    /// Copies x [C, H, W] into the interior (the borders stay zero).
    pub fn fill(&mut self, x: &[f32], c: usize, h: usize, w: usize, ph: usize, pw: usize) {
        for ch in 0..c {
            for y in 0..h {
                let dst = (ch * self.hp + y + ph) * self.wp + pw;
                let (to, from) = (&mut self.data[dst..dst + w], &x[(ch * h + y) * w..(ch * h + y + 1) * w]);
                // Rows are 8 to 32 floats: copied in fixed blocks of 8, inline, rather than a
                // memcpy call per row (4% of a ResNet-20 step).
                let mut blocks = to.chunks_exact_mut(8);
                for (d, s) in (&mut blocks).zip(from.chunks_exact(8)) {
                    d.copy_from_slice(s);
                }
                let tail = w / 8 * 8;
                blocks.into_remainder().copy_from_slice(&from[tail..]);
            }
        }
    }
}

/// Offsets of the taps (ci, ky, kx) in a padded image.
pub(super) fn tap_offsets(ci: usize, kh: usize, kw: usize, hp: usize, wp: usize) -> Vec<usize> {
    (0..ci).flat_map(|c| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| c * hp * wp + ky * wp + kx))).collect()
}

/// out[co][q] = bias[co] + Σ_p w[co][p]·x[q + offs[p]] for q in 0..len; `out` is [Co, len].
pub(super) fn wide_conv(isa: Isa, w: &[f32], offs: &[usize], x: &[f32], len: usize, bias: &[f32], out: &mut [f32]) {
    wide_conv_ld(isa, w, offs, x, len, bias, out, len)
}

/// [`wide_conv`] with rows of `out` `ldc` apart (≥ len).
#[allow(clippy::too_many_arguments)]
pub(super) fn wide_conv_ld(isa: Isa, w: &[f32], offs: &[usize], x: &[f32], len: usize, bias: &[f32], out: &mut [f32], ldc: usize) {
    let (co, k) = (bias.len(), offs.len());
    assert_eq!(w.len(), co * k, "wide_conv: weights");
    assert!(ldc >= len && (co == 0 || out.len() >= (co - 1) * ldc + len), "wide_conv: output");
    let reach = offs.iter().max().map_or(0, |m| m + len.div_ceil(2 * NR) * 2 * NR);
    assert!(k == 0 || x.len() >= reach, "wide_conv: input too short for its taps");
    if co == 0 || len == 0 {
        return;
    }
    let tiles = co.div_ceil(MR);
    // AVX-512 tiles are two vectors wide: 6 weight broadcasts feed 12 multiply-adds.
    let step = if isa == Isa::Avx512 { 2 * NR } else { NR };
    for q0 in (0..len).step_by(step) {
        let width = step.min(len - q0);
        let mut r0 = 0;
        for ti in 0..tiles {
            let rows = co / tiles + usize::from(ti < co % tiles);
            let (wr, br) = (&w[r0 * k..(r0 + rows) * k], &bias[r0..r0 + rows]);
            let cr = &mut out[r0 * ldc + q0..];
            tile(isa, rows, wr, k, &x[q0..], offs, cr, ldc, width, br);
            r0 += rows;
        }
    }
}

/// [`wide_conv`] written straight into the output's own layout, out [Co, Ho, Wo] with
/// Ho = len / wp: each tile drops its lanes in junk columns in registers (AVX-512 compress)
/// rather than the whole result being copied out of a padded-width buffer (a 70 KB round trip
/// per image and layer on ResNet-20's first stage). Returns false, writing nothing, without
/// AVX-512: then use [`wide_conv`] and copy.
#[allow(clippy::too_many_arguments)]
pub(super) fn compact_conv(isa: Isa, w: &[f32], offs: &[usize], x: &[f32], len: usize, bias: &[f32], wp: usize, wo: usize, out: &mut [std::mem::MaybeUninit<f32>]) -> bool {
    let (co, k) = (bias.len(), offs.len());
    if isa != Isa::Avx512 {
        return false;
    }
    assert!(wp > 0 && wo <= wp && len % wp == 0, "compact_conv: rows");
    let plane = len / wp * wo;
    assert_eq!(w.len(), co * k, "compact_conv: weights");
    assert!(out.len() >= co * plane, "compact_conv: output");
    let reach = offs.iter().max().map_or(0, |m| m + len.div_ceil(2 * NR) * 2 * NR);
    assert!(k == 0 || x.len() >= reach, "compact_conv: input too short for its taps");
    if co == 0 || len == 0 {
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let tiles = co.div_ceil(MR);
        for q0 in (0..len).step_by(2 * NR) {
            let width = (2 * NR).min(len - q0);
            let place = [x86::place(q0, width, wp, wo), x86::place(q0 + NR, width.saturating_sub(NR), wp, wo)];
            let mut r0 = 0;
            for ti in 0..tiles {
                let rows = co / tiles + usize::from(ti < co % tiles);
                let args = x86::Args {
                    w: w[r0 * k..].as_ptr(),
                    k,
                    x: x[q0..].as_ptr(),
                    offs: offs.as_ptr(),
                    c: out[r0 * plane..].as_mut_ptr().cast(),
                    ldc: plane,
                    width,
                    bias: bias[r0..].as_ptr(),
                    place,
                };
                // SAFETY: AVX-512 is present (isa); every tap of every load stays inside x
                // (asserted above); the stores of rows r0..r0 + rows go to their planes of out,
                // at positions below Ho·Wo (pixels q < len, Ho = len / wp).
                unsafe {
                    match rows {
                        6 => x86::tile512::<6, true>(args),
                        5 => x86::tile512::<5, true>(args),
                        4 => x86::tile512::<4, true>(args),
                        3 => x86::tile512::<3, true>(args),
                        2 => x86::tile512::<2, true>(args),
                        _ => x86::tile512::<1, true>(args),
                    }
                }
                r0 += rows;
            }
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, x, out, plane);
        false
    }
}

/// One register tile: rows ≤ MR output channels × `width` ≤ NR pixels (2·NR with AVX-512).
#[allow(clippy::too_many_arguments)]
#[inline]
fn tile(isa: Isa, rows: usize, w: &[f32], k: usize, x: &[f32], offs: &[usize], c: &mut [f32], ldc: usize, width: usize, bias: &[f32]) {
    assert!(rows <= MR && c.len() > (rows - 1) * ldc + width - 1, "wide_conv: tile outside the output");
    #[cfg(target_arch = "x86_64")]
    {
        let args = x86::Args { w: w.as_ptr(), k, x: x.as_ptr(), offs: offs.as_ptr(), c: c.as_mut_ptr(), ldc, width, bias: bias.as_ptr(), place: [(0, 0, 0); 2] };
        // SAFETY: `isa` is supported by this CPU; wide_conv checked that every tap of every
        // full 16-wide load stays inside x, and C holds rows×width at stride ldc (asserted).
        unsafe {
            match (isa, rows) {
                (Isa::Avx512, 6) => return x86::tile512::<6, false>(args),
                (Isa::Avx512, 5) => return x86::tile512::<5, false>(args),
                (Isa::Avx512, 4) => return x86::tile512::<4, false>(args),
                (Isa::Avx512, 3) => return x86::tile512::<3, false>(args),
                (Isa::Avx512, 2) => return x86::tile512::<2, false>(args),
                (Isa::Avx512, _) => return x86::tile512::<1, false>(args),
                (Isa::Avx2, 6) => return x86::tile256::<6>(args),
                (Isa::Avx2, 5) => return x86::tile256::<5>(args),
                (Isa::Avx2, 4) => return x86::tile256::<4>(args),
                (Isa::Avx2, 3) => return x86::tile256::<3>(args),
                (Isa::Avx2, 2) => return x86::tile256::<2>(args),
                (Isa::Avx2, _) => return x86::tile256::<1>(args),
                (Isa::Plain, _) => {}
            }
        }
    }
    for r in 0..rows {
        for j in 0..width {
            c[r * ldc + j] = bias[r] + (0..k).map(|p| w[r * k + p] * x[j + offs[p]]).sum::<f32>();
        }
    }
}

/// The weight gradient's transpose, per image: out[p][co] (+)= Σ_q x[q + offs[p]]·dyt[q][co]
/// for q in 0..len, with dyt [len, Co] the output gradient at the padded width, transposed (zero
/// in the junk columns); `out` is [K, Co]. Rows are taps (each a contiguous run of the padded
/// input), columns 16 output channels: every q is one load of dyt and R broadcasts.
pub(super) fn wide_weight_grad(isa: Isa, offs: &[usize], x: &[f32], len: usize, dyt: &[f32], co: usize, out: &mut [f32], acc: bool) {
    let k = offs.len();
    assert!(dyt.len() >= len * co && out.len() >= k * co, "wide_weight_grad: sizes");
    assert!(offs.iter().all(|&o| o + len <= x.len()), "wide_weight_grad: input too short for its taps");
    if k == 0 || co == 0 {
        return;
    }
    if len == 0 {
        if !acc {
            out[..k * co].fill(0.0);
        }
        return;
    }
    let tiles = k.div_ceil(MR);
    let mut p0 = 0;
    for ti in 0..tiles {
        let rows = k / tiles + usize::from(ti < k % tiles);
        // AVX-512 tiles are two vectors (32 output channels) wide where there are that many.
        let step = if isa == Isa::Avx512 { 2 * NR } else { NR };
        for c0 in (0..co).step_by(step) {
            let width = step.min(co - c0);
            let cr = &mut out[p0 * co + c0..];
            assert!(cr.len() > (rows - 1) * co + width - 1, "wide_weight_grad: tile outside the output");
            #[cfg(target_arch = "x86_64")]
            {
                let args = x86::RowArgs { x: x.as_ptr(), offs: offs[p0..p0 + rows].as_ptr(), len, b: dyt[c0..].as_ptr(), ldb: co, c: cr.as_mut_ptr(), ldc: co, width, acc };
                // SAFETY: `isa` is supported; every tap row q < len stays inside x (asserted),
                // dyt holds len rows of co from column c0 and the masked loads read `width`
                // columns, and C holds rows×width at stride co (asserted).
                let done = unsafe {
                    match (isa, rows) {
                        (Isa::Avx512, 6) => x86::rows512::<6>(args),
                        (Isa::Avx512, 5) => x86::rows512::<5>(args),
                        (Isa::Avx512, 4) => x86::rows512::<4>(args),
                        (Isa::Avx512, 3) => x86::rows512::<3>(args),
                        (Isa::Avx512, 2) => x86::rows512::<2>(args),
                        (Isa::Avx512, _) => x86::rows512::<1>(args),
                        _ => false,
                    }
                };
                if done {
                    continue;
                }
            }
            for r in 0..rows {
                for j in 0..width {
                    let v: f32 = (0..len).map(|q| x[q + offs[p0 + r]] * dyt[q * co + c0 + j]).sum();
                    let o = &mut cr[r * co + j];
                    *o = if acc { *o + v } else { v };
                }
            }
        }
        p0 += rows;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::NR;

    #[derive(Clone, Copy)]
    pub struct Args {
        pub w: *const f32,
        pub k: usize,
        pub x: *const f32,
        pub offs: *const usize,
        pub c: *mut f32,
        pub ldc: usize,
        pub width: usize,
        pub bias: *const f32,
        /// Compact stores only ([`super::compact_conv`]), per vector: the lanes to keep, where
        /// the first kept lane goes in the output row-major plane, the store mask.
        pub place: [(__mmask16, usize, __mmask16); 2],
    }

    /// [`Args::place`] of the vector of 16 pixels from padded position q (`width` of them
    /// real): lanes whose column is inside the output row (< wo of every wp).
    pub fn place(q: usize, width: usize, wp: usize, wo: usize) -> (__mmask16, usize, __mmask16) {
        let (mut col, mut keep) = (q % wp, 0u16);
        let at = q / wp * wo + col.min(wo);
        for i in 0..width.min(NR) {
            if col < wo {
                keep |= 1 << i;
            }
            col += 1;
            if col == wp {
                col = 0;
            }
        }
        let n = keep.count_ones();
        (keep, at, if n >= 16 { 0xFFFF } else { ((1u32 << n) - 1) as u16 })
    }

    /// With `COMPACT`, `c` is the output of the tile's first channel in [Ho, Wo] layout and
    /// `ldc` the channel plane (Ho·Wo): each vector's lanes in junk columns (x ≥ wo) are
    /// squeezed out in the register and the rest stored at its place in the row-major output.
    ///
    /// SAFETY: AVX-512F present; the pointers cover what `Args` names (see `tile`,
    /// `compact_conv`).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn tile512<const R: usize, const COMPACT: bool>(a: Args) {
        unsafe {
            let lanes = |w: usize| -> __mmask16 { if w >= NR { 0xFFFF } else { ((1u32 << w) - 1) as u16 } };
            let (m0, m1) = (lanes(a.width), lanes(a.width.saturating_sub(NR)));
            let mut t0 = [_mm512_setzero_ps(); R];
            for (r, v) in t0.iter_mut().enumerate() {
                *v = _mm512_set1_ps(*a.bias.add(r));
            }
            let mut t1 = t0;
            if m1 == 0 {
                // A tail of at most 16 pixels: one vector.
                for p in 0..a.k {
                    let b0 = _mm512_loadu_ps(a.x.add(*a.offs.add(p)));
                    for r in 0..R {
                        t0[r] = _mm512_fmadd_ps(_mm512_set1_ps(*a.w.add(r * a.k + p)), b0, t0[r]);
                    }
                }
            } else {
                for p in 0..a.k {
                    let xp = a.x.add(*a.offs.add(p));
                    let (b0, b1) = (_mm512_loadu_ps(xp), _mm512_loadu_ps(xp.add(NR)));
                    for r in 0..R {
                        let wv = _mm512_set1_ps(*a.w.add(r * a.k + p));
                        t0[r] = _mm512_fmadd_ps(wv, b0, t0[r]);
                        t1[r] = _mm512_fmadd_ps(wv, b1, t1[r]);
                    }
                }
            }
            if COMPACT {
                let [(k0, at0, s0), (k1, at1, s1)] = a.place;
                for r in 0..R {
                    let cp = a.c.add(r * a.ldc);
                    _mm512_mask_storeu_ps(cp.add(at0), s0, _mm512_maskz_compress_ps(k0, t0[r]));
                    if m1 != 0 {
                        _mm512_mask_storeu_ps(cp.add(at1), s1, _mm512_maskz_compress_ps(k1, t1[r]));
                    }
                }
            } else {
                for r in 0..R {
                    let cp = a.c.add(r * a.ldc);
                    _mm512_mask_storeu_ps(cp, m0, t0[r]);
                    if m1 != 0 {
                        _mm512_mask_storeu_ps(cp.add(NR), m1, t1[r]);
                    }
                }
            }
        }
    }

    #[derive(Clone, Copy)]
    pub struct RowArgs {
        pub x: *const f32,
        pub offs: *const usize,
        pub len: usize,
        pub b: *const f32,
        pub ldb: usize,
        pub c: *mut f32,
        pub ldc: usize,
        pub width: usize,
        pub acc: bool,
    }

    /// R tap rows × `width` ≤ 32 output channels of the weight gradient, reduced over q.
    /// Returns true (it ran).
    ///
    /// SAFETY: AVX-512F present; the pointers cover what `RowArgs` names (see
    /// `wide_weight_grad`).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn rows512<const R: usize>(a: RowArgs) -> bool {
        unsafe {
            let lanes = |w: usize| -> __mmask16 { if w >= NR { 0xFFFF } else { ((1u32 << w) - 1) as u16 } };
            let (m0, m1) = (lanes(a.width), lanes(a.width.saturating_sub(NR)));
            let mut t0 = [_mm512_setzero_ps(); R];
            let mut t1 = t0;
            let mut rows = [a.x; R];
            for (r, p) in rows.iter_mut().enumerate() {
                *p = a.x.add(*a.offs.add(r));
            }
            if m1 == 0 {
                for q in 0..a.len {
                    let b0 = _mm512_maskz_loadu_ps(m0, a.b.add(q * a.ldb));
                    for r in 0..R {
                        t0[r] = _mm512_fmadd_ps(_mm512_set1_ps(*rows[r].add(q)), b0, t0[r]);
                    }
                }
            } else {
                for q in 0..a.len {
                    let bp = a.b.add(q * a.ldb);
                    let (b0, b1) = (_mm512_loadu_ps(bp), _mm512_maskz_loadu_ps(m1, bp.add(NR)));
                    for r in 0..R {
                        let xv = _mm512_set1_ps(*rows[r].add(q));
                        t0[r] = _mm512_fmadd_ps(xv, b0, t0[r]);
                        t1[r] = _mm512_fmadd_ps(xv, b1, t1[r]);
                    }
                }
            }
            for r in 0..R {
                let cp = a.c.add(r * a.ldc);
                let v0 = if a.acc { _mm512_add_ps(t0[r], _mm512_maskz_loadu_ps(m0, cp)) } else { t0[r] };
                _mm512_mask_storeu_ps(cp, m0, v0);
                if m1 != 0 {
                    let cp = cp.add(NR);
                    let v1 = if a.acc { _mm512_add_ps(t1[r], _mm512_maskz_loadu_ps(m1, cp)) } else { t1[r] };
                    _mm512_mask_storeu_ps(cp, m1, v1);
                }
            }
        }
        true
    }

    /// SAFETY: AVX2 and FMA present; the pointers cover what `Args` names (see `tile`).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile256<const R: usize>(a: Args) {
        unsafe {
            let mut lo = [_mm256_setzero_ps(); R];
            let mut hi = [_mm256_setzero_ps(); R];
            for r in 0..R {
                lo[r] = _mm256_set1_ps(*a.bias.add(r));
                hi[r] = lo[r];
            }
            for p in 0..a.k {
                let xp = a.x.add(*a.offs.add(p));
                let (b0, b1) = (_mm256_loadu_ps(xp), _mm256_loadu_ps(xp.add(8)));
                for r in 0..R {
                    let wv = _mm256_set1_ps(*a.w.add(r * a.k + p));
                    lo[r] = _mm256_fmadd_ps(wv, b0, lo[r]);
                    hi[r] = _mm256_fmadd_ps(wv, b1, hi[r]);
                }
            }
            let mut buf = [0f32; NR];
            for r in 0..R {
                _mm256_storeu_ps(buf.as_mut_ptr(), lo[r]);
                _mm256_storeu_ps(buf.as_mut_ptr().add(8), hi[r]);
                std::ptr::copy_nonoverlapping(buf.as_ptr(), a.c.add(r * a.ldc), a.width);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The weight-gradient kernel on every ISA against the plain sum, accumulating or not,
    /// with output-channel counts across the 16-wide block.
    #[test]
    fn wide_weight_grad_matches_the_plain_sum() {
        let all = [Isa::Avx512, Isa::Avx2, Isa::Plain];
        let from = all.iter().position(|&i| i == Isa::best()).unwrap_or(2);
        for isa in &all[from..] {
            for (ci, co, h, w, k, pad) in [(3, 5, 6, 7, 3, 1), (2, 16, 4, 4, 3, 1), (1, 19, 5, 3, 1, 0), (4, 33, 6, 6, 3, 2), (2, 32, 5, 5, 3, 1), (1, 64, 3, 4, 3, 1)] {
                let mut xp = Padded::new(ci, h, w, pad, pad);
                let x: Vec<f32> = (0..ci * h * w).map(|i| (i as f32 * 0.37).sin()).collect();
                xp.fill(&x, ci, h, w, pad, pad);
                let offs = tap_offsets(ci, k, k, xp.hp, xp.wp);
                let len = (xp.hp - k + 1) * xp.wp;
                let dyt: Vec<f32> = (0..len * co).map(|i| (i as f32 * 0.23).cos()).collect();
                for acc in [false, true] {
                    let init: Vec<f32> = (0..offs.len() * co).map(|i| i as f32 * 0.01).collect();
                    let mut out = if acc { init.clone() } else { vec![f32::NAN; init.len()] };
                    wide_weight_grad(*isa, &offs, &xp.data, len, &dyt, co, &mut out, acc);
                    for p in 0..offs.len() {
                        for c in 0..co {
                            let want = (0..len).map(|q| xp.data[q + offs[p]] * dyt[q * co + c]).sum::<f32>() + if acc { init[p * co + c] } else { 0.0 };
                            let got = out[p * co + c];
                            assert!((got - want).abs() < 1e-3 * (1.0 + want.abs()), "{isa:?} ci {ci} co {co} k {k} acc {acc} at ({p}, {c}): {got} vs {want}");
                        }
                    }
                }
            }
        }
    }

    /// A convolution's operands: weights [co, ci·k·k], bias, the padded input, the tap offsets.
    struct Case {
        wt: Vec<f32>,
        bias: Vec<f32>,
        xp: Padded,
        offs: Vec<usize>,
    }

    impl Case {
        fn new(ci: usize, co: usize, h: usize, w: usize, k: usize, pad: usize) -> Self {
            let x: Vec<f32> = (0..ci * h * w).map(|i| (i as f32 * 0.37).sin()).collect();
            let wt = (0..co * ci * k * k).map(|i| (i as f32 * 0.11).cos()).collect();
            let bias = (0..co).map(|i| i as f32 * 0.1).collect();
            let mut xp = Padded::new(ci, h, w, pad, pad);
            xp.fill(&x, ci, h, w, pad, pad);
            let offs = tap_offsets(ci, k, k, xp.hp, xp.wp);
            Self { wt, bias, xp, offs }
        }
    }

    /// Every kernel this CPU runs against the plain sum, with partial tiles, odd channel counts
    /// and tap counts, and biases.
    #[test]
    fn wide_conv_matches_the_plain_sum() {
        let all = [Isa::Avx512, Isa::Avx2, Isa::Plain];
        let from = all.iter().position(|&i| i == Isa::best()).unwrap_or(2);
        for isa in &all[from..] {
            for (ci, co, h, w, k, pad) in [(3, 5, 6, 7, 3, 1), (1, 1, 4, 4, 1, 0), (4, 13, 9, 5, 5, 2), (2, 6, 3, 3, 3, 0)] {
                let Case { wt, bias, xp, offs } = Case::new(ci, co, h, w, k, pad);
                let ho = xp.hp - k + 1;
                let len = ho * xp.wp;
                let mut out = vec![f32::NAN; co * len];
                wide_conv(*isa, &wt, &offs, &xp.data, len, &bias, &mut out);
                for c in 0..co {
                    for q in 0..len {
                        let want = bias[c] + (0..offs.len()).map(|p| wt[c * offs.len() + p] * xp.data[q + offs[p]]).sum::<f32>();
                        let got = out[c * len + q];
                        assert!((got - want).abs() < 1e-4 * (1.0 + want.abs()), "{isa:?} ci {ci} co {co} {h}x{w} k {k} at ({c}, {q}): {got} vs {want}");
                    }
                }
            }
        }
    }

    /// The compacting kernel gives exactly the wide kernel's values in the output's own layout,
    /// and writes every output element (row widths across the 16-lane vectors, odd channels).
    #[test]
    fn compact_conv_matches_the_wide_kernel() {
        if Isa::best() != Isa::Avx512 {
            assert!(!compact_conv(Isa::best(), &[], &[], &[], 0, &[], 1, 1, &mut []));
            return;
        }
        for (ci, co, h, w, k, pad) in [(3, 5, 6, 7, 3, 1), (2, 13, 8, 8, 3, 1), (4, 7, 9, 17, 3, 1), (1, 3, 5, 33, 1, 0), (2, 6, 4, 15, 5, 2)] {
            let Case { wt, bias, xp, offs } = Case::new(ci, co, h, w, k, pad);
            let (ho, wo) = (xp.hp - k + 1, w + 2 * pad - k + 1);
            let len = ho * xp.wp;
            let mut wide = vec![0.0; co * len];
            wide_conv(Isa::Avx512, &wt, &offs, &xp.data, len, &bias, &mut wide);
            let mut out = vec![std::mem::MaybeUninit::new(f32::NAN); co * ho * wo];
            assert!(compact_conv(Isa::Avx512, &wt, &offs, &xp.data, len, &bias, xp.wp, wo, &mut out));
            for c in 0..co {
                for oy in 0..ho {
                    for ox in 0..wo {
                        // SAFETY: initialised with NaN above.
                        let got = unsafe { out[(c * ho + oy) * wo + ox].assume_init() };
                        assert_eq!(got, wide[c * len + oy * xp.wp + ox], "ci {ci} co {co} {h}x{w} k {k} at ({c}, {oy}, {ox})");
                    }
                }
            }
        }
    }

    /// Single-thread throughput of the kernels on ResNet-20's three stride-1 layer shapes:
    /// `cargo test --release -p burnlab-models direct_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn direct_speed() {
        let isa = Isa::best();
        for (c, hw) in [(16, 32), (32, 16), (64, 8)] {
            let mut xp = Padded::new(c, hw, hw, 1, 1);
            let x: Vec<f32> = (0..c * hw * hw).map(|i| (i as f32 * 0.37).sin()).collect();
            xp.fill(&x, c, hw, hw, 1, 1);
            let offs = tap_offsets(c, 3, 3, xp.hp, xp.wp);
            let len = hw * xp.wp;
            let wt: Vec<f32> = (0..c * offs.len()).map(|i| (i as f32 * 0.11).cos()).collect();
            let bias = vec![0.0; c];
            let mut out = vec![0.0; c * len];
            let reps = 20_000 / c;
            let flops = (2 * c * offs.len() * hw * hw * reps) as f64;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                wide_conv(isa, &wt, &offs, &xp.data, len, &bias, &mut out);
            }
            let fwd = flops / t.elapsed().as_secs_f64() / 1e9;
            let dyt: Vec<f32> = (0..len * c).map(|i| (i as f32 * 0.23).cos()).collect();
            let mut dw = vec![0.0; offs.len() * c];
            let t = std::time::Instant::now();
            for _ in 0..reps {
                wide_weight_grad(isa, &offs, &xp.data, len, &dyt, c, &mut dw, true);
            }
            let wg = flops / t.elapsed().as_secs_f64() / 1e9;
            println!("c={c} hw={hw} conv_gflops={fwd:.1} weight_grad_gflops={wg:.1}");
        }
    }
}
