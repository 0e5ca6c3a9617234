//! Makes the `just bench-folder` data set: a 2-class folder in torchvision's `train/` + `val/`
//! layout (as the ants/bees tutorial's), from CIFAR-10 JPEGs upscaled to photos of mixed sizes
//! (64–320 px on the longer side) and aspect ratios (3:5 to 5:3), seeded.
//!
//! usage: cargo run --release --example make_folder -- CIFAR_JPG_DIR OUT [TRAIN_PER_CLASS] [VAL_PER_CLASS]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CLASSES: [&str; 2] = ["cat", "dog"];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        bail!("usage: make_folder CIFAR_JPG_DIR OUT [TRAIN_PER_CLASS] [VAL_PER_CLASS]");
    }
    let (src, out) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    let count = |i: usize, default: usize| -> Result<usize> {
        args.get(i).map_or(Ok(default), |v| v.parse().with_context(|| format!("not a count: {v}")))
    };
    let (train, val) = (count(2, 120)?, count(3, 75)?);
    let mut rng = StdRng::seed_from_u64(224);
    for (split, from, n) in [("train", "train", train), ("val", "test", val)] {
        for class in CLASSES {
            let dir = out.join(split).join(class);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (i, file) in sorted_files(&src.join(from).join(class))?.iter().take(n).enumerate() {
                let img =
                    image::open(file).with_context(|| format!("reading {}", file.display()))?;
                let long = rng.random_range(64..=320u32);
                let ratio = rng.random_range(0.6..=1.0f64);
                let short = ((long as f64 * ratio).round() as u32).max(16);
                let (w, h) = if rng.random_bool(0.5) { (long, short) } else { (short, long) };
                let photo = img.resize_exact(w, h, image::imageops::FilterType::CatmullRom);
                let path = dir.join(format!("{class}_{i:04}.jpg"));
                photo
                    .to_rgb8()
                    .save(&path)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    println!("{}: train {train} and val {val} images per class of {CLASSES:?}", out.display());
    Ok(())
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    Ok(files)
}
