//! `burnlab cv --folds N <task> [train args]`: stratified N-fold cross-validation over the
//! training split. Fold k trains on the other N − 1 folds and validates on fold k; the test
//! split is never touched (until `--final`, which trains on the whole training split with the
//! same settings and reports the test score once).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::runner::{self, Job, Outcome};
use super::score::{self, Metric, Score, WordBench, cell, mean_std};
use super::setup::{Kind, Setup, take_flags};
use crate::cli::CvArgs;

/// The file in a cross-validation's parent folder.
pub const CV_FILE: &str = "cv.json";

/// What the cross-validation was asked for: a rerun must ask the same to continue it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvSetup {
    #[serde(flatten)]
    pub setup: Setup,
    pub folds: usize,
}

/// One fold's run and scores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FoldResult {
    pub fold: usize,
    pub run: PathBuf,
    #[serde(flatten)]
    pub score: Score,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Mean and sample standard deviation (n − 1) over the folds of each score.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Spread {
    pub train: Option<(f64, f64)>,
    pub valid: Option<(f64, f64)>,
    pub valid_loss: Option<(f64, f64)>,
}

impl Spread {
    pub fn of(folds: &[FoldResult]) -> Spread {
        let ok = || folds.iter().filter(|f| f.error.is_none());
        Spread {
            train: mean_std(ok().map(|f| f.score.train)),
            valid: mean_std(ok().map(|f| f.score.valid)),
            valid_loss: mean_std(ok().map(|f| f.score.valid_loss)),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CvFile {
    setup: CvSetup,
    metric: Metric,
    folds: Vec<FoldResult>,
    #[serde(flatten)]
    spread: Spread,
    #[serde(skip_serializing_if = "Option::is_none")]
    r#final: Option<FinalResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct FinalResult {
    run: PathBuf,
    test_split: String,
    test_accuracy: f64,
}

/// The sets that make a `train` run fold `fold` of `folds`.
pub fn fold_sets(folds: usize, fold: usize) -> Vec<(String, String)> {
    vec![("data.cv_folds".into(), folds.to_string()), ("data.cv_fold".into(), fold.to_string())]
}

/// Why a task has no cross-validation.
pub fn refuse(kind: Kind, task: &str) -> Result<()> {
    match kind {
        Kind::Image => Ok(()),
        Kind::Word2vec => bail!(
            "word2vec learns without labels and has no validation split to fold: compare its settings with `burnlab sweep word2vec --grid … --analogies FILE` (scored on analogy questions)"
        ),
        Kind::Charlm => bail!(
            "a character model reads one text in order, and folds of it would train on the text that follows each validation block (its run already validates on the held-out end of the text, data.valid_fraction): compare its settings with `burnlab sweep {task} --grid …`"
        ),
    }
}

/// The fold jobs of one cross-validation in `parent` (`fold-1` …), with `sets` before the fold's.
pub fn fold_jobs(
    setup: &Setup,
    sets: &[(String, String)],
    parent: &Path,
    folds: usize,
    label: &str,
) -> Vec<Job> {
    (1..=folds)
        .map(|k| {
            let mut all = sets.to_vec();
            all.extend(fold_sets(folds, k));
            Job {
                label: format!("{label}fold {k}/{folds}"),
                dir: parent.join(format!("fold-{k}")),
                argv: setup.argv(&all),
            }
        })
        .collect()
}

/// The scores of fold runs that ended (`outcomes` in fold order).
pub fn fold_results(jobs: &[Job], outcomes: &[Outcome], metric: Metric) -> Vec<FoldResult> {
    jobs.iter()
        .zip(outcomes)
        .enumerate()
        .map(|(i, (job, outcome))| {
            let read = outcome.clone().and_then(|()| {
                score::read(&job.dir, metric, &WordBench::default()).map_err(|e| format!("{e:#}"))
            });
            match read {
                Ok(score) => FoldResult { fold: i + 1, run: job.dir.clone(), score, error: None },
                Err(e) => FoldResult {
                    fold: i + 1,
                    run: job.dir.clone(),
                    score: Score::default(),
                    error: Some(e),
                },
            }
        })
        .collect()
}

fn pm(v: Option<(f64, f64)>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |(m, s)| format!("{m:.digits$} ± {s:.digits$}"))
}

/// The folds' table and their mean ± standard deviation.
pub fn fold_table(folds: &[FoldResult], metric: Metric) -> String {
    let (train, valid) = metric.headings();
    let header: Vec<String> =
        ["fold", train, valid, "valid loss", "train s"].iter().map(|s| s.to_string()).collect();
    let mut rows: Vec<Vec<String>> = folds
        .iter()
        .map(|f| match &f.error {
            Some(e) => vec![f.fold.to_string(), format!("failed: {e}")],
            None => vec![
                f.fold.to_string(),
                cell(f.score.train, 2),
                cell(f.score.valid, 2),
                cell(f.score.valid_loss, 4),
                cell(f.score.train_seconds, 1),
            ],
        })
        .collect();
    let s = Spread::of(folds);
    rows.push(vec!["mean ± std".into(), pm(s.train, 2), pm(s.valid, 2), pm(s.valid_loss, 4)]);
    super::table(&header, &rows)
}

pub fn cv_command(args: CvArgs) -> Result<()> {
    let mut rest = args.args.clone();
    let flags = take_flags(&mut rest, &["--folds", "--jobs", "--out"], &["--final"])?;
    let mut folds = args.folds;
    let (mut jobs, mut out, mut final_run) = (args.jobs, args.out.clone(), args.r#final);
    for (k, v) in flags {
        match k.as_str() {
            "--folds" => {
                folds = v.parse().map_err(|_| anyhow::anyhow!("--folds {v}: not a number"))?
            }
            "--jobs" => {
                jobs = v.parse().map_err(|_| anyhow::anyhow!("--jobs {v}: not a number"))?
            }
            "--out" => out = Some(v.into()),
            _ => final_run = true,
        }
    }
    if folds < 2 {
        bail!("--folds must be at least 2, got {folds}");
    }
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let setup = Setup::new(&args.task, rest)?;
    for key in ["data.cv_folds", "data.cv_fold"] {
        if setup.sets_key(key) {
            bail!("{key} is set by `burnlab cv` for each fold");
        }
    }
    refuse(setup.check(&[])?.kind, &args.task)?;
    let checked = setup.check(&fold_sets(folds, 1))?;
    let metric = Metric::Accuracy;
    let parent =
        out.unwrap_or_else(|| Path::new("runs").join(format!("{}-cv{folds}", checked.name)));
    std::fs::create_dir_all(&parent)?;
    let cv_setup = CvSetup { setup: setup.clone(), folds };
    let file = parent.join(CV_FILE);
    runner::check_same(&file, "cross-validation", &cv_setup)?;
    println!(
        "{folds}-fold cross-validation of `burnlab train {} {}` in {} (seed {}: the same folds for every setting)",
        setup.task,
        setup.args.join(" "),
        parent.display(),
        checked.seed
    );
    let mut cv = CvFile {
        setup: cv_setup,
        metric,
        folds: Vec::new(),
        spread: Spread::default(),
        r#final: None,
    };
    crate::run::write_json(&file, &cv)?;
    let fold_jobs = fold_jobs(&setup, &[], &parent, folds, "");
    let outcomes = runner::run_all(&fold_jobs, jobs, &parent.join("logs"))?;
    cv.folds = fold_results(&fold_jobs, &outcomes, metric);
    cv.spread = Spread::of(&cv.folds);
    crate::run::write_json(&file, &cv)?;
    println!("\n{}", fold_table(&cv.folds, metric));
    let failed = cv.folds.iter().filter(|f| f.error.is_some()).count();
    if runner::stopped_or_failed(failed, folds, "folds")? {
        return Ok(());
    }
    if final_run {
        let job = Job {
            label: "final (whole training split)".into(),
            dir: parent.join("final"),
            argv: setup.argv(&[("data.valid_size".into(), "0".into())]),
        };
        let outcome = runner::run_all(std::slice::from_ref(&job), 1, &parent.join("logs"))?;
        if let Some(Err(e)) = outcome.first() {
            bail!("the final run failed: {e}");
        }
        let m = std::fs::read_to_string(job.dir.join(crate::run::METRICS_FILE))?;
        let m: serde_json::Value = serde_json::from_str(&m)?;
        let acc = m.get("test").and_then(|t| t.get("accuracy")).and_then(|a| a.as_f64());
        let split = m.get("test_split").and_then(|s| s.as_str()).unwrap_or("test").to_string();
        if let Some(a) = acc {
            println!(
                "final: trained on the whole training split, {split} accuracy {:.2}%",
                100.0 * a
            );
            cv.r#final =
                Some(FinalResult { run: job.dir, test_split: split, test_accuracy: 100.0 * a });
            crate::run::write_json(&file, &cv)?;
        }
    }
    println!("cv: {}\npictures: burnlab report {}", file.display(), parent.display());
    Ok(())
}

/// Writes `parent/cv.json` for folds run as part of a sweep point, so that `burnlab report` on
/// the point draws its folds as on a cross-validation's parent.
pub fn write_point_file(
    parent: &Path,
    setup: CvSetup,
    metric: Metric,
    folds: &[FoldResult],
) -> Result<()> {
    let spread = Spread::of(folds);
    let file = CvFile { setup, metric, folds: folds.to_vec(), spread, r#final: None };
    crate::run::write_json(&parent.join(CV_FILE), &file)
}

/// The fold run folders of a cross-validation parent (for `report`), in fold order.
pub fn fold_dirs(parent: &Path) -> Option<Vec<PathBuf>> {
    let text = std::fs::read_to_string(parent.join(CV_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let folds = v.get("setup")?.get("folds")?.as_u64()? as usize;
    let dirs: Vec<PathBuf> = (1..=folds)
        .map(|k| parent.join(format!("fold-{k}")))
        .filter(|d| crate::insight::runs::is_run(d))
        .collect();
    (!dirs.is_empty()).then_some(dirs)
}
