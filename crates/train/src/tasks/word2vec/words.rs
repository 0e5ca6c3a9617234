//! Using trained word vectors: nearest words, analogies (3CosAdd) and the standard benchmarks
//! (Mikolov's questions-words analogies, WordSim-353 similarity with Spearman's ρ).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use burnlab_data::WordVectors;

/// Unit-length vectors with a word index.
pub struct Embedding {
    pub words: Vec<String>,
    dim: usize,
    unit: Vec<f32>,
    index: HashMap<String, usize>,
}

impl Embedding {
    pub fn new(v: WordVectors) -> Self {
        let dim = v.dim;
        let mut unit = v.vectors;
        for row in unit.chunks_exact_mut(dim) {
            let n = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|x| *x /= n);
        }
        let index = v.words.iter().enumerate().map(|(i, w)| (w.clone(), i)).collect();
        Self { words: v.words, dim, unit, index }
    }

    /// A run folder (its `vectors.bin`) or a vectors file (text or binary).
    pub fn load(path: &Path) -> Result<Self> {
        let file = if path.is_dir() {
            path.join(crate::tasks::word2vec::VECTORS_BIN)
        } else {
            path.to_path_buf()
        };
        if !file.exists() {
            bail!(
                "{}: no word vectors here (a word2vec run folder or a vectors file)",
                path.display()
            );
        }
        Ok(Self::new(WordVectors::read(&file)?))
    }

    /// Index of `word`, falling back to its lowercase form.
    pub fn get(&self, word: &str) -> Option<usize> {
        self.index.get(word).or_else(|| self.index.get(&word.to_lowercase())).copied()
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.unit[i * self.dim..(i + 1) * self.dim]
    }

    /// The unit-length vector of word `i`.
    pub fn unit_row(&self, i: usize) -> &[f32] {
        self.row(i)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The `k` words with the highest cosine similarity to `query` (a unit-normalised sum),
    /// leaving out `exclude`.
    pub fn nearest(&self, query: &[f32], k: usize, exclude: &[usize]) -> Vec<(usize, f32)> {
        let mut scored: Vec<(usize, f32)> = (0..self.words.len())
            .filter(|i| !exclude.contains(i))
            .map(|i| (i, self.row(i).iter().zip(query).map(|(a, b)| a * b).sum::<f32>()))
            .collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
        scored.truncate(k);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored
    }

    pub fn similar(&self, word: &str, k: usize) -> Result<Vec<(String, f32)>> {
        let i = self.get(word).with_context(|| format!("`{word}` is not in the vocabulary"))?;
        Ok(self
            .nearest(self.row(i), k, &[i])
            .into_iter()
            .map(|(j, s)| (self.words[j].clone(), s))
            .collect())
    }

    /// 3CosAdd: the words closest to b − a + c (a is to b as c is to ?), a, b, c left out.
    pub fn analogy(&self, a: usize, b: usize, c: usize, k: usize) -> Vec<(usize, f32)> {
        let q: Vec<f32> =
            (0..self.dim).map(|d| self.row(b)[d] - self.row(a)[d] + self.row(c)[d]).collect();
        let n = q.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        let q: Vec<f32> = q.iter().map(|x| x / n).collect();
        self.nearest(&q, k, &[a, b, c])
    }

    pub fn cosine(&self, a: usize, b: usize) -> f32 {
        self.row(a).iter().zip(self.row(b)).map(|(x, y)| x * y).sum()
    }
}

/// Accuracy over one group of analogy questions.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Score {
    pub correct: usize,
    /// Questions whose four words are all in the vocabulary.
    pub covered: usize,
    pub total: usize,
}

impl Score {
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.covered.max(1) as f64
    }
    pub fn add(&mut self, o: &Score) {
        self.correct += o.correct;
        self.covered += o.covered;
        self.total += o.total;
    }
}

/// Per-section scores, then the semantic and syntactic totals.
type AnalogyScores = (Vec<(String, Score)>, Score, Score);

/// questions-words.txt: `: section` lines, then `a b c d` questions. Sections whose name starts
/// with `gram` are syntactic, the others semantic (Mikolov et al. 2013).
pub fn analogies(e: &Embedding, path: &Path) -> Result<AnalogyScores> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut sections: Vec<(String, Score)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix(':') {
            sections.push((name.trim().to_string(), Score::default()));
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() != 4 {
            bail!("{}: line {}: expected four words, got `{line}`", path.display(), n + 1);
        }
        let Some((_, score)) = sections.last_mut() else {
            bail!("{}: line {}: a question before any `: section` line", path.display(), n + 1);
        };
        score.total += 1;
        let ids: Vec<Option<usize>> = words.iter().map(|w| e.get(w)).collect();
        if let [Some(a), Some(b), Some(c), Some(d)] = ids[..] {
            score.covered += 1;
            if e.analogy(a, b, c, 1).first().is_some_and(|(i, _)| *i == d) {
                score.correct += 1;
            }
        }
    }
    let (mut sem, mut syn) = (Score::default(), Score::default());
    for (name, s) in &sections {
        if name.starts_with("gram") { syn.add(s) } else { sem.add(s) }
    }
    Ok((sections, sem, syn))
}

/// Spearman's ρ between two lists (average ranks for ties).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0 + 1.0;
            for k in i..=j {
                r[order[k]] = avg;
            }
            i = j + 1;
        }
        r
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt().max(1e-300)
}

/// A similarity file (`word1<TAB>word2<TAB>score`, `#` comments): ρ and (covered, total).
pub fn similarity(e: &Embedding, path: &Path) -> Result<(f64, usize, usize)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut human, mut model, mut total) = (Vec::new(), Vec::new(), 0);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split(['\t', ',']).map(str::trim).collect();
        let score = parts.get(2).and_then(|s| s.parse::<f64>().ok());
        let (Some(a), Some(b), Some(score)) = (parts.first(), parts.get(1), score) else {
            bail!("{}: line {}: expected `word1<TAB>word2<TAB>score`", path.display(), n + 1);
        };
        total += 1;
        if let (Some(i), Some(j)) = (e.get(a), e.get(b)) {
            human.push(score);
            model.push(e.cosine(i, j) as f64);
        }
    }
    let covered = human.len();
    Ok((if covered > 1 { spearman(&human, &model) } else { 0.0 }, covered, total))
}

/// Projections of `rows` (n rows of `dim`, row-major) on their top `k` principal axes:
/// eigenvectors of the covariance matrix by power iteration with deflation. Hand-written
/// because a dim×dim eigenproblem (dim ≈ 100) for a 2-D word map does not justify a linear
/// algebra dependency. Each axis's sign is fixed (largest component positive) so maps are
/// reproducible.
pub fn pca(rows: &[f32], dim: usize, k: usize) -> Vec<Vec<f64>> {
    let n = rows.len() / dim.max(1);
    if n == 0 {
        return Vec::new();
    }
    let mut mean = vec![0f64; dim];
    for r in rows.chunks_exact(dim) {
        mean.iter_mut().zip(r).for_each(|(m, &x)| *m += x as f64 / n as f64);
    }
    let centred: Vec<f64> = rows
        .chunks_exact(dim)
        .flat_map(|r| r.iter().zip(&mean).map(|(&x, m)| x as f64 - m))
        .collect();
    let mut cov = vec![0f64; dim * dim];
    for r in centred.chunks_exact(dim) {
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] += r[i] * r[j] / n as f64;
            }
        }
    }
    let mut axes = Vec::new();
    for a in 0..k.min(dim) {
        // A start vector that is not orthogonal to any axis in practice.
        let mut v: Vec<f64> =
            (0..dim).map(|i| 1.0 + ((i * 7 + a * 13) % 11) as f64 / 10.0).collect();
        let mut lambda = 0.0;
        for _ in 0..1000 {
            let w: Vec<f64> =
                (0..dim).map(|i| (0..dim).map(|j| cov[i * dim + j] * v[j]).sum()).collect();
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-30 {
                break;
            }
            let next: Vec<f64> = w.iter().map(|x| x / norm).collect();
            let change: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
            (v, lambda) = (next, norm);
            if change < 1e-12 {
                break;
            }
        }
        let big = v.iter().copied().fold(0f64, |b, x| if x.abs() > b.abs() { x } else { b });
        if big < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] -= lambda * v[i] * v[j];
            }
        }
        axes.push(v);
    }
    centred
        .chunks_exact(dim)
        .map(|r| axes.iter().map(|ax| ax.iter().zip(r).map(|(a, b)| a * b).sum()).collect())
        .collect()
}

pub fn similar_command(target: &Path, word: &str, k: usize) -> Result<()> {
    let e = Embedding::load(target)?;
    for (w, s) in e.similar(word, k)? {
        println!("{w:<20} {s:.4}");
    }
    Ok(())
}

pub fn analogy_command(target: &Path, a: &str, b: &str, c: &str, k: usize) -> Result<()> {
    let e = Embedding::load(target)?;
    let id = |w: &str| e.get(w).with_context(|| format!("`{w}` is not in the vocabulary"));
    let (ia, ib, ic) = (id(a)?, id(b)?, id(c)?);
    println!("{a} : {b} :: {c} : ?");
    for (i, s) in e.analogy(ia, ib, ic, k) {
        println!("{:<20} {s:.4}", e.words[i]);
    }
    Ok(())
}

pub fn eval_words_command(
    target: &Path,
    analogy_file: Option<&Path>,
    similarity_file: Option<&Path>,
) -> Result<()> {
    if analogy_file.is_none() && similarity_file.is_none() {
        bail!("nothing to evaluate: pass --analogies FILE and/or --similarity FILE");
    }
    let e = Embedding::load(target)?;
    println!("vocab={}", e.words.len());
    if let Some(p) = analogy_file {
        let (sections, sem, syn) = analogies(&e, p)?;
        for (name, s) in &sections {
            println!(
                "analogy_section={name} acc={:.4} correct={} covered={} total={}",
                s.accuracy(),
                s.correct,
                s.covered,
                s.total
            );
        }
        let mut all = sem.clone();
        all.add(&syn);
        for (name, s) in [("all", &all), ("sem", &sem), ("syn", &syn)] {
            println!("analogy_{name}_acc={:.4}", s.accuracy());
            println!("analogy_{name}_covered={}", s.covered);
            println!("analogy_{name}_total={}", s.total);
        }
    }
    if let Some(p) = similarity_file {
        let (rho, covered, total) = similarity(&e, p)?;
        println!("similarity_spearman={rho:.4}");
        println!("similarity_covered={covered}");
        println!("similarity_total={total}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_axes_of_largest_variance() {
        // A 5x4 grid (twice) spread 3 apart along (1,1,0)/√2 and 1 apart along (0,0,1), centred
        // at (5,5,5): nothing along (1,-1,0)/√2.
        let mut rows = Vec::new();
        let s = std::f32::consts::FRAC_1_SQRT_2;
        for i in 0..40 {
            let (a, b, c) = ((i % 5) as f32 - 2.0, ((i / 5) % 4) as f32 - 1.5, 0.0);
            let (a, b) = (3.0 * a, b);
            rows.extend([5.0 + s * (a + c), 5.0 + s * (a - c), 5.0 + b]);
        }
        let p = pca(&rows, 3, 2);
        assert_eq!(p.len(), 40);
        for (i, pr) in p.iter().enumerate() {
            let a = 3.0 * ((i % 5) as f64 - 2.0);
            let b = ((i / 5) % 4) as f64 - 1.5;
            assert!((pr[0] - a).abs() < 1e-4, "row {i}: {pr:?} vs {a}");
            assert!((pr[1] - b).abs() < 1e-4, "row {i}: {pr:?} vs {b}");
        }
    }

    /// king − man + woman = queen on hand-made vectors (gender on one axis, royalty on another).
    fn toy() -> Embedding {
        let rows: [(&str, [f32; 3]); 6] = [
            ("king", [1.0, 0.3, 0.0]),
            ("queen", [1.0, -0.3, 0.0]),
            ("man", [0.1, 0.3, 0.0]),
            ("woman", [0.1, -0.3, 0.0]),
            ("apple", [0.0, 0.0, 1.0]),
            ("Paris", [0.3, 0.0, -1.0]),
        ];
        Embedding::new(WordVectors {
            words: rows.iter().map(|r| r.0.to_string()).collect(),
            dim: 3,
            vectors: rows.iter().flat_map(|r| r.1).collect(),
        })
    }

    #[test]
    fn analogy_and_nearest_known_answers() {
        let e = toy();
        let id = |w: &str| e.get(w).expect("word");
        let top = e.analogy(id("man"), id("king"), id("woman"), 2);
        assert_eq!(e.words[top[0].0], "queen");
        assert!(top.iter().all(|(i, _)| ![id("man"), id("king"), id("woman")].contains(i)));
        let near = e.similar("king", 2).expect("similar");
        assert_eq!(near[0].0, "queen");
        assert!(near[0].1 > near[1].1);
        assert_eq!(
            e.get("paris"),
            None,
            "lowercase fallback only, not case folding of the vocabulary"
        );
        assert_eq!(
            e.get("KING"),
            Some(id("king")),
            "questions-words capitalises; the fallback finds lowercase words"
        );
        assert!(e.similar("banana", 3).is_err());
    }

    #[test]
    fn spearman_known_values() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // With ties: x ranks [1.5, 1.5, 3, 4], y ranks [1, 2, 3, 4]: ρ = 0.9487.
        assert!(
            (spearman(&[1.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]) - 0.948_683_3).abs() < 1e-6
        );
    }

    #[test]
    fn benchmark_files_score_coverage_and_sections() {
        let e = toy();
        let dir = tempfile::tempdir().expect("tmp");
        let q = dir.path().join("q.txt");
        std::fs::write(&q, ": royalty\nMan King Woman Queen\nman king woman apple\nman king dog queen\n: gram-plural\nking queen man woman\n").expect("write");
        let (sections, sem, syn) = analogies(&e, &q).expect("analogies");
        assert_eq!(sections[0].1, Score { correct: 1, covered: 2, total: 3 });
        assert_eq!(sem.accuracy(), 0.5);
        assert_eq!(syn.total, 1);
        let s = dir.path().join("s.tsv");
        std::fs::write(
            &s,
            "# comment\nking\tqueen\t9\nking\tapple\t2\nman\twoman\t8\nking\tdog\t5\n",
        )
        .expect("write");
        let (rho, covered, total) = similarity(&e, &s).expect("similarity");
        assert_eq!((covered, total), (3, 4));
        // Human order king-queen > man-woman > king-apple; cosines .83, -.80, 0: ρ = 0.5.
        assert!((rho - 0.5).abs() < 1e-9, "{rho}");
        std::fs::write(&q, "a b c d\n").expect("write");
        assert!(
            analogies(&e, &q)
                .expect_err("no section")
                .to_string()
                .contains("before any `: section`")
        );
    }
}
