//! Text for character language models: a character vocabulary (the sorted set of characters
//! of the corpus, plus an unknown token for characters met later), a 90/10 split by position,
//! and a loader of random training windows or contiguous validation windows.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::download::{Checksum, Download, fetch_file};
use crate::{DataError, Result};

/// Tiny Shakespeare from karpathy's char-rnn repository (1,115,394 characters).
pub const SHAKESPEARE_URL: &str =
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt";
pub const SHAKESPEARE_MD5: &str = "6fb458f1232090904fb40fe944165e91";
pub const SHAKESPEARE_FILE: &str = "tinyshakespeare.txt";

pub fn shakespeare_download() -> Download {
    Download {
        url: SHAKESPEARE_URL.into(),
        checksum: Checksum::Md5(SHAKESPEARE_MD5.into()),
        file_name: SHAKESPEARE_FILE.into(),
    }
}

/// Tiny Shakespeare in `cache`, downloaded (checksum-verified, renamed into place) if absent.
pub fn ensure_shakespeare(cache: &Path, download: &Download) -> Result<std::path::PathBuf> {
    let path = cache.join(&download.file_name);
    if !path.is_file() {
        std::fs::create_dir_all(cache).map_err(|e| DataError::io(cache, e))?;
        fetch_file(download, &path)?;
    }
    Ok(path)
}

/// A whole UTF-8 text file; an empty, binary or non-UTF-8 file is an error naming it.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if let Some(p) = bytes.iter().position(|&b| b == 0) {
        return Err(DataError::format(
            path,
            format!("binary data (a NUL byte at offset {p}): not a text corpus"),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        DataError::format(
            path,
            format!("invalid UTF-8 at byte offset {}", e.utf8_error().valid_up_to()),
        )
    })?;
    if text.chars().count() < 2 {
        return Err(DataError::format(
            path,
            "the corpus is empty: a language model needs at least two characters",
        ));
    }
    Ok(text)
}

/// Characters in sorted order; index `chars.len()` is the unknown token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharVocab {
    pub chars: Vec<char>,
}

impl CharVocab {
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> =
            text.chars().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        chars.shrink_to_fit();
        Self { chars }
    }

    /// Characters plus the unknown token.
    pub fn len(&self) -> usize {
        self.chars.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn unknown(&self) -> u32 {
        self.chars.len() as u32
    }

    pub fn id(&self, c: char) -> u32 {
        self.chars.binary_search(&c).map_or(self.unknown(), |i| i as u32)
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.chars().map(|c| self.id(c)).collect()
    }

    /// The unknown token decodes to U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter().map(|&i| self.chars.get(i as usize).copied().unwrap_or('\u{FFFD}')).collect()
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string(&self.chars)
            .map_err(|e| DataError::format(path, e.to_string()))?;
        std::fs::write(path, json).map_err(|e| DataError::io(path, e))
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let chars: Vec<char> = serde_json::from_str(&text)
            .map_err(|e| DataError::format(path, format!("not a character vocabulary: {e}")))?;
        if chars.is_empty() || chars.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DataError::format(
                path,
                "not a character vocabulary: characters must be sorted and distinct",
            ));
        }
        Ok(Self { chars })
    }
}

/// The first `1 − valid_fraction` of the ids for training, the rest for validation.
pub fn split(ids: &[u32], valid_fraction: f64) -> (Vec<u32>, Vec<u32>) {
    let n_train = ((ids.len() as f64) * (1.0 - valid_fraction)).round() as usize;
    let n_train = n_train.min(ids.len());
    (ids[..n_train].to_vec(), ids[n_train..].to_vec())
}

/// Inputs [B, T] and the next characters [B, T].
#[derive(Clone, Debug)]
pub struct CharBatch {
    pub inputs: Tensor<2, Int>,
    pub targets: Tensor<2, Int>,
}

#[derive(Clone, Copy, Debug)]
enum Windows {
    /// `batches` batches of random windows per epoch; window k of epoch e starts at a position
    /// drawn from (seed, e, k), so a resumed run sees the windows of an uninterrupted one.
    Random { seed: u64 },
    /// Non-overlapping consecutive windows, each starting from a zero state.
    Contiguous,
}

#[derive(Clone)]
pub struct CharLoader {
    ids: Arc<Vec<u32>>,
    seq_len: usize,
    batch_size: usize,
    windows: Windows,
    /// Window indices served, for burn-train's slicing across devices.
    range: (usize, usize),
    device: Device,
    next_epoch: Arc<AtomicUsize>,
    /// Batches the next `iter()` call skips (a run resumed inside an epoch); then 0.
    skip_batches: Arc<AtomicUsize>,
    /// (epoch, characters after the first batch, seconds) per pass.
    timings: Arc<std::sync::Mutex<Vec<(usize, usize, f64)>>>,
}

impl CharLoader {
    /// Random training windows of `seq_len + 1` characters. Needs `ids.len() > seq_len + 1`.
    pub fn random(
        ids: Arc<Vec<u32>>,
        seq_len: usize,
        batch_size: usize,
        batches: usize,
        seed: u64,
        device: Device,
    ) -> Result<Self> {
        if ids.len() <= seq_len + 1 {
            return Err(DataError::Invalid(format!(
                "the training text has {} characters: too short for windows of seq_len + 1 = {}",
                ids.len(),
                seq_len + 1
            )));
        }
        let n = batches * batch_size;
        Ok(Self::new(ids, seq_len, batch_size, Windows::Random { seed }, (0, n), device))
    }

    /// Every complete window of `seq_len` inputs of `ids`, in order.
    pub fn contiguous(
        ids: Arc<Vec<u32>>,
        seq_len: usize,
        batch_size: usize,
        device: Device,
    ) -> Result<Self> {
        let n = ids.len().saturating_sub(1) / seq_len.max(1);
        if n == 0 {
            return Err(DataError::Invalid(format!(
                "the validation text has {} characters: too short for one window of seq_len + 1 = {}",
                ids.len(),
                seq_len + 1
            )));
        }
        Ok(Self::new(ids, seq_len, batch_size, Windows::Contiguous, (0, n), device))
    }

    fn new(
        ids: Arc<Vec<u32>>,
        seq_len: usize,
        batch_size: usize,
        windows: Windows,
        range: (usize, usize),
        device: Device,
    ) -> Self {
        Self {
            ids,
            seq_len: seq_len.max(1),
            batch_size: batch_size.max(1),
            windows,
            range,
            device,
            next_epoch: Arc::new(AtomicUsize::new(1)),
            skip_batches: Arc::new(AtomicUsize::new(0)),
            timings: Arc::new(std::sync::Mutex::new(Vec::new())),
        }
    }

    /// The epoch the first `iter()` call serves (1-based).
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

    /// (epoch, characters, seconds) of each pass, timed from the end of its first step (the
    /// second batch asked for), as [`crate::loader::EpochTiming`].
    pub fn timings(&self) -> Vec<(usize, usize, f64)> {
        self.timings.lock().map(|t| t.clone()).unwrap_or_default()
    }

    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Start of window `k` in `epoch`.
    pub fn window_start(&self, epoch: usize, k: usize) -> usize {
        match self.windows {
            Windows::Random { seed, .. } => {
                let mut rng = SmallRng::seed_from_u64(
                    seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        ^ (k as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9),
                );
                rng.random_range(0..self.ids.len() - self.seq_len)
            }
            Windows::Contiguous => k * self.seq_len,
        }
    }

    fn batch(&self, epoch: usize, windows: std::ops::Range<usize>) -> CharBatch {
        let (t, n) = (self.seq_len, windows.len());
        let mut inputs = Vec::with_capacity(n * t);
        let mut targets = Vec::with_capacity(n * t);
        for k in windows {
            let s = self.window_start(epoch, k);
            inputs.extend(self.ids[s..s + t].iter().map(|&c| c as i64));
            targets.extend(self.ids[s + 1..s + t + 1].iter().map(|&c| c as i64));
        }
        CharBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [n, t]), &self.device),
            targets: Tensor::from_data(TensorData::new(targets, [n, t]), &self.device),
        }
    }
}

struct CharIter<'a> {
    loader: &'a CharLoader,
    epoch: usize,
    /// Index in the epoch of the next batch.
    batch: usize,
    next: usize,
    /// Batches handed out in this pass.
    served: usize,
    /// Set when the second batch is asked for: (time, windows handed out before it).
    first: Option<(Instant, usize)>,
}

impl Iterator for CharIter<'_> {
    type Item = std::result::Result<CharBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let l = self.loader;
        if self.served == 1 && self.first.is_none() {
            self.first = Some((Instant::now(), self.next));
        }
        if self.next >= l.range.1 {
            if let Some((t0, n0)) = self.first.take().filter(|&(_, n0)| self.next > n0)
                && let Ok(mut t) = l.timings.lock()
            {
                t.push((self.epoch, (self.next - n0) * l.seq_len, t0.elapsed().as_secs_f64()));
            }
            return None;
        }
        let end = (self.next + l.batch_size).min(l.range.1);
        if let Windows::Random { seed } = l.windows {
            // Dropout draws from the backend RNG: seeding it per (epoch, batch) makes a run
            // resumed anywhere draw what the uninterrupted run drew.
            l.device.seed(
                seed ^ (self.epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
                    ^ (self.batch as u64).wrapping_mul(0x94D0_49BB_1331_11EB),
            );
        }
        self.batch += 1;
        let batch = l.batch(self.epoch, self.next..end);
        self.next = end;
        self.served += 1;
        Some(Ok(batch))
    }
}

impl DataLoaderIterator<CharBatch> for CharIter<'_> {
    fn progress(&self) -> Progress {
        Progress::new(
            self.next - self.loader.range.0,
            self.loader.range.1 - self.loader.range.0,
            Some("windows".to_string()),
        )
    }
}

impl DataLoader<CharBatch> for CharLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<CharBatch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let batches = (self.range.1 - self.range.0).div_ceil(self.batch_size);
        let skip = self.skip_batches.swap(0, Ordering::SeqCst).min(batches);
        let next = (self.range.0 + skip * self.batch_size).min(self.range.1);
        Box::new(CharIter { loader: self, epoch, batch: skip, next, served: 0, first: None })
    }

    fn num_items(&self) -> usize {
        self.range.1 - self.range.0
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<CharBatch>> {
        let mut l = self.clone();
        l.device = device.clone();
        Arc::new(l)
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<CharBatch>> {
        let mut l = self.clone();
        let s = (self.range.0 + start).min(self.range.1);
        l.range = (s, (self.range.0 + end).clamp(s, self.range.1));
        Arc::new(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(t: Tensor<2, Int>) -> Vec<i64> {
        t.into_data().convert::<i64>().try_to_vec::<i64>().expect("ints")
    }

    #[test]
    fn vocabulary_is_sorted_with_an_unknown_token() {
        let v = CharVocab::from_text("hello, world\n");
        assert_eq!(v.chars, vec!['\n', ' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
        assert_eq!(v.len(), 11);
        assert_eq!(v.encode("hold"), vec![5, 7, 6, 3]);
        assert_eq!(v.encode("hz"), vec![5, 10], "an unseen character is the unknown token");
        assert_eq!(v.decode(&[5, 4, 10]), "he\u{FFFD}");
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("chars.json");
        v.write(&p).expect("write");
        assert_eq!(CharVocab::read(&p).expect("read"), v);
        std::fs::write(&p, "[\"b\", \"a\"]").expect("write");
        assert!(CharVocab::read(&p).unwrap_err().to_string().contains("sorted"));
    }

    #[test]
    fn split_is_by_position() {
        let ids: Vec<u32> = (0..20).collect();
        let (t, v) = split(&ids, 0.1);
        assert_eq!(t, (0..18).collect::<Vec<_>>());
        assert_eq!(v, vec![18, 19]);
    }

    #[test]
    fn bad_text_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("t.txt");
        std::fs::write(&p, "").expect("write");
        assert!(read_text(&p).unwrap_err().to_string().contains("t.txt: the corpus is empty"));
        std::fs::write(&p, b"ab\xffcd").expect("write");
        assert!(read_text(&p).unwrap_err().to_string().contains("invalid UTF-8 at byte offset 2"));
        std::fs::write(&p, b"ab\0cd").expect("write");
        assert!(read_text(&p).unwrap_err().to_string().contains("binary data"));
        assert!(
            read_text(&dir.path().join("missing.txt"))
                .unwrap_err()
                .to_string()
                .contains("missing.txt")
        );
    }

    #[test]
    fn windows_shift_targets_by_one_and_repeat_per_epoch() {
        let ids: Arc<Vec<u32>> = Arc::new((0..50).collect());
        let dev = Device::flex();
        let l = CharLoader::random(ids.clone(), 4, 3, 2, 7, dev.clone()).expect("loader");
        let batches: Vec<CharBatch> = l.iter().map(|b| b.expect("batch")).collect();
        assert_eq!(batches.len(), 2);
        let (x, y) = (ints(batches[0].inputs.clone()), ints(batches[0].targets.clone()));
        assert_eq!(x.len(), 12);
        for w in 0..3 {
            for i in 0..4 {
                // ids are their own positions: each input's target is the next position.
                assert_eq!(y[w * 4 + i], x[w * 4 + i] + 1);
            }
            assert!(x[w * 4] + 4 < 50);
        }
        // Window positions depend only on (seed, epoch, index).
        assert_eq!(l.window_start(3, 5), l.clone().window_start(3, 5));
        assert_ne!(
            (0..6).map(|k| l.window_start(1, k)).collect::<Vec<_>>(),
            (0..6).map(|k| l.window_start(2, k)).collect::<Vec<_>>()
        );

        let v = CharLoader::contiguous(ids, 4, 5, dev).expect("valid");
        assert_eq!(v.num_items(), 12, "(50 − 1) / 4 windows");
        let all: Vec<i64> = v.iter().flat_map(|b| ints(b.expect("batch").inputs)).collect();
        assert_eq!(all, (0..48).collect::<Vec<i64>>());
        assert!(CharLoader::contiguous(Arc::new(vec![1, 2]), 4, 5, Device::flex()).is_err());
        assert!(CharLoader::random(Arc::new(vec![1; 5]), 4, 5, 1, 0, Device::flex()).is_err());
    }

    /// Timed from the request for the second batch, as the image loader: the first step (a
    /// 400 ms pause) is outside the window and its characters are not counted.
    #[test]
    fn timing_starts_after_the_first_step() {
        let ids: Arc<Vec<u32>> = Arc::new((0..50).collect());
        let l = CharLoader::random(ids, 4, 3, 3, 7, Device::flex()).expect("loader");
        for (i, b) in l.iter().enumerate() {
            b.expect("batch");
            std::thread::sleep(std::time::Duration::from_millis(if i == 0 { 400 } else { 20 }));
        }
        let t = l.timings();
        assert_eq!(t.len(), 1, "{t:?}");
        let (epoch, chars, secs) = t[0];
        assert_eq!((epoch, chars), (1, 2 * 3 * 4), "two batches of 3 windows of 4");
        assert!((0.04..0.4).contains(&secs), "{t:?}");
        // A pass of one batch has no step after its first: no timing.
        let ids: Arc<Vec<u32>> = Arc::new((0..50).collect());
        let one = CharLoader::random(ids, 4, 3, 1, 7, Device::flex()).expect("loader");
        assert_eq!(one.iter().count(), 1);
        assert!(one.timings().is_empty());
    }

    #[test]
    fn resuming_inside_an_epoch_serves_the_rest_of_it_and_draws_the_same_random_numbers() {
        let ids: Arc<Vec<u32>> = Arc::new((0..200).collect());
        let draw = |l: &CharLoader| -> Vec<(Vec<i64>, f32)> {
            l.iter()
                .map(|b| {
                    let x = ints(b.expect("batch").inputs);
                    // What a dropout mask would draw next from the training device.
                    let r =
                        Tensor::<1>::random([1], burn::tensor::Distribution::Default, &l.device)
                            .into_scalar();
                    (x, r)
                })
                .collect()
        };
        let full = CharLoader::random(ids.clone(), 4, 3, 5, 7, Device::flex()).expect("loader");
        let _ = draw(&full);
        let epoch2 = draw(&full);
        assert_eq!(epoch2.len(), 5);
        let resumed = CharLoader::random(ids, 4, 3, 5, 7, Device::flex()).expect("loader");
        let resumed = resumed.resume_at(2, 2);
        assert_eq!(draw(&resumed), epoch2[2..].to_vec());
        assert_eq!(draw(&resumed).len(), 5, "only the first pass skips");
    }
}
