//! `burnlab runs`: every run of a folder as one table row, read from what each run wrote
//! (its metadata, `metrics.json` and TensorBoard scalars). A run whose files cannot be read is
//! listed as corrupt, with the reason; it never stops the listing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value as Json;

use crate::insight::tb::{self, read_scalars};
use crate::insight::tb_logger::TB_DIR;
use crate::run;
use crate::run::record;

/// One run, as the table shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    pub dir: PathBuf,
    pub task: String,
    pub model: String,
    pub backend: String,
    /// "done/total"
    pub epochs: String,
    pub best_valid: String,
    pub test: String,
    pub wall: String,
    pub status: String,
}

const DASH: &str = "-";

fn read_json(path: &Path) -> Result<Json> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

fn config_epochs(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(run::CONFIG_FILE)).ok()?;
    let v: toml::Value = toml::from_str(&text).ok()?;
    v.get("train")?.get("epochs")?.as_integer().map(|e| e as u64)
}

/// The per-epoch scalars of a run's TensorBoard split folder: metric → (epoch, value).
type EpochScalars = std::collections::BTreeMap<String, Vec<(i64, f64)>>;

fn epoch_scalars(dir: &Path, split: &str) -> EpochScalars {
    read_scalars(&dir.join(TB_DIR).join(split))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(tag, v)| tag.strip_prefix("epoch/").map(|m| (m.to_string(), v)))
        .collect()
}

fn series<'a>(s: &'a EpochScalars, metric: &str) -> &'a [(i64, f64)] {
    s.get(metric).map_or(&[], Vec::as_slice)
}

/// Seconds between the first and last training event of each event file, summed over files (a
/// resumed run's pause is not counted).
fn tb_wall_seconds(dir: &Path) -> Option<f64> {
    let mut total = None;
    for f in tb::event_files(&dir.join(TB_DIR).join("train")) {
        let events = tb::read_events(&f).ok()?;
        if let (Some(a), Some(b)) = (events.first(), events.last()) {
            *total.get_or_insert(0.0) += b.wall_time - a.wall_time;
        }
    }
    total
}

fn wall_text(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s >= 3600.0 => {
            format!("{:.0}h{:02.0}m", (s / 3600.0).floor(), (s % 3600.0) / 60.0)
        }
        Some(s) if s >= 60.0 => format!("{:.0}m{:02.0}s", (s / 60.0).floor(), s % 60.0),
        Some(s) => format!("{s:.1}s"),
        None => DASH.into(),
    }
}

/// Is the process that wrote `dir/pid` still running burnlab? None where that cannot be told
/// (no pid file, or no /proc).
fn trainer_alive(dir: &Path) -> Option<bool> {
    let pid: u32 = std::fs::read_to_string(dir.join(run::PID_FILE)).ok()?.trim().parse().ok()?;
    if !Path::new("/proc/self").exists() {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    Some(String::from_utf8_lossy(&cmdline).contains("burnlab"))
}

fn status_text(v: &Json, dir: &Path) -> String {
    let status = v.get("status").and_then(|s| s.as_str()).unwrap_or("unknown");
    // Killed runs never get to write their status.
    if status == "running" && trainer_alive(dir) == Some(false) {
        return "interrupted (killed)".into();
    }
    status.to_string()
}

fn str_of(v: &Json, key: &str) -> String {
    v.get(key).and_then(|s| s.as_str()).filter(|s| !s.is_empty()).unwrap_or(DASH).to_string()
}

fn epochs_text(meta: &Json, dir: &Path, train: &EpochScalars) -> String {
    // A run still training (or killed) updates its metadata only at the end; its TensorBoard
    // log knows the epochs finished so far.
    let logged = series(train, "loss").last().map_or(0, |p| p.0.max(0) as u64);
    let done = meta.get("epochs_done").and_then(|e| e.as_u64()).unwrap_or(0).max(logged);
    match config_epochs(dir) {
        Some(total) => format!("{done}/{total}"),
        None => done.to_string(),
    }
}

/// Is `dir` a run folder (of any task)?
pub fn is_run(dir: &Path) -> bool {
    record::exists(dir)
}

fn row(dir: &Path) -> Result<RunRow> {
    let metrics = read_json(&dir.join(run::METRICS_FILE)).ok();
    let m = |path: &[&str]| -> Option<f64> {
        let mut v = metrics.as_ref()?;
        for k in path {
            v = v.get(k)?;
        }
        v.as_f64()
    };
    let wall = wall_text(m(&["train_seconds"]).or_else(|| tb_wall_seconds(dir)));
    // Each event folder is read once.
    let (train, valid) = (epoch_scalars(dir, "train"), epoch_scalars(dir, "valid"));
    let base = |meta: &Json, task: &str| RunRow {
        dir: dir.to_path_buf(),
        task: task.to_string(),
        model: str_of(meta, "model"),
        backend: str_of(meta, "backend"),
        epochs: epochs_text(meta, dir, &train),
        best_valid: DASH.into(),
        test: DASH.into(),
        wall: wall.clone(),
        status: status_text(meta, dir),
    };
    // The record's JSON as it is (any layout, `run.json` first), so that a record this build
    // cannot fully parse still shows what it can.
    let path = record::path(dir).with_context(|| {
        format!("no run record ({} or {})", run::META_FILE, record::LEGACY_FILES.join(" or "))
    })?;
    let meta = read_json(&path)?;
    let task = meta
        .get("task")
        .and_then(|t| t.as_str())
        .with_context(|| format!("{} has no task", path.display()))?
        .to_string();
    if task == "charlm" {
        let mut r = base(&meta, "charlm");
        let best = series(&valid, "loss")
            .iter()
            .map(|p| p.1)
            .fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.min(v))));
        if let Some(b) = best.or_else(|| m(&["valid_loss"])) {
            r.best_valid = format!("loss {b:.4}");
        }
        return Ok(r);
    }
    if task == "word2vec" {
        let mut r = base(&meta, "word2vec");
        if r.model == DASH
            && let Ok(text) = std::fs::read_to_string(dir.join(run::CONFIG_FILE))
            && let Ok(cfg) = toml::from_str::<toml::Value>(&text)
        {
            let model = cfg.get("model");
            let get = |k: &str| {
                model
                    .and_then(|m| m.get(k))
                    .map(|v| v.to_string().trim_matches('"').to_string())
                    .unwrap_or_default()
            };
            r.model = format!("{} dim {}", get("arch"), get("dim"));
        }
        if r.backend == DASH {
            r.backend =
                metrics.as_ref().map(|j| str_of(j, "backend")).unwrap_or_else(|| DASH.into());
        }
        // word2vec has no validation split: its last epoch's training loss stands in.
        if let Some(l) = series(&train, "loss").last().map(|p| p.1).or_else(|| m(&["final_loss"])) {
            r.best_valid = format!("train loss {l:.4}");
        }
        return Ok(r);
    }
    // Image classifiers (mlp, cnn).
    let mut r = base(&meta, &task);
    let best = series(&valid, "accuracy")
        .iter()
        .map(|p| p.1)
        .fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.max(v))));
    if let Some(b) = best.or_else(|| m(&["valid", "accuracy"]).map(|a| 100.0 * a)) {
        r.best_valid = format!("acc {b:.2}%");
    }
    if let Some(t) = m(&["test", "accuracy"]) {
        r.test = format!("acc {:.2}%", 100.0 * t);
    }
    Ok(r)
}

/// A row for `dir`: its summary, or what is wrong with it.
pub fn summarize(dir: &Path) -> RunRow {
    row(dir).unwrap_or_else(|e| RunRow {
        dir: dir.to_path_buf(),
        task: "?".into(),
        model: "?".into(),
        backend: "?".into(),
        epochs: "?".into(),
        best_valid: "?".into(),
        test: "?".into(),
        wall: "?".into(),
        status: format!("corrupt: {e:#}"),
    })
}

/// The runs in `dir` (its sub-folders holding a run), or `dir` itself if it is one.
pub fn scan(dir: &Path) -> Result<Vec<RunRow>> {
    if is_run(dir) {
        return Ok(vec![summarize(dir)]);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && (is_run(p) || p.join(run::CONFIG_FILE).is_file()))
        .collect();
    dirs.sort();
    Ok(dirs.iter().map(|d| summarize(d)).collect())
}

pub const HEADER: [&str; 9] =
    ["run", "task", "model", "backend", "epochs", "best valid", "test", "wall", "status"];

pub fn cells(r: &RunRow) -> [String; 9] {
    let name = r
        .dir
        .file_name()
        .map_or_else(|| r.dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    [
        name,
        r.task.clone(),
        r.model.clone(),
        r.backend.clone(),
        r.epochs.clone(),
        r.best_valid.clone(),
        r.test.clone(),
        r.wall.clone(),
        r.status.clone(),
    ]
}

/// The rows as an aligned text table.
pub fn table(rows: &[RunRow]) -> String {
    let all: Vec<[String; 9]> =
        std::iter::once(HEADER.map(String::from)).chain(rows.iter().map(cells)).collect();
    let widths: Vec<usize> =
        (0..9).map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &all {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub fn runs_command(dir: &Path) -> Result<()> {
    let rows = scan(dir)?;
    if rows.is_empty() {
        println!("no runs in {}", dir.display());
        return Ok(());
    }
    print!("{}", table(&rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn lists_finished_interrupted_and_corrupt_runs() {
        let root = tempfile::tempdir().expect("tmp");
        let r = root.path();
        // A finished image run with TensorBoard accuracies and test metrics.
        write(
            &r.join("a-lenet/run.json"),
            r#"{"task":"cnn","model":"lenet5 3x32x32 -> 10","backend":"flex","status":"finished","epochs_done":2}"#,
        );
        write(&r.join("a-lenet/config.toml"), "[train]\nepochs = 2\n");
        write(
            &r.join("a-lenet/metrics.json"),
            r#"{"train_seconds": 75.0, "valid": {"accuracy": 0.40}, "test": {"accuracy": 0.4123}}"#,
        );
        {
            let mut w = tb::EventWriter::create(&r.join("a-lenet/tb/valid")).expect("tb");
            w.scalar("epoch/accuracy", 1, 35.5).expect("s");
            w.scalar("epoch/accuracy", 2, 41.25).expect("s");
        }
        // An interrupted character model.
        write(
            &r.join("b-lstm/charlm.json"),
            r#"{"task":"charlm","model":"lstm 2x256","backend":"wgpu","status":"interrupted","epochs_done":3}"#,
        );
        write(&r.join("b-lstm/config.toml"), "[train]\nepochs = 10\n");
        {
            let mut w = tb::EventWriter::create(&r.join("b-lstm/tb/valid")).expect("tb");
            w.scalar("epoch/loss", 1, 2.5).expect("s");
            w.scalar("epoch/loss", 2, 1.75).expect("s");
            w.scalar("epoch/loss", 3, 1.9).expect("s");
        }
        // A run whose metadata was cut off mid-write, and a folder that is not a run.
        write(&r.join("c-broken/run.json"), r#"{"task":"cnn","mod"#);
        write(&r.join("d-other/notes.txt"), "hello");

        let rows = scan(r).expect("scan");
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(
            cells(&rows[0]),
            [
                "a-lenet",
                "cnn",
                "lenet5 3x32x32 -> 10",
                "flex",
                "2/2",
                "acc 41.25%",
                "acc 41.23%",
                "1m15s",
                "finished"
            ]
            .map(String::from)
        );
        assert_eq!(
            cells(&rows[1])[..6],
            ["b-lstm", "charlm", "lstm 2x256", "wgpu", "3/10", "loss 1.7500"].map(String::from)
        );
        assert_eq!(rows[1].status, "interrupted");
        assert_eq!(rows[1].test, "-");
        assert!(rows[2].status.starts_with("corrupt: "), "{}", rows[2].status);
        assert!(rows[2].status.contains("run.json is not valid JSON"), "{}", rows[2].status);
        let t = table(&rows);
        assert!(t.lines().next().expect("header").starts_with("run       task    model"), "{t}");
        assert_eq!(t.lines().count(), 4);
    }

    #[test]
    fn a_running_run_whose_process_is_gone_is_interrupted() {
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("r");
        write(&dir.join("run.json"), r#"{"task":"mlp","status":"running","epochs_done":1}"#);
        // No pid file: nothing to tell.
        assert_eq!(summarize(&dir).status, "running");
        // This test binary (target/…/burnlab-<hash>) is a live burnlab process.
        write(&dir.join(run::PID_FILE), &std::process::id().to_string());
        assert_eq!(summarize(&dir).status, "running");
        // A pid no process can have.
        write(&dir.join(run::PID_FILE), "4194304999");
        assert_eq!(summarize(&dir).status, "interrupted (killed)");
    }

    #[test]
    fn a_folder_that_is_a_run_lists_itself() {
        let root = tempfile::tempdir().expect("tmp");
        write(
            &root.path().join("word2vec.json"),
            r#"{"task":"word2vec","status":"finished","epochs_done":5}"#,
        );
        write(
            &root.path().join("config.toml"),
            "[model]\narch = \"skipgram\"\ndim = 100\n[train]\nepochs = 5\n",
        );
        let rows = scan(root.path()).expect("scan");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].task.as_str(), rows[0].model.as_str(), rows[0].epochs.as_str()),
            ("word2vec", "skipgram dim 100", "5/5")
        );
    }

    #[test]
    fn a_missing_folder_is_an_error() {
        assert!(
            format!("{:#}", scan(Path::new("/nonexistent/runs")).expect_err("missing"))
                .contains("cannot list /nonexistent/runs")
        );
    }
}
