//! Embedding tables that several threads update in place without locks ("Hogwild", Recht et al.
//! 2011), as word2vec.c and gensim train word2vec.
//!
//! Values are held two to an `AtomicU64` (a pair of f32 bit patterns), read and written with
//! relaxed loads and stores: on x86-64 and aarch64 those are the same plain moves as non-atomic
//! code, but the races Hogwild accepts by design (two threads updating one row) are defined
//! behaviour rather than undefined. What the atomics cost is vectorisation of the loads and
//! stores themselves: a row is copied into a local buffer (one scalar load per two values), the
//! arithmetic runs vectorised on the buffer, and the new row is stored back the same way. Pairs
//! rather than single values halve those scalar moves (measured: one `AtomicU32` per value ran
//! word2vec 40% slower than the racy plain-float code it replaced).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A [rows, dim] f32 table shared by Hogwild threads (rows padded to an even length).
pub struct HogwildTable {
    dim: usize,
    /// u64s per row: dim / 2 rounded up.
    pairs: usize,
    data: Vec<AtomicU64>,
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
    /// A table holding `values` (row-major, a multiple of `dim` long).
    pub fn new(values: &[f32], dim: usize) -> Self {
        assert!(dim > 0 && values.len().is_multiple_of(dim), "hogwild table: {} values are not rows of {dim}", values.len());
        let pairs = dim.div_ceil(2);
        let data = values.chunks_exact(dim).flat_map(|row| (0..pairs).map(move |j| AtomicU64::new(pack(row[2 * j], row.get(2 * j + 1).copied().unwrap_or(0.0))))).collect();
        Self { dim, pairs, data }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rows(&self) -> usize {
        self.data.len() / self.pairs
    }

    /// The values, row-major.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows() * self.dim];
        for (i, row) in out.chunks_exact_mut(self.dim).enumerate() {
            self.read(i as u32, row);
        }
        out
    }

    fn row(&self, i: u32) -> &[AtomicU64] {
        &self.data[i as usize * self.pairs..(i as usize + 1) * self.pairs]
    }

    /// Row `i` into `out` (a snapshot: other threads may be writing it).
    #[inline]
    pub fn read(&self, i: u32, out: &mut [f32]) {
        assert_eq!(out.len(), self.dim, "hogwild read: row length");
        let row = self.row(i);
        let (pairs, tail) = out.as_chunks_mut::<2>();
        for (o, v) in pairs.iter_mut().zip(row) {
            let (a, b) = unpack(v.load(Relaxed));
            *o = [a, b];
        }
        if let (Some(t), Some(v)) = (tail.first_mut(), row.last()) {
            *t = unpack(v.load(Relaxed)).0;
        }
    }

    /// Row `i` into `out` and its dot product with `h`, in one pass: the arithmetic runs on
    /// the values as they are loaded, so nothing reads `out` back right after the scalar stores
    /// that wrote it (a vector load of values just stored one by one stalls on store
    /// forwarding: reading first, then a vectorised dot, measured 40% slower word2vec).
    #[inline]
    pub fn read_dot(&self, i: u32, h: &[f32], out: &mut [f32]) -> f32 {
        assert!(out.len() == self.dim && h.len() == self.dim, "hogwild read_dot: row length");
        let row = self.row(i);
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

    /// Row `i` ← `values`.
    #[inline]
    pub fn write(&self, i: u32, values: &[f32]) {
        assert_eq!(values.len(), self.dim, "hogwild write: row length");
        let row = self.row(i);
        let (pairs, tail) = values.as_chunks::<2>();
        for (v, x) in row.iter().zip(pairs) {
            v.store(pack(x[0], x[1]), Relaxed);
        }
        if let (Some(&t), Some(v)) = (tail.first(), row.last()) {
            v.store(pack(t, 0.0), Relaxed);
        }
    }

    /// Row `i` += a·x (a load and a store per pair; a concurrent update of the same pair by
    /// another thread can be lost, which Hogwild tolerates).
    #[inline]
    pub fn axpy(&self, i: u32, a: f32, x: &[f32]) {
        assert_eq!(x.len(), self.dim, "hogwild axpy: row length");
        let row = self.row(i);
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

    #[test]
    fn rows_read_write_and_accumulate() {
        // An odd width: the last value of each row sits alone in its pair.
        let t = HogwildTable::new(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3);
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
        let t = HogwildTable::new(&(0..40).map(|i| i as f32).collect::<Vec<_>>(), 20);
        let mut r = [0.0; 20];
        assert_eq!(t.read_dot(1, &[1.0; 20], &mut r), (20..40).sum::<i32>() as f32);
        assert_eq!(dot(&[1.0; 11], &(0..11).map(|i| i as f32).collect::<Vec<_>>()), 55.0);
    }

    /// Threads adding to the same rows at once: defined behaviour (the point of the atomics),
    /// and with disjoint rows no update is lost.
    #[test]
    fn concurrent_updates_of_disjoint_rows_all_land() {
        let t = HogwildTable::new(&vec![0.0; 4 * 16], 16);
        std::thread::scope(|s| {
            for r in 0..4u32 {
                let t = &t;
                s.spawn(move || (0..1000).for_each(|_| t.axpy(r, 1.0, &[1.0; 16])));
            }
        });
        assert!(t.to_vec().iter().all(|&v| v == 1000.0));
    }

    #[test]
    #[should_panic(expected = "not rows of")]
    fn refuses_a_ragged_table() {
        HogwildTable::new(&[1.0; 5], 2);
    }
}
