//! Embedding tables that several threads update in place without locks ("Hogwild", Recht et al.
//! 2011), as word2vec.c and gensim train word2vec.
//!
//! The races Hogwild accepts by design (two threads updating one row) must be defined behaviour,
//! so every access to a table is atomic (relaxed); the question is only how wide. Rows are held in
//! 16-byte-aligned blocks of four f32 and accessed in one of two ways, fixed per table:
//!
//! - **Vector** (x86-64 with AVX, aarch64 with NEON): one aligned 16-byte vector load or store
//!   per block, in inline assembly. x86-64 CPUs that have AVX perform aligned 16-byte `vmovaps`
//!   accesses atomically (Intel SDM vol. 3A §9.1.1, AMD APM vol. 2 §7.3.2; the guarantee the
//!   `portable-atomic` crate's 128-bit atomics rest on), so each is a relaxed atomic access of the
//!   whole block. On aarch64 a 128-bit `ldr q`/`str q` of 8-byte-aligned memory is a pair of
//!   single-copy-atomic 64-bit accesses (Arm ARM B2.2.1), the same as two relaxed `AtomicU64`
//!   operations: the table mixes it only with those, never with another size.
//! - **Pairs** (everything else, and `BURNLAB_ISA=plain`): relaxed `AtomicU64` loads and stores
//!   of two values at a time, through which the arithmetic runs in scalar registers. Measured on
//!   a Zen 3: the vector form runs word2vec ~1.6× as fast as this one, which is what the racy
//!   plain-float code it replaced ran at; one `AtomicU32` per value was slower still.
//!
//! Rust's atomics have no vector form, hence the assembly; Rust's memory model treats each block
//! instruction as the atomic access it is, and no other access of a different size touches the
//! same memory while the table is shared.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::{Cpu, Isa};

/// Four values, 16-byte aligned: the unit of a vector access (two `AtomicU64` for pairs).
#[repr(C, align(16))]
struct Block([AtomicU64; 2]);

/// How a table's memory is accessed (one way for its whole life, so sizes never mix).
#[derive(Clone, Copy, Debug)]
enum Access {
    Pairs,
    #[cfg(target_arch = "x86_64")]
    Avx(crate::simd::Avx2),
    #[cfg(target_arch = "aarch64")]
    Neon(crate::simd::Neon),
}

impl Access {
    fn detect() -> Access {
        // Miri runs no inline assembly; the pairs are the same table to it.
        if cfg!(miri) {
            return Access::Pairs;
        }
        match Cpu::current() {
            #[cfg(target_arch = "x86_64")]
            Cpu::Avx512(_) | Cpu::Avx2(_) => {
                crate::simd::Avx2::try_new().map_or(Access::Pairs, Access::Avx)
            }
            #[cfg(target_arch = "aarch64")]
            Cpu::Neon(n) => Access::Neon(n),
            _ => Access::Pairs,
        }
    }

    fn isa(self) -> Isa {
        match self {
            Access::Pairs => Isa::Plain,
            #[cfg(target_arch = "x86_64")]
            Access::Avx(_) => Isa::Avx2,
            #[cfg(target_arch = "aarch64")]
            Access::Neon(_) => Isa::Neon,
        }
    }
}

/// A [rows, dim] f32 table shared by Hogwild threads (rows padded to whole blocks).
pub struct HogwildTable {
    dim: usize,
    /// Blocks per row: dim / 4 rounded up.
    blocks: usize,
    data: Vec<Block>,
    access: Access,
}

#[inline(always)]
fn pack(a: f32, b: f32) -> u64 {
    a.to_bits() as u64 | (b.to_bits() as u64) << 32
}

#[inline(always)]
fn unpack(v: u64) -> (f32, f32) {
    (f32::from_bits(v as u32), f32::from_bits((v >> 32) as u32))
}

impl HogwildTable {
    /// A table holding `values` (row-major, a multiple of `dim` long), accessed the fastest
    /// way this CPU (as [`Cpu::current`] sees it) allows.
    pub fn new(values: &[f32], dim: usize) -> Self {
        Self::with_access(values, dim, Access::detect())
    }

    fn with_access(values: &[f32], dim: usize, access: Access) -> Self {
        assert!(
            dim > 0 && values.len().is_multiple_of(dim),
            "hogwild table: {} values are not rows of {dim}",
            values.len()
        );
        let blocks = dim.div_ceil(4);
        let at = |row: &[f32], j: usize| row.get(j).copied().unwrap_or(0.0);
        let data = values
            .chunks_exact(dim)
            .flat_map(|row| {
                (0..blocks).map(move |b| {
                    Block([
                        AtomicU64::new(pack(at(row, 4 * b), at(row, 4 * b + 1))),
                        AtomicU64::new(pack(at(row, 4 * b + 2), at(row, 4 * b + 3))),
                    ])
                })
            })
            .collect();
        Self { dim, blocks, data, access }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rows(&self) -> usize {
        self.data.len() / self.blocks
    }

    /// How rows are loaded and stored: `avx2`/`neon` for vector blocks, `plain` for pairs.
    pub fn isa(&self) -> Isa {
        self.access.isa()
    }

    /// The values, row-major.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows() * self.dim];
        for (i, row) in out.chunks_exact_mut(self.dim).enumerate() {
            self.read(i as u32, row);
        }
        out
    }

    fn row(&self, i: u32) -> &[Block] {
        &self.data[i as usize * self.blocks..(i as usize + 1) * self.blocks]
    }

    /// Row `i` as `AtomicU64` pairs (the first dim/2 rounded up of them).
    fn pairs(&self, i: u32) -> &[AtomicU64] {
        self.row(i).as_flattened_pairs(self.dim.div_ceil(2))
    }

    /// Row `i` into `out` (a snapshot: other threads may be writing it).
    #[inline]
    pub fn read(&self, i: u32, out: &mut [f32]) {
        assert_eq!(out.len(), self.dim, "hogwild read: row length");
        let row = self.row(i);
        match self.access {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token proves AVX and FMA; `row` holds dim.div_ceil(4) blocks and `out`
            // dim values (asserted above).
            Access::Avx(_) => unsafe { avx::read_dot(row, None, out) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: the token proves NEON; lengths as asserted above.
            Access::Neon(_) => unsafe { neon::read_dot(row, None, out) },
            Access::Pairs => {
                let row = self.pairs(i);
                let (pairs, tail) = out.as_chunks_mut::<2>();
                for (o, v) in pairs.iter_mut().zip(row) {
                    let (a, b) = unpack(v.load(Relaxed));
                    *o = [a, b];
                }
                if let (Some(t), Some(v)) = (tail.first_mut(), row.last()) {
                    *t = unpack(v.load(Relaxed)).0;
                }
                0.0
            }
        };
    }

    /// Row `i` into `out` and its dot product with `h`, in one pass: the arithmetic runs on
    /// the values as they are loaded, so nothing reads `out` back right after the scalar stores
    /// that wrote it (a vector load of values just stored one by one stalls on store
    /// forwarding: reading first, then a vectorised dot, measured 40% slower word2vec).
    #[inline]
    pub fn read_dot(&self, i: u32, h: &[f32], out: &mut [f32]) -> f32 {
        assert!(out.len() == self.dim && h.len() == self.dim, "hogwild read_dot: row length");
        match self.access {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token proves AVX and FMA; lengths as asserted above.
            Access::Avx(_) => unsafe { avx::read_dot(self.row(i), Some(h), out) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: the token proves NEON; lengths as asserted above.
            Access::Neon(_) => unsafe { neon::read_dot(self.row(i), Some(h), out) },
            Access::Pairs => {
                let row = self.pairs(i);
                let mut acc = [0f32; 8];
                let (pairs, tail) = out.as_chunks_mut::<2>();
                let (hp, ht) = h.as_chunks::<2>();
                for (j, ((o, v), x)) in pairs.iter_mut().zip(row).zip(hp).enumerate() {
                    let (a, b) = unpack(v.load(Relaxed));
                    *o = [a, b];
                    let l = 2 * (j % 4);
                    acc[l] += a * x[0];
                    acc[l + 1] += b * x[1];
                }
                let mut sum = acc.iter().sum::<f32>();
                if let (Some(t), Some(v), Some(x)) = (tail.first_mut(), row.last(), ht.first()) {
                    *t = unpack(v.load(Relaxed)).0;
                    sum += *t * x;
                }
                sum
            }
        }
    }

    /// Row `i` ← `values`.
    #[inline]
    pub fn write(&self, i: u32, values: &[f32]) {
        assert_eq!(values.len(), self.dim, "hogwild write: row length");
        match self.access {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token proves AVX and FMA; lengths as asserted above.
            Access::Avx(_) => unsafe { avx::axpy(self.row(i), None, values) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: the token proves NEON; lengths as asserted above.
            Access::Neon(_) => unsafe { neon::axpy(self.row(i), None, values) },
            Access::Pairs => {
                let row = self.pairs(i);
                let (pairs, tail) = values.as_chunks::<2>();
                for (v, x) in row.iter().zip(pairs) {
                    v.store(pack(x[0], x[1]), Relaxed);
                }
                if let (Some(&t), Some(v)) = (tail.first(), row.last()) {
                    v.store(pack(t, 0.0), Relaxed);
                }
            }
        }
    }

    /// Row `i` += a·x (a load and a store per block or pair; a concurrent update of the same
    /// values by another thread can be lost, which Hogwild tolerates).
    #[inline]
    pub fn axpy(&self, i: u32, a: f32, x: &[f32]) {
        assert_eq!(x.len(), self.dim, "hogwild axpy: row length");
        match self.access {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token proves AVX and FMA; lengths as asserted above.
            Access::Avx(_) => unsafe { avx::axpy(self.row(i), Some(a), x) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: the token proves NEON; lengths as asserted above.
            Access::Neon(_) => unsafe { neon::axpy(self.row(i), Some(a), x) },
            Access::Pairs => {
                let row = self.pairs(i);
                let (pairs, tail) = x.as_chunks::<2>();
                for (v, x) in row.iter().zip(pairs) {
                    let (p, q) = unpack(v.load(Relaxed));
                    v.store(pack(p + a * x[0], q + a * x[1]), Relaxed);
                }
                if let (Some(&t), Some(v)) = (tail.first(), row.last()) {
                    let (p, _) = unpack(v.load(Relaxed));
                    v.store(pack(p + a * t, 0.0), Relaxed);
                }
            }
        }
    }
}

impl HogwildTable {
    /// `acc` += row `i` (CBOW's sum of the context rows), without a copy of the row.
    #[inline]
    pub fn add_into(&self, i: u32, acc: &mut [f32]) {
        assert_eq!(acc.len(), self.dim, "hogwild add_into: row length");
        match self.access {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token proves AVX and FMA; lengths as asserted above.
            Access::Avx(_) => unsafe { avx::add_into(self.row(i), acc) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: the token proves NEON; lengths as asserted above.
            Access::Neon(_) => unsafe { neon::add_into(self.row(i), acc) },
            Access::Pairs => {
                let row = self.pairs(i);
                let (pairs, tail) = acc.as_chunks_mut::<2>();
                for (o, v) in pairs.iter_mut().zip(row) {
                    let (a, b) = unpack(v.load(Relaxed));
                    o[0] += a;
                    o[1] += b;
                }
                if let (Some(t), Some(v)) = (tail.first_mut(), row.last()) {
                    *t += unpack(v.load(Relaxed)).0;
                }
            }
        }
    }

    /// One negative-sampling step on row `i`, whose values `o` were just read: `e` += g·o and
    /// row `i` ← o + g·h, in one pass (word2vec.c's and gensim's inner update).
    #[inline]
    pub fn update(&self, i: u32, g: f32, o: &[f32], h: &[f32], e: &mut [f32]) {
        assert!(
            o.len() == self.dim && h.len() == self.dim && e.len() == self.dim,
            "hogwild update: row length"
        );
        match self.access {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token proves AVX and FMA; lengths as asserted above.
            Access::Avx(_) => unsafe { avx::update(self.row(i), g, o, h, e) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: the token proves NEON; lengths as asserted above.
            Access::Neon(_) => unsafe { neon::update(self.row(i), g, o, h, e) },
            Access::Pairs => {
                axpy(g, o, e);
                let row = self.pairs(i);
                let ((op, ot), (hp, ht)) = (o.as_chunks::<2>(), h.as_chunks::<2>());
                for ((v, o), h) in row.iter().zip(op).zip(hp) {
                    v.store(pack(o[0] + g * h[0], o[1] + g * h[1]), Relaxed);
                }
                if let (Some(o), Some(h), Some(v)) = (ot.first(), ht.first(), row.last()) {
                    v.store(pack(o + g * h, 0.0), Relaxed);
                }
            }
        }
    }
}

trait FlattenPairs {
    fn as_flattened_pairs(&self, n: usize) -> &[AtomicU64];
}

impl FlattenPairs for [Block] {
    /// The first `n` pairs of these blocks.
    fn as_flattened_pairs(&self, n: usize) -> &[AtomicU64] {
        assert!(n <= 2 * self.len());
        // SAFETY: `Block` is `repr(C)` around `[AtomicU64; 2]` (size 16, no padding), so a slice of
        // blocks is 2·len contiguous, aligned `AtomicU64`s borrowed for the same lifetime.
        unsafe { std::slice::from_raw_parts(self.as_ptr().cast::<AtomicU64>(), n) }
    }
}

/// Four lanes with a block's atomic load and store: what the vector row loops need of an ISA.
///
/// Each loop is written once (in `vector`), generic over this, and compiled per ISA inside a
/// `#[target_feature]` entry point (`entries!`), where these `#[inline(always)]` methods become
/// single instructions.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
trait Quad: Copy {
    type V: Copy;
    /// # Safety
    /// The CPU must have the ISA.
    unsafe fn load_block(self, b: &Block) -> Self::V;
    /// # Safety
    /// The CPU must have the ISA.
    unsafe fn store_block(self, b: &Block, v: Self::V);
    /// # Safety
    /// `p..p + 4` readable; the CPU must have the ISA.
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// # Safety
    /// `p..p + 4` writable; the CPU must have the ISA.
    unsafe fn store(self, p: *mut f32, v: Self::V);
    fn splat(self, x: f32) -> Self::V;
    /// a·b + c, fused.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sum(self, v: Self::V) -> f32;
}

/// The four row loops of one ISA, compiled with its target features around the generic loops.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! entries {
    ($features:literal, $quad:expr) => {
        /// # Safety
        /// The CPU must have the ISA; lengths as `vector::read_dot` asserts.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn read_dot(
            row: &[super::Block],
            h: Option<&[f32]>,
            out: &mut [f32],
        ) -> f32 {
            // SAFETY: the caller's contract.
            unsafe { super::vector::read_dot($quad, row, h, out) }
        }
        /// # Safety
        /// The CPU must have the ISA; lengths as `vector::axpy` asserts.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn axpy(row: &[super::Block], a: Option<f32>, x: &[f32]) {
            // SAFETY: the caller's contract.
            unsafe { super::vector::axpy($quad, row, a, x) }
        }
        /// # Safety
        /// The CPU must have the ISA; lengths as `vector::update` asserts.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn update(
            row: &[super::Block],
            g: f32,
            o: &[f32],
            h: &[f32],
            e: &mut [f32],
        ) {
            // SAFETY: the caller's contract.
            unsafe { super::vector::update($quad, row, g, o, h, e) }
        }
        /// # Safety
        /// The CPU must have the ISA; lengths as `vector::add_into` asserts.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn add_into(row: &[super::Block], acc: &mut [f32]) {
            // SAFETY: the caller's contract.
            unsafe { super::vector::add_into($quad, row, acc) }
        }
    };
}

/// x86-64 blocks: one aligned 16-byte `vmovaps` per block, atomic on every CPU with AVX.
#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::asm;
    use std::arch::x86_64::*;

    use super::{Block, Quad};

    /// Used only inside `entries!`' AVX + FMA functions, which only an `Avx2` token reaches.
    #[derive(Clone, Copy)]
    struct Avx;

    impl Quad for Avx {
        type V = __m128;

        #[inline(always)]
        unsafe fn load_block(self, b: &Block) -> __m128 {
            let v: __m128;
            // SAFETY: `b` is a live, 16-byte aligned block (its type's alignment); AVX makes the
            // aligned 16-byte load one atomic access (module docs); it only reads that memory.
            unsafe {
                asm!("vmovaps {v}, xmmword ptr [{p}]", p = in(reg) b, v = out(xmm_reg) v, options(nostack, preserves_flags, readonly))
            };
            v
        }
        #[inline(always)]
        unsafe fn store_block(self, b: &Block, v: __m128) {
            // SAFETY: as in `load_block`; the block's atomics make writing through `&Block`
            // legitimate (interior mutability), and the store is one atomic access.
            unsafe {
                asm!("vmovaps xmmword ptr [{p}], {v}", p = in(reg) b, v = in(xmm_reg) v, options(nostack, preserves_flags))
            };
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f32) -> __m128 {
            // SAFETY: the caller's contract.
            unsafe { _mm_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, v: __m128) {
            // SAFETY: the caller's contract.
            unsafe { _mm_storeu_ps(p, v) }
        }
        #[inline(always)]
        fn splat(self, x: f32) -> __m128 {
            // SAFETY: SSE is baseline on x86-64.
            unsafe { _mm_set1_ps(x) }
        }
        #[inline(always)]
        fn mul_add(self, a: __m128, b: __m128, c: __m128) -> __m128 {
            // SAFETY: only called inside the AVX + FMA entry points (see the type's note).
            unsafe { _mm_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn add(self, a: __m128, b: __m128) -> __m128 {
            // SAFETY: SSE is baseline on x86-64.
            unsafe { _mm_add_ps(a, b) }
        }
        #[inline(always)]
        fn sum(self, v: __m128) -> f32 {
            let mut t = [0f32; 4];
            // SAFETY: `t` holds four values; SSE is baseline on x86-64.
            unsafe { _mm_storeu_ps(t.as_mut_ptr(), v) };
            t.iter().sum()
        }
    }

    entries!("avx,fma", Avx);
}

/// aarch64 blocks: one `ldr q`/`str q` per block, two single-copy-atomic 64-bit accesses.
#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;
    use std::arch::asm;

    use super::{Block, Quad};

    /// Used only inside `entries!`' NEON functions, which only a `Neon` token reaches.
    #[derive(Clone, Copy)]
    struct Neon;

    impl Quad for Neon {
        type V = float32x4_t;

        #[inline(always)]
        unsafe fn load_block(self, b: &Block) -> float32x4_t {
            let v: float32x4_t;
            // SAFETY: `b` is a live, 16-byte aligned block; the load is two single-copy-atomic
            // 64-bit reads (module docs), the size the pairs use; it only reads.
            unsafe {
                asm!("ldr {v:q}, [{p}]", p = in(reg) b, v = out(vreg) v, options(nostack, preserves_flags, readonly))
            };
            v
        }
        #[inline(always)]
        unsafe fn store_block(self, b: &Block, v: float32x4_t) {
            // SAFETY: as in `load_block`; writing through `&Block` is the atomics' interior
            // mutability.
            unsafe {
                asm!("str {v:q}, [{p}]", p = in(reg) b, v = in(vreg) v, options(nostack, preserves_flags))
            };
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f32) -> float32x4_t {
            // SAFETY: the caller's contract.
            unsafe { vld1q_f32(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, v: float32x4_t) {
            // SAFETY: the caller's contract.
            unsafe { vst1q_f32(p, v) }
        }
        #[inline(always)]
        fn splat(self, x: f32) -> float32x4_t {
            // SAFETY: NEON is baseline on aarch64.
            unsafe { vdupq_n_f32(x) }
        }
        #[inline(always)]
        fn mul_add(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
            // SAFETY: NEON is baseline on aarch64.
            unsafe { vfmaq_f32(c, a, b) }
        }
        #[inline(always)]
        fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // SAFETY: NEON is baseline on aarch64.
            unsafe { vaddq_f32(a, b) }
        }
        #[inline(always)]
        fn sum(self, v: float32x4_t) -> f32 {
            // SAFETY: NEON is baseline on aarch64.
            unsafe { vaddvq_f32(v) }
        }
    }

    entries!("neon", Neon);
}

/// The vector row loops, once for every ISA (each block one atomic access via [`Quad`]).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod vector {
    use super::{Block, Quad};

    /// Loads `row` into `out` and, with `h`, returns Σ row·h.
    ///
    /// # Safety
    /// The CPU must have `Q`'s ISA; `row.len() == out.len().div_ceil(4)` and `h` (if any) as
    /// long as `out` (asserted).
    #[inline(always)]
    pub(super) unsafe fn read_dot<Q: Quad>(
        q: Q,
        row: &[Block],
        h: Option<&[f32]>,
        out: &mut [f32],
    ) -> f32 {
        let n = out.len();
        assert!(row.len() == n.div_ceil(4) && h.is_none_or(|h| h.len() == n));
        let (o, full) = (out.as_mut_ptr(), n / 4);
        let (mut acc0, mut acc1) = (q.splat(0.0), q.splat(0.0));
        for (j, block) in row[..full].iter().enumerate() {
            // SAFETY: j < n/4, so block j and values 4j..4j+4 are in bounds; the ISA by contract.
            unsafe {
                let v = q.load_block(block);
                q.store(o.add(4 * j), v);
                if let Some(h) = h {
                    let x = q.load(h.as_ptr().add(4 * j));
                    if j % 2 == 0 {
                        acc0 = q.mul_add(v, x, acc0);
                    } else {
                        acc1 = q.mul_add(v, x, acc1);
                    }
                }
            }
        }
        let mut sum = q.sum(q.add(acc0, acc1));
        if full < row.len() {
            let mut t = [0f32; 4];
            // SAFETY: the last (partial) block is in bounds, `t` holds four; ISA by contract.
            unsafe { q.store(t.as_mut_ptr(), q.load_block(&row[full])) };
            for k in 4 * full..n {
                out[k] = t[k - 4 * full];
                sum += h.map_or(0.0, |h| out[k] * h[k]);
            }
        }
        sum
    }

    /// `row` += a·x, or with `a` None `row` ← x.
    ///
    /// # Safety
    /// The CPU must have `Q`'s ISA; `row.len() == x.len().div_ceil(4)` (asserted).
    #[inline(always)]
    pub(super) unsafe fn axpy<Q: Quad>(q: Q, row: &[Block], a: Option<f32>, x: &[f32]) {
        let n = x.len();
        assert!(row.len() == n.div_ceil(4));
        let full = n / 4;
        let av = q.splat(a.unwrap_or(0.0));
        for (j, block) in row[..full].iter().enumerate() {
            // SAFETY: j < n/4: block j and values 4j..4j+4 are in bounds; ISA by contract.
            unsafe {
                let xv = q.load(x.as_ptr().add(4 * j));
                let v = if a.is_some() { q.mul_add(av, xv, q.load_block(block)) } else { xv };
                q.store_block(block, v);
            }
        }
        if full < row.len() {
            let mut t = [0f32; 4];
            // SAFETY: the last block is in bounds, `t` holds four; ISA by contract.
            unsafe {
                if a.is_some() {
                    q.store(t.as_mut_ptr(), q.load_block(&row[full]));
                }
                for k in 4 * full..n {
                    t[k - 4 * full] += a.unwrap_or(1.0) * x[k];
                }
                // The padding lanes stay zero.
                t[n - 4 * full..].fill(0.0);
                q.store_block(&row[full], q.load(t.as_ptr()));
            }
        }
    }

    /// `e` += g·o; `row` ← o + g·h.
    ///
    /// # Safety
    /// The CPU must have `Q`'s ISA; `o`, `h`, `e` equally long and `row.len()` that length
    /// divided by 4, rounded up (asserted).
    #[inline(always)]
    pub(super) unsafe fn update<Q: Quad>(
        q: Q,
        row: &[Block],
        g: f32,
        o: &[f32],
        h: &[f32],
        e: &mut [f32],
    ) {
        let n = o.len();
        assert!(h.len() == n && e.len() == n && row.len() == n.div_ceil(4));
        let (full, gv) = (n / 4, q.splat(g));
        for (j, block) in row[..full].iter().enumerate() {
            // SAFETY: j < n/4: block j and values 4j..4j+4 of each slice are in bounds; ISA by
            // contract.
            unsafe {
                let (ov, hv) = (q.load(o.as_ptr().add(4 * j)), q.load(h.as_ptr().add(4 * j)));
                let ep = e.as_mut_ptr().add(4 * j);
                q.store(ep, q.mul_add(gv, ov, q.load(ep)));
                q.store_block(block, q.mul_add(gv, hv, ov));
            }
        }
        if full < row.len() {
            let mut t = [0f32; 4];
            for k in 4 * full..n {
                e[k] += g * o[k];
                t[k - 4 * full] = o[k] + g * h[k];
            }
            // SAFETY: the last block is in bounds, `t` holds four (padding zero); ISA by contract.
            unsafe { q.store_block(&row[full], q.load(t.as_ptr())) };
        }
    }

    /// `acc` += `row`.
    ///
    /// # Safety
    /// The CPU must have `Q`'s ISA; `row.len() == acc.len().div_ceil(4)` (asserted).
    #[inline(always)]
    pub(super) unsafe fn add_into<Q: Quad>(q: Q, row: &[Block], acc: &mut [f32]) {
        let n = acc.len();
        assert!(row.len() == n.div_ceil(4));
        let full = n / 4;
        for (j, block) in row[..full].iter().enumerate() {
            // SAFETY: j < n/4: block j and values 4j..4j+4 are in bounds; ISA by contract.
            unsafe {
                let p = acc.as_mut_ptr().add(4 * j);
                q.store(p, q.add(q.load(p), q.load_block(block)));
            }
        }
        if full < row.len() {
            let mut t = [0f32; 4];
            // SAFETY: the last block is in bounds, `t` holds four; ISA by contract.
            unsafe { q.store(t.as_mut_ptr(), q.load_block(&row[full])) };
            acc[4 * full..].iter_mut().zip(t).for_each(|(a, t)| *a += t);
        }
    }
}

/// Σ a[i]·b[i] in eight lanes (the compiler vectorises it).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            s[k] += x[k] * y[k];
        }
    }
    let mut t: f32 = s.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        t += x * y;
    }
    t
}

/// y += a·x.
#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way this CPU can access a table: the pairs, and the vector blocks where it has them.
    fn accesses() -> Vec<Access> {
        let best = Access::detect();
        if matches!(best, Access::Pairs) { vec![Access::Pairs] } else { vec![Access::Pairs, best] }
    }

    #[test]
    fn rows_read_write_and_accumulate() {
        for access in accesses() {
            // An odd width: the last value of each row sits alone in its block.
            let t = HogwildTable::with_access(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, access);
            assert_eq!((t.rows(), t.dim()), (2, 3));
            let mut r = [0.0; 3];
            t.read(1, &mut r);
            assert_eq!(r, [4.0, 5.0, 6.0]);
            t.axpy(0, 2.0, &[1.0, 0.5, -1.0]);
            t.write(1, &[7.0, 8.0, 9.0]);
            assert_eq!(t.to_vec(), vec![3.0, 3.0, 1.0, 7.0, 8.0, 9.0]);
            let mut r = [0.0; 3];
            assert_eq!(t.read_dot(1, &[1.0, 0.5, 2.0], &mut r), 7.0 + 4.0 + 18.0);
            assert_eq!(r, [7.0, 8.0, 9.0]);
        }
    }

    /// Widths around the block and pair sizes, against plain arithmetic on a copy.
    #[test]
    fn every_width_matches_plain_sums() {
        for access in accesses() {
            for dim in [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 20, 100, 101] {
                let rows = 3;
                let mut want: Vec<f32> = (0..rows * dim).map(|i| (i % 7) as f32 - 3.0).collect();
                let t = HogwildTable::with_access(&want, dim, access);
                let h: Vec<f32> = (0..dim).map(|i| (i % 5) as f32 * 0.5).collect();
                let mut out = vec![0.0; dim];
                let dot = t.read_dot(1, &h, &mut out);
                assert_eq!(out, want[dim..2 * dim], "{access:?} dim {dim}");
                let plain: f32 = out.iter().zip(&h).map(|(a, b)| a * b).sum();
                assert!(
                    (dot - plain).abs() <= 1e-4 * (1.0 + plain.abs()),
                    "{access:?} dim {dim}: {dot} vs {plain}"
                );
                t.axpy(2, 0.5, &h);
                want[2 * dim..].iter_mut().zip(&h).for_each(|(w, h)| *w += 0.5 * h);
                t.write(0, &h);
                want[..dim].copy_from_slice(&h);
                // update: e += g·o, row 1 ← o + g·h.
                let mut e: Vec<f32> = (0..dim).map(|i| i as f32).collect();
                t.update(1, 0.25, &out, &h, &mut e);
                for k in 0..dim {
                    assert_eq!(e[k], k as f32 + 0.25 * out[k], "{access:?} dim {dim}");
                    want[dim + k] = out[k] + 0.25 * h[k];
                }
                assert_eq!(t.to_vec(), want, "{access:?} dim {dim}");
                let mut acc = vec![1.0; dim];
                t.add_into(2, &mut acc);
                assert_eq!(
                    acc,
                    want[2 * dim..].iter().map(|w| w + 1.0).collect::<Vec<_>>(),
                    "{access:?} dim {dim}"
                );
                // The padding stays zero: a later dot cannot pick anything up from it.
                let mut r = vec![0.0; dim];
                t.read(2, &mut r);
                assert_eq!(r, want[2 * dim..]);
            }
        }
    }

    /// Threads adding to the same rows at once: defined behaviour (the point of the atomics),
    /// and with disjoint rows no update is lost.
    #[test]
    fn concurrent_updates_of_disjoint_rows_all_land() {
        for access in accesses() {
            let t = HogwildTable::with_access(&vec![0.0; 4 * 18], 18, access);
            let n = if cfg!(miri) { 20 } else { 1000 };
            std::thread::scope(|s| {
                for r in 0..4u32 {
                    let t = &t;
                    s.spawn(move || (0..n).for_each(|_| t.axpy(r, 1.0, &[1.0; 18])));
                }
            });
            assert!(t.to_vec().iter().all(|&v| v == n as f32), "{access:?}");
        }
    }

    /// The vector blocks wherever the CPU (as `BURNLAB_ISA` leaves it) has them.
    #[test]
    fn tables_use_the_vector_blocks_where_the_cpu_has_them() {
        let want = match Cpu::current().isa() {
            _ if cfg!(miri) => Isa::Plain,
            Isa::Avx512 | Isa::Avx2 => Isa::Avx2,
            isa => isa,
        };
        assert_eq!(HogwildTable::new(&[0.0; 8], 4).isa(), want);
    }

    #[test]
    fn dot_of_plain_slices() {
        assert_eq!(dot(&[1.0; 11], &(0..11).map(|i| i as f32).collect::<Vec<_>>()), 55.0);
    }

    #[test]
    #[should_panic(expected = "not rows of")]
    fn refuses_a_ragged_table() {
        HogwildTable::new(&[1.0; 5], 2);
    }
}
