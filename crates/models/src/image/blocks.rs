//! Building blocks shared by the CNNs: conv + BatchNorm, and the residual basic block.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use burnlab_ops::batch_norm::batch_norm;
use burnlab_ops::conv::conv2d;
use burnlab_ops::pool::max_pool2d;
use burnlab_ops::residual::add_relu;

/// He et al.'s initialisation for ReLU networks (PyTorch `kaiming_normal_`, fan-in).
pub fn kaiming_normal() -> Initializer {
    Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: false }
}

/// PyTorch's default for `nn.Conv2d` and `nn.Linear` (Kaiming uniform with a = √5, i.e.
/// U(±1/√fan_in)). With BatchNorm after a layer, the weights' scale sets the effective learning
/// rate, so a recipe tuned in PyTorch needs this start to behave the same.
pub fn pytorch_default() -> Initializer {
    Initializer::KaimingUniform { gain: 1.0 / 3f64.sqrt(), fan_out_only: false }
}

/// A bias-free convolution followed by BatchNorm (no activation).
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBn {
    /// He-initialised (`kaiming_normal`), as in He et al.'s CIFAR ResNets.
    pub fn new(c_in: usize, c_out: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        Self::with_init(c_in, c_out, kernel, stride, kaiming_normal(), device)
    }

    pub fn with_init(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        init: Initializer,
        device: &Device,
    ) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(kernel / 2, kernel / 2, kernel / 2, kernel / 2))
            .with_bias(false)
            .with_initializer(init)
            .init(device);
        Self { conv, bn: BatchNormConfig::new(c_out).init(device) }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        batch_norm(&self.bn, conv2d(&self.conv, x), false)
    }

    /// conv → BN → ReLU.
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        batch_norm(&self.bn, conv2d(&self.conv, x), true)
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
        let x = max_pool2d(x, [1, 1], [self.stride, self.stride], [0, 0]);
        let [b, _, h, w] = x.dims();
        let device = x.device();
        Tensor::cat(
            vec![
                Tensor::zeros([b, self.before, h, w], &device),
                x,
                Tensor::zeros([b, self.after, h, w], &device),
            ],
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
    pub fn new(
        c_in: usize,
        c_out: usize,
        stride: usize,
        kind: ShortcutKind,
        device: &Device,
    ) -> Self {
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
        let out = self.second.forward(self.first.forward_relu(x.clone()));
        let shortcut = match (&self.projection, &self.pad) {
            (Some(p), _) => p.forward(x),
            (None, Some(z)) => z.forward(x),
            (None, None) => x,
        };
        add_relu(out, shortcut)
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
    pub fn new(channels: usize, init: Initializer, device: &Device) -> Self {
        Self {
            first: ConvBn::with_init(channels, channels, 3, 1, init.clone(), device),
            second: ConvBn::with_init(channels, channels, 3, 1, init, device),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::tensor::{Distribution, TensorData};

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_to_vec().expect("f32")
    }

    #[test]
    fn batchnorm_running_stats_update_in_train_mode_and_stay_fixed_in_eval_mode() {
        let _rng = crate::device_rng_lock();
        let ad = Device::flex().autodiff();
        ad.seed(1);
        let layer = ConvBn::new(2, 3, 3, 1, &ad).train();
        let x = Tensor::<4>::random([4, 2, 5, 5], Distribution::Normal(3.0, 2.0), &ad);
        assert_eq!(values(layer.bn.running_mean.value_sync()), vec![0.0; 3]);
        // Train mode (autodiff device): the batch statistics move the running mean by momentum 0.1.
        let conv_out = layer.conv.forward(x.clone());
        let batch_mean = values(conv_out.clone().mean_dim(0).mean_dim(2).mean_dim(3).flatten(0, 3));
        let _ = layer.forward(x.clone());
        let after_one = values(layer.bn.running_mean.value_sync());
        for (r, m) in after_one.iter().zip(&batch_mean) {
            assert!((r - 0.1 * m).abs() < 1e-4, "running {r} vs 0.1 x batch mean {m}");
        }
        assert!(batch_mean.iter().any(|m| m.abs() > 0.1), "the test input must move the mean");

        // Eval mode: running statistics are used and left alone, and each image's output
        // no longer depends on the rest of the batch.
        let eval = layer.valid();
        let xe = x.inner();
        let full = eval.forward(xe.clone());
        let single = eval.forward(xe.clone().slice([0..1]));
        assert_eq!(values(eval.bn.running_mean.value_sync()), after_one);
        let diff: f32 = (full.clone().slice([0..1]) - single).abs().max().into_scalar();
        assert!(diff < 1e-5, "eval output depends on the batch: {diff}");
        // And it is the affine map of the running statistics: γ(x − μ)/√(σ² + ε) + β.
        let mean = eval.bn.running_mean.value_sync().reshape([1, 3, 1, 1]);
        let var = eval.bn.running_var.value_sync().reshape([1, 3, 1, 1]);
        let expected = (eval.conv.forward(xe) - mean).div((var + 1e-5).sqrt());
        let diff: f32 = (full - expected).abs().max().into_scalar();
        assert!(diff < 1e-4, "eval BatchNorm is not the running-statistics affine map: {diff}");
    }

    #[test]
    fn conv_gradients_match_finite_differences() {
        let _rng = crate::device_rng_lock();
        // Stride 2, padding 1, odd sizes: the weight and input gradients of Σ conv(x)·r.
        let plain = Device::flex();
        plain.seed(7);
        let conv = Conv2dConfig::new([2, 3], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&plain);
        let x = Tensor::<4>::random([2, 2, 5, 5], Distribution::Normal(0.0, 1.0), &plain);
        let r = Tensor::<4>::random([2, 3, 3, 3], Distribution::Normal(0.0, 1.0), &plain);
        let f = |c: &Conv2d, x: Tensor<4>| -> f64 {
            (c.forward(x) * r.clone()).sum().into_scalar::<f32>() as f64
        };

        let ad = plain.clone().autodiff();
        let conv_ad = conv.clone().fork(&ad).train();
        let x_ad = Tensor::<4>::from_data(x.to_data(), &ad).require_grad();
        let grads = (conv_ad.forward(x_ad.clone()) * Tensor::<4>::from_data(r.to_data(), &ad))
            .sum()
            .backward();
        let gw: Vec<f32> = conv_ad
            .weight
            .grad(&grads)
            .expect("weight grad")
            .into_data()
            .try_to_vec()
            .expect("f32");
        let gx: Vec<f32> =
            x_ad.grad(&grads).expect("input grad").into_data().try_to_vec().expect("f32");

        let eps = 1e-2f32;
        let w: Vec<f32> = conv.weight.val().into_data().try_to_vec().expect("f32");
        let w_shape = conv.weight.dims();
        for i in (0..w.len()).step_by(5) {
            let at = |d: f32| {
                let mut v = w.clone();
                v[i] += d;
                let mut c = conv.clone();
                c.weight = burn::module::Param::from_tensor(Tensor::from_data(
                    TensorData::new(v, w_shape),
                    &plain,
                ));
                f(&c, x.clone())
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            assert!((fd - gw[i] as f64).abs() < 2e-2, "weight {i}: fd {fd} vs autodiff {}", gw[i]);
        }
        let xv: Vec<f32> = x.clone().into_data().try_to_vec().expect("f32");
        for i in (0..xv.len()).step_by(3) {
            let at = |d: f32| {
                let mut v = xv.clone();
                v[i] += d;
                f(&conv, Tensor::from_data(TensorData::new(v, [2, 2, 5, 5]), &plain))
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            assert!((fd - gx[i] as f64).abs() < 2e-2, "input {i}: fd {fd} vs autodiff {}", gx[i]);
        }
    }
}
