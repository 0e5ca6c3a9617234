//! Small 2-D classification data sets for the playground (ConvNetJS's and TensorFlow
//! Playground's, with scikit-learn's `make_moons` / `make_circles` / `make_blobs` shapes), and
//! `x,y,label` CSV files.

use std::path::Path;
use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{DataError, Result};

/// Labelled points in the plane.
#[derive(Clone, Debug, PartialEq)]
pub struct Points {
    pub xy: Vec<[f64; 2]>,
    pub labels: Vec<u32>,
    pub classes: Vec<String>,
}

impl Points {
    pub fn len(&self) -> usize {
        self.xy.len()
    }

    pub fn is_empty(&self) -> bool {
        self.xy.is_empty()
    }

    /// The points at `indices`.
    pub fn subset(&self, indices: &[usize]) -> Points {
        Points {
            xy: indices.iter().map(|&i| self.xy[i]).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
        }
    }

    /// A seeded stratified split: (train, validation) with `fraction` of each class held out.
    pub fn split(&self, fraction: f64, seed: u64) -> (Points, Points) {
        let k = (1.0 / fraction.clamp(1e-9, 1.0)).round().max(1.0) as usize;
        if fraction <= 0.0 || k < 2 {
            return (self.clone(), self.subset(&[]));
        }
        // One fold of a stratified k-fold deal is the held-out part.
        let fold_of = crate::folds::stratified_folds(&self.labels, k, seed);
        let (valid, train): (Vec<usize>, Vec<usize>) =
            (0..self.len()).partition(|&i| fold_of[i] == 0);
        (self.subset(&train), self.subset(&valid))
    }
}

/// The generated data sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Interleaved spiral arms, one per class (CS231n's and ConvNetJS's).
    Spiral,
    /// Two interleaving half circles (`make_moons`).
    Moons,
    /// A small circle inside a large one (`make_circles`, factor 0.5).
    Circles,
    /// The four quadrants, diagonal ones alike (TensorFlow Playground's XOR).
    Xor,
    /// Gaussian blobs, centres evenly on a circle of radius 3.
    Blobs,
}

impl Shape {
    pub const NAMES: [&'static str; 5] = ["spiral", "moons", "circles", "xor", "blobs"];

    /// Classes when `--classes` is not given.
    pub fn default_classes(self) -> usize {
        match self {
            Shape::Spiral | Shape::Blobs => 3,
            _ => 2,
        }
    }
}

impl FromStr for Shape {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "spiral" => Shape::Spiral,
            "moons" => Shape::Moons,
            "circles" => Shape::Circles,
            "xor" => Shape::Xor,
            "blobs" => Shape::Blobs,
            _ => {
                return Err(DataError::Invalid(format!(
                    "unknown data set {s:?}: expected one of {} or a CSV file",
                    Shape::NAMES.join(", ")
                )));
            }
        })
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// `points` points (as even a share per class as they divide) of `shape` with `classes`
/// classes and Gaussian `noise` (standard deviation, in the data's units) on each coordinate.
pub fn generate(
    shape: Shape,
    points: usize,
    classes: usize,
    noise: f64,
    seed: u64,
) -> Result<Points> {
    let two_only = matches!(shape, Shape::Moons | Shape::Circles | Shape::Xor);
    if two_only && classes != 2 {
        return Err(DataError::Invalid(format!(
            "{} has 2 classes, not {classes}: --classes is for spiral and blobs",
            format!("{shape:?}").to_lowercase()
        )));
    }
    if classes < 2 {
        return Err(DataError::Invalid(format!("{classes} classes: at least 2 are needed")));
    }
    if points < classes {
        return Err(DataError::Invalid(format!(
            "{points} points for {classes} classes: at least one point per class is needed"
        )));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(DataError::Invalid(format!("noise must be 0 or more, got {noise}")));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut xy = Vec::with_capacity(points);
    let mut labels = Vec::with_capacity(points);
    for c in 0..classes {
        let n = points / classes + usize::from(c < points % classes);
        for i in 0..n {
            // Position along the class's curve, in [0, 1].
            let t = if n > 1 { i as f64 / (n - 1) as f64 } else { 0.5 };
            let p = match shape {
                Shape::Spiral => {
                    let angle = (c as f64 + t) * 4.0 * 3.0 / classes as f64;
                    [t * angle.sin(), t * angle.cos()]
                }
                Shape::Moons => {
                    let a = std::f64::consts::PI * t;
                    if c == 0 { [a.cos(), a.sin()] } else { [1.0 - a.cos(), 0.5 - a.sin()] }
                }
                Shape::Circles => {
                    let a = std::f64::consts::TAU * t;
                    let r = if c == 0 { 1.0 } else { 0.5 };
                    [r * a.cos(), r * a.sin()]
                }
                Shape::Xor => {
                    // Uniform in a quadrant pair: class 0 where x·y > 0.
                    // Kept 0.2 off the axes (TensorFlow Playground pads them too), so that the
                    // noise flips only a few points across.
                    let (x, y) = (rng.random_range(0.2..1.0), rng.random_range(0.2..1.0));
                    let flip = rng.random::<bool>();
                    let (sx, sy) = match (c, flip) {
                        (0, false) => (1.0, 1.0),
                        (0, true) => (-1.0, -1.0),
                        (_, false) => (1.0, -1.0),
                        (_, true) => (-1.0, 1.0),
                    };
                    [sx * x, sy * y]
                }
                Shape::Blobs => {
                    let a = std::f64::consts::TAU * c as f64 / classes as f64;
                    [3.0 * a.cos() + 0.5 * normal(&mut rng), 3.0 * a.sin() + 0.5 * normal(&mut rng)]
                }
            };
            xy.push([p[0] + noise * normal(&mut rng), p[1] + noise * normal(&mut rng)]);
            labels.push(c as u32);
        }
    }
    let classes = (0..classes).map(|c| c.to_string()).collect();
    Ok(Points { xy, labels, classes })
}

/// A CSV file of `x,y,label` rows (a header row is skipped; labels are any names, numbered in
/// sorted order, numbers by value).
pub fn read_csv(path: &Path) -> Result<Points> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |why: String| DataError::format(path, format!("line {}: {why}", n + 1));
        if cells.len() != 3 {
            return Err(bad(format!("expected 3 columns x,y,label, found {}", cells.len())));
        }
        let (x, y) = (cells[0].parse::<f64>(), cells[1].parse::<f64>());
        match (x, y) {
            (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
                rows.push(([x, y], cells[2].to_string()))
            }
            // A header: only as the first row.
            (Err(_), Err(_)) if rows.is_empty() && n == 0 => continue,
            _ => {
                return Err(bad(format!(
                    "{:?}, {:?} are not two finite numbers",
                    cells[0], cells[1]
                )));
            }
        }
    }
    let mut names: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    names.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    });
    names.dedup();
    if names.len() < 2 {
        return Err(DataError::format(
            path,
            format!(
                "{} labelled rows with {} distinct label(s): at least 2 classes are needed",
                rows.len(),
                names.len()
            ),
        ));
    }
    let labels =
        rows.iter().map(|r| names.iter().position(|c| *c == r.1).unwrap_or(0) as u32).collect();
    Ok(Points { xy: rows.into_iter().map(|r| r.0).collect(), labels, classes: names })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_has_its_points_and_classes() {
        for name in Shape::NAMES {
            let shape: Shape = name.parse().expect("shape");
            let k = shape.default_classes();
            let p = generate(shape, 101, k, 0.1, 3).expect(name);
            assert_eq!(p.len(), 101, "{name}");
            assert_eq!(p.classes.len(), k, "{name}");
            for c in 0..k as u32 {
                let n = p.labels.iter().filter(|&&l| l == c).count();
                assert!(n == 101 / k || n == 101 / k + 1, "{name}: class {c} has {n}");
            }
            assert_eq!(generate(shape, 101, k, 0.1, 3).expect(name), p, "{name}: seeded");
        }
    }

    #[test]
    fn shapes_without_noise_are_their_curves() {
        // Circles: radius 1 for class 0, 0.5 for class 1.
        let p = generate(Shape::Circles, 40, 2, 0.0, 0).expect("circles");
        for (xy, &l) in p.xy.iter().zip(&p.labels) {
            let r = xy[0].hypot(xy[1]);
            assert!((r - if l == 0 { 1.0 } else { 0.5 }).abs() < 1e-12, "{xy:?} {l}");
        }
        // XOR: the label is the sign of x·y.
        let p = generate(Shape::Xor, 200, 2, 0.0, 1).expect("xor");
        for (xy, &l) in p.xy.iter().zip(&p.labels) {
            assert_eq!(l, u32::from(xy[0] * xy[1] < 0.0), "{xy:?}");
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(generate(Shape::Moons, 100, 3, 0.1, 0).is_err());
        assert!(generate(Shape::Spiral, 2, 3, 0.1, 0).is_err());
        assert!(generate(Shape::Blobs, 100, 1, 0.1, 0).is_err());
        assert!(generate(Shape::Blobs, 100, 2, -1.0, 0).is_err());
        let e = "ring".parse::<Shape>().expect_err("unknown").to_string();
        assert!(e.contains("spiral, moons"), "{e}");
    }

    #[test]
    fn csv_rows_parse_exactly_and_bad_rows_name_their_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("p.csv");
        std::fs::write(&f, "x,y,label\n0.5,-1,cat\n\n2,3e-1,dog\n# note\n-1,0,cat\n").expect("w");
        let p = read_csv(&f).expect("csv");
        assert_eq!(p.xy, vec![[0.5, -1.0], [2.0, 0.3], [-1.0, 0.0]]);
        assert_eq!(p.labels, vec![0, 1, 0]);
        assert_eq!(p.classes, vec!["cat", "dog"]);
        // Numeric labels are numbered by value (10 after 9).
        std::fs::write(&f, "0,0,10\n1,1,9\n").expect("w");
        assert_eq!(read_csv(&f).expect("csv").classes, vec!["9", "10"]);
        for (text, why) in [
            ("0,0,a\n1,1\n", "line 2: expected 3 columns"),
            ("0,0,a\n1,x,b\n", "line 2: \"1\", \"x\" are not two finite numbers"),
            ("0,0,a\n1,1,a\n", "at least 2 classes"),
            ("0,0,a\nx,y,label\n", "line 2"),
        ] {
            std::fs::write(&f, text).expect("w");
            let e = read_csv(&f).expect_err(text).to_string();
            assert!(e.contains("p.csv") && e.contains(why), "{e}");
        }
    }

    #[test]
    fn the_split_is_stratified_and_complete() {
        let p = generate(Shape::Blobs, 100, 2, 0.1, 0).expect("blobs");
        let (t, v) = p.split(0.2, 9);
        assert_eq!((t.len(), v.len()), (80, 20));
        assert_eq!(v.labels.iter().filter(|&&l| l == 0).count(), 10);
    }
}
