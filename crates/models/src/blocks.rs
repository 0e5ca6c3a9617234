//! Building blocks shared by the CNNs: conv + BatchNorm, and the residual basic block.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// He et al.'s initialisation for ReLU networks (PyTorch `kaiming_normal_`, fan-in).
pub fn kaiming_normal() -> Initializer {
    Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: false }
}

/// A bias-free convolution followed by BatchNorm (no activation).
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBn {
    pub fn new(c_in: usize, c_out: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(kernel / 2, kernel / 2, kernel / 2, kernel / 2))
            .with_bias(false)
            .with_initializer(kaiming_normal())
            .init(device);
        Self { conv, bn: BatchNormConfig::new(c_out).init(device) }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward(self.conv.forward(x))
    }

    /// conv → BN → ReLU.
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.forward(x))
    }

    /// Add this layer to a layer table; `extra` names what follows the convolution.
    pub fn summarize(&self, s: &mut crate::Summary, name: &str, extra: &str) {
        let [c_out, _, k, _] = self.conv.weight.dims();
        let [stride, _] = self.conv.stride;
        s.conv(name, c_out, k, stride, k / 2, self.trainable_params(), extra);
    }

    /// Trainable parameters: conv weights and BN scale and shift.
    pub fn trainable_params(&self) -> usize {
        self.conv.weight.shape().num_elements() + 2 * self.bn.gamma.dims()[0]
    }

    /// BatchNorm running statistics held (counted by `num_params`, not trainable).
    pub fn buffer_count(&self) -> usize {
        2 * self.bn.gamma.dims()[0]
    }
}

/// How a residual block matches shapes when it downsamples or widens (He et al. 2015).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ShortcutKind {
    /// Subsample and pad the new channels with zeros: no parameters.
    #[default]
    A,
    /// 1x1 convolution + BatchNorm projection.
    B,
}

/// Option A's shortcut: keep every `stride`-th pixel, then add `before` and `after` zero
/// channels around the input's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroPad {
    pub stride: usize,
    pub before: usize,
    pub after: usize,
}

impl ZeroPad {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let options = MaxPoolOptions { stride: [self.stride, self.stride], ..MaxPoolOptions::new([1, 1]) };
        let x = max_pool2d(x, options);
        let [b, _, h, w] = x.dims();
        let device = x.device();
        Tensor::cat(
            vec![Tensor::zeros([b, self.before, h, w], &device), x, Tensor::zeros([b, self.after, h, w], &device)],
            1,
        )
    }
}

/// relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)).
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub first: ConvBn,
    pub second: ConvBn,
    /// Option B's projection, when the block changes shape.
    pub projection: Option<ConvBn>,
    /// Option A's zero padding, when the block changes shape.
    #[module(skip)]
    pub pad: Option<ZeroPad>,
}

impl BasicBlock {
    pub fn new(c_in: usize, c_out: usize, stride: usize, kind: ShortcutKind, device: &Device) -> Self {
        let reshape = stride != 1 || c_in != c_out;
        let (projection, pad) = match (reshape, kind) {
            (false, _) => (None, None),
            (true, ShortcutKind::A) => {
                let extra = c_out - c_in;
                (None, Some(ZeroPad { stride, before: extra / 2, after: extra - extra / 2 }))
            }
            (true, ShortcutKind::B) => (Some(ConvBn::new(c_in, c_out, 1, stride, device)), None),
        };
        Self {
            first: ConvBn::new(c_in, c_out, 3, stride, device),
            second: ConvBn::new(c_out, c_out, 3, 1, device),
            projection,
            pad,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.second.forward(relu(self.first.forward(x.clone())));
        let shortcut = match (&self.projection, &self.pad) {
            (Some(p), _) => p.forward(x),
            (None, Some(z)) => z.forward(x),
            (None, None) => x,
        };
        relu(out + shortcut)
    }

    pub fn summarize(&self, s: &mut crate::Summary, name: &str) {
        self.first.summarize(s, &format!("{name}.conv1"), "bn + relu");
        self.second.summarize(s, &format!("{name}.conv2"), "bn");
        let (op, params) = match (&self.projection, &self.pad) {
            (Some(p), _) => ("+ shortcut (1x1 conv + bn), relu", p.trainable_params()),
            (None, Some(_)) => ("+ shortcut (subsample, zero channels), relu", 0),
            (None, None) => ("+ identity, relu", 0),
        };
        s.same(&format!("{name}.add"), op, params);
    }

    pub fn buffer_count(&self) -> usize {
        let projection = self.projection.as_ref().map_or(0, ConvBn::buffer_count);
        self.first.buffer_count() + self.second.buffer_count() + projection
    }
}

/// `x + relu(bn(conv(relu(bn(conv(x))))))`: the residual of the DAWNBench ResNet-9 (Page 2018),
/// two shape-preserving conv-BN-ReLU layers around an identity shortcut.
#[derive(Module, Debug)]
pub struct Residual {
    pub first: ConvBn,
    pub second: ConvBn,
}

impl Residual {
    pub fn new(channels: usize, device: &Device) -> Self {
        Self { first: ConvBn::new(channels, channels, 3, 1, device), second: ConvBn::new(channels, channels, 3, 1, device) }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x.clone() + self.second.forward_relu(self.first.forward_relu(x))
    }

    pub fn buffer_count(&self) -> usize {
        self.first.buffer_count() + self.second.buffer_count()
    }

    pub fn summarize(&self, s: &mut crate::Summary, name: &str) {
        self.first.summarize(s, &format!("{name}.conv1"), "bn + relu");
        self.second.summarize(s, &format!("{name}.conv2"), "bn + relu");
        s.same(&format!("{name}.add"), "+ identity", 0);
    }
}
