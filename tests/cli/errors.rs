use crate::common::*;

fn setup() -> Fixture {
    Fixture::new(4, 2, 1, 0.0)
}

#[test]
fn bad_config_values_are_clear_errors() {
    let f = setup();
    let train = |extra: &[&str]| run_err(f.train(&f.path("r")).args(extra));
    let e = train(&["--batch-size", "0"]);
    assert!(e.contains("train.batch_size must be at least 1"), "{e}");
    let e = train(&["--lr", "-0.5"]);
    assert!(e.contains("optim.lr must be a positive number"), "{e}");
    let e = train(&["--backend", "tpu"]);
    assert!(e.contains("invalid value 'tpu'") && e.contains("flex"), "{e}");
    let e = train(&["--set", "model.activation=swish"]);
    assert!(e.contains("unknown variant `swish`"), "{e}");
    let e = train(&["--set", "optim.momentum"]);
    assert!(e.contains("expected KEY=VALUE"), "{e}");
    assert!(!f.path("r").exists(), "no run folder for a run that never started");
}

#[test]
fn bad_data_is_a_clear_error() {
    let f = setup();
    let (tmp, cfg) = (&f.tmp, &f.cfg);
    std::fs::write(f.data.join("train/red/broken.jpg"), b"\xff\xd8\xff not a jpeg").expect("write");
    let e = run_err(&mut f.train(&f.path("r")));
    assert!(e.contains("broken.jpg") && e.contains("cannot decode image"), "{e}");

    let mut c = burnlab();
    c.args(["train", "mlp", "--config"])
        .arg(cfg)
        .arg("--data")
        .arg(tmp.path().join("nothing-here"))
        .arg("--run-dir")
        .arg(tmp.path().join("r2"));
    let e = run_err(&mut c);
    assert!(e.contains("nothing-here") && e.contains("does not exist"), "{e}");

    let mut c = burnlab();
    c.args(["train", "mlp", "--config"]).arg(tmp.path().join("missing.toml"));
    let e = run_err(&mut c);
    assert!(e.contains("missing.toml"), "{e}");
}

#[test]
fn download_from_an_unreachable_mirror_fails_cleanly() {
    let f = setup();
    let (tmp, cfg) = (&f.tmp, &f.cfg);
    let cache = tmp.path().join("cache");
    let mut c = burnlab();
    c.args(["train", "mlp", "--config"])
        .arg(cfg)
        .arg("--cache")
        .arg(&cache)
        .arg("--run-dir")
        .arg(tmp.path().join("r"))
        .env("BURNLAB_CIFAR10_URL", "http://127.0.0.1:9/cifar-10-binary.tar.gz");
    let e = run_err(&mut c);
    assert!(e.contains("download of http://127.0.0.1:9/"), "{e}");
    let left: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing left in the cache: {left:?}");
}

#[test]
fn eval_of_a_folder_that_is_not_a_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let e = run_err(burnlab().arg("eval").arg(tmp.path()));
    assert!(e.contains("is not a burnlab run folder"), "{e}");
}

#[test]
fn nan_loss_stops_training_with_a_clear_error() {
    let f = Fixture::new(40, 2, 3, 0.0);
    let run = f.path("r");
    let e = run_err(f.train(&run).args(["--lr", "1e12"]));
    assert!(e.contains("training stopped: loss became"), "{e}");
    assert!(e.contains("Lower optim.lr"), "{e}");
    let meta = read_json(&run.join("run.json"));
    assert_eq!(meta["status"], "failed");
    assert!(!run.join("model.bpk").exists(), "no final model from a diverged run");
}

/// A command that only prints ends quietly when its reader goes (`burnlab devices | head -c 1`:
/// the device probe takes long enough that `head` has gone before the last lines), instead of
/// panicking on the closed pipe (exit 101).
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_a_printing_command_quietly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = tmp.path().join("stderr.txt");
    let bin = env!("CARGO_BIN_EXE_burnlab");
    let script = format!(
        "'{bin}' devices 2>'{}' | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        err.display()
    );
    let out = std::process::Command::new("bash").arg("-c").arg(script).output().expect("bash");
    let status = text(&out.stdout).trim().to_string();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(status == "141" || status == "0", "exit status {status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
