//! Where the images of a run come from: a local folder (an image folder in one of the layouts
//! people have, or CIFAR-10 binary) or the official CIFAR-10 download cached under the datasets
//! folder.
//!
//! Image-folder layouts: `ROOT/train/<class>/` with `test/`, `val/`, `valid/` or `validation/`
//! beside it (torchvision's tutorials use `train/` + `val/`), or `ROOT/<class>/` with no split at
//! all, from which validation and test images are split off by seed, stratified by class.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::download::Download;
use crate::image_folder::{self, FolderOptions};
use crate::{DataError, ImageSet, Result, cifar};

/// Folder names of a validation split, in the order they are looked for.
pub const VALID_NAMES: [&str; 3] = ["val", "valid", "validation"];

/// Fractions of a split-less folder held out for validation and for test, per class.
pub const HELD_OUT_FRACTION: f64 = 0.1;

/// Train and test images, the folder's own validation split if it has one, and a description
/// of where they came from.
pub struct ImageData {
    pub train: ImageSet,
    /// The folder's validation split (`val/` beside `train/`, or split off a folder without
    /// splits); `None`: the run carves one off `train` (`data.valid_size`).
    pub valid: Option<ImageSet>,
    /// The split the final metrics are on: `test/`, else the folder's validation split.
    pub test: ImageSet,
    /// Its name, as the final metrics say it: "test", or the validation folder's name.
    pub test_name: String,
    pub source: String,
}

/// How to read an image folder.
#[derive(Clone, Copy, Debug)]
pub struct DataOptions {
    /// How validation and test images are read (`own_sizes` is for the training images).
    pub folder: FolderOptions,
    /// Keep training images at their own (resized) sizes, for random resized crops.
    pub train_own_sizes: bool,
    /// Seeds the split of a folder without `train/` (the same seed gives the same split).
    pub seed: u64,
}

impl DataOptions {
    /// CIFAR's 32 × 32, no skipping of bad images.
    pub fn cifar(seed: u64) -> Self {
        Self { folder: FolderOptions::square(cifar::SIDE as u32), train_own_sizes: false, seed }
    }
}

/// The layout of a dataset folder.
enum Layout {
    /// `train/` and the split beside it the final metrics are on (`test/`, else a validation
    /// folder), and a validation folder when there is one besides `test/`.
    Splits {
        root: PathBuf,
        valid: Option<String>,
        test: String,
    },
    /// `ROOT/<class>/` without splits.
    Flat(PathBuf),
    Binary(PathBuf),
}

/// Absolute form of `p` for run metadata, so a run can be evaluated from another directory.
fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn locate(data: Option<&Path>, cache: &Path, download: &Download) -> Result<Layout> {
    let Some(root) = data else {
        return Ok(Layout::Binary(cifar::ensure(cache, download)?));
    };
    if !root.exists() {
        return Err(DataError::format(root, "data folder does not exist"));
    }
    if root.join("train").is_dir() {
        let valid = VALID_NAMES.iter().find(|n| root.join(n).is_dir()).map(|n| n.to_string());
        let test = if root.join("test").is_dir() { Some("test".to_string()) } else { None };
        return match (valid, test) {
            (valid, Some(test)) => Ok(Layout::Splits { root: absolute(root), valid, test }),
            (Some(valid), None) => {
                Ok(Layout::Splits { root: absolute(root), valid: None, test: valid })
            }
            (None, None) => Err(DataError::format(
                root,
                "has train/ but no test/, val/, valid/ or validation/ beside it: add one, or put \
                 the class folders directly in the data folder to have validation and test split \
                 off by seed",
            )),
        };
    }
    let candidates: [PathBuf; 2] = [root.to_path_buf(), root.join(cifar::DIR_NAME)];
    if let Some(dir) = candidates.iter().find(|d| cifar::is_complete(d)) {
        return Ok(Layout::Binary(absolute(dir)));
    }
    if root.is_dir() && !image_folder::class_folders(root)?.is_empty() {
        return Ok(Layout::Flat(absolute(root)));
    }
    Err(DataError::format(
        root,
        "not a dataset: expected an image folder (train/<class>/*.jpg beside test/ or val/, or \
         <class>/*.jpg) or a CIFAR-10 binary folder (data_batch_1..5.bin, test_batch.bin)",
    ))
}

fn describe(layout: &Layout) -> String {
    match layout {
        Layout::Splits { root, .. } | Layout::Flat(root) => {
            format!("image-folder:{}", root.display())
        }
        Layout::Binary(p) => format!("cifar10-binary:{}", p.display()),
    }
}

/// Load from `data` if given, else from the download cache `cache` (downloading if needed).
pub fn load_image_data(
    data: Option<&Path>,
    cache: &Path,
    download: &Download,
    opts: &DataOptions,
) -> Result<ImageData> {
    let layout = locate(data, cache, download)?;
    let source = describe(&layout);
    let fixed = FolderOptions { own_sizes: false, ..opts.folder };
    let for_training = FolderOptions { own_sizes: opts.train_own_sizes, ..opts.folder };
    let load = |dir: &Path, classes: Option<&[String]>| {
        image_folder::load_with(dir, fixed, classes).map(|(set, _)| set)
    };
    Ok(match &layout {
        Layout::Splits { root, valid, test } => {
            let train = image_folder::load_with(&root.join("train"), for_training, None)?.0;
            let valid = match valid {
                Some(v) => Some(load(&root.join(v), Some(&train.classes))?),
                None => None,
            };
            let test_set = load(&root.join(test), Some(&train.classes))?;
            let validation = match (&valid, test.as_str()) {
                (Some(_), _) => format!("validation on {}/", layout_valid_name(&layout)),
                (None, "test") => "validation held out of train/ (data.valid_size)".to_string(),
                (None, name) => format!("validation on {name}/"),
            };
            tracing::info!("splits: training on train/, {validation}, final metrics on {test}/");
            let valid = valid.or_else(|| (test != "test").then(|| test_set.clone()));
            ImageData { train, valid, test: test_set, test_name: test.clone(), source }
        }
        Layout::Flat(root) => {
            let all = image_folder::load_with(root, for_training, None)?.0;
            let [train, valid, test] = stratified_split(&all, HELD_OUT_FRACTION, opts.seed);
            let (valid, test) = (valid.to_fixed()?, test.to_fixed()?);
            tracing::info!(
                "no train/ folder: {} train, {} validation and {} test images split off by seed {}, per class",
                train.len(),
                valid.len(),
                test.len(),
                opts.seed
            );
            ImageData { train, valid: Some(valid), test, test_name: "test".into(), source }
        }
        Layout::Binary(dir) => {
            cifar_size(dir, opts)?;
            let (train, test) = cifar::load_dir(dir)?;
            ImageData { train, valid: None, test, test_name: "test".into(), source }
        }
    })
}

/// The validation folder's name of a split layout ("" for others).
fn layout_valid_name(layout: &Layout) -> &str {
    match layout {
        Layout::Splits { valid: Some(v), .. } => v,
        _ => "",
    }
}

/// Only the split the final metrics are on (labelled with `classes` for an image folder), its
/// name, and its source.
pub fn load_test_data(
    data: Option<&Path>,
    cache: &Path,
    download: &Download,
    classes: &[String],
    opts: &DataOptions,
) -> Result<(ImageSet, String, String)> {
    let layout = locate(data, cache, download)?;
    let source = describe(&layout);
    let folder = |dir: &Path| image_folder::load_with(dir, opts.folder, Some(classes));
    let (test, name) = match &layout {
        Layout::Splits { root, test, .. } => (folder(&root.join(test))?.0, test.clone()),
        Layout::Flat(root) => {
            // Split as training did (the same images, read at their own sizes when it read
            // them so: the per-class draw depends only on the labels and the seed).
            let (all, _) = folder(root)?;
            let [_, _, test] = stratified_split(&all, HELD_OUT_FRACTION, opts.seed);
            (test, "test".into())
        }
        Layout::Binary(dir) => {
            cifar_size(dir, opts)?;
            (cifar::load_test(dir)?, "test".into())
        }
    };
    Ok((test, name, source))
}

/// CIFAR-10's binary batches hold 32 × 32 images: another `data.image_size` is an error.
fn cifar_size(dir: &Path, opts: &DataOptions) -> Result<()> {
    if opts.folder.side as usize != cifar::SIDE {
        return Err(DataError::format(
            dir,
            format!(
                "CIFAR-10 binary images are {0}x{0}: data.image_size must be {0}, got {1}",
                cifar::SIDE,
                opts.folder.side
            ),
        ));
    }
    Ok(())
}

/// Splits `set` into (train, validation, test), holding out `fraction` of each class for
/// validation and the same for test (at least one image each where a class has three or more),
/// chosen by `seed`. Each part keeps the set's order.
pub fn stratified_split(set: &ImageSet, fraction: f64, seed: u64) -> [ImageSet; 3] {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut parts: [Vec<usize>; 3] = Default::default();
    for class in 0..set.classes.len() as u32 {
        let mut members: Vec<usize> = (0..set.len()).filter(|&i| set.labels[i] == class).collect();
        members.shuffle(&mut rng);
        let n = members.len();
        let held = if n >= 3 { ((n as f64 * fraction).round() as usize).max(1) } else { 0 };
        parts[1].extend_from_slice(&members[..held]);
        parts[2].extend_from_slice(&members[held..2 * held]);
        parts[0].extend_from_slice(&members[2 * held..]);
    }
    parts.map(|mut p| {
        p.sort_unstable();
        set.subset(&p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_folder_layout_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = cifar::official_download();
        let o = DataOptions::cifar(0);
        let err =
            load_image_data(Some(dir.path()), dir.path(), &d, &o).err().expect("error").to_string();
        assert!(err.contains("not a dataset"), "{err}");
        let missing = dir.path().join("nope");
        let err =
            load_image_data(Some(&missing), dir.path(), &d, &o).err().expect("error").to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn binary_folder_is_recognised() {
        let dir = tempfile::tempdir().expect("tmp");
        let bin = dir.path().join(cifar::DIR_NAME);
        std::fs::create_dir_all(&bin).expect("mkdir");
        for f in cifar::TRAIN_FILES.iter().chain([&cifar::TEST_FILE]) {
            std::fs::write(bin.join(f), cifar::tests::synthetic_record(4)).expect("write");
        }
        let o = DataOptions::cifar(0);
        let d = load_image_data(Some(dir.path()), dir.path(), &cifar::official_download(), &o)
            .expect("load");
        assert_eq!(d.train.len(), 5);
        assert!(d.source.starts_with("cifar10-binary:"));
    }

    /// `root/<split>/<class>/<i>.png` for the given splits, `n` images per class; pixel values
    /// encode (class, i) so that images can be told apart.
    fn folder(root: &Path, splits: &[&str], n: usize) {
        for split in splits {
            for (c, class) in ["ant", "bee", "cat"].iter().enumerate() {
                let dir =
                    if split.is_empty() { root.join(class) } else { root.join(split).join(class) };
                std::fs::create_dir_all(&dir).expect("mkdir");
                for i in 0..n {
                    let v = (c * 50 + i) as u8;
                    image::RgbImage::from_fn(4, 4, |_, _| image::Rgb([v, v, v]))
                        .save(dir.join(format!("{i}.png")))
                        .expect("save");
                }
            }
        }
    }

    fn load(root: &Path, seed: u64) -> Result<ImageData> {
        let mut o = DataOptions::cifar(seed);
        o.folder.side = 4;
        load_image_data(Some(root), root, &cifar::official_download(), &o)
    }

    #[test]
    fn every_split_layout_is_found_and_named() {
        for valid_name in VALID_NAMES {
            let dir = tempfile::tempdir().expect("tmp");
            folder(dir.path(), &["train", valid_name], 2);
            let d = load(dir.path(), 0).expect("load");
            assert_eq!(d.test_name, valid_name, "the validation split serves as test");
            assert_eq!(d.valid.as_ref().map(ImageSet::len), Some(6));
            assert_eq!((d.train.len(), d.test.len()), (6, 6));
        }
        let dir = tempfile::tempdir().expect("tmp");
        folder(dir.path(), &["train", "val", "test"], 2);
        let d = load(dir.path(), 0).expect("load");
        assert_eq!(d.test_name, "test");
        assert!(d.valid.is_some());
        let dir = tempfile::tempdir().expect("tmp");
        folder(dir.path(), &["train", "test"], 2);
        let d = load(dir.path(), 0).expect("load");
        assert!(d.valid.is_none(), "carved off train by the run");
        let dir = tempfile::tempdir().expect("tmp");
        folder(dir.path(), &["train"], 2);
        let e = load(dir.path(), 0).err().expect("no split").to_string();
        assert!(e.contains("has train/ but no test/, val/"), "{e}");
    }

    #[test]
    fn a_folder_without_splits_is_split_by_seed_per_class() {
        let dir = tempfile::tempdir().expect("tmp");
        folder(dir.path(), &[""], 10);
        let d = load(dir.path(), 3).expect("load");
        let valid = d.valid.expect("valid");
        assert_eq!((d.train.len(), valid.len(), d.test.len()), (24, 3, 3));
        assert_eq!(valid.class_counts(), vec![1, 1, 1]);
        assert_eq!(d.test.class_counts(), vec![1, 1, 1]);
        // Disjoint, and the same for the same seed (eval finds the run's test images again).
        let pixel = |s: &ImageSet| (0..s.len()).map(|i| s.image(i)[0]).collect::<Vec<_>>();
        let mut all = [pixel(&d.train), pixel(&valid), pixel(&d.test)].concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 30);
        let again = load(dir.path(), 3).expect("load");
        assert_eq!(pixel(&again.test), pixel(&d.test));
        let mut o = DataOptions::cifar(3);
        o.folder.side = 4;
        let classes = d.train.classes.clone();
        let (test, name, _) =
            load_test_data(Some(dir.path()), dir.path(), &cifar::official_download(), &classes, &o)
                .expect("test");
        assert_eq!((pixel(&test), name.as_str()), (pixel(&d.test), "test"));
        let other = load(dir.path(), 4).expect("load");
        assert_ne!(pixel(&other.test), pixel(&d.test), "another seed, another split");
    }
}
