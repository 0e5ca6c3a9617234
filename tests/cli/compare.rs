//! `burnlab cv` and `burnlab sweep` on a small image folder the tests make.

use std::path::Path;
use std::process::Command;

use crate::common::{Fixture, burnlab, read_json, run_err, run_ok};

/// `burnlab <cmd> mlp` on the fixture's data and config, into `out`.
fn compare(f: &Fixture, cmd: &str, out: &Path) -> Command {
    let mut c = burnlab();
    c.args([cmd, "mlp", "--epochs", "2", "--config"])
        .arg(&f.cfg)
        .arg("--data")
        .arg(&f.data)
        .arg("--out")
        .arg(out);
    c
}

fn f64_at(v: &serde_json::Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("{path:?} in {v}"))
}

#[test]
fn cross_validation_folds_partition_the_training_split_and_resume() {
    // 3 classes × 20 training images: 3 folds of 20 images, each class 6 or 7 per fold.
    let f = Fixture::new(20, 5, 2, 0.0);
    let out = f.path("cv");
    let stdout = run_ok(compare(&f, "cv", &out).args(["--folds", "3"]));
    assert!(stdout.contains("mean ± std"), "{stdout}");
    let cv = read_json(&out.join("cv.json"));
    let mut valid_accs = Vec::new();
    let mut valid_total = 0;
    for k in 1..=3 {
        let m = read_json(&out.join(format!("fold-{k}/metrics.json")));
        // The fold's validation images are its fold, the others train; test is not touched.
        let valid = m["valid"]["images"].as_u64().expect("images") as usize;
        assert_eq!(valid + m["train_images"].as_u64().expect("train") as usize, 60, "fold {k}");
        assert!(m.get("test").is_none(), "fold {k} was scored on test: {m}");
        let per_class = m["valid"]["confusion"].as_array().expect("confusion");
        for row in per_class {
            let n: u64 = row.as_array().expect("row").iter().map(|c| c.as_u64().expect("n")).sum();
            assert!(n == 6 || n == 7, "fold {k}: a class has {n} validation images: {per_class:?}");
        }
        valid_total += valid;
        valid_accs.push(100.0 * f64_at(&m, &["valid", "accuracy"]));
        assert_eq!(f64_at(&cv["folds"][k - 1], &["valid"]), valid_accs[k - 1]);
    }
    assert_eq!(valid_total, 60, "the validation folds cover the training split once");
    // Mean and sample standard deviation, by hand.
    let mean = valid_accs.iter().sum::<f64>() / 3.0;
    let std = (valid_accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let got = cv["valid"].as_array().expect("valid mean, std");
    assert!((got[0].as_f64().expect("m") - mean).abs() < 1e-9, "{got:?} vs {mean}");
    assert!((got[1].as_f64().expect("s") - std).abs() < 1e-9, "{got:?} vs {std}");

    // Again: every fold is kept. With fold 3 gone and fold 2 stopped: 3 trains, 2 resumes.
    let again = run_ok(compare(&f, "cv", &out).args(["--folds", "3"]));
    assert_eq!(again.matches("finished before, kept").count(), 3, "{again}");
    std::fs::remove_dir_all(out.join("fold-3")).expect("rm fold 3");
    let record = out.join("fold-2/run.json");
    let text = std::fs::read_to_string(&record).expect("record");
    std::fs::write(&record, text.replace("\"finished\"", "\"interrupted\"")).expect("write");
    let resumed = run_ok(compare(&f, "cv", &out).args(["--folds", "3", "--final"]));
    assert!(resumed.contains("fold 1/3: finished before, kept"), "{resumed}");
    assert!(resumed.contains("fold 2/3: resuming"), "{resumed}");
    assert!(resumed.contains("fold 3/3: training"), "{resumed}");
    let cv2 = read_json(&out.join("cv.json"));
    assert_eq!(cv2["folds"][2]["valid"], cv["folds"][2]["valid"], "the same fold, the same result");
    // --final trains on all 60 training images and scores test once.
    let fin = read_json(&out.join("final/metrics.json"));
    assert_eq!(fin["train_images"], 60);
    assert!(cv2["final"]["test_accuracy"].as_f64().is_some(), "{cv2}");
    // Other settings in the same folder are refused.
    let e = run_err(compare(&f, "cv", &out).args(["--folds", "4"]));
    assert!(e.contains("other settings"), "{e}");
    // The report of the parent draws the folds and their spread.
    let rep = run_ok(burnlab().arg("report").arg(&out));
    assert!(out.join("report/cv-spread.png").is_file(), "{rep}");
}

#[test]
fn cross_validation_of_word_models_says_why_not() {
    let e = run_err(burnlab().args(["cv", "word2vec"]));
    assert!(e.contains("word2vec learns without labels"), "{e}");
    let e = run_err(burnlab().args(["cv", "rnn", "--folds", "3"]));
    assert!(e.contains("burnlab sweep rnn"), "{e}");
}

#[test]
fn a_sweep_trains_the_grid_ranks_it_and_resumes() {
    let f = Fixture::new(12, 4, 2, 0.0);
    let out1 = f.path("sweep1");
    let args = ["--grid", "model.hidden=[],[8]", "--grid", "optim.weight_decay=0,1e-2"];
    let stdout = run_ok(compare(&f, "sweep", &out1).args(args));
    let sweep = read_json(&out1.join("sweep.json"));
    let points = sweep["points"].as_array().expect("points");
    let names: Vec<String> = points
        .iter()
        .map(|p| {
            Path::new(p["run"].as_str().expect("run"))
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "1-hidden_none-weight_decay_0",
            "2-hidden_none-weight_decay_1e-2",
            "3-hidden_8-weight_decay_0",
            "4-hidden_8-weight_decay_1e-2"
        ]
    );
    // The table is sorted by validation accuracy, best first, and best.toml is that point's.
    let valid: Vec<f64> = points.iter().map(|p| f64_at(p, &["valid"])).collect();
    let best = sweep["best"].as_u64().expect("best") as usize;
    assert!(valid.iter().all(|&v| v <= valid[best - 1]), "{valid:?} best {best}");
    let table_start = stdout.find("\n#  ").expect("table header");
    let first_row = stdout[table_start..].lines().nth(2).expect("first row");
    assert!(first_row.starts_with(&best.to_string()), "{first_row}");
    let best_toml: toml::Table =
        toml::from_str(&std::fs::read_to_string(out1.join("best.toml")).expect("best.toml"))
            .expect("toml");
    let hidden = best_toml["model"]["hidden"].as_array().expect("hidden").len();
    assert_eq!(hidden, usize::from(best > 2), "best point {best}: {best_toml:?}");
    for key in ["model-hidden", "optim-weight_decay"] {
        let png = out1.join(format!("sweep-{key}.png"));
        let img = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert_eq!((img.width(), img.height()), (900, 540));
    }
    // --jobs 2: the same results.
    let out2 = f.path("sweep2");
    run_ok(compare(&f, "sweep", &out2).args(args).args(["--jobs", "2"]));
    let sweep2 = read_json(&out2.join("sweep.json"));
    for (a, b) in points.iter().zip(sweep2["points"].as_array().expect("points")) {
        assert_eq!(
            (&a["valid"], &a["valid_loss"], &a["train"]),
            (&b["valid"], &b["valid_loss"], &b["train"])
        );
    }
    // Again: every point is kept.
    let again = run_ok(compare(&f, "sweep", &out1).args(args));
    assert_eq!(again.matches("finished before, kept").count(), 4, "{again}");
}

#[test]
fn bad_grids_are_refused_before_anything_trains() {
    let f = Fixture::new(2, 1, 1, 0.0);
    let out = f.path("sweep");
    for (grid, want) in [
        ("model.hiden=[],[8]", "--grid model.hiden: value []"),
        ("model.hidden=", "--grid model.hidden: no values"),
        ("optim.lr=0.1,fast", "--grid optim.lr: value fast"),
        ("optim.lr=0.1,-1", "optim.lr must be a positive number"),
        ("optim.lr=0.1,0.1", "listed twice"),
    ] {
        let e = run_err(compare(&f, "sweep", &out).args(["--grid", grid]));
        assert!(e.contains(want), "{grid}: {e}");
        assert!(!out.exists(), "{grid}: a folder was made");
    }
    let e = run_err(&mut compare(&f, "sweep", &out));
    assert!(e.contains("nothing to sweep"), "{e}");
    let e = run_err(compare(&f, "sweep", &out).args([
        "--grid",
        "optim.lr=0.1",
        "--set",
        "optim.lr=0.2",
    ]));
    assert!(e.contains("also given by --set"), "{e}");
    let e = run_err(burnlab().args(["sweep", "word2vec", "--grid", "model.dim=10,20"]));
    assert!(e.contains("--analogies FILE"), "{e}");
}

#[test]
fn a_sweep_with_folds_cross_validates_every_point() {
    let f = Fixture::new(10, 2, 1, 0.0);
    let out = f.path("sweep");
    let stdout =
        run_ok(compare(&f, "sweep", &out).args(["--grid", "optim.lr=0.05,0.01", "--folds", "2"]));
    assert!(stdout.contains("valid std"), "{stdout}");
    let sweep = read_json(&out.join("sweep.json"));
    for p in sweep["points"].as_array().expect("points") {
        let folds = p["folds"].as_array().expect("folds");
        assert_eq!(folds.len(), 2, "{p}");
        // The point's score is its folds' mean.
        let mean = (f64_at(&folds[0], &["valid"]) + f64_at(&folds[1], &["valid"])) / 2.0;
        assert!((f64_at(p, &["valid"]) - mean).abs() < 1e-9, "{p}");
    }
    // best.toml holds no fold settings; a point's folder reports like a cross-validation.
    let best = std::fs::read_to_string(out.join("best.toml")).expect("best.toml");
    assert!(!best.contains("cv_fold"), "{best}");
    let point = out.join("1-lr_0.05");
    run_ok(burnlab().arg("report").arg(&point));
    assert!(point.join("report/cv-spread.png").is_file());
}

#[test]
fn a_char_lm_sweep_ranks_by_validation_loss() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = tmp.path().join("t.txt");
    let line = "the quick brown fox jumps over the lazy dog. ";
    std::fs::write(&text, line.repeat(200)).expect("text");
    let out = tmp.path().join("sweep");
    let mut c = burnlab();
    c.args(["sweep", "rnn", "--grid", "model.cell=rnn,gru", "--epochs", "1", "--steps", "4"])
        .args(["--hidden", "16", "--corpus"])
        .arg(&text)
        .arg("--out")
        .arg(&out);
    let stdout = run_ok(&mut c);
    assert!(stdout.contains("train loss  valid loss"), "{stdout}");
    let sweep = read_json(&out.join("sweep.json"));
    assert_eq!(sweep["metric"], "loss");
    let points = sweep["points"].as_array().expect("points");
    let losses: Vec<f64> = points.iter().map(|p| f64_at(p, &["valid"])).collect();
    let best = sweep["best"].as_u64().expect("best") as usize;
    assert!(losses.iter().all(|&l| l >= losses[best - 1]), "lowest loss wins: {losses:?} {best}");
}
