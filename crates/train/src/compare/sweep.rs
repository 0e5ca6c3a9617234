//! `burnlab sweep <task> --grid KEY=V1,V2,… [--grid …] [--folds N] [--jobs J] [train args]`:
//! one run (or one cross-validation) per point of the grid, a table sorted by the validation
//! metric with the training metric beside it, the best point's config as a TOML file ready for
//! `--config`, and a chart per swept key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::cv::{self, FoldResult, Spread};
use super::grid::{self, Axis, Point};
use super::runner::{self, Job};
use super::score::{self, Metric, Score, WordBench, cell};
use super::setup::{Kind, Setup, take_flags};
use crate::cli::SweepArgs;
use crate::insight::plot::{self, Series};

pub const SWEEP_FILE: &str = "sweep.json";
pub const BEST_CONFIG: &str = "best.toml";

/// What the sweep was asked for: a rerun must ask the same to continue it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepSetup {
    #[serde(flatten)]
    pub setup: Setup,
    pub grid: Vec<Axis>,
    /// Cross-validation folds per point (0: one run per point, on the validation split).
    pub folds: usize,
    pub words: WordBench,
}

/// One point's folder and scores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointResult {
    pub index: usize,
    pub run: PathBuf,
    pub values: Vec<(String, String)>,
    #[serde(flatten)]
    pub score: Score,
    /// With `--folds`: the folds' scores; `score` then holds their means.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub folds: Vec<FoldResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SweepFile {
    setup: SweepSetup,
    metric: Metric,
    /// Grid order.
    points: Vec<PointResult>,
    /// `index` of the best point.
    best: Option<usize>,
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T> {
    v.parse().map_err(|_| anyhow::anyhow!("{flag} {v}: not a number"))
}

/// The sweep's own flags, wherever they were among the training flags.
fn gather(args: &SweepArgs) -> Result<(SweepSetup, usize, Option<PathBuf>)> {
    let mut rest = args.args.clone();
    let valued = ["--grid", "--folds", "--jobs", "--out", "--analogies", "--similarity"];
    let mut grid_texts = args.grid.clone();
    let (mut folds, mut jobs, mut out) = (args.folds.unwrap_or(0), args.jobs, args.out.clone());
    let mut words =
        WordBench { analogies: args.analogies.clone(), similarity: args.similarity.clone() };
    for (k, v) in take_flags(&mut rest, &valued, &[])? {
        match k.as_str() {
            "--grid" => grid_texts.push(v),
            "--folds" => folds = parse_num(&k, &v)?,
            "--jobs" => jobs = parse_num(&k, &v)?,
            "--out" => out = Some(v.into()),
            "--analogies" => words.analogies = Some(v.into()),
            _ => words.similarity = Some(v.into()),
        }
    }
    if grid_texts.is_empty() {
        bail!(
            "nothing to sweep: give one or more --grid KEY=V1,V2,… (e.g. --grid optim.lr=0.1,0.01)"
        );
    }
    let grid: Vec<Axis> = grid_texts.iter().map(|t| Axis::parse(t)).collect::<Result<_>>()?;
    for (i, a) in grid.iter().enumerate() {
        if grid[..i].iter().any(|b| b.key == a.key) {
            bail!("--grid {}: the key is swept twice", a.key);
        }
    }
    if folds == 1 {
        bail!("--folds must be at least 2 (or left out for one run per point)");
    }
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let setup = Setup::new(&args.task, rest)?;
    for a in &grid {
        if setup.sets_key(&a.key) {
            bail!("--grid {}: the key is also given by --set; leave one of them out", a.key);
        }
    }
    Ok((SweepSetup { setup, grid, folds, words }, jobs, out))
}

/// Every point's config must load before anything trains: each key's values alone (so that the
/// error names the key), then every combination.
fn check_grid(s: &SweepSetup) -> Result<(super::setup::Checked, Vec<Point>)> {
    let cv_sets = if s.folds > 0 { cv::fold_sets(s.folds, 1) } else { Vec::new() };
    let with = |extra: &[(String, String)]| {
        let mut sets = extra.to_vec();
        sets.extend(cv_sets.iter().cloned());
        s.setup.check(&sets)
    };
    if s.folds > 0 {
        cv::refuse(s.setup.check(&[])?.kind, &s.setup.task)?;
    }
    let base = with(&[])?;
    for a in &s.grid {
        for v in &a.values {
            with(&[(a.key.clone(), v.clone())])
                .with_context(|| format!("--grid {}: value {v}", a.key))?;
        }
    }
    let points = grid::points(&s.grid);
    for p in &points {
        with(p).with_context(|| format!("--grid point {}", grid::describe(p)))?;
    }
    if base.kind == Kind::Word2vec {
        if s.words.analogies.is_none() && s.words.similarity.is_none() {
            bail!(
                "word2vec has no validation split to rank its points by: give --analogies FILE (questions-words.txt) and/or --similarity FILE (WordSim-353 TSV)"
            );
        }
        for f in [&s.words.analogies, &s.words.similarity].into_iter().flatten() {
            if !f.is_file() {
                bail!("{}: no such file", f.display());
            }
        }
    }
    Ok((base, points))
}

pub fn sweep_command(args: SweepArgs) -> Result<()> {
    let (s, jobs, out) = gather(&args)?;
    let (base, points) = check_grid(&s)?;
    let metric = Metric::for_kind(base.kind, &s.words);
    let parent = out.unwrap_or_else(|| Path::new("runs").join(format!("{}-sweep", base.name)));
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let file = parent.join(SWEEP_FILE);
    runner::check_same(&file, "sweep", &s)?;
    println!(
        "sweep of {} points{} of `burnlab train {} {}` in {}",
        points.len(),
        if s.folds > 0 { format!(" × {} folds", s.folds) } else { String::new() },
        s.setup.task,
        s.setup.args.join(" "),
        parent.display()
    );
    let width = points.len().to_string().len();
    let dirs: Vec<PathBuf> = points
        .iter()
        .enumerate()
        .map(|(i, p)| parent.join(grid::folder_name(i + 1, width, p)))
        .collect();
    let mut all_jobs = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let label = format!("{:0width$} {}", i + 1, grid::describe(p));
        if s.folds > 0 {
            all_jobs.extend(cv::fold_jobs(&s.setup, p, &dirs[i], s.folds, &format!("{label} ")));
        } else {
            all_jobs.push(Job { label, dir: dirs[i].clone(), argv: s.setup.argv(p) });
        }
    }
    let mut sweep = SweepFile { setup: s.clone(), metric, points: Vec::new(), best: None };
    crate::run::write_json(&file, &sweep)?;
    let outcomes = runner::run_all(&all_jobs, jobs, &parent.join("logs"))?;
    let per = s.folds.max(1);
    for (i, p) in points.iter().enumerate() {
        let (jobs_i, outs_i) =
            (&all_jobs[i * per..(i + 1) * per], &outcomes[i * per..(i + 1) * per]);
        let mut r = PointResult {
            index: i + 1,
            run: dirs[i].clone(),
            values: p.clone(),
            score: Score::default(),
            folds: Vec::new(),
            spread: None,
            error: None,
        };
        if s.folds > 0 {
            r.folds = cv::fold_results(jobs_i, outs_i, metric);
            let mut point_setup = s.setup.clone();
            for (k, v) in p {
                point_setup.args.extend(["--set".to_string(), format!("{k}={v}")]);
            }
            let cv_setup = cv::CvSetup { setup: point_setup, folds: s.folds };
            cv::write_point_file(&dirs[i], cv_setup, metric, &r.folds)?;
            let spread = Spread::of(&r.folds);
            r.score.train = spread.train.map(|m| m.0);
            r.score.valid = spread.valid.map(|m| m.0);
            r.score.valid_loss = spread.valid_loss.map(|m| m.0);
            r.error = r.folds.iter().find_map(|f| f.error.clone());
            r.spread = Some(spread);
        } else {
            match outs_i[0].clone().and_then(|()| {
                score::read(&dirs[i], metric, &s.words).map_err(|e| format!("{e:#}"))
            }) {
                Ok(sc) => r.score = sc,
                Err(e) => r.error = Some(e),
            }
        }
        sweep.points.push(r);
    }
    sweep.best = best(&sweep.points, metric);
    crate::run::write_json(&file, &sweep)?;
    println!("\n{}", sweep_table(&sweep.points, &s.grid, metric));
    if let Some(b) = sweep.best {
        let p = &sweep.points[b - 1];
        let config_dir = if s.folds > 0 { p.run.join("fold-1") } else { p.run.clone() };
        let best_file = parent.join(BEST_CONFIG);
        write_best_config(&config_dir, &best_file)?;
        println!(
            "best: {} (valid {}) → {}\n      burnlab train {} --config {}",
            grid::describe(&p.values),
            cell(p.score.valid, 2),
            best_file.display(),
            s.setup.task,
            best_file.display()
        );
    }
    for a in &s.grid {
        let stem = parent.join(format!("sweep-{}", a.key.replace('.', "-")));
        chart(&stem, &sweep.points, &s.grid, a, metric)?;
        println!("chart: {}", stem.with_extension("png").display());
    }
    let failed = sweep.points.iter().filter(|p| p.error.is_some()).count();
    runner::stopped_or_failed(failed, points.len(), "points")?;
    Ok(())
}

/// The best point's index (from 1), by the validation metric.
fn best(points: &[PointResult], metric: Metric) -> Option<usize> {
    points
        .iter()
        .filter(|p| p.error.is_none())
        .filter_map(|p| Some((p.index, p.score.valid?)))
        .reduce(|a, b| if metric.better(b.1, a.1) { b } else { a })
        .map(|b| b.0)
}

/// The table, best point first; failed points last with why.
pub fn sweep_table(points: &[PointResult], grid: &[Axis], metric: Metric) -> String {
    let (train, valid) = metric.headings();
    let words = matches!(metric, Metric::AnalogyAccuracy | Metric::SimilarityRho);
    let rho = words && points.iter().any(|p| p.score.similarity.is_some());
    let folds = points.iter().any(|p| p.spread.is_some());
    let mut header: Vec<String> = vec!["#".into()];
    header.extend(grid.iter().map(|a| a.key.clone()));
    header.extend([train.to_string(), valid.to_string()]);
    if folds {
        header.push("valid std".into());
    }
    if words {
        if rho {
            header.push("similarity ρ".into());
        }
    } else {
        // Train minus validation: large when overfitting, both low when underfitting.
        header.push("gap".into());
        if metric == Metric::Accuracy {
            header.push("valid loss".into());
        }
    }
    header.push("train s".into());
    let mut order: Vec<&PointResult> = points.iter().collect();
    let key = |p: &PointResult| match (&p.error, p.score.valid) {
        (None, Some(v)) => {
            if metric.higher_is_better() {
                -v
            } else {
                v
            }
        }
        _ => f64::INFINITY,
    };
    order.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let rows: Vec<Vec<String>> = order
        .iter()
        .map(|p| {
            let mut r = vec![p.index.to_string()];
            r.extend(p.values.iter().map(|v| v.1.clone()));
            if let Some(e) = &p.error {
                r.push(format!("failed: {e}"));
                return r;
            }
            let digits = match metric {
                Metric::Accuracy | Metric::AnalogyAccuracy => 2,
                Metric::SimilarityRho => 3,
                Metric::Loss => 4,
            };
            r.push(cell(p.score.train, if words { 4 } else { digits }));
            r.push(cell(p.score.valid, digits));
            if folds {
                r.push(cell(p.spread.as_ref().and_then(|s| s.valid).map(|v| v.1), 2));
            }
            if words {
                if rho {
                    r.push(cell(p.score.similarity, 3));
                }
            } else {
                let gap = p.score.train.zip(p.score.valid).map(|(t, v)| t - v);
                r.push(cell(gap, digits));
                if metric == Metric::Accuracy {
                    r.push(cell(p.score.valid_loss, 4));
                }
            }
            let secs: Option<f64> = if p.folds.is_empty() {
                p.score.train_seconds
            } else {
                Some(p.folds.iter().filter_map(|f| f.score.train_seconds).sum())
            };
            r.push(cell(secs, 1));
            r
        })
        .collect();
    super::table(&header, &rows)
}

/// The best run's config as a file for `--config`, without the fold settings.
fn write_best_config(run: &Path, to: &Path) -> Result<()> {
    let path = run.join(crate::run::CONFIG_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    if let Some(d) = table.get_mut("data").and_then(|d| d.as_table_mut()) {
        d.remove("cv_folds");
        d.remove("cv_fold");
    }
    let body = format!(
        "# The best point of a `burnlab sweep` ({}): train it with --config this file.\n{}",
        run.display(),
        toml::to_string_pretty(&table)?
    );
    crate::run::write_atomic(to, body.as_bytes())
}

/// Train and validation metric against the values of `axis`: one colour per combination of the
/// other keys' values (train solid, validation dashed).
fn chart(
    stem: &Path,
    points: &[PointResult],
    grid: &[Axis],
    axis: &Axis,
    metric: Metric,
) -> Result<()> {
    let at = grid.iter().position(|a| a.key == axis.key).unwrap_or(0);
    let mut groups: Vec<(String, Vec<&PointResult>)> = Vec::new();
    for p in points.iter().filter(|p| p.error.is_none()) {
        let others: Vec<(String, String)> = p
            .values
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at)
            .map(|(_, kv)| kv.clone())
            .collect();
        let name = grid::describe(&others);
        match groups.iter_mut().find(|g| g.0 == name) {
            Some(g) => g.1.push(p),
            None => groups.push((name, vec![p])),
        }
    }
    let (train_name, valid_name) = metric.headings();
    let mut series = Vec::new();
    for (c, (name, ps)) in groups.iter().enumerate() {
        let pts = |f: &dyn Fn(&PointResult) -> Option<f64>| -> Vec<(f64, f64)> {
            ps.iter()
                .filter_map(|p| {
                    let x = axis.values.iter().position(|v| *v == p.values[at].1)? as f64;
                    Some((x, f(p)?))
                })
                .collect()
        };
        let label =
            |what: &str| if name.is_empty() { what.to_string() } else { format!("{what}, {name}") };
        // word2vec's training loss is not on the benchmark's scale: its chart is the benchmark's.
        if matches!(metric, Metric::Accuracy | Metric::Loss) {
            series.push(Series {
                label: label("train"),
                color: c,
                dashed: false,
                points: pts(&|p| p.score.train),
            });
        }
        series.push(Series {
            label: label("valid"),
            color: c,
            dashed: true,
            points: pts(&|p| p.score.valid),
        });
    }
    let y = if matches!(metric, Metric::Accuracy | Metric::Loss) {
        format!("{train_name} (solid), {valid_name} (dashed)")
    } else {
        valid_name.to_string()
    };
    plot::category_chart(
        stem,
        &format!("sweep over {}", axis.key),
        &axis.key,
        &y,
        &axis.values,
        &series,
    )
}
