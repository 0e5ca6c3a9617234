//! Runs the points of a sweep or the folds of a cross-validation as `burnlab train` child
//! processes, `jobs` at a time with the CPU threads split between them, each writing its output
//! to a log file. A point whose run folder says finished is skipped; one with a run in it is
//! resumed from its checkpoint (`--resume`): an interrupted sweep continues where it stopped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::run::{Status, record};

/// One training run to do.
#[derive(Clone, Debug)]
pub struct Job {
    /// How the progress lines name it: `fold 2/5`, `03 model.hidden=[16]`.
    pub label: String,
    /// Its run folder.
    pub dir: PathBuf,
    /// The `burnlab` arguments, without `--run-dir` and `--resume` (added here).
    pub argv: Vec<String>,
}

/// Where a job's run folder stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Finished: nothing to do.
    Done,
    /// A run record is in it: continue it.
    Resume,
    /// No run yet (or a folder a killed start left with nothing in it).
    Fresh,
}

pub fn state(dir: &Path) -> State {
    match record::read(dir) {
        Ok(r) if r.status == Status::Finished => State::Done,
        _ if record::exists(dir) => State::Resume,
        _ => State::Fresh,
    }
}

/// How each job ended: Ok, or why not (with its log's last line).
pub type Outcome = Result<(), String>;

/// The CPU threads each of `jobs` children gets: the machine's (or `RAYON_NUM_THREADS`)
/// divided between them, at least one.
pub fn threads_per_job(jobs: usize) -> usize {
    let total = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    (total / jobs.max(1)).max(1)
}

fn last_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}

fn spawn(job: &Job, logs: &Path, threads: Option<usize>) -> Result<Child> {
    let exe = std::env::current_exe().context("locating the burnlab executable")?;
    let log_path = logs.join(format!("{}.log", folder_of(&job.dir)));
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args(&job.argv).arg("--run-dir").arg(&job.dir);
    if state(&job.dir) == State::Resume {
        cmd.arg("--resume");
    }
    if let Some(t) = threads {
        cmd.env("RAYON_NUM_THREADS", t.to_string());
    }
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    cmd.spawn().with_context(|| format!("starting the run of {}", job.label))
}

/// The folder's name with its parent's (`03-hidden_16/fold-2` → `03-hidden_16-fold-2`): one
/// log file per job in one folder.
fn folder_of(dir: &Path) -> String {
    let mut parts: Vec<String> = dir
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.reverse();
    parts.join("-")
}

/// Runs every job not yet done, `jobs` at a time, printing a line as each starts and ends;
/// stops starting new ones after SIGINT/SIGTERM (the running ones stop by themselves and are
/// resumable). Returns each job's outcome in order.
pub fn run_all(all: &[Job], jobs: usize, logs: &Path) -> Result<Vec<Outcome>> {
    std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
    let threads = (jobs > 1).then(|| threads_per_job(jobs));
    let mut outcomes: Vec<Option<Outcome>> = vec![None; all.len()];
    let mut pending: std::collections::VecDeque<usize> = (0..all.len()).collect();
    let mut running: Vec<(usize, Child, Instant)> = Vec::new();
    let total = all.len();
    // In a terminal, a status line shows the running jobs' latest log lines (overwritten).
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut status = StatusLine::default();
    loop {
        while running.len() < jobs.max(1) && crate::run::signals::received().is_none() {
            let Some(i) = pending.pop_front() else { break };
            let job = &all[i];
            match state(&job.dir) {
                State::Done => {
                    status.clear();
                    println!("[{}/{total}] {}: finished before, kept", i + 1, job.label);
                    outcomes[i] = Some(Ok(()));
                }
                s => {
                    let how = if s == State::Resume { "resuming" } else { "training" };
                    status.clear();
                    println!("[{}/{total}] {}: {how} in {}", i + 1, job.label, job.dir.display());
                    let child = spawn(job, logs, threads)?;
                    running.push((i, child, Instant::now()));
                }
            }
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if terminal {
            let lines: Vec<String> = running
                .iter()
                .map(|(i, _, _)| {
                    let log = logs.join(format!("{}.log", folder_of(&all[*i].dir)));
                    let line = last_line(&log);
                    let line =
                        if line.is_empty() { format!("{}: starting", all[*i].label) } else { line };
                    format!("[{}/{total}] {line}", i + 1)
                })
                .collect();
            status.show(&lines.join("  "));
        }
        let mut k = 0;
        while k < running.len() {
            let (i, child, started) = &mut running[k];
            if let Some(exit) = child.try_wait()? {
                let job = &all[*i];
                let secs = started.elapsed().as_secs_f64();
                let log = logs.join(format!("{}.log", folder_of(&job.dir)));
                status.clear();
                let outcome = if exit.success() && state(&job.dir) == State::Done {
                    println!("[{}/{total}] {}: done in {secs:.1}s", *i + 1, job.label);
                    Ok(())
                } else if exit.success() {
                    Err(format!("stopped before the end (resumable); log: {}", log.display()))
                } else {
                    Err(format!("{}; log: {}", last_line(&log), log.display()))
                };
                if let Err(e) = &outcome {
                    println!("[{}/{total}] {}: {e}", *i + 1, job.label);
                }
                outcomes[*i] = Some(outcome);
                running.swap_remove(k);
            } else {
                k += 1;
            }
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err("not started (interrupted)".into())))
        .collect())
}

/// The one overwritten status line of a terminal.
#[derive(Default)]
struct StatusLine {
    shown: bool,
    last: Option<std::time::Instant>,
}

impl StatusLine {
    /// Shows `text` (cut to 120 characters), at most once a second.
    fn show(&mut self, text: &str) {
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        let cut: String = text.chars().take(120).collect();
        print!("\r\x1b[K{cut}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        (self.shown, self.last) = (true, Some(Instant::now()));
    }

    /// Clears the line before a lasting line is printed.
    fn clear(&mut self) {
        if self.shown {
            print!("\r\x1b[K");
            self.shown = false;
        }
    }
}

/// The setup a parent folder was made for must be the one asked now: a rerun continues the
/// same sweep, and a different one needs another folder.
pub fn check_same<T: serde::Serialize + PartialEq + serde::de::DeserializeOwned>(
    file: &Path,
    what: &str,
    now: &T,
) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(file) else { return Ok(()) };
    #[derive(serde::Deserialize)]
    struct Head<T> {
        setup: T,
    }
    let before: Head<T> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a {what} file burnlab wrote", file.display()))?;
    if before.setup != *now {
        anyhow::bail!(
            "{} holds a {what} of other settings ({}); pass --out DIR for a new one, or the same settings to continue it",
            file.parent().unwrap_or(Path::new(".")).display(),
            serde_json::to_string(&before.setup).unwrap_or_default()
        );
    }
    Ok(())
}

/// After the runs: Ok(true) if a signal stopped them (they resume on a rerun), an error if
/// any of `total` `what` failed, else Ok(false).
pub fn stopped_or_failed(failed: usize, total: usize, what: &str) -> Result<bool> {
    if let Some(sig) = crate::run::signals::received() {
        println!("stopped by signal {sig}: run the same command again to continue");
        return Ok(true);
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {total} {what} failed (see the table); run the same command again to retry them"
        );
    }
    Ok(false)
}
