//! `burnlab playground`: ConvNetJS's and TensorFlow Playground's 2-D classification demo. A
//! small data set in the plane, a model from one neuron (logistic regression, the perceptron)
//! up to a few hidden layers, trained full-batch; pictures of the decision regions as it learns,
//! the loss curve, and `--compare` panels (one neuron, one straight cut; λ smooths the boundary).

pub mod net;
pub mod render;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burnlab_data::points::{self, Points, Shape};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::cli::PlaygroundArgs;
use crate::insight::plot::{Series, line_chart};
use net::{Activation, Net, Optimizer, Output};
use render::{View, panel, tile};

/// The model families of `--model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// One linear unit, sigmoid, binary cross-entropy.
    Logistic,
    /// One linear unit trained by the perceptron rule.
    Perceptron,
    /// Hidden layers (`--hidden`), softmax output.
    Mlp,
}

/// Input features TensorFlow Playground offers.
pub const FEATURES: [&str; 7] = ["x", "y", "x2", "y2", "xy", "sinx", "siny"];

/// Everything one training depends on (what `--compare` varies).
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub model: ModelKind,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub l2: f64,
    pub dropout: f64,
    pub features: Vec<String>,
    pub lr: f64,
    pub epochs: usize,
    pub sgd: bool,
    pub seed: u64,
}

impl Settings {
    fn check(&self, classes: usize) -> Result<()> {
        if self.model != ModelKind::Mlp && classes != 2 {
            bail!(
                "--model {:?} is a single unit for 2 classes; the data has {classes} (use --model mlp)",
                self.model
            );
        }
        if let Some(f) = self.features.iter().find(|f| !FEATURES.contains(&f.as_str())) {
            bail!("unknown feature {f:?}: expected some of {}", FEATURES.join(","));
        }
        if self.features.is_empty() {
            bail!("--features needs at least one of {}", FEATURES.join(","));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be above 0, got {}", self.lr);
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            bail!("--l2 must be 0 or more, got {}", self.l2);
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("--dropout must be in [0, 1), got {}", self.dropout);
        }
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.hidden.contains(&0) {
            bail!("--hidden widths must be at least 1 (leave it empty for no hidden layer)");
        }
        Ok(())
    }

    fn output(&self) -> Output {
        match self.model {
            ModelKind::Logistic => Output::Logistic,
            ModelKind::Perceptron => Output::Perceptron,
            ModelKind::Mlp => Output::Softmax,
        }
    }

    fn hidden(&self) -> &[usize] {
        if self.model == ModelKind::Mlp { &self.hidden } else { &[] }
    }

    /// `mlp 2-8-8-3 tanh` / `logistic 2-1`.
    pub fn describe(&self, classes: usize) -> String {
        let mut widths = vec![self.features.len()];
        widths.extend_from_slice(self.hidden());
        widths.push(if self.output() == Output::Softmax { classes } else { 1 });
        let w: Vec<String> = widths.iter().map(|w| w.to_string()).collect();
        let act = if self.hidden().is_empty() {
            String::new()
        } else {
            format!(" {:?}", self.activation).to_lowercase()
        };
        format!("{:?} {}{act}", self.model, w.join("-")).to_lowercase()
    }

    /// The feature rows of `xy`.
    pub fn features(&self, xy: &[[f64; 2]]) -> Vec<f64> {
        let mut out = Vec::with_capacity(xy.len() * self.features.len());
        for p in xy {
            let (x, y) = (p[0], p[1]);
            for f in &self.features {
                out.push(match f.as_str() {
                    "x" => x,
                    "y" => y,
                    "x2" => x * x,
                    "y2" => y * y,
                    "xy" => x * y,
                    "sinx" => x.sin(),
                    _ => y.sin(),
                });
            }
        }
        out
    }
}

/// One epoch's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Epoch {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_loss: f64,
    pub train_acc: f64,
    pub valid_acc: f64,
}

/// A trained net and how it got there.
pub struct Trained {
    pub net: Net,
    pub history: Vec<Epoch>,
    /// Seconds of training (pictures not counted).
    pub seconds: f64,
    /// The trained net's own scores (no dropout): (loss without the penalty, accuracy %).
    pub train: (f64, f64),
    pub valid: (f64, f64),
}

fn accuracy(net: &Net, f: &[f64], labels: &[u32]) -> (f64, f64) {
    if labels.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let pass = net.forward(f, labels.len(), None);
    let logits = Net::logits(&pass);
    let pred = net.predict(logits, labels.len());
    let right = pred.iter().zip(labels).filter(|(a, b)| a == b).count();
    (net.loss(logits, labels, 0.0), 100.0 * right as f64 / labels.len() as f64)
}

/// Trains full-batch for `s.epochs`, calling `snapshot(epoch, net)` after every `every` epochs
/// (and before the first).
pub fn train(
    s: &Settings,
    train_set: &Points,
    valid_set: &Points,
    every: usize,
    mut snapshot: impl FnMut(usize, &Net) -> Result<()>,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Trained> {
    let classes = train_set.classes.len();
    s.check(classes)?;
    let (tf, vf) = (s.features(&train_set.xy), s.features(&valid_set.xy));
    let mut net = Net::new(s.features.len(), s.hidden(), classes, s.activation, s.output(), s.seed);
    let lr = s.lr;
    let mut opt = Optimizer::new(&net, !s.sgd, lr);
    let mut rng = StdRng::seed_from_u64(s.seed ^ 0x5eed);
    let mut history = Vec::with_capacity(s.epochs);
    let mut seconds = 0.0;
    snapshot(0, &net)?;
    for epoch in 1..=s.epochs {
        let t = Instant::now();
        let drop = (s.dropout > 0.0).then_some((s.dropout, &mut rng));
        let pass = net.forward(&tf, train_set.len(), drop);
        // The training numbers are those of the pass the step is taken from (as a training
        // loop reports them: before the step, with dropout if any), costing no second pass.
        let logits = Net::logits(&pass);
        let train_loss = net.loss(logits, &train_set.labels, 0.0);
        let pred = net.predict(logits, train_set.len());
        let right = pred.iter().zip(&train_set.labels).filter(|(a, b)| a == b).count();
        let train_acc = 100.0 * right as f64 / train_set.len().max(1) as f64;
        let grads = net.backward(&pass, &train_set.labels, s.l2);
        opt.step(&mut net, &grads);
        let (valid_loss, valid_acc) = accuracy(&net, &vf, &valid_set.labels);
        seconds += t.elapsed().as_secs_f64();
        history.push(Epoch { epoch, train_loss, valid_loss, train_acc, valid_acc });
        if epoch % every == 0 || epoch == s.epochs {
            snapshot(epoch, &net)?;
        }
        if let Some(p) = progress
            && epoch % 10 == 0
        {
            p.set_position(epoch as u64);
        }
    }
    let train = accuracy(&net, &tf, &train_set.labels);
    let valid = accuracy(&net, &vf, &valid_set.labels);
    Ok(Trained { net, history, seconds, train, valid })
}

/// The data: a generated shape or a CSV file.
fn load_points(args: &PlaygroundArgs) -> Result<(Points, String)> {
    let path = Path::new(&args.data);
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) || path.is_file() {
        let p = points::read_csv(path)?;
        let name = path.file_stem().map_or("csv".into(), |s| s.to_string_lossy().into_owned());
        return Ok((p, name));
    }
    let shape: Shape = args.data.parse()?;
    let classes = args.classes.unwrap_or(shape.default_classes());
    Ok((points::generate(shape, args.points, classes, args.noise, args.seed)?, args.data.clone()))
}

/// `4x8` → [4, 8]; `` / `0` / `none` → [].
fn parse_hidden(v: &str) -> Result<Vec<usize>> {
    let v = v.trim();
    if v.is_empty() || v == "0" || v == "none" || v == "[]" {
        return Ok(Vec::new());
    }
    v.trim_matches(|c| c == '[' || c == ']')
        .split(['x', ',', ' '])
        .filter(|s| !s.is_empty())
        .map(|w| w.parse::<usize>().with_context(|| format!("hidden width {w:?} is not a number")))
        .collect()
}

fn settings(args: &PlaygroundArgs) -> Result<Settings> {
    Ok(Settings {
        model: args.model,
        hidden: parse_hidden(&args.hidden)?,
        activation: args.activation,
        l2: args.l2,
        dropout: args.dropout,
        features: args
            .features
            .split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect(),
        lr: args.lr,
        epochs: args.epochs,
        sgd: args.sgd,
        seed: args.seed,
    })
}

/// `--compare KEY=V1,V2,…`: the settings for each value.
fn compare_settings(base: &Settings, spec: &str) -> Result<(String, Vec<(String, Settings)>)> {
    let Some((key, values)) = spec.split_once('=') else {
        bail!("--compare {spec}: expected KEY=V1,V2,… (e.g. hidden=1,2,4,16 or l2=0,1e-3,1e-2)");
    };
    let key = key.trim();
    let mut out = Vec::new();
    for v in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let mut s = base.clone();
        let num =
            || v.parse::<f64>().with_context(|| format!("--compare {key}: {v:?} is not a number"));
        match key {
            "hidden" => s.hidden = parse_hidden(v)?,
            "l2" => s.l2 = num()?,
            "dropout" => s.dropout = num()?,
            "lr" => s.lr = num()?,
            "epochs" => s.epochs = num()? as usize,
            "activation" => {
                s.activation = clap::ValueEnum::from_str(v, true).map_err(|_| {
                    anyhow::anyhow!(
                        "--compare activation: {v:?} is not tanh, relu, sigmoid or linear"
                    )
                })?
            }
            "model" => {
                s.model = clap::ValueEnum::from_str(v, true).map_err(|_| {
                    anyhow::anyhow!("--compare model: {v:?} is not logistic, perceptron or mlp")
                })?
            }
            "features" => s.features = v.split('+').map(str::to_string).collect(),
            _ => bail!(
                "--compare {key}: can compare hidden, l2, dropout, lr, epochs, activation, model or features"
            ),
        }
        out.push((v.to_string(), s));
    }
    if out.is_empty() {
        bail!("--compare {key}: no values");
    }
    Ok((key.to_string(), out))
}

#[derive(Serialize)]
struct Summary<'a> {
    data: &'a str,
    points: usize,
    train_points: usize,
    valid_points: usize,
    classes: usize,
    settings: &'a Settings,
    train_accuracy: f64,
    valid_accuracy: f64,
    train_loss: f64,
    weight_norm: f64,
    train_seconds: f64,
}

fn save_png(img: &image::RgbImage, path: &Path) -> Result<()> {
    crate::run::write_atomic(path, &crate::insight::plot::png_bytes(img)?)
}

fn pct(v: f64) -> String {
    if v.is_nan() { "-".into() } else { format!("{v:.1}%") }
}

pub fn playground_command(args: PlaygroundArgs) -> Result<()> {
    let (data, name) = load_points(&args)?;
    let base = settings(&args)?;
    base.check(data.classes.len())?;
    let (train_set, valid_set) = data.split(args.valid, args.seed);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("playground-{name}")));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let view = View::around(&data.xy);
    let size = args.size;
    let pts = [
        (train_set.xy.as_slice(), train_set.labels.as_slice()),
        (valid_set.xy.as_slice(), valid_set.labels.as_slice()),
    ];
    let classes = data.classes.len();
    println!(
        "{name}: {} points ({} train / {} valid), {classes} classes",
        data.len(),
        train_set.len(),
        valid_set.len()
    );

    if let Some(spec) = &args.compare {
        let (key, runs) = compare_settings(&base, spec)?;
        let mut panels = Vec::new();
        let mut rows = Vec::new();
        for (v, s) in &runs {
            s.check(classes)?;
            let t = train(s, &train_set, &valid_set, usize::MAX, |_, _| Ok(()), None)?;
            let caption = format!("{key}={v}: train {} valid {}", pct(t.train.1), pct(t.valid.1));
            panels.push(panel(&t.net, &|xy| s.features(xy), view, size, pts, &caption)?);
            println!(
                "{key}={v:<8} {:<22} train {:>6}  valid {:>6}  loss {:.4}  ‖W‖² {:.3}  {:.3}s",
                s.describe(classes),
                pct(t.train.1),
                pct(t.valid.1),
                t.train.0,
                t.net.weight_norm_sq(),
                t.seconds
            );
            rows.push((v.clone(), t.train.1, t.valid.1, t.net.weight_norm_sq()));
        }
        let file = out.join(format!("compare-{key}.png"));
        save_png(&tile(&panels, 4), &file)?;
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::json!({key.as_str(): r.0, "train_accuracy": r.1, "valid_accuracy": r.2, "weight_norm": r.3}))
            .collect();
        crate::run::write_json(&out.join(format!("compare-{key}.json")), &json)?;
        println!("picture: {}", file.display());
        return Ok(());
    }

    let every = args.snapshot_every.unwrap_or((base.epochs / 10).max(1)).max(1);
    let frames_dir = out.join("frames");
    std::fs::create_dir_all(&frames_dir)?;
    let mut frames = Vec::new();
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(base.epochs as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let t = train(
        &base,
        &train_set,
        &valid_set,
        every,
        |epoch, net| {
            let (_, tr) = accuracy(net, &base.features(&train_set.xy), &train_set.labels);
            let (_, va) = accuracy(net, &base.features(&valid_set.xy), &valid_set.labels);
            let caption = format!("epoch {epoch}: train {} valid {}", pct(tr), pct(va));
            let img = panel(net, &|xy| base.features(xy), view, size, pts, &caption)?;
            save_png(&img, &frames_dir.join(format!("epoch-{epoch:05}.png")))?;
            frames.push(img);
            Ok(())
        },
        Some(&bar),
    )?;
    bar.finish_and_clear();
    let final_caption =
        format!("{}: train {} valid {}", base.describe(classes), pct(t.train.1), pct(t.valid.1));
    let regions = panel(&t.net, &|xy| base.features(xy), view, size, pts, &final_caption)?;
    save_png(&regions, &out.join("regions.png"))?;
    // The strip: at most 10 frames, evenly picked, at half size.
    let pick: Vec<usize> = if frames.len() <= 10 {
        (0..frames.len()).collect()
    } else {
        (0..10).map(|i| i * (frames.len() - 1) / 9).collect()
    };
    let small: Vec<image::RgbImage> = pick
        .iter()
        .map(|&i| {
            let f = &frames[i];
            image::imageops::resize(
                f,
                f.width() / 2,
                f.height() / 2,
                image::imageops::FilterType::Triangle,
            )
        })
        .collect();
    save_png(&tile(&small, 5), &out.join("training.png"))?;
    let curve = |f: &dyn Fn(&Epoch) -> f64| {
        t.history.iter().map(|e| (e.epoch as f64, f(e))).collect::<Vec<_>>()
    };
    line_chart(
        &out.join("loss"),
        &format!("{name}: {}", base.describe(classes)),
        "epoch",
        "loss",
        &[
            Series {
                label: "train".into(),
                color: 0,
                dashed: false,
                points: curve(&|e| e.train_loss),
            },
            Series {
                label: "valid".into(),
                color: 0,
                dashed: true,
                points: curve(&|e| e.valid_loss),
            },
        ],
    )?;
    let summary = Summary {
        data: &name,
        points: data.len(),
        train_points: train_set.len(),
        valid_points: valid_set.len(),
        classes,
        settings: &base,
        train_accuracy: t.train.1,
        valid_accuracy: t.valid.1,
        train_loss: t.train.0,
        weight_norm: t.net.weight_norm_sq(),
        train_seconds: t.seconds,
    };
    crate::run::write_json(&out.join("playground.json"), &summary)?;
    println!(
        "{} ({}, lr {}), {} epochs in {:.3}s: train accuracy {}, valid {}, loss {:.4}",
        base.describe(classes),
        if base.sgd { "sgd + momentum" } else { "adam" },
        base.lr,
        base.epochs,
        t.seconds,
        pct(t.train.1),
        pct(t.valid.1),
        t.train.0
    );
    println!(
        "pictures: {} (final), {} (every {every} epochs), {}, frames in {}",
        out.join("regions.png").display(),
        out.join("training.png").display(),
        out.join("loss.png").display(),
        frames_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(model: ModelKind, hidden: &[usize], l2: f64) -> Settings {
        Settings {
            model,
            hidden: hidden.to_vec(),
            activation: Activation::Tanh,
            l2,
            dropout: 0.0,
            features: vec!["x".into(), "y".into()],
            lr: 0.03,
            epochs: 1000,
            sgd: false,
            seed: 0,
        }
    }

    fn fit(shape: Shape, classes: usize, s: &Settings) -> Trained {
        let data = points::generate(shape, 500, classes, 0.1, 0).expect("data");
        let (t, v) = data.split(0.2, 0);
        train(s, &t, &v, usize::MAX, |_, _| Ok(()), None).expect("train")
    }

    #[test]
    fn logistic_regression_separates_far_apart_blobs() {
        let t = fit(Shape::Blobs, 2, &settings(ModelKind::Logistic, &[], 0.0));
        assert_eq!((t.train.1, t.valid.1), (100.0, 100.0));
        let t = fit(Shape::Blobs, 2, &settings(ModelKind::Perceptron, &[], 0.0));
        assert_eq!((t.train.1, t.valid.1), (100.0, 100.0));
    }

    #[test]
    fn one_neuron_cannot_fit_circles_and_sixteen_can() {
        let one = fit(Shape::Circles, 2, &settings(ModelKind::Mlp, &[1], 0.0));
        assert!(one.train.1 < 80.0 && one.valid.1 < 80.0, "{:?} {:?}", one.train, one.valid);
        let many = fit(Shape::Circles, 2, &settings(ModelKind::Mlp, &[16], 0.0));
        assert!(many.train.1 > 95.0 && many.valid.1 > 95.0, "{:?} {:?}", many.train, many.valid);
    }

    #[test]
    fn sixteen_units_fit_xor() {
        let t = fit(Shape::Xor, 2, &settings(ModelKind::Mlp, &[16], 0.0));
        assert!(t.train.1 > 95.0 && t.valid.1 > 95.0, "{:?} {:?}", t.train, t.valid);
    }

    #[test]
    fn a_larger_l2_gives_a_smaller_weight_norm() {
        let norms: Vec<f64> = [0.0, 1e-3, 1e-2, 1e-1]
            .iter()
            .map(|&l2| {
                fit(Shape::Moons, 2, &settings(ModelKind::Mlp, &[16], l2)).net.weight_norm_sq()
            })
            .collect();
        assert!(norms.windows(2).all(|w| w[1] < w[0]), "{norms:?}");
    }

    #[test]
    fn pictures_have_their_size_and_the_same_seed_the_same_bytes() {
        let s = settings(ModelKind::Mlp, &[4], 0.0);
        let data = points::generate(Shape::Moons, 100, 2, 0.1, 0).expect("data");
        let (t, v) = data.split(0.2, 0);
        let png = || {
            let trained = train(
                &Settings { epochs: 50, ..s.clone() },
                &t,
                &v,
                usize::MAX,
                |_, _| Ok(()),
                None,
            )
            .expect("train");
            let pts =
                [(t.xy.as_slice(), t.labels.as_slice()), (v.xy.as_slice(), v.labels.as_slice())];
            let img =
                panel(&trained.net, &|xy| s.features(xy), View::around(&data.xy), 120, pts, "test")
                    .expect("panel");
            crate::insight::plot::png_bytes(&img).expect("png")
        };
        let bytes = png();
        let decoded = image::load_from_memory(&bytes).expect("decode");
        assert_eq!((decoded.width(), decoded.height()), (120, 120 + 26));
        assert_eq!(png(), bytes, "same seed, same picture");
    }

    #[test]
    fn features_and_settings_are_checked() {
        let s = Settings {
            features: vec!["x".into(), "xy".into(), "sinx".into()],
            ..settings(ModelKind::Mlp, &[], 0.0)
        };
        assert_eq!(s.features(&[[2.0, 3.0]]), vec![2.0, 6.0, 2f64.sin()]);
        let bad = Settings { features: vec!["z".into()], ..s.clone() };
        assert!(bad.check(2).is_err());
        assert!(settings(ModelKind::Logistic, &[], 0.0).check(3).is_err());
        assert!(Settings { dropout: 1.0, ..s.clone() }.check(2).is_err());
        assert_eq!(parse_hidden("8x4").expect("h"), vec![8, 4]);
        assert_eq!(parse_hidden("0").expect("h"), Vec::<usize>::new());
        let (key, runs) = compare_settings(&s, "l2=0,1e-2").expect("compare");
        assert_eq!((key.as_str(), runs.len(), runs[1].1.l2), ("l2", 2, 1e-2));
        assert!(compare_settings(&s, "width=1,2").is_err());
    }
}
