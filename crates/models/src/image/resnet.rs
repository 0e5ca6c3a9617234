//! CIFAR ResNets of He et al. 2015 (section 4.2): a 3x3·16 stem, three stages of n basic blocks
//! with 16/32/64 channels (depth = 6n + 2: ResNet-20, -32, -56), global average pool, linear.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};

use crate::image::blocks::{BasicBlock, ConvBn, ShortcutKind, kaiming_normal};

#[derive(Config, Debug)]
pub struct CifarResNetConfig {
    /// 6n + 2: 20, 32, 44, 56, 110.
    #[config(default = 20)]
    pub depth: usize,
    #[config(default = 3)]
    pub in_channels: usize,
    #[config(default = 10)]
    pub num_classes: usize,
    #[config(default = "ShortcutKind::A")]
    pub shortcut: ShortcutKind,
}

#[derive(Module, Debug)]
pub struct CifarResNet {
    stem: ConvBn,
    blocks: Vec<BasicBlock>,
    head: Linear,
}

impl CifarResNetConfig {
    /// Panics unless `depth` is 6n + 2 with n ≥ 1 (configs are validated before this).
    pub fn init(&self, device: &Device) -> CifarResNet {
        assert!(
            self.depth >= 8 && (self.depth - 2).is_multiple_of(6),
            "ResNet depth must be 6n + 2, got {}",
            self.depth
        );
        let n = (self.depth - 2) / 6;
        let mut blocks = Vec::with_capacity(3 * n);
        let mut c_in = 16;
        for (c_out, stride) in [(16, 1), (32, 2), (64, 2)] {
            for i in 0..n {
                blocks.push(BasicBlock::new(
                    c_in,
                    c_out,
                    if i == 0 { stride } else { 1 },
                    self.shortcut,
                    device,
                ));
                c_in = c_out;
            }
        }
        CifarResNet {
            stem: ConvBn::new(self.in_channels, 16, 3, 1, device),
            blocks,
            head: LinearConfig::new(64, self.num_classes)
                .with_initializer(kaiming_normal())
                .init(device),
        }
    }
}

impl CifarResNet {
    /// `images`: [batch, channels, height, width] → logits [batch, classes].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classify(self.features(images))
    }

    /// Everything before the head: pooled features [batch, 64].
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward_relu(images);
        for block in &self.blocks {
            x = block.forward(x);
        }
        adaptive_avg_pool2d(x, [1, 1]).flatten(1, 3)
    }

    /// The head: features → logits.
    pub fn classify(&self, features: Tensor<2>) -> Tensor<2> {
        self.head.forward(features)
    }

    /// Layer table for an input of shape [channels, height, width].
    pub fn summary(&self, input: [usize; 3]) -> Vec<crate::LayerRow> {
        let mut s = crate::Summary::new(input);
        self.stem.summarize(&mut s, "stem", "bn + relu");
        let per_stage = self.blocks.len() / 3;
        for (i, b) in self.blocks.iter().enumerate() {
            b.summarize(&mut s, &format!("stage{}.block{}", i / per_stage + 1, i % per_stage + 1));
        }
        s.global_pool("pool", "global avgpool");
        crate::summary::linear(&mut s, "fc", &self.head, "");
        s.into_rows()
    }

    /// Trainable parameters: Burn's `num_params` also counts BatchNorm running statistics.
    pub fn num_trainable_params(&self) -> usize {
        let buffers: usize = self.stem.buffer_count()
            + self.blocks.iter().map(BasicBlock::buffer_count).sum::<usize>();
        self.num_params() - buffers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet20_shapes_and_parameter_count() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let m = CifarResNetConfig::new().init(&d);
        let y = m.forward(Tensor::<4>::zeros([2, 3, 32, 32], &d));
        assert_eq!(y.dims(), [2, 10]);
        // The PyTorch peer's ResNet-20 (option A) has 269,722 parameters.
        assert_eq!(m.num_trainable_params(), 269_722);
        // The same peer code with n = 9 (ResNet-56): 853,018.
        assert_eq!(
            CifarResNetConfig::new().with_depth(56).init(&d).num_trainable_params(),
            853_018
        );
    }

    #[test]
    fn summary_matches_the_network() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        for shortcut in [ShortcutKind::A, ShortcutKind::B] {
            let m = CifarResNetConfig::new().with_shortcut(shortcut).init(&d);
            let rows = m.summary([3, 32, 32]);
            assert_eq!(rows.iter().map(|r| r.params).sum::<usize>(), m.num_trainable_params());
            assert_eq!(rows.last().map(|r| r.shape.clone()), Some(vec![10]));
            // Stem 3; stage 1 adds 2 per conv (12); stage 2's stride-2 conv 2, then 4 per conv
            // (20); stage 3's first 4, then 8 per conv (40): 81 before the global pool.
            let last_conv = rows.iter().rev().find(|r| r.op.starts_with("conv")).expect("conv");
            assert_eq!(last_conv.receptive_field, Some(81));
            assert_eq!(last_conv.shape, vec![64, 8, 8]);
        }
    }

    #[test]
    fn option_b_adds_projections() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let a = CifarResNetConfig::new().init(&d).num_trainable_params();
        let b =
            CifarResNetConfig::new().with_shortcut(ShortcutKind::B).init(&d).num_trainable_params();
        // Two projections: 16→32 and 32→64 (1x1 conv + BN gamma/beta).
        assert_eq!(b - a, (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64));
    }

    #[test]
    fn option_a_shortcut_subsamples_and_pads_with_zeros() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let block = crate::image::blocks::ZeroPad { stride: 2, before: 1, after: 1 };
        let x = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(
                (0..16).map(|v| v as f32).collect::<Vec<_>>(),
                [1, 1, 4, 4],
            ),
            &d,
        );
        let y: Vec<f32> = block.forward(x).into_data().try_to_vec().expect("f32");
        assert_eq!(y, vec![0., 0., 0., 0., 0., 2., 8., 10., 0., 0., 0., 0.]);
    }
}
