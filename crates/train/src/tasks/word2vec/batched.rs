//! word2vec on Burn tensors, the path that runs on a GPU (`--backend wgpu|cuda`): a producer
//! thread turns the corpus into batches of (input, positive + negatives) rows with the same
//! vocabulary, sub-sampler, dynamic window and unigram table as the native path, and the
//! device applies one sparse `Word2Vec::sgd_step` per batch.
//!
//! The difference from word2vec.c is the minibatch: the pairs of a batch see the tables as
//! they were before the batch, and a row several pairs touch gets the sum of their updates.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use anyhow::Result;
use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use burnlab_data::sampling::{Subsampler, UnigramTable, window_around};
use burnlab_data::{Corpus, Vocab};
use burnlab_models::word2vec::{ContextUpdate, PairBatch, Word2Vec};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::tasks::word2vec::native::{Embeddings, NativeConfig, Progress, W2vArch};

/// One batch on the host, row-major.
struct HostBatch {
    inputs: Vec<i64>,
    mask: Vec<f32>,
    targets: Vec<i64>,
    rows: usize,
    /// Corpus words read to build this batch (for progress and the learning rate).
    words: u64,
    alpha: f64,
}

impl HostBatch {
    fn with_capacity(rows: usize, width: usize, targets: usize) -> Self {
        Self {
            inputs: Vec::with_capacity(rows * width),
            mask: Vec::with_capacity(rows * width),
            targets: Vec::with_capacity(rows * targets),
            rows: 0,
            words: 0,
            alpha: 0.0,
        }
    }
}

pub fn to_model(emb: &Embeddings, device: &Device) -> Word2Vec {
    let rows = emb.input.len() / emb.dim;
    let table = |v: &Vec<f32>| {
        Param::from_tensor(Tensor::from_data(TensorData::new(v.clone(), [rows, emb.dim]), device))
    };
    Word2Vec { input: table(&emb.input), output: table(&emb.output) }
}

pub fn to_embeddings(model: &Word2Vec) -> Result<Embeddings> {
    let read = |t: Tensor<2>| {
        t.into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading the tables back from the device: {e:?}"))
    };
    Ok(Embeddings {
        dim: model.dim(),
        input: read(model.input.val())?,
        output: read(model.output.val())?,
    })
}

/// Train `model` for epochs `first_epoch..cfg.epochs` with `batch` rows per step, calling
/// `on_epoch` after each complete epoch. Stops early (without `on_epoch`) when
/// `progress.stop` is set. The learning rate falls linearly as in word2vec.c.
#[allow(clippy::too_many_arguments)]
pub fn train(
    mut model: Word2Vec,
    corpus: &Corpus,
    vocab: &Vocab,
    cfg: &NativeConfig,
    batch: usize,
    first_epoch: usize,
    progress: &Progress,
    device: &Device,
    mut on_epoch: impl FnMut(usize, &Word2Vec) -> Result<()>,
) -> Result<Word2Vec> {
    let producer = Producer {
        corpus,
        vocab,
        cfg,
        sub: Subsampler::new(&vocab.counts, cfg.sample),
        table: UnigramTable::new(&vocab.counts, 0.75),
        batch: batch.max(1),
        progress,
    };
    progress.words.store(first_epoch as u64 * vocab.total(), Ordering::Relaxed);
    for epoch in first_epoch..cfg.epochs {
        let (tx, rx) = mpsc::sync_channel::<HostBatch>(4);
        model = std::thread::scope(|s| -> Result<Word2Vec> {
            let producer = s.spawn(|| producer.epoch(epoch, tx));
            let model = consume(model, rx, progress, device);
            producer
                .join()
                .map_err(|_| anyhow::anyhow!("the batch producer thread panicked"))??;
            Ok(model)
        })?;
        if progress.stop.load(Ordering::Relaxed) {
            return Ok(model);
        }
        on_epoch(epoch, &model)?;
    }
    Ok(model)
}

/// Runs one sparse SGD step per batch arriving on `rx` until the producer is done (or the user
/// stops), keeping `progress` (words, learning rate, one loss in 16 steps) current.
fn consume(
    mut model: Word2Vec,
    rx: mpsc::Receiver<HostBatch>,
    progress: &Progress,
    device: &Device,
) -> Word2Vec {
    let mut step = 0u64;
    for host in rx.iter() {
        progress.words.fetch_add(host.words, Ordering::Relaxed);
        progress.alpha_nano.store((host.alpha * 1e9) as u64, Ordering::Relaxed);
        if host.rows == 0 {
            continue;
        }
        let pb = PairBatch::new(host.inputs, host.mask, host.targets, host.rows, device);
        let (next, loss) = model.sgd_step(&pb, host.alpha, ContextUpdate::Word2VecC);
        model = next;
        step += 1;
        // Reading the loss waits for the device: one step in 16.
        if step.is_multiple_of(16) {
            let l = loss.into_scalar::<f32>() as f64;
            progress.loss_milli.fetch_add((l * 1e3) as u64, Ordering::Relaxed);
            progress.loss_pairs.fetch_add(1, Ordering::Relaxed);
        }
        if progress.stop.load(Ordering::Relaxed) {
            break;
        }
    }
    // Dropping `rx` here ends a producer still sending.
    model
}

/// Builds the host batches of an epoch: the corpus through the vocabulary, sub-sampler, dynamic
/// window and unigram table of the native path.
struct Producer<'a> {
    corpus: &'a Corpus,
    vocab: &'a Vocab,
    cfg: &'a NativeConfig,
    sub: Subsampler,
    table: UnigramTable,
    batch: usize,
    progress: &'a Progress,
}

impl Producer<'_> {
    /// Inputs per row: skip-gram one; CBOW the whole window, padded and masked.
    fn width(&self) -> usize {
        match self.cfg.arch {
            W2vArch::Skipgram => 1,
            W2vArch::Cbow => 2 * self.cfg.window,
        }
    }

    fn empty(&self) -> HostBatch {
        HostBatch::with_capacity(self.batch, self.width(), self.cfg.negative + 1)
    }

    /// A row: `inputs` (padded to the width), the target `word` and its negatives.
    fn push(&self, cur: &mut HostBatch, inputs: &[u32], word: u32, rng: &mut SmallRng) {
        for k in 0..self.width() {
            cur.inputs.push(inputs.get(k).map_or(0, |&w| w as i64));
            cur.mask.push(if k < inputs.len() { 1.0 } else { 0.0 });
        }
        cur.targets.push(word as i64);
        for _ in 0..self.cfg.negative {
            cur.targets.push(self.table.negative(word, rng) as i64);
        }
        cur.rows += 1;
    }

    /// Sends epoch `epoch`'s rows to `tx` in batches, each with the learning rate of where in
    /// the schedule it ends; stops when the receiver has gone or the user stops.
    fn epoch(&self, epoch: usize, tx: mpsc::SyncSender<HostBatch>) -> Result<()> {
        let (cfg, total_words) = (self.cfg, self.vocab.total());
        let schedule_words = (cfg.epochs as u64 * total_words).max(1);
        let mut rng = SmallRng::seed_from_u64(cfg.seed ^ ((epoch as u64) << 32));
        let mut done = epoch as u64 * total_words;
        let mut cur = self.empty();
        let mut sentence: Vec<u32> = Vec::new();
        let send = |cur: &mut HostBatch, done: u64| -> bool {
            cur.alpha =
                (cfg.alpha * (1.0 - done as f64 / schedule_words as f64)).max(cfg.alpha * 1e-4);
            tx.send(std::mem::replace(cur, self.empty())).is_ok()
        };
        let mut ctx: Vec<u32> = Vec::with_capacity(self.width());
        let read = self.corpus.for_each_sentence(|words| {
            if self.progress.stop.load(Ordering::Relaxed) {
                return false;
            }
            sentence.clear();
            let mut read = 0u64;
            for w in words {
                if let Some(id) = self.vocab.get(w) {
                    read += 1;
                    if self.sub.keep(id, &mut rng) {
                        sentence.push(id);
                    }
                }
            }
            cur.words += read;
            done += read;
            let n = sentence.len();
            for i in 0..n {
                let Range { start: lo, end: hi } = window_around(i, n, cfg.window, &mut rng);
                match cfg.arch {
                    W2vArch::Skipgram => {
                        for c in (lo..hi).filter(|&c| c != i) {
                            self.push(&mut cur, &[sentence[c]], sentence[i], &mut rng);
                            if cur.rows == self.batch && !send(&mut cur, done) {
                                return false;
                            }
                        }
                    }
                    W2vArch::Cbow => {
                        ctx.clear();
                        ctx.extend((lo..hi).filter(|&c| c != i).map(|c| sentence[c]));
                        if ctx.is_empty() {
                            continue;
                        }
                        self.push(&mut cur, &ctx, sentence[i], &mut rng);
                        if cur.rows == self.batch && !send(&mut cur, done) {
                            return false;
                        }
                    }
                }
            }
            true
        });
        if cur.rows > 0 || cur.words > 0 {
            send(&mut cur, done);
        }
        read.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::word2vec::native;

    /// Ten "topics" of ten words; a sentence draws all its words from one topic.
    fn topic_corpus(dir: &std::path::Path) -> Corpus {
        use rand::Rng;
        let mut rng = SmallRng::seed_from_u64(3);
        let mut text = String::new();
        for _ in 0..4000 {
            let topic = rng.random_range(0..10);
            let words: Vec<String> =
                (0..10).map(|_| format!("t{topic}w{}", rng.random_range(0..10))).collect();
            text.push_str(&words.join(" "));
            text.push('\n');
        }
        let p = dir.join("topics.txt");
        std::fs::write(&p, text).expect("write");
        Corpus::open(&p, false).expect("open")
    }

    /// Quality of the vectors: (share of words whose nearest neighbour is in their topic,
    /// mean cosine within a topic − mean cosine across topics).
    fn quality(emb: &Embeddings, vocab: &Vocab) -> (f64, f64) {
        let dim = emb.dim;
        let unit: Vec<Vec<f64>> = (0..vocab.len())
            .map(|i| {
                let v: Vec<f64> =
                    emb.input[i * dim..(i + 1) * dim].iter().map(|&x| x as f64).collect();
                let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                v.iter().map(|x| x / n).collect()
            })
            .collect();
        let cos =
            |a: usize, b: usize| unit[a].iter().zip(&unit[b]).map(|(x, y)| x * y).sum::<f64>();
        let topic = |i: usize| vocab.words[i].split('w').next().map(str::to_string);
        let (mut same, mut within, mut nw, mut across, mut na) = (0, 0.0, 0, 0.0, 0);
        for i in 0..vocab.len() {
            let best = (0..vocab.len())
                .filter(|&j| j != i)
                .max_by(|&a, &b| cos(i, a).total_cmp(&cos(i, b)))
                .expect("other");
            same += (topic(i) == topic(best)) as usize;
            for j in (0..vocab.len()).filter(|&j| j != i) {
                if topic(i) == topic(j) {
                    within += cos(i, j);
                    nw += 1;
                } else {
                    across += cos(i, j);
                    na += 1;
                }
            }
        }
        (same as f64 / vocab.len() as f64, within / nw as f64 - across / na as f64)
    }

    fn config(arch: W2vArch) -> NativeConfig {
        NativeConfig {
            arch,
            dim: 24,
            window: 4,
            negative: 5,
            sample: 0.0,
            alpha: if arch == W2vArch::Cbow { 0.05 } else { 0.025 },
            epochs: 2,
            threads: 1,
            seed: 11,
        }
    }

    /// Both paths, same corpus, vocabulary, sampler and schedule: the batched path's vectors
    /// are as good as the native path's (nearest neighbours all in-topic, and the topic margin
    /// of cosines within 25% of the native one).
    fn compare(arch: W2vArch) {
        let dir = tempfile::tempdir().expect("tmp");
        let corpus = topic_corpus(dir.path());
        let vocab = Vocab::build(&corpus, 1, |_| {}).expect("vocab");
        assert_eq!(vocab.len(), 100);
        let cfg = config(arch);

        let mut native = native::init(vocab.len(), cfg.dim, 1.0, cfg.seed);
        let p = Progress::default();
        native::train(&mut native, &corpus, &vocab, &cfg, 0, &p, |_, _| Ok(())).expect("native");

        let device = Device::flex();
        let init = native::init(vocab.len(), cfg.dim, 1.0, cfg.seed);
        let p = Progress::default();
        let mut epochs = Vec::new();
        let model =
            train(to_model(&init, &device), &corpus, &vocab, &cfg, 256, 0, &p, &device, |e, _| {
                epochs.push(e);
                Ok(())
            })
            .expect("batched");
        assert_eq!(epochs, vec![0, 1]);
        assert_eq!(p.words.load(Ordering::Relaxed), 2 * 40_000);
        let loss = p.loss_milli.load(Ordering::Relaxed) as f64
            / 1e3
            / p.loss_pairs.load(Ordering::Relaxed).max(1) as f64;
        // Random vectors score 6 ln 2 ≈ 4.16 per row.
        assert!(loss < 3.0, "batched loss {loss}");
        let batched = to_embeddings(&model).expect("read back");

        let (n_same, n_margin) = quality(&native, &vocab);
        let (b_same, b_margin) = quality(&batched, &vocab);
        assert_eq!(n_same, 1.0, "native {arch:?}");
        assert_eq!(b_same, 1.0, "batched {arch:?}");
        assert!(n_margin > 0.3, "native margin {n_margin}");
        assert!(
            b_margin > 0.75 * n_margin,
            "{arch:?}: batched margin {b_margin} vs native {n_margin}"
        );
    }

    #[test]
    fn skipgram_batched_matches_native_quality() {
        compare(W2vArch::Skipgram);
    }

    #[test]
    fn cbow_batched_matches_native_quality() {
        compare(W2vArch::Cbow);
    }

    #[test]
    fn stop_ends_without_an_epoch_callback() {
        let dir = tempfile::tempdir().expect("tmp");
        let corpus = topic_corpus(dir.path());
        let vocab = Vocab::build(&corpus, 1, |_| {}).expect("vocab");
        let device = Device::flex();
        let p = Progress::default();
        p.stop.store(true, Ordering::Relaxed);
        let cfg = config(W2vArch::Skipgram);
        let init = native::init(vocab.len(), cfg.dim, 1.0, cfg.seed);
        let mut called = false;
        train(to_model(&init, &device), &corpus, &vocab, &cfg, 64, 0, &p, &device, |_, _| {
            called = true;
            Ok(())
        })
        .expect("stopped");
        assert!(!called);
    }

    #[test]
    fn tables_round_trip_through_the_device() {
        let emb = native::init(9, 4, 0.5, 2);
        let back = to_embeddings(&to_model(&emb, &Device::flex())).expect("read");
        assert_eq!(back.input, emb.input);
        assert_eq!(back.output, emb.output);
    }
}
