//! The fast ResNet-9 of Page's DAWNBench entries ("How to train your ResNet", 2018): a 3x3·64
//! prep layer, then 128 (+ residual) → 256 → 512 (+ residual), each widening layer followed by a
//! 2x2 max-pool, a global max-pool, a bias-free linear layer and logits scaled by 1/8.
//! 6.57 M trainable parameters; 94% on CIFAR-10 in 24 epochs with one-cycle SGD.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use burnlab_ops::pool::max_pool2d;

use crate::image::blocks::{ConvBn, Residual, pytorch_default};

#[derive(Config, Debug)]
pub struct ResNet9Config {
    #[config(default = 3)]
    pub in_channels: usize,
    #[config(default = 10)]
    pub num_classes: usize,
    /// Multiplier on the logits: Page's 0.125 keeps the softmax from saturating early.
    #[config(default = 0.125)]
    pub logit_scale: f64,
}

#[derive(Module, Debug)]
pub struct ResNet9 {
    pub prep: ConvBn,
    pub layer1: ConvBn,
    pub res1: Residual,
    pub layer2: ConvBn,
    pub layer3: ConvBn,
    pub res3: Residual,
    pub head: Linear,
    #[module(skip)]
    pub logit_scale: f64,
}

impl ResNet9Config {
    pub fn init(&self, device: &Device) -> ResNet9 {
        // PyTorch's default initialisation, as in Page's code: his one-cycle peak of 0.4 and
        // weight decay were tuned for it (He-normal weights are ~2.4x larger, which with
        // BatchNorm divides the effective learning rate by ~6).
        let conv = |c_in, c_out| ConvBn::with_init(c_in, c_out, 3, 1, pytorch_default(), device);
        ResNet9 {
            prep: conv(self.in_channels, 64),
            layer1: conv(64, 128),
            res1: Residual::new(128, pytorch_default(), device),
            layer2: conv(128, 256),
            layer3: conv(256, 512),
            res3: Residual::new(512, pytorch_default(), device),
            head: LinearConfig::new(512, self.num_classes)
                .with_bias(false)
                .with_initializer(pytorch_default())
                .init(device),
            logit_scale: self.logit_scale,
        }
    }
}

/// 2×2 max pool (burnlab's kernel on flex, Burn's op elsewhere).
fn pool2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, [2, 2], [2, 2], [0, 0])
}

impl ResNet9 {
    /// `images`: [batch, channels, height, width] (32x32 for CIFAR) → logits [batch, classes].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classify(self.features(images))
    }

    /// The head: features → scaled logits.
    pub fn classify(&self, features: Tensor<2>) -> Tensor<2> {
        self.head.forward(features).mul_scalar(self.logit_scale)
    }

    /// Everything before the head: globally max-pooled features [batch, 512].
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.prep.forward_relu(images);
        let x = self.res1.forward(pool2(self.layer1.forward_relu(x)));
        let x = pool2(self.layer2.forward_relu(x));
        let x = self.res3.forward(pool2(self.layer3.forward_relu(x)));
        let [_, _, h, w] = x.dims();
        // Global max-pool (Page's MaxPool2d(4) on 32x32 inputs).
        let x = max_pool2d(x, [h, w], [h, w], [0, 0]);
        x.flatten(1, 3)
    }

    /// Layer table for an input of shape [channels, height, width].
    pub fn summary(&self, input: [usize; 3]) -> Vec<crate::LayerRow> {
        let mut s = crate::Summary::new(input);
        self.prep.summarize(&mut s, "prep", "bn + relu");
        self.layer1.summarize(&mut s, "layer1", "bn + relu");
        s.max_pool("layer1.pool", 2, 2);
        self.res1.summarize(&mut s, "res1");
        self.layer2.summarize(&mut s, "layer2", "bn + relu");
        s.max_pool("layer2.pool", 2, 2);
        self.layer3.summarize(&mut s, "layer3", "bn + relu");
        s.max_pool("layer3.pool", 2, 2);
        self.res3.summarize(&mut s, "res3");
        s.global_pool("pool", "global maxpool");
        crate::summary::linear(&mut s, "fc", &self.head, &format!("x{}", self.logit_scale));
        s.into_rows()
    }

    /// Trainable parameters: Burn's `num_params` also counts BatchNorm running statistics.
    pub fn num_trainable_params(&self) -> usize {
        let buffers = self.prep.buffer_count()
            + self.layer1.buffer_count()
            + self.res1.buffer_count()
            + self.layer2.buffer_count()
            + self.layer3.buffer_count()
            + self.res3.buffer_count();
        self.num_params() - buffers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_parameter_count() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let m = ResNet9Config::new().init(&d);
        let y = m.forward(Tensor::<4>::zeros([2, 3, 32, 32], &d));
        assert_eq!(y.dims(), [2, 10]);
        // Convs 1,728 + 73,728 + 2·147,456 + 294,912 + 1,179,648 + 2·2,359,296, BN scale and
        // shift 2·2,240, linear 5,120: the 6.57 M of Page's network.
        assert_eq!(m.num_trainable_params(), 6_573_120);
        let rows = m.summary([3, 32, 32]);
        assert_eq!(rows.iter().map(|r| r.params).sum::<usize>(), 6_573_120);
        assert_eq!(rows.last().map(|r| r.shape.clone()), Some(vec![10]));
        let res3 = rows.iter().find(|r| r.name == "res3.add").expect("res3");
        assert_eq!(res3.shape, vec![512, 4, 4]);
    }

    #[test]
    fn weights_start_as_pytorch_defaults() {
        let _rng = crate::device_rng_lock();
        // U(±1/√fan_in): standard deviation 1/√(3·fan_in).
        let m = ResNet9Config::new().init(&Device::flex());
        let w: Vec<f32> = m.layer3.conv.weight.val().into_data().try_to_vec().expect("f32");
        let bound = 1.0 / ((256 * 9) as f32).sqrt();
        assert!(w.iter().all(|v| v.abs() <= bound));
        let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
        assert!((std * (3.0 * 256.0 * 9.0f32).sqrt() - 1.0).abs() < 0.01, "{std}");
    }

    #[test]
    fn logits_are_scaled() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let m = ResNet9Config::new().init(&d);
        let x = Tensor::<4>::random([1, 3, 32, 32], burn::tensor::Distribution::Default, &d);
        let unscaled = ResNet9 { logit_scale: 1.0, ..m.clone() }.forward(x.clone());
        let scaled = m.forward(x);
        let diff: f32 = (unscaled.mul_scalar(0.125) - scaled).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
    }
}
