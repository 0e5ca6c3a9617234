//! 3×3, stride-1, padding-1 convolutions and their gradients by Winograd's minimal filtering
//! (Lavin & Gray, 2016): the forward pass and the input gradient (the forward pass of dy by the
//! flipped weights) by F(4×4, 3×3) ([`crate::winograd_f4`]: 36 multiply-adds per channel pair for
//! a 4×4 block of output instead of 144), the weight gradient by F(2×2, 3×3) here (16 for a 2×2
//! block instead of 36; dW = Gᵀ[Σ_tiles (Bᵀ d B) ⊙ (A dY Aᵀ)]G, the adjoint of the forward
//! formula).
//!
//! Why: these layers are ~64% of ResNet-18's multiply-adds and ran at 50–60% of the FMA peak as
//! direct convolutions ([`crate::direct`]); the same products in the transformed domain are
//! matrix products of [Co, Ci]·[Ci, tiles] per block of tiles, run by the inference linear
//! layer's register tiles ([`crate::linear`]). F(4×4, 3×3) for the weight gradient would need
//! its larger transforms on both operands (x and dy) and its sums over many tiles amplify the
//! rounding; F(2×2, 3×3)'s transforms only add and halve (relative error ~1e-6).
//!
//! The transforms are plain loops over whole rows of tiles (the even and odd columns of a row
//! split apart first), which LLVM vectorises on every target.

use rayon::prelude::*;

use crate::conv::{ConvDims, add_partials, chunk};
use crate::isa::{Cpu, Isa};
use crate::linear::{BLOCK, Panels};
use crate::packed::MR;

/// Tiles per block of the weight gradient (whole rows of tiles, then up to [`BLOCK`] columns):
/// the block's 16 transformed planes of x and dy stay in L2. Measured on a Zen 3
/// (`kernel_speed`, the F(2×2, 3×3) forward pass when it had one): 32 ran ResNet-18's 56×56 and
/// 28×28 layers at 1.3–1.5× the direct convolution, 224 at 1.2–1.35× (the planes spilled to L3).
const TILES: usize = 32;

/// Whether [`forward`] and [`input_grad`] take this convolution: 3×3, stride 1, padding 1,
/// at least 64 channels in and out, and at least 7×7 tiles of 2×2 (13×13 and up: with
/// F(2×2, 3×3) the transforms cost more than they saved on ResNet-20's 16- and 32-channel
/// layers, 0.6–0.7× the direct convolution) or, on smaller maps, where
/// [`pays_on_small_maps`] with this many rayon threads.
pub fn applies(d: &ConvDims) -> bool {
    d.kh == 3
        && d.kw == 3
        && d.stride == [1, 1]
        && d.padding == [1, 1]
        && d.ci >= 64
        && d.co >= 64
        && (d.h.div_ceil(2) * d.w.div_ceil(2) >= 49
            || pays_on_small_maps(d, rayon::current_num_threads()))
}

/// Whether F(4×4, 3×3) pays on a map of 7×7 to 12×12 (ResNet-18's and -34's last stage): with
/// 512 channels or more in and out and at least 16 images a thread. Its transformed weights
/// (36·Ci·Co floats, 38 MB there) are rewritten on every call and streamed once per block of
/// whole images ([`crate::winograd_f4`]: 16 of 7×7). Measured on a Zen 4 (batch 32, 2
/// threads, against the direct convolution): forward 40 → 32 ms on AVX2, 36 → 31 on AVX-512,
/// input gradient 46 → 34 and 42 → 36; with 8 images a thread 1.5–2× slower, with 256
/// channels 0.9–1.1×.
pub fn pays_on_small_maps(d: &ConvDims, threads: usize) -> bool {
    d.h >= 7 && d.w >= 7 && d.ci >= 512 && d.co >= 512 && d.n >= 16 * threads.max(1)
}

/// Whether [`weight_grad`] takes it: [`applies`], output channels in multiples of [`BLOCK`]
/// (its products are that wide in them), and at least 14×14 tiles per image: on ResNet-18's
/// 14×14 layer (7×7 tiles) it measured 0.7–0.9× the direct weight gradient, on the 28×28 and
/// 56×56 ones 1.1–1.25×.
pub fn applies_weight_grad(d: &ConvDims) -> bool {
    applies(d) && d.co.is_multiple_of(BLOCK) && d.h.div_ceil(2) * d.w.div_ceil(2) >= 196
}

/// Whether the convolution's backward pass takes [`weight_grad`] on `cpu`: where it
/// [`applies_weight_grad`], except on AVX-512, where the direct weight gradient's 16-lane tiles
/// win (Zen 4, `kernel_speed`, one core: direct 109 and 107 GFLOP/s on the 56×56 and 28×28
/// layers, this 87 and 91; with AVX2 on the same CPU this 1.0–1.14× the direct one).
pub fn takes_weight_grad(cpu: Cpu, d: &ConvDims) -> bool {
    applies_weight_grad(d) && cpu.isa() != Isa::Avx512
}

/// A block of tile rows `i0..i0 + rows`, `width` columns (tiles, then zero padding).
#[derive(Clone, Copy)]
struct Geometry {
    /// Tile rows and columns of an image.
    th: usize,
    tw: usize,
    /// Tile rows per block and the block's columns ([`BLOCK`]-rounded).
    rows: usize,
    width: usize,
}

impl Geometry {
    fn new(h: usize, w: usize) -> Self {
        let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
        let rows = (TILES / tw).clamp(1, th);
        Geometry { th, tw, rows, width: (rows * tw).div_ceil(BLOCK) * BLOCK }
    }

    /// Tile rows of the block starting at row `i0`.
    fn rows_at(&self, i0: usize) -> usize {
        self.rows.min(self.th - i0)
    }
}

/// Where a transformed value (position ξ, channel c, tile t of the block) goes.
#[derive(Clone, Copy)]
enum Layout {
    /// [16][⌈channels/MR⌉][width][MR]: row panels, the left-hand side of the weight gradient's.
    Panels { channels: usize, width: usize },
    /// [16][width][channels]: the weight gradient's right-hand side.
    Cols { channels: usize, width: usize },
}

impl Layout {
    /// Floats per position ξ.
    fn plane(self) -> usize {
        match self {
            Layout::Cols { channels, width } => channels * width,
            Layout::Panels { channels, width } => channels.div_ceil(MR) * MR * width,
        }
    }

    /// (offset of tile 0, step per tile) of channel c at position ξ.
    fn at(self, xi: usize, c: usize) -> (usize, usize) {
        match self {
            Layout::Panels { width, .. } => {
                (xi * self.plane() + (c / MR) * MR * width + c % MR, MR)
            }
            Layout::Cols { channels, .. } => (xi * self.plane() + c, channels),
        }
    }
}

/// Writes row `vals` (tiles t0.. of one channel at one position) into `out`.
#[inline]
fn place(out: &mut [f32], layout: Layout, xi: usize, c: usize, t0: usize, vals: &[f32]) {
    let (base, step) = layout.at(xi, c);
    for (j, &v) in vals.iter().enumerate() {
        out[base + (t0 + j) * step] = v;
    }
}

/// The even and odd entries of `row` (length 2·half).
#[inline]
fn split(row: &[f32], even: &mut [f32], odd: &mut [f32]) {
    for ((pair, e), o) in row.chunks_exact(2).zip(even.iter_mut()).zip(odd.iter_mut()) {
        *e = pair[0];
        *o = pair[1];
    }
}

/// Scratch rows of one thread: the 4 rows of a vertical transform and their even and odd
/// columns, and the 4 transformed rows of one of them.
struct Scratch {
    vert: [Vec<f32>; 4],
    even: Vec<f32>,
    odd: Vec<f32>,
    out: [Vec<f32>; 4],
}

impl Scratch {
    fn new(tw: usize) -> Self {
        let wp = 2 * tw + 2;
        Scratch {
            vert: std::array::from_fn(|_| vec![0.0; wp]),
            even: vec![0.0; tw + 1],
            odd: vec![0.0; tw + 1],
            out: std::array::from_fn(|_| vec![0.0; tw]),
        }
    }
}

/// V = Bᵀ d B for every 4×4 patch of the block: `xp` is the image zero-padded to
/// [channels][2·th + 2][2·tw + 2] (the image at (1, 1)); the patch of tile (i, j) starts at
/// (2i, 2j).
fn input_transform(
    xp: &[f32],
    channels: usize,
    g: Geometry,
    i0: usize,
    s: &mut Scratch,
    out: &mut [f32],
    layout: Layout,
) {
    let (hp, wp, tw) = (2 * g.th + 2, 2 * g.tw + 2, g.tw);
    for c in 0..channels {
        let plane = &xp[c * hp * wp..(c + 1) * hp * wp];
        for i in i0..i0 + g.rows_at(i0) {
            let p: [&[f32]; 4] = std::array::from_fn(|a| &plane[(2 * i + a) * wp..][..wp]);
            // Bᵀ down the columns: rows d0 − d2, d1 + d2, d2 − d1, d1 − d3.
            let [v0, v1, v2, v3] = &mut s.vert;
            // Slices of one length: LLVM drops the bounds checks and vectorises.
            let (v0, v1, v2, v3) = (&mut v0[..wp], &mut v1[..wp], &mut v2[..wp], &mut v3[..wp]);
            for k in 0..wp {
                v0[k] = p[0][k] - p[2][k];
                v1[k] = p[1][k] + p[2][k];
                v2[k] = p[2][k] - p[1][k];
                v3[k] = p[1][k] - p[3][k];
            }
            for a in 0..4 {
                split(&s.vert[a], &mut s.even, &mut s.odd);
                let (e, o) = (&s.even[..tw + 1], &s.odd[..tw + 1]);
                let [r0, r1, r2, r3] = &mut s.out;
                let (r0, r1, r2, r3) = (&mut r0[..tw], &mut r1[..tw], &mut r2[..tw], &mut r3[..tw]);
                // … and along the rows: column j of tile j is 2j, its neighbours 2j + 1…2j + 3.
                for j in 0..tw {
                    r0[j] = e[j] - e[j + 1];
                    r1[j] = o[j] + e[j + 1];
                    r2[j] = e[j + 1] - o[j];
                    r3[j] = o[j] - o[j + 1];
                }
                for b in 0..4 {
                    place(out, layout, a * 4 + b, c, (i - i0) * tw, &s.out[b]);
                }
            }
        }
    }
}

/// Z = A dY Aᵀ for every 2×2 block of the output gradient: `dyp` is dy zero-padded to
/// [channels][2·th][2·tw].
fn grad_transform(
    dyp: &[f32],
    channels: usize,
    g: Geometry,
    i0: usize,
    s: &mut Scratch,
    out: &mut [f32],
    layout: Layout,
) {
    let (hq, wq, tw) = (2 * g.th, 2 * g.tw, g.tw);
    for c in 0..channels {
        let plane = &dyp[c * hq * wq..(c + 1) * hq * wq];
        for i in i0..i0 + g.rows_at(i0) {
            let (d0, d1) = (&plane[2 * i * wq..][..wq], &plane[(2 * i + 1) * wq..][..wq]);
            // A down the columns: d0, d0 + d1, d0 − d1, −d1.
            let [v0, v1, v2, v3] = &mut s.vert;
            let (v0, v1, v2, v3) = (&mut v0[..wq], &mut v1[..wq], &mut v2[..wq], &mut v3[..wq]);
            for k in 0..wq {
                v0[k] = d0[k];
                v1[k] = d0[k] + d1[k];
                v2[k] = d0[k] - d1[k];
                v3[k] = -d1[k];
            }
            for a in 0..4 {
                split(&s.vert[a][..wq], &mut s.even[..tw], &mut s.odd[..tw]);
                let (e, o) = (&s.even[..tw], &s.odd[..tw]);
                let [r0, r1, r2, r3] = &mut s.out;
                let (r0, r1, r2, r3) = (&mut r0[..tw], &mut r1[..tw], &mut r2[..tw], &mut r3[..tw]);
                for j in 0..tw {
                    r0[j] = e[j];
                    r1[j] = e[j] + o[j];
                    r2[j] = e[j] - o[j];
                    r3[j] = -o[j];
                }
                for b in 0..4 {
                    place(out, layout, a * 4 + b, c, (i - i0) * tw, &s.out[b]);
                }
            }
        }
    }
}

/// Image `x` [ci][h][w] into the zero border of `xp` ([ci][hp][wp], image at (top, left));
/// the border is never written, so it stays zero.
fn pad_into(
    x: &[f32],
    (ci, h, w): (usize, usize, usize),
    xp: &mut [f32],
    hp: usize,
    wp: usize,
    at: usize,
) {
    for c in 0..ci {
        for r in 0..h {
            let dst = (c * hp + r + at) * wp + at;
            xp[dst..dst + w].copy_from_slice(&x[(c * h + r) * w..][..w]);
        }
    }
}

/// y [N, Co, H, W] = conv(x [N, Ci, H, W], w [Co, Ci, 3, 3], padding 1) + bias.
pub fn forward(cpu: Cpu, d: &ConvDims, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    assert!(applies(d), "winograd: not a 3×3 stride-1 padding-1 layer it takes: {d:?}");
    crate::winograd_f4::forward(cpu, d, x, w, bias)
}

/// dx of [`forward`]: the forward pass of dy by the flipped weights with the channels swapped,
/// Wf[ci][co][ky][kx] = W[co][ci][2 − ky][2 − kx] (padding 1 again), read from W in place.
pub fn input_grad(cpu: Cpu, d: &ConvDims, w: &[f32], dy: &[f32]) -> Vec<f32> {
    assert!(applies(d), "winograd: not a 3×3 stride-1 padding-1 layer it takes: {d:?}");
    let swapped = ConvDims { ci: d.co, co: d.ci, ..*d };
    crate::winograd_f4::forward_flipped(cpu, &swapped, dy, w, &vec![0.0; d.ci])
}

/// (dW [Co, Ci, 3, 3], dbias) of [`forward`] from x and dy [N, Co, H, W]: per block of tiles
/// P[ξ][ci][co] += Σ_t V[ξ][ci][t]·Z[ξ][co][t], then dW = Gᵀ P G. Partial sums per fixed chunk
/// of images, added in order: the result does not depend on rayon's scheduling.
pub fn weight_grad(cpu: Cpu, d: &ConvDims, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert!(
        applies(d) && d.co.is_multiple_of(BLOCK),
        "winograd: not a 3×3 stride-1 padding-1 layer it takes: {d:?}"
    );
    let (ci, co, h, wd) = (d.ci, d.co, d.h, d.w);
    assert!(
        x.len() == d.n * ci * h * wd && dy.len() == d.n * co * h * wd,
        "winograd weight gradient: operand sizes"
    );
    let g = Geometry::new(h, wd);
    let (hp, wp, hq, wq) = (2 * g.th + 2, 2 * g.tw + 2, 2 * g.th, 2 * g.tw);
    let (img_in, img_out) = (ci * h * wd, co * h * wd);
    let vl = Layout::Panels { channels: ci, width: g.width };
    let zl = Layout::Cols { channels: co, width: g.width };
    let pplane = ci * co;
    let zero = || (vec![0.0; 16 * pplane], vec![0.0; co]);
    let per = chunk(d.n);
    let (p, db) = (0..d.n.div_ceil(per))
        .into_par_iter()
        .map(|part| {
            let (mut p, mut db) = zero();
            // Zero once: the padding and the columns past the block's tiles stay zero.
            let (mut xp, mut dyp) = (vec![0.0; ci * hp * wp], vec![0.0; co * hq * wq]);
            let (mut v, mut z) = (vec![0.0; 16 * vl.plane()], vec![0.0; 16 * zl.plane()]);
            let mut s = Scratch::new(g.tw);
            for img in part * per..((part + 1) * per).min(d.n) {
                let dyi = &dy[img * img_out..(img + 1) * img_out];
                for (acc, plane) in db.iter_mut().zip(dyi.chunks_exact(h * wd)) {
                    *acc += crate::par::lane_total(plane);
                }
                pad_into(&x[img * img_in..(img + 1) * img_in], (ci, h, wd), &mut xp, hp, wp, 1);
                pad_into(dyi, (co, h, wd), &mut dyp, hq, wq, 0);
                for i0 in (0..g.th).step_by(g.rows) {
                    if g.rows_at(i0) < g.rows {
                        // A shorter last block: clear the tiles the full ones left behind.
                        v.fill(0.0);
                        z.fill(0.0);
                    }
                    input_transform(&xp, ci, g, i0, &mut s, &mut v, vl);
                    grad_transform(&dyp, co, g, i0, &mut s, &mut z, zl);
                    for xi in 0..16 {
                        cpu.run(Panels {
                            a: &v[xi * vl.plane()..(xi + 1) * vl.plane()],
                            b: &z[xi * zl.plane()..(xi + 1) * zl.plane()],
                            kc: g.width,
                            width: co,
                            rows: ci,
                            c: &mut p[xi * pplane..(xi + 1) * pplane],
                            ldc: co,
                            acc: true,
                        });
                    }
                }
            }
            (p, db)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .reduce(add_partials)
        .unwrap_or_else(zero);
    // dW = Gᵀ P G: Gᵀ rows (1, ½, ½, 0), (0, ½, −½, 0), (0, ½, ½, 1).
    let gt =
        |q: [f32; 4]| [q[0] + 0.5 * (q[1] + q[2]), 0.5 * (q[1] - q[2]), 0.5 * (q[1] + q[2]) + q[3]];
    let mut dw = vec![0.0; co * ci * 9];
    for o in 0..co {
        for i in 0..ci {
            let at = |a: usize, b: usize| p[(a * 4 + b) * pplane + i * co + o];
            let rows: [[f32; 3]; 4] =
                std::array::from_fn(|a| gt(std::array::from_fn(|b| at(a, b))));
            for kx in 0..3 {
                let col = gt(std::array::from_fn(|a| rows[a][kx]));
                for ky in 0..3 {
                    dw[(o * ci + i) * 9 + ky * 3 + kx] = col[ky];
                }
            }
        }
    }
    (dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: y[n][o][r][c] = b[o] + Σ x[n][i][r + ky − 1][c + kx − 1]·w[o][i][ky][kx].
    fn conv(d: &ConvDims, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let (h, wd) = (d.h as isize, d.w as isize);
        let mut y = vec![0.0f64; d.n * d.co * d.h * d.w];
        for n in 0..d.n {
            for o in 0..d.co {
                for r in 0..h {
                    for c in 0..wd {
                        let mut s = b[o] as f64;
                        for i in 0..d.ci {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (yy, xx) = (r + ky as isize - 1, c + kx as isize - 1);
                                    if (0..h).contains(&yy) && (0..wd).contains(&xx) {
                                        s += x[((n * d.ci + i) * d.h + yy as usize) * d.w
                                            + xx as usize]
                                            as f64
                                            * w[(o * d.ci + i) * 9 + ky * 3 + kx] as f64;
                                    }
                                }
                            }
                        }
                        y[((n * d.co + o) * d.h + r as usize) * d.w + c as usize] = s;
                    }
                }
            }
        }
        y.into_iter().map(|v| v as f32).collect()
    }

    fn close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 2e-5 * scale, "{what} at {i}: {g} vs {w}");
        }
    }

    fn dims(n: usize, ci: usize, co: usize, h: usize, w: usize) -> ConvDims {
        ConvDims { n, ci, h, w, co, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] }
    }

    /// Forward pass, input gradient and weight gradient against the definition (the gradients
    /// as the adjoint sums: dx = Σ dy·w, dw = Σ dy·x) on every ISA, with odd and even sides,
    /// one block and several (a shorter last one), blocks of whole images (a shorter last
    /// group), and more images than threads.
    #[test]
    fn every_isa_matches_the_definition() {
        let shapes = [
            (3, 64, 96, 17, 15),
            (2, 96, 64, 16, 16),
            (2, 64, 64, 34, 30),
            (5, 64, 64, 14, 14),
            (1, 64, 64, 21, 26),
        ];
        for (n, ci, co, h, w) in shapes {
            let d = dims(n, ci, co, h, w);
            assert!(applies(&d) && d.co.is_multiple_of(BLOCK));
            let x: Vec<f32> = (0..n * ci * h * w).map(|i| (i as f32 * 0.731).sin()).collect();
            let wt: Vec<f32> = (0..co * ci * 9).map(|i| (i as f32 * 0.37).cos() * 0.1).collect();
            let b: Vec<f32> = (0..co).map(|i| i as f32 * 0.01).collect();
            let dy: Vec<f32> = (0..n * co * h * w).map(|i| (i as f32 * 0.113).sin()).collect();
            let y = conv(&d, &x, &wt, &b);
            // The gradients' sums: dx = Σ dy·w, dw = Σ dy·x, db = Σ dy.
            let (mut dx, mut dw, mut db) =
                (vec![0.0f64; x.len()], vec![0.0f64; wt.len()], vec![0.0f64; co]);
            for nn in 0..n {
                for o in 0..co {
                    for r in 0..h {
                        for c in 0..w {
                            let g = dy[((nn * co + o) * h + r) * w + c] as f64;
                            db[o] += g;
                            for i in 0..ci {
                                for ky in 0..3 {
                                    for kx in 0..3 {
                                        let (yy, xx) = (r + ky, c + kx);
                                        if (1..=h).contains(&yy) && (1..=w).contains(&xx) {
                                            let xi = ((nn * ci + i) * h + yy - 1) * w + xx - 1;
                                            let wi = (o * ci + i) * 9 + ky * 3 + kx;
                                            dx[xi] += g * wt[wi] as f64;
                                            dw[wi] += g * x[xi] as f64;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let f = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<_>>();
            for cpu in Cpu::all() {
                let what = format!("{:?} {d:?}", cpu.isa());
                close(&forward(cpu, &d, &x, &wt, &b), &y, &format!("y {what}"));
                close(&input_grad(cpu, &d, &wt, &dy), &f(&dx), &format!("dx {what}"));
                let (gw, gb) = weight_grad(cpu, &d, &x, &dy);
                close(&gw, &f(&dw), &format!("dw {what}"));
                close(&gb, &f(&db), &format!("db {what}"));
            }
        }
    }

    /// F(4×4, 3×3) on 7×7 maps, in blocks of 16 whole images (ResNet-18's last stage, there
    /// with 512 channels): 18 images, a full block and a short one, against the definition.
    #[test]
    fn small_maps_in_blocks_of_whole_images() {
        let d = dims(18, 3, 5, 7, 7);
        let x: Vec<f32> = (0..18 * 3 * 49).map(|i| (i as f32 * 0.731).sin()).collect();
        let wt: Vec<f32> = (0..5 * 3 * 9).map(|i| (i as f32 * 0.37).cos()).collect();
        let b: Vec<f32> = (0..5).map(|i| i as f32 * 0.1).collect();
        let y = conv(&d, &x, &wt, &b);
        for cpu in Cpu::all() {
            let got = crate::winograd_f4::forward(cpu, &d, &x, &wt, &b);
            close(&got, &y, &format!("{:?} 7×7", cpu.isa()));
        }
    }

    /// The layers it declines: other kernels, strides, paddings, tiny images; the weight
    /// gradient also output channels off the block width and fewer than 14×14 tiles.
    #[test]
    fn applies_only_where_it_should() {
        assert!(applies(&dims(1, 64, 64, 56, 56)) && applies_weight_grad(&dims(1, 64, 64, 56, 56)));
        let mut d = dims(1, 64, 64, 56, 56);
        d.stride = [2, 2];
        assert!(!applies(&d) && !applies_weight_grad(&d));
        let mut d = dims(1, 64, 64, 56, 56);
        d.padding = [0, 0];
        assert!(!applies(&d));
        let mut d = dims(1, 64, 64, 56, 56);
        (d.kh, d.kw) = (5, 5);
        assert!(!applies(&d));
        assert!(
            applies(&dims(1, 64, 80, 32, 32)) && !applies_weight_grad(&dims(1, 64, 80, 32, 32))
        );
        assert!(!applies(&dims(1, 16, 64, 32, 32)) && !applies(&dims(1, 64, 32, 32, 32)));
        assert!(
            applies(&dims(1, 64, 64, 14, 14)) && !applies_weight_grad(&dims(1, 64, 64, 14, 14))
        );
        assert!(!applies(&dims(1, 64, 64, 12, 12)));
        // Small maps: only with 512 channels and 16 images a thread.
        assert!(pays_on_small_maps(&dims(32, 512, 512, 7, 7), 2));
        assert!(pays_on_small_maps(&dims(64, 512, 512, 7, 7), 4));
        assert!(!pays_on_small_maps(&dims(16, 512, 512, 7, 7), 2));
        assert!(!pays_on_small_maps(&dims(32, 512, 512, 7, 7), 4));
        assert!(!pays_on_small_maps(&dims(32, 256, 512, 7, 7), 2));
        assert!(!pays_on_small_maps(&dims(32, 512, 256, 7, 7), 1));
        assert!(!pays_on_small_maps(&dims(32, 512, 512, 6, 7), 1));
        let threads = rayon::current_num_threads();
        assert!(applies(&dims(16 * threads, 512, 512, 7, 7)));
        assert!(!applies(&dims(16 * threads - 1, 512, 512, 7, 7)));
        // The direct weight gradient is the faster one on AVX-512 (measured on a Zen 4).
        for cpu in Cpu::all() {
            let taken = takes_weight_grad(cpu, &dims(1, 64, 64, 56, 56));
            assert_eq!(taken, cpu.isa() != Isa::Avx512, "{:?}", cpu.isa());
            assert!(!takes_weight_grad(cpu, &dims(1, 64, 64, 14, 14)));
        }
    }
}
