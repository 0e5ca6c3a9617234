use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A corpus with two topics that never mix; royal words swap "he"/"she" with "king"/"queen".
pub fn write_corpus(path: &std::path::Path) {
    let mut text = String::new();
    let mut s = 7u64;
    let mut next = |n: u64| {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 33) % n
    };
    for _ in 0..2000 {
        let topic = next(2);
        let words: Vec<String> =
            (0..10).map(|_| format!("{}{}", ["fruit", "metal"][topic as usize], next(8))).collect();
        text.push_str(&words.join(" "));
        text.push('\n');
    }
    std::fs::write(path, text).expect("write corpus");
}

/// `burnlab train word2vec` on `corpus` into `run`: dim 16, vocabulary of every word, and `extra`.
/// `lines` lines of 10 words drawn from 97 in a fixed pattern (one-thread runs are repeatable).
pub fn write_cycling_corpus(path: &Path, lines: u64) {
    let text: String = (0..lines)
        .map(|i| {
            (0..10).map(|j| format!("w{} ", (i * 7 + j * j * 13) % 97)).collect::<String>() + "\n"
        })
        .collect();
    std::fs::write(path, text).expect("write corpus");
}

pub fn train(corpus: &Path, run: &Path, extra: &[&str]) -> Command {
    let mut c = burnlab();
    c.args(["train", "word2vec", "--dim", "16", "--min-count", "1"]).args(extra);
    c.arg("--corpus").arg(corpus).arg("--run-dir").arg(run);
    c
}

#[test]
fn word2vec_trains_writes_vectors_and_answers_queries() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    write_corpus(&corpus);
    let run = tmp.path().join("run");
    let out = run_ok(&mut train(&corpus, &run, &["--epochs", "2", "--threads", "2"]));
    assert!(out.contains("16 words in the vocabulary"), "{out}");
    assert!(out.contains("epoch 2/2"), "{out}");
    // Both vector files hold the same 16 x 16 numbers, the vocabulary its counts.
    let text = std::fs::read_to_string(run.join("vectors.txt")).expect("vectors.txt");
    assert!(text.starts_with("16 16\n"), "{}", &text[..40]);
    assert_eq!(text.lines().count(), 17);
    let vocab = std::fs::read_to_string(run.join("vocab.txt")).expect("vocab");
    let total: u64 =
        vocab.lines().map(|l| l.split(' ').nth(1).expect("count").parse::<u64>().expect("n")).sum();
    assert_eq!(total, 20_000);
    let metrics = read_json(&run.join("metrics.json"));
    assert!(metrics["words_per_s"].as_f64().expect("wps") > 0.0);

    // Nearest words share the topic, from the run folder and from the text file alike.
    for target in [run.clone(), run.join("vectors.txt")] {
        let out = run_ok(burnlab().arg("similar").arg(&target).args(["fruit3", "-k", "3"]));
        let words: Vec<&str> =
            out.lines().map(|l| l.split_whitespace().next().expect("word")).collect();
        assert_eq!(words.len(), 3, "{out}");
        assert!(words.iter().all(|w| w.starts_with("fruit") && *w != "fruit3"), "{out}");
    }
    let out =
        run_ok(burnlab().arg("analogy").arg(&run).args(["fruit1", "fruit2", "metal1", "-k", "2"]));
    assert!(out.starts_with("fruit2 : fruit1 :: metal1 : ?"), "{out}");
    let q = tmp.path().join("q.txt");
    std::fs::write(&q, ": topics\nfruit1 fruit2 metal1 metal2\nfruit1 fruit2 metal1 gold\n")
        .expect("write");
    let out = run_ok(burnlab().arg("eval-words").arg(&run).arg("--analogies").arg(&q));
    assert!(out.contains("analogy_all_covered=1") && out.contains("analogy_all_total=2"), "{out}");
    let e = run_err(burnlab().arg("similar").arg(&run).arg("banana"));
    assert!(e.contains("`banana` is not in the vocabulary"), "{e}");
}

/// The batched Burn-tensor path (what a GPU runs) chosen on the CPU backend: same files, and
/// vectors that put each word next to its topic.
#[test]
fn word2vec_batched_path_trains_on_flex() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    write_corpus(&corpus);
    let run = tmp.path().join("run");
    let out = run_ok(&mut train(
        &corpus,
        &run,
        &["--epochs", "2", "--set", "train.path=batched", "--set", "train.batch=256"],
    ));
    assert!(out.contains("batches of 256 rows on flex") && out.contains("epoch 2/2"), "{out}");
    let metrics = read_json(&run.join("metrics.json"));
    assert_eq!(metrics["path"], "batched");
    assert!(metrics["final_loss"].as_f64().expect("loss") < 3.0, "{metrics}");
    assert!(run.join("checkpoint/epoch-2.bin").exists());
    let out = run_ok(burnlab().arg("similar").arg(&run).args(["metal5", "-k", "3"]));
    let words: Vec<&str> =
        out.lines().map(|l| l.split_whitespace().next().expect("word")).collect();
    assert!(words.len() == 3 && words.iter().all(|w| w.starts_with("metal")), "{out}");
}

/// The default config downloads text8; an unreachable host is a clear error that leaves no
/// file in the cache.
#[test]
fn word2vec_text8_download_failure_is_clear() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    let e = run_err(
        burnlab()
            .args(["train", "word2vec"])
            .arg("--cache")
            .arg(&cache)
            .env("BURNLAB_TEXT8_URL", "http://127.0.0.1:1/text8.zip")
            .current_dir(tmp.path()),
    );
    assert!(e.contains("download of http://127.0.0.1:1/text8.zip failed"), "{e}");
    let left: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert!(!tmp.path().join("runs").exists());
}

#[test]
fn word2vec_bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "").expect("write");
    let e = run_err(
        burnlab()
            .args(["train", "word2vec", "--corpus"])
            .arg(&empty)
            .arg("--run-dir")
            .arg(tmp.path().join("r1")),
    );
    assert!(e.contains("empty.txt") && e.contains("empty"), "{e}");
    assert!(!tmp.path().join("r1").exists(), "no run folder for a failed start");
    let rare = tmp.path().join("rare.txt");
    std::fs::write(&rare, "one two three").expect("write");
    let e = run_err(burnlab().args(["train", "word2vec", "--corpus"]).arg(&rare));
    assert!(e.contains("no word occurs min_count = 5 times"), "{e}");
    let e = run_err(
        burnlab().args(["train", "word2vec", "--corpus"]).arg(&rare).args(["--set", "model.dim=0"]),
    );
    assert!(e.contains("model.dim"), "{e}");
    let e = run_err(burnlab().args(["similar"]).arg(tmp.path()).arg("x"));
    assert!(e.contains("no word vectors here"), "{e}");
    let e = run_err(
        burnlab()
            .args([
                "train",
                "word2vec",
                "--backend",
                "wgpu",
                "--set",
                "train.path=native",
                "--corpus",
            ])
            .arg(&rare),
    );
    assert!(e.contains("train.path = \"native\" runs on the CPU"), "{e}");
    let e = run_err(
        burnlab().args(["train", "word2vec", "--set", "train.batch=0", "--corpus"]).arg(&rare),
    );
    assert!(e.contains("train.batch"), "{e}");
    let e = run_err(
        burnlab().args(["train", "word2vec", "--set", "model.init_range=0", "--corpus"]).arg(&rare),
    );
    assert!(e.contains("model.init_range must be a positive number, got 0"), "{e}");
}

/// Kill a one-thread run after its first epoch's checkpoint, resume it, and get the vectors of
/// the uninterrupted run (one thread is deterministic: each epoch's random draws come from
/// (seed, epoch), and the learning rate from the count of words done).
#[test]
fn word2vec_resume_after_kill_matches_uninterrupted_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    write_cycling_corpus(&corpus, 60_000);
    let train = |run: &std::path::Path| {
        let mut c = burnlab();
        c.args(["train", "word2vec", "--dim", "32", "--epochs", "3", "--threads", "1"])
            .arg("--corpus")
            .arg(&corpus)
            .arg("--run-dir")
            .arg(run);
        c
    };
    let full = tmp.path().join("full");
    run_ok(&mut train(&full));
    // Only the last two checkpoints stay.
    let kept: Vec<bool> =
        (1..=3).map(|e| full.join(format!("checkpoint/epoch-{e}.bin")).exists()).collect();
    assert_eq!(kept, vec![false, true, true]);

    let killed = tmp.path().join("killed");
    let ckpt = killed.join("checkpoint/epoch-1.bin");
    kill_when(&mut train(&killed), || ckpt.exists());
    assert!(!killed.join("vectors.bin").exists(), "the run was killed before it finished");

    let out = run_ok(train(&killed).arg("--resume"));
    assert!(out.contains("resuming from the checkpoint of epoch"), "{out}");
    assert!(
        !out.contains("epoch 1/3") && out.contains("epoch 3/3"),
        "only the remaining epochs run: {out}"
    );
    let a = std::fs::read(full.join("vectors.bin")).expect("full vectors");
    let b = std::fs::read(killed.join("vectors.bin")).expect("resumed vectors");
    assert!(a == b, "resumed vectors differ from the uninterrupted run's");
    let e = run_err(train(&killed).arg("--resume"));
    assert!(e.contains("already finished"), "{e}");

    // A resume asking for fewer epochs than are done is refused, and changes nothing: the
    // config keeps its epochs and the run stays resumable (found by hand: the refused resume had
    // rewritten the config, and every later resume then said "already finished").
    let config = std::fs::read_to_string(killed.join("config.toml")).expect("config");
    let record = std::fs::read_to_string(killed.join("run.json")).expect("record");
    std::fs::write(killed.join("run.json"), record.replace("\"finished\"", "\"interrupted\""))
        .expect("write");
    let e = run_err(train(&killed).args(["--resume", "--set", "train.epochs=2"]));
    assert!(e.contains("has 3 epochs done, more than --epochs 2"), "{e}");
    assert_eq!(std::fs::read_to_string(killed.join("config.toml")).expect("config"), config);
    assert!(read_json(&killed.join("run.json"))["status"] == "interrupted");

    // Killed after the last epoch's checkpoint, before the vectors were written (found by `just
    // chaos`): the resume writes them from that checkpoint, and they are the same.
    for f in ["vectors.bin", "vectors.txt", "metrics.json"] {
        std::fs::remove_file(killed.join(f)).expect("remove");
    }
    let record = std::fs::read_to_string(killed.join("run.json")).expect("record");
    std::fs::write(killed.join("run.json"), record.replace("\"finished\"", "\"running\""))
        .expect("write");
    let out = run_ok(train(&killed).arg("--resume"));
    assert!(out.contains("checkpoint of the last epoch (3) is complete"), "{out}");
    assert!(std::fs::read(killed.join("vectors.bin")).expect("vectors") == a);
}

/// Killed (`kill -9`) inside an epoch after a timed checkpoint (`train.checkpoint_minutes`, here
/// after every chunk of ~10k words): the resume starts at the next chunk, and a one-thread run
/// ends on the uninterrupted run's vectors; the finished run keeps no checkpoint inside an epoch.
#[test]
fn word2vec_killed_inside_an_epoch_resumes_from_its_last_chunk() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    write_cycling_corpus(&corpus, 40_000);
    let args = ["--epochs", "3", "--threads", "1"];
    let full = tmp.path().join("full");
    run_ok(&mut train(&corpus, &full, &args));
    let killed = tmp.path().join("killed");
    let every_chunk = ["--set", "train.checkpoint_minutes=1e-9"];
    let inside = |dir: &Path| {
        std::fs::read_dir(dir.join("checkpoint")).into_iter().flatten().flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("epoch-2-step-") && name.ends_with(".bin")
        })
    };
    kill_when(train(&corpus, &killed, &args).args(every_chunk), || inside(&killed));
    let out = run_ok(train(&corpus, &killed, &args).arg("--resume"));
    assert!(out.contains("resuming from the checkpoint of epoch 2, step "), "{out}");
    let a = std::fs::read(full.join("vectors.bin")).expect("full vectors");
    let b = std::fs::read(killed.join("vectors.bin")).expect("resumed vectors");
    assert!(a == b, "resumed vectors differ from the uninterrupted run's");
    assert!(!inside(&killed), "the finished run keeps only epoch-end checkpoints");
}

/// One writer per run folder: a second process is refused while the first trains, naming its
/// pid; once the first is killed, the next one takes the folder over with a note.
#[test]
fn a_second_writer_is_refused_and_a_killed_writers_folder_taken_over() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    let line = (0..10).map(|j| format!("w{j}")).collect::<Vec<_>>().join(" ") + "\n";
    std::fs::write(&corpus, line.repeat(50_000)).expect("write");
    let run = tmp.path().join("run");
    let train = |epochs: &str| {
        let mut c = train(&corpus, &run, &["--epochs", epochs, "--threads", "1"]);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        c
    };
    let mut first = train("1000").spawn().expect("spawn");
    let pid = run.join("pid");
    wait_until(|| !std::fs::read_to_string(&pid).unwrap_or_default().is_empty());
    let e = run_err(train("1000").arg("--resume"));
    assert!(e.contains(&format!("is in use: process {} is training in it", first.id())), "{e}");
    let e = run_err(&mut train("1000"));
    assert!(e.contains("already holds a run"), "{e}");
    first.kill().expect("kill");
    first.wait().expect("wait");
    // The killed process could not clear its pid: the next one notes that it takes over.
    // (It then trains or, if the killed run had finished an epoch, says the run is done.)
    let out = train("1").arg("--resume").output().expect("run burnlab");
    let stdout = text(&out.stdout);
    let note = format!("was locked by process {}, which is no longer running", first.id());
    assert!(stdout.contains(&note), "{stdout}{}", text(&out.stderr));
}
