//! `burnlab report RUN…`: pictures of one or several runs and an `index.html` linking them.
//! Curves come from the runs' TensorBoard event files (what `tensorboard` shows); image runs
//! are scored on their test set again for the confusion matrix and the most confidently wrong
//! images; word2vec runs get a 2-D PCA map of their most frequent words.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::cli::ReportArgs;
use crate::insight::plot::{self, Series, Tile};
use crate::insight::runs::{self, RunRow};
use crate::insight::tb::read_scalars;
use crate::insight::tb_logger::TB_DIR;
use crate::run;
use crate::run::record;
use crate::tasks::image::eval::{evaluate, run_test_data};
use crate::tasks::image::model::load_run_model;
use crate::tasks::word2vec::words::{Embedding, pca};

/// A picture of the report: its files (relative to the report folder) and what it shows.
struct Figure {
    title: String,
    png: String,
    svg: Option<String>,
}

type Scalars = std::collections::BTreeMap<String, Vec<(i64, f64)>>;

struct RunData {
    dir: PathBuf,
    /// Label in legends and file names.
    name: String,
    row: RunRow,
    train: Scalars,
    valid: Scalars,
}

/// Order metrics as a reader looks for them: loss, accuracy, then the rest.
fn metric_rank(m: &str) -> (usize, String) {
    let r = match m {
        "loss" => 0,
        "accuracy" => 1,
        "bits_per_char" => 2,
        "perplexity" => 3,
        _ => 4,
    };
    (r, m.to_string())
}

fn pretty(metric: &str) -> String {
    let s = metric.replace('_', " ");
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// Exponential moving average, as TensorBoard's smoothing slider (debiased at the start).
fn smooth(points: &[(i64, f64)], weight: f64) -> Vec<(f64, f64)> {
    let (mut last, mut debias) = (0.0, 0.0);
    points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|&(x, y)| {
            last = last * weight + (1.0 - weight) * y;
            debias = debias * weight + (1.0 - weight);
            (x as f64, last / debias)
        })
        .collect()
}

fn default_out(runs: &[PathBuf]) -> PathBuf {
    if runs.len() == 1 {
        return runs[0].join("report");
    }
    let names: Vec<String> = runs
        .iter()
        .filter_map(|r| r.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let mut name = format!("report-{}", names.join("-vs-"));
    name.truncate(100);
    runs[0].parent().unwrap_or(Path::new(".")).join(name)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn report_command(mut args: ReportArgs) -> Result<()> {
    // A cross-validation's parent folder stands for its folds, with their spread drawn.
    let mut cv_parent = None;
    if let [one] = args.runs.as_slice()
        && !runs::is_run(one)
        && let Some(folds) = crate::compare::cv::fold_dirs(one)
    {
        cv_parent = Some(one.clone());
        args.out = args.out.take().or_else(|| Some(one.join("report")));
        args.runs = folds;
    } else if let [one] = args.runs.as_slice()
        && one.join(crate::compare::sweep::SWEEP_FILE).is_file()
    {
        // A sweep's parent: its points' runs side by side.
        let mut points: Vec<PathBuf> = std::fs::read_dir(one)
            .with_context(|| format!("listing {}", one.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| runs::is_run(p))
            .collect();
        points.sort();
        if points.is_empty() {
            bail!(
                "{} is a sweep with no finished point runs yet (with --folds, report one point's folder)",
                one.display()
            );
        }
        args.out = args.out.take().or_else(|| Some(one.join("report")));
        args.runs = points;
    }
    for r in &args.runs {
        if !runs::is_run(r) {
            bail!(
                "{} is not a burnlab run folder (no run.json, charlm.json or word2vec.json)",
                r.display()
            );
        }
    }
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.runs));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let data = load_runs(&args.runs)?;
    let mut figures = epoch_curves(&data, &out)?;
    figures.extend(step_loss_curve(&data, &out)?);
    figures.extend(lr_curve(&data, &out)?);
    if cv_parent.is_some() {
        figures.extend(fold_spread(&data, &out)?);
    }

    let mut notes = Vec::new();
    for d in &data {
        match d.row.task.as_str() {
            // Cross-validation folds leave the test split alone.
            "cnn" | "mlp" if cv_parent.is_some() => {}
            "cnn" | "mlp" => match image_figures(d, &args, &out) {
                Ok(f) => figures.extend(f),
                Err(e) => notes.push(format!("{}: no test-set pictures: {e:#}", d.name)),
            },
            "word2vec" => match word_map(d, args.words, &out) {
                Ok(f) => figures.push(f),
                Err(e) => notes.push(format!("{}: no word map: {e:#}", d.name)),
            },
            _ => {}
        }
    }
    for n in &notes {
        println!("{n}");
    }

    let index = out.join("index.html");
    run::write_atomic(&index, html(&data, &figures, &notes).as_bytes())?;
    for f in &figures {
        println!("{}", out.join(&f.png).display());
    }
    println!("report: {}", index.display());
    Ok(())
}

/// Each run's row and TensorBoard scalars, labelled by folder name (numbered where two match).
fn load_runs(dirs: &[PathBuf]) -> Result<Vec<RunData>> {
    let mut data = Vec::new();
    for dir in dirs {
        let mut name =
            dir.file_name().map_or_else(|| "run".to_string(), |n| n.to_string_lossy().into_owned());
        // Two runs with the same folder name (from different parents) get numbered labels.
        let mut k = 2;
        while data.iter().any(|d: &RunData| d.name == name) {
            name = format!("{}-{k}", name.trim_end_matches(char::is_numeric).trim_end_matches('-'));
            k += 1;
        }
        let tb = dir.join(TB_DIR);
        if !tb.is_dir() {
            println!(
                "{}: no TensorBoard logs ({} is missing), so no curves for it",
                dir.display(),
                tb.display()
            );
        }
        let read = |split: &str| {
            read_scalars(&tb.join(split))
                .with_context(|| format!("reading the TensorBoard logs of {}", dir.display()))
        };
        data.push(RunData {
            dir: dir.clone(),
            name,
            row: runs::summarize(dir),
            train: read("train")?,
            valid: read("valid")?,
        });
    }
    Ok(data)
}

/// A chart as `stem`.png and .svg in `out`, and its figure.
fn chart(
    out: &Path,
    stem: &str,
    titles: [&str; 2],
    x: &str,
    y: &str,
    s: &[Series],
) -> Result<Figure> {
    plot::line_chart(&out.join(stem), titles[0], x, y, s)?;
    Ok(Figure {
        title: titles[1].into(),
        png: format!("{stem}.png"),
        svg: Some(format!("{stem}.svg")),
    })
}

/// Per-epoch curves of every metric, train solid and valid dashed, one colour per run.
fn epoch_curves(data: &[RunData], out: &Path) -> Result<Vec<Figure>> {
    let single = data.len() == 1;
    let mut metrics: Vec<String> = data
        .iter()
        .flat_map(|d| d.train.keys().chain(d.valid.keys()))
        .filter_map(|t| t.strip_prefix("epoch/"))
        .filter(|m| !matches!(*m, "learning_rate" | "throughput"))
        .map(String::from)
        .collect();
    metrics.sort_by_key(|m| metric_rank(m));
    metrics.dedup();
    let mut figures = Vec::new();
    for m in &metrics {
        let mut series = Vec::new();
        for (i, d) in data.iter().enumerate() {
            for (split, scalars, dashed) in [("train", &d.train, false), ("valid", &d.valid, true)]
            {
                if let Some(points) = scalars.get(&format!("epoch/{m}")) {
                    let label =
                        if single { split.to_string() } else { format!("{} {split}", d.name) };
                    series.push(Series {
                        label,
                        color: i,
                        dashed,
                        points: points.iter().map(|&(x, y)| (x as f64, y)).collect(),
                    });
                }
            }
        }
        let titles = [
            &format!("{} per epoch", pretty(m)),
            &format!("{} per epoch (train solid, valid dashed)", pretty(m)),
        ];
        figures.push(chart(
            out,
            &format!("curve-{m}"),
            titles.map(|t| t.as_str()),
            "epoch",
            &pretty(m),
            &series,
        )?);
    }
    Ok(figures)
}

/// The folds' validation accuracy per epoch: their mean, and mean ± one (sample) standard
/// deviation dashed, with each fold faint behind.
fn fold_spread(data: &[RunData], out: &Path) -> Result<Option<Figure>> {
    let metric = "epoch/accuracy";
    let mut by_epoch: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
    for d in data {
        for &(e, v) in d.valid.get(metric).map_or(&[][..], |v| v.as_slice()) {
            by_epoch.entry(e).or_default().push(v);
        }
    }
    if by_epoch.is_empty() {
        return Ok(None);
    }
    let stats: Vec<(f64, f64, f64)> = by_epoch
        .iter()
        .filter_map(|(&e, v)| {
            let (m, s) = crate::compare::score::mean_std(v.iter().map(|&x| Some(x)))?;
            Some((e as f64, m, s))
        })
        .collect();
    let series = vec![
        Series {
            label: "mean".into(),
            color: 0,
            dashed: false,
            points: stats.iter().map(|s| (s.0, s.1)).collect(),
        },
        Series {
            label: "mean + std".into(),
            color: 1,
            dashed: true,
            points: stats.iter().map(|s| (s.0, s.1 + s.2)).collect(),
        },
        Series {
            label: "mean − std".into(),
            color: 1,
            dashed: true,
            points: stats.iter().map(|s| (s.0, s.1 - s.2)).collect(),
        },
    ];
    let title = format!("Validation accuracy over {} folds", data.len());
    Ok(Some(chart(
        out,
        "cv-spread",
        [&title, &format!("{title}: mean ± standard deviation")],
        "epoch",
        "accuracy %",
        &series,
    )?))
}

/// One series per run of the training scalar `tag` (mapped by `points`), labelled `solo` when
/// there is one run.
fn train_series(
    data: &[RunData],
    tag: &str,
    solo: &str,
    points: impl Fn(&[(i64, f64)]) -> Vec<(f64, f64)>,
) -> Vec<Series> {
    let single = data.len() == 1;
    data.iter()
        .enumerate()
        .filter_map(|(i, d)| {
            d.train.get(tag).map(|p| Series {
                label: if single { solo.into() } else { d.name.clone() },
                color: i,
                dashed: false,
                points: points(p),
            })
        })
        .collect()
}

/// Training loss per step, smoothed as TensorBoard does.
fn step_loss_curve(data: &[RunData], out: &Path) -> Result<Option<Figure>> {
    let series = train_series(data, "step/loss", "train", |p| smooth(p, 0.9));
    if series.is_empty() {
        return Ok(None);
    }
    let x = match data.iter().filter(|d| d.row.task == "word2vec").count() {
        0 => "training step",
        n if n == data.len() => "words processed",
        _ => "training step (words processed for word2vec)",
    };
    let titles = [
        "Training loss per step (smoothed, EMA 0.9)",
        "Training loss per step (exponential moving average 0.9)",
    ];
    chart(out, "curve-step-loss", titles, x, "Loss", &series).map(Some)
}

/// Learning-rate schedules.
fn lr_curve(data: &[RunData], out: &Path) -> Result<Option<Figure>> {
    let series = train_series(data, "step/learning_rate", "", |p| {
        p.iter().map(|&(x, y)| (x as f64, y)).collect()
    });
    if series.is_empty() {
        return Ok(None);
    }
    let x = if data.iter().all(|d| d.row.task == "word2vec") {
        "words processed"
    } else {
        "training step"
    };
    let titles = ["Learning rate", "Learning-rate schedule"];
    chart(out, "lr-schedule", titles, x, "learning rate", &series).map(Some)
}

/// Confusion matrix and most confidently wrong test images of a finished image run.
fn image_figures(d: &RunData, args: &ReportArgs, out: &Path) -> Result<Vec<Figure>> {
    let record = record::read(&d.dir)?;
    let meta = record.image(&d.dir)?;
    let device = args.backend.device()?;
    let model = load_run_model(&d.dir, &record, &device)?;
    let (test, split, _) = run_test_data(&d.dir, meta, &args.data)?;
    let test = Arc::new(test);
    let report = evaluate(&model, &test, &meta.normalization, &device, 256, false);
    let mut figs = Vec::new();

    let png = format!("{}-confusion.png", d.name);
    let title = format!("{}: {split} accuracy {:.2}%", record.model, 100.0 * report.accuracy);
    plot::confusion_picture(&out.join(&png), &meta.classes, &report.confusion, &title, true)?;
    let svg = Some(format!("{}-confusion.svg", d.name));
    figs.push(Figure {
        title: format!(
            "{}: confusion matrix on {} test images (rows: true class)",
            d.name, report.images
        ),
        png,
        svg,
    });

    let mut wrong: Vec<(usize, usize, f32)> = report
        .predictions
        .iter()
        .enumerate()
        .filter(|(i, (p, _))| *p != test.labels[*i] as usize)
        .map(|(i, &(p, c))| (i, p, c))
        .collect();
    wrong.sort_by(|a, b| b.2.total_cmp(&a.2));
    wrong.truncate(args.mistakes);
    let tiles: Vec<Tile> = wrong
        .iter()
        .map(|&(i, p, c)| Tile {
            chw: test.image(i),
            channels: test.channels,
            height: test.height,
            width: test.width,
            caption: format!(
                "{} {:.0}%\ntrue: {}",
                meta.classes[p],
                100.0 * c,
                meta.classes[test.labels[i] as usize]
            ),
            correct: false,
        })
        .collect();
    if !tiles.is_empty() {
        let img = plot::image_grid(
            &tiles,
            8,
            3,
            &format!("{}: the {} most confidently wrong test images", d.name, tiles.len()),
        )?;
        let png = format!("{}-mistakes.png", d.name);
        img.save(out.join(&png))
            .with_context(|| format!("writing {}", out.join(&png).display()))?;
        figs.push(Figure {
            title: format!(
                "{}: most confidently wrong test images (prediction, its probability, true class)",
                d.name
            ),
            png,
            svg: None,
        });
    }
    Ok(figs)
}

/// 2-D PCA map of the `n` most frequent words (the vocabulary is stored by frequency).
fn word_map(d: &RunData, n: usize, out: &Path) -> Result<Figure> {
    let e = Embedding::load(&d.dir)?;
    let n = n.min(e.words.len());
    let rows: Vec<f32> = (0..n).flat_map(|i| e.unit_row(i).to_vec()).collect();
    let proj = pca(&rows, e.dim(), 2);
    let points: Vec<(String, f64, f64)> =
        proj.iter().enumerate().map(|(i, p)| (e.words[i].clone(), p[0], p[1])).collect();
    let stem = format!("{}-word-map", d.name);
    plot::word_map(
        &out.join(&stem),
        &format!("{}: the {n} most frequent words, PCA of unit vectors", d.name),
        &points,
    )?;
    Ok(Figure {
        title: format!("{}: 2-D PCA map of the {n} most frequent words", d.name),
        png: format!("{stem}.png"),
        svg: Some(format!("{stem}.svg")),
    })
}

fn html(data: &[RunData], figures: &[Figure], notes: &[String]) -> String {
    let mut h = String::new();
    let names: Vec<String> = data.iter().map(|d| html_escape(&d.name)).collect();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>burnlab report: {}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em; max-width: 1000px; }}\n\
         table {{ border-collapse: collapse; margin-bottom: 1.5em; }}\n\
         td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}\n\
         figure {{ margin: 0 0 2em 0; }}\n img {{ max-width: 100%; border: 1px solid #eee; }}\n</style>\n</head>\n<body>\n<h1>burnlab report</h1>\n",
        names.join(", ")
    );
    h.push_str("<table>\n<tr>");
    for c in runs::HEADER {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr>\n");
    for d in data {
        h.push_str("<tr>");
        for c in runs::cells(&d.row) {
            let _ = write!(h, "<td>{}</td>", html_escape(&c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    for d in data {
        let _ = writeln!(
            h,
            "<p>{}: <code>{}</code></p>",
            html_escape(&d.name),
            html_escape(&d.dir.display().to_string())
        );
    }
    for n in notes {
        let _ = writeln!(h, "<p><em>{}</em></p>", html_escape(n));
    }
    for f in figures {
        let svg = f
            .svg
            .as_ref()
            .map(|s| format!(" (<a href=\"{}\">SVG</a>)", html_escape(s)))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<figure>\n<a href=\"{png}\"><img src=\"{png}\" alt=\"{title}\"></a>\n<figcaption>{title}{svg}</figcaption>\n</figure>",
            png = html_escape(&f.png),
            title = html_escape(&f.title)
        );
    }
    h.push_str("<p>Live curves: <code>tensorboard --logdir runs</code></p>\n</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_is_debiased_ema() {
        let s = smooth(&[(1, 1.0), (2, 3.0), (3, f64::NAN), (4, 3.0)], 0.5);
        // First point is itself; second (0.25·1 + 0.5·3)/0.75.
        assert_eq!(s[0], (1.0, 1.0));
        assert!((s[1].1 - (0.25 + 1.5) / 0.75).abs() < 1e-12);
        assert_eq!(s.len(), 3, "NaN skipped");
    }

    #[test]
    fn html_escapes_names() {
        assert_eq!(html_escape("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
        assert_eq!(pretty("bits_per_char"), "Bits per char");
        let mut m = vec!["perplexity".to_string(), "accuracy".into(), "zeta".into(), "loss".into()];
        m.sort_by_key(|m| metric_rank(m));
        assert_eq!(m, ["loss", "accuracy", "perplexity", "zeta"]);
    }
}
