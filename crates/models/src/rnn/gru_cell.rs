//! The GRU cell in PyTorch's form (Cho et al. 2014, reset applied after the hidden matmul):
//! r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
//! n = tanh(W_in x + b_in + r·(W_hn h + b_hn)), h' = (1 − z)·n + z·h.
//!
//! Why not Burn's `Gru`: its forward returns the outputs but never the final state (needed to
//! sample text), and slices its input one step at a time (O(T²) backward). The tests check this
//! cell against Burn's `Gru` (reset_after) on the same weights.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

use crate::rnn::recurrent::{project, uniform_init};

#[derive(Config, Debug)]
pub struct GruCellConfig {
    pub d_input: usize,
    pub d_hidden: usize,
}

#[derive(Module, Debug)]
pub struct GruCell {
    /// [D, 3H]: r, z, n side by side.
    pub input: Linear,
    /// [H, 3H].
    pub hidden: Linear,
}

impl GruCellConfig {
    /// PyTorch's init: uniform ±1/√hidden.
    pub fn init(&self, device: &Device) -> GruCell {
        let init = uniform_init(self.d_hidden);
        GruCell {
            input: LinearConfig::new(self.d_input, 3 * self.d_hidden)
                .with_initializer(init.clone())
                .init(device),
            hidden: LinearConfig::new(self.d_hidden, 3 * self.d_hidden)
                .with_initializer(init)
                .init(device),
        }
    }
}

impl GruCell {
    /// A whole sequence on the CPU backend (see `burnlab_ops::recurrence`): input [T, B, D] → every h_t,
    /// [T, B, H]. Same maths as [`Self::step`] T times.
    pub fn sequence_fused(&self, x: Tensor<3>, h: Tensor<2>) -> Tensor<3> {
        self.recurrence_fused(project(x, &self.input), h)
    }

    /// [`Self::sequence_fused`] from the input projection x·W_ih [T, B, 3H] (no bias).
    pub fn recurrence_fused(&self, xw: Tensor<3>, h: Tensor<2>) -> Tensor<3> {
        let g3 = self.hidden.weight.dims()[1];
        let device = xw.device();
        let bias = |l: &Linear| {
            l.bias.as_ref().map(|b| b.val()).unwrap_or_else(|| Tensor::zeros([g3], &device))
        };
        burnlab_ops::gru_sequence(
            xw,
            bias(&self.input),
            self.hidden.weight.val(),
            bias(&self.hidden),
            h,
        )
    }

    /// One step: input [B, D], hidden [B, H] → new hidden.
    pub fn step(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        let [ri, zi, ni]: [Tensor<2>; 3] = self
            .input
            .forward(x)
            .chunk(3, 1)
            .try_into()
            .unwrap_or_else(|_| unreachable!("3H splits in 3"));
        let [rh, zh, nh]: [Tensor<2>; 3] = self
            .hidden
            .forward(h.clone())
            .chunk(3, 1)
            .try_into()
            .unwrap_or_else(|_| unreachable!("3H splits in 3"));
        let r = sigmoid(ri + rh);
        let z = sigmoid(zi + zh);
        let n = (ni + r * nh).tanh();
        // (1 − z)·n + z·h = n + z·(h − n)
        n.clone() + z * (h - n)
    }
}
