//! The forward pass of 3×3, stride-1, padding-1 convolutions (and so their input gradient, see
//! [`crate::winograd::input_grad`]) by Winograd's F(4×4, 3×3) (Lavin & Gray, 2016): each 4×4
//! block of output from a 6×6 patch of input with 36 multiply-adds per channel pair instead of
//! 144, 1.78× fewer than F(2×2, 3×3)'s 16 per 2×2 block, and 1.78× fewer transformed values to
//! write and read.
//!
//! Numerics: the transforms multiply by 4, 5 and 8 and the weight transform by ⅙ and 1⁄24, so
//! rounding error grows over F(2×2, 3×3)'s (~1e-5 of the layer's largest value against ~1e-6,
//! checked against the definition in [`crate::winograd`]'s tests); oneDNN and cuDNN run this
//! tile for fp32 training too. The weight gradient stays F(2×2, 3×3) ([`crate::winograd_wgrad`]).
//!
//! Blocks of [`BLOCK`] columns of whole rows of tiles of one image, or of up to [`MAX_WIDTH`]
//! columns of whole images where an image has few tiles (ResNet-18's 14×14 maps: 16), so that
//! the products' right-hand sides are as wide as the register tiles and mostly used. Measured on a Zen 3 (AVX2, 32 images, 2 threads),
//! against F(2×2, 3×3): 1.3–1.4× on the 56×56 and 28×28 layers, level on the 14×14 one; the
//! ResNet-18 training step at 224 px 1.1–1.3× faster.

use std::mem::MaybeUninit;

use crate::conv::{ConvDims, chunk};
use crate::isa::Cpu;
use crate::linear::{BLOCK, Panels};
use crate::packed::MR;
use crate::par::{Pool, par_chunks_uninit};

/// Columns per block of whole images at most: its 36 transformed planes ([36][Ci][width]) and
/// products ([36][Co][width]). The transformed weights stream once per block, so blocks take
/// as many images as fit: 24 of 7×7 (4 tiles each; with a thread's share of 16, 16 in 64
/// columns: ResNet-18's last stage, where blocks of 10 images once ran at 0.9× the direct
/// convolution, see [`crate::winograd::pays_on_small_maps`]), 6 of 14×14 (16 tiles each).
const MAX_WIDTH: usize = 96;

/// The transformed positions of a tile (6×6).
const POS: usize = 36;

/// How tiles map to a block's columns. The transforms run on tile row after tile row, each
/// `pitch` = tw + 1 columns (the last one junk): every transform is then one loop over the
/// block's columns, whose neighbouring tile is always the next column, rather than loops as
/// short as a row of tiles (2–14 here). A block is whole images where an image has few tiles
/// (ResNet-18's 14×14 and 7×7 maps), else tile rows of one image. Blocks of tile rows keep the
/// junk columns in the products (1 in 15 and 1 in 8 on the 56×56 and 28×28 maps); blocks of
/// whole images leave them out ([`Geometry::dense`]: 1 in 3 on 7×7 maps, 1 in 5 on 14×14).
#[derive(Clone, Copy, Debug)]
struct Geometry {
    /// Tile rows of an image, and columns per tile row (its tiles and the junk one).
    th: usize,
    pitch: usize,
    /// Tile rows per block of one image (0 when blocks hold whole images).
    rows: usize,
    /// Whole images per block (1 when an image spans several blocks).
    images: usize,
    width: usize,
}

impl Geometry {
    /// The geometry of an h×w map with `share` images a thread.
    fn new(h: usize, w: usize, share: usize) -> Self {
        let (th, tw) = (h.div_ceil(4), w.div_ceil(4));
        let pitch = tw + 1;
        if th * tw <= BLOCK {
            // As many whole images as fit (the transformed weights stream once per block), in
            // blocks of equal size over a thread's share (16 of 7×7 with 32 or 64 images on 2
            // threads: one block or two each).
            let (most, share) = ((MAX_WIDTH / (th * tw)).max(1), share.max(1));
            let images = share.div_ceil(share.div_ceil(most));
            let width = (images * th * tw).div_ceil(BLOCK) * BLOCK;
            Geometry { th, pitch, rows: 0, images, width }
        } else {
            let rows = (BLOCK / pitch).clamp(1, th);
            let width = (rows * pitch).div_ceil(BLOCK) * BLOCK;
            Geometry { th, pitch, rows, images: 1, width }
        }
    }

    /// The padded width of a tile row's input rows: 4 columns per tile and its junk one.
    fn wp(&self) -> usize {
        4 * self.pitch
    }

    /// Whether a block's columns in the products are its tiles only (blocks of whole images),
    /// tile row q's at q·tw, rather than the transforms' q·pitch.
    fn dense(&self) -> bool {
        self.rows == 0
    }

    /// Columns of the transforms' rows: a block's tile rows at `pitch`.
    fn cols(&self) -> usize {
        if self.dense() { self.images * self.th * self.pitch } else { self.width }
    }
}

/// Tile rows of one block: `count` of them, the q-th being image `q / th`'s row `q % th`
/// (whole images) or the one image's row `i0 + q`.
#[derive(Clone, Copy)]
struct Block {
    i0: usize,
    count: usize,
    whole: bool,
    th: usize,
}

impl Block {
    /// (image within the block, tile row) of its q-th tile row.
    fn row(&self, q: usize) -> (usize, usize) {
        if self.whole { (q / self.th, q % self.th) } else { (0, self.i0 + q) }
    }
}

/// Scratch rows of one thread.
struct Scratch {
    /// A zero row: the patch's rows outside the image.
    zero: Vec<f32>,
    /// The vertical input transform's six rows, tile row after tile row.
    vert: [Vec<f32>; 6],
    /// A row split by column mod 4: one entry per block column, and one past the last that
    /// only the junk column before it reads.
    phase: [Vec<f32>; 4],
    /// Output transform: Aᵀ along the rows for each of the 6 rows a, 4 phases each.
    half: [[Vec<f32>; 4]; 6],
    /// … and down the columns: one output row's 4 phases of every tile row of the block…
    out: [Vec<f32>; 4],
    /// … interleaved: tile row q's output row at q·wp (its first w values are the image's).
    row: Vec<f32>,
}

impl Scratch {
    fn new(g: Geometry) -> Self {
        let (wp, cols) = (g.wp(), g.cols());
        let v = |n: usize| vec![0.0; n];
        Scratch {
            zero: v(wp),
            vert: std::array::from_fn(|_| v(cols * 4)),
            phase: std::array::from_fn(|_| v(cols + 1)),
            half: std::array::from_fn(|_| std::array::from_fn(|_| v(cols))),
            out: std::array::from_fn(|_| v(cols)),
            row: v(4 * cols),
        }
    }
}

/// Bᵀ applied to six values: the rows (4, 0, −5, 0, 1, 0), (0, −4, −4, 1, 1, 0),
/// (0, 4, −4, −1, 1, 0), (0, −2, −1, 2, 1, 0), (0, 2, −1, −2, 1, 0), (0, 4, 0, −5, 0, 1).
#[inline(always)]
fn bt(d: [f32; 6]) -> [f32; 6] {
    let [d0, d1, d2, d3, d4, d5] = d;
    [
        4.0 * d0 - 5.0 * d2 + d4,
        (d3 + d4) - 4.0 * (d1 + d2),
        4.0 * (d1 - d2) + (d4 - d3),
        2.0 * (d3 - d1) + (d4 - d2),
        2.0 * (d1 - d3) + (d4 - d2),
        4.0 * d1 - 5.0 * d3 + d5,
    ]
}

/// Aᵀ applied to six values: the rows (1, 1, 1, 1, 1, 0), (0, 1, −1, 2, −2, 0),
/// (0, 1, 1, 4, 4, 0), (0, 1, −1, 8, −8, 1).
#[inline(always)]
fn at(m: [f32; 6]) -> [f32; 4] {
    let [m0, m1, m2, m3, m4, m5] = m;
    let (s12, d12, s34, d34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
    [m0 + s12 + s34, d12 + 2.0 * d34, s12 + 4.0 * s34, d12 + 8.0 * d34 + m5]
}

/// G applied to three values: the rows (¼, 0, 0), (−⅙, −⅙, −⅙), (−⅙, ⅙, −⅙), (1⁄24, 1⁄12, ⅙),
/// (1⁄24, −1⁄12, ⅙), (0, 0, 1) (multiplications by the rounded reciprocals, not divisions).
#[inline(always)]
fn gm(k: [f32; 3]) -> [f32; 6] {
    const SIXTH: f32 = 1.0 / 6.0;
    let [a, b, c] = k;
    let (ac, l3) = (a * (1.0 / 24.0) + c * SIXTH, b * (1.0 / 12.0));
    [0.25 * a, -(a + b + c) * SIXTH, -(a - b + c) * SIXTH, ac + l3, ac - l3, c]
}

/// V = Bᵀ d B for every tile of the block into `v` [36][channels][width]: `x` holds the block's
/// images [channels][h][w] from its first; the patch of tile (i, j) is rows 4i − 1… and columns
/// 4j − 1… of its image (zero outside).
fn input_transform(
    x: &[f32],
    (channels, h, w): (usize, usize, usize),
    g: Geometry,
    blk: Block,
    s: &mut Scratch,
    v: &mut [f32],
) {
    let (wp, cols) = (g.wp(), blk.count * g.pitch);
    let plane = channels * g.width;
    for c in 0..channels {
        for q in 0..blk.count {
            let (k, i) = blk.row(q);
            let xc = &x[(k * channels + c) * h * w..][..h * w];
            // The patch's rows 4i − 1 … 4i + 4, read in place (a zero row outside the image).
            let row = |a: usize| match (4 * i + a).checked_sub(1).filter(|&y| y < h) {
                Some(y) => &xc[y * w..][..w],
                None => &s.zero[..w],
            };
            let (p0, p1, p2, p3, p4, p5) = (row(0), row(1), row(2), row(3), row(4), row(5));
            // Bᵀ down the columns, into columns 1..=w: columns 0 and w + 1.. of `vert` are
            // never written, so they stay zero (the padding).
            let [r0, r1, r2, r3, r4, r5] = s.vert.each_mut().map(|r| &mut r[q * wp + 1..][..w]);
            for k in 0..w {
                let o = bt([p0[k], p1[k], p2[k], p3[k], p4[k], p5[k]]);
                (r0[k], r1[k], r2[k], r3[k], r4[k], r5[k]) = (o[0], o[1], o[2], o[3], o[4], o[5]);
            }
        }
        for a in 0..6 {
            // … then along the rows: column 4j + k of a tile row is phase k's entry j, and a
            // patch's last two columns are phases 0 and 1 at the next column.
            let [q0, q1, q2, q3] = s.phase.each_mut().map(|p| &mut p[..cols]);
            let quads = s.vert[a][..4 * cols].as_chunks::<4>().0;
            for ((((quad, e0), e1), e2), e3) in quads.iter().zip(q0).zip(q1).zip(q2).zip(q3) {
                (*e0, *e1, *e2, *e3) = (quad[0], quad[1], quad[2], quad[3]);
            }
            let [q0, q1, q2, q3] = s.phase.each_ref().map(|p| &p[..=cols]);
            let src = [&q0[..cols], &q1[..cols], &q2[..cols], &q3[..cols], &q0[1..], &q1[1..]];
            let off = |b: usize| (a * 6 + b) * plane + c * g.width;
            if g.dense() {
                let out = split6(v, plane, a * 6 * plane + c * g.width, blk.count * (g.pitch - 1));
                pack_rows(src, out, blk.count, g.pitch);
                continue;
            }
            combine::<0, 6>(&mut v[off(0)..][..cols], src, bt);
            combine::<1, 6>(&mut v[off(1)..][..cols], src, bt);
            combine::<2, 6>(&mut v[off(2)..][..cols], src, bt);
            combine::<3, 6>(&mut v[off(3)..][..cols], src, bt);
            combine::<4, 6>(&mut v[off(4)..][..cols], src, bt);
            combine::<5, 6>(&mut v[off(5)..][..cols], src, bt);
        }
    }
}

/// Bᵀ along the rows of a dense block: tile row q's tiles (at q·pitch in `src`) to q·tw in
/// `out`, the junk columns left out. Apart from [`input_transform`] (not inlined), whose loops
/// over whole rows vectorise as they did without it.
#[inline(never)]
fn pack_rows(src: [&[f32]; 6], out: [&mut [f32]; 6], count: usize, pitch: usize) {
    let tw = pitch - 1;
    let [o0, o1, o2, o3, o4, o5] = out;
    for q in 0..count {
        for j in 0..tw {
            let k = q * pitch + j;
            let o = bt([src[0][k], src[1][k], src[2][k], src[3][k], src[4][k], src[5][k]]);
            let d = q * tw + j;
            (o0[d], o1[d], o2[d], o3[d], o4[d], o5[d]) = (o[0], o[1], o[2], o[3], o[4], o[5]);
        }
    }
}

/// Aᵀ along the rows of a dense block's products: tile row q's tiles from q·tw to the
/// transforms' q·pitch in `half` (its junk columns keep stale values, which land past w in the
/// output rows and are never written out).
#[inline(never)]
fn unpack_rows(m: [&[f32]; 6], half: &mut [Vec<f32>; 4], count: usize, pitch: usize) {
    let tw = pitch - 1;
    let [h0, h1, h2, h3] = half;
    for q in 0..count {
        for j in 0..tw {
            let k = q * tw + j;
            let o = at([m[0][k], m[1][k], m[2][k], m[3][k], m[4][k], m[5][k]]);
            let d = q * pitch + j;
            (h0[d], h1[d], h2[d], h3[d]) = (o[0], o[1], o[2], o[3]);
        }
    }
}

/// The six rows `v[at + b·plane..][..n]`, b = 0‥5.
#[inline]
fn split6(v: &mut [f32], plane: usize, at: usize, n: usize) -> [&mut [f32]; 6] {
    let mut rest = &mut v[at..];
    std::array::from_fn(|_| {
        let all = std::mem::take(&mut rest);
        let cut = plane.min(all.len());
        let (row, tail) = all.split_at_mut(cut);
        rest = tail;
        &mut row[..n]
    })
}

/// dst[j] = f(the six rows' entries j)[K]: one output of a transform over whole rows (K a
/// constant, so only that output's sum is computed and the loop vectorises).
#[inline(always)]
fn combine<const K: usize, const N: usize>(
    dst: &mut [f32],
    src: [&[f32]; 6],
    f: impl Fn([f32; 6]) -> [f32; N],
) {
    let n = dst.len();
    // Destructured rather than `src.map(…)`: a call LLVM stopped inlining here.
    let [s0, s1, s2, s3, s4, s5] = src;
    let (s0, s1, s2, s3, s4, s5) = (&s0[..n], &s1[..n], &s2[..n], &s3[..n], &s4[..n], &s5[..n]);
    for j in 0..n {
        dst[j] = f([s0[j], s1[j], s2[j], s3[j], s4[j], s5[j]])[K];
    }
}

/// y = Aᵀ M A (+ bias) of every tile of the block from `m` [36][co][width] into `y`, the
/// block's images' outputs [co][h][w] from its first.
fn output_transform(
    m: &[f32],
    (co, h, w): (usize, usize, usize),
    g: Geometry,
    blk: Block,
    bias: &[f32],
    s: &mut Scratch,
    y: &mut [MaybeUninit<f32>],
) {
    let (cols, plane, wp) = (blk.count * g.pitch, co * g.width, g.wp());
    for c in 0..co {
        // Aᵀ along the rows (over b) for each a: 4 output-column phases.
        for (a, hs) in s.half.iter_mut().enumerate() {
            let row = |b: usize| (a * 6 + b) * plane + c * g.width;
            if g.dense() {
                let n = blk.count * (g.pitch - 1);
                unpack_rows(std::array::from_fn(|b| &m[row(b)..][..n]), hs, blk.count, g.pitch);
                continue;
            }
            let [m0, m1, m2, m3, m4, m5] = std::array::from_fn(|b| &m[row(b)..][..cols]);
            let [h0, h1, h2, h3] = hs.each_mut().map(|r| &mut r[..cols]);
            for j in 0..cols {
                let o = at([m0[j], m1[j], m2[j], m3[j], m4[j], m5[j]]);
                (h0[j], h1[j], h2[j], h3[j]) = (o[0], o[1], o[2], o[3]);
            }
        }
        // … then down the columns (over a), one output row r of every tile row at a time.
        let bc = bias[c];
        for r in 0..4 {
            for (k, o) in s.out.iter_mut().enumerate() {
                let src: [&[f32]; 6] = std::array::from_fn(|a| &s.half[a][k][..cols]);
                let o = &mut o[..cols];
                match r {
                    0 => combine::<0, 4>(o, src, at),
                    1 => combine::<1, 4>(o, src, at),
                    2 => combine::<2, 4>(o, src, at),
                    _ => combine::<3, 4>(o, src, at),
                }
                o.iter_mut().for_each(|v| *v += bc);
            }
            let [o0, o1, o2, o3] = s.out.each_ref().map(|o| &o[..cols]);
            let quads = s.row[..4 * cols].as_chunks_mut::<4>().0;
            for ((((quad, &e0), &e1), &e2), &e3) in quads.iter_mut().zip(o0).zip(o1).zip(o2).zip(o3)
            {
                *quad = [e0, e1, e2, e3];
            }
            for q in 0..blk.count {
                let (k, i) = blk.row(q);
                let yy = 4 * i + r;
                if yy < h {
                    let dst = &mut y[((k * co + c) * h + yy) * w..][..w];
                    for (o, &v) in dst.iter_mut().zip(&s.row[q * wp..][..w]) {
                        o.write(v);
                    }
                }
            }
        }
    }
}

/// U = G g Gᵀ for every (co, ci), packed as the left-hand side of the products:
/// [36][⌈co/MR⌉][ci][MR], zero past the last output channel. One task per row a of the 6×6
/// result (its 6 planes are contiguous). `flipped`: the kernel of (o, i) is w's of (i, o)
/// turned by 180° (w is [ci][co][3][3]), the input gradient's, read in place rather than
/// copied first.
fn weight_transform(w: &[f32], co: usize, ci: usize, flipped: bool) -> Vec<f32> {
    let plane = co.div_ceil(MR) * MR * ci;
    if plane == 0 {
        return Vec::new();
    }
    // SAFETY: each task writes all of its 6 planes: every panel, every i, every one of the MR
    // lanes (zero past the last output channel). No `vec![0.0; …]` first: a serial memset of
    // 38 MB on ResNet-18's 512-channel layers.
    unsafe {
        par_chunks_uninit(
            POS * plane,
            6 * plane,
            || (),
            |_, a, planes| match a {
                0 => transform_row::<0>(w, (co, ci), flipped, planes),
                1 => transform_row::<1>(w, (co, ci), flipped, planes),
                2 => transform_row::<2>(w, (co, ci), flipped, planes),
                3 => transform_row::<3>(w, (co, ci), flipped, planes),
                4 => transform_row::<4>(w, (co, ci), flipped, planes),
                _ => transform_row::<5>(w, (co, ci), flipped, planes),
            },
        )
    }
}

/// Row A of U (see [`weight_transform`]) into its 6 planes: A a constant, so only that row of
/// G's column transform is computed (a third of the work of all six).
fn transform_row<const A: usize>(
    w: &[f32],
    (co, ci): (usize, usize),
    flipped: bool,
    planes: &mut [MaybeUninit<f32>],
) {
    let plane = planes.len() / 6;
    // Panel by panel, channel by channel: each (plane, panel, i) is MR consecutive floats.
    for o0 in (0..co).step_by(MR) {
        for i in 0..ci {
            for o in o0..o0 + MR {
                let vals = if o < co {
                    let k: [f32; 9] = if flipped {
                        let k = &w[(i * co + o) * 9..][..9];
                        std::array::from_fn(|t| k[8 - t])
                    } else {
                        let k = &w[(o * ci + i) * 9..][..9];
                        std::array::from_fn(|t| k[t])
                    };
                    // G down the columns (row A of each), then along the row.
                    let col: [f32; 3] = std::array::from_fn(|x| gm([k[x], k[3 + x], k[6 + x]])[A]);
                    gm(col)
                } else {
                    [0.0; 6]
                };
                for (b, val) in vals.into_iter().enumerate() {
                    planes[b * plane + o0 * ci + i * MR + o - o0].write(val);
                }
            }
        }
    }
}

/// y [N, Co, H, W] = conv(x [N, Ci, H, W], w [Co, Ci, 3, 3], padding 1) + bias.
pub fn forward(cpu: Cpu, d: &ConvDims, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    forward_with(cpu, d, x, w, false, bias)
}

/// [`forward`] by the flipped weights with the channels swapped (the input gradient of a
/// convolution with `w` [Ci, Co, 3, 3]: `d` is the swapped convolution's).
pub fn forward_flipped(cpu: Cpu, d: &ConvDims, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    forward_with(cpu, d, x, w, true, bias)
}

fn forward_with(
    cpu: Cpu,
    d: &ConvDims,
    x: &[f32],
    w: &[f32],
    flipped: bool,
    bias: &[f32],
) -> Vec<f32> {
    assert!(
        d.kh == 3 && d.kw == 3 && d.stride == [1, 1] && d.padding == [1, 1],
        "winograd F(4×4, 3×3): not a 3×3 stride-1 padding-1 layer: {d:?}"
    );
    let (ci, co, h, wd) = (d.ci, d.co, d.h, d.w);
    assert!(
        x.len() == d.n * ci * h * wd && w.len() == co * ci * 9 && bias.len() == co,
        "winograd F(4×4, 3×3) forward: operand sizes"
    );
    if d.n * co * h * wd == 0 {
        return vec![0.0; d.n * co * h * wd];
    }
    let g = Geometry::new(h, wd, d.n.div_ceil(rayon::current_num_threads().max(1)));
    let u = weight_transform(w, co, ci, flipped);
    let uplane = co.div_ceil(MR) * MR * ci;
    let (img_in, img_out) = (ci * h * wd, co * h * wd);
    let (vplane, mplane) = (ci * g.width, co * g.width);
    // Whole blocks of images per task where blocks hold several.
    let per = chunk(d.n).div_ceil(g.images) * g.images;
    // The transformed planes and products: allocated here (see `Pool`), zeroed on first use by
    // the task that has them.
    let tasks = rayon::current_num_threads().min(d.n.div_ceil(per));
    let pool =
        Pool::new(tasks, || (Vec::with_capacity(POS * vplane), Vec::with_capacity(POS * mplane)));
    // SAFETY: the output transform writes every value of every image of the chunk: each
    // channel, each of the 4·th ≥ h rows below h, all w columns (no `vec![0.0; …]` first: a
    // serial memset of 26 MB on ResNet-18's 56×56 layers).
    unsafe {
        par_chunks_uninit(
            d.n * img_out,
            per * img_out,
            || (pool.lease(|| (Vec::new(), Vec::new())), Scratch::new(g)),
            |(lease, s), part, ys| {
                let (v, m) = &mut **lease;
                v.resize(POS * vplane, 0.0);
                m.resize(POS * mplane, 0.0);
                // Columns a block leaves unwritten hold an earlier block's values: their products
                // land in columns no output transform reads.
                for (b, yb) in ys.chunks_mut(g.images * img_out).enumerate() {
                    let first = part * per + b * g.images;
                    let images = yb.len() / img_out;
                    let xb = &x[first * img_in..(first + images) * img_in];
                    let blocks: Vec<Block> = if g.rows == 0 {
                        vec![Block { i0: 0, count: images * g.th, whole: true, th: g.th }]
                    } else {
                        (0..g.th)
                            .step_by(g.rows)
                            .map(|i0| Block {
                                i0,
                                count: g.rows.min(g.th - i0),
                                whole: false,
                                th: g.th,
                            })
                            .collect()
                    };
                    for blk in blocks {
                        input_transform(xb, (ci, h, wd), g, blk, s, v);
                        for xi in 0..POS {
                            cpu.run(Panels {
                                a: &u[xi * uplane..(xi + 1) * uplane],
                                b: &v[xi * vplane..(xi + 1) * vplane],
                                kc: ci,
                                width: g.width,
                                rows: co,
                                c: &mut m[xi * mplane..(xi + 1) * mplane],
                                ldc: g.width,
                                acc: false,
                            });
                        }
                        output_transform(m, (co, h, wd), g, blk, bias, s, yb);
                    }
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks as designed (the values against the definition are tested through
    /// [`crate::winograd::forward`]): ResNet-18's 56×56 and 28×28 maps in blocks of tile rows,
    /// 14×14 and 7×7 in blocks of whole images, each filling most of its columns.
    #[test]
    fn blocks_fill_their_columns() {
        let g = Geometry::new(56, 56, 16);
        assert_eq!((g.th, g.pitch, g.rows, g.images, g.width), (14, 15, 2, 1, 32));
        let g = Geometry::new(28, 28, 16);
        assert_eq!((g.th, g.pitch, g.rows, g.images, g.width), (7, 8, 4, 1, 32));
        // Whole images: as many as MAX_WIDTH takes, at most a thread's share.
        let g = Geometry::new(14, 14, 16);
        assert_eq!((g.th, g.pitch, g.rows, g.images, g.width, g.cols()), (4, 5, 0, 6, 96, 120));
        let g = Geometry::new(7, 7, 16);
        assert_eq!((g.th, g.pitch, g.rows, g.images, g.width, g.cols()), (2, 3, 0, 16, 64, 96));
        let g = Geometry::new(7, 7, 32);
        assert_eq!((g.images, g.width), (16, 64));
        let g = Geometry::new(7, 7, 5);
        assert_eq!((g.images, g.width), (5, 32));
        let g = Geometry::new(7, 7, 0);
        assert_eq!((g.images, g.width), (1, 32));
        let g = Geometry::new(21, 26, 16);
        assert_eq!((g.th, g.pitch, g.rows, g.images, g.width), (6, 8, 4, 1, 32));
        let blk = Block { i0: 0, count: 8, whole: true, th: 4 };
        assert_eq!((blk.row(0), blk.row(5)), ((0, 0), (1, 1)));
        let blk = Block { i0: 4, count: 2, whole: false, th: 6 };
        assert_eq!((blk.row(0), blk.row(1)), ((0, 4), (0, 5)));
    }

    /// The transforms' matrices: Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A is the 1-D correlation of a 6-sample
    /// row with a 3-tap kernel (exact in these small integers and halves).
    #[test]
    fn one_dimensional_transforms_correlate() {
        let d = [1.0, -2.0, 3.0, 0.5, -1.5, 2.0];
        let k = [0.5, -1.0, 2.0];
        let (u, v) = (gm(k), bt(d));
        let y = at(std::array::from_fn(|i| u[i] * v[i]));
        for (r, &got) in y.iter().enumerate() {
            let want: f32 = (0..3).map(|t| d[r + t] * k[t]).sum();
            assert!((got - want).abs() < 1e-5, "output {r}: {got} vs {want}");
        }
    }
}
