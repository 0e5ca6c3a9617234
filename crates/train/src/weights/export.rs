//! `burnlab export RUN --format safetensors [--out FILE]`: a trained run's weights with
//! PyTorch's names and layouts, so that PyTorch loads them strictly: for the torchvision-layout
//! ResNets `torchvision.models.resnet18(num_classes=N).load_state_dict(load_file(f))`, for the
//! other models the few-line `nn.Module`s the README shows.
//!
//! Layouts: linear weights transposed to [out, in], BatchNorm's `gamma`/`beta` written as
//! `weight`/`bias` beside `running_mean`/`running_var` (Burn's `BurnToPyTorchAdapter`), and a
//! `num_batches_tracked` per BatchNorm, which `load_state_dict(strict=True)` expects: 0, as Burn
//! does not count batches (PyTorch reads it only for BatchNorm with `momentum=None`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use burn::store::{BurnToPyTorchAdapter, bridge};
use burn::tensor::DType;
use safetensors::tensor::{Dtype, TensorView};

use crate::run;
use crate::tasks::image::classifier::ImageNet;
use crate::weights::to_torch_name;

/// One tensor as written: a PyTorch name, a shape and little-endian f32 or i64 bytes.
pub struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Data,
}

pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// The network's tensors under PyTorch's names and layouts (see the module note).
pub fn torch_tensors(net: &ImageNet) -> Result<Vec<Named>> {
    let mut out = Vec::new();
    for t in net.tensors(Some(Box::new(BurnToPyTorchAdapter))) {
        let name = to_torch_name(&t.name);
        let shape = t.shape.to_vec();
        let data = bridge::into_data(t).map_err(|e| anyhow!("reading {name}: {e:?}"))?;
        if data.dtype() != DType::F32 {
            return Err(anyhow!("{name}: {:?} tensors are not exported (f32 only)", data.dtype()));
        }
        let values = data.try_to_vec::<f32>().map_err(|e| anyhow!("reading {name}: {e:?}"))?;
        if let Some(prefix) = name.strip_suffix(".running_var") {
            out.push(Named {
                name: format!("{prefix}.num_batches_tracked"),
                shape: vec![],
                data: Data::I64(vec![0]),
            });
        }
        out.push(Named { name, shape, data: Data::F32(values) });
    }
    Ok(out)
}

/// Writes `tensors` as a safetensors file (atomically: a failed write leaves no partial file),
/// with `metadata` in its header.
pub fn write_safetensors(
    path: &Path,
    tensors: &[Named],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = tensors
        .iter()
        .map(|t| {
            let (bytes, dtype) = match &t.data {
                Data::F32(v) => (v.iter().flat_map(|x| x.to_le_bytes()).collect(), Dtype::F32),
                Data::I64(v) => (v.iter().flat_map(|x| x.to_le_bytes()).collect(), Dtype::I64),
            };
            (t.name.clone(), bytes, dtype, t.shape.clone())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, b, dtype, shape)| {
            TensorView::new(*dtype, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| anyhow!("{name}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let file = safetensors::serialize(views, Some(metadata))
        .map_err(|e| anyhow!("encoding {}: {e}", path.display()))?;
    run::write_atomic(path, &file).with_context(|| format!("writing {}", path.display()))
}
