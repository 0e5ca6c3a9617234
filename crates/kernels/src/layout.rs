//! Where one image's input sits for the direct convolution kernels ([`crate::direct`]): a
//! zero-padded buffer, the offset of every kernel tap in it, and the stride of the output's
//! rows. Stride-1 layers pad the image ([`Padding`]); strided layers split it into its
//! stride × stride phases ([`Phases`]), which turns them into stride-1 convolutions too.
//!
//! Why phases: a stride-2 convolution through im2col copies Ci·kh·kw values per output pixel
//! (49·3 for ResNet-18's stem) and then runs `gemm` on them; at 224 px the stem, the stride-2
//! 3×3 layers and the 1×1 shortcuts took a quarter of ResNet-18's inference at half the direct
//! kernel's speed. Output pixel (oy, ox) of a stride-s layer reads input (s·oy + ky − ph,
//! s·ox + kx − pw); writing ky − ph = s·δ + a (0 ≤ a < s), that is row oy + δ of the input's
//! phase a (its rows a, a + s, a + 2s, …). So with each phase plane copied once, every tap is a
//! fixed offset from the output pixel, as in a stride-1 layer: the input is copied once
//! instead of kh·kw times, and the multiply-adds run in the direct kernel's register tiles.

use crate::conv::ConvDims;
use crate::direct::SLACK;

/// One image's input laid out for [`crate::direct::wide_conv`] and
/// [`crate::direct::wide_weight_grad`]: output pixel q of a row `wp()` wide reads
/// `buf[q + offsets()[p]]` for tap p.
pub(crate) trait Layout: Sync {
    /// Floats in the buffer (the taps' reach and the kernels' [`SLACK`] included).
    fn size(&self) -> usize;
    /// Distance between output rows in the wide result (output width plus junk columns).
    fn wp(&self) -> usize;
    /// Every tap's offset, in the weight's column order (ci, ky, kx).
    fn offsets(&self) -> Vec<usize>;
    /// Copies one image `x` into `buf` (of [`Layout::size`] floats, zero where it was made:
    /// every fill writes the same positions, so the padding stays zero).
    fn fill(&self, x: &[f32], buf: &mut [f32]);
}

/// Stride 1: the image zero-padded, [Ci, H + 2·ph, W + pw] (a row's left padding is the
/// previous row's right padding), starting at element pw.
pub(crate) struct Padding {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    ph: usize,
    pw: usize,
}

impl Padding {
    pub(crate) fn new(
        (c, h, w): (usize, usize, usize),
        (kh, kw): (usize, usize),
        [ph, pw]: [usize; 2],
    ) -> Self {
        Self { c, h, w, kh, kw, ph, pw }
    }

    fn hp(&self) -> usize {
        self.h + 2 * self.ph
    }
}

impl Layout for Padding {
    fn size(&self) -> usize {
        self.c * self.hp() * self.wp() + self.wp() + SLACK
    }

    fn wp(&self) -> usize {
        self.w + self.pw
    }

    fn offsets(&self) -> Vec<usize> {
        crate::direct::tap_offsets(self.c, self.kh, self.kw, self.hp(), self.wp())
    }

    fn fill(&self, x: &[f32], buf: &mut [f32]) {
        crate::direct::fill_padded(
            buf,
            self.hp(),
            self.wp(),
            x,
            self.c,
            self.h,
            self.w,
            self.ph,
            self.pw,
        );
    }
}

/// One axis of a strided layer's phase split: kernel index k reads row `shift[k]` (below the
/// output row, padding rows included) of phase `phase[k]` (an index into `used`).
#[derive(Debug)]
struct Axis {
    stride: usize,
    /// Input length along the axis.
    len: usize,
    /// Zero rows above phase row 0.
    lo: usize,
    /// Rows per phase plane (padding included).
    rows: usize,
    /// The phases some tap reads (a in 0..stride), ascending.
    used: Vec<usize>,
    phase: Vec<usize>,
    shift: Vec<usize>,
}

impl Axis {
    fn new(k: usize, pad: usize, stride: usize, out: usize, len: usize) -> Self {
        let s = stride as isize;
        let t = |k: usize| k as isize - pad as isize;
        let lo_shift = t(0).div_euclid(s);
        let hi_shift = t(k - 1).div_euclid(s);
        let mut used: Vec<usize> = (0..k).map(|k| t(k).rem_euclid(s) as usize).collect();
        used.sort_unstable();
        used.dedup();
        let phase = (0..k)
            .map(|k| used.iter().position(|&a| a == t(k).rem_euclid(s) as usize).unwrap_or(0))
            .collect();
        let shift = (0..k).map(|k| (t(k).div_euclid(s) - lo_shift) as usize).collect();
        // t(0) = −pad ≤ 0, so the lowest shift is ≤ 0: `lo` rows of zeros above the image.
        let lo = (-lo_shift) as usize;
        Self { stride, len, lo, rows: out + (hi_shift - lo_shift) as usize, used, phase, shift }
    }

    /// Plane rows `lo..hi` (of `rows`) that hold input rows of phase `a`: row r holds input
    /// row stride·(r − lo) + a.
    fn valid(&self, a: usize) -> (usize, usize) {
        let first = self.lo.min(self.rows);
        let count = if a < self.len { (self.len - a).div_ceil(self.stride) } else { 0 };
        (first, (self.lo + count).min(self.rows))
    }
}

/// A strided layer's input as its phases: [Ci, phase rows, phase columns] planes of
/// `rows × cols` (only the phases some tap reads), output rows `cols` wide.
#[derive(Debug)]
pub(crate) struct Phases {
    c: usize,
    y: Axis,
    x: Axis,
}

impl Phases {
    pub(crate) fn new(d: &ConvDims) -> Self {
        let (ho, wo) = d.out_hw();
        Self {
            c: d.ci,
            y: Axis::new(d.kh, d.padding[0], d.stride[0], ho, d.h),
            x: Axis::new(d.kw, d.padding[1], d.stride[1], wo, d.w),
        }
    }

    fn plane(&self) -> usize {
        self.y.rows * self.x.rows
    }

    fn planes(&self) -> usize {
        self.c * self.y.used.len() * self.x.used.len()
    }
}

impl Layout for Phases {
    fn size(&self) -> usize {
        self.planes() * self.plane() + self.x.rows + SLACK
    }

    fn wp(&self) -> usize {
        self.x.rows
    }

    fn offsets(&self) -> Vec<usize> {
        let (ny, nx) = (self.y.used.len(), self.x.used.len());
        let mut offs = Vec::with_capacity(self.c * self.y.phase.len() * self.x.phase.len());
        for c in 0..self.c {
            for (&py, &sy) in self.y.phase.iter().zip(&self.y.shift) {
                for (&px, &sx) in self.x.phase.iter().zip(&self.x.shift) {
                    let plane = (c * ny + py) * nx + px;
                    offs.push(plane * self.plane() + sy * self.x.rows + sx);
                }
            }
        }
        offs
    }

    fn fill(&self, x: &[f32], buf: &mut [f32]) {
        let (h, w) = (self.y.len, self.x.len);
        assert!(x.len() >= self.c * h * w && buf.len() >= self.size(), "Phases::fill: sizes");
        let (sy, sx) = (self.y.stride, self.x.stride);
        let mut plane = 0;
        for c in 0..self.c {
            let img = &x[c * h * w..(c + 1) * h * w];
            for &a in &self.y.used {
                let (r0, r1) = self.y.valid(a);
                for &b in &self.x.used {
                    let (q0, q1) = self.x.valid(b);
                    let dst = &mut buf[plane * self.plane()..(plane + 1) * self.plane()];
                    for r in r0..r1 {
                        let src =
                            &img[(sy * (r - self.y.lo) + a) * w + b..][..(q1 - q0 - 1) * sx + 1];
                        let row = &mut dst[r * self.x.rows + q0..r * self.x.rows + q1];
                        if sx == 2 {
                            // The common case as pairs, which LLVM turns into shuffles.
                            let (pairs, last) = src.as_chunks::<2>();
                            for (v, p) in row.iter_mut().zip(pairs) {
                                *v = p[0];
                            }
                            if let [l] = last {
                                row[row.len() - 1] = *l;
                            }
                        } else {
                            for (v, &s) in row.iter_mut().zip(src.iter().step_by(sx)) {
                                *v = s;
                            }
                        }
                    }
                    plane += 1;
                }
            }
        }
    }
}

/// The input gradient of a strided layer, one phase (a, b) of dx at a time: dx's rows
/// a, a + s, … are a stride-1 convolution of the padded output gradient by the taps of phase a,
/// dx_a[r] = Σ_k w[k]·dy[r − δ_k]. The padded dy is [Co, rows, cols]: dy [Co, Ho, Wo] with
/// `top` zero rows above and `left` zero columns before every row (and zeros below and after it).
pub(crate) struct PhaseGrad {
    co: usize,
    ho: usize,
    wo: usize,
    top: usize,
    left: usize,
    rows: usize,
    cols: usize,
    y: Axis,
    x: Axis,
}

/// One phase of dx: its rows × columns, the taps (ky, kx) it takes and their offsets in the
/// padded dy (one per (co, ky, kx), in that order).
pub(crate) struct GradPhase {
    pub a: usize,
    pub b: usize,
    pub rows: usize,
    pub cols: usize,
    pub taps: Vec<(usize, usize)>,
    pub offsets: Vec<usize>,
}

impl PhaseGrad {
    pub(crate) fn new(d: &ConvDims) -> Self {
        let (ho, wo) = d.out_hw();
        let y = Axis::new(d.kh, d.padding[0], d.stride[0], ho, d.h);
        let x = Axis::new(d.kw, d.padding[1], d.stride[1], wo, d.w);
        // Shifts relative to the output row: δ_k = shift[k] − lo. dy row r − δ_k must be in the
        // buffer for every dx row r < ⌈len/s⌉: `top` ≥ max δ rows above, and rows below up to
        // ⌈len/s⌉ − 1 − min δ.
        let span = |a: &Axis, out: usize| {
            let max_d = a.shift.iter().max().map_or(0, |&s| s as isize - a.lo as isize);
            let top = max_d.max(0) as usize;
            let below = (a.len.div_ceil(a.stride) + a.lo).max(out);
            (top, top + below)
        };
        let (top, rows) = span(&y, ho);
        let (left, cols) = span(&x, wo);
        Self { co: d.co, ho, wo, top, left, rows, cols, y, x }
    }

    /// dx's phases (a, b) with at least one row and column, with their taps.
    pub(crate) fn phases(&self) -> Vec<GradPhase> {
        let mut out = Vec::new();
        for a in 0..self.y.stride {
            for b in 0..self.x.stride {
                let rows =
                    if a < self.y.len { (self.y.len - a).div_ceil(self.y.stride) } else { 0 };
                let cols =
                    if b < self.x.len { (self.x.len - b).div_ceil(self.x.stride) } else { 0 };
                if rows == 0 || cols == 0 {
                    continue;
                }
                let of = |axis: &Axis, a: usize| -> Vec<(usize, usize)> {
                    (0..axis.phase.len())
                        .filter(|&k| axis.used[axis.phase[k]] == a)
                        .map(|k| (k, axis.shift[k]))
                        .collect()
                };
                let (ty, tx) = (of(&self.y, a), of(&self.x, b));
                let taps: Vec<(usize, usize)> = ty
                    .iter()
                    .flat_map(|&(ky, _)| tx.iter().map(move |&(kx, _)| (ky, kx)))
                    .collect();
                // dy row r − δ sits at buffer row r − δ + top, δ = shift − lo: per tap a fixed
                // offset within each output-gradient channel.
                let within: Vec<usize> = ty
                    .iter()
                    .flat_map(|&(_, sy)| {
                        tx.iter().map(move |&(_, sx)| {
                            (self.top + self.y.lo - sy) * self.cols + self.left + self.x.lo - sx
                        })
                    })
                    .collect();
                let offsets = (0..self.co)
                    .flat_map(|co| within.iter().map(move |o| co * self.rows * self.cols + o))
                    .collect();
                out.push(GradPhase { a, b, rows, cols, taps, offsets });
            }
        }
        out
    }

    pub(crate) fn size(&self) -> usize {
        self.co * self.rows * self.cols + self.cols + SLACK
    }

    /// Row stride of the padded dy and of every phase's wide result.
    pub(crate) fn wp(&self) -> usize {
        self.cols
    }

    /// Copies one image's dy [Co, Ho, Wo] into `buf` (zero where it was made).
    pub(crate) fn fill(&self, dy: &[f32], buf: &mut [f32]) {
        let (ho, wo) = (self.ho, self.wo);
        assert!(
            dy.len() >= self.co * ho * wo && buf.len() >= self.size(),
            "PhaseGrad::fill: sizes"
        );
        for c in 0..self.co {
            for oy in 0..ho {
                let at = (c * self.rows + oy + self.top) * self.cols + self.left;
                buf[at..at + wo].copy_from_slice(&dy[(c * ho + oy) * wo..][..wo]);
            }
        }
    }
}
