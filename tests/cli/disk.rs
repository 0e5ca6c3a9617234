//! A disk that fills up in the middle of training: a clear error naming the file that could not
//! be written, every earlier checkpoint intact, no partial file left, and `--resume` (once there
//! is room) ending exactly where the uninterrupted run ends. Needs a small tmpfs of its own, so
//! it mounts one when it runs as root (CI does) and otherwise says SKIPPED and why.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A tmpfs of `size` mounted at `dir` until dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount failed: {}", text(&out.stderr).trim()));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn word2vec_on_a_full_disk_stops_clearly_keeps_checkpoints_and_resumes_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let disk = match Tmpfs::mount(&tmp.path().join("disk"), "1m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED: the full-disk test needs a tmpfs of its own ({why}; run as root)");
            return;
        }
    };
    // 300 words at dim 32: each checkpoint holds two 300 × 32 f32 tables, 76,824 bytes.
    let corpus = tmp.path().join("corpus.txt");
    let text: String = (0..20_000u64)
        .map(|i| {
            (0..12).map(|j| format!("w{} ", (i * 31 + j * j * 7) % 300)).collect::<String>() + "\n"
        })
        .collect();
    std::fs::write(&corpus, text).expect("write corpus");
    let args = ["--set", "model.dim=32", "--epochs", "5", "--threads", "1"];
    let full = tmp.path().join("full");
    run_ok(&mut crate::word2vec::train(&corpus, &full, &args));

    // Room for the run's small files and two checkpoints, not for the third one's temporary file.
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 1024 * 1024 - 200 * 1024]).expect("fill the disk");
    let run = disk.0.join("run");
    let e = run_err(&mut crate::word2vec::train(&corpus, &run, &args));
    assert!(
        e.contains("epoch-3.partial") && e.contains("No space left on device"),
        "the error names the file and the cause: {e}"
    );
    assert!(e.contains("the checkpoints up to epoch 2 are kept"), "{e}");
    let ckpt = run.join("checkpoint");
    let mut files: Vec<String> = std::fs::read_dir(&ckpt)
        .expect("checkpoint folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["epoch-1.bin", "epoch-2.bin"], "earlier checkpoints whole, no partial file");
    for f in &files {
        let len = std::fs::metadata(ckpt.join(f)).expect("checkpoint").len();
        assert_eq!(len, 24 + 2 * 300 * 32 * 4, "{f} is whole");
    }
    assert_eq!(read_json(&run.join("run.json"))["status"], "failed");

    std::fs::remove_file(&filler).expect("free the disk");
    let out = run_ok(crate::word2vec::train(&corpus, &run, &args).arg("--resume"));
    assert!(out.contains("resuming from the checkpoint of epoch 2"), "{out}");
    let a = std::fs::read(full.join("vectors.bin")).expect("uninterrupted vectors");
    let b = std::fs::read(run.join("vectors.bin")).expect("resumed vectors");
    assert!(a == b, "the resumed run ends exactly where the uninterrupted one does");
}
