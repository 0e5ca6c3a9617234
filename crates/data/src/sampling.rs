//! word2vec.c's samplers: sub-sampling of frequent words, negatives from the unigram
//! distribution raised to 0.75, and training pairs from a dynamic window.

use std::ops::Range;

use rand::Rng;

/// Probability that an occurrence of a word counted `count` times among `total` words is kept
/// when sub-sampling with threshold `sample` (word2vec.c: (√(c/(s·T)) + 1)·(s·T)/c, capped at 1).
/// `sample <= 0` keeps everything.
pub fn keep_probability(count: u64, total: u64, sample: f64) -> f64 {
    if sample <= 0.0 || count == 0 {
        return 1.0;
    }
    let st = sample * total as f64;
    let c = count as f64;
    (((c / st).sqrt() + 1.0) * st / c).min(1.0)
}

/// Per-word keep thresholds, scaled to u32 so a draw is one integer compare.
#[derive(Clone, Debug)]
pub struct Subsampler {
    thresholds: Vec<u64>,
}

impl Subsampler {
    pub fn new(counts: &[u64], sample: f64) -> Self {
        let total: u64 = counts.iter().sum();
        let thresholds = counts
            .iter()
            .map(|&c| (keep_probability(c, total, sample) * 4_294_967_296.0) as u64)
            .collect();
        Self { thresholds }
    }

    pub fn keep(&self, word: u32, rng: &mut impl Rng) -> bool {
        (rng.random::<u32>() as u64) < self.thresholds[word as usize]
    }
}

/// Draws word indices with probability ∝ count^power (Walker's alias method: O(1) per draw,
/// O(vocabulary) memory, where word2vec.c's table takes 10⁸ entries).
#[derive(Clone, Debug)]
pub struct UnigramTable {
    /// Acceptance threshold of each column, scaled to u32.
    accept: Vec<u32>,
    alias: Vec<u32>,
}

impl UnigramTable {
    pub fn new(counts: &[u64], power: f64) -> Self {
        let n = counts.len();
        assert!(n > 0, "UnigramTable needs a non-empty vocabulary");
        let weights: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(power)).collect();
        let sum: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / sum).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        let mut accept = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            accept[s] = (scaled[s] * 4_294_967_295.0) as u32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Leftovers (rounding) accept themselves with probability 1.
        Self { accept, alias }
    }

    pub fn len(&self) -> usize {
        self.accept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accept.is_empty()
    }

    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        let r: u64 = rng.random();
        let column = ((r >> 32) * self.accept.len() as u64) >> 32;
        if (r as u32) < self.accept[column as usize] {
            column as u32
        } else {
            self.alias[column as usize]
        }
    }

    /// A negative for `positive`: redrawn while it equals the positive word (unless the
    /// vocabulary has one word).
    pub fn negative(&self, positive: u32, rng: &mut impl Rng) -> u32 {
        loop {
            let w = self.sample(rng);
            if w != positive || self.accept.len() == 1 {
                return w;
            }
        }
    }
}

/// The effective window of one centre word: uniform in 1..=window (word2vec.c's `b`).
pub fn effective_window(window: usize, rng: &mut impl Rng) -> usize {
    window - rng.random_range(0..window.max(1))
}

/// The positions around centre `i` of an `n`-word sentence that its dynamic window reaches
/// (one draw from `rng`, as word2vec.c draws it per centre word); the centre itself is inside
/// the range, and the callers skip it. Both word2vec trainers walk sentences with it, drawing
/// their negatives from the same `rng` in between, so a walker holding the rng would not do.
pub fn window_around(i: usize, n: usize, window: usize, rng: &mut impl Rng) -> Range<usize> {
    let w = effective_window(window, rng);
    i.saturating_sub(w)..(i + w + 1).min(n)
}

/// Skip-gram pairs (centre, context) of a sentence: each position with every other position
/// within its own dynamic window, in sentence order.
pub fn skipgram_pairs(
    sentence: &[u32],
    window: usize,
    rng: &mut impl Rng,
    out: &mut Vec<(u32, u32)>,
) {
    for (i, &centre) in sentence.iter().enumerate() {
        let around = window_around(i, sentence.len(), window, rng);
        for (j, &context) in sentence.iter().enumerate().take(around.end).skip(around.start) {
            if j != i {
                out.push((centre, context));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn keep_probability_follows_the_formula() {
        // c = 1000 of T = 1e6, s = 1e-3: s·T = 1000 → (√1 + 1)·1 = 2 → capped to 1.
        assert_eq!(keep_probability(1000, 1_000_000, 1e-3), 1.0);
        // c = 100,000: (√100 + 1)·1000/100000 = 0.11.
        assert!((keep_probability(100_000, 1_000_000, 1e-3) - 0.11).abs() < 1e-12);
        // c = 40,000, s = 1e-4, T = 1e6: s·T = 100 → (√400 + 1)·100/40000 = 0.0525.
        assert!((keep_probability(40_000, 1_000_000, 1e-4) - 0.0525).abs() < 1e-12);
        assert_eq!(keep_probability(5, 10, 0.0), 1.0);
        // Empirically, through the sampler.
        let s = Subsampler::new(&[100_000, 900_000], 1e-3);
        let mut rng = StdRng::seed_from_u64(1);
        let kept = (0..200_000).filter(|_| s.keep(0, &mut rng)).count() as f64 / 200_000.0;
        assert!((kept - 0.11).abs() < 0.003, "{kept}");
    }

    #[test]
    fn negatives_follow_unigram_to_the_three_quarters() {
        let counts = [1000u64, 300, 300, 50, 7, 1, 1];
        let table = UnigramTable::new(&counts, 0.75);
        let weights: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
        let sum: f64 = weights.iter().sum();
        let n = 400_000usize;
        let mut seen = [0usize; 7];
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..n {
            seen[table.sample(&mut rng) as usize] += 1;
        }
        // Pearson's chi-square with 6 degrees of freedom: the 99.9% quantile is 22.46.
        let chi2: f64 = seen
            .iter()
            .zip(&weights)
            .map(|(&o, w)| {
                let e = n as f64 * w / sum;
                (o as f64 - e).powi(2) / e
            })
            .sum();
        assert!(chi2 < 22.46, "chi-square {chi2}: {seen:?}");
        // Never the positive word.
        assert!((0..10_000).all(|_| table.negative(0, &mut rng) != 0));
        assert_eq!(UnigramTable::new(&[5], 0.75).negative(0, &mut rng), 0);
    }

    #[test]
    fn window_pairs_of_a_known_sentence() {
        // A fixed RNG that always draws b = 0 gives the full window (word2vec.c with b = 0).
        struct Zero;
        impl rand::RngCore for Zero {
            fn next_u32(&mut self) -> u32 {
                0
            }
            fn next_u64(&mut self) -> u64 {
                0
            }
            fn fill_bytes(&mut self, dst: &mut [u8]) {
                dst.fill(0)
            }
        }
        let mut out = Vec::new();
        skipgram_pairs(&[10, 11, 12, 13], 2, &mut Zero, &mut out);
        assert_eq!(
            out,
            vec![
                (10, 11),
                (10, 12),
                (11, 10),
                (11, 12),
                (11, 13),
                (12, 10),
                (12, 11),
                (12, 13),
                (13, 11),
                (13, 12)
            ]
        );
        // Effective windows are uniform in 1..=window.
        let mut rng = StdRng::seed_from_u64(2);
        let mut hist = [0usize; 6];
        for _ in 0..50_000 {
            hist[effective_window(5, &mut rng)] += 1;
        }
        assert_eq!(hist[0], 0);
        assert!(hist[1..].iter().all(|&h| (9_500..10_500).contains(&h)), "{hist:?}");
    }
}
