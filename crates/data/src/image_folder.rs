//! `root/<class>/*.{jpg,jpeg,png,bmp,webp}` folders, as torchvision's `ImageFolder` reads them:
//! classes are the sorted sub-folder names (hidden ones skipped), files are read in sorted order,
//! extensions in any letter case; other files (`.DS_Store`, `Thumbs.db`, notes) are ignored and
//! counted. Every colour type the decoders read (greyscale, alpha, 16-bit, CMYK JPEG) becomes
//! RGB, and a phone photo's EXIF orientation is applied.
//!
//! Burn's `ImageFolderDataset` decodes an image on every access; training reads each image
//! once per epoch, so we decode everything once, in parallel, into a compact `u8` array.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader};
use rayon::prelude::*;

use crate::{DataError, ImageSet, Result};

/// The file extensions read as images (any letter case).
pub const EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "webp"];

/// The most bytes one decoded image may take (the `image` crate's default allocation limit).
const MAX_DECODED_BYTES: u64 = 512 << 20;

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

fn hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| DataError::io(dir, err)))
        .collect::<Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

/// Decodes an image file into RGB with its EXIF orientation applied.
pub fn decode(path: &Path) -> Result<image::RgbImage> {
    let bad = |e: image::ImageError| DataError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    // Read whole (the JPEG check below needs the bytes), so a file larger than any image
    // decoded here is refused before it is read.
    let len = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?.len();
    if len > MAX_DECODED_BYTES {
        return Err(DataError::Image {
            path: path.to_path_buf(),
            message: format!("the file is {len} bytes, over the limit of {MAX_DECODED_BYTES}"),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let reader = ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_complete(&bytes) {
        return Err(DataError::Image {
            path: path.to_path_buf(),
            message: "truncated JPEG: the file ends before its last scan does (no end-of-image \
                      marker after it)"
                .into(),
        });
    }
    let mut decoder = reader.into_decoder().map_err(bad)?;
    // A header claiming a huge image is an error here, not an abort when its pixels are
    // allocated (`DynamicImage::from_decoder` applies no limit; 512 MiB is the decoders' default).
    let (w, h) = decoder.dimensions();
    if decoder.total_bytes() > MAX_DECODED_BYTES {
        return Err(DataError::Image {
            path: path.to_path_buf(),
            message: format!(
                "{w}x{h} pixels need {} bytes decoded, over the limit of {MAX_DECODED_BYTES}",
                decoder.total_bytes()
            ),
        });
    }
    let orientation = decoder.orientation().map_err(bad)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(bad)?;
    img.apply_orientation(orientation);
    Ok(img.to_rgb8())
}

/// Whether a JPEG stream finishes its last scan: an end-of-image marker (FF D9) after the last
/// start-of-scan one (FF DA; inside a scan's data FF is always followed by 00 or a restart
/// marker, so neither pair occurs there). `image`'s decoder fills the rows of a file cut short
/// with grey and reports no error; PIL, and so torchvision's `ImageFolder`, refuses such a file
/// ("image file is truncated"). A stream with no scan at all is left to the decoder's error.
fn jpeg_complete(bytes: &[u8]) -> bool {
    match bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) {
        Some(sos) => bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => true,
    }
}

/// Planar CHW bytes of an RGB image.
pub fn to_chw(rgb: &image::RgbImage) -> Vec<u8> {
    let plane = (rgb.width() * rgb.height()) as usize;
    let mut chw = vec![0u8; 3 * plane];
    for (i, px) in rgb.pixels().enumerate() {
        chw[i] = px[0];
        chw[plane + i] = px[1];
        chw[2 * plane + i] = px[2];
    }
    chw
}

/// `rgb` with its shorter side resized to `shorter` (the aspect ratio kept, as torchvision's
/// `Resize(int)`), bilinear with antialiasing.
pub fn resize_shorter(rgb: image::RgbImage, shorter: u32) -> image::RgbImage {
    let (w, h) = rgb.dimensions();
    if w.min(h) == shorter || w == 0 || h == 0 {
        return rgb;
    }
    let scale = shorter as f64 / w.min(h) as f64;
    let (nw, nh) = if w <= h {
        (shorter, ((h as f64 * scale).round() as u32).max(1))
    } else {
        (((w as f64 * scale).round() as u32).max(1), shorter)
    };
    image::imageops::resize(&rgb, nw, nh, image::imageops::FilterType::Triangle)
}

/// Decode one image file as a validation or test image is seen: the shorter side resized to
/// `resize`, then the centre `side` × `side` (torchvision's `Resize` + `CenterCrop`), as planar
/// CHW RGB bytes.
pub fn decode_rgb(path: &Path, side: u32, resize: u32) -> Result<Vec<u8>> {
    let rgb = resize_shorter(decode(path)?, resize);
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let s = side as usize;
    Ok(crate::augment::center_crop(&to_chw(&rgb), 3, h, w, s, s))
}

/// Decode one image file for a set of images kept at their own sizes: the shorter side resized
/// to `resize`; planar CHW bytes, height and width.
pub fn decode_own_size(path: &Path, resize: u32) -> Result<(Vec<u8>, usize, usize)> {
    let rgb = resize_shorter(decode(path)?, resize);
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Ok((to_chw(&rgb), h, w))
}

/// How to read a folder.
#[derive(Clone, Copy, Debug)]
pub struct FolderOptions {
    /// Side of the square images are cropped to (`data.image_size`).
    pub side: u32,
    /// Length the shorter side of each image is resized to first (`data.resize`).
    pub resize: u32,
    /// Keep each image at its resized size (a training set cropped at random by the loader)
    /// instead of centre-cropping it to `side` × `side`.
    pub own_sizes: bool,
    /// Skip an image that cannot be decoded (with a warning naming it) instead of failing.
    pub skip_bad_images: bool,
    /// The most bytes the decoded images kept at their own sizes may take (`data.cache_mib`):
    /// past it they are decoded on the fly, each time the loader needs one. `None`: no limit.
    pub cache_bytes: Option<u64>,
}

/// What reading a folder passed over.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FolderReport {
    /// Files that are not images by their extension.
    pub ignored: usize,
    /// Images that could not be decoded (with `skip_bad_images`), and why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// The class folders of `root`: sorted, hidden ones skipped.
pub fn class_folders(root: &Path) -> Result<Vec<String>> {
    Ok(sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir() && !hidden(p))
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
        .collect())
}

/// The image files of `root`'s class folders with their labels (classes in `classes` order),
/// and how many other files there were.
fn scan(root: &Path, classes: &[String]) -> Result<(Vec<(PathBuf, u32)>, usize)> {
    let (mut files, mut ignored) = (Vec::new(), 0);
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        if !dir.is_dir() {
            continue;
        }
        let before = files.len();
        for f in sorted_entries(&dir)?.into_iter().filter(|p| p.is_file()) {
            if is_image(&f) && !hidden(&f) {
                files.push((f, label as u32));
            } else {
                ignored += 1;
            }
        }
        if files.len() == before {
            return Err(DataError::format(
                &dir,
                format!("class folder has no images (.{})", EXTENSIONS.join(", .")),
            ));
        }
    }
    Ok((files, ignored))
}

/// Load every image below `root` (one sub-folder per class), resized to `side`×`side`.
/// `classes`, when given, fixes the label order (a test split must use the training classes).
pub fn load(root: &Path, side: u32, classes: Option<&[String]>) -> Result<ImageSet> {
    load_with(root, FolderOptions::square(side), classes).map(|(set, _)| set)
}

impl FolderOptions {
    /// `side` × `side` images, the shorter side resized to `side` and centre-cropped.
    pub fn square(side: u32) -> Self {
        Self { side, resize: side, own_sizes: false, skip_bad_images: false, cache_bytes: None }
    }
}

/// A set decoded on the fly when the images kept at their own sizes would take more than
/// `budget` bytes (estimated from each file's header: 3 × resize² × its aspect ratio), else
/// `None`. A file whose header cannot be read is an error, or skipped with `skip_bad_images`.
fn lazy_if_over(
    root: &Path,
    opts: FolderOptions,
    files: &[(PathBuf, u32)],
    ignored: usize,
    classes: &[String],
    budget: u64,
) -> Result<(Option<ImageSet>, FolderReport)> {
    let r = opts.resize as u64;
    let headers: Vec<Result<u64>> = files
        .par_iter()
        .map(|(path, _)| {
            let (w, h) = image::image_dimensions(path)
                .map_err(|e| DataError::Image { path: path.clone(), message: e.to_string() })?;
            let (short, long) = (w.min(h).max(1) as u64, w.max(h) as u64);
            Ok(3 * r * r * long / short)
        })
        .collect();
    let mut report = FolderReport { ignored, skipped: Vec::new() };
    let (mut paths, mut labels, mut total) = (Vec::new(), Vec::new(), 0u64);
    for ((path, label), bytes) in files.iter().zip(headers) {
        match bytes {
            Ok(b) => {
                total += b;
                paths.push(path.clone());
                labels.push(*label);
            }
            Err(e) if opts.skip_bad_images => {
                tracing::warn!("skipping {e}");
                report.skipped.push((path.clone(), e.to_string()));
            }
            Err(e) => return Err(e),
        }
    }
    if total <= budget {
        return Ok((None, report));
    }
    tracing::warn!(
        "{}: the decoded images would take {} MiB, over data.cache_mib ({} MiB): decoding them on the fly each epoch",
        root.display(),
        total >> 20,
        budget >> 20
    );
    let side = opts.side as usize;
    let set = ImageSet {
        images: Vec::new(),
        labels,
        classes: classes.to_vec(),
        channels: 3,
        height: side,
        width: side,
        own_sizes: None,
        lazy: Some(std::sync::Arc::new(crate::image_set::LazyImages {
            paths,
            resize: opts.resize,
        })),
    };
    Ok((Some(set), report))
}

/// [`load`] with options, and what it passed over.
pub fn load_with(
    root: &Path,
    opts: FolderOptions,
    classes: Option<&[String]>,
) -> Result<(ImageSet, FolderReport)> {
    let found = class_folders(root)?;
    if found.is_empty() {
        return Err(DataError::format(
            root,
            format!("no class folders found (expected root/<class>/*.{})", EXTENSIONS.join("|")),
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
    let (files, ignored) = scan(root, &classes)?;
    if files.is_empty() {
        return Err(DataError::format(root, "no images found"));
    }
    if let (true, Some(budget)) = (opts.own_sizes, opts.cache_bytes) {
        let (set, report) = lazy_if_over(root, opts, &files, ignored, &classes, budget)?;
        if let Some(set) = set {
            return Ok((set, report));
        }
    }

    let bar = indicatif::ProgressBar::new(files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("decoding {msg} [{bar:30}] {pos}/{len} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(root.display().to_string());
    let decoded: Vec<Result<(Vec<u8>, usize, usize)>> = files
        .par_iter()
        .map(|(path, _)| {
            let r = if opts.own_sizes {
                decode_own_size(path, opts.resize)
            } else {
                let s = opts.side as usize;
                decode_rgb(path, opts.side, opts.resize).map(|px| (px, s, s))
            };
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();

    let mut report = FolderReport { ignored, skipped: Vec::new() };
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut sizes = Vec::new();
    for ((path, label), image) in files.iter().zip(decoded) {
        match image {
            Ok((px, h, w)) => {
                sizes.push((images.len(), h, w));
                images.extend_from_slice(&px);
                labels.push(*label);
            }
            Err(e) if opts.skip_bad_images => {
                tracing::warn!("skipping {e}");
                report.skipped.push((path.clone(), e.to_string()));
            }
            Err(e) => return Err(e),
        }
    }
    if labels.is_empty() {
        return Err(DataError::format(root, "no image could be decoded"));
    }
    if ignored > 0 {
        tracing::info!("{}: ignored {ignored} files that are not images", root.display());
    }
    if !report.skipped.is_empty() {
        tracing::warn!(
            "{}: skipped {} images that cannot be decoded",
            root.display(),
            report.skipped.len()
        );
    }
    tracing::info!("{}: {} images in {} classes", root.display(), labels.len(), classes.len());
    let side = opts.side as usize;
    let own_sizes = opts.own_sizes.then_some(sizes);
    Ok((
        ImageSet {
            images,
            labels,
            classes,
            channels: 3,
            height: side,
            width: side,
            own_sizes,
            lazy: None,
        },
        report,
    ))
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
        let e = decode_rgb(&path, 32, 32).expect_err("refused").to_string();
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

    /// A JPEG of `w`×`h` pixels whose pixel (x, y) is red in the left half, blue in the right,
    /// with an EXIF orientation tag when `orientation` is given.
    fn jpeg_with_orientation(w: u32, h: u32, orientation: Option<u16>) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, _| {
            if x < w / 2 { image::Rgb([250, 0, 0]) } else { image::Rgb([0, 0, 250]) }
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&img)
            .expect("encode");
        let Some(o) = orientation else { return jpeg };
        // APP1 "Exif\0\0" + a little-endian TIFF header + one IFD entry: 0x0112 SHORT = o.
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&o.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes());
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec(); // SOI
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied() {
        let dir = tempfile::tempdir().expect("tmp");
        // 8 wide, 4 high; orientation 6 (rotate 90° clockwise to display): 4 wide, 8 high, the
        // left (red) half on top.
        let path = dir.path().join("phone.jpg");
        std::fs::write(&path, jpeg_with_orientation(8, 4, Some(6))).expect("write");
        let rgb = decode(&path).expect("decode");
        assert_eq!((rgb.width(), rgb.height()), (4, 8));
        assert!(rgb.get_pixel(2, 1)[0] > 200 && rgb.get_pixel(2, 1)[2] < 50, "top is red");
        assert!(rgb.get_pixel(2, 6)[2] > 200 && rgb.get_pixel(2, 6)[0] < 50, "bottom is blue");
        std::fs::write(&path, jpeg_with_orientation(8, 4, None)).expect("write");
        assert_eq!(decode(&path).expect("decode").dimensions(), (8, 4));
    }

    #[test]
    fn every_file_kind_and_colour_type_becomes_rgb_and_other_files_are_counted() {
        let dir = tempfile::tempdir().expect("tmp");
        let class = dir.path().join("all");
        std::fs::create_dir_all(&class).expect("mkdir");
        let rgb = image::RgbImage::from_fn(6, 6, |_, _| image::Rgb([10, 120, 230]));
        image::DynamicImage::ImageRgb8(rgb.clone()).save(class.join("a.JPG")).expect("jpg");
        image::DynamicImage::ImageRgb8(rgb.clone()).save(class.join("b.Jpeg")).expect("jpeg");
        image::DynamicImage::ImageRgb8(rgb.clone()).save(class.join("c.bmp")).expect("bmp");
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .encode(rgb.as_raw(), 6, 6, image::ExtendedColorType::Rgb8)
            .expect("webp");
        std::fs::write(class.join("d.WEBP"), webp).expect("write");
        let grey = image::GrayImage::from_fn(6, 6, |_, _| image::Luma([77]));
        image::DynamicImage::ImageLuma8(grey).save(class.join("e.png")).expect("grey");
        let rgba = image::RgbaImage::from_fn(6, 6, |_, _| image::Rgba([10, 120, 230, 9]));
        image::DynamicImage::ImageRgba8(rgba).save(class.join("f.png")).expect("rgba");
        let deep = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(6, 6, |_, _| {
            image::Rgb([10 * 257, 120 * 257, 230 * 257])
        });
        image::DynamicImage::ImageRgb16(deep).save(class.join("g.PNG")).expect("16-bit");
        for other in [".DS_Store", "Thumbs.db", "notes.txt", "._a.jpg"] {
            std::fs::write(class.join(other), b"not an image").expect("write");
        }
        std::fs::create_dir_all(dir.path().join(".hidden")).expect("mkdir");
        let opts = FolderOptions::square(6);
        let (set, report) = load_with(dir.path(), opts, None).expect("load");
        assert_eq!(set.classes, vec!["all"], "hidden folders are not classes");
        assert_eq!(set.len(), 7);
        assert_eq!(report.ignored, 4, "{report:?}");
        let centre = |i: usize| {
            let img = set.image(i);
            [img[3 * 6 + 3], img[36 + 3 * 6 + 3], img[72 + 3 * 6 + 3]]
        };
        for i in [2, 3, 5, 6] {
            assert_eq!(centre(i), [10, 120, 230], "lossless kind {i}");
        }
        assert_eq!(centre(4), [77, 77, 77], "greyscale is replicated");
        for i in [0, 1] {
            let c = centre(i);
            assert!(c[0].abs_diff(10) < 8 && c[1].abs_diff(120) < 8 && c[2].abs_diff(230) < 8);
        }
    }

    #[test]
    fn bad_images_fail_naming_the_file_or_are_skipped_and_counted() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("cat")).expect("mkdir");
        write_png(&dir.path().join("cat/good.png"), |_, _| [0, 0, 0], 4);
        let jpeg = jpeg_with_orientation(16, 16, None);
        std::fs::write(dir.path().join("cat/truncated.jpg"), &jpeg[..jpeg.len() / 3])
            .expect("write");
        std::fs::write(dir.path().join("cat/text.jpg"), b"just some text").expect("write");
        // Cut in its scan data: `image`'s decoder alone greys out the missing rows.
        let noisy = image::RgbImage::from_fn(64, 64, |x, y| {
            let v = ((x * 7919 + y * 104_729) % 251) as u8;
            image::Rgb([v, v.wrapping_mul(3), v.wrapping_mul(7)])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&noisy)
            .expect("encode");
        std::fs::write(dir.path().join("cat/cut.jpg"), &jpeg[..jpeg.len() * 2 / 3]).expect("write");
        let e = decode(&dir.path().join("cat/cut.jpg")).expect_err("cut short").to_string();
        assert!(e.contains("cut.jpg") && e.contains("truncated"), "{e}");
        // A file larger than any image decoded here is refused unread (a sparse file).
        let huge = dir.path().join("huge.png");
        std::fs::File::create(&huge).and_then(|f| f.set_len(MAX_DECODED_BYTES + 1)).expect("huge");
        let e = decode(&huge).expect_err("huge").to_string();
        assert!(e.contains("huge.png") && e.contains("over the limit"), "{e}");
        std::fs::remove_file(&huge).expect("rm");
        let strict = FolderOptions::square(4);
        let e = load_with(dir.path(), strict, None).expect_err("bad").to_string();
        assert!(["cut.jpg", "text.jpg", "truncated.jpg"].iter().any(|f| e.contains(f)), "{e}");
        let lenient = FolderOptions { skip_bad_images: true, ..FolderOptions::square(4) };
        let (set, report) = load_with(dir.path(), lenient, None).expect("load");
        assert_eq!(set.len(), 1);
        let names: Vec<String> = report
            .skipped
            .iter()
            .map(|(p, _)| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["cut.jpg", "text.jpg", "truncated.jpg"]);
        // A class folder with nothing to read is an error naming it.
        std::fs::create_dir_all(dir.path().join("dog")).expect("mkdir");
        std::fs::write(dir.path().join("dog/readme.md"), b"x").expect("write");
        let e = load_with(dir.path(), lenient, None).expect_err("empty class").to_string();
        assert!(e.contains("dog") && e.contains("class folder has no images"), "{e}");
    }

    #[test]
    fn more_classes_than_a_byte_can_count() {
        let dir = tempfile::tempdir().expect("tmp");
        for c in 0..300 {
            let class = dir.path().join(format!("class{c:03}"));
            std::fs::create_dir_all(&class).expect("mkdir");
            write_png(&class.join("x.png"), |_, _| [1, 2, 3], 2);
        }
        let set = load(dir.path(), 2, None).expect("load");
        assert_eq!(set.classes.len(), 300);
        assert_eq!(set.labels[299], 299);
        assert_eq!(set.class_counts(), vec![1; 300]);
    }

    /// A CMYK JPEG (print workflows, some scanners) becomes RGB: cyan reads as low red.
    #[test]
    fn a_cmyk_jpeg_becomes_rgb() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("print.jpg");
        // 8 × 8, every pixel C = 255, M = Y = K = 0: pure cyan.
        let pixels: Vec<u8> = (0..64).flat_map(|_| [255u8, 0, 0, 0]).collect();
        jpeg_encoder::Encoder::new_file(&path, 95)
            .expect("file")
            .encode(&pixels, 8, 8, jpeg_encoder::ColorType::Cmyk)
            .expect("encode");
        let rgb = decode(&path).expect("decode");
        let px = rgb.get_pixel(4, 4);
        assert!(px[0] < 60 && px[1] > 190 && px[2] > 190, "cyan: {px:?}");
    }

    /// Past the cache budget the training images are decoded on the fly: the same pixels,
    /// none held in memory, and a file that goes bad later is an error naming it.
    #[test]
    fn images_over_the_cache_budget_are_decoded_on_the_fly() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("cat")).expect("mkdir");
        for i in 0..3u8 {
            let img = image::RgbImage::from_fn(12, 8, |x, y| image::Rgb([i, x as u8, y as u8]));
            img.save(dir.path().join(format!("cat/{i}.png"))).expect("save");
        }
        let opts = FolderOptions { own_sizes: true, resize: 8, ..FolderOptions::square(8) };
        let (held, _) = load_with(dir.path(), opts, None).expect("in memory");
        // 3 images of 3 × 8 × 12 bytes: 864; a budget of 500 is passed.
        let lazy_opts = FolderOptions { cache_bytes: Some(500), ..opts };
        let (lazy, _) = load_with(dir.path(), lazy_opts, None).expect("lazy");
        assert!(lazy.images.is_empty() && lazy.lazy.is_some());
        for i in 0..3 {
            let (a, b) = (held.load(i).expect("held"), lazy.load(i).expect("decoded"));
            assert_eq!((a.0.as_ref(), a.1, a.2), (b.0.as_ref(), b.1, b.2));
        }
        assert_eq!(lazy.subset(&[2]).load(0).expect("subset").0, held.load(2).expect("held").0);
        let under = FolderOptions { cache_bytes: Some(10_000), ..opts };
        assert!(load_with(dir.path(), under, None).expect("held").0.lazy.is_none());
        std::fs::write(dir.path().join("cat/1.png"), b"gone bad").expect("write");
        let e = lazy.load(1).expect_err("bad file").to_string();
        assert!(e.contains("1.png"), "{e}");
    }
}
