//! Weights in and out of burnlab: `--init-from` a PyTorch checkpoint, a `.safetensors` file or
//! another run ([`init`]), and `burnlab export` to safetensors with PyTorch's names and layouts
//! ([`export`]). Files are read and written through Burn's own stores (`burn::store`).
//!
//! Names: a network's tensors are named by their paths inside it (`layer1.0.conv1.weight`),
//! which for the torchvision-layout ResNets are torchvision's names, except that torchvision's
//! `downsample` is an `nn.Sequential` (`downsample.0` the convolution, `downsample.1` the
//! BatchNorm) where burnlab names its two fields (`downsample.conv`, `downsample.bn`). Layouts:
//! Burn keeps a linear weight as [in, out] and names BatchNorm's scale and shift `gamma` and
//! `beta`; Burn's `PyTorchToBurnAdapter` / `BurnToPyTorchAdapter` convert both ways.

pub mod checkpoint;
pub mod export;
pub mod init;
#[cfg(test)]
pub(crate) mod testing;

/// A PyTorch state-dict name → the path of the same tensor in a burnlab network.
pub fn from_torch_name(name: &str) -> String {
    name.replace(".downsample.0.", ".downsample.conv.").replace(".downsample.1.", ".downsample.bn.")
}

/// The inverse of [`from_torch_name`].
pub fn to_torch_name(path: &str) -> String {
    path.replace(".downsample.conv.", ".downsample.0.").replace(".downsample.bn.", ".downsample.1.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_downsample_names_map_both_ways() {
        let pairs = [
            ("layer2.0.downsample.0.weight", "layer2.0.downsample.conv.weight"),
            ("layer2.0.downsample.1.running_var", "layer2.0.downsample.bn.running_var"),
            ("layer1.1.conv2.weight", "layer1.1.conv2.weight"),
            ("fc.bias", "fc.bias"),
        ];
        for (torch, burn) in pairs {
            assert_eq!(from_torch_name(torch), burn);
            assert_eq!(to_torch_name(burn), torch);
        }
    }
}
