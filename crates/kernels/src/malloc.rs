//! glibc's allocator, tuned for training loops.
//!
//! Why: every training step allocates and frees the same few large buffers (activations,
//! gradients, matmul outputs of several MB). By default glibc serves big blocks with fresh
//! `mmap`s and gives freed heap memory back to the kernel, so each step pays page faults and
//! the kernel zeroing every page again: measured on the character models, ~7% of an LSTM step
//! in page-fault handling, and the GRU trained ~45% faster with the settings below (`just
//! bench-rnn`). Keeping freed memory for reuse is what PyTorch's caching allocator does too.
//! Blocks above glibc's largest threshold (32 MB: ResNet-18's 224-px stem activations are
//! 103 MB a batch of 32) would still be fresh `mmap`s, so `mmap` is off altogether (glibc
//! still falls back to it where the heap cannot grow): `burnlab profile resnet18 --image-size
//! 224`, four runs alternated, page faults 562k → 211k, CPU time −2 to −6%, inference −5 to
//! −12%.
//! `BURNLAB_MALLOC_DEFAULTS=1` keeps glibc's defaults (to compare).

/// Blocks below this size come from the heap (the maximum glibc documents for 64-bit).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of the heap is returned to the kernel only beyond this.
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Applies the settings (glibc only) unless `BURNLAB_MALLOC_DEFAULTS` is set. The effect is
/// measured by the benchmarks, not by a test: glibc accepts any value without a way to read
/// it back.
pub fn tune() {
    if std::env::var_os("BURNLAB_MALLOC_DEFAULTS").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc allocator parameters and is thread-safe.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_MMAP_MAX, 0);
    }
}
