//! Downloads that never leave a file a later run would trust: bytes go to a `.partial` name,
//! the MD5 is checked, the archive is extracted into a temporary folder, and only a complete,
//! verified folder is renamed into place.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::Md5;
use sha1::{Digest, Sha1};

use crate::{DataError, Result};

/// The published digest of a file, lowercase hex: CIFAR-10's authors publish an MD5; text8 is
/// known by its SHA-1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checksum {
    Md5(String),
    Sha1(String),
}

impl Checksum {
    fn name(&self) -> &'static str {
        match self {
            Checksum::Md5(_) => "MD5",
            Checksum::Sha1(_) => "SHA-1",
        }
    }

    fn expected(&self) -> &str {
        match self {
            Checksum::Md5(h) | Checksum::Sha1(h) => h,
        }
    }
}

/// A running digest of either kind.
enum Hasher {
    Md5(Md5),
    Sha1(Sha1),
}

impl Hasher {
    fn new(c: &Checksum) -> Self {
        match c {
            Checksum::Md5(_) => Hasher::Md5(Md5::new()),
            Checksum::Sha1(_) => Hasher::Sha1(Sha1::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
        }
    }

    fn hex(self) -> String {
        match self {
            Hasher::Md5(h) => format!("{:x}", h.finalize()),
            Hasher::Sha1(h) => format!("{:x}", h.finalize()),
        }
    }
}

/// What to fetch and how to recognise it.
#[derive(Clone, Debug)]
pub struct Download {
    pub url: String,
    pub checksum: Checksum,
    /// File name for the archive while it downloads.
    pub file_name: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |e| DataError::io(path, e)
}

/// Stream `download.url` to `dest` (through `dest.partial`), verifying the MD5. On any failure
/// nothing is left at `dest` or at the partial path.
pub fn fetch_file(download: &Download, dest: &Path) -> Result<()> {
    let partial = dest.with_extension("partial");
    let result = fetch_to(download, &partial);
    match result {
        Ok(()) => std::fs::rename(&partial, dest).map_err(io(dest)),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn fetch_to(download: &Download, partial: &Path) -> Result<()> {
    let url = &download.url;
    let fail = |message: String| DataError::Download { url: url.clone(), message };
    tracing::info!("downloading {url}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let (_, body) = response.into_parts();
    let total = body.content_length();
    let mut reader = body.into_reader();

    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(download.file_name.clone());

    let file = File::create(partial).map_err(io(partial))?;
    let mut out = BufWriter::new(file);
    let mut hasher = Hasher::new(&download.checksum);
    let mut buf = vec![0u8; 1 << 16];
    let mut received: u64 = 0;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| fail(format!("connection failed after {received} bytes: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io(partial))?;
        received += n as u64;
        bar.set_position(received);
    }
    out.flush().map_err(io(partial))?;
    out.get_ref().sync_all().map_err(io(partial))?;
    bar.finish_and_clear();
    if let Some(total) = total
        && received != total
    {
        return Err(fail(format!("received {received} of {total} bytes")));
    }
    let actual = hasher.hex();
    let expected = download.checksum.expected();
    if actual != expected.to_lowercase() {
        return Err(DataError::Checksum {
            path: partial.to_path_buf(),
            algorithm: download.checksum.name(),
            expected: expected.to_string(),
            actual,
        });
    }
    tracing::info!(
        "{}: {received} bytes, {} verified",
        download.file_name,
        download.checksum.name()
    );
    Ok(())
}

/// Download a `.tar.gz` archive into `cache` and extract its top folder `dir_name` into
/// `cache/dir_name`, which appears (by rename) only once `is_complete` accepts it.
pub fn fetch_archive(
    download: &Download,
    cache: &Path,
    dir_name: &str,
    is_complete: impl Fn(&Path) -> bool,
) -> Result<PathBuf> {
    std::fs::create_dir_all(cache).map_err(io(cache))?;
    let archive = cache.join(&download.file_name);
    // An archive already here was renamed into place only after its MD5 matched.
    if !archive.is_file() {
        fetch_file(download, &archive)?;
    }
    let tmp = cache.join(format!(".{dir_name}.tmp-{}", std::process::id()));
    let result = extract_tar_gz(&archive, &tmp).and_then(|()| {
        let extracted = tmp.join(dir_name);
        if !is_complete(&extracted) {
            return Err(DataError::format(
                &archive,
                format!("archive does not contain a complete `{dir_name}` folder"),
            ));
        }
        let target = cache.join(dir_name);
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(io(&target))?;
        }
        std::fs::rename(&extracted, &target).map_err(io(&target))?;
        Ok(target)
    });
    let _ = std::fs::remove_dir_all(&tmp);
    // The extracted folder is the cache; an archive that failed to extract is not worth keeping.
    let _ = std::fs::remove_file(&archive);
    result
}

fn extract_tar_gz(archive: &Path, into: &Path) -> Result<()> {
    if into.exists() {
        std::fs::remove_dir_all(into).map_err(io(into))?;
    }
    std::fs::create_dir_all(into).map_err(io(into))?;
    let file = File::open(archive).map_err(io(archive))?;
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    // `unpack` refuses entries that would escape `into`.
    tar::Archive::new(gz)
        .unpack(into)
        .map_err(|e| DataError::format(archive, format!("cannot extract archive: {e}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// Serve `body` once per connection on loopback; `cut_at` closes the connection after that
    /// many bytes while still announcing the full length. Returns the URL.
    pub fn serve(body: Vec<u8>, cut_at: Option<usize>, connections: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(connections) {
                let Ok(mut stream) = stream else { return };
                let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    line.clear();
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let end = cut_at.unwrap_or(body.len());
                let _ = stream.write_all(&body[..end]);
                let _ = stream.flush();
            }
        });
        format!("http://{addr}/archive.tar.gz")
    }

    fn md5_hex(b: &[u8]) -> Checksum {
        Checksum::Md5(format!("{:x}", Md5::digest(b)))
    }

    #[test]
    fn good_download_is_renamed_into_place() {
        let body = b"hello world".to_vec();
        let url = serve(body.clone(), None, 1);
        let dir = tempfile::tempdir().expect("tmp");
        let dest = dir.path().join("f.bin");
        let d = Download { url, checksum: md5_hex(&body), file_name: "f.bin".into() };
        fetch_file(&d, &dest).expect("download");
        assert_eq!(std::fs::read(&dest).expect("read"), body);
        assert!(!dir.path().join("f.partial").exists());
    }

    #[test]
    fn wrong_md5_leaves_nothing() {
        let url = serve(b"hello".to_vec(), None, 1);
        let dir = tempfile::tempdir().expect("tmp");
        let dest = dir.path().join("f.bin");
        let d =
            Download { url, checksum: Checksum::Md5("0".repeat(32)), file_name: "f.bin".into() };
        let err = fetch_file(&d, &dest).unwrap_err().to_string();
        assert!(err.contains("MD5 checksum mismatch"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn sha1_is_checked() {
        // SHA-1 of "hello" (sha1sum).
        let good = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d";
        let dir = tempfile::tempdir().expect("tmp");
        let dest = dir.path().join("f.bin");
        let d = Download {
            url: serve(b"hello".to_vec(), None, 1),
            checksum: Checksum::Sha1(good.into()),
            file_name: "f.bin".into(),
        };
        fetch_file(&d, &dest).expect("download");
        std::fs::remove_file(&dest).expect("rm");
        let d = Download { url: serve(b"hellO".to_vec(), None, 1), ..d };
        let err = fetch_file(&d, &dest).unwrap_err().to_string();
        assert!(err.contains("SHA-1 checksum mismatch (expected aaf4c61d"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn truncated_stream_leaves_nothing() {
        let body = vec![7u8; 100_000];
        let url = serve(body.clone(), Some(10_000), 1);
        let dir = tempfile::tempdir().expect("tmp");
        let dest = dir.path().join("f.bin");
        let d = Download { url, checksum: md5_hex(&body), file_name: "f.bin".into() };
        let err = fetch_file(&d, &dest).unwrap_err().to_string();
        assert!(err.contains("download of http://127.0.0.1"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }
}
