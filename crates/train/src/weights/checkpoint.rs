//! Reading a weights file as people download or save it: a PyTorch checkpoint (`torch.save`'s
//! zip archive, or the older pickle stream) holding a `state_dict`, or wrapping one as
//! `{"state_dict": …}` / `{"model": …}` (training scripts save them so), or a `.safetensors`
//! file. Read through Burn's own stores (`burn::store`), so no Python is needed at run time.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleStore, PytorchStore, SafetensorsStore};
use sha2::{Digest, Sha256};

/// The file formats `--init-from` reads, told apart by their first bytes (not the extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `torch.save` since PyTorch 1.6: a zip archive with `data.pkl`.
    PytorchZip,
    /// `torch.save(..., _use_new_zipfile_serialization=False)`: a pickle stream.
    PytorchLegacy,
    Safetensors,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::PytorchZip | Format::PytorchLegacy => "pytorch",
            Format::Safetensors => "safetensors",
        }
    }
}

/// The format of `path` from its first bytes, or an error saying what the file is not.
pub fn detect(path: &Path) -> Result<Format> {
    let mut head = [0u8; 16];
    let n = File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") {
        return Ok(Format::PytorchZip);
    }
    // Pickle protocol 2+ starts with PROTO (0x80) and the protocol number.
    if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return Ok(Format::PytorchLegacy);
    }
    // safetensors: a little-endian u64 header length, then the JSON header.
    if head.len() >= 9 && head[8] == b'{' {
        let len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len <= size.saturating_sub(8) {
            return Ok(Format::Safetensors);
        }
    }
    bail!(
        "{}: not a weights file (expected a PyTorch checkpoint saved by torch.save, or a \
         .safetensors file)",
        path.display()
    )
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The tensors of a weights file, by their names in it (a wrapper's key and DataParallel's
/// `module.` prefix removed), and what identifies the file.
pub struct Checkpoint {
    pub tensors: Vec<PackTensor>,
    pub format: Format,
    pub sha256: String,
}

/// Reads every tensor of `path` (a wrapped state dict is unwrapped).
pub fn read(path: &Path) -> Result<Checkpoint> {
    let format = detect(path)?;
    let sha256 = sha256_file(path)?;
    let tensors = match format {
        Format::Safetensors => {
            let mut store = SafetensorsStore::from_file(path);
            store.get_all_tensors().map(|t| t.values().cloned().collect()).map_err(|e| {
                anyhow::anyhow!("{}: not a readable safetensors file: {e}", path.display())
            })?
        }
        Format::PytorchZip | Format::PytorchLegacy => read_pytorch(path)?,
    };
    if tensors.is_empty() {
        bail!("{}: holds no tensors", path.display());
    }
    let tensors = tensors
        .into_iter()
        .map(|mut t| {
            if let Some(rest) = t.name.strip_prefix("module.") {
                t.name = rest.to_string();
            }
            t
        })
        .collect();
    Ok(Checkpoint { tensors, format, sha256 })
}

/// Keys under which training scripts wrap a state dict.
const WRAPPERS: [&str; 3] = ["state_dict", "model", "model_state_dict"];

fn read_pytorch(path: &Path) -> Result<Vec<PackTensor>> {
    let open = |key: Option<&str>| -> Result<BTreeMap<String, PackTensor>> {
        let store = PytorchStore::from_file(path).map_indices_contiguous(false);
        let mut store = match key {
            Some(k) => store.with_top_level_key(k),
            None => store,
        };
        store.get_all_tensors().cloned().map_err(|e| {
            anyhow::anyhow!("{}: not a readable PyTorch checkpoint: {e}", path.display())
        })
    };
    let all = open(None)?;
    // A wrapper shows as every tensor under one of these keys ("state_dict.conv1.weight").
    for key in WRAPPERS {
        let prefix = format!("{key}.");
        if !all.is_empty() && all.keys().any(|k| k.starts_with(&prefix)) {
            let inner = open(Some(key))?;
            if !inner.is_empty() {
                return Ok(inner.into_values().collect());
            }
        }
    }
    Ok(all.into_values().collect())
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/weights").join(name)
    }

    #[test]
    fn reads_a_torch_save_state_dict_and_a_wrapped_one() {
        for name in ["lenet5.pth", "lenet5_wrapped.pth"] {
            let c = read(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(c.format, Format::PytorchZip, "{name}");
            let mut names: Vec<(String, Vec<usize>)> =
                c.tensors.iter().map(|t| (t.name.clone(), t.shape.to_vec())).collect();
            names.sort();
            let want: Vec<(String, Vec<usize>)> = [
                ("conv1.bias", vec![6]),
                ("conv1.weight", vec![6, 3, 5, 5]),
                ("conv2.bias", vec![16]),
                ("conv2.weight", vec![16, 6, 5, 5]),
                ("fc1.bias", vec![120]),
                ("fc1.weight", vec![120, 400]),
                ("fc2.bias", vec![84]),
                ("fc2.weight", vec![84, 120]),
                ("fc3.bias", vec![10]),
                ("fc3.weight", vec![10, 84]),
            ]
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect();
            assert_eq!(names, want, "{name}");
            assert_eq!(c.sha256.len(), 64);
        }
    }

    #[test]
    fn a_file_that_is_not_a_checkpoint_and_a_truncated_one_are_named_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("notes.pth");
        std::fs::write(&text, "these are not weights\n").expect("write");
        let e = format!("{:#}", read(&text).err().expect("text is refused"));
        assert!(e.contains("notes.pth") && e.contains("not a weights file"), "{e}");

        let bytes = std::fs::read(fixture("lenet5.pth")).expect("fixture");
        let cut = dir.path().join("cut.pth");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let e = format!("{:#}", read(&cut).err().expect("a truncated file is refused"));
        assert!(e.contains("cut.pth") && e.contains("not a readable PyTorch checkpoint"), "{e}");

        let empty = dir.path().join("empty.safetensors");
        std::fs::write(&empty, b"").expect("write");
        let e = format!("{:#}", read(&empty).err().expect("an empty file is refused"));
        assert!(e.contains("empty.safetensors") && e.contains("not a weights file"), "{e}");
    }
}
