//! word2vec with negative sampling (Mikolov et al. 2013): an input and an output embedding
//! table. Skip-gram predicts a context word from the centre word; CBOW predicts the centre word
//! from the mean of its context. Each (input, target) pair is a binary classification of the
//! target against `K` sampled negatives: loss = −log σ(h·o₊) − Σₖ log σ(−h·oₖ).
//!
//! Why an explicit update instead of autodiff + an optimizer: the gradient of a batch touches
//! only its rows, but Burn's embedding backward builds a dense [vocab, dim] gradient and the
//! optimizers then update every row, O(vocab·dim) per step. [`Word2Vec::sgd_step`] computes the
//! analytic gradient (word2vec.c's `g = (label − σ(f))·α`) and adds it to the touched rows with
//! `select_assign`, O(batch·(K + 1)·dim); a test checks it against autodiff.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::{Device, Distribution, IndexingUpdateOp, Int, Tensor, TensorData};

/// How CBOW's update reaches the context words whose mean was the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextUpdate {
    /// The exact gradient of the mean: each context word gets 1/count of the error.
    Gradient,
    /// word2vec.c and gensim: each context word gets the whole error (CBOW's default α of 0.05
    /// is tuned for this). The same as `Gradient` for skip-gram (one input per row).
    Word2VecC,
}

#[derive(Config, Debug)]
pub struct Word2VecConfig {
    pub vocab_size: usize,
    #[config(default = 100)]
    pub dim: usize,
    /// Input vectors start uniform in ±init_range/dim: 1.0 as gensim, 0.5 as word2vec.c.
    #[config(default = 1.0)]
    pub init_range: f64,
}

#[derive(Module, Debug)]
pub struct Word2Vec {
    /// Input vectors ("syn0"): the word vectors one keeps.
    pub input: Param<Tensor<2>>,
    /// Output vectors ("syn1neg").
    pub output: Param<Tensor<2>>,
}

impl Word2VecConfig {
    /// Input vectors uniform in ±init_range/dim, output vectors zero.
    pub fn init(&self, device: &Device) -> Word2Vec {
        let bound = self.init_range / self.dim as f64;
        let shape = [self.vocab_size, self.dim];
        Word2Vec {
            input: Param::from_tensor(Tensor::random(
                shape,
                Distribution::Uniform(-bound, bound),
                device,
            )),
            output: Param::from_tensor(Tensor::zeros(shape, device)),
        }
    }
}

/// One batch: `inputs` [B, C] input words (C = 1 for skip-gram; the context for CBOW, padded
/// where `mask` [B, C] is 0), `targets` [B, 1 + K] with the positive word first, then negatives.
#[derive(Clone, Debug)]
pub struct PairBatch {
    pub inputs: Tensor<2, Int>,
    pub mask: Tensor<2>,
    pub targets: Tensor<2, Int>,
}

impl PairBatch {
    /// Build from host vectors (row-major).
    pub fn new(
        inputs: Vec<i64>,
        mask: Vec<f32>,
        targets: Vec<i64>,
        batch: usize,
        device: &Device,
    ) -> Self {
        let c = inputs.len() / batch.max(1);
        let t = targets.len() / batch.max(1);
        Self {
            inputs: Tensor::from_data(TensorData::new(inputs, [batch, c]), device),
            mask: Tensor::from_data(TensorData::new(mask, [batch, c]), device),
            targets: Tensor::from_data(TensorData::new(targets, [batch, t]), device),
        }
    }
}

struct Forward {
    /// Masked mean of the input vectors [B, D].
    h: Tensor<2>,
    /// Inputs per row [B, 1].
    count: Tensor<2>,
    /// Target output vectors [B, T, D].
    o: Tensor<3>,
    /// Scores h·o [B, T].
    scores: Tensor<2>,
}

impl Word2Vec {
    pub fn vocab_size(&self) -> usize {
        self.input.dims()[0]
    }

    pub fn dim(&self) -> usize {
        self.input.dims()[1]
    }

    fn forward(&self, batch: &PairBatch) -> Forward {
        let [b, c] = batch.inputs.dims();
        let [_, t] = batch.targets.dims();
        let d = self.dim();
        let vin = self.input.val().select(0, batch.inputs.clone().flatten(0, 1)).reshape([b, c, d]);
        let count = batch.mask.clone().sum_dim(1).clamp_min(1.0);
        let h =
            (vin * batch.mask.clone().unsqueeze_dim(2)).sum_dim(1).reshape([b, d]) / count.clone();
        let o = self.output.val().select(0, batch.targets.clone().flatten(0, 1)).reshape([b, t, d]);
        let scores = (o.clone() * h.clone().unsqueeze_dim(1)).sum_dim(2).reshape([b, t]);
        Forward { h, count, o, scores }
    }

    /// ±1 per target column: +1 for the positive (column 0), −1 for the negatives.
    fn signs(t: usize, device: &Device) -> Tensor<2> {
        let mut s = vec![-1f32; t];
        s[0] = 1.0;
        Tensor::from_data(TensorData::new(s, [1, t]), device)
    }

    /// Summed negative-sampling loss of the batch (differentiable: used to check the update).
    pub fn loss_sum(&self, batch: &PairBatch) -> Tensor<1> {
        let f = self.forward(batch);
        let [_, t] = f.scores.dims();
        let z = f.scores * Self::signs(t, &batch.targets.device());
        log_sigmoid(z).sum().neg()
    }

    /// One plain SGD step at learning rate `lr` on the rows the batch touches; returns the
    /// updated model and the batch's mean loss per pair (before the step). Rows that several
    /// pairs touch get the sum of their updates, as a minibatch gradient would.
    pub fn sgd_step(self, batch: &PairBatch, lr: f64, context: ContextUpdate) -> (Self, Tensor<1>) {
        let device = batch.targets.device();
        let [b, c] = batch.inputs.dims();
        let f = self.forward(batch);
        let [_, t, d] = f.o.dims();
        let signs = Self::signs(t, &device);
        let loss = log_sigmoid(f.scores.clone() * signs.clone()).sum().neg().div_scalar(b as f64);
        // label − σ(s), with labels 1 for the positive and 0 for the negatives, times lr.
        let labels = signs.add_scalar(1.0).div_scalar(2.0);
        let g = (labels - sigmoid(f.scores)).mul_scalar(lr); // [B, T]
        let g3 = g.unsqueeze_dim::<3>(2); // [B, T, 1]
        let dh = (g3.clone() * f.o).sum_dim(1).reshape([b, d]); // Σₖ gₖ oₖ
        let d_out = g3 * f.h.unsqueeze_dim::<3>(1); // gₖ h
        let dh = match context {
            ContextUpdate::Gradient => dh / f.count,
            ContextUpdate::Word2VecC => dh,
        };
        let d_in = dh.unsqueeze_dim::<3>(1) * batch.mask.clone().unsqueeze_dim(2); // [B, C, D]
        let targets = batch.targets.clone().flatten(0, 1);
        let inputs = batch.inputs.clone().flatten(0, 1);
        let output = self
            .output
            .map(|o| o.select_assign(0, targets, d_out.reshape([b * t, d]), IndexingUpdateOp::Add));
        let input = self
            .input
            .map(|i| i.select_assign(0, inputs, d_in.reshape([b * c, d]), IndexingUpdateOp::Add));
        (Self { input, output }, loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec().expect("f32")
    }

    /// The sparse update equals −lr × the autodiff gradient of the summed loss, duplicates
    /// included (the same word as input twice, the same target in several rows). With
    /// `Word2VecC`, each input row's step is instead the gradient times its row's context count
    /// (`counts[i]` for input row i of the flattened [B, C] inputs).
    fn check(inputs: Vec<i64>, mask: Vec<f32>, targets: Vec<i64>, batch: usize) {
        check_with(inputs.clone(), mask.clone(), targets.clone(), batch, ContextUpdate::Gradient);
        check_with(inputs, mask, targets, batch, ContextUpdate::Word2VecC);
    }

    fn check_with(
        inputs: Vec<i64>,
        mask: Vec<f32>,
        targets: Vec<i64>,
        batch: usize,
        context: ContextUpdate,
    ) {
        let plain = Device::flex();
        plain.seed(5);
        let mut m = Word2VecConfig::new(7).with_dim(5).init(&plain);
        // Non-zero output vectors, so that both tables get gradients.
        m.output =
            Param::from_tensor(Tensor::random([7, 5], Distribution::Uniform(-0.5, 0.5), &plain));
        let lr = 0.1;

        let ad = plain.clone().autodiff();
        let mad = m.clone().fork(&ad).train();
        let batch_ad = PairBatch::new(inputs.clone(), mask.clone(), targets.clone(), batch, &ad);
        let grads = mad.loss_sum(&batch_ad).backward();
        let g_in = rows(mad.input.grad(&grads).expect("input grad"));
        let g_out = rows(mad.output.grad(&grads).expect("output grad"));

        // Word2VecC scales the input step of each row by its count of real context words;
        // autodiff's gradient of an input word sums over the rows it appears in, so the scale
        // of a word is defined when all its rows have the same count (asserted here).
        let c = inputs.len() / batch;
        let row_count: Vec<f32> = mask.chunks(c).map(|r| r.iter().sum()).collect();
        let mut scale_in = vec![1f32; 7];
        if context == ContextUpdate::Word2VecC {
            for (k, &w) in inputs.iter().enumerate() {
                if mask[k] > 0.0 {
                    let counts: Vec<f32> = inputs
                        .iter()
                        .enumerate()
                        .filter(|(j, x)| **x == w && mask[*j] > 0.0)
                        .map(|(j, _)| row_count[j / c])
                        .collect();
                    assert!(
                        counts.iter().all(|&n| n == counts[0]),
                        "word {w} in rows of different sizes"
                    );
                    scale_in[w as usize] = counts[0];
                }
            }
        }
        let batch = PairBatch::new(inputs, mask, targets, batch, &plain);
        let (before_in, before_out) = (rows(m.input.val()), rows(m.output.val()));
        let (next, loss) = m.sgd_step(&batch, lr, context);
        assert!(loss.into_scalar::<f32>() > 0.0);
        for (name, before, after, grad, scale) in [
            ("input", before_in, rows(next.input.val()), g_in, scale_in),
            ("output", before_out, rows(next.output.val()), g_out, vec![1f32; 7]),
        ] {
            for (i, ((b, a), g)) in before.iter().zip(&after).zip(&grad).enumerate() {
                let expected = -lr as f32 * g * scale[i / 5];
                assert!(
                    (a - b - expected).abs() < 1e-6,
                    "{name}[{i}]: step {} vs -lr·grad {expected}",
                    a - b
                );
            }
        }
    }

    #[test]
    fn skipgram_update_matches_autodiff() {
        let _rng = crate::device_rng_lock();
        // Three pairs, K = 2 negatives; word 1 is an input twice and word 3 a target thrice.
        check(vec![1, 4, 1], vec![1.0; 3], vec![2, 3, 5, 3, 0, 6, 6, 3, 2], 3);
    }

    #[test]
    fn cbow_update_matches_autodiff() {
        let _rng = crate::device_rng_lock();
        // Contexts of up to 3 words (padding masked out), K = 1.
        check(
            vec![1, 2, 3, 4, 5, 0, 2, 2, 6],
            vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0],
            vec![0, 6, 3, 1, 5, 4],
            3,
        );
    }

    #[test]
    fn init_is_uniform_in_the_range_over_dim() {
        let _rng = crate::device_rng_lock();
        // gensim's default (±1/dim) and word2vec.c's (±0.5/dim): the values fill the range.
        for (range, m) in [
            (1.0, Word2VecConfig::new(50).with_dim(20)),
            (0.5, Word2VecConfig::new(50).with_dim(20).with_init_range(0.5)),
        ] {
            let m = m.init(&Device::flex());
            let w = rows(m.input.val());
            let max = w.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert!(max <= range / 20.0 && max > 0.9 * range / 20.0, "range {range}: max {max}");
            assert!(rows(m.output.val()).iter().all(|&v| v == 0.0));
        }
    }
}
