//! Where the images of a run come from: a local folder (image folder or CIFAR-10 binary) or the
//! official CIFAR-10 download cached under the datasets folder.

use std::path::{Path, PathBuf};

use crate::download::Download;
use crate::{DataError, ImageSet, Result, cifar, image_folder};

/// Train and test images, and a description of where they came from.
pub struct ImageData {
    pub train: ImageSet,
    pub test: ImageSet,
    pub source: String,
}

/// The layout of a dataset folder.
enum Layout {
    ImageFolder(PathBuf),
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
    if root.join("train").is_dir() && root.join("test").is_dir() {
        return Ok(Layout::ImageFolder(absolute(root)));
    }
    let candidates: [PathBuf; 2] = [root.to_path_buf(), root.join(cifar::DIR_NAME)];
    if let Some(dir) = candidates.iter().find(|d| cifar::is_complete(d)) {
        return Ok(Layout::Binary(absolute(dir)));
    }
    Err(DataError::format(
        root,
        "not a dataset: expected an image folder (train/<class>/*.jpg and test/<class>/*.jpg) \
         or a CIFAR-10 binary folder (data_batch_1..5.bin, test_batch.bin)",
    ))
}

fn describe(layout: &Layout) -> String {
    match layout {
        Layout::ImageFolder(p) => format!("image-folder:{}", p.display()),
        Layout::Binary(p) => format!("cifar10-binary:{}", p.display()),
    }
}

/// Load from `data` if given, else from the download cache `cache` (downloading if needed).
pub fn load_image_data(
    data: Option<&Path>,
    cache: &Path,
    download: &Download,
) -> Result<ImageData> {
    let layout = locate(data, cache, download)?;
    let source = describe(&layout);
    let (train, test) = match &layout {
        Layout::ImageFolder(root) => {
            let train = image_folder::load(&root.join("train"), cifar::SIDE as u32, None)?;
            let test =
                image_folder::load(&root.join("test"), cifar::SIDE as u32, Some(&train.classes))?;
            (train, test)
        }
        Layout::Binary(dir) => cifar::load_dir(dir)?,
    };
    Ok(ImageData { train, test, source })
}

/// Only the test split (labelled with `classes` for an image folder), and its source.
pub fn load_test_data(
    data: Option<&Path>,
    cache: &Path,
    download: &Download,
    classes: &[String],
) -> Result<(ImageSet, String)> {
    let layout = locate(data, cache, download)?;
    let source = describe(&layout);
    let test = match &layout {
        Layout::ImageFolder(root) => {
            image_folder::load(&root.join("test"), cifar::SIDE as u32, Some(classes))?
        }
        Layout::Binary(dir) => cifar::load_test(dir)?,
    };
    Ok((test, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_folder_layout_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = cifar::official_download();
        let err =
            load_image_data(Some(dir.path()), dir.path(), &d).err().expect("error").to_string();
        assert!(err.contains("not a dataset"), "{err}");
        let missing = dir.path().join("nope");
        let err = load_image_data(Some(&missing), dir.path(), &d).err().expect("error").to_string();
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
        let d = load_image_data(Some(dir.path()), dir.path(), &cifar::official_download())
            .expect("load");
        assert_eq!(d.train.len(), 5);
        assert!(d.source.starts_with("cifar10-binary:"));
    }
}
