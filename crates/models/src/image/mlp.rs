use burn::config::Config;
use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::{Activation, Dropout};

/// How the weights of each linear layer are initialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WeightInit {
    /// PyTorch's `nn.Linear` default (Kaiming uniform, a = sqrt(5)).
    #[default]
    Kaiming,
    /// Glorot/Xavier uniform.
    Xavier,
    /// N(0, 0.01²), the CS231n starting point for linear classifiers.
    Normal,
}

impl WeightInit {
    fn initializer(self) -> Initializer {
        match self {
            WeightInit::Kaiming => {
                Initializer::KaimingUniform { gain: 1.0 / 3f64.sqrt(), fan_out_only: false }
            }
            WeightInit::Xavier => Initializer::XavierUniform { gain: 1.0 },
            WeightInit::Normal => Initializer::Normal { mean: 0.0, std: 0.01 },
        }
    }
}

/// A multi-layer perceptron over flattened images. `hidden = []` is the plain softmax (or SVM)
/// linear classifier.
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Flattened input size (3·32·32 for CIFAR-10).
    #[config(default = 3072)]
    pub d_input: usize,
    #[config(default = 10)]
    pub num_classes: usize,
    /// Widths of the hidden layers, in order.
    #[config(default = "Vec::new()")]
    pub hidden: Vec<usize>,
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Dropout probability after each hidden activation.
    #[config(default = 0.0)]
    pub dropout: f64,
    #[config(default = "WeightInit::Kaiming")]
    pub init: WeightInit,
    /// Draw dropout masks on the host: set for CPU backends (see [`Dropout`]).
    #[config(default = false)]
    pub host_dropout: bool,
}

#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    output: Linear,
    dropout: Dropout,
    #[module(skip)]
    activation: Activation,
}

impl MlpConfig {
    pub fn init(&self, device: &Device) -> Mlp {
        let init = self.init.initializer();
        let mut d_in = self.d_input;
        let mut hidden = Vec::with_capacity(self.hidden.len());
        for &width in &self.hidden {
            hidden.push(LinearConfig::new(d_in, width).with_initializer(init.clone()).init(device));
            d_in = width;
        }
        let output = LinearConfig::new(d_in, self.num_classes).with_initializer(init).init(device);
        Mlp {
            hidden,
            output,
            dropout: Dropout::new(self.dropout, self.host_dropout),
            activation: self.activation,
        }
    }
}

impl Mlp {
    /// `images`: [batch, channels, height, width] (or any [batch, ...]) → logits [batch, classes].
    pub fn forward<const D: usize>(&self, images: Tensor<D>) -> Tensor<2> {
        self.classify(self.features(images))
    }

    /// Everything before the output layer: the last hidden layer's activations (the flattened
    /// images for a linear classifier).
    pub fn features<const D: usize>(&self, images: Tensor<D>) -> Tensor<2> {
        let mut x: Tensor<2> = images.flatten(1, D - 1);
        for layer in &self.hidden {
            x = self
                .dropout
                .forward(self.activation.forward(burnlab_ops::linear::linear(layer, x)));
        }
        x
    }

    /// The output layer: features → logits.
    pub fn classify(&self, features: Tensor<2>) -> Tensor<2> {
        burnlab_ops::linear::linear(&self.output, features)
    }

    /// Layer table for an input of shape [channels, height, width].
    pub fn summary(&self, input: [usize; 3]) -> Vec<crate::LayerRow> {
        let a = format!("{:?}", self.activation).to_lowercase();
        let mut s = crate::Summary::new(input);
        for (i, layer) in self.hidden.iter().enumerate() {
            crate::summary::linear(&mut s, &format!("fc{}", i + 1), layer, &a);
        }
        crate::summary::linear(&mut s, "out", &self.output, "");
        s.into_rows()
    }

    /// Trainable parameters (Burn's `num_params` would also count buffers in other models).
    pub fn num_trainable_params(&self) -> usize {
        self.num_params()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_shape_and_params_linear_classifier() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let m = MlpConfig::new().init(&d);
        let y = m.forward(Tensor::<4>::zeros([5, 3, 32, 32], &d));
        assert_eq!(y.dims(), [5, 10]);
        assert_eq!(m.num_trainable_params(), 3072 * 10 + 10);
    }

    #[test]
    fn output_shape_and_params_deep() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let m = MlpConfig::new().with_hidden(vec![512, 256]).with_dropout(0.5).init(&d);
        let y = m.forward(Tensor::<4>::ones([2, 3, 32, 32], &d));
        assert_eq!(y.dims(), [2, 10]);
        assert_eq!(m.num_trainable_params(), 3072 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10);
        let rows = m.summary([3, 32, 32]);
        assert_eq!(rows.iter().map(|r| r.params).sum::<usize>(), m.num_trainable_params());
        assert_eq!(
            rows.iter().map(|r| r.shape.clone()).collect::<Vec<_>>(),
            vec![vec![3, 32, 32], vec![512], vec![256], vec![10]]
        );
    }

    #[test]
    fn normal_init_has_small_weights() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let m = MlpConfig::new().with_init(WeightInit::Normal).init(&d);
        let w: Vec<f32> = m.output.weight.val().into_data().try_to_vec().expect("f32");
        let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
        assert!((std - 0.01).abs() < 0.001, "std {std}");
    }
}
