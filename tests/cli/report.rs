use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Width and height of a PNG, which must decode.
fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

/// A Python with TensorBoard installed: `BURNLAB_TEST_PYTHON`, else `python3` if it can import
/// tensorboard.
fn tensorboard_python() -> Option<String> {
    let candidates: Vec<String> =
        std::env::var("BURNLAB_TEST_PYTHON").into_iter().chain(["python3".to_string()]).collect();
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import tensorboard.backend.event_processing.event_accumulator"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// TensorBoard's own reader on a run's `tb/<split>` folder: {tag: [[step, value], ...]} and
/// {image tag: [[step, width, height], ...]}.
fn read_with_tensorboard(py: &str, dir: &Path) -> serde_json::Value {
    let script = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0})
acc.Reload()
tags = acc.Tags()
print(json.dumps({
    "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
    "images": {t: [[e.step, e.width, e.height] for e in acc.Images(t)] for t in tags["images"]},
}))
"#;
    let out = Command::new(py).arg("-c").arg(script).arg(dir).output().expect("python");
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The epoch value of a burn-train metric log: its `value,final` line, else the mean of its
/// `value,count` or plain value lines.
fn burn_log_mean(run: &Path, split: &str, epoch: usize, metric: &str) -> f64 {
    let t = std::fs::read_to_string(
        run.join(split).join(format!("epoch-{epoch}")).join(format!("{metric}.log")),
    )
    .expect("burn-train log");
    let (mut sum, mut n) = (0.0, 0.0);
    for l in t.lines().filter(|l| !l.is_empty()) {
        if let Some(v) = l.strip_suffix(",final") {
            return v.parse().expect("number"); // burn-train's own epoch value
        }
        let mut parts = l.split(',');
        let v: f64 = parts.next().expect("value").parse().expect("number");
        let c: f64 = parts.next().map_or(1.0, |c| c.parse().expect("count"));
        (sum, n) = (sum + v * c, n + c);
    }
    sum / n
}

#[test]
fn tensorboard_logs_runs_table_and_report_for_every_task() {
    let f = Fixture::new(30, 10, 2, 0.0);
    // A green training image filed as a red test image: one test image the model gets wrong.
    std::fs::copy(f.data.join("train/green/0000.png"), f.data.join("test/red/zz-green.png"))
        .expect("copy");
    let runs = f.path("runs");
    let lenet = runs.join("lenet");
    run_ok(f.train_cnn(&lenet, "lenet5").args(["--lr", "0.02"]));
    let corpus = f.path("text.txt");
    crate::rnn::write_text(&corpus);
    let lstm = runs.join("lstm");
    run_ok(&mut crate::rnn::train(&corpus, &lstm, "lstm"));
    let words = f.path("words.txt");
    crate::word2vec::write_corpus(&words);
    let w2v = runs.join("w2v");
    run_ok(&mut crate::word2vec::train(&words, &w2v, &["--epochs", "2", "--threads", "2"]));

    // Event files, in the layout TensorBoard overlays: tb/train and tb/valid.
    for (run, splits) in
        [(&lenet, &["train", "valid"][..]), (&lstm, &["train", "valid"]), (&w2v, &["train"])]
    {
        for split in splits {
            let dir = run.join("tb").join(split);
            let files: Vec<_> =
                std::fs::read_dir(&dir).expect("tb folder").filter_map(|e| e.ok()).collect();
            assert_eq!(files.len(), 1, "{}", dir.display());
            assert!(files[0].file_name().to_string_lossy().starts_with("events.out.tfevents."));
        }
    }
    match tensorboard_python() {
        None => eprintln!(
            "SKIPPED: TensorBoard's reader check (no Python with tensorboard; set BURNLAB_TEST_PYTHON)"
        ),
        Some(py) => {
            let train = read_with_tensorboard(&py, &lenet.join("tb/train"));
            let valid = read_with_tensorboard(&py, &lenet.join("tb/valid"));
            // 60 training images (90 less 30 validation), batch 16: 4 steps per epoch.
            let steps: Vec<i64> = train["scalars"]["step/loss"]
                .as_array()
                .expect("step/loss")
                .iter()
                .map(|p| p[0].as_i64().expect("step"))
                .collect();
            assert_eq!(steps, (1..=8).collect::<Vec<_>>());
            for tag in [
                "step/accuracy",
                "step/learning_rate",
                "step/throughput",
                "epoch/loss",
                "epoch/accuracy",
            ] {
                assert!(train["scalars"][tag].is_array(), "train {tag}: {train}");
            }
            // Epoch values are the epoch means burn-train logged.
            for (split, tb, metric, tag) in [
                ("train", &train, "Loss", "epoch/loss"),
                ("valid", &valid, "Loss", "epoch/loss"),
                ("valid", &valid, "Accuracy", "epoch/accuracy"),
            ] {
                let points = tb["scalars"][tag].as_array().expect("epoch series");
                assert_eq!(points.len(), 2, "{split} {tag}");
                for (e, p) in points.iter().enumerate() {
                    assert_eq!(p[0].as_i64(), Some(e as i64 + 1));
                    let want = burn_log_mean(&lenet, split, e + 1, metric);
                    let got = p[1].as_f64().expect("value");
                    assert!(
                        (got - want).abs() < 1e-4 * want.abs().max(1.0),
                        "{split} {tag} epoch {}: {got} vs burn-train {want}",
                        e + 1
                    );
                }
            }
            // One sample grid per epoch: 8 columns of 3x-enlarged 32-pixel images.
            let images = valid["images"]["samples"].as_array().expect("samples");
            assert_eq!(
                images.iter().map(|i| i[0].as_i64().expect("step")).collect::<Vec<_>>(),
                [1, 2]
            );
            assert_eq!(images[0][1].as_i64(), Some(8 * 120 + 10));
            let lm = read_with_tensorboard(&py, &lstm.join("tb/valid"));
            assert!(
                lm["scalars"]["epoch/bits_per_char"].as_array().is_some_and(|a| a.len() == 2),
                "{lm}"
            );
            let wv = read_with_tensorboard(&py, &w2v.join("tb/train"));
            assert_eq!(wv["scalars"]["epoch/loss"].as_array().map(|a| a.len()), Some(2), "{wv}");
        }
    }

    // The runs table: three finished runs and a corrupt one, no panic.
    std::fs::create_dir_all(runs.join("broken")).expect("mkdir");
    std::fs::write(runs.join("broken/run.json"), "{\"task\": ").expect("write");
    let table = run_ok(burnlab().arg("runs").arg(&runs));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("run ") && lines[0].contains("best valid"), "{table}");
    assert!(lines[1].starts_with("broken ") && lines[1].contains("corrupt: "), "{table}");
    assert!(
        lines[2].starts_with("lenet ")
            && lines[2].contains("cnn")
            && lines[2].contains("2/2")
            && lines[2].contains("acc ")
            && lines[2].ends_with("finished"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("lstm ") && lines[3].contains("charlm") && lines[3].contains("loss "),
        "{table}"
    );
    assert!(
        lines[4].starts_with("w2v ")
            && lines[4].contains("word2vec")
            && lines[4].contains("skipgram dim 16"),
        "{table}"
    );

    // One report over all three runs: every picture, decodable, and an index linking them.
    let out = f.path("report");
    let printed = run_ok(
        burnlab()
            .arg("report")
            .arg(&lenet)
            .arg(&lstm)
            .arg(&w2v)
            .arg("--out")
            .arg(&out)
            .arg("--data")
            .arg(&f.data),
    );
    assert!(printed.contains("index.html"), "{printed}");
    // Each chart's legend names the runs that have its metric.
    for (chart, runs) in [
        ("curve-loss", &["lenet", "lstm", "w2v"][..]),
        ("curve-accuracy", &["lenet", "lstm"]),
        ("curve-bits_per_char", &["lstm"]),
        ("curve-step-loss", &["lenet", "lstm", "w2v"]),
        ("lr-schedule", &["lenet", "lstm", "w2v"]),
    ] {
        assert_eq!(png_size(&out.join(format!("{chart}.png"))), (900, 540), "{chart}");
        let svg = std::fs::read_to_string(out.join(format!("{chart}.svg"))).expect("svg");
        assert!(svg.starts_with("<svg"), "{chart}.svg");
        for r in ["lenet", "lstm", "w2v"] {
            // Legend entries are text elements: "lenet train", "lenet valid" or "lenet".
            let in_legend =
                svg.lines().any(|l| l.trim() == r || l.trim().starts_with(&format!("{r} ")));
            assert_eq!(in_legend, runs.contains(&r), "{chart}.svg: {r}");
        }
    }
    assert_eq!(png_size(&out.join("lenet-confusion.png")), (120 + 3 * 58 + 24, 56 + 3 * 58 + 120));
    assert!(
        std::fs::read_to_string(out.join("lenet-confusion.svg"))
            .expect("svg")
            .contains("predicted class")
    );
    let (w, _) = png_size(&out.join("lenet-mistakes.png"));
    assert!(w > 100);
    assert_eq!(png_size(&out.join("w2v-word-map.png")), (1000, 800));
    let html = std::fs::read_to_string(out.join("index.html")).expect("index");
    for file in [
        "curve-loss.png",
        "curve-loss.svg",
        "lenet-confusion.png",
        "lenet-mistakes.png",
        "w2v-word-map.png",
        "lr-schedule.png",
    ] {
        assert!(
            html.contains(&format!("src=\"{file}\"")) || html.contains(&format!("href=\"{file}\"")),
            "{file} not linked"
        );
    }
    // A single run's report goes into the run folder.
    run_ok(burnlab().arg("report").arg(&lstm));
    assert!(lstm.join("report/index.html").is_file());
    let e = run_err(burnlab().arg("report").arg(f.path("data")));
    assert!(e.contains("is not a burnlab run folder"), "{e}");
}
