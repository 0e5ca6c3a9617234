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

/// The same for a Learner run (an MLP): the disk fills up in its third epoch (the test fills it
/// once the second epoch's checkpoint is on disk, leaving less room than a checkpoint takes).
#[test]
fn learner_run_on_a_full_disk_stops_clearly_keeps_checkpoints_and_resumes_exactly() {
    // Eight epochs: the disk is full well before the run could end, however fast it goes.
    let f = Fixture::new(150, 5, 8, 0.0);
    let disk = match Tmpfs::mount(&f.path("disk"), "8m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED: the full-disk test needs a tmpfs of its own ({why}; run as root)");
            return;
        }
    };
    let full = f.path("full");
    run_ok(&mut f.train(&full));
    let checkpoint_bytes: u64 = ["model", "optim", "scheduler"]
        .iter()
        .map(|k| std::fs::metadata(full.join(format!("checkpoint/{k}-8.bpk"))).expect("size").len())
        .sum();

    let run = disk.0.join("run");
    let child = f
        .train(&run)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let ckpt = run.join("checkpoint");
    wait_until(|| learner_checkpoint(&ckpt, 2));
    // Fill the disk, then free half a checkpoint.
    let filler = disk.0.join("filler");
    let mut file = std::fs::File::create(&filler).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut file, &block).is_ok() {}
    let len = file.metadata().expect("len").len();
    file.set_len(len.saturating_sub(checkpoint_bytes / 2)).expect("truncate");
    drop(file);
    let out = child.wait_with_output().expect("wait");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "the run cannot finish on a full disk:\n{stdout}");
    // The file that could not be written is named (a checkpoint, or a metric log: whichever
    // the disk ran out under), and the cause.
    assert!(
        stderr.contains(&format!("error: training stopped: writing {}", run.display()))
            || stderr.contains(&format!("cannot write to '{}", ckpt.display())),
        "{stderr}"
    );
    assert!(stderr.contains("No space left on device"), "the cause is named: {stderr}");
    // Epoch 2's checkpoint, or a later one if training got there before the disk was full.
    let kept = stderr.split("the checkpoints of epochs up to ").nth(1);
    let kept: usize =
        kept.and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).expect("kept");
    assert!(kept >= 2, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(learner_checkpoint(&ckpt, kept), "the last complete checkpoint is kept");
    // The record says failed, unless the disk had no room for it either; the process is gone.
    let status = read_json(&run.join("run.json"))["status"].clone();
    assert!(status == "failed" || status == "running", "{status}");
    assert_eq!(std::fs::read_to_string(run.join("pid")).expect("pid"), "");

    std::fs::remove_file(&filler).expect("free the disk");
    let out = run_ok(f.train(&run).arg("--resume"));
    assert!(out.contains("resuming from the checkpoint of epoch"), "{out}");
    let (a, b) = (read_json(&full.join("metrics.json")), read_json(&run.join("metrics.json")));
    for split in ["valid", "test"] {
        assert_eq!(a[split]["loss"], b[split]["loss"], "{split} loss");
        assert_eq!(a[split]["confusion"], b[split]["confusion"], "{split}");
    }
}
