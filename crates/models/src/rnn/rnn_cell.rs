//! The vanilla (Elman) recurrent cell: h' = tanh(W_ih x + b_ih + W_hh h + b_hh), PyTorch's
//! `nn.RNN` with its two biases. Its gradient through time is a product of tanh'·W_hh factors,
//! which is why it forgets (vanishes) over long spans — see the LSTM test in `recurrent.rs`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::rnn::recurrent::{bias_sum, project, uniform_init};

#[derive(Config, Debug)]
pub struct RnnCellConfig {
    pub d_input: usize,
    pub d_hidden: usize,
}

#[derive(Module, Debug)]
pub struct RnnCell {
    pub input: Linear,
    pub hidden: Linear,
}

impl RnnCellConfig {
    /// PyTorch's init: every weight and bias uniform in ±1/√hidden.
    pub fn init(&self, device: &Device) -> RnnCell {
        let init = uniform_init(self.d_hidden);
        RnnCell {
            input: LinearConfig::new(self.d_input, self.d_hidden)
                .with_initializer(init.clone())
                .init(device),
            hidden: LinearConfig::new(self.d_hidden, self.d_hidden)
                .with_initializer(init)
                .init(device),
        }
    }
}

impl RnnCell {
    /// A whole sequence on the CPU backend (see `burnlab_ops::recurrence`): input [T, B, D] → every h_t,
    /// [T, B, H]. Same maths as [`Self::step`] T times.
    pub fn sequence_fused(&self, x: Tensor<3>, h: Tensor<2>) -> Tensor<3> {
        self.recurrence_fused(project(x, &self.input), h)
    }

    /// [`Self::sequence_fused`] from the input projection x·W_ih [T, B, H] (no bias).
    pub fn recurrence_fused(&self, xw: Tensor<3>, h: Tensor<2>) -> Tensor<3> {
        burnlab_ops::rnn_sequence(
            xw,
            bias_sum(&self.input, &self.hidden),
            self.hidden.weight.val(),
            h,
        )
    }

    /// One step: input [B, D], hidden [B, H] → new hidden [B, H].
    pub fn step(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        (self.input.forward(x) + self.hidden.forward(h)).tanh()
    }
}
