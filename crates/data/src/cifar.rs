//! The CIFAR-10 binary format: each record is 1 label byte followed by 1024 red, 1024 green and
//! 1024 blue bytes, each plane row-major 32x32. Five training batches and one test batch of
//! 10,000 records; `batches.meta.txt` names the classes, one per line.

use std::path::{Path, PathBuf};

use crate::download::{Checksum, Download, fetch_archive};
use crate::{DataError, ImageSet, Result};

pub const SIDE: usize = 32;
pub const PIXELS: usize = 3 * SIDE * SIDE;
pub const RECORD: usize = 1 + PIXELS;
pub const NUM_CLASSES: usize = 10;
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const TEST_FILE: &str = "test_batch.bin";
pub const META_FILE: &str = "batches.meta.txt";
/// Folder inside the official archive, and the name of the cache folder.
pub const DIR_NAME: &str = "cifar-10-batches-bin";
pub const URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
pub const ARCHIVE_NAME: &str = "cifar-10-binary.tar.gz";
pub const MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// Parse one batch file's bytes into (CHW images, labels). `path` is only used in errors.
pub fn parse_batch(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    if bytes.is_empty() {
        return Err(DataError::format(path, "file is empty, expected 3073-byte records"));
    }
    if !bytes.len().is_multiple_of(RECORD) {
        let whole = bytes.len() / RECORD;
        return Err(DataError::format(
            path,
            format!(
                "file is {} bytes, not a multiple of the {RECORD}-byte record: the record at byte offset {} is truncated ({} of {RECORD} bytes)",
                bytes.len(),
                whole * RECORD,
                bytes.len() - whole * RECORD
            ),
        ));
    }
    let n = bytes.len() / RECORD;
    let mut images = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        let label = rec[0];
        if label as usize >= NUM_CLASSES {
            return Err(DataError::format(
                path,
                format!(
                    "record {i} at byte offset {} has label {label}, expected 0..={}",
                    i * RECORD,
                    NUM_CLASSES - 1
                ),
            ));
        }
        labels.push(label);
        // The file's planar RGB layout is already our CHW layout.
        images.extend_from_slice(&rec[1..]);
    }
    Ok((images, labels))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Class names from `batches.meta.txt` (blank lines ignored), or the standard names if absent.
pub fn read_class_names(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(META_FILE);
    if !path.exists() {
        return Ok(default_class_names());
    }
    let text = String::from_utf8(read(&path)?)
        .map_err(|_| DataError::format(&path, "class names are not valid UTF-8"))?;
    let names: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.len() != NUM_CLASSES {
        return Err(DataError::format(
            &path,
            format!("expected {NUM_CLASSES} class names, found {}", names.len()),
        ));
    }
    Ok(names)
}

pub fn default_class_names() -> Vec<String> {
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn load_files(dir: &Path, files: &[&str], classes: &[String]) -> Result<ImageSet> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for f in files {
        let path = dir.join(f);
        let (i, l) = parse_batch(&read(&path)?, &path)?;
        images.extend(i);
        labels.extend(l.into_iter().map(u32::from));
    }
    Ok(ImageSet {
        images,
        labels,
        classes: classes.to_vec(),
        channels: 3,
        height: SIDE,
        own_sizes: None,
        lazy: None,
        width: SIDE,
    })
}

/// Load (train, test) from a `cifar-10-batches-bin` folder.
pub fn load_dir(dir: &Path) -> Result<(ImageSet, ImageSet)> {
    let classes = read_class_names(dir)?;
    let train = load_files(dir, &TRAIN_FILES, &classes)?;
    let test = load_files(dir, &[TEST_FILE], &classes)?;
    Ok((train, test))
}

/// Load only the test batch of a `cifar-10-batches-bin` folder.
pub fn load_test(dir: &Path) -> Result<ImageSet> {
    load_files(dir, &[TEST_FILE], &read_class_names(dir)?)
}

/// Whether `dir` holds every batch file.
pub fn is_complete(dir: &Path) -> bool {
    TRAIN_FILES.iter().chain(std::iter::once(&TEST_FILE)).all(|f| dir.join(f).is_file())
}

/// The official archive.
pub fn official_download() -> Download {
    Download {
        url: URL.to_string(),
        checksum: Checksum::Md5(MD5.to_string()),
        file_name: ARCHIVE_NAME.to_string(),
    }
}

/// The CIFAR-10 binary folder under `cache`, downloading and verifying `download` first if it is
/// not there (a mirror may be given with its own URL and MD5).
pub fn ensure(cache: &Path, download: &Download) -> Result<PathBuf> {
    let target = cache.join(DIR_NAME);
    if is_complete(&target) {
        tracing::info!("using cached CIFAR-10 in {}", target.display());
        return Ok(target);
    }
    fetch_archive(download, cache, DIR_NAME, is_complete)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record whose pixel (c, y, x) holds `(c * 7 + y * 3 + x) % 251` and the given label.
    pub fn synthetic_record(label: u8) -> Vec<u8> {
        let mut r = vec![label];
        for c in 0..3 {
            for y in 0..SIDE {
                for x in 0..SIDE {
                    r.push(((c * 7 + y * 3 + x) % 251) as u8);
                }
            }
        }
        r
    }

    #[test]
    fn parses_records_into_chw_layout() {
        let mut bytes = synthetic_record(3);
        bytes.extend(synthetic_record(9));
        let (images, labels) = parse_batch(&bytes, Path::new("b.bin")).expect("parse");
        assert_eq!(labels, vec![3, 9]);
        assert_eq!(images.len(), 2 * PIXELS);
        for c in 0..3 {
            for y in 0..SIDE {
                for x in 0..SIDE {
                    let v = images[PIXELS + c * 1024 + y * 32 + x];
                    assert_eq!(v as usize, (c * 7 + y * 3 + x) % 251, "at ({c},{y},{x})");
                }
            }
        }
    }

    #[test]
    fn truncated_record_names_file_and_offset() {
        let mut bytes = synthetic_record(1);
        bytes.extend(&synthetic_record(2)[..100]);
        let err = parse_batch(&bytes, Path::new("data_batch_1.bin")).unwrap_err().to_string();
        assert!(err.contains("data_batch_1.bin"), "{err}");
        assert!(err.contains("byte offset 3073"), "{err}");
        assert!(err.contains("3173 bytes"), "{err}");
    }

    #[test]
    fn bad_label_names_record_offset() {
        let mut bytes = synthetic_record(1);
        bytes.extend(synthetic_record(10));
        let err = parse_batch(&bytes, Path::new("x.bin")).unwrap_err().to_string();
        assert!(err.contains("record 1 at byte offset 3073 has label 10"), "{err}");
    }

    #[test]
    fn empty_file_is_an_error() {
        let err = parse_batch(&[], Path::new("e.bin")).unwrap_err().to_string();
        assert!(err.contains("e.bin") && err.contains("empty"), "{err}");
    }

    #[test]
    fn loads_a_batch_folder_with_meta() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, f) in TRAIN_FILES.iter().enumerate() {
            std::fs::write(dir.path().join(f), synthetic_record(i as u8)).expect("write");
        }
        std::fs::write(dir.path().join(TEST_FILE), synthetic_record(7)).expect("write");
        std::fs::write(dir.path().join(META_FILE), default_class_names().join("\n") + "\n\n")
            .expect("write");
        let (train, test) = load_dir(dir.path()).expect("load");
        assert_eq!(train.labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(test.labels, vec![7]);
        assert_eq!(train.classes[9], "truck");
        assert!(is_complete(dir.path()));
    }

    /// A tar.gz in the official layout with one record per batch.
    pub fn official_layout_archive() -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, format!("{DIR_NAME}/{name}"), data).expect("append");
        };
        for (i, f) in TRAIN_FILES.iter().enumerate() {
            add(f, &synthetic_record(i as u8));
        }
        add(TEST_FILE, &synthetic_record(9));
        add(META_FILE, default_class_names().join("\n").as_bytes());
        let raw = tar.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).expect("gz");
        gz.finish().expect("gz")
    }

    fn md5_hex(b: &[u8]) -> Checksum {
        use md5::Digest;
        Checksum::Md5(format!("{:x}", md5::Md5::digest(b)))
    }

    #[test]
    fn ensure_downloads_once_then_uses_cache() {
        let archive = official_layout_archive();
        // One connection only: a second download would fail.
        let url = crate::download::tests::serve(archive.clone(), None, 1);
        let cache = tempfile::tempdir().expect("tmp");
        let d = Download { url, checksum: md5_hex(&archive), file_name: ARCHIVE_NAME.into() };
        let dir = ensure(cache.path(), &d).expect("first");
        let (train, test) = load_dir(&dir).expect("load");
        assert_eq!((train.len(), test.len()), (5, 1));
        let again = ensure(cache.path(), &d).expect("cached");
        assert_eq!(again, dir);
        let names: Vec<_> = std::fs::read_dir(cache.path())
            .expect("ls")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(DIR_NAME)]);
    }

    #[test]
    fn ensure_with_wrong_md5_or_truncation_leaves_no_cache() {
        let archive = official_layout_archive();
        let cache = tempfile::tempdir().expect("tmp");
        let url = crate::download::tests::serve(archive.clone(), None, 1);
        let d =
            Download { url, checksum: Checksum::Md5(MD5.into()), file_name: ARCHIVE_NAME.into() };
        assert!(ensure(cache.path(), &d).unwrap_err().to_string().contains("MD5"));
        let url = crate::download::tests::serve(archive.clone(), Some(archive.len() / 2), 1);
        let d = Download { url, checksum: md5_hex(&archive), file_name: ARCHIVE_NAME.into() };
        assert!(ensure(cache.path(), &d).is_err());
        assert_eq!(std::fs::read_dir(cache.path()).expect("ls").count(), 0);
        assert!(!is_complete(&cache.path().join(DIR_NAME)));
    }
}
