//! Stride-1 convolution without a column matrix ("implicit GEMM"): the input is zero-padded
//! once, and output pixel q of a padded-width row reads input element q + off[p] for every
//! kernel tap p = (ci, ky, kx), with off[p] = ci·Hp·Wp + ky·Wp + kx. So consecutive output
//! pixels read consecutive inputs per tap: vector loads, multiplied by R output channels'
//! weights broadcast into R registers.
//!
//! Why: im2col writes Ci·kh·kw values per output pixel (9× the input for 3×3) and the `gemm`
//! crate then packs them again; on ResNet-20 those two copies were a quarter of a training
//! step. The same kernel gives the input gradient of a stride-1 convolution (a convolution of
//! the padded output gradient by the flipped, transposed weights), and the weight gradient is
//! the same loop with taps as rows ([`wide_weight_grad`]).
//!
//! Rows are computed at the padded width Wp (Wp − Wo junk columns each, dropped when the
//! result is stored), so the tiles run along whole images rather than short rows. Each row
//! carries only its right-hand zero columns (Wp = W + pw, not W + 2·pw): a row's left padding
//! is the previous row's right padding, which is zero too.
//!
//! Tiles are [`MR`] rows × `Simd::NV` vectors, one source for every ISA: 6 × 32 pixels on
//! AVX-512, 6 × 16 on AVX2 and NEON, 6 × 8 plain.

use crate::isa::{Cpu, Kernel};
use crate::packed::MR;
use crate::simd::Simd;

/// The widest register tile, in floats (AVX-512: 2 × 16): the slack every buffer read with
/// full-width loads carries past its last real value.
pub const SLACK: usize = 32;

/// Padded input of one image: [Ci, Hp, Wp] with Wp = W + pw (see the module note), starting
/// at element pw, plus [`SLACK`], so that full-width loads at any tile start stay inside the
/// buffer. Element (c, y, x) of the input is at pw + (c·Hp + y + ph)·Wp + x.
pub struct Padded {
    pub data: Vec<f32>,
    pub hp: usize,
    pub wp: usize,
}

impl Padded {
    pub fn new(c: usize, h: usize, w: usize, ph: usize, pw: usize) -> Self {
        let (hp, wp) = (h + 2 * ph, w + pw);
        Self { data: vec![0.0; c * hp * wp + wp + SLACK], hp, wp }
    }

    /// Copies x [C, H, W] into the interior (the borders stay zero).
    pub fn fill(&mut self, x: &[f32], c: usize, h: usize, w: usize, ph: usize, pw: usize) {
        fill_padded(&mut self.data, self.hp, self.wp, x, c, h, w, ph, pw);
    }
}

/// Copies x [C, H, W] into the interior of a padded buffer laid out as [`Padded`]'s (rows `wp`
/// apart, planes `hp` rows, element (c, y, x) at pw + (c·hp + y + ph)·wp + x).
#[allow(clippy::too_many_arguments)]
pub(crate) fn fill_padded(
    data: &mut [f32],
    hp: usize,
    wp: usize,
    x: &[f32],
    c: usize,
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
) {
    assert!(
        x.len() >= c * h * w && data.len() >= c * hp * wp + pw && w + pw <= wp && h + ph <= hp,
        "Padded::fill: sizes"
    );
    for ch in 0..c {
        for y in 0..h {
            let dst = (ch * hp + y + ph) * wp + pw;
            copy_row(&mut data[dst..dst + w], &x[(ch * h + y) * w..(ch * h + y + 1) * w]);
        }
    }
}

/// `to.copy_from_slice(from)` for short rows without a `memcpy` call: ResNet-20's rows are 8
/// to 32 floats, and a call per row (two, with the remainder) was ~5% of its training step by
/// perf. Moves of fixed sizes, halving; a loop of fixed-size blocks does not do, as LLVM folds
/// it back into one `memcpy` of the whole row.
#[inline(always)]
fn copy_row(to: &mut [f32], from: &[f32]) {
    let n = to.len();
    if n > 64 {
        to.copy_from_slice(from);
        return;
    }
    let mut i = 0;
    macro_rules! block {
        ($b:literal) => {
            if n - i >= $b {
                to[i..i + $b].copy_from_slice(&from[i..i + $b]);
                i += $b;
            }
        };
    }
    block!(32);
    block!(32);
    block!(16);
    block!(8);
    block!(4);
    block!(2);
    block!(1);
    debug_assert_eq!(i, n);
}

/// Offsets of the taps (ci, ky, kx) in a padded image.
pub fn tap_offsets(ci: usize, kh: usize, kw: usize, hp: usize, wp: usize) -> Vec<usize> {
    (0..ci)
        .flat_map(|c| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| c * hp * wp + ky * wp + kx)))
        .collect()
}

/// out[co][q] = bias[co] + Σ_p w[co][p]·x[q + offs[p]] for q in 0..len; `out` is [Co, len].
pub fn wide_conv(
    cpu: Cpu,
    w: &[f32],
    offs: &[usize],
    x: &[f32],
    len: usize,
    bias: &[f32],
    out: &mut [f32],
) {
    wide_conv_ld(cpu, w, offs, x, len, bias, out, len)
}

/// [`wide_conv`] with rows of `out` `ldc` apart (≥ len). `x` must reach [`SLACK`] floats past
/// the last tap of the last pixel (as [`Padded`] does).
#[allow(clippy::too_many_arguments)]
pub fn wide_conv_ld(
    cpu: Cpu,
    w: &[f32],
    offs: &[usize],
    x: &[f32],
    len: usize,
    bias: &[f32],
    out: &mut [f32],
    ldc: usize,
) {
    wide_conv_acc(cpu, w, offs.len(), offs, x, len, bias, out, ldc, false)
}

/// The general form: w's rows are `ldw` apart (≥ the tap count; so a block of taps of a
/// wider weight matrix can be run on its own), and with `acc` the result is added to what
/// `out` holds (bias included: pass zeros for the blocks after the first).
#[allow(clippy::too_many_arguments)]
pub fn wide_conv_acc(
    cpu: Cpu,
    w: &[f32],
    ldw: usize,
    offs: &[usize],
    x: &[f32],
    len: usize,
    bias: &[f32],
    out: &mut [f32],
    ldc: usize,
    acc: bool,
) {
    let (co, k) = (bias.len(), offs.len());
    assert!(ldw >= k && (co == 0 || w.len() >= (co - 1) * ldw + k), "wide_conv: weights");
    assert!(ldc >= len && (co == 0 || out.len() >= (co - 1) * ldc + len), "wide_conv: output");
    let reach = offs.iter().max().map_or(0, |m| m + len.div_ceil(SLACK) * SLACK);
    assert!(k == 0 || x.len() >= reach, "wide_conv: input too short for its taps");
    if co == 0 || len == 0 {
        return;
    }
    cpu.run(Conv { w, ldw, offs, x, len, bias, out, ldc, acc })
}

struct Conv<'a> {
    w: &'a [f32],
    ldw: usize,
    offs: &'a [usize],
    x: &'a [f32],
    len: usize,
    bias: &'a [f32],
    out: &'a mut [f32],
    ldc: usize,
    acc: bool,
}

/// Calls `$f::<S, R, NV>(s, $args)` for the rows count (1..=6) and NV (1, 2, 4; the ISA's
/// `S::NV` unless given).
macro_rules! tiles {
    ($f:ident, $s:ident, $rows:expr, $args:expr) => {
        tiles!($f, $s, S::NV, $rows, $args)
    };
    ($f:ident, $s:ident, $nv:expr, $rows:expr, $args:expr) => {
        match ($nv, $rows) {
            (1, 6) => $f::<S, 6, 1>($s, $args),
            (1, 5) => $f::<S, 5, 1>($s, $args),
            (1, 4) => $f::<S, 4, 1>($s, $args),
            (1, 3) => $f::<S, 3, 1>($s, $args),
            (1, 2) => $f::<S, 2, 1>($s, $args),
            (1, _) => $f::<S, 1, 1>($s, $args),
            (2, 6) => $f::<S, 6, 2>($s, $args),
            (2, 5) => $f::<S, 5, 2>($s, $args),
            (2, 4) => $f::<S, 4, 2>($s, $args),
            (2, 3) => $f::<S, 3, 2>($s, $args),
            (2, 2) => $f::<S, 2, 2>($s, $args),
            (2, _) => $f::<S, 1, 2>($s, $args),
            (_, 6) => $f::<S, 6, 4>($s, $args),
            (_, 5) => $f::<S, 5, 4>($s, $args),
            (_, 4) => $f::<S, 4, 4>($s, $args),
            (_, 3) => $f::<S, 3, 4>($s, $args),
            (_, 2) => $f::<S, 2, 4>($s, $args),
            (_, _) => $f::<S, 1, 4>($s, $args),
        }
    };
}

impl Kernel for Conv<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let Conv { w, ldw, offs, x, len, bias, out, ldc, acc } = self;
        let (co, k) = (bias.len(), offs.len());
        let reach = offs.iter().copied().max().unwrap_or(0);
        let tiles = co.div_ceil(MR);
        let step = S::NV_WIDE * S::LANES;
        for q0 in (0..len).step_by(step) {
            let width = step.min(len - q0);
            // A short last strip takes as few vectors as cover it (AVX-512 on ResNet-20's 8×8
            // maps: 80 pixels a row of the padded image, 64 a tile).
            let nv = width.div_ceil(S::LANES).min(S::NV_WIDE);
            let mut r0 = 0;
            for ti in 0..tiles {
                let rows = co / tiles + usize::from(ti < co % tiles);
                let args = ConvTile {
                    w: &w[r0 * ldw..(r0 + rows - 1) * ldw + k],
                    ldw,
                    offs,
                    reach,
                    x: &x[q0..],
                    bias: &bias[r0..r0 + rows],
                    c: &mut out[r0 * ldc + q0..],
                    ldc,
                    width,
                    acc,
                };
                tiles!(conv_tile, s, nv, rows, args);
                r0 += rows;
            }
        }
    }
}

struct ConvTile<'a> {
    w: &'a [f32],
    ldw: usize,
    offs: &'a [usize],
    /// The largest of `offs`.
    reach: usize,
    x: &'a [f32],
    bias: &'a [f32],
    c: &'a mut [f32],
    ldc: usize,
    width: usize,
    acc: bool,
}

/// R output channels × NV vectors of pixels.
#[inline(always)]
fn conv_tile<S: Simd, const R: usize, const NV: usize>(s: S, t: ConvTile) {
    let ConvTile { w, ldw, offs, reach, x, bias, c, ldc, width, acc } = t;
    let k = offs.len();
    let full = NV * S::LANES;
    assert!(
        ldw >= k
            && w.len() >= (R - 1) * ldw + k
            && bias.len() >= R
            && width <= full
            && c.len() >= (R - 1) * ldc + width,
        "conv tile: operands"
    );
    // Every tap's full-width load stays inside x: `reach` is the largest offset (the one caller,
    // `Conv::run`, works it out once from `offs` rather than every tile checking every tap).
    assert!(k == 0 || reach + full <= x.len(), "conv tile: input too short");
    let mut t = [[s.zero(); NV]; R];
    for (r, row) in t.iter_mut().enumerate() {
        *row = [s.splat(bias[r]); NV];
    }
    let (xp, wp) = (x.as_ptr(), w.as_ptr());
    for (p, &off) in offs.iter().enumerate() {
        let mut xv = [s.zero(); NV];
        for (v, a) in xv.iter_mut().enumerate() {
            // SAFETY: off + v·LANES + LANES ≤ reach + full ≤ x.len() (asserted; off ≤ reach).
            *a = unsafe { s.load(xp.add(off + v * S::LANES)) };
        }
        for (r, row) in t.iter_mut().enumerate() {
            // SAFETY: r < R and p < k: r·ldw + p < (R − 1)·ldw + k ≤ w.len() (asserted).
            let wv = s.splat(unsafe { *wp.add(r * ldw + p) });
            for (v, acc) in row.iter_mut().enumerate() {
                *acc = s.mul_add(wv, xv[v], *acc);
            }
        }
    }
    store_rows(s, &t, c, ldc, width, acc);
}

/// Stores R rows × `width` ≤ NV·LANES values of the tile (row r at r·ldc), adding what is
/// there if `acc`.
#[inline(always)]
pub(crate) fn store_rows<S: Simd, const R: usize, const NV: usize>(
    s: S,
    t: &[[S::V; NV]; R],
    c: &mut [f32],
    ldc: usize,
    width: usize,
    acc: bool,
) {
    assert!(c.len() >= (R - 1) * ldc + width, "tile store: output");
    for (r, row) in t.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            let lo = (v * S::LANES).min(width);
            let hi = ((v + 1) * S::LANES).min(width);
            if hi == lo {
                break;
            }
            let dst = &mut c[r * ldc + lo..r * ldc + hi];
            if hi - lo == S::LANES {
                // SAFETY: dst holds LANES values.
                unsafe {
                    let y = if acc { s.add(*x, s.load(dst.as_ptr())) } else { *x };
                    s.store(dst.as_mut_ptr(), y);
                }
            } else {
                let y = if acc { s.add(*x, s.load_partial(dst)) } else { *x };
                s.store_partial(dst, y);
            }
        }
    }
}

/// The output pixels the weight gradient reduces over: `rows` rows of `cols` pixels, `pitch`
/// apart (the padded width). The `pitch − cols` junk columns between them are skipped: on
/// ResNet-18's 7×7 layers (pitch 8) they were 12.5% of the multiply-adds, on its 14×14 ones 6.7%.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pixels {
    rows: usize,
    cols: usize,
    pitch: usize,
}

impl Pixels {
    /// Rows of `cols` pixels `pitch` apart (`cols ≤ pitch`).
    pub fn new(rows: usize, cols: usize, pitch: usize) -> Self {
        assert!(cols <= pitch, "pixels: {cols} columns in rows {pitch} apart");
        Self { rows, cols, pitch }
    }

    /// The span the rows cover, junk columns included: `rows · pitch`.
    pub fn span(self) -> usize {
        self.rows * self.pitch
    }

    /// Whether there is no pixel to reduce over.
    pub fn none(self) -> bool {
        self.rows == 0 || self.cols == 0
    }
}

/// The weight gradient's transpose, per image: out[p][co] (+)= Σ_q x[q + offs[p]]·dyt[q][co]
/// over the pixels q of `px` (junk columns skipped), with dyt [px.span(), Co] the output gradient
/// at the padded width, transposed, followed by [`SLACK`] more floats; `out` is [K, Co]. Rows of
/// a tile are taps (each a contiguous run of the padded input), columns NV vectors of output
/// channels: every q is NV loads of dyt and R broadcasts.
#[allow(clippy::too_many_arguments)]
pub fn wide_weight_grad(
    cpu: Cpu,
    offs: &[usize],
    x: &[f32],
    px: Pixels,
    dyt: &[f32],
    co: usize,
    out: &mut [f32],
    acc: bool,
) {
    wide_weight_grad_images(cpu, offs, &[x], px, &[dyt], co, out, acc)
}

/// [`wide_weight_grad`] summed over several images (`xs[i]` with `dyts[i]`), each tile reducing
/// over every image before it is stored: where the weights are large and the images small
/// (ResNet-18's 512-channel layers: out is 9.4 MB, an image's pixels 56 per row of taps) the
/// output is read and written once per group rather than once per image.
#[allow(clippy::too_many_arguments)]
pub fn wide_weight_grad_images(
    cpu: Cpu,
    offs: &[usize],
    xs: &[&[f32]],
    px: Pixels,
    dyts: &[&[f32]],
    co: usize,
    out: &mut [f32],
    acc: bool,
) {
    let (k, len) = (offs.len(), px.span());
    assert!(xs.len() == dyts.len(), "wide_weight_grad: one output gradient per image");
    assert!(
        dyts.iter().all(|d| d.len() >= len * co + SLACK) && out.len() >= k * co,
        "wide_weight_grad: sizes"
    );
    assert!(
        xs.iter().all(|x| offs.iter().all(|&o| o + len <= x.len())),
        "wide_weight_grad: input too short for its taps"
    );
    if k == 0 || co == 0 {
        return;
    }
    if px.none() || xs.is_empty() {
        if !acc {
            out[..k * co].fill(0.0);
        }
        return;
    }
    cpu.run(WeightGrad { offs, xs, px, dyts, co, out, acc })
}

/// The most dyt a pass of [`WeightGrad`]'s tiles reads (half a Zen 4's L2).
const BLOCK_BYTES: usize = 512 << 10;

struct WeightGrad<'a> {
    offs: &'a [usize],
    xs: &'a [&'a [f32]],
    px: Pixels,
    dyts: &'a [&'a [f32]],
    co: usize,
    out: &'a mut [f32],
    acc: bool,
}

impl Kernel for WeightGrad<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let WeightGrad { offs, xs, px, dyts, co, out, acc } = self;
        let k = offs.len();
        let tiles = k.div_ceil(MR);
        // As few vectors as cover the output channels: on AVX-512 a 2-vector (32-channel) tile
        // over ResNet-20's 16 channels did half its multiply-adds on padding (55 against
        // AVX2's 106 GFLOP/s on a Zen 4), LeNet-5's 6 and 16 likewise.
        let nv = co.div_ceil(S::LANES).min(S::NV);
        let step = nv * S::LANES;
        // Rows of pixels per pass over the tiles: as many as keep the images' dyt rows within
        // [`BLOCK_BYTES`], so that every tile re-reads them from L2, not memory (ResNet-18's
        // stem: 3.2 MB an image, read once per tile of taps and channels, 100 times on AVX2).
        let per_row = xs.len() * px.pitch * co * 4;
        let block = (BLOCK_BYTES / per_row.max(1)).clamp(1, px.rows);
        for r0 in (0..px.rows).step_by(block) {
            let sub = Pixels { rows: block.min(px.rows - r0), ..px };
            // Row r0 onwards: the taps' offsets and every q are then relative to it.
            let xs: Vec<&[f32]> = xs.iter().map(|x| &x[r0 * px.pitch..]).collect();
            let bs: Vec<&[f32]> = dyts.iter().map(|b| &b[r0 * px.pitch * co..]).collect();
            let acc = acc || r0 > 0;
            let mut p0 = 0;
            for ti in 0..tiles {
                let rows = k / tiles + usize::from(ti < k % tiles);
                for c0 in (0..co).step_by(step) {
                    let width = step.min(co - c0);
                    let args = GradTile {
                        offs: &offs[p0..p0 + rows],
                        xs: &xs,
                        px: sub,
                        bs: &bs,
                        c0,
                        ldb: co,
                        c: &mut out[p0 * co + c0..],
                        width,
                        acc,
                    };
                    tiles!(grad_tile, s, nv, rows, args);
                }
                p0 += rows;
            }
        }
    }
}

struct GradTile<'a> {
    offs: &'a [usize],
    xs: &'a [&'a [f32]],
    px: Pixels,
    /// Every image's dyt; the tile's channels start at column `c0`.
    bs: &'a [&'a [f32]],
    c0: usize,
    ldb: usize,
    c: &'a mut [f32],
    width: usize,
    acc: bool,
}

/// R taps × NV vectors of output channels, reduced over the pixels `px` of every image.
#[inline(always)]
fn grad_tile<S: Simd, const R: usize, const NV: usize>(s: S, t: GradTile) {
    let GradTile { offs, xs, px, bs, c0, ldb, c, width, acc } = t;
    let full = NV * S::LANES;
    let len = px.span();
    let mut t = [[s.zero(); NV]; R];
    for (&x, &b) in xs.iter().zip(bs) {
        assert!(
            offs.len() >= R && offs[..R].iter().all(|&o| o + len <= x.len()),
            "grad tile: input too short"
        );
        // Row q's full-width load reads b[c0 + q·ldb .. c0 + q·ldb + full]: inside b for every
        // q < len.
        assert!(
            len == 0 || c0 + (len - 1) * ldb + full <= b.len(),
            "grad tile: output gradient too short"
        );
        let mut rows = [x.as_ptr(); R];
        for (r, p) in rows.iter_mut().enumerate() {
            // SAFETY: offs[r] + len ≤ x.len() (asserted): the row pointer and its len values
            // are in x.
            *p = unsafe { x.as_ptr().add(offs[r]) };
        }
        // SAFETY: c0 ≤ c0 + (len − 1)·ldb + full ≤ b.len() (asserted; len ≥ 1 here, as the
        // caller returns early on 0, and the loop below does not run otherwise).
        let bp = unsafe { b.as_ptr().add(c0.min(b.len())) };
        // q = row · pitch + col with col < cols ≤ pitch (Pixels::new), so q < rows · pitch = len.
        for row in 0..px.rows {
            for q in row * px.pitch..row * px.pitch + px.cols {
                let mut bv = [s.zero(); NV];
                for (v, a) in bv.iter_mut().enumerate() {
                    // SAFETY: c0 + q·ldb + v·LANES + LANES ≤ c0 + (len − 1)·ldb + full ≤
                    // b.len() (asserted).
                    *a = unsafe { s.load(bp.add(q * ldb + v * S::LANES)) };
                }
                for (r, row) in t.iter_mut().enumerate() {
                    // SAFETY: q < len and rows[r] has len values (asserted).
                    let xv = s.splat(unsafe { *rows[r].add(q) });
                    for (v, a) in row.iter_mut().enumerate() {
                        *a = s.mul_add(xv, bv[v], *a);
                    }
                }
            }
        }
    }
    store_rows(s, &t, c, ldb, width, acc);
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn copy_row_copies_every_length() {
        for n in 0..=70 {
            let from: Vec<f32> = (0..n).map(|i| i as f32 + 1.0).collect();
            let mut to = vec![0.0; n];
            copy_row(&mut to, &from);
            assert_eq!(to, from, "length {n}");
        }
    }

    /// Three images in one call: the sum of the three single-image calls, every ISA.
    #[test]
    fn wide_weight_grad_of_images_sums_them() {
        for cpu in Cpu::all() {
            let (ci, co, h, w, k, pad) = (2, 19, 5, 4, 3, 1);
            let cases: Vec<Case> = (0..3).map(|_| Case::new(ci, co, h, w, k, pad)).collect();
            let px = Pixels::new(h + 2 * pad - k + 1, w + 2 * pad - k + 1, cases[0].xp.wp);
            let len = px.span();
            let dyts: Vec<Vec<f32>> = (0..3)
                .map(|g| {
                    let mut d: Vec<f32> =
                        (0..len * co).map(|i| (i as f32 * 0.23 + g as f32).cos()).collect();
                    d.extend([f32::NAN; SLACK]);
                    d
                })
                .collect();
            // Different inputs per image: scale image g by g + 1.
            let xs: Vec<Vec<f32>> = cases
                .iter()
                .enumerate()
                .map(|(g, c)| c.xp.data.iter().map(|v| v * (g + 1) as f32).collect())
                .collect();
            let offs = &cases[0].offs;
            let mut want = vec![0.5; offs.len() * co];
            for (x, dyt) in xs.iter().zip(&dyts) {
                wide_weight_grad(cpu, offs, x, px, dyt, co, &mut want, true);
            }
            let mut got = vec![0.5; offs.len() * co];
            let xr: Vec<&[f32]> = xs.iter().map(|v| &v[..]).collect();
            let dr: Vec<&[f32]> = dyts.iter().map(|v| &v[..]).collect();
            wide_weight_grad_images(cpu, offs, &xr, px, &dr, co, &mut got, true);
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                    "{:?} [{i}]: {a} vs {b}",
                    cpu.isa()
                );
            }
        }
    }

    /// Every ISA this CPU has against the plain sum, accumulating or not, output-channel counts
    /// across every tile width (8, 16, 32).
    #[test]
    fn wide_weight_grad_matches_the_plain_sum() {
        for cpu in Cpu::all() {
            let cases = [
                (3, 5, 6, 7, 3, 1),
                (2, 16, 4, 4, 3, 1),
                (1, 19, 5, 3, 1, 0),
                (4, 33, 6, 6, 3, 2),
                (2, 32, 5, 5, 3, 1),
                (1, 64, 3, 4, 3, 1),
                (2, 8, 3, 3, 1, 0),
                // dyt over BLOCK_BYTES (60 rows of 42 × 64 floats): passes of 48 and 12 rows.
                (1, 64, 60, 40, 3, 1),
            ];
            // Under Miri (a thousand times slower) the first two cases only.
            for &(ci, co, h, w, k, pad) in &cases[..if cfg!(miri) { 2 } else { cases.len() }] {
                let Case { xp, offs, .. } = Case::new(ci, co, h, w, k, pad);
                let wo = w + 2 * pad - k + 1;
                let px = Pixels::new(xp.hp - k + 1, wo, xp.wp);
                let len = px.span();
                if h == 60 {
                    assert!(len * co * 4 > BLOCK_BYTES, "the last case is not blocked");
                }
                // NaN in the junk columns (q mod pitch ≥ cols): they must not be read.
                let junk = |q: usize| q % xp.wp >= wo;
                let mut dyt: Vec<f32> = (0..len * co)
                    .map(|i| if junk(i / co) { f32::NAN } else { (i as f32 * 0.23).cos() })
                    .collect();
                dyt.extend([f32::NAN; SLACK]);
                for acc in [false, true] {
                    let init: Vec<f32> = (0..offs.len() * co).map(|i| i as f32 * 0.01).collect();
                    let mut out = if acc { init.clone() } else { vec![f32::NAN; init.len()] };
                    wide_weight_grad(cpu, &offs, &xp.data, px, &dyt, co, &mut out, acc);
                    for p in 0..offs.len() {
                        for c in 0..co {
                            let want = (0..len)
                                .filter(|&q| !junk(q))
                                .map(|q| xp.data[q + offs[p]] * dyt[q * co + c])
                                .sum::<f32>()
                                + if acc { init[p * co + c] } else { 0.0 };
                            let got = out[p * co + c];
                            assert!(
                                (got - want).abs() < 1e-3 * (1.0 + want.abs()),
                                "{:?} ci {ci} co {co} k {k} acc {acc} at ({p}, {c}): {got} vs {want}",
                                cpu.isa()
                            );
                        }
                    }
                }
            }
        }
    }

    /// Every ISA this CPU has against the plain sum, with partial tiles, odd channel and tap
    /// counts, biases, and an output row stride wider than the row.
    #[test]
    fn wide_conv_matches_the_plain_sum() {
        for cpu in Cpu::all() {
            let cases = [
                (3, 5, 6, 7, 3, 1),
                (1, 1, 4, 4, 1, 0),
                (4, 13, 9, 5, 5, 2),
                (2, 6, 3, 3, 3, 0),
                (3, 7, 8, 8, 3, 1),
            ];
            for &(ci, co, h, w, k, pad) in &cases[..if cfg!(miri) { 2 } else { cases.len() }] {
                let Case { wt, bias, xp, offs } = Case::new(ci, co, h, w, k, pad);
                let ho = xp.hp - k + 1;
                let len = ho * xp.wp;
                let ldc = len + 3;
                let mut out = vec![f32::NAN; co * ldc];
                wide_conv_ld(cpu, &wt, &offs, &xp.data, len, &bias, &mut out, ldc);
                for c in 0..co {
                    for q in 0..len {
                        let want = bias[c]
                            + (0..offs.len())
                                .map(|p| wt[c * offs.len() + p] * xp.data[q + offs[p]])
                                .sum::<f32>();
                        let got = out[c * ldc + q];
                        assert!(
                            (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "{:?} ci {ci} co {co} {h}x{w} k {k} at ({c}, {q}): {got} vs {want}",
                            cpu.isa()
                        );
                    }
                    assert!(
                        out[c * ldc + len..(c + 1) * ldc].iter().all(|v| v.is_nan()),
                        "{:?}: wrote past the row",
                        cpu.isa()
                    );
                }
            }
        }
    }
}
