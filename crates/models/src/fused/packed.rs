//! A small-batch matrix product against a weight matrix packed once: C[m×n] (+)= A[m×k]·B[k×n]
//! for the recurrences' per-step products (m = one thread's batch rows, ~16; B = W_hh or
//! W_hhᵀ, the same for all T steps).
//!
//! Why not the `gemm` crate here: it packs B on every call, and a step's B is the whole
//! recurrent weight (1 MB for an LSTM of 256), so an LSTM spent ~19% of its training time
//! re-packing the same matrix 128 times per sequence. Packed once per call of the recurrence,
//! each step is only the register-tiled multiply-adds: tiles of up to [`MR`] rows × [`NR`]
//! columns, with AVX-512 or AVX2+FMA intrinsics picked at run time (plain loops elsewhere).

/// Columns per packed block (one AVX-512 register, two AVX2 ones).
pub(super) const NR: usize = 16;
/// Rows per register tile: 6 × 16 accumulators fit AVX2's 16 registers with room for the
/// operands.
pub(super) const MR: usize = 6;

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

/// Which kernel runs: the widest the CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isa {
    Avx512,
    Avx2,
    Plain,
}

impl Isa {
    pub(super) fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Plain
    }
}

/// dst[m×n] (row-major, contiguous) = (dst if `acc`) + a[m×k] (row-major, contiguous) · B.
pub fn gemm_packed(m: usize, dst: &mut [f32], acc: bool, a: &[f32], b: &PackedB) {
    gemm_packed_on(Isa::best(), m, dst, acc, a, b)
}

/// `isa` must be supported by this CPU (it is, from [`Isa::best`] and the tests' checks).
fn gemm_packed_on(isa: Isa, m: usize, dst: &mut [f32], acc: bool, a: &[f32], b: &PackedB) {
    let (k, n) = (b.k, b.n);
    assert!(dst.len() >= m * n && a.len() >= m * k, "gemm_packed: operand sizes");
    if k == 0 {
        if !acc {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: the CPU supports the kernel's features; the asserts above bound every access.
        Isa::Avx512 => return unsafe { x86::run::<true>(m, dst, acc, a, b) },
        Isa::Avx2 => return unsafe { x86::run::<false>(m, dst, acc, a, b) },
        Isa::Plain => {}
    }
    for (jb, block) in b.data.chunks_exact(k * NR).enumerate() {
        let (col, width) = (jb * NR, NR.min(n - jb * NR));
        for r in 0..m {
            let mut c = [0f32; NR];
            if acc {
                c[..width].copy_from_slice(&dst[r * n + col..r * n + col + width]);
            }
            for (p, brow) in block.chunks_exact(NR).enumerate() {
                let x = a[r * k + p];
                for j in 0..NR {
                    c[j] += x * brow[j];
                }
            }
            dst[r * n + col..r * n + col + width].copy_from_slice(&c[..width]);
        }
    }
}

/// Register tiles written with intrinsics: LLVM does not vectorise the tile loops on its own
/// (measured: scalar FMAs and spills, ~18 GFLOP/s).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, NR, PackedB};

    /// SAFETY: the caller checked the CPU features (AVX-512F when `WIDE`, else AVX2 + FMA)
    /// and that `dst` holds m×n and `a` m×k values.
    pub unsafe fn run<const WIDE: bool>(m: usize, dst: &mut [f32], acc: bool, a: &[f32], b: &PackedB) {
        let (k, n) = (b.k, b.n);
        for (jb, block) in b.data.chunks_exact(k * NR).enumerate() {
            let (col, width) = (jb * NR, NR.min(n - jb * NR));
            let mut r0 = 0;
            while r0 < m {
                let rows = MR.min(m - r0);
                let (ap, bp) = (a[r0 * k..].as_ptr(), block.as_ptr());
                let cp = dst[r0 * n + col..].as_mut_ptr();
                // SAFETY: rows r0..r0 + rows of a and dst, columns col..col + width of dst,
                // and the k × NR block all lie inside the slices.
                unsafe {
                    match (WIDE, rows) {
                        (true, 6) => tile512::<6>(ap, k, bp, cp, n, width, acc),
                        (true, 5) => tile512::<5>(ap, k, bp, cp, n, width, acc),
                        (true, 4) => tile512::<4>(ap, k, bp, cp, n, width, acc),
                        (true, 3) => tile512::<3>(ap, k, bp, cp, n, width, acc),
                        (true, 2) => tile512::<2>(ap, k, bp, cp, n, width, acc),
                        (true, _) => tile512::<1>(ap, k, bp, cp, n, width, acc),
                        (false, 6) => tile256::<6>(ap, k, bp, cp, n, width, acc),
                        (false, 5) => tile256::<5>(ap, k, bp, cp, n, width, acc),
                        (false, 4) => tile256::<4>(ap, k, bp, cp, n, width, acc),
                        (false, 3) => tile256::<3>(ap, k, bp, cp, n, width, acc),
                        (false, 2) => tile256::<2>(ap, k, bp, cp, n, width, acc),
                        (false, _) => tile256::<1>(ap, k, bp, cp, n, width, acc),
                    }
                }
                r0 += rows;
            }
        }
    }

    /// R rows × 16 columns in R AVX-512 registers; a partial block is masked.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile512<const R: usize>(a: *const f32, lda: usize, b: *const f32, c: *mut f32, ldc: usize, width: usize, acc: bool) {
        let mask: __mmask16 = if width >= 16 { 0xFFFF } else { ((1u32 << width) - 1) as u16 };
        let mut t = [_mm512_setzero_ps(); R];
        // SAFETY (whole body): the caller's bounds; masked loads and stores touch only
        // `width` columns of C.
        unsafe {
            if acc {
                for (r, v) in t.iter_mut().enumerate() {
                    *v = _mm512_maskz_loadu_ps(mask, c.add(r * ldc));
                }
            }
            for p in 0..lda {
                let bv = _mm512_loadu_ps(b.add(p * NR));
                for (r, v) in t.iter_mut().enumerate() {
                    *v = _mm512_fmadd_ps(_mm512_set1_ps(*a.add(r * lda + p)), bv, *v);
                }
            }
            for (r, v) in t.iter().enumerate() {
                _mm512_mask_storeu_ps(c.add(r * ldc), mask, *v);
            }
        }
    }

    /// R rows × 16 columns in 2R AVX2 registers; a partial block goes through a buffer.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile256<const R: usize>(a: *const f32, lda: usize, b: *const f32, c: *mut f32, ldc: usize, width: usize, acc: bool) {
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        let mut buf = [0f32; NR];
        // SAFETY (whole body): the caller's bounds; only `width` columns of C are read and
        // written.
        unsafe {
            if acc {
                for r in 0..R {
                    std::ptr::copy_nonoverlapping(c.add(r * ldc), buf.as_mut_ptr(), width);
                    lo[r] = _mm256_loadu_ps(buf.as_ptr());
                    hi[r] = _mm256_loadu_ps(buf.as_ptr().add(8));
                }
            }
            for p in 0..lda {
                let (b0, b1) = (_mm256_loadu_ps(b.add(p * NR)), _mm256_loadu_ps(b.add(p * NR + 8)));
                for r in 0..R {
                    let x = _mm256_set1_ps(*a.add(r * lda + p));
                    lo[r] = _mm256_fmadd_ps(x, b0, lo[r]);
                    hi[r] = _mm256_fmadd_ps(x, b1, hi[r]);
                }
            }
            for r in 0..R {
                _mm256_storeu_ps(buf.as_mut_ptr(), lo[r]);
                _mm256_storeu_ps(buf.as_mut_ptr().add(8), hi[r]);
                std::ptr::copy_nonoverlapping(buf.as_ptr(), c.add(r * ldc), width);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], rs: usize, cs: usize, c0: &[f32]) -> Vec<f32> {
        (0..m * n).map(|i| c0[i] + (0..k).map(|p| a[i / n * k + p] * b[p * rs + (i % n) * cs]).sum::<f32>()).collect()
    }

    /// Every kernel this CPU can run, the plain loops included.
    fn isas() -> Vec<Isa> {
        let best = Isa::best();
        let all = [Isa::Avx512, Isa::Avx2, Isa::Plain];
        let from = all.iter().position(|&i| i == best).unwrap_or(2);
        let isas = all[from..].to_vec();
        println!("kernels tested: {isas:?}");
        isas
    }

    /// Every tile height (m 1…13), widths below, at and across a block, k = 1 and odd, B given
    /// plainly and transposed, accumulating or not.
    #[test]
    fn matches_the_straightforward_product() {
        let kernels = isas();
        for (m, k, n) in [(1, 1, 1), (2, 3, 15), (5, 7, 16), (6, 17, 17), (7, 33, 40), (13, 9, 64), (16, 64, 100)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.31).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.17).cos()).collect();
            let c0: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
            for (rs, cs) in [(n, 1), (1, k)] {
                let packed = PackedB::new(&b, k, n, rs, cs);
                for (isa, acc) in kernels.iter().copied().flat_map(|i| [(i, false), (i, true)]) {
                    let mut c = if acc { c0.clone() } else { vec![f32::NAN; m * n] };
                    gemm_packed_on(isa, m, &mut c, acc, &a, &packed);
                    let want = naive(m, k, n, &a, &b, rs, cs, &if acc { c0.clone() } else { vec![0.0; m * n] });
                    for (i, (x, y)) in c.iter().zip(&want).enumerate() {
                        assert!((x - y).abs() < 1e-5 * (1.0 + y.abs()), "{isa:?} m {m} k {k} n {n} strides ({rs}, {cs}) acc {acc} at {i}: {x} vs {y}");
                    }
                }
            }
        }
    }

    /// Throughput beside the `gemm` crate on the LSTM's per-step shapes:
    /// `cargo test --release -p burnlab-models packed_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn packed_speed() {
        for (m, k, n) in [(16, 256, 1024), (16, 1024, 256), (16, 256, 768), (16, 256, 256)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.31).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.17).cos()).collect();
            let mut c = vec![0.0; m * n];
            let reps = 2000;
            let packed = PackedB::new(&b, k, n, n, 1);
            let t = std::time::Instant::now();
            for _ in 0..reps {
                gemm_packed(m, &mut c, true, &a, &packed);
            }
            let ours = (2 * m * k * n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                // SAFETY: sizes as above.
                unsafe {
                    gemm::gemm(m, n, k, c.as_mut_ptr(), 1, n as isize, true, a.as_ptr(), 1, k as isize, b.as_ptr(), 1, n as isize, 1.0, 1.0, false, false, false, gemm::Parallelism::None);
                }
            }
            let theirs = (2 * m * k * n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9;
            println!("m={m} k={k} n={n} packed_gflops={ours:.1} gemm_crate_gflops={theirs:.1}");
        }
    }
}
