use crate::common::*;

/// A small repetitive text: a character model learns it within a few dozen steps.
pub fn write_text(path: &std::path::Path) {
    let text =
        "to be or not to be, that is the question.\nwhether tis nobler in the mind to suffer.\n"
            .repeat(40);
    std::fs::write(path, text).expect("write text");
}

pub fn train(corpus: &std::path::Path, run: &std::path::Path, cell: &str) -> std::process::Command {
    let mut c = burnlab();
    c.args([
        "train",
        "rnn",
        "--cell",
        cell,
        "--layers",
        "1",
        "--hidden",
        "32",
        "--epochs",
        "2",
        "--steps",
        "15",
        "--batch-size",
        "8",
        "--seq-len",
        "24",
        "--set",
        "model.embed=8",
        "--set",
        "train.log_every=5",
    ])
    .arg("--corpus")
    .arg(corpus)
    .arg("--run-dir")
    .arg(run);
    c
}

#[test]
fn rnn_cells_train_evaluate_and_sample() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("text.txt");
    write_text(&corpus);
    for cell in ["rnn", "lstm", "gru"] {
        let run = tmp.path().join(cell);
        let out = run_ok(&mut train(&corpus, &run, cell));
        assert!(out.contains(&format!("{cell} 1x32")) && out.contains("epoch 2/2"), "{out}");
        assert!(out.contains("chars/s") && out.contains("bits per char"), "{out}");
        let metrics = read_json(&run.join("metrics.json"));
        let valid = metrics["valid_loss"].as_f64().expect("valid loss");
        // 22 characters + unknown: a uniform guess scores ln 23 ≈ 3.14 nats.
        assert!(valid < 2.8, "{cell}: validation loss {valid}");
        assert!(
            (metrics["valid_bits_per_char"].as_f64().expect("bpc")
                - valid / std::f64::consts::LN_2)
                .abs()
                < 1e-9
        );

        // eval recomputes the same validation loss from the saved model.
        let out = run_ok(burnlab().arg("eval").arg(&run));
        let eval: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("valid_loss="))
            .expect("valid_loss line")
            .parse()
            .expect("number");
        assert!((eval - valid).abs() < 1e-3, "eval {eval} vs training {valid}");

        // Sampling with a seed is reproducible, starts with the prime, and survives characters
        // the model never saw.
        let sample = |seed: &str, prime: &str| {
            run_ok(
                burnlab()
                    .arg("sample")
                    .arg(&run)
                    .args(["--prime", prime, "--length", "60", "--seed", seed]),
            )
        };
        let a = sample("3", "to be");
        assert!(a.starts_with("to be") && a.chars().count() >= 65, "{a:?}");
        assert_eq!(a, sample("3", "to be"));
        assert_ne!(a, sample("4", "to be"));
        assert!(sample("1", "ZEBRA&").starts_with("ZEBRA&"));
    }
}

#[test]
fn rnn_bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "").expect("write");
    let e = run_err(&mut train(&empty, &tmp.path().join("r1"), "lstm"));
    assert!(e.contains("empty.txt: the corpus is empty"), "{e}");
    assert!(!tmp.path().join("r1").exists(), "no run folder for a failed start");
    let short = tmp.path().join("short.txt");
    std::fs::write(&short, "abcabc").expect("write");
    let e = run_err(&mut train(&short, &tmp.path().join("r2"), "gru"));
    assert!(e.contains("short.txt") && e.contains("too short"), "{e}");
    let e = run_err(burnlab().args(["train", "rnn", "--cell", "transformer"]));
    assert!(e.contains("transformer"), "{e}");
    let e = run_err(train(&short, &tmp.path().join("r3"), "rnn").args(["--set", "train.clip=-1"]));
    assert!(e.contains("train.clip"), "{e}");
    let e = run_err(burnlab().args(["sample"]).arg(tmp.path()));
    assert!(e.contains("charlm.json") || e.contains("not a"), "{e}");
    // The default config downloads Tiny Shakespeare: an unreachable host is a clear error.
    let cache = tmp.path().join("cache");
    let e = run_err(
        burnlab()
            .args(["train", "rnn"])
            .arg("--cache")
            .arg(&cache)
            .env("BURNLAB_SHAKESPEARE_URL", "http://127.0.0.1:1/input.txt")
            .current_dir(tmp.path()),
    );
    assert!(e.contains("download of http://127.0.0.1:1/input.txt failed"), "{e}");
    assert!(std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0) == 0);
}

/// Kill a run after its first epoch's checkpoint, resume it, and finish with the validation
/// loss of the uninterrupted run (windows and dropout masks depend only on seed and epoch).
#[test]
fn rnn_resume_after_kill_matches_uninterrupted_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("text.txt");
    write_text(&corpus);
    let full = tmp.path().join("full");
    run_ok(&mut train(&corpus, &full, "lstm"));
    let killed = tmp.path().join("killed");
    kill_when(&mut train(&corpus, &killed, "lstm"), || {
        learner_checkpoint(&killed.join("checkpoint"), 1)
    });
    assert!(!killed.join("metrics.json").exists(), "the run was killed before it finished");
    let out = run_ok(train(&corpus, &killed, "lstm").arg("--resume"));
    assert!(out.contains("resuming from the checkpoint of epoch 1"), "{out}");
    let a = read_json(&full.join("metrics.json"))["valid_loss"].as_f64().expect("loss");
    let b = read_json(&killed.join("metrics.json"))["valid_loss"].as_f64().expect("loss");
    assert!((a - b).abs() < 1e-4, "uninterrupted {a} vs resumed {b}");
}
