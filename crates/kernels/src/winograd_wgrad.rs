//! The weight gradient of a 3×3, stride-1, padding-1 convolution by F(2×2, 3×3): dW = Gᵀ P G
//! with P[ξ][co][ci] = Σ_tiles Z[ξ][co][t]·V[ξ][ci][t], V = Bᵀ d B the transformed 4×4 patches
//! of x, Z = A dY Aᵀ the transformed 2×2 blocks of dy (the adjoint of the forward formula; 16
//! multiply-adds a 2×2 block instead of 36).
//!
//! Two arrangements, both running the products by the inference linear layer's register tiles
//! ([`crate::linear::Panels`]) on operands the transforms lay out for them (V in strips of
//! input channels as wide as the tile, Z in panels of [`MR`] output channels), each
//! transform writing a whole strip or panel (a cache line or two) at a time:
//! - **groups of whole images** (128+ channels on maps up to 28×28: ResNet-18's last three
//!   stages): a group is transformed in parallel over (ξ row, strip or panel), then one shared
//!   P is accumulated in parallel over (ξ, rows of output channels), each task owning its rows,
//!   over every tile of the group in passes of [`KC`]. No per-thread P (16.8 MB with 512
//!   channels), no reduction, and the sums do not depend on rayon's scheduling.
//! - **one P a part of the images** (maps of 28×28 and more, e.g. 64 channels on 56×56): each
//!   thread transforms and multiplies blocks of [`BLOCK_TILES`] tiles of its images into its
//!   own P (256 KB with 64 channels), the parts summed in order afterwards; a group of whole
//!   images (6.5 MB an image there) would not stay in cache.
//!
//! The direct weight gradient ([`crate::direct`]) ran these layers at 50–60% of the FMA peak,
//! the 7×7 stage at ~57%; an earlier F(2×2) arrangement with blocks of 32 tiles (scattered
//! writes in the transforms) at 1.0–1.15× it.

use rayon::prelude::*;

use std::ops::Range;

use crate::conv::{ConvDims, chunk};
use crate::isa::{Cpu, Kernel};
use crate::linear::{BLOCK, Panels};
use crate::packed::MR;
use crate::simd::Simd;

/// Floats of transformed x and dy per group of images (8 MB), or P's 16·Ci·Co if more: a
/// group is read back from L3 by the products, and each group reads and writes P once per
/// pass. Groups of 16 of ResNet-18's 7×7 images with 512 channels (P 16.8 MB), 5 of 14×14 with
/// 256, 2 of 28×28 with 128. Measured on a Zen 4 (AVX2, batch 32, ms): on the 7×7
/// layer 50 / 42 / 37 / 36 with budgets of 4, 8, 16, 32 MB; on the 14×14 one 28 / 26 / 27 /
/// 28; on the 28×28 one 32 / 30 / 32 / 34.
const GROUP_FLOATS: usize = 2 << 20;

/// Tiles per pass of the products: each task's rows of P are read and written once per pass
/// (256: a strip of V, [256, 16] on AVX2, is 16 KB; on AVX-512 [256, 32], 32 KB, still
/// measured at or ahead of 128 and 512).
const KC: usize = 256;

/// Output channels (rows of P) per product task in groups: 16 row panels.
const ROWS: usize = 16 * MR;

/// Tiles per block of one image in [`weight_grad_parts`] (whole tile rows): 4 rows of 28 on
/// a 56×56 map. Measured on a Zen 4 (AVX2, batch 32, 64 channels, 56×56): blocks of 1, 2, 4
/// and 8 tile rows 39, 35, 33, 32 ms.
const BLOCK_TILES: usize = 112;

/// Whether the backward pass takes [`weight_grad`]: [`applies`], 64 channels or more in and
/// out, and either 128 or more on maps up to 28×28 (groups of whole images) or maps of 28×28
/// and more (one P a part of the images, blocks of tile rows). Measured on a Zen 4 (batch 32,
/// both cores, ms, AVX2 | AVX-512, against the weight gradient before: the direct one, or on
/// AVX2 an F(2×2, 3×3) one with P a part and blocks of 32 tiles): ResNet-18's 7×7 × 512 layer
/// 54 → 36 | 48 → 36, 14×14 × 256 42 → 26 | 38 → 27, 28×28 × 128 34 → 30 | 35 → 30, 56×56 ×
/// 64 39 → 33 | 36 → 32; maps of 1×1 to 8×8 with 128–512 channels 1.2–2×. Left to the
/// direct weight gradient: 64 channels on smaller maps (ResNet-20's 8×8 layer, batch 128:
/// 0.95–0.97×; 16×16: 0.99–1.08×).
pub fn takes(d: &ConvDims) -> bool {
    applies(d) && d.ci >= 64 && d.co >= 64 && (in_groups(d) || tiles(d) >= 196)
}

/// 2×2 tiles of an image.
fn tiles(d: &ConvDims) -> usize {
    d.h.div_ceil(2) * d.w.div_ceil(2)
}

/// Whether [`weight_grad`] runs in groups of whole images: 128 channels or more in and out,
/// maps up to 28×28 (past that a group's transformed operands spill from cache: 128 channels
/// on 56×56 measured 109 ms in groups, 100 in parts).
fn in_groups(d: &ConvDims) -> bool {
    d.ci >= 128 && d.co >= 128 && tiles(d) <= 196
}

/// Whether [`weight_grad`] takes this layer's weight gradient: 3×3, stride 1, padding 1, input
/// channels a multiple of [`BLOCK`] (the strips of V are the register tile's width).
pub fn applies(d: &ConvDims) -> bool {
    d.kh == 3
        && d.kw == 3
        && d.stride == [1, 1]
        && d.padding == [1, 1]
        && d.ci.is_multiple_of(BLOCK)
        && d.ci > 0
        && d.co > 0
}

/// The register tile's width in columns on an ISA (the strips' width).
struct TileWidth;

impl Kernel for TileWidth {
    type Output = usize;

    fn run<S: Simd>(self, _: S) -> usize {
        S::NV * S::LANES
    }
}

/// The shapes of one call: tiles per image, the strip width, the row panels of dy.
#[derive(Clone, Copy)]
struct Shape {
    ci: usize,
    co: usize,
    h: usize,
    w: usize,
    th: usize,
    tw: usize,
    step: usize,
    strips: usize,
    panels: usize,
}

impl Shape {
    fn new(d: &ConvDims, step: usize) -> Self {
        let (th, tw) = (d.h.div_ceil(2), d.w.div_ceil(2));
        Shape {
            ci: d.ci,
            co: d.co,
            h: d.h,
            w: d.w,
            th,
            tw,
            step,
            strips: d.ci / step,
            panels: d.co.div_ceil(MR),
        }
    }

    fn tiles(&self) -> usize {
        self.th * self.tw
    }
}

/// (dW [Co, Ci, 3, 3], dbias) from x [N, Ci, H, W] and dy [N, Co, H, W].
pub fn weight_grad(cpu: Cpu, d: &ConvDims, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    if in_groups(d) {
        return weight_grad_in(cpu, d, x, dy, GROUP_FLOATS.max(16 * d.ci * d.co), KC);
    }
    assert!(applies(d), "winograd weight gradient: not a layer it takes: {d:?}");
    assert!(
        x.len() == d.n * d.ci * d.h * d.w && dy.len() == d.n * d.co * d.h * d.w,
        "winograd weight gradient: operand sizes"
    );
    let sh = Shape::new(d, cpu.run(TileWidth));
    let p = weight_grad_parts(cpu, &sh, d, x, dy, BLOCK_TILES / sh.tw);
    (output(&sh, &p), bias_grad(d, dy))
}

/// [`weight_grad`] with the group budget (floats) and, for tests, the pass length given.
fn weight_grad_in(
    cpu: Cpu,
    d: &ConvDims,
    x: &[f32],
    dy: &[f32],
    group_floats: usize,
    kc: usize,
) -> (Vec<f32>, Vec<f32>) {
    assert!(applies(d), "winograd weight gradient: not a layer it takes: {d:?}");
    let sh = Shape::new(d, cpu.run(TileWidth));
    let (ci, co, hw) = (d.ci, d.co, d.h * d.w);
    assert!(
        x.len() == d.n * ci * hw && dy.len() == d.n * co * hw,
        "winograd weight gradient: operand sizes"
    );
    let kc = kc.max(1);
    let per_image = 16 * (ci + sh.panels * MR) * sh.tiles();
    let group = (group_floats / per_image).clamp(1, d.n.max(1));
    let mut v = vec![0.0; 16 * ci * group * sh.tiles()];
    let mut z = vec![0.0; 16 * sh.panels * MR * group * sh.tiles()];
    let mut p = vec![0.0; 16 * co * ci];
    for g0 in (0..d.n).step_by(group) {
        let span = Span { images: group.min(d.n - g0), rows: 0..sh.th };
        let t = span.tiles(&sh);
        let (v, z) = (&mut v[..16 * ci * t], &mut z[..16 * sh.panels * MR * t]);
        let xs = &x[g0 * ci * hw..(g0 + span.images) * ci * hw];
        let dys = &dy[g0 * co * hw..(g0 + span.images) * co * hw];
        transform_x(&sh, xs, &span, v);
        transform_dy(&sh, dys, &span, z);
        products(cpu, &sh, t, kc, v, z, &mut p);
    }
    (output(&sh, &p), bias_grad(d, dy))
}

/// The tiles a transform covers: tile rows `rows` of each of `images` images, image after
/// image, tile row after tile row (T = images · |rows| · tw).
#[derive(Clone)]
struct Span {
    images: usize,
    rows: Range<usize>,
}

impl Span {
    fn tiles(&self, sh: &Shape) -> usize {
        self.images * self.rows.len() * sh.tw
    }

    /// The first tile of image `img`'s tile row `i`.
    fn at(&self, sh: &Shape, img: usize, i: usize) -> usize {
        (img * self.rows.len() + i - self.rows.start) * sh.tw
    }
}

/// V for a span: [4 (a)][strip][4 (b)][T][step], ξ = 4a + b; one task per (a, strip), each
/// writing its own contiguous chunk ([`x_chunk`]).
fn transform_x(sh: &Shape, x: &[f32], span: &Span, v: &mut [f32]) {
    let t = span.tiles(sh);
    let zero = vec![0.0; sh.w];
    v.par_chunks_mut(4 * t * sh.step).enumerate().for_each_init(
        || vec![0.0; (2 * sh.tw + 2) * sh.step],
        |vert, (task, out)| {
            x_chunk(sh, x, span, task / sh.strips, task % sh.strips, (vert, &zero), out)
        },
    );
}

/// Chunk (a, strip) of V: per tile row, the strip's channels go through the vertical
/// combination `a` into `vert` ([column][channel], columns 0 and past w zero: the padding),
/// then each tile's 4 horizontal combinations are written a whole strip (one cache line or
/// two) at a time. `x` holds the span's images from its first.
fn x_chunk(
    sh: &Shape,
    x: &[f32],
    span: &Span,
    a: usize,
    strip: usize,
    (vert, zero): (&mut [f32], &[f32]),
    out: &mut [f32],
) {
    let (step, tw, t, w) = (sh.step, sh.tw, span.tiles(sh), sh.w);
    for img in 0..span.images {
        let planes = &x[(img * sh.ci + strip * step) * sh.h * w..][..step * sh.h * w];
        for i in span.rows.clone() {
            for (cc, plane) in planes.chunks_exact(sh.h * w).enumerate() {
                // Padded rows 2i … 2i + 3 are the image's 2i − 1 … 2i + 2.
                let row = |k: usize| match (2 * i + k).checked_sub(1) {
                    Some(r) if r < sh.h => &plane[r * w..][..w],
                    _ => &zero[..w],
                };
                let (p0, p1, p2, p3) = (row(0), row(1), row(2), row(3));
                // Bᵀ down the columns: rows d0 − d2, d1 + d2, d2 − d1, d1 − d3.
                for k in 0..w {
                    vert[(k + 1) * step + cc] = match a {
                        0 => p0[k] - p2[k],
                        1 => p1[k] + p2[k],
                        2 => p2[k] - p1[k],
                        _ => p1[k] - p3[k],
                    };
                }
            }
            // … and along the row: tile j's columns are 2j … 2j + 3.
            let t0 = span.at(sh, img, i);
            for j in 0..tw {
                let q: [&[f32]; 4] = std::array::from_fn(|k| &vert[(2 * j + k) * step..][..step]);
                let [o0, o1, o2, o3]: [&mut [f32]; 4] = split4(out, t, t0 + j, step);
                for cc in 0..step {
                    o0[cc] = q[0][cc] - q[2][cc];
                    o1[cc] = q[1][cc] + q[2][cc];
                    o2[cc] = q[2][cc] - q[1][cc];
                    o3[cc] = q[1][cc] - q[3][cc];
                }
            }
        }
    }
}

/// The 4 rows of `width` floats at tile `tile` of the planes b = 0‥3 ([4][t][width]).
#[inline]
fn split4(out: &mut [f32], t: usize, tile: usize, width: usize) -> [&mut [f32]; 4] {
    let (b0, rest) = out.split_at_mut(t * width);
    let (b1, rest) = rest.split_at_mut(t * width);
    let (b2, b3) = rest.split_at_mut(t * width);
    let at = tile * width;
    [
        &mut b0[at..at + width],
        &mut b1[at..at + width],
        &mut b2[at..at + width],
        &mut b3[at..][..width],
    ]
}

/// Z for a span: [4 (a)][panel][4 (b)][T][MR]; one task per (a, panel of MR output channels)
/// ([`dy_chunk`]).
fn transform_dy(sh: &Shape, dy: &[f32], span: &Span, z: &mut [f32]) {
    let t = span.tiles(sh);
    let zero = vec![0.0; sh.w];
    z.par_chunks_mut(4 * t * MR).enumerate().for_each_init(
        || vec![0.0; 2 * sh.tw * MR],
        |vert, (task, out)| {
            dy_chunk(sh, dy, span, task / sh.panels, task % sh.panels, (vert, &zero), out)
        },
    );
}

/// Chunk (a, panel) of Z, as [`x_chunk`] a panel's channels at a time (`vert`'s columns past w
/// stay zero: dy padded to an even width; channels past Co are never written, so stay zero).
fn dy_chunk(
    sh: &Shape,
    dy: &[f32],
    span: &Span,
    a: usize,
    panel: usize,
    (vert, zero): (&mut [f32], &[f32]),
    out: &mut [f32],
) {
    let (tw, t, w) = (sh.tw, span.tiles(sh), sh.w);
    let rows = MR.min(sh.co - panel * MR);
    for img in 0..span.images {
        let planes = &dy[(img * sh.co + panel * MR) * sh.h * w..][..rows * sh.h * w];
        for i in span.rows.clone() {
            for (r, plane) in planes.chunks_exact(sh.h * w).enumerate() {
                let row = |k: usize| match 2 * i + k {
                    y if y < sh.h => &plane[y * w..][..w],
                    _ => &zero[..w],
                };
                let (d0, d1) = (row(0), row(1));
                // A down the columns: d0, d0 + d1, d0 − d1, −d1.
                for k in 0..w {
                    vert[k * MR + r] = match a {
                        0 => d0[k],
                        1 => d0[k] + d1[k],
                        2 => d0[k] - d1[k],
                        _ => -d1[k],
                    };
                }
            }
            let t0 = span.at(sh, img, i);
            for j in 0..tw {
                let (e, o) = (&vert[2 * j * MR..][..MR], &vert[(2 * j + 1) * MR..][..MR]);
                let [o0, o1, o2, o3]: [&mut [f32]; 4] = split4(out, t, t0 + j, MR);
                for r in 0..MR {
                    o0[r] = e[r];
                    o1[r] = e[r] + o[r];
                    o2[r] = e[r] - o[r];
                    o3[r] = -o[r];
                }
            }
        }
    }
}

/// P[ξ][co][ci] += Σ_t Z[ξ][co][t]·V[ξ][ci][t] over the span's `t` tiles: one task per
/// (ξ, [`ROWS`] output channels) ([`product_rows`]).
fn products(cpu: Cpu, sh: &Shape, t: usize, kc: usize, v: &[f32], z: &[f32], p: &mut [f32]) {
    let (ci, co) = (sh.ci, sh.co);
    p.par_chunks_mut(co * ci).enumerate().for_each(|(xi, pxi)| {
        pxi.par_chunks_mut(ROWS * ci).enumerate().for_each(|(rg, rows)| {
            product_rows(cpu, sh, (t, kc), xi, (v, z), rows, rg * ROWS / MR);
        });
    });
}

/// Rows of P[ξ] from row panel `first` on (`rows`, whole rows), in passes of `kc` tiles; per
/// pass, each strip of V stays in L1 while the row panels of Z run over it.
fn product_rows(
    cpu: Cpu,
    sh: &Shape,
    (t, kc): (usize, usize),
    xi: usize,
    (v, z): (&[f32], &[f32]),
    rows: &mut [f32],
    first: usize,
) {
    let (ci, co, step) = (sh.ci, sh.co, sh.step);
    let (a, b) = (xi / 4, xi % 4);
    let count = (rows.len() / ci).div_ceil(MR);
    for k0 in (0..t).step_by(kc) {
        let k = kc.min(t - k0);
        for s in 0..sh.strips {
            let strip = &v[((a * sh.strips + s) * 4 + b) * t * step..][k0 * step..][..k * step];
            for pn in first..first + count {
                let panel = &z[((a * sh.panels + pn) * 4 + b) * t * MR..][k0 * MR..][..k * MR];
                let r0 = (pn - first) * MR;
                cpu.run(Panels {
                    a: panel,
                    b: strip,
                    kc: k,
                    width: step,
                    rows: MR.min(co - pn * MR),
                    c: &mut rows[r0 * ci + s * step..],
                    ldc: ci,
                    acc: true,
                });
            }
        }
    }
}

/// The weight gradient with one P a part of the images (P summed over the parts in order
/// afterwards), each image's tiles in blocks of `block_rows` tile rows transformed and
/// multiplied by one thread: for maps with many tiles and few channels (P 256 KB with 64
/// channels, a block's operands in L2), where a group of whole images would not stay in cache.
fn weight_grad_parts(
    cpu: Cpu,
    sh: &Shape,
    d: &ConvDims,
    x: &[f32],
    dy: &[f32],
    block_rows: usize,
) -> Vec<f32> {
    let (ci, co, hw) = (sh.ci, sh.co, sh.h * sh.w);
    let block_rows = block_rows.clamp(1, sh.th);
    let tmax = block_rows * sh.tw;
    let per = chunk(d.n);
    let parts: Vec<Vec<f32>> = (0..d.n.div_ceil(per))
        .into_par_iter()
        .map(|part| {
            let mut p = vec![0.0; 16 * co * ci];
            let mut v = vec![0.0; 16 * ci * tmax];
            let mut z = vec![0.0; 16 * sh.panels * MR * tmax];
            let mut xvert = vec![0.0; (2 * sh.tw + 2) * sh.step];
            let mut dvert = vec![0.0; 2 * sh.tw * MR];
            let zero = vec![0.0; sh.w];
            for img in part * per..((part + 1) * per).min(d.n) {
                let xi = &x[img * ci * hw..][..ci * hw];
                let dyi = &dy[img * co * hw..][..co * hw];
                for i0 in (0..sh.th).step_by(block_rows) {
                    let span = Span { images: 1, rows: i0..(i0 + block_rows).min(sh.th) };
                    let t = span.tiles(sh);
                    let (v, z) = (&mut v[..16 * ci * t], &mut z[..16 * sh.panels * MR * t]);
                    for (task, out) in v.chunks_exact_mut(4 * t * sh.step).enumerate() {
                        let (a, strip) = (task / sh.strips, task % sh.strips);
                        x_chunk(sh, xi, &span, a, strip, (&mut xvert, &zero), out);
                    }
                    for (task, out) in z.chunks_exact_mut(4 * t * MR).enumerate() {
                        let (a, panel) = (task / sh.panels, task % sh.panels);
                        dy_chunk(sh, dyi, &span, a, panel, (&mut dvert, &zero), out);
                    }
                    for (xi, pxi) in p.chunks_exact_mut(co * ci).enumerate() {
                        product_rows(cpu, sh, (t, t), xi, (v, z), pxi, 0);
                    }
                }
            }
            p
        })
        .collect();
    let mut parts = parts.into_iter();
    let mut p = parts.next().unwrap_or_else(|| vec![0.0; 16 * co * ci]);
    for q in parts {
        p.iter_mut().zip(&q).for_each(|(a, b)| *a += b);
    }
    p
}

/// dW[o][i] = Gᵀ P[·][o][i] G, Gᵀ's rows (1, ½, ½, 0), (0, ½, −½, 0), (0, ½, ½, 1); one task
/// per output channel, reading its 16 rows of P.
fn output(sh: &Shape, p: &[f32]) -> Vec<f32> {
    let (ci, co) = (sh.ci, sh.co);
    let gt =
        |q: [f32; 4]| [q[0] + 0.5 * (q[1] + q[2]), 0.5 * (q[1] - q[2]), 0.5 * (q[1] + q[2]) + q[3]];
    let mut dw = vec![0.0; co * ci * 9];
    dw.par_chunks_mut(ci * 9).enumerate().for_each(|(o, dwo)| {
        for (i, k) in dwo.chunks_exact_mut(9).enumerate() {
            let at = |a: usize, b: usize| p[((a * 4 + b) * co + o) * ci + i];
            let rows: [[f32; 3]; 4] =
                std::array::from_fn(|a| gt(std::array::from_fn(|b| at(a, b))));
            for kx in 0..3 {
                let col = gt(std::array::from_fn(|a| rows[a][kx]));
                for ky in 0..3 {
                    k[ky * 3 + kx] = col[ky];
                }
            }
        }
    });
    dw
}

/// dbias[o] = Σ_n Σ_pixels dy[n][o], one task per channel.
fn bias_grad(d: &ConvDims, dy: &[f32]) -> Vec<f32> {
    let hw = d.h * d.w;
    (0..d.co)
        .into_par_iter()
        .map(|o| (0..d.n).map(|n| crate::par::lane_total(&dy[(n * d.co + o) * hw..][..hw])).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (dw, db) by the definition: dw[o][i][ky][kx] = Σ dy[n][o][r][c]·x[n][i][r + ky − 1][c + kx − 1].
    fn definition(d: &ConvDims, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (h, w) = (d.h, d.w);
        let (mut dw, mut db) = (vec![0.0f64; d.co * d.ci * 9], vec![0.0f64; d.co]);
        for n in 0..d.n {
            for o in 0..d.co {
                for r in 0..h {
                    for c in 0..w {
                        let g = dy[((n * d.co + o) * h + r) * w + c] as f64;
                        db[o] += g;
                        for i in 0..d.ci {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (yy, xx) = (r + ky, c + kx);
                                    if (1..=h).contains(&yy) && (1..=w).contains(&xx) {
                                        let xv = x[((n * d.ci + i) * h + yy - 1) * w + xx - 1];
                                        dw[(o * d.ci + i) * 9 + ky * 3 + kx] += g * xv as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let f = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect::<Vec<_>>();
        (f(dw), f(db))
    }

    fn close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 2e-5 * scale, "{what} at {i}: {g} vs {w}");
        }
    }

    /// Every ISA against the definition: odd and even sides, output channels off the row
    /// panels (MR) and past one task's rows (ROWS), groups of one image and of several with a
    /// shorter last one, passes of the products shorter than a group (a short last pass).
    #[test]
    fn every_isa_matches_the_definition() {
        let shapes = [
            (3, 32, 20, 7, 7, 1, Some(5)),
            (5, 64, 100, 5, 6, 2, Some(7)),
            (4, 32, 7, 9, 4, 3, None),
            (2, 64, 64, 14, 14, 100, None),
        ];
        for (n, ci, co, h, w, images, kc) in shapes {
            let d = ConvDims { n, ci, h, w, co, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] };
            assert!(applies(&d));
            let x: Vec<f32> = (0..n * ci * h * w).map(|i| (i as f32 * 0.731).sin()).collect();
            let dy: Vec<f32> = (0..n * co * h * w).map(|i| (i as f32 * 0.113).sin()).collect();
            let (dw, db) = definition(&d, &x, &dy);
            for cpu in Cpu::all() {
                let sh = Shape::new(&d, cpu.run(TileWidth));
                let budget = images * 16 * (ci + sh.panels * MR) * sh.tiles();
                let (gw, gb) = weight_grad_in(cpu, &d, &x, &dy, budget, kc.unwrap_or(KC));
                let what = format!("{:?} {d:?} groups of {images}", cpu.isa());
                close(&gw, &dw, &format!("dw {what}"));
                close(&gb, &db, &format!("db {what}"));
                // One P a part, blocks of 1 and 2 tile rows (a shorter last one on odd sides).
                for rows in [1, 2] {
                    let gw = output(&sh, &weight_grad_parts(cpu, &sh, &d, &x, &dy, rows));
                    close(&gw, &dw, &format!("dw {what}, parts, blocks of {rows} rows"));
                }
            }
        }
    }

    /// The layers it declines: other kernels, strides, paddings, input channels off the block.
    #[test]
    fn applies_only_where_it_should() {
        let dims = |ci, kh, s, p| ConvDims {
            n: 1,
            ci,
            h: 8,
            w: 8,
            co: ci,
            kh,
            kw: kh,
            stride: [s, s],
            padding: [p, p],
        };
        assert!(applies(&dims(64, 3, 1, 1)));
        assert!(!applies(&dims(48, 3, 1, 1)));
        assert!(!applies(&dims(64, 5, 1, 1)));
        assert!(!applies(&dims(64, 3, 2, 1)));
        assert!(!applies(&dims(64, 3, 1, 0)));
        // In groups with 128 channels and more on maps up to 28×28, in parts on 28×28 and
        // larger, not at all with 64 channels on smaller maps.
        let map =
            |ci: usize, co: usize, hw: usize| ConvDims { co, h: hw, w: hw, ..dims(ci, 3, 1, 1) };
        assert!(takes(&map(128, 128, 8)) && in_groups(&map(128, 128, 8)));
        assert!(takes(&map(512, 512, 7)) && in_groups(&map(128, 128, 28)));
        assert!(takes(&map(128, 128, 56)) && !in_groups(&map(128, 128, 56)));
        assert!(takes(&map(64, 64, 56)) && takes(&map(64, 64, 28)) && !in_groups(&map(64, 64, 56)));
        assert!(!takes(&map(64, 64, 16)) && !takes(&map(64, 64, 26)) && !takes(&map(128, 96, 8)));
        assert!(!takes(&map(32, 32, 56)) && !takes(&map(128, 32, 56)));
        assert!(!takes(&dims(128, 3, 2, 1)));
    }
}
