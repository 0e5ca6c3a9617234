//! Embedding tables that several threads update in place without locks ("Hogwild", Recht et al.
//! 2011), as word2vec.c and gensim train word2vec.
//!
//! Each value is an `AtomicU32` holding an f32's bits, read and written with relaxed loads and
//! stores: on x86-64 and aarch64 those are the same plain moves as non-atomic code, but the
//! races Hogwild accepts by design (two threads updating one row) are defined behaviour rather
//! than undefined. What the atomics cost is vectorisation of the loads and stores themselves: a
//! row is copied into a local buffer (one scalar load per value), the arithmetic runs on the
//! buffer, and the new row is stored back (one scalar store per value).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// A [rows, dim] f32 table shared by Hogwild threads.
pub struct HogwildTable {
    dim: usize,
    data: Vec<AtomicU32>,
}

impl HogwildTable {
    /// A table holding `values` (row-major, a multiple of `dim` long).
    pub fn new(values: &[f32], dim: usize) -> Self {
        assert!(dim > 0 && values.len().is_multiple_of(dim), "hogwild table: {} values are not rows of {dim}", values.len());
        Self { dim, data: values.iter().map(|v| AtomicU32::new(v.to_bits())).collect() }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// The values, row-major.
    pub fn to_vec(&self) -> Vec<f32> {
        self.data.iter().map(|v| f32::from_bits(v.load(Relaxed))).collect()
    }

    fn row(&self, i: u32) -> &[AtomicU32] {
        &self.data[i as usize * self.dim..(i as usize + 1) * self.dim]
    }

    /// Row `i` into `out` (a snapshot: other threads may be writing it).
    #[inline]
    pub fn read(&self, i: u32, out: &mut [f32]) {
        for (o, v) in out.iter_mut().zip(self.row(i)) {
            *o = f32::from_bits(v.load(Relaxed));
        }
    }

    /// Row `i` ← `values`.
    #[inline]
    pub fn write(&self, i: u32, values: &[f32]) {
        for (v, x) in self.row(i).iter().zip(values) {
            v.store(x.to_bits(), Relaxed);
        }
    }

    /// Row `i` += a·x (a load and a store per value; a concurrent update of the same value by
    /// another thread can be lost, which Hogwild tolerates).
    #[inline]
    pub fn axpy(&self, i: u32, a: f32, x: &[f32]) {
        for (v, x) in self.row(i).iter().zip(x) {
            v.store((f32::from_bits(v.load(Relaxed)) + a * x).to_bits(), Relaxed);
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
        let t = HogwildTable::new(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3);
        assert_eq!((t.rows(), t.dim()), (2, 3));
        let mut r = [0.0; 3];
        t.read(1, &mut r);
        assert_eq!(r, [4.0, 5.0, 6.0]);
        t.axpy(0, 2.0, &[1.0, 0.5, -1.0]);
        t.write(1, &[7.0, 8.0, 9.0]);
        assert_eq!(t.to_vec(), vec![3.0, 3.0, 1.0, 7.0, 8.0, 9.0]);
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
