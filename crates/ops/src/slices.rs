//! A convolutional network's inference on the CPU in slices of the batch small enough for the
//! activations to stay in cache.
//!
//! Why: each layer is one pass over the whole batch, so a layer's output is read back by the
//! next only after the batch's other images have gone through. At 256 CIFAR images a
//! ResNet-20 activation is 16 MB, past a core's L2 and most of a laptop's L3, and the
//! memory-bound passes between the convolutions (padding copies, batch norm, the residual join)
//! run from memory. Measured on a Zen 4 (AVX2 and AVX-512, 2 threads, `eval --timed-passes 3
//! --batch-size N`): 1,600–1,620 images/s at 256, 1,690–1,760 at 32 and 64. PyTorch behaves
//! the same (its peer script: ~900 at 256 against ~1,740 at 64 on that machine), so
//! evaluation keeps the batch its user asked for and runs the network on slices of it.

use burn::tensor::{Device, Tensor};

/// Pixels (images × height × width) per slice: 64 CIFAR images.
const SLICE_PIXELS: usize = 64 * 32 * 32;

/// Fewest images worth a slice: with larger images (ResNet-18 at 224 px, 3 MB per image after
/// its stem) nothing fits in cache anyway, and slices of 1–2 images ran 8% slower than whole
/// batches of 32 by re-reading the deep layers' weights (9 MB each) for every slice.
const MIN_SLICE: usize = 8;

/// Images per slice for images of `height` × `width`; `None` where slices would be under
/// [`MIN_SLICE`] images (no slicing).
pub fn slice_images(height: usize, width: usize) -> Option<usize> {
    Some(SLICE_PIXELS / (height * width).max(1)).filter(|&n| n >= MIN_SLICE)
}

/// `f(images)`, computed slice by slice of [`slice_images`] images and concatenated along the
/// batch where that pays: on flex without autodiff (inference; a training step's backward needs
/// the whole batch's graph, and a GPU wants the whole batch at once), with the fused operations
/// on (`BURNLAB_FUSED=0` measures Burn's own layers as they were). `f` must treat images
/// independently (eval mode: batch norm with running statistics), as every classifier's
/// inference does; the result is then the same as `f(images)`.
pub fn in_slices(images: Tensor<4>, f: impl Fn(Tensor<4>) -> Tensor<2>) -> Tensor<2> {
    let [n, _, h, w] = images.dims();
    let device = images.device();
    let per = match slice_images(h, w) {
        Some(per)
            if n > per && device == Device::flex() && !device.is_autodiff() && crate::enabled() =>
        {
            per
        }
        _ => return f(images),
    };
    let parts: Vec<Tensor<2>> = images.split(per, 0).into_iter().map(f).collect();
    Tensor::cat(parts, 0)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::testing::vec;

    #[test]
    fn slice_sizes_follow_the_pixels_none_below_the_minimum() {
        assert_eq!(slice_images(32, 32), Some(64));
        assert_eq!(slice_images(64, 64), Some(16));
        assert_eq!(slice_images(90, 90), Some(8));
        assert_eq!(slice_images(96, 96), None);
        assert_eq!(slice_images(224, 224), None);
        assert_eq!(slice_images(0, 0), Some(SLICE_PIXELS));
    }

    /// A batch of 150 CIFAR images (3 slices: 64, 64, 22) gives the same logits, in the same
    /// order, as one call, and each slice is at most 64 images.
    #[test]
    fn slices_give_the_whole_batch_result_in_order() {
        let device = Device::flex();
        let x = Tensor::<4>::random([150, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        // Per image: its sum and its first pixel, so order and content both show.
        let f = |t: Tensor<4>| {
            let n = t.dims()[0];
            let flat = t.reshape([n as i32, -1]);
            Tensor::cat(vec![flat.clone().sum_dim(1), flat.narrow(1, 0, 1)], 1)
        };
        let seen = std::cell::RefCell::new(Vec::new());
        let sliced = in_slices(x.clone(), |t| {
            seen.borrow_mut().push(t.dims()[0]);
            f(t)
        });
        assert_eq!(*seen.borrow(), vec![64, 64, 22]);
        assert_eq!(vec(sliced), vec(f(x)));
    }

    /// One call for a batch within one slice, and for large images whatever the batch.
    #[test]
    fn a_batch_within_one_slice_or_of_large_images_is_one_call() {
        for (n, side) in [(64, 32), (40, 224)] {
            let x = Tensor::<4>::zeros([n, 3, side, side], &Device::flex());
            let calls = std::cell::Cell::new(0);
            let y = in_slices(x, |t| {
                calls.set(calls.get() + 1);
                t.sum_dim(3).sum_dim(2).reshape([n, 3])
            });
            assert_eq!((calls.get(), y.dims()), (1, [n, 3]), "{n} images of {side} px");
        }
    }
}
