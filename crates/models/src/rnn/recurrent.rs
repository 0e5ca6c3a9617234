//! One recurrent interface for the three cells: a zero state, one step, a whole sequence; layers
//! stacked with dropout between them. A sequence is a `Vec` of per-step [B, D] tensors rather
//! than a [B, T, D] tensor: slicing a step out of a big tensor costs, in backward, a zero tensor
//! of the whole input per step (O(T²)), while separate steps cost nothing extra.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Initializer, Linear};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::Dropout;
use crate::rnn::gru_cell::{GruCell, GruCellConfig};
use crate::rnn::lstm_cell::{LstmCell, LstmCellConfig};
use crate::rnn::rnn_cell::{RnnCell, RnnCellConfig};

/// PyTorch's recurrent init: uniform in ±1/√hidden for weights and biases.
pub(crate) fn uniform_init(d_hidden: usize) -> Initializer {
    let k = 1.0 / (d_hidden as f64).sqrt();
    Initializer::Uniform { min: -k, max: k }
}

/// x [T, B, D] · the linear's weight → [T, B, G], without its bias (the fused recurrences add
/// the biases themselves).
pub(crate) fn project(x: Tensor<3>, input: &Linear) -> Tensor<3> {
    let [t, b, d] = x.dims();
    let g = input.weight.dims()[1];
    burnlab_ops::matmul::matmul(x.reshape([t * b, d]), input.weight.val()).reshape([t, b, g])
}

/// b_ih + b_hh ([G]; zeros for a missing bias), the one bias an LSTM or RNN step adds.
pub(crate) fn bias_sum(input: &Linear, hidden: &Linear) -> Tensor<1> {
    let g = input.weight.dims()[1];
    match (&input.bias, &hidden.bias) {
        (Some(a), Some(b)) => a.val() + b.val(),
        (Some(a), None) => a.val(),
        (None, Some(b)) => b.val(),
        (None, None) => Tensor::zeros([g], &input.weight.device()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    Rnn,
    Lstm,
    Gru,
}

impl CellKind {
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn => "rnn",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }
}

#[derive(Module, Debug)]
pub enum Cell {
    Rnn(RnnCell),
    Lstm(LstmCell),
    Gru(GruCell),
}

/// The state of one layer: h, and c for an LSTM.
#[derive(Clone, Debug)]
pub struct LayerState {
    pub h: Tensor<2>,
    pub c: Option<Tensor<2>>,
}

/// The state of every layer, bottom first.
#[derive(Clone, Debug)]
pub struct State {
    pub layers: Vec<LayerState>,
}

impl State {
    /// Cut the state from the graph that produced it.
    pub fn detach(self) -> Self {
        Self {
            layers: self
                .layers
                .into_iter()
                .map(|l| LayerState { h: l.h.detach(), c: l.c.map(Tensor::detach) })
                .collect(),
        }
    }
}

impl Cell {
    /// The input projection (W_ih [D, G·H] and b_ih).
    pub fn input(&self) -> &Linear {
        match self {
            Cell::Rnn(cell) => &cell.input,
            Cell::Lstm(cell) => &cell.input,
            Cell::Gru(cell) => &cell.input,
        }
    }

    fn step(&self, x: Tensor<2>, s: LayerState) -> LayerState {
        match self {
            Cell::Rnn(cell) => LayerState { h: cell.step(x, s.h), c: None },
            Cell::Gru(cell) => LayerState { h: cell.step(x, s.h), c: None },
            Cell::Lstm(cell) => {
                let device = x.device();
                let c = s.c.unwrap_or_else(|| Tensor::zeros(s.h.dims(), &device));
                let (h, c) = cell.step(x, s.h, c);
                LayerState { h, c: Some(c) }
            }
        }
    }
}

#[derive(Config, Debug)]
pub struct RecurrentConfig {
    pub cell: CellKind,
    pub d_input: usize,
    pub d_hidden: usize,
    #[config(default = 1)]
    pub layers: usize,
    /// Dropout on the outputs of every layer but the last.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Draw dropout masks on the host: set for CPU backends (see [`Dropout`]).
    #[config(default = false)]
    pub host_dropout: bool,
    /// Initial forget-gate bias of LSTM cells.
    #[config(default = 1.0)]
    pub forget_bias: f64,
}

#[derive(Module, Debug)]
pub struct Recurrent {
    pub layers: Vec<Cell>,
    pub dropout: Dropout,
    #[module(skip)]
    pub d_hidden: usize,
    #[module(skip)]
    pub kind: CellKind,
}

impl RecurrentConfig {
    pub fn init(&self, device: &Device) -> Recurrent {
        let layers = (0..self.layers.max(1))
            .map(|l| {
                let d_in = if l == 0 { self.d_input } else { self.d_hidden };
                match self.cell {
                    CellKind::Rnn => {
                        Cell::Rnn(RnnCellConfig::new(d_in, self.d_hidden).init(device))
                    }
                    CellKind::Lstm => Cell::Lstm(
                        LstmCellConfig::new(d_in, self.d_hidden)
                            .with_forget_bias(self.forget_bias)
                            .init(device),
                    ),
                    CellKind::Gru => {
                        Cell::Gru(GruCellConfig::new(d_in, self.d_hidden).init(device))
                    }
                }
            })
            .collect();
        Recurrent {
            layers,
            dropout: Dropout::new(self.dropout, self.host_dropout),
            d_hidden: self.d_hidden,
            kind: self.cell,
        }
    }
}

impl Recurrent {
    /// All zeros (h, and c for an LSTM), for a batch of `batch`.
    pub fn zero_state(&self, batch: usize, device: &Device) -> State {
        let zeros = || Tensor::zeros([batch, self.d_hidden], device);
        State {
            layers: (0..self.layers.len())
                .map(|_| LayerState { h: zeros(), c: (self.kind == CellKind::Lstm).then(zeros) })
                .collect(),
        }
    }

    /// One step through every layer: input [B, D] → top layer's output [B, H] and new state.
    pub fn step(&self, x: Tensor<2>, state: State) -> (Tensor<2>, State) {
        let n = self.layers.len();
        let mut x = x;
        let mut next = Vec::with_capacity(n);
        for (l, (cell, s)) in self.layers.iter().zip(state.layers).enumerate() {
            let s = cell.step(x, s);
            x = if l + 1 < n { self.dropout.forward(s.h.clone()) } else { s.h.clone() };
            next.push(s);
        }
        (x, State { layers: next })
    }

    /// Whether [`Self::forward_sequence`] runs each layer as one fused operation on `device`
    /// (the flex CPU backend, see `burnlab_ops::recurrence`). Elsewhere
    /// prefer [`Self::forward`] with per-step inputs: slicing steps out of a [T, B, D] tensor
    /// costs O(T²) in backward.
    pub fn fused_on(&self, device: &Device) -> bool {
        *device == Device::flex() && burnlab_ops::enabled()
    }

    /// A whole sequence, time-major: input [T, B, D] → outputs [T, B, H] and the final state.
    /// One fused operation per layer where [`Self::fused_on`], else step by step.
    pub fn forward_sequence(&self, x: Tensor<3>, state: State) -> (Tensor<3>, State) {
        let [t, b, _] = x.dims();
        if t == 0 {
            return (Tensor::zeros([0, b, self.d_hidden], &x.device()), state);
        }
        if !self.fused_on(&x.device()) {
            let xs = x.chunk(t, 0).into_iter().map(|s| s.squeeze_dim::<2>(0)).collect();
            let (ys, state) = self.forward(xs, state);
            return (Tensor::stack(ys, 0), state);
        }
        let xw = project(x, self.layers[0].input());
        self.forward_projected(xw, state)
    }

    /// [`Self::forward_sequence`] on the fused path, given the first layer's input projection
    /// x·W_ih [T, B, G·H] (no bias) instead of its input: a caller that embeds tokens can
    /// project the embedding table once and gather its rows (see `CharLm::forward`).
    pub fn forward_projected(&self, first_xw: Tensor<3>, state: State) -> (Tensor<3>, State) {
        let [t, b, _] = first_xw.dims();
        if t == 0 {
            return (Tensor::zeros([0, b, self.d_hidden], &first_xw.device()), state);
        }
        let n = self.layers.len();
        let device = first_xw.device();
        let mut xw = first_xw;
        let mut next = Vec::with_capacity(n);
        for (l, (cell, s)) in self.layers.iter().zip(state.layers).enumerate() {
            let (hs, s) = match cell {
                Cell::Lstm(cell) => {
                    let c = s.c.unwrap_or_else(|| Tensor::zeros(s.h.dims(), &device));
                    let (hs, h, c) = cell.recurrence_fused(xw, s.h, c);
                    (hs, LayerState { h, c: Some(c) })
                }
                Cell::Rnn(cell) => {
                    let hs = cell.recurrence_fused(xw, s.h);
                    let h = hs.clone().slice([t - 1..t]).squeeze_dim::<2>(0);
                    (hs, LayerState { h, c: None })
                }
                Cell::Gru(cell) => {
                    let hs = cell.recurrence_fused(xw, s.h);
                    let h = hs.clone().slice([t - 1..t]).squeeze_dim::<2>(0);
                    (hs, LayerState { h, c: None })
                }
            };
            next.push(s);
            if l + 1 == n {
                return (hs, State { layers: next });
            }
            xw = project(self.dropout.forward(hs), self.layers[l + 1].input());
        }
        unreachable!("a Recurrent has at least one layer")
    }

    /// A whole sequence of per-step inputs [B, D] → per-step outputs [B, H] and the final state.
    pub fn forward(&self, xs: Vec<Tensor<2>>, state: State) -> (Vec<Tensor<2>>, State) {
        let mut state = state;
        let mut out = Vec::with_capacity(xs.len());
        for x in xs {
            let (y, s) = self.step(x, state);
            out.push(y);
            state = s;
        }
        (out, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::{GruConfig, LinearConfig, LstmConfig};
    use burn::tensor::{Distribution, TensorData};

    fn vec(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec().expect("f32")
    }

    fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
        }
    }

    fn t2(v: &[f32], shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &Device::flex())
    }

    fn linear(w: &[f32], b: &[f32], d_in: usize, d_out: usize) -> burn::nn::Linear {
        let dev = Device::flex();
        let mut l = LinearConfig::new(d_in, d_out).init(&dev);
        l.weight = Param::from_tensor(t2(w, [d_in, d_out]));
        l.bias =
            Some(Param::from_tensor(Tensor::from_data(TensorData::new(b.to_vec(), [d_out]), &dev)));
        l
    }

    fn sig(x: f32) -> f32 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Each cell's step on 1-d input and hidden state, computed by hand.
    #[test]
    fn one_step_matches_hand_computation() {
        let _rng = crate::device_rng_lock();
        let (x, h, c) = (0.5f32, -0.3f32, 0.8f32);
        // Vanilla: tanh(0.7x + 0.1 + (-0.4)h + 0.2)
        let rnn =
            RnnCell { input: linear(&[0.7], &[0.1], 1, 1), hidden: linear(&[-0.4], &[0.2], 1, 1) };
        let got = vec(rnn.step(t2(&[x], [1, 1]), t2(&[h], [1, 1])));
        close(&got, &[(0.7 * x + 0.1 - 0.4 * h + 0.2).tanh()], 1e-6, "rnn");

        // LSTM with gate weights wi (input) and wh (hidden) per gate i, f, g, o.
        let wi = [0.3, -0.2, 0.5, 0.9];
        let wh = [0.4, 0.1, -0.6, 0.2];
        let bi = [0.05, 1.0, -0.1, 0.0];
        let lstm = LstmCell { input: linear(&wi, &bi, 1, 4), hidden: linear(&wh, &[0.0; 4], 1, 4) };
        let (h2, c2) = lstm.step(t2(&[x], [1, 1]), t2(&[h], [1, 1]), t2(&[c], [1, 1]));
        let z: Vec<f32> = (0..4).map(|k| wi[k] * x + bi[k] + wh[k] * h).collect();
        let c_ref = sig(z[1]) * c + sig(z[0]) * z[2].tanh();
        let h_ref = sig(z[3]) * c_ref.tanh();
        close(&vec(c2), &[c_ref], 1e-6, "lstm c");
        close(&vec(h2), &[h_ref], 1e-6, "lstm h");

        // GRU: gates r, z, n.
        let gi = [0.3, -0.5, 0.8];
        let gh = [0.2, 0.7, -0.4];
        let (bi, bh) = ([0.1, 0.0, -0.2], [0.0, 0.3, 0.05]);
        let gru = GruCell { input: linear(&gi, &bi, 1, 3), hidden: linear(&gh, &bh, 1, 3) };
        let got = vec(gru.step(t2(&[x], [1, 1]), t2(&[h], [1, 1])));
        let r = sig(gi[0] * x + bi[0] + gh[0] * h + bh[0]);
        let zz = sig(gi[1] * x + bi[1] + gh[1] * h + bh[1]);
        let n = (gi[2] * x + bi[2] + r * (gh[2] * h + bh[2])).tanh();
        close(&got, &[(1.0 - zz) * n + zz * h], 1e-6, "gru");
    }

    /// Burn's per-gate Linear pairs as our side-by-side input and hidden layers (gates in order).
    fn load_gates(
        input: &mut burn::nn::Linear,
        hidden: &mut burn::nn::Linear,
        gates: &[&burn::nn::GateController],
    ) {
        let side_by_side = |layers: Vec<&burn::nn::Linear>, ours: &mut burn::nn::Linear| {
            let w = layers.iter().map(|l| l.weight.val()).collect();
            let b = layers.iter().map(|l| l.bias.as_ref().expect("bias").val()).collect();
            ours.weight = Param::from_tensor(Tensor::cat(w, 1));
            ours.bias = Some(Param::from_tensor(Tensor::cat(b, 0)));
        };
        side_by_side(gates.iter().map(|g| &g.input_transform).collect(), input);
        side_by_side(gates.iter().map(|g| &g.hidden_transform).collect(), hidden);
    }

    /// The LSTM and GRU cells agree with Burn's own `Lstm` and `Gru` (reset after) on the same
    /// weights over a 5-step sequence, batch 3, odd sizes.
    #[test]
    fn cells_match_burn_modules() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex();
        dev.seed(3);
        let (b, t, d, h) = (3, 5, 7, 5);
        let xs = Tensor::<3>::random([b, t, d], Distribution::Uniform(-1.0, 1.0), &dev);
        let steps: Vec<Tensor<2>> =
            (0..t).map(|i| xs.clone().slice([0..b, i..i + 1, 0..d]).reshape([b, d])).collect();
        let last = |y: Tensor<3>| y.slice([0..b, t - 1..t, 0..h]).reshape([b, h]);

        let burn_lstm = LstmConfig::new(d, h, true).init(&dev);
        // Burn's gates are separate Linear pairs; ours side by side in i, f, g, o order.
        let gates = [
            &burn_lstm.input_gate,
            burn_lstm.forget_gate.as_ref().expect("forget gate"),
            &burn_lstm.cell_gate,
            &burn_lstm.output_gate,
        ];
        let mut ours = LstmCellConfig::new(d, h).init(&dev);
        load_gates(&mut ours.input, &mut ours.hidden, &gates);
        let (y, state) = burn_lstm.forward(xs.clone(), None);
        let (mut hs, mut cs) = (Tensor::zeros([b, h], &dev), Tensor::zeros([b, h], &dev));
        for x in &steps {
            (hs, cs) = ours.step(x.clone(), hs, cs);
        }
        close(&vec(hs.clone()), &vec(last(y)), 1e-5, "lstm output");
        // Burn's state is (cell, hidden).
        close(&vec(cs), &vec(state.cell), 1e-5, "lstm cell");
        close(&vec(hs), &vec(state.hidden), 1e-5, "lstm hidden");

        let burn_gru = GruConfig::new(d, h, true).with_reset_after(true).init(&dev);
        let gates = [&burn_gru.reset_gate, &burn_gru.update_gate, &burn_gru.new_gate];
        let mut ours = GruCellConfig::new(d, h).init(&dev);
        load_gates(&mut ours.input, &mut ours.hidden, &gates);
        let y = burn_gru.forward(xs, None);
        let mut hs = Tensor::zeros([b, h], &dev);
        for x in &steps {
            hs = ours.step(x.clone(), hs);
        }
        close(&vec(hs), &vec(last(y)), 1e-5, "gru output");
    }

    #[test]
    fn shapes_and_forget_bias() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex();
        for kind in [CellKind::Rnn, CellKind::Lstm, CellKind::Gru] {
            let r = RecurrentConfig::new(kind, 6, 10).with_layers(2).init(&dev);
            let s = r.zero_state(4, &dev);
            assert_eq!(s.layers.len(), 2);
            assert_eq!(s.layers[0].c.is_some(), kind == CellKind::Lstm);
            let xs: Vec<Tensor<2>> = (0..3).map(|_| Tensor::ones([4, 6], &dev)).collect();
            let (ys, s) = r.forward(xs, s);
            assert_eq!(ys.len(), 3);
            assert_eq!(ys[2].dims(), [4, 10]);
            assert_eq!(s.layers[1].h.dims(), [4, 10]);
        }
        let lstm = LstmCellConfig::new(3, 4).init(&dev);
        let b: Vec<f32> =
            lstm.input.bias.as_ref().expect("bias").val().into_data().try_to_vec().expect("f32");
        assert!(
            b[4..8].iter().all(|&v| v == 1.0) && b[0..4].iter().all(|&v| v.abs() <= 0.5),
            "{b:?}"
        );
        let bh: Vec<f32> =
            lstm.hidden.bias.as_ref().expect("bias").val().into_data().try_to_vec().expect("f32");
        assert!(bh[4..8].iter().all(|&v| v == 0.0));
    }

    /// The vanilla cell's input-weight gradient against central finite differences (f64 sums
    /// of a scalar loss over 4 steps).
    #[test]
    fn rnn_gradient_matches_finite_differences() {
        let _rng = crate::device_rng_lock();
        let plain = Device::flex();
        plain.seed(9);
        let cell = RnnCellConfig::new(3, 4).init(&plain);
        let xs: Vec<Tensor<2>> = (0..4)
            .map(|_| Tensor::random([2, 3], Distribution::Uniform(-1.0, 1.0), &plain))
            .collect();
        let loss = |cell: &RnnCell, xs: &[Tensor<2>]| {
            let device = xs[0].device();
            let mut h = Tensor::zeros([2, 4], &device);
            for x in xs {
                h = cell.step(x.clone(), h);
            }
            // A loss that weighs each unit differently.
            (h * Tensor::<1>::from_data(
                TensorData::new(vec![1.0f32, -2.0, 0.5, 3.0], [4]),
                &device,
            )
            .unsqueeze())
            .sum()
        };
        let ad = plain.clone().autodiff();
        let cell_ad = cell.clone().fork(&ad).train();
        let xs_ad: Vec<Tensor<2>> = xs.iter().map(|x| x.clone().autodiff()).collect();
        let grads = loss(&cell_ad, &xs_ad).backward();
        for (name, param) in [("W_ih", &cell_ad.input.weight), ("W_hh", &cell_ad.hidden.weight)] {
            let g: Vec<f32> =
                param.grad(&grads).expect("grad").into_data().try_to_vec().expect("f32");
            let w: Vec<f32> = param.val().inner().into_data().try_to_vec().expect("f32");
            let dims = param.dims();
            for k in [0, 5, w.len() - 1] {
                let eps = 1e-2f32;
                let eval = |delta: f32| {
                    let mut w2 = w.clone();
                    w2[k] += delta;
                    let mut c = cell.clone();
                    let t = t2(&w2, dims);
                    if name == "W_ih" {
                        c.input.weight = Param::from_tensor(t)
                    } else {
                        c.hidden.weight = Param::from_tensor(t)
                    }
                    loss(&c, &xs).into_scalar::<f32>() as f64
                };
                let fd = (eval(eps) - eval(-eps)) / (2.0 * eps as f64);
                assert!(
                    (fd - g[k] as f64).abs() < 2e-3 * fd.abs().max(1.0),
                    "{name}[{k}]: autodiff {} vs fd {fd}",
                    g[k]
                );
            }
        }
    }

    /// Long memory: with its forget gate forced open (bias +10, input gate shut, −10), an LSTM
    /// carries a value written into its cell across 50 steps, and the gradient of the last
    /// output with respect to the first input survives; a vanilla RNN's gradient over the same
    /// span vanishes (measured: below 1e-6 of the one-step gradient).
    #[test]
    fn lstm_remembers_where_rnn_forgets() {
        let _rng = crate::device_rng_lock();
        let plain = Device::flex();
        let ad = plain.clone().autodiff();
        let steps = 50;
        // LSTM, 1 unit: input gate shut but for the first step's input (weight 20 on x),
        // forget gate open, output gate open, g = tanh(x).
        let lstm = LstmCell {
            input: linear(&[20.0, 0.0, 1.0, 0.0], &[-10.0, 10.0, 0.0, 10.0], 1, 4),
            hidden: linear(&[0.0; 4], &[0.0; 4], 1, 4),
        }
        .fork(&ad)
        .train();
        let x0 = t2(&[1.0], [1, 1]).autodiff().require_grad();
        let zero = t2(&[0.0], [1, 1]).autodiff();
        let (mut h, mut c) = lstm.step(x0.clone(), zero.clone(), zero.clone());
        for _ in 1..steps {
            (h, c) = lstm.step(zero.clone(), h, c);
        }
        let carried = c.clone().into_scalar::<f32>();
        assert!(carried > 0.7, "cell after {steps} steps: {carried}");
        let g_lstm = x0.grad(&h.sum().backward()).expect("grad").into_scalar::<f32>().abs();

        let dev = ad.clone();
        dev.seed(1);
        let rnn = RnnCellConfig::new(1, 16).init(&plain).fork(&ad).train();
        let grad_over = |n: usize| {
            let x0 = t2(&[1.0], [1, 1]).autodiff().require_grad();
            let mut h = rnn.step(x0.clone(), Tensor::zeros([1, 16], &ad));
            for _ in 1..n {
                h = rnn.step(Tensor::zeros([1, 1], &ad), h);
            }
            let g: Vec<f32> =
                x0.grad(&h.sum().backward()).expect("grad").into_data().try_to_vec().expect("f32");
            g[0].abs()
        };
        let (g1, g50) = (grad_over(1), grad_over(steps));
        assert!(g_lstm > 0.1, "LSTM gradient over {steps} steps: {g_lstm}");
        assert!(g50 < 1e-6 * g1, "RNN gradient over {steps} steps {g50} vs 1 step {g1}");
    }
}

/// The fused recurrences (burnlab-ops over burnlab-kernels) against the cells' step-by-step Burn
/// ops, values and every gradient.
#[cfg(test)]
mod fused_tests {
    use burn::module::Param;
    use burn::tensor::{Distribution, Tensor};

    use crate::rnn::gru_cell::{GruCell, GruCellConfig};
    use crate::rnn::lstm_cell::{LstmCell, LstmCellConfig};
    use crate::rnn::rnn_cell::{RnnCell, RnnCellConfig};
    use burn::tensor::Device;

    /// A tensor's values.
    fn vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32")
    }

    /// Every value of `a` within `tol` × max(1, largest |b|) of `b`'s.
    fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * scale, "{what}[{i}]: fused {x} vs reference {y}");
        }
    }

    fn random<const D: usize>(shape: [usize; D], dev: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Uniform(-1.5, 1.5), dev)
    }

    /// Run `f` with every parameter of the cell, the input and the initial state tracked;
    /// return the loss's gradients in a fixed order.
    /// (The random draws are shared by both paths: tests run in parallel on one device RNG.)
    fn lstm_case(t: usize, b: usize, d: usize, h: usize) -> [(Vec<f32>, Vec<Vec<f32>>); 2] {
        let dev = Device::flex().autodiff();
        let cell: LstmCell = LstmCellConfig::new(d, h).init(&dev);
        let x = random([t, b, d], &dev).require_grad();
        let h0 = random([b, h], &dev).require_grad();
        let c0 = random([b, h], &dev).require_grad();
        // Random weights on the outputs so every element's gradient differs.
        let wh = random([t, b, h], &dev);
        let wc = random([b, h], &dev);
        [true, false].map(|fused| {
            let (hs, c_last) = if fused {
                let (hs, _, c) = cell.sequence_fused(x.clone(), h0.clone(), c0.clone());
                (hs, c)
            } else {
                let (mut hh, mut cc) = (h0.clone(), c0.clone());
                let mut ys = Vec::new();
                for s in x.clone().chunk(t, 0) {
                    let (nh, nc) = cell.step(s.squeeze_dim::<2>(0), hh, cc);
                    ys.push(nh.clone());
                    (hh, cc) = (nh, nc);
                }
                (Tensor::stack(ys, 0), cc)
            };
            let loss = (hs.clone() * wh.clone()).sum() + (c_last * wc.clone()).sum();
            let grads = loss.backward();
            let g = |p: &Param<Tensor<2>>| vec(p.grad(&grads).expect("weight grad"));
            let gb = |p: &Option<Param<Tensor<1>>>| {
                vec(p.as_ref().expect("bias").grad(&grads).expect("bias grad"))
            };
            let out = vec(hs);
            let grads = vec![
                vec(x.grad(&grads).expect("x grad")),
                vec(h0.grad(&grads).expect("h0 grad")),
                vec(c0.grad(&grads).expect("c0 grad")),
                g(&cell.input.weight),
                gb(&cell.input.bias),
                g(&cell.hidden.weight),
                gb(&cell.hidden.bias),
            ];
            (out, grads)
        })
    }

    const NAMES: [&str; 7] = ["x", "h0", "c0", "W_ih", "b_ih", "W_hh", "b_hh"];

    #[test]
    fn lstm_matches_the_step_by_step_cell_values_and_gradients() {
        let _rng = crate::device_rng_lock();
        // Hidden sizes that are not a multiple of any SIMD width; batch 1; sequence 1.
        for (t, b, d, h) in [(6, 3, 5, 7), (1, 1, 3, 17), (9, 1, 4, 33), (4, 2, 1, 1)] {
            let [(y_f, g_f), (y_r, g_r)] = lstm_case(t, b, d, h);
            close(&y_f, &y_r, 2e-6, &format!("lstm T{t} B{b} H{h} outputs"));
            for (k, (a, r)) in g_f.iter().zip(&g_r).enumerate() {
                close(a, r, 2e-5, &format!("lstm T{t} B{b} H{h} d{}", NAMES[k]));
            }
        }
    }

    /// A cell with one state (vanilla RNN, GRU): its two `Linear`s, a fused sequence and a step.
    trait OneStateCell {
        fn linears(&self) -> [&burn::nn::Linear; 2];
        fn fused(&self, x: Tensor<3>, h: Tensor<2>) -> Tensor<3>;
        fn step(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2>;
    }

    impl OneStateCell for RnnCell {
        fn linears(&self) -> [&burn::nn::Linear; 2] {
            [&self.input, &self.hidden]
        }
        fn fused(&self, x: Tensor<3>, h: Tensor<2>) -> Tensor<3> {
            self.sequence_fused(x, h)
        }
        fn step(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
            RnnCell::step(self, x, h)
        }
    }

    impl OneStateCell for GruCell {
        fn linears(&self) -> [&burn::nn::Linear; 2] {
            [&self.input, &self.hidden]
        }
        fn fused(&self, x: Tensor<3>, h: Tensor<2>) -> Tensor<3> {
            self.sequence_fused(x, h)
        }
        fn step(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
            GruCell::step(self, x, h)
        }
    }

    /// Outputs and gradients (x, h0, W_ih, b_ih, W_hh, b_hh) of the fused path, then of the
    /// step-by-step one, on the same random draws.
    fn one_state_case(
        cell: &impl OneStateCell,
        t: usize,
        b: usize,
        d: usize,
        h: usize,
        dev: &Device,
    ) -> [(Vec<f32>, Vec<Vec<f32>>); 2] {
        let x = random([t, b, d], dev).require_grad();
        let h0 = random([b, h], dev).require_grad();
        let wh = random([t, b, h], dev);
        [true, false].map(|fused| {
            let hs = if fused {
                cell.fused(x.clone(), h0.clone())
            } else {
                let mut hh = h0.clone();
                let mut ys = Vec::new();
                for s in x.clone().chunk(t, 0) {
                    hh = cell.step(s.squeeze_dim::<2>(0), hh);
                    ys.push(hh.clone());
                }
                Tensor::stack(ys, 0)
            };
            let grads = (hs.clone() * wh.clone()).sum().backward();
            let mut out =
                vec![vec(x.grad(&grads).expect("x grad")), vec(h0.grad(&grads).expect("h0 grad"))];
            for l in cell.linears() {
                out.push(vec(l.weight.grad(&grads).expect("weight grad")));
                out.push(vec(l.bias.as_ref().expect("bias").grad(&grads).expect("bias grad")));
            }
            (vec(hs), out)
        })
    }

    fn rnn_case(t: usize, b: usize, d: usize, h: usize) -> [(Vec<f32>, Vec<Vec<f32>>); 2] {
        let dev = Device::flex().autodiff();
        one_state_case(&RnnCellConfig::new(d, h).init(&dev), t, b, d, h, &dev)
    }

    fn gru_case(t: usize, b: usize, d: usize, h: usize) -> [(Vec<f32>, Vec<Vec<f32>>); 2] {
        let dev = Device::flex().autodiff();
        one_state_case(&GruCellConfig::new(d, h).init(&dev), t, b, d, h, &dev)
    }

    #[test]
    fn rnn_matches_the_step_by_step_cell_values_and_gradients() {
        let _rng = crate::device_rng_lock();
        for (t, b, d, h) in [(7, 3, 5, 9), (1, 1, 2, 19), (12, 2, 3, 1)] {
            let [(y_f, g_f), (y_r, g_r)] = rnn_case(t, b, d, h);
            close(&y_f, &y_r, 2e-6, &format!("rnn T{t} B{b} H{h} outputs"));
            let names = ["x", "h0", "W_ih", "b_ih", "W_hh", "b_hh"];
            for (k, (a, r)) in g_f.iter().zip(&g_r).enumerate() {
                close(a, r, 2e-5, &format!("rnn T{t} B{b} H{h} d{}", names[k]));
            }
        }
    }

    #[test]
    fn gru_matches_the_step_by_step_cell_values_and_gradients() {
        let _rng = crate::device_rng_lock();
        for (t, b, d, h) in [(7, 3, 5, 9), (1, 1, 2, 19), (10, 2, 3, 1)] {
            let [(y_f, g_f), (y_r, g_r)] = gru_case(t, b, d, h);
            close(&y_f, &y_r, 2e-6, &format!("gru T{t} B{b} H{h} outputs"));
            let names = ["x", "h0", "W_ih", "b_ih", "W_hh", "b_hh"];
            for (k, (a, r)) in g_f.iter().zip(&g_r).enumerate() {
                close(a, r, 2e-5, &format!("gru T{t} B{b} H{h} d{}", names[k]));
            }
        }
    }

    #[test]
    fn without_autodiff_the_fused_lstm_gives_the_same_outputs() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex();
        let cell: LstmCell = LstmCellConfig::new(4, 6).init(&dev);
        let x = random([5, 2, 4], &dev);
        let (h0, c0) = (random([2, 6], &dev), random([2, 6], &dev));
        let (hs, h, c) = cell.sequence_fused(x.clone(), h0.clone(), c0.clone());
        let (mut hh, mut cc) = (h0, c0);
        for s in x.chunk(5, 0) {
            (hh, cc) = cell.step(s.squeeze_dim::<2>(0), hh, cc);
        }
        close(&vec(h.clone()), &vec(hh), 2e-6, "final h");
        close(&vec(c), &vec(cc), 2e-6, "final c");
        close(&vec(hs.slice([4..5]).reshape([2, 6])), &vec(h), 0.0, "last output is the final h");
    }
}
