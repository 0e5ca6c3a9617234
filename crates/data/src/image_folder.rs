//! `root/<class>/*.{png,jpg,jpeg}` folders, as torchvision's `ImageFolder` reads them: classes
//! are the sorted sub-folder names, files are read in sorted order.
//!
//! Burn's `ImageFolderDataset` decodes an image on every access; training reads each image
//! once per epoch, so we decode everything once, in parallel, into a compact `u8` array.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::{DataError, ImageSet, Result};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| DataError::io(dir, err)))
        .collect::<Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

/// Decode one image file to planar CHW RGB bytes of `side`×`side`, resizing if needed.
pub fn decode_rgb(path: &Path, side: u32) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| DataError::Image { path: path.to_path_buf(), message: e.to_string() })?;
    let mut rgb = img.to_rgb8();
    if rgb.width() != side || rgb.height() != side {
        rgb = image::imageops::resize(&rgb, side, side, image::imageops::FilterType::Triangle);
    }
    let plane = (side * side) as usize;
    let mut chw = vec![0u8; 3 * plane];
    for (i, px) in rgb.pixels().enumerate() {
        chw[i] = px[0];
        chw[plane + i] = px[1];
        chw[2 * plane + i] = px[2];
    }
    Ok(chw)
}

/// Load every image below `root` (one sub-folder per class), resized to `side`×`side`.
/// `classes`, when given, fixes the label order (a test split must use the training classes).
pub fn load(root: &Path, side: u32, classes: Option<&[String]>) -> Result<ImageSet> {
    let found: Vec<String> = sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
        .collect();
    if found.is_empty() {
        return Err(DataError::format(
            root,
            "no class folders found (expected root/<class>/*.png|jpg|jpeg)",
        ));
    }
    let classes: Vec<String> = match classes {
        Some(c) => {
            if let Some(extra) = found.iter().find(|f| !c.contains(f)) {
                return Err(DataError::format(
                    root,
                    format!("class folder `{extra}` is not one of the training classes {c:?}"),
                ));
            }
            c.to_vec()
        }
        None => found,
    };
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        if !dir.is_dir() {
            continue;
        }
        for f in sorted_entries(&dir)?.into_iter().filter(|p| p.is_file() && is_image(p)) {
            files.push((f, label as u8));
        }
    }
    if files.is_empty() {
        return Err(DataError::format(root, "no .png, .jpg or .jpeg images found"));
    }

    let bar = indicatif::ProgressBar::new(files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("decoding {msg} [{bar:30}] {pos}/{len} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(root.display().to_string());
    let decoded: Vec<Vec<u8>> = files
        .par_iter()
        .map(|(path, _)| {
            let r = decode_rgb(path, side);
            bar.inc(1);
            r
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();

    let images = decoded.concat();
    let labels = files.iter().map(|(_, l)| *l).collect();
    tracing::info!("{}: {} images in {} classes", root.display(), files.len(), classes.len());
    Ok(ImageSet {
        images,
        labels,
        classes,
        channels: 3,
        height: side as usize,
        width: side as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG whose header claims 100,000 × 100,000 pixels (30 GB as RGB) is refused by the
    /// decoder's allocation limit with an error naming the file, before anything that size is
    /// allocated.
    #[test]
    fn a_png_header_claiming_a_huge_image_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("huge.png");
        write_png(&path, |_, _| [1, 2, 3], 1);
        let mut bytes = std::fs::read(&path).expect("read");
        // IHDR: length (4) "IHDR" (4) width (4) height (4) … then the CRC over type and data.
        assert_eq!(&bytes[12..16], b"IHDR");
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        std::fs::write(&path, &bytes).expect("write");
        let e = decode_rgb(&path, 32).expect_err("refused").to_string();
        assert!(e.contains("huge.png"), "{e}");
    }

    fn write_png(path: &Path, f: impl Fn(u32, u32) -> [u8; 3], side: u32) {
        let img = image::RgbImage::from_fn(side, side, |x, y| image::Rgb(f(x, y)));
        img.save(path).expect("save");
    }

    #[test]
    fn pixel_position_survives_into_chw() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("b_class")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("a_class")).expect("mkdir");
        // Channel c of pixel (x, y) holds a value that encodes (c, y, x).
        let enc = |c: u32, x: u32, y: u32| ((c * 64 + y * 8 + x) % 256) as u8;
        write_png(
            &dir.path().join("b_class/0.png"),
            |x, y| [enc(0, x, y), enc(1, x, y), enc(2, x, y)],
            8,
        );
        write_png(&dir.path().join("a_class/0.PNG"), |_, _| [1, 2, 3], 8);
        std::fs::write(dir.path().join("a_class/notes.txt"), "ignored").expect("write");
        let set = load(dir.path(), 8, None).expect("load");
        assert_eq!(set.classes, vec!["a_class", "b_class"]);
        assert_eq!(set.labels, vec![0, 1]);
        let img = set.image(1);
        for c in 0..3 {
            for y in 0..8 {
                for x in 0..8 {
                    assert_eq!(img[(c * 64 + y * 8 + x) as usize], enc(c, x, y));
                }
            }
        }
    }

    #[test]
    fn corrupt_image_names_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("cat")).expect("mkdir");
        write_png(&dir.path().join("cat/good.png"), |_, _| [0, 0, 0], 4);
        std::fs::write(dir.path().join("cat/bad.jpg"), b"\xff\xd8\xff\xe0 not really a jpeg")
            .expect("write");
        let err = load(dir.path(), 4, None).unwrap_err().to_string();
        assert!(err.contains("bad.jpg") && err.contains("cannot decode image"), "{err}");
    }

    #[test]
    fn resizes_to_side_and_rejects_unknown_test_class() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("dog")).expect("mkdir");
        write_png(&dir.path().join("dog/big.png"), |_, _| [200, 100, 50], 64);
        let set = load(dir.path(), 32, None).expect("load");
        assert_eq!(set.images.len(), 3 * 32 * 32);
        assert_eq!(set.image(0)[0], 200);
        let err = load(dir.path(), 32, Some(&["cat".to_string()])).unwrap_err().to_string();
        assert!(err.contains("dog"), "{err}");
        assert!(load(&dir.path().join("dog"), 32, None).is_err(), "no class folders");
    }
}
