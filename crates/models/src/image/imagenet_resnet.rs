//! ResNet-18 and ResNet-34 (He et al. 2015, table 1) in torchvision's layout: a 7×7/2 stem with
//! BatchNorm and ReLU, a 3×3/2 max-pool, four stages of basic blocks (64, 128, 256, 512
//! channels; 2-2-2-2 or 3-4-6-3 blocks; the first block of stages 2–4 halves the size, with a
//! 1×1/2 convolution + BatchNorm shortcut), adaptive average pool, linear head. Field names
//! follow torchvision's (`conv1`, `bn1`, `layer1.0.conv1`, `downsample`, `fc`), so that its
//! checkpoints map onto these modules; initialisation is torchvision's (Kaiming normal, fan-out,
//! for convolutions; BatchNorm 1 and 0; PyTorch's default for the head).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};

use burnlab_ops::batch_norm::batch_norm;
use burnlab_ops::conv::conv2d;
use burnlab_ops::pool::max_pool2d;
use burnlab_ops::residual::add_relu;

use crate::image::blocks::pytorch_default;

#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// 18 or 34.
    #[config(default = 18)]
    pub depth: usize,
    #[config(default = 3)]
    pub in_channels: usize,
    #[config(default = 1000)]
    pub num_classes: usize,
}

impl ResNetConfig {
    /// Blocks per stage.
    pub fn blocks(&self) -> Option<[usize; 4]> {
        match self.depth {
            18 => Some([2, 2, 2, 2]),
            34 => Some([3, 4, 6, 3]),
            _ => None,
        }
    }

    /// Panics unless `depth` is 18 or 34 (configs are validated before this).
    pub fn init(&self, device: &Device) -> ResNet {
        let blocks = self.blocks().unwrap_or_else(|| {
            panic!("ImageNet ResNet depth must be 18 or 34, got {}", self.depth)
        });
        let mut c_in = 64;
        let mut stages = [64, 128, 256, 512].iter().zip(blocks).map(|(&c_out, n)| {
            let stride = if c_out == 64 { 1 } else { 2 };
            let stage: Vec<Block> = (0..n)
                .map(|i| {
                    Block::new(
                        if i == 0 { c_in } else { c_out },
                        c_out,
                        if i == 0 { stride } else { 1 },
                        device,
                    )
                })
                .collect();
            c_in = c_out;
            stage
        });
        let mut next = || stages.next().unwrap_or_default();
        ResNet {
            conv1: conv(self.in_channels, 64, 7, 2, device),
            bn1: BatchNormConfig::new(64).init(device),
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
            fc: LinearConfig::new(512, self.num_classes)
                .with_initializer(pytorch_default())
                .init(device),
        }
    }
}

/// A bias-free k×k convolution with padding k/2, initialised as torchvision does.
fn conv(c_in: usize, c_out: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let p = kernel / 2;
    Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: true })
        .init(device)
}

/// torchvision's `downsample`: 1×1 convolution and BatchNorm.
#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), torchvision's `BasicBlock`.
#[derive(Module, Debug)]
pub struct Block {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub downsample: Option<Downsample>,
}

impl Block {
    fn new(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Self {
        let downsample = (stride != 1 || c_in != c_out).then(|| Downsample {
            conv: conv(c_in, c_out, 1, stride, device),
            bn: BatchNormConfig::new(c_out).init(device),
        });
        Self {
            conv1: conv(c_in, c_out, 3, stride, device),
            bn1: BatchNormConfig::new(c_out).init(device),
            conv2: conv(c_out, c_out, 3, 1, device),
            bn2: BatchNormConfig::new(c_out).init(device),
            downsample,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = batch_norm(&self.bn1, conv2d(&self.conv1, x.clone()), true);
        let out = batch_norm(&self.bn2, conv2d(&self.conv2, out), false);
        let shortcut = match &self.downsample {
            Some(d) => batch_norm(&d.bn, conv2d(&d.conv, x), false),
            None => x,
        };
        add_relu(out, shortcut)
    }

    fn summarize(&self, s: &mut crate::Summary, name: &str) {
        let bn = |b: &BatchNorm| 2 * b.gamma.dims()[0];
        crate::summary::conv2d_params(
            s,
            &format!("{name}.conv1"),
            &self.conv1,
            bn(&self.bn1),
            "bn + relu",
        );
        crate::summary::conv2d_params(
            s,
            &format!("{name}.conv2"),
            &self.conv2,
            bn(&self.bn2),
            "bn",
        );
        let (op, params) = match &self.downsample {
            Some(d) => (
                "+ downsample (1x1 conv + bn), relu",
                d.conv.weight.shape().num_elements() + bn(&d.bn),
            ),
            None => ("+ identity, relu", 0),
        };
        s.same(&format!("{name}.add"), op, params);
    }

    fn buffer_count(&self) -> usize {
        let bn = |b: &BatchNorm| 2 * b.gamma.dims()[0];
        bn(&self.bn1) + bn(&self.bn2) + self.downsample.as_ref().map_or(0, |d| bn(&d.bn))
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub layer1: Vec<Block>,
    pub layer2: Vec<Block>,
    pub layer3: Vec<Block>,
    pub layer4: Vec<Block>,
    pub fc: Linear,
}

impl ResNet {
    fn stages(&self) -> [&Vec<Block>; 4] {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
    }

    /// `images`: [batch, channels, height, width] (any size from 32 up; 224 as on ImageNet) →
    /// pooled features [batch, 512].
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let x = batch_norm(&self.bn1, conv2d(&self.conv1, images), true);
        let mut x = max_pool2d(x, [3, 3], [2, 2], [1, 1]);
        for stage in self.stages() {
            for block in stage {
                x = block.forward(x);
            }
        }
        adaptive_avg_pool2d(x, [1, 1]).flatten(1, 3)
    }

    /// `images` → logits [batch, classes].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classify(self.features(images))
    }

    /// The head: features → logits.
    pub fn classify(&self, features: Tensor<2>) -> Tensor<2> {
        self.fc.forward(features)
    }

    /// Layer table for an input of shape [channels, height, width].
    pub fn summary(&self, input: [usize; 3]) -> Vec<crate::LayerRow> {
        let mut s = crate::Summary::new(input);
        crate::summary::conv2d_params(
            &mut s,
            "conv1",
            &self.conv1,
            2 * self.bn1.gamma.dims()[0],
            "bn + relu",
        );
        s.max_pool_padded("maxpool", 3, 2, 1);
        for (i, stage) in self.stages().into_iter().enumerate() {
            for (j, block) in stage.iter().enumerate() {
                block.summarize(&mut s, &format!("layer{}.{j}", i + 1));
            }
        }
        s.global_pool("avgpool", "adaptive avgpool");
        crate::summary::linear(&mut s, "fc", &self.fc, "");
        s.into_rows()
    }

    /// Trainable parameters: Burn's `num_params` also counts BatchNorm running statistics.
    pub fn num_trainable_params(&self) -> usize {
        let buffers: usize = 2 * self.bn1.gamma.dims()[0]
            + self.stages().iter().flat_map(|s| s.iter()).map(Block::buffer_count).sum::<usize>();
        self.num_params() - buffers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_are_torchvisions() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        // torchvision.models.resnet18() / resnet34(): sum(p.numel() for p in m.parameters()).
        let r18 = ResNetConfig::new().init(&d);
        assert_eq!(r18.num_trainable_params(), 11_689_512);
        let r34 = ResNetConfig::new().with_depth(34).init(&d);
        assert_eq!(r34.num_trainable_params(), 21_797_672);
        // A 2-class head: 512 × 2 + 2 instead of 512 × 1000 + 1000.
        let two = ResNetConfig::new().with_num_classes(2).init(&d);
        assert_eq!(two.num_trainable_params(), 11_689_512 - 513_000 + 1_026);
    }

    #[test]
    fn any_input_size_pools_to_the_head_and_the_summary_adds_up() {
        let _rng = crate::device_rng_lock();
        let d = Device::flex();
        let m = ResNetConfig::new().with_num_classes(3).init(&d);
        for side in [32, 64, 97] {
            let y = m.forward(Tensor::<4>::zeros([2, 3, side, side], &d));
            assert_eq!(y.dims(), [2, 3]);
        }
        let rows = m.summary([3, 224, 224]);
        assert_eq!(rows.iter().map(|r| r.params).sum::<usize>(), m.num_trainable_params());
        let stem = rows.iter().find(|r| r.name == "maxpool").expect("maxpool");
        assert_eq!(stem.shape, vec![64, 56, 56]);
        let last = rows.iter().rev().find(|r| r.op.starts_with("conv")).expect("conv");
        assert_eq!(last.shape, vec![512, 7, 7]);
        // torchvision's ResNet-18 sees 435 pixels at its last convolution.
        assert_eq!(last.receptive_field, Some(435));
    }
}
