//! A data loader over an in-memory [`ImageSet`] whose epoch order depends only on
//! (seed, epoch): a run resumed at epoch k, or at step j of it, sees exactly the batches (and
//! draws the dropout masks) an uninterrupted run would.
//! Burn's `DataLoaderBuilder::shuffle` draws every epoch from one running RNG, so a resumed
//! run would replay epoch 1's order instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::augment::{Rect, center_crop, random_resized_rect, resize_rect};
use crate::{Augment, ImageSet, Normalization};

/// A batch of normalised images [batch, channels, height, width] and their class indices.
#[derive(Clone, Debug)]
pub struct ImageBatch {
    pub images: Tensor<4>,
    pub targets: Tensor<1, Int>,
}

#[derive(Clone)]
pub struct ImageLoader {
    set: Arc<ImageSet>,
    range: (usize, usize),
    batch_size: usize,
    shuffle_seed: Option<u64>,
    augment: Option<Augment>,
    table: Arc<Vec<[f32; 256]>>,
    device: Device,
    /// The epoch the next `iter()` call serves (1-based, like burn-train's epochs).
    next_epoch: Arc<AtomicUsize>,
    /// Batches the next `iter()` call skips (a run resumed inside an epoch); then 0.
    skip_batches: Arc<AtomicUsize>,
    timings: Arc<Mutex<Vec<EpochTiming>>>,
}

/// Wall time of one pass, from the end of its first step (the consumer asking for the second
/// batch) to the end of its last (the consumer's work included), as the PyTorch peer measures
/// training throughput: the first step, with its one-off allocations, is neither timed nor
/// counted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochTiming {
    pub epoch: usize,
    /// Images served after the first batch.
    pub images: usize,
    pub seconds: f64,
}

/// Mix seed, epoch and a position into an independent RNG seed (SplitMix64 finaliser).
fn mix(seed: u64, epoch: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_add(epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(index.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl ImageLoader {
    pub fn new(
        set: Arc<ImageSet>,
        batch_size: usize,
        norm: &Normalization,
        device: Device,
    ) -> Self {
        let len = set.len();
        Self {
            set,
            range: (0, len),
            batch_size: batch_size.max(1),
            shuffle_seed: None,
            augment: None,
            table: Arc::new(norm.table()),
            device,
            next_epoch: Arc::new(AtomicUsize::new(1)),
            skip_batches: Arc::new(AtomicUsize::new(0)),
            timings: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Timings of the passes served so far (shared with clones of this loader).
    pub fn timings(&self) -> Vec<EpochTiming> {
        self.timings.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Shuffle each epoch with an order derived from (seed, epoch).
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle_seed = Some(seed);
        self
    }

    pub fn augment(mut self, augment: Augment) -> Self {
        self.augment = (!augment.is_identity()).then_some(augment);
        self
    }

    /// The epoch the first `iter()` call serves; a run resumed after epoch k starts at k + 1.
    pub fn starting_epoch(self, epoch: usize) -> Self {
        self.next_epoch.store(epoch.max(1), Ordering::SeqCst);
        self
    }

    /// The first `iter()` call serves `epoch` from its batch `step` (0-based): the rest of an
    /// epoch a run was stopped in, after `step` batches of it had trained.
    pub fn resume_at(self, epoch: usize, step: usize) -> Self {
        self.skip_batches.store(step, Ordering::SeqCst);
        self.starting_epoch(epoch)
    }

    /// Indices of the images of `epoch`, in the order they are served.
    pub fn epoch_order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (self.range.0..self.range.1).collect();
        if let Some(seed) = self.shuffle_seed {
            order.shuffle(&mut StdRng::seed_from_u64(mix(seed, epoch as u64, u64::MAX)));
        }
        order
    }

    /// Build the normalised (and augmented) float pixels and labels of one batch (~1 ms for 128
    /// CIFAR images).
    fn prepare(&self, epoch: usize, offset: usize, indices: &[usize]) -> Prepared {
        let set = &self.set;
        let size = set.image_size();
        let plane = set.height * set.width;
        let mut pixels = vec![0f32; indices.len() * size];
        // Sequential on purpose: this runs on the loader's own thread, and rayon's pool belongs
        // to the CPU backend's matrix multiplications, which stall when it is busy here.
        for (out, (k, &i)) in pixels.chunks_mut(size).zip(indices.iter().enumerate()) {
            // From memory, or decoded now for a set past `data.cache_mib`.
            let (src, h, w) = set.load(i)?;
            let src = &src[..];
            let (c, oh, ow) = (set.channels, set.height, set.width);
            let (mut tmp, resized);
            let mut cut = None;
            let src = match (&self.augment, self.shuffle_seed) {
                (Some(a), seed) => {
                    let s = mix(seed.unwrap_or(0), epoch as u64, (offset + k) as u64);
                    let mut rng = StdRng::seed_from_u64(s);
                    // An image kept at its own size: a random resized crop of it (or all of
                    // it) to the output size first.
                    let src = if a.random_resized || (h, w) != (oh, ow) {
                        let rect = if a.random_resized {
                            random_resized_rect(h, w, &mut rng)
                        } else {
                            Rect { y0: 0, y1: h, x0: 0, x1: w }
                        };
                        resized = resize_rect(src, (c, h, w), rect, (oh, ow));
                        &resized[..]
                    } else {
                        src
                    };
                    tmp = vec![0u8; size];
                    cut = a.apply(src, &mut tmp, c, oh, ow, &mut rng);
                    &tmp[..]
                }
                (None, _) if (h, w) != (oh, ow) => {
                    resized = center_crop(src, c, h, w, oh, ow);
                    &resized[..]
                }
                (None, _) => src,
            };
            for (c, (o, s)) in out.chunks_exact_mut(plane).zip(src.chunks_exact(plane)).enumerate()
            {
                let t = &self.table[c];
                for (o, &p) in o.iter_mut().zip(s) {
                    *o = t[p as usize];
                }
                if let Some(r) = cut {
                    for row in o.chunks_exact_mut(set.width).take(r.y1).skip(r.y0) {
                        row[r.x0..r.x1].fill(0.0);
                    }
                }
            }
        }
        let labels = indices.iter().map(|&i| set.labels[i] as i64).collect();
        Ok((pixels, labels))
    }

    fn to_batch(&self, pixels: Vec<f32>, labels: Vec<i64>) -> ImageBatch {
        let n = labels.len();
        let set = &self.set;
        ImageBatch {
            images: Tensor::from_data(
                TensorData::new(pixels, [n, set.channels, set.height, set.width]),
                &self.device,
            ),
            targets: Tensor::from_data(TensorData::new(labels, [n]), &self.device),
        }
    }
}

/// A batch's normalised pixels and labels, or the image that could not be decoded.
type Prepared = crate::Result<(Vec<f32>, Vec<i64>)>;

struct ImageLoaderIter<'a> {
    loader: &'a ImageLoader,
    receiver: Receiver<Prepared>,
    /// Index in the epoch of the next batch.
    batch: usize,
    processed: usize,
    total: usize,
    epoch: usize,
    /// Batches handed out in this pass.
    served: usize,
    /// Set when the second batch is asked for: (time, images handed out before it).
    first: Option<(Instant, usize)>,
}

impl Iterator for ImageLoaderIter<'_> {
    type Item = Result<ImageBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.served == 1 && self.first.is_none() {
            self.first = Some((Instant::now(), self.processed));
        }
        let Ok(prepared) = self.receiver.recv() else {
            if let Some((t0, n0)) = self.first.take().filter(|&(_, n0)| self.processed > n0)
                && let Ok(mut t) = self.loader.timings.lock()
            {
                t.push(EpochTiming {
                    epoch: self.epoch,
                    images: self.processed - n0,
                    seconds: t0.elapsed().as_secs_f64(),
                });
            }
            return None;
        };
        let (pixels, labels) = match prepared {
            Ok(batch) => batch,
            Err(e) => return Some(Err(DatasetError::new(e))),
        };
        self.processed += labels.len();
        let l = self.loader;
        if let Some(seed) = l.shuffle_seed {
            // Dropout and other random layers draw from the backend RNG: seeding it per (epoch,
            // batch) makes a run resumed anywhere draw what the uninterrupted run drew.
            l.device.seed(mix(seed, self.epoch as u64, u64::MAX - 1 - self.batch as u64));
        }
        self.batch += 1;
        self.served += 1;
        Some(Ok(l.to_batch(pixels, labels)))
    }
}

impl DataLoaderIterator<ImageBatch> for ImageLoaderIter<'_> {
    fn progress(&self) -> Progress {
        Progress::new(self.processed, self.total, Some("images".to_string()))
    }
}

impl DataLoader<ImageBatch> for ImageLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let order = self.epoch_order(epoch);
        let total = order.len();
        let skip = self.skip_batches.swap(0, Ordering::SeqCst).min(total.div_ceil(self.batch_size));
        // A worker prepares batches ahead (augmentation + normalisation, in parallel) while
        // the model trains on the current one; two in flight bound the memory.
        let (sender, receiver) = sync_channel(2);
        let worker = self.clone();
        std::thread::spawn(move || {
            for (b, chunk) in order.chunks(worker.batch_size).enumerate().skip(skip) {
                let batch = worker.prepare(epoch, b * worker.batch_size, chunk);
                if sender.send(batch).is_err() {
                    return; // the consumer stopped early
                }
            }
        });
        Box::new(ImageLoaderIter {
            loader: self,
            receiver,
            batch: skip,
            processed: (skip * self.batch_size).min(total),
            total,
            epoch,
            served: 0,
            first: None,
        })
    }

    fn num_items(&self) -> usize {
        self.range.1 - self.range.0
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        let mut l = self.clone();
        l.device = device.clone();
        Arc::new(l)
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        let mut l = self.clone();
        let s = (self.range.0 + start).min(self.range.1);
        l.range = (s, (self.range.0 + end).clamp(s, self.range.1));
        Arc::new(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> Arc<ImageSet> {
        Arc::new(ImageSet {
            images: (0..n).flat_map(|i| std::iter::repeat_n(i as u8, 3 * 4 * 4)).collect(),
            labels: (0..n).map(|i| (i % 3) as u32).collect(),
            classes: vec!["a".into(), "b".into(), "c".into()],
            channels: 3,
            height: 4,
            width: 4,
            own_sizes: None,
            lazy: None,
        })
    }

    fn norm() -> Normalization {
        Normalization { mean: vec![0.0; 3], std: vec![1.0 / 255.0; 3] } // value = pixel byte
    }

    fn first_pixels(loader: &ImageLoader) -> Vec<Vec<i64>> {
        loader
            .iter()
            .map(|b| {
                let b = b.expect("batch");
                let v: Vec<f32> = b.images.into_data().try_to_vec().expect("f32");
                v.chunks(48).map(|c| c[0].round() as i64).collect()
            })
            .collect()
    }

    /// A pass is timed from the consumer's request for its second batch, as the peer times
    /// training: the first step (here a 400 ms pause after the first batch) is outside the
    /// window and its images are not counted; the steps after it are inside.
    #[test]
    fn timing_starts_after_the_first_step() {
        let l = ImageLoader::new(set(5), 2, &norm(), Device::flex());
        for (i, b) in l.iter().enumerate() {
            b.expect("batch");
            let pause = if i == 0 { 400 } else { 20 };
            std::thread::sleep(std::time::Duration::from_millis(pause));
        }
        let t = l.timings();
        assert_eq!((t.len(), t[0].epoch, t[0].images), (1, 1, 3), "{t:?}");
        assert!(t[0].seconds >= 0.04 && t[0].seconds < 0.4, "{t:?}");
        // A pass of one batch has no step after its first: no timing.
        let one = ImageLoader::new(set(2), 2, &norm(), Device::flex());
        assert_eq!(one.iter().count(), 1);
        assert!(one.timings().is_empty());
    }

    #[test]
    fn batches_cover_every_image_once_with_labels() {
        let l = ImageLoader::new(set(10), 4, &norm(), Device::flex()).shuffle(1);
        let batches = first_pixels(&l);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<i64> = batches.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let b = l.iter().next().expect("batch").expect("ok");
        let px: Vec<f32> = b.images.into_data().try_to_vec().expect("f32");
        let labels: Vec<i64> = b.targets.into_data().convert::<i64>().try_to_vec().expect("i64");
        for (k, lab) in labels.iter().enumerate() {
            assert_eq!(*lab, (px[k * 48].round() as i64) % 3);
        }
    }

    #[test]
    fn epoch_order_depends_only_on_seed_and_epoch() {
        let a = ImageLoader::new(set(50), 8, &norm(), Device::flex()).shuffle(5);
        let e1 = first_pixels(&a);
        let e2 = first_pixels(&a);
        assert_ne!(e1, e2, "epochs differ");
        // A fresh loader resumed at epoch 2 replays epoch 2 exactly.
        let resumed =
            ImageLoader::new(set(50), 8, &norm(), Device::flex()).shuffle(5).starting_epoch(2);
        assert_eq!(first_pixels(&resumed), e2);
        let plain = ImageLoader::new(set(5), 2, &norm(), Device::flex());
        assert_eq!(first_pixels(&plain), vec![vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn resuming_inside_an_epoch_serves_the_rest_of_it_and_draws_the_same_random_numbers() {
        let draw = |l: &ImageLoader| -> Vec<(Vec<i64>, f32)> {
            l.iter()
                .map(|b| {
                    let b = b.expect("batch");
                    let labels = b.targets.into_data().convert::<i64>().try_to_vec().expect("i64");
                    // What a dropout mask would draw next from the training device.
                    let r =
                        Tensor::<1>::random([1], burn::tensor::Distribution::Default, &l.device)
                            .into_scalar();
                    (labels, r)
                })
                .collect()
        };
        let full = ImageLoader::new(set(50), 8, &norm(), Device::flex()).shuffle(5);
        let _ = draw(&full);
        let epoch2 = draw(&full);
        assert_eq!(epoch2.len(), 7);
        let resumed =
            ImageLoader::new(set(50), 8, &norm(), Device::flex()).shuffle(5).resume_at(2, 3);
        let rest = draw(&resumed);
        assert_eq!(rest, epoch2[3..].to_vec());
        // Only the first pass skips; the next is epoch 3 whole.
        assert_eq!(draw(&resumed).len(), 7);
        // Skipping every batch leaves an empty pass (stopped after the epoch's last step).
        let done = ImageLoader::new(set(50), 8, &norm(), Device::flex()).shuffle(5).resume_at(2, 7);
        assert_eq!(draw(&done).len(), 0);
    }

    #[test]
    fn cutout_blanks_a_square_after_standardisation() {
        // Pixels of image i are i + 1, so only Cutout can make a value 0.
        let mut s = (*set(6)).clone();
        s.images.iter_mut().for_each(|p| *p += 1);
        let l = ImageLoader::new(Arc::new(s), 6, &norm(), Device::flex())
            .shuffle(2)
            .augment(Augment { cutout: 2, ..Augment::default() });
        let b = l.iter().next().expect("batch").expect("ok");
        let px: Vec<f32> = b.images.into_data().try_to_vec().expect("f32");
        for img in px.chunks(48) {
            let planes: Vec<Vec<bool>> =
                img.chunks(16).map(|c| c.iter().map(|&v| v == 0.0).collect()).collect();
            let zeros = planes[0].iter().filter(|&&z| z).count();
            // A 2x2 square, clipped to 1x1 or 1x2 at a border; the same pixels in every channel.
            assert!([1, 2, 4].contains(&zeros), "{zeros}");
            assert!(planes.iter().all(|p| *p == planes[0]));
            assert!(img.iter().all(|&v| v == 0.0 || v >= 1.0));
        }
    }
}
