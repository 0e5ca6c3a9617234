//! One character at a time through a [`CharLm`] on the host, for sampling text on a CPU.
//!
//! Why: sampling is batch 1, so each step is a few matrix-*vector* products over ~3 MB of
//! weights plus a dozen tiny element-wise ops. Through Burn's tensor ops every one of those is a
//! dispatch and an allocation, and a general matrix-multiply (built for big blocks) does the
//! matrix-vector work; a step cost ~100 µs for a 2×256 LSTM. Here the weights are copied out once
//! and a step is three or four streaming matrix-vector products with the cell maths in place:
//! - the first layer's input projection is a lookup: one row per character of
//!   embedding·W_ih + b_ih, computed once;
//! - the matrix-vector kernel (`burnlab_kernels::gemv`) keeps 64 outputs in registers while it
//!   streams the weights, packed once into sequential column blocks, compiled for every ISA.
//!
//! The cells' Burn modules stay the definition; the tests check this against [`CharLm::step`].

use burn::tensor::{DataError, Tensor};

use burnlab_kernels::Cpu;
use burnlab_kernels::gemv::{GemvMatrix as Packed, gemv_acc as gemv};
use burnlab_kernels::vmath;
use burnlab_models::CharLm;
use burnlab_models::rnn::recurrent::{Cell, CellKind};

/// One recurrent layer's weights, row-major as Burn's `Linear` keeps them: [D, G·H] and
/// [H, G·H] with G gates (1 vanilla RNN, 3 GRU, 4 LSTM).
struct Layer {
    /// None for the first layer, whose input projection is [`CharLmStepper::table`].
    w_ih: Option<Packed>,
    b_ih: Vec<f32>,
    w_hh: Packed,
    b_hh: Vec<f32>,
}

/// A [`CharLm`]'s weights and state on the host, batch 1.
pub struct CharLmStepper {
    cpu: Cpu,
    kind: CellKind,
    hidden: usize,
    gates: usize,
    /// [V, G·H]: each character's embedding through the first layer's input projection (+ bias).
    table: Vec<f32>,
    layers: Vec<Layer>,
    /// [H, V] and [V].
    head_w: Packed,
    head_b: Vec<f32>,
    h: Vec<Vec<f32>>,
    c: Vec<Vec<f32>>,
    gx: Vec<f32>,
    gh: Vec<f32>,
    logits: Vec<f32>,
}

fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, DataError> {
    t.into_data().try_into_vec_as::<f32>()
}

fn bias(b: &Option<burn::module::Param<Tensor<1>>>, n: usize) -> Result<Vec<f32>, DataError> {
    match b {
        Some(b) => host(b.val()),
        None => Ok(vec![0.0; n]),
    }
}

impl CharLmStepper {
    /// Copies the weights of `net` (on any device) to the host; the state starts at zero.
    pub fn new(net: &CharLm) -> Result<Self, DataError> {
        let cpu = Cpu::current();
        let kind = net.rnn.kind;
        let hidden = net.rnn.d_hidden;
        let gates = match kind {
            CellKind::Rnn => 1,
            CellKind::Gru => 3,
            CellKind::Lstm => 4,
        };
        let g = gates * hidden;
        let mut layers = Vec::with_capacity(net.rnn.layers.len());
        let emb = host(net.embedding.weight.val())?;
        let [vocab_in, embed] = net.embedding.weight.dims();
        let mut table = Vec::with_capacity(vocab_in * g);
        for (l, cell) in net.rnn.layers.iter().enumerate() {
            let (input, hidden_lin) = match cell {
                Cell::Rnn(c) => (&c.input, &c.hidden),
                Cell::Gru(c) => (&c.input, &c.hidden),
                Cell::Lstm(c) => (&c.input, &c.hidden),
            };
            let [d_in, _] = input.weight.dims();
            let w_ih = Packed::new(&host(input.weight.val())?, d_in, g);
            let b_ih = bias(&input.bias, g)?;
            let w_ih = if l == 0 {
                for v in 0..vocab_in {
                    let mut row = b_ih.clone();
                    gemv(cpu, &emb[v * embed..(v + 1) * embed], &w_ih, &mut row);
                    table.extend_from_slice(&row);
                }
                None
            } else {
                Some(w_ih)
            };
            layers.push(Layer {
                w_ih,
                b_ih,
                w_hh: Packed::new(&host(hidden_lin.weight.val())?, hidden, g),
                b_hh: bias(&hidden_lin.bias, g)?,
            });
        }
        let vocab = net.vocab();
        let n = layers.len();
        Ok(Self {
            cpu,
            kind,
            hidden,
            gates,
            table,
            layers,
            head_w: Packed::new(&host(net.head.weight.val())?, hidden, vocab),
            head_b: bias(&net.head.bias, vocab)?,
            h: vec![vec![0.0; hidden]; n],
            c: vec![vec![0.0; if kind == CellKind::Lstm { hidden } else { 0 }]; n],
            gx: vec![0.0; g],
            gh: vec![0.0; g],
            logits: vec![0.0; vocab],
        })
    }

    /// Back to the zero state (the tests sample twice from one stepper).
    #[cfg(test)]
    pub fn reset(&mut self) {
        self.h.iter_mut().chain(self.c.iter_mut()).for_each(|v| v.fill(0.0));
    }

    /// Feeds `token` and returns the logits of the next character.
    ///
    /// # Panics
    /// If `token` is not below the vocabulary size.
    pub fn step(&mut self, token: u32) -> &[f32] {
        let g = self.gates * self.hidden;
        let t = token as usize;
        let cpu = self.cpu;
        for l in 0..self.layers.len() {
            let layer = &self.layers[l];
            match &layer.w_ih {
                None => self.gx.copy_from_slice(&self.table[t * g..(t + 1) * g]),
                Some(w_ih) => {
                    self.gx.copy_from_slice(&layer.b_ih);
                    gemv(self.cpu, &self.h[l - 1], w_ih, &mut self.gx);
                }
            }
            self.gh.copy_from_slice(&layer.b_hh);
            gemv(self.cpu, &self.h[l], &layer.w_hh, &mut self.gh);
            let (gx, gh, h) = (&mut self.gx, &mut self.gh, &mut self.h[l]);
            let hd = self.hidden;
            match self.kind {
                CellKind::Rnn => {
                    gx.iter_mut().zip(gh.iter()).for_each(|(a, b)| *a += b);
                    vmath::tanh_to(cpu, gx, h);
                }
                CellKind::Lstm => {
                    // z = gx + gh, gates i, f, g, o; c' = σ(f)·c + σ(i)·tanh(g); h' = σ(o)·tanh(c').
                    gx.iter_mut().zip(gh.iter()).for_each(|(a, b)| *a += b);
                    let (ifg, o) = gx.split_at_mut(3 * hd);
                    let (i_f, gg) = ifg.split_at_mut(2 * hd);
                    vmath::sigmoid(cpu, i_f);
                    vmath::sigmoid(cpu, o);
                    vmath::tanh(cpu, gg);
                    let c = &mut self.c[l];
                    for j in 0..hd {
                        c[j] = i_f[hd + j] * c[j] + i_f[j] * gg[j];
                    }
                    vmath::tanh_to(cpu, c, h);
                    h.iter_mut().zip(o.iter()).for_each(|(h, o)| *h *= o);
                }
                CellKind::Gru => {
                    // r, z = σ(gx + gh); n = tanh(gx_n + r·gh_n); h' = n + z·(h − n).
                    let (rz, n) = gx.split_at_mut(2 * hd);
                    rz.iter_mut().zip(gh.iter()).for_each(|(a, b)| *a += b);
                    vmath::sigmoid(cpu, rz);
                    for j in 0..hd {
                        n[j] += rz[j] * gh[2 * hd + j];
                    }
                    vmath::tanh(cpu, n);
                    for j in 0..hd {
                        h[j] = n[j] + rz[hd + j] * (h[j] - n[j]);
                    }
                }
            }
        }
        self.logits.copy_from_slice(&self.head_b);
        let last = self.h.len() - 1;
        gemv(self.cpu, &self.h[last], &self.head_w, &mut self.logits);
        &self.logits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Int, TensorData};
    use burnlab_models::{CharLmConfig, RecurrentConfig};

    /// Every cell, stacked, odd sizes: the stepper's logits equal `CharLm::step`'s over a
    /// sequence, and `reset` starts again from the zero state.
    #[test]
    fn stepper_matches_charlm_step() {
        let dev = Device::flex();
        dev.seed(5);
        for (cell, hidden, layers) in [
            (CellKind::Lstm, 19, 2),
            (CellKind::Gru, 33, 2),
            (CellKind::Rnn, 7, 3),
            (CellKind::Lstm, 70, 1),
        ] {
            let net =
                CharLmConfig::new(13, RecurrentConfig::new(cell, 5, hidden).with_layers(layers))
                    .init(&dev);
            let mut stepper = CharLmStepper::new(&net).expect("host copy");
            let tokens = [3u32, 0, 12, 7, 7, 1, 9, 4];
            for round in 0..2 {
                let mut state = net.rnn.zero_state(1, &dev);
                for &t in &tokens {
                    let (l, s) = net.step(
                        Tensor::<1, Int>::from_data(TensorData::new(vec![t as i64], [1]), &dev),
                        state,
                    );
                    state = s;
                    let want: Vec<f32> = l.into_data().try_to_vec().expect("f32");
                    let got = stepper.step(t);
                    assert_eq!(got.len(), 13);
                    for (a, b) in got.iter().zip(&want) {
                        assert!((a - b).abs() < 2e-5, "{cell:?} round {round}: {a} vs {b}");
                    }
                }
                stepper.reset();
            }
        }
    }
}
