//! Each convolution layer of LeNet-5, ResNet-20 and ResNet-18 (224 px) through
//! `burnlab_ops::conv::conv2d` (burnlab's kernels where it takes the layer) against Burn's own
//! `Conv2d::forward`, forward alone and forward + backward, best of three, one `key=value` line a
//! layer with the ratio. `BURNLAB_ISA=plain` checks the plain floor: no ratio under 1. An
//! argument keeps only the layers whose model or name holds it (`resnet18`, `c512-512`).
use std::time::Instant;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Distribution, Tensor};
use burnlab_kernels::Cpu;

/// Best of three of (forward, forward + backward) in milliseconds.
fn time(conv: &Conv2d, x: &Tensor<4>, f: impl Fn(&Conv2d, Tensor<4>) -> Tensor<4>) -> [f64; 2] {
    let mut best = [f64::MAX; 2];
    for _ in 0..3 {
        let t = Instant::now();
        let _ = f(conv, x.clone().detach()).sum().into_scalar::<f32>();
        best[0] = best[0].min(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let g = f(conv, x.clone()).sum().backward();
        let _ = x.grad(&g).map(|g| g.sum().into_scalar::<f32>());
        best[1] = best[1].min(t.elapsed().as_secs_f64() * 1e3);
    }
    best
}

fn main() -> Result<(), burnlab_kernels::IsaError> {
    // As the binary does: freed blocks stay in the heap (no page faults per call).
    burnlab_kernels::malloc::tune();
    let cpu = Cpu::init()?;
    let dev = Device::flex().autodiff();
    // (model, n, ci, co, size, kernel, stride, padding)
    let layers = [
        ("lenet5", 128, 3, 6, 32, 5, 1, 0),
        ("lenet5", 128, 6, 16, 14, 5, 1, 0),
        ("resnet20", 128, 3, 16, 32, 3, 1, 1),
        ("resnet20", 128, 16, 16, 32, 3, 1, 1),
        ("resnet20", 128, 16, 32, 32, 3, 2, 1),
        ("resnet20", 128, 32, 32, 16, 3, 1, 1),
        ("resnet20", 128, 32, 64, 16, 3, 2, 1),
        ("resnet20", 128, 64, 64, 8, 3, 1, 1),
        ("resnet18", 32, 3, 64, 224, 7, 2, 3),
        ("resnet18", 32, 64, 64, 56, 3, 1, 1),
        ("resnet18", 32, 64, 128, 56, 3, 2, 1),
        ("resnet18", 32, 64, 128, 56, 1, 2, 0),
        ("resnet18", 32, 128, 128, 28, 3, 1, 1),
        ("resnet18", 32, 128, 256, 28, 3, 2, 1),
        ("resnet18", 32, 128, 256, 28, 1, 2, 0),
        ("resnet18", 32, 256, 256, 14, 3, 1, 1),
        ("resnet18", 32, 256, 512, 14, 3, 2, 1),
        ("resnet18", 32, 256, 512, 14, 1, 2, 0),
        ("resnet18", 32, 512, 512, 7, 3, 1, 1),
    ];
    // `-- resnet18` (or `c512-512`): only the layers whose model or name holds it.
    let only = std::env::args().nth(1).unwrap_or_default();
    for (model, n, ci, co, size, k, s, p) in layers {
        let name = format!("c{ci}-{co}_{size}x{size}_k{k}s{s}");
        if !model.contains(&only) && !name.contains(&only) {
            continue;
        }
        let conv = Conv2dConfig::new([ci, co], [k, k])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .init(&dev);
        let x =
            Tensor::<4>::random([n, ci, size, size], Distribution::Default, &dev).require_grad();
        let ours = time(&conv, &x, burnlab_ops::conv::conv2d);
        let burn = time(&conv, &x, |c, x| c.forward(x));
        println!(
            "isa={} model={model} layer={name} batch={n} \
             fwd_ms={:.1} burn_fwd_ms={:.1} ratio_fwd={:.2} train_ms={:.1} burn_train_ms={:.1} ratio_train={:.2}",
            cpu.isa().name(),
            ours[0],
            burn[0],
            burn[0] / ours[0],
            ours[1],
            burn[1],
            burn[1] / ours[1],
        );
    }
    Ok(())
}
