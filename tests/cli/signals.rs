//! SIGTERM and SIGINT off a terminal stop training gracefully: after the current step, with the
//! run recorded as interrupted and the command that resumes it, and exit status 128 + signal.
#![cfg(unix)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::common::*;

/// Starts `cmd`, waits until `ready()`, sends `kill -SIG`, and returns (exit code, stdout, stderr).
fn signal_when(cmd: &mut Command, sig: &str, ready: impl Fn() -> bool) -> (i32, String, String) {
    let child: Child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn burnlab");
    wait_until(ready);
    // The shell's own `kill`: no procps needed.
    let sent = Command::new("sh").arg("-c").arg(format!("kill -{sig} {}", child.id())).status();
    assert!(sent.expect("run kill").success(), "kill -{sig}");
    let out = child.wait_with_output().expect("wait");
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn assert_interrupted(run: &Path, (code, out, err): (i32, String, String), sig: &str, want: i32) {
    assert_eq!(code, want, "exit status after SIG{sig}:\n{out}\n{err}");
    assert!(err.contains(&format!("SIG{sig}: stopping after the current step")), "{err}");
    assert!(out.contains("--resume"), "the resume command is printed: {out}");
    let record = read_json(&run.join("run.json"));
    assert_eq!(record["status"], "interrupted", "{record}");
    assert!(record["epochs_done"].as_u64().expect("epochs") >= 1, "{record}");
    let pid = std::fs::read_to_string(run.join("pid")).expect("pid file");
    assert!(pid.is_empty(), "a process that stopped cleanly clears its pid: {pid}");
}

#[test]
fn word2vec_stops_on_sigterm_and_sigint_and_resumes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    let line = (0..12).map(|j| format!("w{j}")).collect::<Vec<_>>().join(" ") + "\n";
    std::fs::write(&corpus, line.repeat(40_000)).expect("write");
    for (sig, code) in [("TERM", 143), ("INT", 130)] {
        let run = tmp.path().join(sig);
        let mut cmd =
            crate::word2vec::train(&corpus, &run, &["--epochs", "1000", "--threads", "1"]);
        let first = run.join("checkpoint/epoch-1.bin");
        let result = signal_when(&mut cmd, sig, || first.exists());
        // Where it stopped is checkpointed (inside an epoch) and named.
        let kept = result.1.split("stopped (").nth(1).and_then(|r| r.split(" is kept").next());
        let kept = kept.unwrap_or_else(|| panic!("no kept checkpoint named: {}", result.1));
        assert!(kept.starts_with("the checkpoint of epoch "), "{kept}");
        let kept = kept.to_string();
        assert_interrupted(&run, result, sig, code);
        let done = read_json(&run.join("run.json"))["epochs_done"].as_u64().expect("epochs");
        let more = (done + 2).to_string();
        let out =
            run_ok(crate::word2vec::train(&corpus, &run, &["--epochs", &more]).arg("--resume"));
        assert!(out.contains(&format!("resuming from {kept}")), "{out}");
        assert_eq!(read_json(&run.join("run.json"))["status"], "finished");
    }
}

#[test]
fn learner_training_stops_on_sigterm() {
    let f = Fixture::new(60, 5, 200, 0.0);
    let run = f.path("run");
    let ckpt = run.join("checkpoint");
    let result = signal_when(&mut f.train(&run), "TERM", || learner_checkpoint(&ckpt, 1));
    // The step the signal stopped is checkpointed (inside its epoch) and named.
    assert!(result.1.contains("interrupted (the checkpoint of epoch "), "{}", result.1);
    let kept = result.1.split("interrupted (").nth(1).and_then(|r| r.split(" is kept").next());
    let kept = kept.expect("the kept checkpoint").to_string();
    assert_interrupted(&run, result, "TERM", 143);
    let done = read_json(&run.join("run.json"))["epochs_done"].as_u64().expect("epochs");
    let more = (done + 2).to_string();
    let out = run_ok(f.train(&run).args(["--epochs", &more, "--resume"]));
    assert!(out.contains(&format!("resuming from {kept}")), "{out}");
    assert_eq!(read_json(&run.join("run.json"))["status"], "finished");
}
