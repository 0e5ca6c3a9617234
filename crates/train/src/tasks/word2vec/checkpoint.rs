//! word2vec checkpoints: the two tables after each epoch (`checkpoint/epoch-<n>.bin`), and
//! inside an epoch, every `train.checkpoint_minutes` and when a run is stopped
//! (`checkpoint/epoch-<e>-step-<k>.bin`: the tables after k chunks of ~10k words of epoch e,
//! with the counters a resume restores). Each is written to a temporary name, synced and renamed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::native::{self, Within};
use crate::run;

/// Tables after `epoch` epochs: a header (vocab, dim, epoch as u64) and both tables as
/// little-endian f32, written to a temporary file and renamed; older checkpoints but the
/// previous one are removed.
pub fn save_checkpoint(
    run_dir: &Path,
    epoch: usize,
    emb: &native::Embeddings,
    keep: usize,
) -> Result<()> {
    let dir = run_dir.join(run::CHECKPOINT_DIR);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("epoch-{epoch}.bin"));
    run::write_atomic(&path, &encode(&[epoch as u64], emb))?;
    // Keep the last `keep`: a table pair is vocab × dim × 8 bytes (57 MB for text8 at dim 100).
    if let Some(old) = epoch.checked_sub(keep.max(1)) {
        let _ = std::fs::remove_file(dir.join(format!("epoch-{old}.bin")));
    }
    Ok(())
}

/// The newest `epoch-N.bin` in a run's checkpoint folder (written whole: see `save_checkpoint`).
pub fn last_epoch(run_dir: &Path) -> Option<usize> {
    std::fs::read_dir(run_dir.join(run::CHECKPOINT_DIR))
        .ok()?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("epoch-")?
                .strip_suffix(".bin")?
                .parse::<usize>()
                .ok()
        })
        .max()
}

/// The last complete checkpoint of a run: (epochs done, tables).
pub fn load_checkpoint(
    run_dir: &Path,
    vocab: usize,
    dim: usize,
) -> Result<Option<(usize, native::Embeddings)>> {
    let dir = run_dir.join(run::CHECKPOINT_DIR);
    let Some(epoch) = last_epoch(run_dir) else { return Ok(None) };
    let path = dir.join(format!("epoch-{epoch}.bin"));
    let what = format!("tables of epoch {epoch}");
    let (_, emb) = decode(&path, (vocab, dim), &[epoch as u64], 1, &what)?;
    Ok(Some((epoch, emb)))
}

/// A table file: a little-endian u64 header (vocab, dim, then `fields`) and both tables as
/// little-endian f32.
fn encode(fields: &[u64], emb: &native::Embeddings) -> Vec<u8> {
    let header = [(emb.input.len() / emb.dim) as u64, emb.dim as u64];
    let mut bytes = Vec::with_capacity(8 * (2 + fields.len()) + 4 * 2 * emb.input.len());
    for v in header.iter().chain(fields) {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for v in emb.input.iter().chain(&emb.output) {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

/// Reads a table file of `vocab` × `dim` tables whose header holds `fields` fields after vocab
/// and dim, the first of them `expected`: those fields, and the tables. Anything else (another
/// size, a torn or foreign file) is an error naming the file and `what` was expected.
fn decode(
    path: &Path,
    (vocab, dim): (usize, usize),
    expected: &[u64],
    fields: usize,
    what: &str,
) -> Result<(Vec<u64>, native::Embeddings)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (n, head) = (vocab * dim, 8 * (2 + fields));
    let header: Vec<u64> = bytes
        .chunks_exact(8)
        .take(2 + fields)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .collect();
    let want: Vec<u64> = [vocab as u64, dim as u64].iter().chain(expected).copied().collect();
    if bytes.len() != head + 8 * n || header.get(..want.len()) != Some(&want[..]) {
        bail!("{}: corrupt checkpoint (expected {vocab} x {dim} {what})", path.display());
    }
    let floats: Vec<f32> = bytes[head..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let (input, output) = floats.split_at(n);
    let emb = native::Embeddings { dim, input: input.to_vec(), output: output.to_vec() };
    Ok((header[2..].to_vec(), emb))
}

/// The file of the checkpoint after `at.chunks` chunks of epoch `at.epoch` (0-based; named
/// 1-based, as the epochs are shown).
fn within_path(run_dir: &Path, at: &Within) -> PathBuf {
    run_dir.join(run::CHECKPOINT_DIR).join(format!("epoch-{}-step-{}.bin", at.epoch + 1, at.chunks))
}

/// Writes the tables after `at`: a header (vocab, dim, epoch, chunks, words, loss_milli,
/// loss_pairs as u64) and both tables as little-endian f32; then removes the older ones.
pub fn save_within(run_dir: &Path, at: &Within, emb: &native::Embeddings) -> Result<()> {
    let dir = run_dir.join(run::CHECKPOINT_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let fields = [at.epoch as u64, at.chunks as u64, at.words, at.loss_milli, at.loss_pairs];
    run::write_atomic(&within_path(run_dir, at), &encode(&fields, emb))?;
    prune_within(run_dir, Some(at));
    Ok(())
}

/// The checkpoints inside epochs in a run's folder: (epoch 1-based, chunks, path), newest first.
fn within_files(run_dir: &Path) -> Vec<(usize, usize, PathBuf)> {
    let Ok(dir) = std::fs::read_dir(run_dir.join(run::CHECKPOINT_DIR)) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, usize, PathBuf)> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (epoch, step) =
                name.strip_prefix("epoch-")?.strip_suffix(".bin")?.split_once("-step-")?;
            Some((epoch.parse().ok()?, step.parse().ok()?, e.path()))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse((f.0, f.1)));
    found
}

/// Removes the checkpoints inside epochs but `keep` (with no `keep`, all of them), and what a
/// kill in the middle of writing one left (`*.partial`).
pub fn prune_within(run_dir: &Path, keep: Option<&Within>) {
    let keep = keep.map(|w| within_path(run_dir, w));
    let Ok(dir) = std::fs::read_dir(run_dir.join(run::CHECKPOINT_DIR)) else { return };
    for entry in dir.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with("epoch-") && name.contains("-step-") && Some(&path) != keep.as_ref() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The newest checkpoint a resume would start from, in words ("the checkpoint of epoch 2, step
/// 14"), after `epochs_done` complete epochs.
pub fn newest(run_dir: &Path, epochs_done: usize) -> Option<String> {
    match within_files(run_dir).into_iter().next() {
        Some((e, k, _)) if e > epochs_done => {
            Some(format!("the checkpoint of epoch {e}, step {k}"))
        }
        _ => (epochs_done > 0).then(|| format!("the checkpoint of epoch {epochs_done}")),
    }
}

/// The newest checkpoint inside an epoch after `epochs_done` complete epochs, if any: where to
/// resume, and the tables.
pub fn load_within(
    run_dir: &Path,
    epochs_done: usize,
    vocab: usize,
    dim: usize,
) -> Result<Option<(Within, native::Embeddings)>> {
    let Some((epoch, chunks, path)) = within_files(run_dir).into_iter().next() else {
        return Ok(None);
    };
    if epoch <= epochs_done {
        return Ok(None);
    }
    let what = format!("tables of epoch {epoch}, step {chunks}");
    let (h, emb) = decode(&path, (vocab, dim), &[epoch as u64 - 1, chunks as u64], 5, &what)?;
    let at = Within { epoch: epoch - 1, chunks, words: h[2], loss_milli: h[3], loss_pairs: h[4] };
    Ok(Some((at, emb)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_inside_an_epoch_round_trips_and_supersedes_the_older_ones() {
        let tmp = tempfile::tempdir().expect("tmp");
        let run = tmp.path();
        let emb =
            native::Embeddings { dim: 2, input: vec![1.0, 2.0, 3.0, 4.0], output: vec![0.5; 4] };
        let at = |chunks| Within { epoch: 1, chunks, words: 7, loss_milli: 9, loss_pairs: 3 };
        save_within(run, &at(3), &emb).expect("save");
        std::fs::write(run.join("checkpoint/epoch-2-step-4.partial"), b"torn").expect("write");
        save_within(run, &at(5), &emb).expect("save");
        assert!(!run.join("checkpoint/epoch-2-step-4.partial").exists());
        assert_eq!(within_files(run).len(), 1, "the older one is removed");
        let (w, e) = load_within(run, 1, 2, 2).expect("load").expect("found");
        assert_eq!((w, e.input, e.output), (at(5), emb.input.clone(), emb.output.clone()));
        // Once epoch 2 is complete it is no checkpoint to resume from.
        assert!(load_within(run, 2, 2, 2).expect("load").is_none());
        // Another vocabulary's tables are refused, naming the file.
        let e = load_within(run, 1, 3, 2).expect_err("wrong size").to_string();
        assert!(e.contains("epoch-2-step-5.bin: corrupt checkpoint"), "{e}");
        prune_within(run, None);
        assert!(within_files(run).is_empty());
    }
}
