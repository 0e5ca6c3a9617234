use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::{DataError, Result};

/// Images held in memory as `u8`, planar CHW per image (the CIFAR-10 binary layout), with labels.
/// 50,000 CIFAR images are 150 MB this way, against 600 MB as `f32`.
#[derive(Clone, Debug, Default)]
pub struct ImageSet {
    pub images: Vec<u8>,
    pub labels: Vec<u32>,
    pub classes: Vec<String>,
    pub channels: usize,
    /// The size of every image; for a set of images kept at their own sizes, the size the
    /// loader crops them to.
    pub height: usize,
    pub width: usize,
    /// Images kept at their own sizes (a training cache of photos, each resized so that its
    /// shorter side is `data.resize`): per image, (offset in `images`, height, width). `None`:
    /// every image is `height` × `width`.
    pub own_sizes: Option<Vec<(usize, usize, usize)>>,
    /// Images not held in memory (their decoded size would pass `data.cache_mib`): each is
    /// decoded from its file when the loader needs it. `images` is then empty.
    pub lazy: Option<Arc<LazyImages>>,
}

/// The files of a set decoded on the fly, and the shorter side each is resized to.
#[derive(Clone, Debug)]
pub struct LazyImages {
    pub paths: Vec<PathBuf>,
    pub resize: u32,
}

/// Per-channel mean and standard deviation of pixel values scaled to [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes of one image as the loader hands it to the model (`height` × `width`).
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Height and width of image `index`.
    pub fn dims(&self, index: usize) -> (usize, usize) {
        match &self.own_sizes {
            Some(sizes) => (sizes[index].1, sizes[index].2),
            None => (self.height, self.width),
        }
    }

    /// The pixels of image `index` as held in memory (not for a set decoded on the fly: see
    /// [`ImageSet::load`]).
    pub fn image(&self, index: usize) -> &[u8] {
        assert!(self.lazy.is_none(), "ImageSet::image on a set decoded on the fly: use load");
        match &self.own_sizes {
            Some(sizes) => {
                let (offset, h, w) = sizes[index];
                &self.images[offset..offset + self.channels * h * w]
            }
            None => {
                let n = self.image_size();
                &self.images[index * n..(index + 1) * n]
            }
        }
    }

    /// The pixels, height and width of image `index`: from memory, or decoded from its file.
    pub fn load(&self, index: usize) -> Result<(Cow<'_, [u8]>, usize, usize)> {
        match &self.lazy {
            Some(lazy) => {
                let (px, h, w) =
                    crate::image_folder::decode_own_size(&lazy.paths[index], lazy.resize)?;
                Ok((Cow::Owned(px), h, w))
            }
            None => {
                let (h, w) = self.dims(index);
                Ok((Cow::Borrowed(self.image(index)), h, w))
            }
        }
    }

    /// A new set holding the given images, in that order.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        if let Some(lazy) = &self.lazy {
            let paths = indices.iter().map(|&i| lazy.paths[i].clone()).collect();
            return ImageSet {
                labels: indices.iter().map(|&i| self.labels[i]).collect(),
                classes: self.classes.clone(),
                lazy: Some(Arc::new(LazyImages { paths, resize: lazy.resize })),
                ..self.clone()
            };
        }
        let mut images = Vec::new();
        let mut labels = Vec::with_capacity(indices.len());
        let mut sizes = self.own_sizes.as_ref().map(|_| Vec::with_capacity(indices.len()));
        for &i in indices {
            if let Some(s) = sizes.as_mut() {
                let (h, w) = self.dims(i);
                s.push((images.len(), h, w));
            }
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        ImageSet {
            images,
            labels,
            classes: self.classes.clone(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            own_sizes: sizes,
            lazy: None,
        }
    }

    /// The set at `height` × `width`: images kept at their own sizes are centre-cropped to it
    /// (torchvision's `CenterCrop` after `Resize`: how validation and test images are seen).
    pub fn to_fixed(self) -> Result<ImageSet> {
        if self.lazy.is_some() {
            let (oh, ow, c) = (self.height, self.width, self.channels);
            let mut images = Vec::with_capacity(self.len() * c * oh * ow);
            for i in 0..self.len() {
                let (px, h, w) = self.load(i)?;
                images.extend(crate::augment::center_crop(&px, c, h, w, oh, ow));
            }
            return Ok(ImageSet { images, own_sizes: None, lazy: None, ..self });
        }
        let Some(sizes) = &self.own_sizes else { return Ok(self) };
        let (oh, ow, c) = (self.height, self.width, self.channels);
        let mut images = Vec::with_capacity(self.len() * c * oh * ow);
        for (i, &(_, h, w)) in sizes.iter().enumerate() {
            images.extend(crate::augment::center_crop(self.image(i), c, h, w, oh, ow));
        }
        Ok(ImageSet { images, own_sizes: None, ..self })
    }

    /// Carve a seeded random validation split of `valid_count` images: returns (train, valid).
    pub fn split_validation(&self, valid_count: usize, seed: u64) -> Result<(ImageSet, ImageSet)> {
        if valid_count >= self.len() {
            return Err(DataError::Invalid(format!(
                "validation split of {valid_count} images leaves nothing to train on: the training set has {} images",
                self.len()
            )));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let (valid, train) = order.split_at(valid_count);
        // Training keeps the original order (its loader shuffles each epoch); validation keeps the
        // seeded shuffle, so that its first batch (the dashboard's sample grid) mixes the
        // classes even when the source lists them class by class, as image folders do.
        let mut train = train.to_vec();
        train.sort_unstable();
        Ok((self.subset(&train), self.subset(valid)))
    }

    /// Mean and (population) standard deviation per channel over all pixels of the set (a set
    /// decoded on the fly is decoded once for it).
    pub fn channel_stats(&self) -> Result<Normalization> {
        let mut sum = vec![0f64; self.channels];
        let mut sum_sq = vec![0f64; self.channels];
        let mut pixels = 0usize;
        for i in 0..self.len() {
            let (px, h, w) = self.load(i)?;
            let plane = h * w;
            pixels += plane;
            for (c, chan) in px.chunks_exact(plane.max(1)).enumerate() {
                // Integer sums are exact and much faster than per-pixel float work.
                let (s, s2) = chan
                    .iter()
                    .fold((0u64, 0u64), |(s, s2), &p| (s + p as u64, s2 + (p as u64) * (p as u64)));
                sum[c] += s as f64;
                sum_sq[c] += s2 as f64;
            }
        }
        let count = pixels.max(1) as f64;
        let mut mean = Vec::with_capacity(self.channels);
        let mut std = Vec::with_capacity(self.channels);
        for c in 0..self.channels {
            let m = sum[c] / count / 255.0;
            let var = (sum_sq[c] / count / (255.0 * 255.0) - m * m).max(0.0);
            mean.push(m as f32);
            // A constant channel would divide by zero; 1 leaves it centred only.
            std.push(if var > 0.0 { var.sqrt() as f32 } else { 1.0 });
        }
        Ok(Normalization { mean, std })
    }

    /// Number of images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}

impl Normalization {
    /// Lookup table: `table[c][p]` is the normalised value of pixel byte `p` in channel `c`.
    pub fn table(&self) -> Vec<[f32; 256]> {
        self.mean
            .iter()
            .zip(&self.std)
            .map(|(&m, &s)| {
                let mut t = [0f32; 256];
                for (p, v) in t.iter_mut().enumerate() {
                    *v = (p as f32 / 255.0 - m) / s;
                }
                t
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ImageSet {
        let mut images = Vec::new();
        for i in 0..n {
            images.extend(std::iter::repeat_n(i as u8, 3 * 2 * 2));
        }
        ImageSet {
            images,
            labels: (0..n).map(|i| (i % 2) as u32).collect(),
            classes: vec!["a".into(), "b".into()],
            channels: 3,
            height: 2,
            width: 2,
            own_sizes: None,
            lazy: None,
        }
    }

    #[test]
    fn validation_split_is_disjoint_seeded_and_complete() {
        let s = set(20);
        let (t1, v1) = s.split_validation(5, 7).expect("split");
        let (t2, v2) = s.split_validation(5, 7).expect("split");
        assert_eq!(v1.images, v2.images);
        assert_eq!(t1.images, t2.images);
        assert_eq!(v1.len(), 5);
        assert_eq!(t1.len(), 15);
        let mut all: Vec<u8> =
            t1.images.chunks(12).chain(v1.images.chunks(12)).map(|c| c[0]).collect();
        all.sort();
        assert_eq!(all, (0..20u8).collect::<Vec<_>>());
        let (_, v3) = s.split_validation(5, 8).expect("split");
        assert_ne!(v1.images, v3.images);
    }

    #[test]
    fn validation_split_of_a_class_sorted_set_mixes_classes_from_its_start() {
        // 40 images, the first 20 of class 0: as an image folder lists them.
        let mut s = set(40);
        s.labels = (0..40).map(|i| (i / 20) as u32).collect();
        let (train, valid) = s.split_validation(10, 3).expect("split");
        assert!(
            valid.labels[..6].contains(&0) && valid.labels[..6].contains(&1),
            "{:?}",
            valid.labels
        );
        // The training split keeps the source order.
        let firsts: Vec<u8> = train.images.chunks(12).map(|c| c[0]).collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn validation_split_too_large_is_an_error() {
        assert!(set(4).split_validation(4, 0).is_err());
    }

    #[test]
    fn channel_stats_known_answer() {
        // Channel 0 all 0, channel 1 all 255, channel 2 half 0 half 255.
        let img = vec![0, 0, 0, 0, 255, 255, 255, 255, 0, 255, 0, 255];
        let s = ImageSet {
            images: img,
            labels: vec![0],
            classes: vec!["x".into()],
            channels: 3,
            height: 2,
            width: 2,
            own_sizes: None,
            lazy: None,
        };
        let n = s.channel_stats().expect("in memory");
        assert_eq!(n.mean, vec![0.0, 1.0, 0.5]);
        assert_eq!(n.std[0], 1.0, "constant channel gets std 1");
        assert!((n.std[2] - 0.5).abs() < 1e-6);
        let t = n.table();
        assert!((t[2][255] - 1.0).abs() < 1e-6);
        assert!((t[2][0] + 1.0).abs() < 1e-6);
    }
}
