//! Run folders written before the run record was one `run.json` (a character model's
//! `charlm.json`, word2vec's `word2vec.json`) keep working: `runs`, `eval`, `sample`,
//! `similar`, `analogy`, `report` and `--resume`. The fixtures are made here: a run is trained,
//! then its record is rewritten as the old layout wrote it (the same fields under the old
//! file name; word2vec's without `message`, which it never wrote).

use std::path::Path;

use crate::common::*;

/// Moves `run`'s record to the old layout's file `old`, dropping the fields in `absent`.
fn to_old_layout(run: &Path, old: &str, absent: &[&str]) {
    let mut record = read_json(&run.join("run.json"));
    for key in absent {
        record.as_object_mut().expect("an object").remove(*key);
    }
    std::fs::write(run.join(old), serde_json::to_string_pretty(&record).expect("json"))
        .expect("write old record");
    std::fs::remove_file(run.join("run.json")).expect("remove run.json");
}

#[test]
fn charlm_runs_in_the_old_layout_still_load_sample_report_and_resume() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("text.txt");
    crate::rnn::write_text(&corpus);
    let run = tmp.path().join("old-lstm");
    run_ok(&mut crate::rnn::train(&corpus, &run, "lstm"));
    to_old_layout(&run, "charlm.json", &[]);

    let out = run_ok(burnlab().arg("runs").arg(tmp.path()));
    assert!(
        out.contains("old-lstm") && out.contains("charlm") && out.contains("lstm 1x32"),
        "{out}"
    );
    assert!(out.contains("finished") && out.contains("2/2"), "{out}");
    let out = run_ok(burnlab().arg("eval").arg(&run));
    assert!(out.contains("valid_loss="), "{out}");
    let out = run_ok(burnlab().arg("sample").arg(&run).args(["--length", "50", "--seed", "3"]));
    assert!(out.chars().count() >= 50, "{out}");
    let report = tmp.path().join("report");
    run_ok(burnlab().arg("report").arg(&run).arg("--out").arg(&report));
    assert!(report.join("index.html").is_file());

    // Resuming trains on and writes the one record; the old file is left as it was.
    // The helper's own arguments, its `--epochs 2` made 3.
    let helper = crate::rnn::train(&corpus, &run, "lstm");
    let mut args: Vec<_> = helper.get_args().map(|a| a.to_owned()).collect();
    let at = args.iter().position(|a| a == "--epochs").expect("--epochs") + 1;
    args[at] = "3".into();
    let out = run_ok(burnlab().args(args).arg("--resume"));
    assert!(out.contains("epoch 3/3"), "{out}");
    let record = read_json(&run.join("run.json"));
    assert_eq!(
        (record["task"].as_str(), record["epochs_done"].as_u64()),
        (Some("charlm"), Some(3))
    );
    assert_eq!(read_json(&run.join("charlm.json"))["epochs_done"], 2);
    let out = run_ok(burnlab().arg("runs").arg(&run));
    assert!(out.contains("3/3"), "{out}");
}

#[test]
fn word2vec_runs_in_the_old_layout_still_answer_queries_and_resume() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    crate::word2vec::write_corpus(&corpus);
    let run = tmp.path().join("old-w2v");
    let train = |extra: &[&str]| {
        let mut c = burnlab();
        c.args(["train", "word2vec", "--dim", "16", "--threads", "1", "--min-count", "1"])
            .args(extra)
            .arg("--corpus")
            .arg(&corpus)
            .arg("--run-dir")
            .arg(&run);
        c
    };
    run_ok(&mut train(&["--epochs", "1"]));
    to_old_layout(&run, "word2vec.json", &["message"]);

    let out = run_ok(burnlab().arg("runs").arg(tmp.path()));
    assert!(
        out.contains("old-w2v") && out.contains("word2vec") && out.contains("finished"),
        "{out}"
    );
    let out = run_ok(burnlab().arg("similar").arg(&run).args(["fruit3", "-k", "3"]));
    assert_eq!(out.lines().count(), 3, "{out}");
    let out = run_ok(burnlab().arg("analogy").arg(&run).args(["fruit1", "fruit2", "metal1"]));
    assert!(out.starts_with("fruit2 : fruit1 :: metal1 : ?"), "{out}");
    let e = run_err(burnlab().arg("eval").arg(&run));
    assert!(e.contains("is a word2vec run") && e.contains("eval-words"), "{e}");
    let report = tmp.path().join("report");
    run_ok(burnlab().arg("report").arg(&run).arg("--out").arg(&report));
    assert!(report.join("index.html").is_file());

    let out = run_ok(&mut train(&["--epochs", "2", "--resume"]));
    assert!(out.contains("epoch 2/2"), "{out}");
    assert_eq!(read_json(&run.join("run.json"))["epochs_done"], 2);
}
