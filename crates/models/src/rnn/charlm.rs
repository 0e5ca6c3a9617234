//! A character language model (karpathy's char-rnn): embedding → recurrent layers (vanilla RNN,
//! LSTM or GRU) → linear head over the characters. Trained to predict each next character.

use burn::config::Config;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

use crate::rnn::recurrent::{Recurrent, RecurrentConfig, State, project};

/// A character language model: an embedding of `rnn.d_input` per character, the recurrent
/// stack, and a linear head back to the vocabulary.
#[derive(Config, Debug)]
pub struct CharLmConfig {
    pub vocab: usize,
    /// The recurrent stack; its `d_input` is the embedding size.
    pub rnn: RecurrentConfig,
}

#[derive(Module, Debug)]
pub struct CharLm {
    pub embedding: Embedding,
    pub rnn: Recurrent,
    pub head: Linear,
}

impl CharLmConfig {
    /// Embedding N(0, 1) and head as PyTorch's defaults; cells as in their files.
    pub fn init(&self, device: &Device) -> CharLm {
        CharLm {
            embedding: EmbeddingConfig::new(self.vocab, self.rnn.d_input).init(device),
            rnn: self.rnn.init(device),
            head: LinearConfig::new(self.rnn.d_hidden, self.vocab).init(device),
        }
    }
}

impl CharLm {
    pub fn vocab(&self) -> usize {
        self.head.weight.dims()[1]
    }

    /// Tokens [B, T] → logits [B, T, V] and the final state (zero state if `state` is None).
    /// Each step's tokens are embedded on their own (an Int slice has no gradient), so no
    /// float tensor is sliced per step.
    pub fn forward(&self, tokens: Tensor<2, Int>, state: Option<State>) -> (Tensor<3>, State) {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let state = state.unwrap_or_else(|| self.rnn.zero_state(b, &device));
        if self.rnn.fused_on(&device) {
            // Time-major all the way: the fused layers take [T, B, ·].
            let tokens = tokens.transpose();
            let w_ih = self.rnn.layers[0].input();
            let xw = if t * b > self.embedding.weight.dims()[0] {
                // Embedding then input projection is one-hot · (E·W_ih): project the table once
                // ([V, G]) and gather a row per token, instead of a [T·B, D]·[D, G] matmul and,
                // in backward, two more of that size. The same sums in another order.
                let table = self.embedding.weight.val().matmul(w_ih.weight.val());
                let g = table.dims()[1];
                table.select(0, tokens.reshape([t * b])).reshape([t, b, g])
            } else {
                project(self.embedding.forward(tokens), w_ih)
            };
            let (hidden, state) = self.rnn.forward_projected(xw, state);
            return (self.head.forward(hidden).swap_dims(0, 1), state);
        }
        let xs: Vec<Tensor<2>> = (0..t)
            .map(|i| {
                let e = self.embedding.forward(tokens.clone().slice([0..b, i..i + 1]));
                let d = e.dims()[2];
                e.reshape([b, d])
            })
            .collect();
        let (ys, state) = self.rnn.forward(xs, state);
        let hidden = Tensor::stack::<3>(ys, 1);
        (self.head.forward(hidden), state)
    }

    /// Mean cross-entropy in nats per character of predicting `targets` [B, T] from `inputs`.
    pub fn loss(&self, inputs: Tensor<2, Int>, targets: Tensor<2, Int>) -> (Tensor<1>, Tensor<2>) {
        let [b, t] = inputs.dims();
        let (logits, _) = self.forward(inputs, None);
        let v = self.vocab();
        let logits = logits.reshape([b * t, v]);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), targets.reshape([b * t]));
        (loss, logits)
    }

    /// One step for sampling: tokens [B] → logits [B, V] and the new state.
    pub fn step(&self, tokens: Tensor<1, Int>, state: State) -> (Tensor<2>, State) {
        let [b] = tokens.dims();
        if self.rnn.fused_on(&tokens.device()) {
            // A sequence of one: the fused recurrences skip a dozen small tensor ops per layer.
            let x = self.embedding.forward(tokens.reshape([1, b]));
            let (y, state) = self.rnn.forward_sequence(x, state);
            let h = y.dims()[2];
            return (self.head.forward(y.reshape([b, h])), state);
        }
        let e = self.embedding.forward(tokens.reshape([b, 1]));
        let d = e.dims()[2];
        let (y, state) = self.rnn.step(e.reshape([b, d]), state);
        (self.head.forward(y), state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::recurrent::CellKind;
    use burn::tensor::TensorData;

    #[test]
    fn shapes_and_step_equals_forward() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex();
        dev.seed(2);
        for cell in [CellKind::Rnn, CellKind::Lstm, CellKind::Gru] {
            let m =
                CharLmConfig::new(11, RecurrentConfig::new(cell, 5, 7).with_layers(2)).init(&dev);
            let tokens = Tensor::<2, Int>::from_data(
                TensorData::new(vec![1i64, 4, 9, 0, 3, 3, 10, 2], [2, 4]),
                &dev,
            );
            let (logits, state) = m.forward(tokens.clone(), None);
            assert_eq!(logits.dims(), [2, 4, 11]);
            assert_eq!(state.layers.len(), 2);
            // Stepping one token at a time gives the same logits.
            let mut s = m.rnn.zero_state(2, &dev);
            let mut last = None;
            for i in 0..4 {
                let (l, next) = m.step(tokens.clone().slice([0..2, i..i + 1]).reshape([2]), s);
                s = next;
                last = Some(l);
            }
            let a: Vec<f32> = last.expect("step").into_data().try_to_vec().expect("f32");
            let b: Vec<f32> = logits
                .slice([0..2, 3..4, 0..11])
                .reshape([2, 11])
                .into_data()
                .try_to_vec()
                .expect("f32");
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "{cell:?}: {x} vs {y}");
            }
        }
    }

    /// On the fused path with more tokens than the vocabulary, the first layer's input comes
    /// from the projected embedding table; it matches the per-step Burn ops (embedding, then
    /// the cells one step at a time), values and every gradient.
    #[test]
    fn projected_table_matches_the_step_by_step_path() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex().autodiff();
        dev.seed(5);
        for cell in [CellKind::Rnn, CellKind::Lstm, CellKind::Gru] {
            let m =
                CharLmConfig::new(5, RecurrentConfig::new(cell, 3, 4).with_layers(2)).init(&dev);
            let (b, t) = (2, 6);
            let tokens = Tensor::<2, Int>::from_data(
                TensorData::new(vec![1i64, 4, 0, 0, 3, 2, 2, 4, 1, 3, 0, 4], [b, t]),
                &dev,
            );
            assert!(b * t > 5, "the table path needs more tokens than the vocabulary");
            let r = Tensor::<3>::random([b, t, 5], burn::tensor::Distribution::Default, &dev);
            let (fused, _) = m.forward(tokens.clone(), None);
            let xs = (0..t)
                .map(|i| {
                    m.embedding.forward(tokens.clone().slice([0..b, i..i + 1])).reshape([b, 3])
                })
                .collect();
            let (ys, _) = m.rnn.forward(xs, m.rnn.zero_state(b, &dev));
            let reference = m.head.forward(Tensor::stack::<3>(ys, 1));
            let flat = |x: Tensor<3>| -> Vec<f32> { x.into_data().try_to_vec().expect("f32") };
            for (x, y) in flat(fused.clone()).iter().zip(&flat(reference.clone())) {
                assert!((x - y).abs() < 1e-5, "{cell:?} logits: {x} vs {y}");
            }
            let g1 = (fused * r.clone()).sum().backward();
            let g2 = (reference * r).sum().backward();
            struct Compare<'a>(
                &'a burn::tensor::Gradients,
                &'a burn::tensor::Gradients,
                usize,
                CellKind,
            );
            impl burn::module::ModuleVisitor for Compare<'_> {
                fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                    let v = |g| -> Vec<f32> {
                        p.grad(g).expect("grad").into_data().try_to_vec().expect("f32")
                    };
                    for (x, y) in v(self.0).iter().zip(&v(self.1)) {
                        assert!(
                            (x - y).abs() < 1e-5 * (1.0 + y.abs()),
                            "{:?} param {:?}: {x} vs {y}",
                            self.3,
                            p.shape()
                        );
                    }
                    self.2 += 1;
                }
            }
            let mut c = Compare(&g1, &g2, 0, cell);
            m.visit(&mut c);
            assert_eq!(c.2, 1 + 2 + 2 * 4, "{cell:?}: every parameter compared");
        }
    }

    struct MissingGrads<'a> {
        grads: &'a burn::tensor::Gradients,
        seen: usize,
        missing: Vec<String>,
    }

    impl burn::module::ModuleVisitor for MissingGrads<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.seen += 1;
            if param.grad(self.grads).is_none() {
                self.missing.push(format!("{:?}", param.shape()));
            }
        }
    }

    /// Every weight and bias of every cell trains (the LSTM's biases once silently did not:
    /// `Param::map` drops "requires grad").
    #[test]
    fn every_parameter_gets_a_gradient() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex().autodiff();
        for (cell, fork) in [CellKind::Rnn, CellKind::Lstm, CellKind::Gru]
            .into_iter()
            .flat_map(|c| [(c, false), (c, true)])
        {
            // Built on the autodiff device, or (as training does) on the plain one and forked.
            let m = if fork {
                CharLmConfig::new(9, RecurrentConfig::new(cell, 4, 5).with_layers(2))
                    .init(&Device::flex())
                    .fork(&dev)
                    .train()
            } else {
                CharLmConfig::new(9, RecurrentConfig::new(cell, 4, 5).with_layers(2)).init(&dev)
            };
            let x = Tensor::<2, Int>::from_data(
                TensorData::new(vec![1i64, 4, 8, 0, 3, 3], [2, 3]),
                &dev,
            );
            let y = Tensor::<2, Int>::from_data(
                TensorData::new(vec![4i64, 8, 0, 3, 3, 7], [2, 3]),
                &dev,
            );
            let grads = m.loss(x, y).0.backward();
            let mut v = MissingGrads { grads: &grads, seen: 0, missing: Vec::new() };
            m.visit(&mut v);
            // embedding + head (2) + 2 layers × (2 weights + 2 biases)
            assert_eq!(v.seen, 1 + 2 + 2 * 4, "{cell:?}");
            assert!(
                v.missing.is_empty(),
                "{cell:?} (forked: {fork}): parameters without a gradient: {:?}",
                v.missing
            );
        }
    }
}
