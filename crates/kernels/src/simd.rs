//! The one SIMD abstraction of the kernels: a [`Simd`] type per instruction set, each a
//! zero-sized token that exists only where the CPU supports it (made by run-time detection,
//! or `unsafe`ly), with the dozen vector operations the kernels use.
//!
//! Why our own small trait (as candle's `cpu` module) and not `pulp` or `macerator`: the kernels
//! need only these operations; register tiles are sized per ISA by constants here
//! ([`Simd::NV`]); and the plain fallback must be multiply-adds on arrays that the compiler
//! vectorises for the baseline, whereas pulp's portable types compute a correctly rounded
//! fused multiply-add in software (a libm call per lane) on CPUs without FMA.
//!
//! Every method is `#[inline(always)]`: a kernel runs inside the ISA's `vectorize`, a function
//! compiled with the ISA's target features, and the operations must be inlined there to become
//! single instructions.

use crate::isa::Kernel;

/// The widest vector, in lanes (AVX-512): scratch buffers for partial loads and stores.
pub const MAX_LANES: usize = 16;

/// One instruction set's vector type and operations.
pub trait Simd: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// A register of [`Simd::LANES`] f32.
    type V: Copy;
    const LANES: usize;
    /// Vectors per row of a register tile (6 rows × NV vectors of accumulators): 2 on AVX2
    /// (12 of 16 registers) and AVX-512 (12 of 32), 4 on NEON (24 of 32), 1 plain (2 SSE
    /// registers per 8-float array).
    const NV: usize;
    /// [`Simd::NV`] for the direct convolution's tiles, whose rows are strips of pixels: 4 on
    /// AVX-512 (24 of 32 registers, 10 loads per 24 multiply-adds against 8 per 12; on a Zen 5
    /// ResNet-20's layers ran 7–10% faster and ResNet-18's 28×28 one 23%), [`Simd::NV`] elsewhere.
    const NV_WIDE: usize = Self::NV;
    /// Whether `f32::mul_add` is one instruction here (else a library call: use `a * b + c`).
    const FMA: bool;

    fn splat(self, x: f32) -> Self::V;
    /// # Safety
    /// `p..p + LANES` must be readable.
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// # Safety
    /// `p..p + LANES` must be writable.
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// a·b + c (fused where the ISA has FMA).
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// Sum of the lanes.
    fn sum(self, v: Self::V) -> f32;

    #[inline(always)]
    fn zero(self) -> Self::V {
        self.splat(0.0)
    }

    /// The first `s.len()` (≤ LANES) lanes from `s`, the rest zero.
    #[inline(always)]
    fn load_partial(self, s: &[f32]) -> Self::V {
        let mut buf = [0f32; MAX_LANES];
        let n = s.len().min(Self::LANES);
        buf[..n].copy_from_slice(&s[..n]);
        // SAFETY: buf holds MAX_LANES ≥ LANES values.
        unsafe { self.load(buf.as_ptr()) }
    }

    /// The first `s.len()` (≤ LANES) lanes of `v` into `s`.
    #[inline(always)]
    fn store_partial(self, s: &mut [f32], v: Self::V) {
        let mut buf = [0f32; MAX_LANES];
        // SAFETY: buf holds MAX_LANES ≥ LANES values.
        unsafe { self.store(buf.as_mut_ptr(), v) };
        let n = s.len().min(Self::LANES);
        s[..n].copy_from_slice(&buf[..n]);
    }

    /// a·b + c on one float, as this ISA does it.
    #[inline(always)]
    fn mul_add1(self, a: f32, b: f32, c: f32) -> f32 {
        if Self::FMA { a.mul_add(b, c) } else { a * b + c }
    }
}

/// An uninhabited field: the token of an ISA that this target cannot have.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)]
enum Never {}

/// Plain loops over 8-float arrays (no intrinsics): the floor on every CPU.
#[derive(Clone, Copy, Debug)]
pub struct Plain(());

impl Plain {
    pub fn new() -> Self {
        Plain(())
    }
}

impl Default for Plain {
    fn default() -> Self {
        Self::new()
    }
}

impl Simd for Plain {
    type V = [f32; 8];
    const LANES: usize = 8;
    const NV: usize = 1;
    const FMA: bool = false;

    #[inline(always)]
    fn splat(self, x: f32) -> [f32; 8] {
        [x; 8]
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> [f32; 8] {
        // SAFETY: the caller's contract (8 readable floats).
        unsafe { p.cast::<[f32; 8]>().read_unaligned() }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: [f32; 8]) {
        // SAFETY: the caller's contract (8 writable floats).
        unsafe { p.cast::<[f32; 8]>().write_unaligned(v) }
    }
    #[inline(always)]
    fn mul_add(self, a: [f32; 8], b: [f32; 8], c: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    fn add(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    fn mul(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] * b[i])
    }
    #[inline(always)]
    fn sum(self, v: [f32; 8]) -> f32 {
        ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
    }
}

/// AVX2 with FMA (x86-64-v3): every x86 laptop chip of the last decade.
#[derive(Clone, Copy, Debug)]
pub struct Avx2(#[cfg(not(target_arch = "x86_64"))] Never, #[cfg(target_arch = "x86_64")] ());

/// AVX-512F (Skylake-X and later servers, Zen 4 and later).
#[derive(Clone, Copy, Debug)]
pub struct Avx512(#[cfg(not(target_arch = "x86_64"))] Never, #[cfg(target_arch = "x86_64")] ());

/// aarch64 Advanced SIMD (every 64-bit ARM CPU, Apple silicon included).
#[derive(Clone, Copy, Debug)]
pub struct Neon(#[cfg(not(target_arch = "aarch64"))] Never, #[cfg(target_arch = "aarch64")] ());

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Avx2, Avx512, Kernel, Simd};

    impl Avx2 {
        /// The token, if this CPU has AVX2 and FMA.
        pub fn try_new() -> Option<Self> {
            (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
                .then_some(Avx2(()))
        }

        /// # Safety
        /// The CPU must support AVX2 and FMA.
        pub unsafe fn new_unchecked() -> Self {
            Avx2(())
        }

        /// Runs `k` compiled with AVX2 and FMA enabled.
        #[inline]
        pub fn vectorize<K: Kernel>(self, k: K) -> K::Output {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn go<K: Kernel>(s: Avx2, k: K) -> K::Output {
                k.run(s)
            }
            // SAFETY: the token exists only where the CPU has AVX2 and FMA.
            unsafe { go(self, k) }
        }
    }

    impl Avx512 {
        /// The token, if this CPU has AVX-512F (and so AVX2 and FMA).
        pub fn try_new() -> Option<Self> {
            (is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma"))
            .then_some(Avx512(()))
        }

        /// # Safety
        /// The CPU must support AVX-512F, AVX2 and FMA.
        pub unsafe fn new_unchecked() -> Self {
            Avx512(())
        }

        /// Runs `k` compiled with AVX-512F enabled.
        #[inline]
        pub fn vectorize<K: Kernel>(self, k: K) -> K::Output {
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn go<K: Kernel>(s: Avx512, k: K) -> K::Output {
                k.run(s)
            }
            // SAFETY: the token exists only where the CPU has AVX-512F, AVX2 and FMA.
            unsafe { go(self, k) }
        }
    }

    // SAFETY (every block in these impls): a value of the token type exists only where the
    // CPU supports its features (see `try_new`), and the memory operations' bounds are the
    // callers' contracts.
    impl Simd for Avx2 {
        type V = __m256;
        const LANES: usize = 8;
        const NV: usize = 2;
        const FMA: bool = true;

        #[inline(always)]
        fn splat(self, x: f32) -> __m256 {
            // SAFETY: see the impl's note.
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f32) -> __m256 {
            // SAFETY: see the impl's note.
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, v: __m256) {
            // SAFETY: see the impl's note.
            unsafe { _mm256_storeu_ps(p, v) }
        }
        #[inline(always)]
        fn mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
            // SAFETY: see the impl's note.
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn add(self, a: __m256, b: __m256) -> __m256 {
            // SAFETY: see the impl's note.
            unsafe { _mm256_add_ps(a, b) }
        }
        #[inline(always)]
        fn mul(self, a: __m256, b: __m256) -> __m256 {
            // SAFETY: see the impl's note.
            unsafe { _mm256_mul_ps(a, b) }
        }
        #[inline(always)]
        fn sum(self, v: __m256) -> f32 {
            // SAFETY: see the impl's note.
            unsafe {
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
            }
        }
    }

    impl Simd for Avx512 {
        type V = __m512;
        const LANES: usize = 16;
        const NV: usize = 2;
        const NV_WIDE: usize = 4;
        const FMA: bool = true;

        #[inline(always)]
        fn splat(self, x: f32) -> __m512 {
            // SAFETY: see the impl's note.
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f32) -> __m512 {
            // SAFETY: see the impl's note.
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, v: __m512) {
            // SAFETY: see the impl's note.
            unsafe { _mm512_storeu_ps(p, v) }
        }
        #[inline(always)]
        fn mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
            // SAFETY: see the impl's note.
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn add(self, a: __m512, b: __m512) -> __m512 {
            // SAFETY: see the impl's note.
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        fn mul(self, a: __m512, b: __m512) -> __m512 {
            // SAFETY: see the impl's note.
            unsafe { _mm512_mul_ps(a, b) }
        }
        #[inline(always)]
        fn sum(self, v: __m512) -> f32 {
            // SAFETY: see the impl's note.
            unsafe { _mm512_reduce_add_ps(v) }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    use super::{Kernel, Neon, Simd};

    impl Neon {
        /// The token, if this CPU has Advanced SIMD (every aarch64 Linux and macOS CPU).
        pub fn try_new() -> Option<Self> {
            std::arch::is_aarch64_feature_detected!("neon").then_some(Neon(()))
        }

        /// # Safety
        /// The CPU must support Advanced SIMD.
        pub unsafe fn new_unchecked() -> Self {
            Neon(())
        }

        /// Runs `k` compiled with NEON enabled.
        #[inline]
        pub fn vectorize<K: Kernel>(self, k: K) -> K::Output {
            #[target_feature(enable = "neon")]
            unsafe fn go<K: Kernel>(s: Neon, k: K) -> K::Output {
                k.run(s)
            }
            // SAFETY: the token exists only where the CPU has NEON.
            unsafe { go(self, k) }
        }
    }

    // SAFETY (every block in this impl): a `Neon` value exists only where the CPU has NEON,
    // and the memory operations' bounds are the callers' contracts.
    impl Simd for Neon {
        type V = float32x4_t;
        const LANES: usize = 4;
        const NV: usize = 4;
        const FMA: bool = true;

        #[inline(always)]
        fn splat(self, x: f32) -> float32x4_t {
            // SAFETY: see the impl's note.
            unsafe { vdupq_n_f32(x) }
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f32) -> float32x4_t {
            // SAFETY: see the impl's note.
            unsafe { vld1q_f32(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, v: float32x4_t) {
            // SAFETY: see the impl's note.
            unsafe { vst1q_f32(p, v) }
        }
        #[inline(always)]
        fn mul_add(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
            // SAFETY: see the impl's note.
            unsafe { vfmaq_f32(c, a, b) }
        }
        #[inline(always)]
        fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // SAFETY: see the impl's note.
            unsafe { vaddq_f32(a, b) }
        }
        #[inline(always)]
        fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // SAFETY: see the impl's note.
            unsafe { vmulq_f32(a, b) }
        }
        #[inline(always)]
        fn sum(self, v: float32x4_t) -> f32 {
            // SAFETY: see the impl's note.
            unsafe { vaddvq_f32(v) }
        }
    }
}

/// The tokens of ISAs that this target never has: no value exists, so none of this runs.
macro_rules! absent {
    ($ty:ident, $v:ty, $lanes:expr) => {
        impl $ty {
            pub fn try_new() -> Option<Self> {
                None
            }

            /// # Safety
            /// Never sound to call: this target has no such instruction set.
            pub unsafe fn new_unchecked() -> Self {
                unreachable!(concat!(stringify!($ty), " on a target without it"))
            }

            pub fn vectorize<K: Kernel>(self, _k: K) -> K::Output {
                match self.0 {}
            }
        }

        impl Simd for $ty {
            type V = $v;
            const LANES: usize = $lanes;
            const NV: usize = 1;
            const FMA: bool = false;
            fn splat(self, _x: f32) -> $v {
                match self.0 {}
            }
            unsafe fn load(self, _p: *const f32) -> $v {
                match self.0 {}
            }
            unsafe fn store(self, _p: *mut f32, _v: $v) {
                match self.0 {}
            }
            fn mul_add(self, _a: $v, _b: $v, _c: $v) -> $v {
                match self.0 {}
            }
            fn add(self, _a: $v, _b: $v) -> $v {
                match self.0 {}
            }
            fn mul(self, _a: $v, _b: $v) -> $v {
                match self.0 {}
            }
            fn sum(self, _v: $v) -> f32 {
                match self.0 {}
            }
        }
    };
}

#[cfg(not(target_arch = "x86_64"))]
absent!(Avx2, [f32; 8], 8);
#[cfg(not(target_arch = "x86_64"))]
absent!(Avx512, [f32; 16], 16);
#[cfg(not(target_arch = "aarch64"))]
absent!(Neon, [f32; 4], 4);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Cpu;

    struct Ops;

    impl Kernel for Ops {
        type Output = (Vec<f32>, f32, Vec<f32>);
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> Self::Output {
            let n = S::LANES;
            let a: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| 2.0 - i as f32).collect();
            // SAFETY: a and b hold LANES values; out too.
            let (va, vb) = unsafe { (s.load(a.as_ptr()), s.load(b.as_ptr())) };
            let r = s.add(s.mul_add(va, vb, s.splat(1.0)), s.mul(va, s.zero()));
            let mut out = vec![0.0; n];
            // SAFETY: as above.
            unsafe { s.store(out.as_mut_ptr(), r) };
            let mut part = vec![9.0; 3.min(n)];
            let m = part.len();
            s.store_partial(&mut part, s.load_partial(&a[..m]));
            (out, s.sum(va), part)
        }
    }

    /// Each ISA's operations give the plain arithmetic's answers, lane by lane.
    #[test]
    fn every_isa_computes_the_same_lanes() {
        for cpu in Cpu::all() {
            let (out, sum, part) = cpu.run(Ops);
            let n = out.len();
            for (i, v) in out.iter().enumerate() {
                let a = i as f32 + 0.5;
                assert_eq!(*v, a * (2.0 - i as f32) + 1.0, "{:?} lane {i}", cpu.isa());
            }
            assert_eq!(sum, (0..n).map(|i| i as f32 + 0.5).sum::<f32>(), "{:?} sum", cpu.isa());
            assert_eq!(part, vec![0.5, 1.5, 2.5][..part.len()].to_vec(), "{:?} partial", cpu.isa());
        }
    }
}
