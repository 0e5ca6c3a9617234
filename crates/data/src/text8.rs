//! text8: the first 10⁸ bytes of an English Wikipedia dump, cleaned to lowercase words on one
//! line (Matt Mahoney), the classic word2vec benchmark corpus. Downloaded as `text8.zip`, its
//! SHA-1 checked, and unzipped into the cache; the file appears only once it is complete.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::download::{Checksum, Download, fetch_file};
use crate::{DataError, Result};

pub const URL: &str = "http://mattmahoney.net/dc/text8.zip";
/// SHA-1 of text8.zip (31,344,016 bytes), as pinned by gluon-nlp's Text8 dataset.
pub const SHA1: &str = "6c70299b93b7e1f927b42cd8f6ac1a31547c7a2e";
pub const ARCHIVE_NAME: &str = "text8.zip";
/// The member of the archive and the name of the cached file.
pub const FILE_NAME: &str = "text8";
/// text8 is exactly 10⁸ bytes.
pub const SIZE: u64 = 100_000_000;

pub fn official_download() -> Download {
    Download {
        url: URL.to_string(),
        checksum: Checksum::Sha1(SHA1.to_string()),
        file_name: ARCHIVE_NAME.to_string(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |e| DataError::io(path, e)
}

/// The text8 file in `cache`: there already if a previous run completed it, else downloaded
/// (`download`), verified, unzipped to a temporary name, checked to be `size` bytes and renamed
/// into place. The archive is deleted afterwards: the unzipped file is the cache.
pub fn ensure(cache: &Path, download: &Download, size: u64) -> Result<PathBuf> {
    let target = cache.join(FILE_NAME);
    if std::fs::metadata(&target).is_ok_and(|m| m.len() == size) {
        return Ok(target);
    }
    std::fs::create_dir_all(cache).map_err(io(cache))?;
    let archive = cache.join(&download.file_name);
    // An archive already here was renamed into place only after its checksum matched.
    if !archive.is_file() {
        fetch_file(download, &archive)?;
    }
    let tmp = cache.join(format!(".{FILE_NAME}.tmp-{}", std::process::id()));
    let result = unzip_member(&archive, FILE_NAME, &tmp).and_then(|written| {
        if written != size {
            return Err(DataError::format(
                &archive,
                format!("`{FILE_NAME}` in the archive is {written} bytes, expected {size}"),
            ));
        }
        std::fs::rename(&tmp, &target).map_err(io(&target))
    });
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&archive);
    result.map(|()| target)
}

/// Copy `member` of the zip `archive` to `dest`; returns its size.
fn unzip_member(archive: &Path, member: &str, dest: &Path) -> Result<u64> {
    let bad = |e: zip::result::ZipError| {
        DataError::format(archive, format!("cannot read zip archive: {e}"))
    };
    let mut zip = zip::ZipArchive::new(File::open(archive).map_err(io(archive))?).map_err(bad)?;
    let mut entry = zip.by_name(member).map_err(bad)?;
    let mut out = std::io::BufWriter::new(File::create(dest).map_err(io(dest))?);
    // A CRC mismatch or a truncated member surfaces as a read error here.
    let n = std::io::copy(&mut entry, &mut out)
        .map_err(|e| DataError::format(archive, format!("cannot extract `{member}`: {e}")))?;
    let file = out.into_inner().map_err(|e| DataError::io(dest, e.into_error()))?;
    file.sync_all().map_err(io(dest))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::{Digest, Sha1};
    use std::io::Write;

    fn zip_of(member: &str, body: &[u8]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        w.start_file(
            member,
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Deflated),
        )
        .expect("start");
        w.write_all(body).expect("write");
        w.finish().expect("finish");
        drop(w);
        buf.into_inner()
    }

    fn download_of(archive: &[u8], connections: usize) -> Download {
        let url = crate::download::tests::serve(archive.to_vec(), None, connections);
        Download {
            url,
            checksum: Checksum::Sha1(format!("{:x}", Sha1::digest(archive))),
            file_name: ARCHIVE_NAME.into(),
        }
    }

    #[test]
    fn downloads_unzips_and_caches() {
        let text = b" anarchism originated as a term of abuse".repeat(100);
        let archive = zip_of(FILE_NAME, &text);
        let dir = tempfile::tempdir().expect("tmp");
        let d = download_of(&archive, 1);
        let path = ensure(dir.path(), &d, text.len() as u64).expect("text8");
        assert_eq!(std::fs::read(&path).expect("read"), text);
        // Only the unzipped file stays; a second call uses it without a connection (the
        // server accepted one).
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("e").file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
        assert_eq!(ensure(dir.path(), &d, text.len() as u64).expect("cached"), path);
    }

    #[test]
    fn wrong_size_or_member_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let archive = zip_of(FILE_NAME, b"too short");
        let err = ensure(dir.path(), &download_of(&archive, 1), SIZE).unwrap_err().to_string();
        assert!(
            err.contains("text8.zip: `text8` in the archive is 9 bytes, expected 100000000"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);

        let archive = zip_of("other.txt", b"words");
        let err = ensure(dir.path(), &download_of(&archive, 1), 5).unwrap_err().to_string();
        assert!(err.contains("cannot read zip archive"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn corrupt_archive_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        // Letters that do not compress away, so the middle of the archive is deflate data.
        let mut x = 1u32;
        let text: Vec<u8> = (0..8000)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                b'a' + (x >> 24) as u8 % 26
            })
            .collect();
        let mut archive = zip_of(FILE_NAME, &text);
        // Flip bytes in the compressed data: the checksum of the download still matches (it is
        // computed from these bytes), so the zip reader must catch it.
        let mid = archive.len() / 2;
        archive[mid] ^= 0xff;
        archive[mid + 1] ^= 0xff;
        let err = ensure(dir.path(), &download_of(&archive, 1), 8000).unwrap_err().to_string();
        assert!(err.contains("text8.zip"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }
}
