//! Direct convolution with output channels as the vectors and pixels as broadcasts: the
//! transpose of [`crate::direct`]'s tiles, for small maps.
//!
//! Why: [`crate::direct::wide_conv`] runs its vectors along the padded-width rows of an image,
//! so a 7×7 map (ResNet-18's last stage: 56 values a padded image, two strips of 32 on
//! AVX-512) computes 64 lanes for 49 real pixels: a quarter of its multiply-adds on junk
//! columns and rounding. Here a tile is R pixels (any R of them: each has its own base in the
//! padded input, so only real pixels are computed) × NV vectors of output channels, read from
//! weights packed per ISA ([`ChannelWeights`]); per tap it loads NV weight vectors and
//! broadcasts R inputs.
//! The result is written straight into the [Co, pixels] output.

use rayon::prelude::*;

use crate::isa::{Cpu, Kernel};
use crate::packed::MR;
use crate::simd::Simd;

/// Weights w [Co, K] packed for [`channel_conv`] on one ISA: blocks of `step` output channels
/// (the ISA's tile width), each [K, step] and contiguous, zeros past Co. Contiguous because a
/// transpose [K, Co] puts a block's taps Co floats apart: 2 KB on a 512-channel layer, so that
/// a block of taps fell into two L1 sets (AVX2, c512 7×7: 48 against 92 GFLOP/s for
/// [`crate::direct::wide_conv`]).
pub struct ChannelWeights {
    data: Vec<f32>,
    co: usize,
    k: usize,
    step: usize,
}

impl ChannelWeights {
    pub fn new(cpu: Cpu, w: &[f32], co: usize, k: usize) -> Self {
        assert!(w.len() >= co * k, "channel weights: {} values for {co}×{k}", w.len());
        let step = tile_width(cpu);
        let mut data = vec![0.0; co.div_ceil(step) * k * step];
        if k > 0 {
            // A block a task; within it tap by tap, so that the `step` rows of w are read as
            // parallel streams and the block written in order.
            data.par_chunks_mut(k * step).enumerate().for_each(|(b, block)| {
                let rows: Vec<&[f32]> =
                    (b * step..((b + 1) * step).min(co)).map(|c| &w[c * k..(c + 1) * k]).collect();
                for (p, dst) in block.chunks_exact_mut(step).enumerate() {
                    for (d, row) in dst.iter_mut().zip(&rows) {
                        *d = row[p];
                    }
                }
            });
        }
        Self { data, co, k, step }
    }
}

/// Whether [`channel_conv`] beats [`crate::direct::wide_conv`] on an ho × wo output at padded
/// width wp, on `cpu`: where the wide kernel's vectors along the rows would spend more than
/// 15% of their lanes on junk columns and rounding. `kernel_speed`, Zen 4, one core, GFLOP/s
/// channels against wide: AVX-512 c512 7×7 97.8 / 87.1 (useful lanes 77%), c64 8×8 99.0 / 87.0
/// (80%), c32 16×16 95.3 / 106.0 (94%); AVX2 c512 7×7 82.3 / 92.8 (88%), c64 8×8 94.6 / 93.2
/// (89%).
pub fn pays(cpu: Cpu, ho: usize, wo: usize, wp: usize) -> bool {
    let (lanes, nv) = cpu.run(Shape);
    wide_lanes_used(lanes, nv, ho, wo, wp) < 0.85
}

/// The share of the lanes the wide kernel computes that are output pixels: its strips run
/// along ho·wp values, nv·lanes at a time, the last rounded up to whole vectors.
fn wide_lanes_used(lanes: usize, nv: usize, ho: usize, wo: usize, wp: usize) -> f64 {
    let len = ho * wp;
    let step = lanes * nv;
    let computed = len / step * step + (len % step).div_ceil(lanes) * lanes;
    if computed == 0 { 1.0 } else { (ho * wo) as f64 / computed as f64 }
}

/// An ISA's (LANES, NV): its vector width and the vectors a tile row holds.
struct Shape;

impl Kernel for Shape {
    type Output = (usize, usize);

    #[inline(always)]
    fn run<S: Simd>(self, _s: S) -> (usize, usize) {
        (S::LANES, S::NV)
    }
}

/// The tile width in floats on `cpu`: NV vectors.
fn tile_width(cpu: Cpu) -> usize {
    let (lanes, nv) = cpu.run(Shape);
    lanes * nv
}

/// out[c][j] = bias[c] + Σ_p w[c][p]·x[pixels[j] + offs[p]] for every channel c < Co and pixel
/// j, with `w` packed by [`ChannelWeights::new`] for this `cpu`, `out` [Co, ldc] with ldc ≥
/// pixels.len(). With `acc` the result is added to what `out` holds.
#[allow(clippy::too_many_arguments)]
pub fn channel_conv(
    cpu: Cpu,
    w: &ChannelWeights,
    offs: &[usize],
    x: &[f32],
    pixels: &[usize],
    bias: &[f32],
    out: &mut [f32],
    ldc: usize,
    acc: bool,
) {
    let (co, k, n) = (w.co, offs.len(), pixels.len());
    assert!(
        w.k == k && bias.len() == co,
        "channel_conv: weights for {}×{} against {co}×{k}",
        w.co,
        w.k
    );
    assert!(w.step == tile_width(cpu), "channel_conv: weights packed for another ISA");
    assert!(ldc >= n && (co == 0 || out.len() >= (co - 1) * ldc + n), "channel_conv: output");
    let reach = offs.iter().max().copied().unwrap_or(0);
    let last = pixels.iter().max().copied().unwrap_or(0);
    assert!(k == 0 || n == 0 || last + reach < x.len(), "channel_conv: input too short");
    if co == 0 || n == 0 {
        return;
    }
    cpu.run(ChannelConv { wt: &w.data, offs, x, pixels, bias, out, ldc, acc })
}

struct ChannelConv<'a> {
    wt: &'a [f32],
    offs: &'a [usize],
    x: &'a [f32],
    pixels: &'a [usize],
    bias: &'a [f32],
    out: &'a mut [f32],
    ldc: usize,
    acc: bool,
}

impl Kernel for ChannelConv<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let ChannelConv { wt, offs, x, pixels, bias, out, ldc, acc } = self;
        let (co, k, n) = (bias.len(), offs.len(), pixels.len());
        let tiles = n.div_ceil(MR);
        let step = S::NV * S::LANES;
        // Taps per block: the block's weights (16 KB) stay in L1 while every pixel tile runs
        // over them; the tiles' sums wait in `sums` [n, step] between blocks.
        let kb = (4096 / step).max(1);
        // Every tile's bound on the taps it reads, worked out once (not per tile).
        let reach = offs.iter().max().copied().unwrap_or(0);
        let mut sums = vec![0.0f32; n * step];
        assert!(wt.len() >= co.div_ceil(step) * k * step, "channel_conv: packed weights");
        for c0 in (0..co).step_by(step) {
            let width = step.min(co - c0);
            let nv = width.div_ceil(S::LANES);
            sums.fill(0.0);
            for p0 in (0..k).step_by(kb) {
                let p1 = (p0 + kb).min(k);
                let mut j0 = 0;
                for ti in 0..tiles {
                    let rows = n / tiles + usize::from(ti < n % tiles);
                    let args = Tile {
                        wt: &wt[(c0 / step * k + p0) * step..],
                        offs: &offs[p0..p1],
                        reach,
                        x,
                        pixels: &pixels[j0..j0 + rows],
                        sums: &mut sums[j0 * step..(j0 + rows) * step],
                        step,
                    };
                    tiles!(tile, s, nv, rows, args);
                    j0 += rows;
                }
            }
            // The block's transpose: channel c of pixel j goes to out[c·ldc + j].
            for (c, &bc) in bias[c0..c0 + width].iter().enumerate() {
                let dst = &mut out[(c0 + c) * ldc..(c0 + c) * ldc + n];
                for (o, row) in dst.iter_mut().zip(sums.chunks_exact(step)) {
                    *o = if acc { *o + row[c] + bc } else { row[c] + bc };
                }
            }
        }
    }
}

struct Tile<'a> {
    /// From the block's first tap and channel on: rows of `step` floats, one a tap.
    wt: &'a [f32],
    /// The block's taps.
    offs: &'a [usize],
    /// At least the largest of `offs`.
    reach: usize,
    x: &'a [f32],
    /// The tile's R pixels.
    pixels: &'a [usize],
    /// Their running sums, `step` ≥ NV·LANES floats a pixel.
    sums: &'a mut [f32],
    step: usize,
}

/// R pixels × NV vectors of output channels over a block of taps, added to `sums`.
#[inline(always)]
fn tile<S: Simd, const R: usize, const NV: usize>(s: S, t: Tile) {
    let Tile { wt, offs, reach, x, pixels, sums, step } = t;
    let k = offs.len();
    let full = NV * S::LANES;
    assert!(pixels.len() == R && full <= step && sums.len() >= R * step, "channel tile: shape");
    // Every tap's NV weight vectors: row p reads wt[p·step .. p·step + full].
    assert!(k == 0 || (k - 1) * step + full <= wt.len(), "channel tile: weights");
    // `reach` bounds every tap of `offs`: the one caller, `ChannelConv::run`, takes the largest
    // of all the taps once, of which `offs` is a block (as `direct`'s conv tile does).
    assert!(k == 0 || pixels.iter().all(|&q| q + reach < x.len()), "channel tile: input");
    let mut t = [[s.zero(); NV]; R];
    for (r, row) in t.iter_mut().enumerate() {
        for (v, a) in row.iter_mut().enumerate() {
            // SAFETY: r·step + v·LANES + LANES ≤ (R − 1)·step + full ≤ R·step ≤ sums.len()
            // (asserted).
            *a = unsafe { s.load(sums.as_ptr().add(r * step + v * S::LANES)) };
        }
    }
    let mut base = [x.as_ptr(); R];
    for (b, &q) in base.iter_mut().zip(pixels) {
        // SAFETY: q + reach < x.len() (asserted): the pointer is inside x.
        *b = unsafe { x.as_ptr().add(q) };
    }
    let wp = wt.as_ptr();
    for (p, &off) in offs.iter().enumerate() {
        let mut wv = [s.zero(); NV];
        for (v, a) in wv.iter_mut().enumerate() {
            // SAFETY: p·step + v·LANES + LANES ≤ (k − 1)·step + full ≤ wt.len() (asserted).
            *a = unsafe { s.load(wp.add(p * step + v * S::LANES)) };
        }
        for (r, row) in t.iter_mut().enumerate() {
            // SAFETY: pixels[r] + off ≤ pixels[r] + reach < x.len() (off ≤ reach: see above;
            // the sum asserted).
            let xv = s.splat(unsafe { *base[r].add(off) });
            for (v, a) in row.iter_mut().enumerate() {
                *a = s.mul_add(xv, wv[v], *a);
            }
        }
    }
    for (r, row) in t.iter().enumerate() {
        for (v, a) in row.iter().enumerate() {
            // SAFETY: as for the loads above.
            unsafe { s.store(sums.as_mut_ptr().add(r * step + v * S::LANES), *a) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct::{Padded, tap_offsets};

    /// Every ISA, against the plain sum: odd channel counts (a partial last block), pixel
    /// counts that leave short tiles, a 7×7 map with its real pixels only, and `acc`.
    #[test]
    fn channel_conv_matches_the_plain_sum() {
        for cpu in Cpu::all() {
            // Under Miri (the plain path, ~10⁶ times slower) the two small cases only.
            let cases: &[_] = if cfg!(miri) {
                &[(3, 5, 7, 7), (1, 1, 1, 1)]
            } else {
                &[(3, 5, 7, 7), (16, 33, 8, 8), (8, 70, 5, 9), (1, 1, 1, 1)]
            };
            for &(ci, co, h, w) in cases {
                let (k, pad) = (3, 1);
                let x: Vec<f32> = (0..ci * h * w).map(|i| (i as f32 * 0.37).sin()).collect();
                let wgt: Vec<f32> = (0..co * ci * k * k).map(|i| (i as f32 * 0.11).cos()).collect();
                let bias: Vec<f32> = (0..co).map(|i| i as f32 * 0.1).collect();
                let mut xp = Padded::new(ci, h, w, pad, pad);
                xp.fill(&x, ci, h, w, pad, pad);
                let offs = tap_offsets(ci, k, k, xp.hp, xp.wp);
                let pixels: Vec<usize> = (0..h)
                    .flat_map(|y| (0..w).map(move |x| (y, x)))
                    .map(|(y, x)| y * xp.wp + x)
                    .collect();
                let wt = ChannelWeights::new(cpu, &wgt, co, ci * k * k);
                let n = pixels.len();
                let ldc = n + 3;
                // NaN where no pixel goes: the kernel must not write there.
                let mut out = vec![f32::NAN; co * ldc];
                channel_conv(cpu, &wt, &offs, &xp.data, &pixels, &bias, &mut out, ldc, false);
                let mut twice = out.clone();
                channel_conv(cpu, &wt, &offs, &xp.data, &pixels, &bias, &mut twice, ldc, true);
                for c in 0..co {
                    for (j, &q) in pixels.iter().enumerate() {
                        let want: f32 = bias[c]
                            + (0..offs.len())
                                .map(|p| wgt[c * offs.len() + p] * xp.data[q + offs[p]])
                                .sum::<f32>();
                        let got = out[c * ldc + j];
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{cpu:?} {ci}x{co} {h}x{w}: {got} vs {want}"
                        );
                        let got2 = twice[c * ldc + j];
                        assert!(
                            (got2 - 2.0 * want).abs() < 2e-4,
                            "{cpu:?} acc: {got2} vs {}",
                            2.0 * want
                        );
                    }
                    assert!(
                        out[c * ldc + n..(c + 1) * ldc].iter().all(|v| v.is_nan()),
                        "{cpu:?}: wrote past the pixels"
                    );
                }
            }
        }
    }

    #[test]
    fn the_wide_kernels_useful_lanes() {
        // AVX-512 (16 lanes × 2) on 7×7 at width 8: strips of 32 and 24 → 32 + 32 = 64 lanes.
        assert_eq!(wide_lanes_used(16, 2, 7, 7, 8), 49.0 / 64.0);
        // AVX2 (8 × 2): 56 lanes exactly.
        assert_eq!(wide_lanes_used(8, 2, 7, 7, 8), 49.0 / 56.0);
        // AVX-512 on 8×8 at width 9: 72 values → 32 + 32 + 16.
        assert_eq!(wide_lanes_used(16, 2, 8, 8, 9), 64.0 / 80.0);
        // 16×16 at width 17: 272 = 8·32 + 16.
        assert_eq!(wide_lanes_used(16, 2, 16, 16, 17), 256.0 / 272.0);
        assert_eq!(wide_lanes_used(16, 2, 0, 0, 1), 1.0);
    }

    #[test]
    fn weights_are_packed_in_blocks_of_the_tile_width() {
        let cpu = Cpu::current();
        let step = tile_width(cpu);
        let (co, k) = (step + 3, 2);
        let w: Vec<f32> = (0..co * k).map(|i| i as f32).collect();
        let p = ChannelWeights::new(cpu, &w, co, k);
        assert_eq!(p.data.len(), 2 * k * step);
        // Block 0, tap 1: channels 0..step; block 1, tap 0: channels step.., zeros after.
        assert_eq!(p.data[step + 2], w[2 * k + 1]);
        assert_eq!(p.data[k * step + 1], w[(step + 1) * k]);
        assert!(p.data[k * step + 3..(k + 1) * step].iter().all(|&v| v == 0.0));
    }

    #[test]
    #[should_panic(expected = "packed for another ISA")]
    fn weights_packed_for_another_isa_are_refused() {
        let all = Cpu::all();
        let (wide, plain) = (all[0], all[all.len() - 1]);
        // Only where the CPU has a vector ISA do two tile widths differ; elsewhere the one
        // assert left is the same message, raised by hand.
        let w = ChannelWeights::new(wide, &[1.0], 1, 1);
        if tile_width(wide) == tile_width(plain) {
            panic!("packed for another ISA (one ISA here)");
        }
        channel_conv(plain, &w, &[0], &[1.0; 4], &[0], &[0.0], &mut [0.0], 1, false);
    }

    #[test]
    #[should_panic(expected = "channel_conv: input too short")]
    fn a_pixel_past_the_input_is_refused() {
        let wt = ChannelWeights::new(Cpu::current(), &[1.0], 1, 1);
        let mut out = [0.0];
        channel_conv(Cpu::current(), &wt, &[0], &[1.0; 4], &[4], &[0.0], &mut out, 1, false);
    }
}
