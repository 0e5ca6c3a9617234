//! Chaos: `kill -9` training at random moments, resume each time, and end exactly where the
//! uninterrupted run ends — for an image model, a char-LM and word2vec (one thread). The CI run
//! kills each task 3 times; `just chaos` 10 times (`CHAOS_KILLS`), with a new seed each run
//! (`CHAOS_SEED`, printed).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The killed runs checkpoint after every step (`train.checkpoint_minutes` near 0), so kills
/// land inside epochs after a checkpoint and inside checkpoint writes. Their span is timed on an
/// uninterrupted run that does the same, which must also end where one with epoch-end checkpoints
/// only does: checkpoints change nothing.
const EVERY_STEP: [&str; 2] = ["--set", "train.checkpoint_minutes=1e-9"];

/// Epochs of each chaos run: enough that `kills` kills land in training, not in start-ups.
fn epochs(least: usize) -> String {
    least.max(kills() + 2).to_string()
}

fn kills() -> usize {
    std::env::var("CHAOS_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

fn seed() -> u64 {
    std::env::var("CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    })
}

fn finished(run: &Path) -> bool {
    run.join("run.json").is_file() && read_json(&run.join("run.json"))["status"] == "finished"
}

/// Trains `run` to the end through `kills` random `kill -9`s, each once the attempt has written a
/// checkpoint and then after a delay uniform in [0, `span` / `kills`): an attempt starts the run, or resumes it once it has a record, as a user would.
/// Returns how many attempts were killed.
fn train_through_kills(
    train: &dyn Fn(&Path) -> Command,
    run: &Path,
    span: Duration,
    seed: u64,
) -> usize {
    let mut state = seed | 1;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let attempt = || {
        let mut c = train(run);
        if run.join("run.json").is_file() {
            c.arg("--resume");
        }
        c
    };
    let mut killed = 0;
    for _ in 0..kills() {
        if finished(run) {
            break;
        }
        let before = checkpoints(run);
        let mut child =
            attempt().stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        // Past its start-up (a checkpoint it wrote), then a random moment within a
        // kills-th of a whole run: the kills land in training and in checkpoint writes, and
        // nearly every attempt is killed.
        let started = Instant::now();
        while checkpoints(run) == before
            && child.try_wait().expect("wait").is_none()
            && started.elapsed() < Duration::from_secs(120)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let deadline = Instant::now() + span.mul_f64(next() / kills() as f64);
        while Instant::now() < deadline && child.try_wait().expect("wait").is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill -9");
            killed += 1;
        }
        child.wait().expect("wait");
        eprintln!("  killed; checkpoints: {}", checkpoints(run));
    }
    if !finished(run) {
        run_ok(&mut attempt());
    }
    killed
}

/// What a kill left in the run's checkpoint folder, for the chaos log ("-" for nothing).
fn checkpoints(run: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoint"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("optim-") && !n.starts_with("scheduler-"))
        .collect();
    names.sort();
    if names.is_empty() { "-".into() } else { names.join(" ") }
}

/// A burnpack model file's tensor data: the bytes after its metadata block (the metadata holds
/// a random id per parameter instance, so two files of the same weights differ there).
fn weights(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let len = u32::from_le_bytes(bytes[6..10].try_into().expect("header")) as usize;
    bytes[10 + len..].to_vec()
}

/// The reference run's wall time: the span the kills are drawn from.
fn timed(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    run_ok(cmd);
    t.elapsed()
}

#[test]
fn chaos_word2vec_ends_on_the_uninterrupted_vectors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    crate::word2vec::write_cycling_corpus(&corpus, 30_000);
    let epochs = epochs(8);
    let args = ["--epochs", epochs.as_str(), "--threads", "1"];
    let train = |run: &Path| crate::word2vec::train(&corpus, run, &args);
    run_ok(&mut train(&tmp.path().join("full")));
    let every_chunk = |run: &Path| {
        let mut c = train(run);
        c.args(EVERY_STEP);
        c
    };
    let span = timed(&mut every_chunk(&tmp.path().join("timed")));
    let a = std::fs::read(tmp.path().join("full/vectors.bin")).expect("full");
    let t = std::fs::read(tmp.path().join("timed/vectors.bin")).expect("timed");
    assert!(a == t, "checkpoints inside epochs changed the vectors");
    let seed = seed();
    let run = tmp.path().join("chaos");
    let killed = train_through_kills(&every_chunk, &run, span, seed);
    eprintln!("chaos word2vec: seed {seed}, {killed} of {} attempts killed", kills());
    let b = std::fs::read(run.join("vectors.bin")).expect("chaos");
    assert!(a == b, "seed {seed}: vectors differ from the uninterrupted run's");
}

#[test]
fn chaos_image_model_ends_on_the_uninterrupted_metrics() {
    let f = Fixture::new(40, 5, 4, 0.3);
    let epochs = epochs(4);
    let f_train = |r: &Path| {
        let mut c = f.train(r);
        c.args(["--epochs", epochs.as_str()]);
        c
    };
    run_ok(&mut f_train(&f.path("full")));
    let seed = seed();
    let run = f.path("chaos");
    let train = |r: &Path| {
        let mut c = f_train(r);
        c.args(EVERY_STEP);
        c
    };
    let span = timed(&mut train(&f.path("timed")));
    let a = read_json(&f.path("full/metrics.json"));
    let same = weights(&f.path("full/model.bpk")) == weights(&f.path("timed/model.bpk"));
    assert!(same, "checkpoints inside epochs changed the weights");
    let killed = train_through_kills(&train, &run, span, seed);
    eprintln!("chaos image: seed {seed}, {killed} of {} attempts killed", kills());
    let b = read_json(&run.join("metrics.json"));
    for split in ["valid", "test"] {
        assert_eq!(a[split]["loss"], b[split]["loss"], "seed {seed}: {split} loss");
        assert_eq!(a[split]["confusion"], b[split]["confusion"], "seed {seed}: {split}");
    }
    let same = weights(&f.path("full/model.bpk")) == weights(&run.join("model.bpk"));
    assert!(same, "seed {seed}: weights differ");
}

#[test]
fn chaos_char_model_ends_on_the_uninterrupted_loss() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("text.txt");
    crate::rnn::write_text(&corpus);
    let epochs = epochs(2);
    let train = |run: &Path| {
        let mut c = crate::rnn::train(&corpus, run, "lstm");
        c.args(["--set", &format!("train.epochs={epochs}")]);
        c
    };
    run_ok(&mut train(&tmp.path().join("full")));
    let seed = seed();
    let run = tmp.path().join("chaos");
    let every_step = |r: &Path| {
        let mut c = train(r);
        c.args(EVERY_STEP);
        c
    };
    let span = timed(&mut every_step(&tmp.path().join("timed")));
    let a = read_json(&tmp.path().join("full/metrics.json"))["valid_loss"].clone();
    assert_eq!(a, read_json(&tmp.path().join("timed/metrics.json"))["valid_loss"]);
    let killed = train_through_kills(&every_step, &run, span, seed);
    eprintln!("chaos char-LM: seed {seed}, {killed} of {} attempts killed", kills());
    let b = read_json(&run.join("metrics.json"))["valid_loss"].clone();
    assert_eq!(a, b, "seed {seed}: validation loss");
    let same = weights(&tmp.path().join("full/model.bpk")) == weights(&run.join("model.bpk"));
    assert!(same, "seed {seed}: weights differ");
}
