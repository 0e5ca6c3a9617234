//! The one place a backend is chosen: everything below works on a run-time `Device`.

use anyhow::{Result, bail};
use burn::tensor::{Device, DeviceKind};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Burn's portable CPU backend (default).
    Flex,
    /// The older ndarray CPU backend.
    Ndarray,
    /// GPU through wgpu (Vulkan, Metal or DX12).
    Wgpu,
    /// NVIDIA GPU through CUDA (build with `--features cuda`).
    #[cfg(feature = "cuda")]
    Cuda,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        f.write_str(&s)
    }
}

/// Graphics APIs wgpu may use for compute here. OpenGL is left out on purpose: with no Vulkan
/// driver wgpu falls back to GL/EGL, where Burn 0.22.1 panics in a background thread on the
/// first step and the main thread hangs.
fn compute_apis() -> wgpu::Backends {
    wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12
}

/// Adapters wgpu can use for compute: (name, device type, API).
pub fn wgpu_adapters() -> Vec<(String, String, String)> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = compute_apis();
    let instance = wgpu::Instance::new(desc);
    pollster::block_on(instance.enumerate_adapters(compute_apis()))
        .into_iter()
        .map(|a| {
            let info = a.get_info();
            (info.name, format!("{:?}", info.device_type), format!("{:?}", info.backend))
        })
        .collect()
}

impl Backend {
    /// Whether tensors live in host memory (CPU backends).
    pub fn is_host(self) -> bool {
        matches!(self, Backend::Flex | Backend::Ndarray)
    }

    /// The device to compute on, or a clear error when the backend cannot run here.
    pub fn device(self) -> Result<Device> {
        Ok(match self {
            Backend::Flex => Device::flex(),
            // Deprecated upstream in favour of flex; kept selectable for comparison.
            #[allow(deprecated)]
            Backend::Ndarray => Device::ndarray(),
            Backend::Wgpu => {
                let adapters = wgpu_adapters();
                if adapters.is_empty() {
                    bail!(
                        "--backend wgpu: no GPU adapter found (looked for Vulkan, Metal and DX12 adapters).\n\
                         Install a GPU driver with Vulkan support (on Debian/Ubuntu: `apt-get install mesa-vulkan-drivers libvulkan1` \
                         gives a software Vulkan; NVIDIA/AMD drivers give a real one), check with `burnlab devices`,\n\
                         or train on the CPU with `--backend flex`."
                    );
                }
                tracing::info!("wgpu adapters: {adapters:?}");
                Device::wgpu(DeviceKind::DefaultDevice)
            }
            #[cfg(feature = "cuda")]
            Backend::Cuda => cuda_device()?,
        })
    }
}

/// CUDA device 0, checked with one small computation: without a driver or GPU, cubecl panics on
/// first use, which we turn into an error.
#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(|| {
        let device = Device::cuda(0);
        let x = burn::tensor::Tensor::<1>::ones([4], &device).sum().into_scalar::<f32>();
        (x == 4.0).then_some(device)
    });
    std::panic::set_hook(hook);
    match probe {
        Ok(Some(device)) => Ok(device),
        _ => bail!(
            "--backend cuda: no usable CUDA device (looked for an NVIDIA GPU with its driver). \
             Install the NVIDIA driver, or train with `--backend wgpu` or `--backend flex`."
        ),
    }
}

/// `burnlab devices`: what each backend can see.
pub fn print_devices() {
    let cpu = burnlab_kernels::Cpu::current();
    let all: Vec<&str> = burnlab_kernels::Cpu::all().iter().map(|c| c.isa().name()).collect();
    println!(
        "flex     cpu  available (default); kernels isa={} (this CPU has: {}; BURNLAB_ISA lowers it); gemm isa={}",
        cpu.isa(),
        all.join(", "),
        burnlab_kernels::Isa::of_gemm()
    );
    println!("ndarray  cpu  available");
    let adapters = wgpu_adapters();
    if adapters.is_empty() {
        println!("wgpu     gpu  no adapter (install a Vulkan driver, e.g. mesa-vulkan-drivers)");
    }
    for (i, (name, kind, api)) in adapters.iter().enumerate() {
        println!("wgpu     gpu  adapter {i}: {name} ({kind}, {api})");
    }
    #[cfg(feature = "cuda")]
    println!("cuda     gpu  compiled in (device 0 is used)");
    #[cfg(not(feature = "cuda"))]
    println!("cuda     gpu  not compiled in (build with `--features cuda`)");
}
