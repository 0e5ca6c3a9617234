//! 3×3, stride-1, padding-1 convolutions and their gradients by Winograd's minimal filtering
//! (Lavin & Gray, 2016): the forward pass and the input gradient (the forward pass of dy by the
//! flipped weights) by F(4×4, 3×3) ([`crate::winograd_f4`]: 36 multiply-adds per channel pair for
//! a 4×4 block of output instead of 144), the weight gradient by F(2×2, 3×3)
//! ([`crate::winograd_wgrad`]: 16 for a 2×2 block instead of 36; dW = Gᵀ[Σ_tiles (Bᵀ d B) ⊙
//! (A dY Aᵀ)]G, the adjoint of the forward formula).
//!
//! Why: these layers are ~64% of ResNet-18's multiply-adds and ran at 50–60% of the FMA peak as
//! direct convolutions ([`crate::direct`]); the same products in the transformed domain are
//! matrix products of [Co, Ci]·[Ci, tiles] per block of tiles, run by the inference linear
//! layer's register tiles ([`crate::linear`]). F(4×4, 3×3) for the weight gradient would need
//! its larger transforms on both operands (x and dy) and its sums over many tiles amplify the
//! rounding; F(2×2, 3×3)'s transforms only add and halve (relative error ~1e-6).
//!
//! The transforms are plain loops over whole rows (of tiles, or of a strip of channels), which
//! LLVM vectorises on every target.

use crate::conv::ConvDims;
use crate::isa::Cpu;

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
            assert!(applies(&d));
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
                let (gw, gb) = crate::winograd_wgrad::weight_grad(cpu, &d, &x, &dy);
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

    /// The layers it declines: other kernels, strides, paddings, few channels, tiny images.
    #[test]
    fn applies_only_where_it_should() {
        assert!(applies(&dims(1, 64, 64, 56, 56)));
        let mut d = dims(1, 64, 64, 56, 56);
        d.stride = [2, 2];
        assert!(!applies(&d));
        let mut d = dims(1, 64, 64, 56, 56);
        d.padding = [0, 0];
        assert!(!applies(&d));
        let mut d = dims(1, 64, 64, 56, 56);
        (d.kh, d.kw) = (5, 5);
        assert!(!applies(&d));
        assert!(applies(&dims(1, 64, 80, 32, 32)));
        assert!(!applies(&dims(1, 16, 64, 32, 32)) && !applies(&dims(1, 64, 32, 32, 32)));
        assert!(applies(&dims(1, 64, 64, 14, 14)));
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
    }
}
