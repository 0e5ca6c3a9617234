//! The LSTM cell (Hochreiter & Schmidhuber; PyTorch's gate order i, f, g, o):
//! z = W_ih x + b_ih + W_hh h + b_hh, split into i, f, g, o;
//! c' = σ(f)·c + σ(i)·tanh(g); h' = σ(o)·tanh(c').
//! The forget gate's bias starts at 1 (Jozefowicz et al. 2015), so that the cell carries its
//! value until training decides otherwise.
//!
//! Why not Burn's `Lstm`: it takes a whole [B, T, D] sequence and slices it one step at a
//! time, which in backward builds a zero tensor of the whole input per step (O(T²)); its state
//! is (cell, hidden) where PyTorch says (h, c). Here each step is its own call with one fused
//! [D, 4H] and one [H, 4H] matmul; the tests check it against Burn's `Lstm` on the same weights.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

use crate::rnn::recurrent::{bias_sum, project, uniform_init};

#[derive(Config, Debug)]
pub struct LstmCellConfig {
    pub d_input: usize,
    pub d_hidden: usize,
    /// Initial bias of the forget gate (summed over both biases).
    #[config(default = 1.0)]
    pub forget_bias: f64,
}

#[derive(Module, Debug)]
pub struct LstmCell {
    /// [D, 4H]: gates i, f, g, o side by side.
    pub input: Linear,
    /// [H, 4H].
    pub hidden: Linear,
}

impl LstmCellConfig {
    /// PyTorch's init (uniform ±1/√hidden), then the forget gate's input bias set to
    /// `forget_bias` and its hidden bias to 0.
    pub fn init(&self, device: &Device) -> LstmCell {
        let h = self.d_hidden;
        let init = uniform_init(h);
        let mut input =
            LinearConfig::new(self.d_input, 4 * h).with_initializer(init.clone()).init(device);
        let mut hidden = LinearConfig::new(h, 4 * h).with_initializer(init).init(device);
        let set = |b: Option<Param<Tensor<1>>>, v: f64| {
            // `Param::map` does not carry "requires grad" over: without `set_require_grad` these
            // biases would silently never train.
            b.map(|b| {
                b.map(|t| t.slice_assign([h..2 * h], Tensor::full([h], v, device)).detach())
                    .set_require_grad(true)
            })
        };
        input.bias = set(input.bias, self.forget_bias);
        hidden.bias = set(hidden.bias, 0.0);
        LstmCell { input, hidden }
    }
}

impl LstmCell {
    pub fn d_hidden(&self) -> usize {
        self.hidden.weight.dims()[0]
    }

    /// A whole sequence on the CPU backend (see `burnlab_ops::recurrence`): input [T, B, D] → every h_t
    /// [T, B, H] and the final (h, c). Same maths as [`Self::step`] T times.
    pub fn sequence_fused(
        &self,
        x: Tensor<3>,
        h: Tensor<2>,
        c: Tensor<2>,
    ) -> (Tensor<3>, Tensor<2>, Tensor<2>) {
        self.recurrence_fused(project(x, &self.input), h, c)
    }

    /// [`Self::sequence_fused`] from the input projection x·W_ih [T, B, 4H] (no bias).
    pub fn recurrence_fused(
        &self,
        xw: Tensor<3>,
        h: Tensor<2>,
        c: Tensor<2>,
    ) -> (Tensor<3>, Tensor<2>, Tensor<2>) {
        let [t, b, _] = xw.dims();
        let hd = self.d_hidden();
        let bias = bias_sum(&self.input, &self.hidden);
        let out = burnlab_ops::lstm_sequence(xw, bias, self.hidden.weight.val(), h, c);
        let hs = out.clone().slice([0..1]).reshape([t, b, hd]);
        let c_last = out.slice([1..2, t - 1..t]).reshape([b, hd]);
        let h_last = hs.clone().slice([t - 1..t]).reshape([b, hd]);
        (hs, h_last, c_last)
    }

    /// One step: input [B, D] and state (h, c) [B, H] each → new (h, c).
    pub fn step(&self, x: Tensor<2>, h: Tensor<2>, c: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let z = self.input.forward(x) + self.hidden.forward(h);
        let [i, f, g, o]: [Tensor<2>; 4] =
            z.chunk(4, 1).try_into().unwrap_or_else(|_| unreachable!("4H splits in 4"));
        let c = sigmoid(f) * c + sigmoid(i) * g.tanh();
        let h = sigmoid(o) * c.clone().tanh();
        (h, c)
    }
}
