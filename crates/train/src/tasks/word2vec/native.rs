//! word2vec on the CPU the way word2vec.c and gensim do it: several threads update the two
//! embedding tables in place without locks ("Hogwild", Recht et al. 2011), one (input, target)
//! pair at a time.
//!
//! Why not Burn tensors here: a pair's work is two dot products and two axpys of `dim` (~100)
//! floats, ~0.2 µs; any tensor op on the CPU backends costs microseconds of dispatch, so batching
//! pairs into tensors (the GPU path, `Word2Vec::sgd_step`) runs far below word2vec.c's speed on a
//! CPU. Races between threads on the same row are tolerated by design: updates are sparse and
//! small, as in word2vec.c and gensim. The tables are `burnlab_kernels::hogwild` tables
//! (relaxed atomics), so those races are defined behaviour.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Result;
use burnlab_data::sampling::{Subsampler, UnigramTable, window_around};
use burnlab_data::{Corpus, Vocab};
use burnlab_kernels::hogwild::HogwildTable;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum W2vArch {
    Skipgram,
    Cbow,
}

impl W2vArch {
    pub fn name(self) -> &'static str {
        match self {
            W2vArch::Skipgram => "skipgram",
            W2vArch::Cbow => "cbow",
        }
    }
}

#[derive(Clone, Debug)]
pub struct NativeConfig {
    pub arch: W2vArch,
    pub dim: usize,
    pub window: usize,
    pub negative: usize,
    pub sample: f64,
    pub alpha: f64,
    pub epochs: usize,
    pub threads: usize,
    pub seed: u64,
}

/// The two tables, row-major [vocab, dim].
#[derive(Clone, Debug)]
pub struct Embeddings {
    pub dim: usize,
    pub input: Vec<f32>,
    pub output: Vec<f32>,
}

/// Training progress, shared with whoever draws the progress bar or dashboard.
#[derive(Debug, Default)]
pub struct Progress {
    /// Corpus words read (sub-sampled ones included), over all epochs.
    pub words: AtomicU64,
    /// Learning rate × 1e9.
    pub alpha_nano: AtomicU64,
    /// Summed loss and pairs of the sampled loss estimate (× 1e3, integer for atomics).
    pub loss_milli: AtomicU64,
    pub loss_pairs: AtomicU64,
    /// Set to stop training early (the dashboard's quit key, Ctrl-C): the current epoch is
    /// abandoned and gets no checkpoint.
    pub stop: AtomicBool,
}

const EXP_TABLE: usize = 1000;
const MAX_EXP: f32 = 6.0;

/// σ(x) on a table over [−6, 6], as word2vec.c: outside it the gradient saturates.
struct Sigmoid(Vec<f32>);

impl Sigmoid {
    fn new() -> Self {
        Self(
            (0..EXP_TABLE)
                .map(|i| {
                    let x = (i as f32 / EXP_TABLE as f32 * 2.0 - 1.0) * MAX_EXP;
                    1.0 / (1.0 + (-x).exp())
                })
                .collect(),
        )
    }

    /// label − σ(f), with word2vec.c's clipping.
    #[inline]
    fn error(&self, f: f32, label: f32) -> f32 {
        if f > MAX_EXP {
            label - 1.0
        } else if f < -MAX_EXP {
            label
        } else {
            // f just below MAX_EXP can round up to EXP_TABLE (word2vec.c allocates one spare,
            // uninitialised entry for it): the last entry stands in.
            let i = ((f + MAX_EXP) * (EXP_TABLE as f32 / MAX_EXP / 2.0)) as usize;
            label - self.0[i.min(EXP_TABLE - 1)]
        }
    }
}

/// Input vectors uniform in ±range/dim, output vectors zero: word2vec.c starts with range 0.5,
/// gensim with 1.0.
pub fn init(vocab: usize, dim: usize, range: f32, seed: u64) -> Embeddings {
    let mut rng = SmallRng::seed_from_u64(seed);
    let input =
        (0..vocab * dim).map(|_| (2.0 * rng.random::<f32>() - 1.0) * range / dim as f32).collect();
    Embeddings { dim, input, output: vec![0.0; vocab * dim] }
}

/// Train `emb` on `corpus` for epochs `first_epoch..cfg.epochs` (0-based), calling `on_epoch`
/// after each complete one; returns early when `progress.stop` is set. The learning rate falls
/// linearly from α to α·1e-4 over all words of all epochs.
pub fn train(
    emb: &mut Embeddings,
    corpus: &Corpus,
    vocab: &Vocab,
    cfg: &NativeConfig,
    first_epoch: usize,
    progress: &Progress,
    mut on_epoch: impl FnMut(usize, &Embeddings) -> Result<()>,
) -> Result<()> {
    let plan = Plan {
        first_epoch,
        within: None,
        every: None,
        on_epoch: &mut on_epoch,
        on_within: &mut |_, _| Ok(()),
    };
    train_planned(emb, corpus, vocab, cfg, progress, plan)
}

/// Where training stood after `chunks` chunks of epoch `epoch` (0-based): what a checkpoint
/// inside an epoch holds besides the tables, and what a resume restores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Within {
    pub epoch: usize,
    pub chunks: usize,
    /// Corpus words (vocabulary words, sub-sampled ones included) in those chunks.
    pub words: u64,
    /// The epoch's loss estimate so far (see [`Progress`]).
    pub loss_milli: u64,
    pub loss_pairs: u64,
}

/// What to train and when to checkpoint.
pub struct Plan<'a> {
    pub first_epoch: usize,
    /// Resume inside `first_epoch` from this point (its tables are the ones passed in).
    pub within: Option<Within>,
    /// Time between checkpoints inside an epoch; `None`: at epoch ends only. A stop
    /// (`progress.stop`) also checkpoints where it stopped.
    pub every: Option<Duration>,
    pub on_epoch: &'a mut dyn FnMut(usize, &Embeddings) -> Result<()>,
    pub on_within: &'a mut dyn FnMut(&Within, &Embeddings) -> Result<()>,
}

/// Words per chunk: the unit the reader hands to the threads, and the granularity of
/// checkpoints inside an epoch.
const CHUNK_WORDS: usize = 10_000;

/// Each chunk draws from its own generator, seeded from (seed, epoch, chunk): a run resumed at a
/// chunk draws what the uninterrupted run drew (exactly so with one thread).
fn chunk_rng(seed: u64, epoch: usize, chunk: usize) -> SmallRng {
    SmallRng::seed_from_u64(
        seed ^ ((epoch as u64) << 32) ^ (chunk as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
}

/// [`train`], resuming inside an epoch and checkpointing inside epochs as `plan` says.
pub fn train_planned(
    emb: &mut Embeddings,
    corpus: &Corpus,
    vocab: &Vocab,
    cfg: &NativeConfig,
    progress: &Progress,
    plan: Plan,
) -> Result<()> {
    let dim = cfg.dim;
    let total_words = vocab.total();
    let schedule_words = (cfg.epochs as u64 * total_words).max(1);
    let sub = Subsampler::new(&vocab.counts, cfg.sample);
    let table = UnigramTable::new(&vocab.counts, 0.75);
    let sigmoid = Sigmoid::new();
    let threads = cfg.threads.max(1);
    let first_epoch = plan.first_epoch;
    progress.words.store(first_epoch as u64 * total_words, Ordering::Relaxed);
    if let Some(w) = plan.within {
        progress.loss_milli.store(w.loss_milli, Ordering::Relaxed);
        progress.loss_pairs.store(w.loss_pairs, Ordering::Relaxed);
    }
    let mut last_save = Instant::now();
    for epoch in first_epoch..cfg.epochs {
        let skip = plan.within.filter(|w| w.epoch == epoch).map_or(0, |w| w.chunks);
        let (tx, rx) = mpsc::sync_channel::<(usize, Vec<Vec<u32>>)>(threads * 4);
        // Only the workers hold the receiver: if they all die (a panic), a send fails instead of
        // blocking the reader for ever.
        let rx = Arc::new(Mutex::new(rx));
        let (input, output) =
            (HogwildTable::new(&emb.input, dim), HogwildTable::new(&emb.output, dim));
        let (input, output) = (&input, &output);
        // Chunks the threads have finished this epoch: a checkpoint waits for all sent.
        let finished = AtomicUsize::new(0);
        let mut at = Within { epoch, chunks: 0, words: 0, loss_milli: 0, loss_pairs: 0 };
        let snapshot = |at: &Within| {
            let sent = at.chunks - skip;
            while finished.load(Ordering::Acquire) < sent {
                std::thread::sleep(Duration::from_micros(50));
            }
            let at = Within {
                loss_milli: progress.loss_milli.load(Ordering::Relaxed),
                loss_pairs: progress.loss_pairs.load(Ordering::Relaxed),
                ..*at
            };
            (at, Embeddings { dim, input: input.to_vec(), output: output.to_vec() })
        };
        let read: Result<()> = std::thread::scope(|s| {
            for _ in 0..threads {
                let rx = rx.clone();
                let (sub, table, sigmoid, finished) = (&sub, &table, &sigmoid, &finished);
                s.spawn(move || {
                    let mut work = Worker::new(dim);
                    loop {
                        let (index, chunk) = match rx.lock().map(|r| r.recv()) {
                            Ok(Ok(c)) => c,
                            _ => break,
                        };
                        let mut rng = chunk_rng(cfg.seed, epoch, index);
                        for sentence in &chunk {
                            let done =
                                progress.words.fetch_add(sentence.len() as u64, Ordering::Relaxed);
                            let alpha = (cfg.alpha * (1.0 - done as f64 / schedule_words as f64))
                                .max(cfg.alpha * 1e-4)
                                as f32;
                            progress
                                .alpha_nano
                                .store((alpha as f64 * 1e9) as u64, Ordering::Relaxed);
                            work.sentence.clear();
                            work.sentence.extend(
                                sentence.iter().copied().filter(|&w| sub.keep(w, &mut rng)),
                            );
                            work.train_sentence(
                                cfg, alpha, input, output, table, sigmoid, &mut rng, progress,
                            );
                        }
                        finished.fetch_add(1, Ordering::Release);
                    }
                });
            }
            drop(rx);
            // Reader: sentences as vocabulary indices, in chunks of ~10k words.
            let mut chunk: Vec<Vec<u32>> = Vec::new();
            let mut words = 0;
            let mut failed = None;
            let mut hand_out = |chunk: Vec<Vec<u32>>, words: usize| -> Result<bool> {
                let index = at.chunks;
                at.chunks += 1;
                at.words += words as u64;
                if index < skip {
                    // Trained before the checkpoint this run resumed from.
                    progress.words.fetch_add(words as u64, Ordering::Relaxed);
                    return Ok(true);
                }
                if tx.send((index, chunk)).is_err() {
                    return Ok(false);
                }
                if plan.every.is_some_and(|d| last_save.elapsed() >= d) {
                    let (at, tables) = snapshot(&at);
                    (plan.on_within)(&at, &tables)?;
                    last_save = Instant::now();
                }
                Ok(true)
            };
            let result = corpus.for_each_sentence(|sentence| {
                if progress.stop.load(Ordering::Relaxed) {
                    return false;
                }
                let ids: Vec<u32> = sentence.iter().filter_map(|w| vocab.get(w)).collect();
                words += ids.len();
                chunk.push(ids);
                if words >= CHUNK_WORDS {
                    match hand_out(std::mem::take(&mut chunk), std::mem::take(&mut words)) {
                        Ok(go_on) => return go_on,
                        Err(e) => {
                            failed = Some(e);
                            return false;
                        }
                    }
                }
                true
            });
            if failed.is_none() && !chunk.is_empty() && !progress.stop.load(Ordering::Relaxed) {
                hand_out(chunk, words)?;
            }
            drop(tx);
            if let Some(e) = failed {
                return Err(e);
            }
            result.map_err(Into::into)
        });
        read?;
        if progress.stop.load(Ordering::Relaxed) {
            // Stopped (a signal, the dashboard's `q`): keep what the finished chunks trained.
            if at.chunks > skip {
                let (at, tables) = snapshot(&at);
                (plan.on_within)(&at, &tables)?;
            }
            return Ok(());
        }
        (emb.input, emb.output) = (input.to_vec(), output.to_vec());
        (plan.on_epoch)(epoch, emb)?;
        last_save = Instant::now();
    }
    Ok(())
}

struct Worker {
    sentence: Vec<u32>,
    neu1: Vec<f32>,
    neu1e: Vec<f32>,
    /// A row of a shared table, read into this thread's buffer (input, output).
    hbuf: Vec<f32>,
    obuf: Vec<f32>,
    centres: u64,
}

impl Worker {
    fn new(dim: usize) -> Self {
        Self {
            sentence: Vec::new(),
            neu1: vec![0.0; dim],
            neu1e: vec![0.0; dim],
            hbuf: vec![0.0; dim],
            obuf: vec![0.0; dim],
            centres: 0,
        }
    }

    /// One negative-sampling update of `h` (row or CBOW mean) against `word` and its
    /// negatives; accumulates the input error in `neu1e`. Returns the loss when `track`.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        h: &[f32],
        word: u32,
        cfg: &NativeConfig,
        alpha: f32,
        output: &HogwildTable,
        table: &UnigramTable,
        sigmoid: &Sigmoid,
        rng: &mut SmallRng,
        track: bool,
    ) -> f32 {
        let mut loss = 0.0;
        let mut o = std::mem::take(&mut self.obuf);
        for d in 0..=cfg.negative {
            let (target, label) =
                if d == 0 { (word, 1.0) } else { (table.negative(word, rng), 0.0) };
            let f = output.read_dot(target, h, &mut o);
            if track {
                let z = if label > 0.5 { f } else { -f };
                loss += (1.0 + (-z).exp()).ln();
            }
            let g = sigmoid.error(f, label) * alpha;
            output.update(target, g, &o, h, &mut self.neu1e);
        }
        self.obuf = o;
        loss
    }

    #[allow(clippy::too_many_arguments)]
    fn train_sentence(
        &mut self,
        cfg: &NativeConfig,
        alpha: f32,
        input: &HogwildTable,
        output: &HogwildTable,
        table: &UnigramTable,
        sigmoid: &Sigmoid,
        rng: &mut SmallRng,
        progress: &Progress,
    ) {
        let n = self.sentence.len();
        let (mut loss, mut pairs) = (0f32, 0u64);
        for i in 0..n {
            let word = self.sentence[i];
            let Range { start: lo, end: hi } = window_around(i, n, cfg.window, rng);
            self.centres += 1;
            // Estimate the loss on one centre word in 16 (it costs a log per pair).
            let track = self.centres.is_multiple_of(16);
            match cfg.arch {
                W2vArch::Skipgram => {
                    for c in (lo..hi).filter(|&c| c != i) {
                        let context = self.sentence[c];
                        self.neu1e.fill(0.0);
                        let mut h = std::mem::take(&mut self.hbuf);
                        input.read(context, &mut h);
                        let l =
                            self.update(&h, word, cfg, alpha, output, table, sigmoid, rng, track);
                        self.hbuf = h;
                        input.axpy(context, 1.0, &self.neu1e);
                        if track {
                            loss += l;
                            pairs += 1;
                        }
                    }
                }
                W2vArch::Cbow => {
                    let count = hi - lo - 1;
                    if count == 0 {
                        continue;
                    }
                    self.neu1.fill(0.0);
                    for c in (lo..hi).filter(|&c| c != i) {
                        input.add_into(self.sentence[c], &mut self.neu1);
                    }
                    let inv = 1.0 / count as f32;
                    self.neu1.iter_mut().for_each(|v| *v *= inv);
                    self.neu1e.fill(0.0);
                    let h = std::mem::take(&mut self.neu1);
                    let l = self.update(&h, word, cfg, alpha, output, table, sigmoid, rng, track);
                    self.neu1 = h;
                    // word2vec.c adds the whole error to every context word (not divided by
                    // the count), and gensim does the same; its α of 0.05 assumes it.
                    for c in (lo..hi).filter(|&c| c != i) {
                        input.axpy(self.sentence[c], 1.0, &self.neu1e);
                    }
                    if track {
                        loss += l;
                        pairs += 1;
                    }
                }
            }
        }
        if pairs > 0 {
            progress.loss_milli.fetch_add((loss as f64 * 1e3) as u64, Ordering::Relaxed);
            progress.loss_pairs.fetch_add(pairs, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burnlab_kernels::hogwild::{axpy, dot};

    /// Scores at the table's upper edge (6.0 − 1 ulp rounds to index 1000 in f32) are read from
    /// its last entry, not past it (a run of a sweep hit it and panicked), and are σ's.
    #[test]
    fn the_sigmoid_table_edge_is_inside_the_table() {
        let s = Sigmoid::new();
        for f in
            [MAX_EXP, f32::from_bits(MAX_EXP.to_bits() - 1), f32::from_bits(MAX_EXP.to_bits() - 2)]
        {
            let g = s.error(f, 1.0);
            assert!((0.0..0.01).contains(&g), "{f}: {g}");
        }
        for f in [-MAX_EXP, 0.0, 2.5] {
            let want = 1.0 - 1.0 / (1.0 + (-f).exp());
            assert!((s.error(f, 1.0) - want).abs() < 0.01, "{f}");
        }
    }

    /// Two "topics" whose words only ever appear among themselves: after training, every word's
    /// nearest neighbour (cosine) is from its own topic.
    fn topic_corpus(dir: &std::path::Path) -> Corpus {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut text = String::new();
        for _ in 0..3000 {
            let topic = rng.random_range(0..2);
            let words: Vec<String> =
                (0..12).map(|_| format!("t{topic}w{}", rng.random_range(0..10))).collect();
            text.push_str(&words.join(" "));
            text.push('\n');
        }
        let p = dir.join("topics.txt");
        std::fs::write(&p, text).expect("write");
        Corpus::open(&p, false).expect("open")
    }

    fn nearest_same_topic(emb: &Embeddings, vocab: &Vocab) -> f64 {
        let dim = emb.dim;
        let unit: Vec<Vec<f32>> = (0..vocab.len())
            .map(|i| {
                let v = &emb.input[i * dim..(i + 1) * dim];
                let n = dot(v, v).sqrt().max(1e-12);
                v.iter().map(|x| x / n).collect()
            })
            .collect();
        let mut same = 0;
        for i in 0..vocab.len() {
            let best = (0..vocab.len())
                .filter(|&j| j != i)
                .max_by(|&a, &b| dot(&unit[i], &unit[a]).total_cmp(&dot(&unit[i], &unit[b])))
                .expect("other");
            same += (vocab.words[i][..2] == vocab.words[best][..2]) as usize;
        }
        same as f64 / vocab.len() as f64
    }

    fn run(arch: W2vArch, threads: usize) -> (f64, f64) {
        let dir = tempfile::tempdir().expect("tmp");
        let corpus = topic_corpus(dir.path());
        let vocab = Vocab::build(&corpus, 1, |_| {}).expect("vocab");
        assert_eq!(vocab.len(), 20);
        let cfg = NativeConfig {
            arch,
            dim: 16,
            window: 3,
            negative: 5,
            sample: 0.0,
            alpha: if arch == W2vArch::Cbow { 0.05 } else { 0.025 },
            epochs: 3,
            threads,
            seed: 7,
        };
        let mut emb = init(vocab.len(), cfg.dim, 1.0, cfg.seed);
        let progress = Progress::default();
        let mut epochs = Vec::new();
        train(&mut emb, &corpus, &vocab, &cfg, 0, &progress, |e, _| {
            epochs.push(e);
            Ok(())
        })
        .expect("train");
        assert_eq!(epochs, vec![0, 1, 2]);
        assert_eq!(progress.words.load(Ordering::Relaxed), 3 * 36_000);
        let loss = progress.loss_milli.load(Ordering::Relaxed) as f64
            / 1e3
            / progress.loss_pairs.load(Ordering::Relaxed).max(1) as f64;
        (nearest_same_topic(&emb, &vocab), loss)
    }

    #[test]
    fn skipgram_learns_topics_single_and_multi_threaded() {
        for threads in [1, 2] {
            let (same, loss) = run(W2vArch::Skipgram, threads);
            assert_eq!(same, 1.0, "threads {threads}");
            // Random vectors score ln 2 per (positive or negative) target: 6 ln 2 ≈ 4.16.
            assert!(loss < 3.0, "loss {loss}");
        }
    }

    #[test]
    fn cbow_learns_topics() {
        let (same, loss) = run(W2vArch::Cbow, 2);
        assert_eq!(same, 1.0);
        assert!(loss < 3.0, "loss {loss}");
    }

    #[test]
    fn init_fills_plus_minus_range_over_dim() {
        for range in [0.5f32, 1.0] {
            let e = init(200, 10, range, 3);
            assert!(e.output.iter().all(|&v| v == 0.0));
            let (lo, hi) = e.input.iter().fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
            // 2,000 uniform draws reach within 1% of both ends.
            assert!(lo >= -range / 10.0 && lo < -0.99 * range / 10.0, "range {range}: min {lo}");
            assert!(hi <= range / 10.0 && hi > 0.99 * range / 10.0, "range {range}: max {hi}");
            let mean = e.input.iter().sum::<f32>() / e.input.len() as f32;
            assert!(mean.abs() < 0.05 * range / 10.0, "mean {mean}");
        }
    }

    #[test]
    fn sigmoid_table_and_kernels() {
        let s = Sigmoid::new();
        assert!((s.error(0.0, 1.0) - 0.5).abs() < 0.01);
        assert!((s.error(2.0, 0.0) + 1.0 / (1.0 + (-2.0f32).exp())).abs() < 0.01);
        assert_eq!(s.error(7.0, 1.0), 0.0);
        assert_eq!(s.error(-7.0, 1.0), 1.0);
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..13).map(|i| (i % 3) as f32).collect();
        assert_eq!(dot(&a, &b), a.iter().zip(&b).map(|(x, y)| x * y).sum::<f32>());
        let mut y = b.clone();
        axpy(2.0, &a, &mut y);
        assert_eq!(y[12], 24.0);
    }
}
