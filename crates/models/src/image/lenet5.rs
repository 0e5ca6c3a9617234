//! LeNet-5 (LeCun et al. 1998) for 32x32 images: conv5x5·6 → pool → conv5x5·16 → pool →
//! fc120 → fc84 → fc(classes), with the activation from the config.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::Activation;
use burnlab_ops::conv::conv2d;
use burnlab_ops::pool::max_pool2d;

#[derive(Config, Debug)]
pub struct LeNet5Config {
    #[config(default = 3)]
    pub in_channels: usize,
    #[config(default = 10)]
    pub num_classes: usize,
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
}

#[derive(Module, Debug)]
pub struct LeNet5 {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    #[module(skip)]
    activation: Activation,
}

impl LeNet5Config {
    pub fn init(&self, device: &Device) -> LeNet5 {
        LeNet5 {
            conv1: Conv2dConfig::new([self.in_channels, 6], [5, 5]).init(device),
            conv2: Conv2dConfig::new([6, 16], [5, 5]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(16 * 5 * 5, 120).init(device),
            fc2: LinearConfig::new(120, 84).init(device),
            fc3: LinearConfig::new(84, self.num_classes).init(device),
            activation: self.activation,
        }
    }
}

impl LeNet5 {
    /// Layer table for an input of shape [channels, height, width].
    pub fn summary(&self, input: [usize; 3]) -> Vec<crate::LayerRow> {
        let a = format!("{:?}", self.activation).to_lowercase();
        let mut s = crate::Summary::new(input);
        crate::summary::conv2d(&mut s, "conv1", &self.conv1, 0, &a);
        s.max_pool("pool1", 2, 2);
        crate::summary::conv2d(&mut s, "conv2", &self.conv2, 0, &a);
        s.max_pool("pool2", 2, 2);
        crate::summary::linear(&mut s, "fc1", &self.fc1, &a);
        crate::summary::linear(&mut s, "fc2", &self.fc2, &a);
        crate::summary::linear(&mut s, "fc3", &self.fc3, "");
        s.into_rows()
    }

    /// `images`: [batch, channels, 32, 32] → logits [batch, classes].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classify(self.features(images))
    }

    /// The head: features → logits.
    pub fn classify(&self, features: Tensor<2>) -> Tensor<2> {
        self.fc3.forward(features)
    }

    /// The 2×2 max pool through burnlab's kernel on flex (Burn's own op took 46% of a LeNet-5
    /// evaluation pass there: a scalar loop with a division per output).
    fn pool(&self, x: Tensor<4>) -> Tensor<4> {
        max_pool2d(x, self.pool.kernel_size, self.pool.stride, [0, 0])
    }

    /// Everything before the head: fc2's activations [batch, 84].
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let a = &self.activation;
        let x = self.pool(a.forward(conv2d(&self.conv1, images))); // [b, 6, 14, 14]
        let x = self.pool(a.forward(conv2d(&self.conv2, x))); // [b, 16, 5, 5]
        let x: Tensor<2> = x.flatten(1, 3);
        let x = a.forward(self.fc1.forward(x));
        a.forward(self.fc2.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole network on flex (convolutions through `fused::conv`) against the same layers
    /// through Burn's own `Conv2d::forward`: logits and every parameter's gradient.
    #[test]
    fn fused_convolutions_match_burns_through_the_whole_network() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex().autodiff();
        dev.seed(4);
        let m = LeNet5Config::new().init(&dev);
        let x = Tensor::<4>::random([3, 3, 32, 32], burn::tensor::Distribution::Default, &dev);
        let burn_forward = |images: Tensor<4>| -> Tensor<2> {
            let a = &m.activation;
            let x = m.pool.forward(a.forward(m.conv1.forward(images)));
            let x = m.pool.forward(a.forward(m.conv2.forward(x)));
            let x: Tensor<2> = x.flatten(1, 3);
            let x = a.forward(m.fc1.forward(x));
            let x = a.forward(m.fc2.forward(x));
            m.fc3.forward(x)
        };
        let (ours, theirs) = (m.forward(x.clone()), burn_forward(x));
        let r = Tensor::<2>::random(ours.dims(), burn::tensor::Distribution::Default, &dev);
        let flat = |t: Tensor<2>| -> Vec<f32> { t.into_data().try_to_vec().expect("f32") };
        for (a, b) in flat(ours.clone()).iter().zip(&flat(theirs.clone())) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "logits: {a} vs {b}");
        }
        let (g1, g2) = ((ours * r.clone()).sum().backward(), (theirs * r).sum().backward());
        struct Compare<'a>(&'a burn::tensor::Gradients, &'a burn::tensor::Gradients, usize);
        impl burn::module::ModuleVisitor for Compare<'_> {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                let v = |g| -> Vec<f32> {
                    p.grad(g).expect("grad").into_data().try_to_vec().expect("f32")
                };
                let (a, b) = (v(self.0), v(self.1));
                let scale = b.iter().fold(1e-3f32, |m, x| m.max(x.abs()));
                for (x, y) in a.iter().zip(&b) {
                    assert!(
                        (x - y).abs() < 1e-4 * scale,
                        "param {:?}: {x} vs {y} (scale {scale})",
                        p.shape()
                    );
                }
                self.2 += 1;
            }
        }
        let mut c = Compare(&g1, &g2, 0);
        m.visit(&mut c);
        assert_eq!(c.2, 10, "every weight and bias compared");
    }

    #[test]
    fn shapes_and_parameter_count() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let m = LeNet5Config::new().init(&d);
        let y = m.forward(Tensor::<4>::zeros([2, 3, 32, 32], &d));
        assert_eq!(y.dims(), [2, 10]);
        // 456 + 2,416 + 48,120 + 10,164 + 850: the known 62,006 for 3 input channels.
        assert_eq!(m.num_params(), 62_006);
        let grey = LeNet5Config::new().with_in_channels(1).init(&d);
        assert_eq!(grey.num_params(), 62_006 - 2 * 150);
    }

    #[test]
    fn summary_shapes_params_and_receptive_fields() {
        let _rng = crate::device_rng_lock();
        let m = LeNet5Config::new().init(&Device::flex());
        let rows = m.summary([3, 32, 32]);
        let got: Vec<(&str, Vec<usize>, usize, Option<usize>)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.shape.clone(), r.params, r.receptive_field))
            .collect();
        assert_eq!(
            got,
            vec![
                ("input", vec![3, 32, 32], 0, Some(1)),
                ("conv1", vec![6, 28, 28], 456, Some(5)),
                ("pool1", vec![6, 14, 14], 0, Some(6)),
                ("conv2", vec![16, 10, 10], 2_416, Some(14)),
                ("pool2", vec![16, 5, 5], 0, Some(16)),
                ("fc1", vec![120], 48_120, None),
                ("fc2", vec![84], 10_164, None),
                ("fc3", vec![10], 850, None),
            ]
        );
        assert_eq!(rows[1].op, "conv5x5/1 + relu");
    }
}
