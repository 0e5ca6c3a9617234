use crate::common::*;

/// Kill a run once its first checkpoint is on disk, resume it, and end exactly where an
/// uninterrupted run ends.
#[test]
fn resume_after_kill_matches_uninterrupted_run() {
    let f = Fixture::new(150, 5, 4, 0.3);
    kill_resume_and_compare(&f, |run| f.train(run));
    // train.keep_checkpoints (2 by default): only the last two epochs' checkpoints stay.
    let ckpt = f.tmp.path().join("full/checkpoint");
    let kept: Vec<bool> = (1..=4).map(|e| learner_checkpoint(&ckpt, e)).collect();
    assert_eq!(kept, [false, false, true, true]);
    let one = f.path("keep-one");
    run_ok(f.train(&one).args(["--set", "train.keep_checkpoints=1"]));
    let kept: Vec<bool> = (1..=4).map(|e| learner_checkpoint(&one.join("checkpoint"), e)).collect();
    assert_eq!(kept, [false, false, false, true]);
    let e = run_err(f.train(&f.path("keep-none")).args(["--set", "train.keep_checkpoints=0"]));
    assert!(e.contains("train.keep_checkpoints must be at least 1"), "{e}");
}

/// The same for a ResNet: BatchNorm's running statistics and the momentum buffers travel in
/// the checkpoint, so the resumed run's eval-mode results are the uninterrupted run's.
#[test]
fn resnet_resume_after_kill_matches_uninterrupted_run() {
    let f = Fixture::new(40, 5, 3, 0.0);
    kill_resume_and_compare(&f, |run| {
        let mut c = f.train_cnn(run, "resnet20");
        c.args(["--set", "model.depth=8"]);
        c
    });
}

/// Killed (`kill -9`) inside an epoch after a timed checkpoint (`train.checkpoint_minutes`, here
/// every step): the resume starts at the step after it and ends on the uninterrupted run's
/// metrics, dropout masks included; the finished run keeps only its epoch-end checkpoints.
#[test]
fn a_run_killed_inside_an_epoch_resumes_from_its_last_step_checkpoint() {
    let f = Fixture::new(150, 5, 3, 0.3);
    let full = f.path("full");
    run_ok(&mut f.train(&full));
    assert!(within_epoch_checkpoints(&full.join("checkpoint")).is_empty());

    let killed = f.path("killed");
    let ckpt = killed.join("checkpoint");
    let every_step = ["--set", "train.checkpoint_minutes=1e-9"];
    kill_when(f.train(&killed).args(every_step), || within_epoch_checkpoint(&ckpt, 2));
    let e = run_err(f.train(&killed).args(["--resume", "--epochs", "1"]));
    assert!(e.contains("has trained up to the checkpoint of epoch 2, step"), "{e}");
    let out = run_ok(f.train(&killed).arg("--resume"));
    assert!(out.contains("resuming from the checkpoint of epoch 2, step "), "{out}");
    same_metrics(&full, &killed);
    assert_eq!(within_epoch_checkpoints(&ckpt), Vec::<String>::new());
    let e = run_err(f.train(&f.path("bad")).args(["--set", "train.checkpoint_minutes=-1"]));
    assert!(e.contains("train.checkpoint_minutes must be 0"), "{e}");
}

/// The valid and test losses and confusion matrices of two finished runs are the same.
fn same_metrics(a: &std::path::Path, b: &std::path::Path) {
    let (a, b) = (read_json(&a.join("metrics.json")), read_json(&b.join("metrics.json")));
    for split in ["valid", "test"] {
        let (la, lb) =
            (a[split]["loss"].as_f64().expect("loss"), b[split]["loss"].as_f64().expect("loss"));
        assert!((la - lb).abs() < 1e-5, "{split} loss: uninterrupted {la} vs resumed {lb}");
        assert_eq!(a[split]["confusion"], b[split]["confusion"]);
    }
}

fn kill_resume_and_compare(f: &Fixture, train: impl Fn(&std::path::Path) -> std::process::Command) {
    let tmp = &f.tmp;

    let full = tmp.path().join("full");
    run_ok(&mut train(&full));

    let killed = tmp.path().join("killed");
    kill_when(&mut train(&killed), || learner_checkpoint(&killed.join("checkpoint"), 1));
    assert!(!killed.join("metrics.json").exists(), "the run was killed before it finished");

    let out = run_ok(train(&killed).arg("--resume"));
    assert!(out.contains("resuming from the checkpoint of epoch"), "{out}");
    same_metrics(&full, &killed);
    assert_eq!(read_json(&killed.join("run.json"))["status"], "finished");

    let e = run_err(train(&killed).arg("--resume"));
    assert!(e.contains("already finished"), "{e}");
}

/// Killed after the last epoch's checkpoint but before the final model and metrics were written:
/// the resume finishes from that checkpoint, on the same metrics.
#[test]
fn a_run_killed_after_its_last_checkpoint_resumes_to_the_end() {
    let f = Fixture::new(40, 5, 2, 0.0);
    let run = f.path("run");
    run_ok(&mut f.train(&run));
    let before = read_json(&run.join("metrics.json"));
    for file in ["model.bpk", "metrics.json"] {
        std::fs::remove_file(run.join(file)).expect("remove");
    }
    let record = std::fs::read_to_string(run.join("run.json")).expect("record");
    std::fs::write(run.join("run.json"), record.replace("\"finished\"", "\"running\""))
        .expect("write");
    run_ok(f.train(&run).arg("--resume"));
    let after = read_json(&run.join("metrics.json"));
    assert_eq!(before["test"]["loss"], after["test"]["loss"]);
    assert!(run.join("model.bpk").is_file());
}
