//! Helpers shared by the kernels: buffers filled in parallel without a serial zero-fill first,
//! and sums in independent lanes.

use std::mem::MaybeUninit;
use std::sync::Mutex;

use rayon::prelude::*;

/// Scratch buffers for rayon tasks, made on the calling thread and lent to each task split
/// ([`Pool::lease`] in `for_each_init`), back in the pool when the split ends. Why: a buffer a
/// rayon worker allocates comes from its own glibc arena, whose wholly free heap glibc unmaps
/// whatever the trim threshold, so every call faulted its pages in again (F(4×4)'s 14 MB a
/// task on ResNet-18's 7×7 stage: +140k page faults a `burnlab profile resnet18` run); the
/// calling thread's heap keeps them ([`crate::malloc`]).
pub(crate) struct Pool<T> {
    free: Mutex<Vec<T>>,
}

impl<T> Pool<T> {
    /// A pool of `count` items from `make`, made here.
    pub(crate) fn new(count: usize, make: impl Fn() -> T) -> Self {
        Pool { free: Mutex::new((0..count).map(|_| make()).collect()) }
    }

    /// An item of the pool, or a new one from `make` when all are lent.
    pub(crate) fn lease(&self, make: impl FnOnce() -> T) -> Lease<'_, T> {
        let item = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        Lease { pool: self, item: Some(item.unwrap_or_else(make)) }
    }
}

/// An item lent by a [`Pool`], returned to it on drop.
pub(crate) struct Lease<'a, T> {
    pool: &'a Pool<T>,
    item: Option<T>,
}

impl<T> std::ops::Deref for Lease<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.item.as_ref().expect("lease: held until dropped")
    }
}

impl<T> std::ops::DerefMut for Lease<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.item.as_mut().expect("lease: held until dropped")
    }
}

impl<T> Drop for Lease<'_, T> {
    fn drop(&mut self) {
        if let Some(item) = self.item.take() {
            self.pool.free.lock().unwrap_or_else(|e| e.into_inner()).push(item);
        }
    }
}

/// `len` values filled chunk by chunk on rayon's threads, `f(state, chunk index, chunk)`, with
/// `init` making one state per task split (scratch buffers). Neither a `vec![0.0; n]` first (a
/// serial memset of up to 8 MB here, the other threads idle) nor a zeroing per chunk.
///
/// # Safety
/// `f` must initialise every element of the chunk it is given.
pub(crate) unsafe fn par_chunks_uninit<S>(
    len: usize,
    chunk: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    assert!(chunk > 0 || len == 0, "par_chunks_uninit: empty chunks");
    let mut buf = Box::<[f32]>::new_uninit_slice(len);
    if len > 0 {
        buf.par_chunks_mut(chunk).enumerate().for_each_init(init, |state, (i, c)| f(state, i, c));
    }
    // SAFETY: the chunks cover the buffer and `f` initialised each (the caller's contract).
    unsafe { buf.assume_init() }.into_vec()
}

/// `out[i] = f(i)` for every element, then the slice as initialised (a safe way to fill a
/// `MaybeUninit` chunk: every element is written by construction).
#[inline]
pub(crate) fn write_all(out: &mut [MaybeUninit<f32>], f: impl Fn(usize) -> f32) -> &mut [f32] {
    for (i, o) in out.iter_mut().enumerate() {
        o.write(f(i));
    }
    // SAFETY: every element was written just above.
    unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Lanes for the block sums: 16 independent accumulators, so that LLVM vectorises the
/// reductions (a single f32 accumulator is a serial chain it may not reorder).
const LANES: usize = 16;

/// Σ f(a[i], b[i]) over the two slices (of one length), in [`LANES`] partial sums, over
/// fixed-size chunks so that the loop has no bounds checks and vectorises.
#[inline]
pub fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    assert_eq!(a.len(), b.len(), "lane_sum: lengths differ");
    let mut acc = [0f32; LANES];
    let ((ac, ar), (bc, br)) = (a.as_chunks::<LANES>(), b.as_chunks::<LANES>());
    for (x, y) in ac.iter().zip(bc) {
        for l in 0..LANES {
            acc[l] += f(x[l], y[l]);
        }
    }
    acc.iter().sum::<f32>() + ar.iter().zip(br).map(|(&x, &y)| f(x, y)).sum::<f32>()
}

/// Σ xs[i], in [`LANES`] partial sums ([`lane_sum`] of one slice).
#[inline]
pub fn lane_total(xs: &[f32]) -> f32 {
    lane_sum(xs, xs, |v, _| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leases hand out the pool's items, make new ones only when all are lent, and every item
    /// is back in the pool afterwards (also from rayon's threads).
    #[test]
    fn pool_lends_its_items_and_gets_them_back() {
        let pool = Pool::new(2, || vec![1]);
        {
            let (mut a, b) = (pool.lease(|| vec![9]), pool.lease(|| vec![9]));
            let c = pool.lease(|| vec![7]);
            assert_eq!((&*a, &*b, &*c), (&vec![1], &vec![1], &vec![7]));
            a.push(2);
        }
        let mut back = pool.free.lock().unwrap().clone();
        back.sort();
        assert_eq!(back, vec![vec![1], vec![1, 2], vec![7]]);
        (0..64)
            .into_par_iter()
            .for_each_init(|| pool.lease(|| vec![0]), |lease, _| assert!(!lease.is_empty()));
        let n = pool.free.lock().unwrap().len();
        assert!(n >= 3, "items lost: {n} in the pool");
    }

    #[test]
    fn lane_sums_are_the_sums() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        assert_eq!(lane_total(&a), 666.0);
        assert_eq!(lane_sum(&a, &a, |x, y| x * y), (0..37).map(|i| (i * i) as f32).sum::<f32>());
    }

    #[test]
    fn par_chunks_uninit_fills_every_chunk() {
        // SAFETY: every element of every chunk is written.
        let v = unsafe {
            par_chunks_uninit(
                103,
                10,
                || (),
                |_, i, c| {
                    write_all(c, |j| (i * 10 + j) as f32);
                },
            )
        };
        assert_eq!(v, (0..103).map(|i| i as f32).collect::<Vec<_>>());
    }
}
