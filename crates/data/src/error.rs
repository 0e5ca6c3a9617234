use std::path::PathBuf;

/// Everything that can go wrong while fetching or reading data. Every variant names the file
/// (or URL) it is about.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    // The I/O error is part of the message, not a `source`: anyhow's `{:#}` would print it twice.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("{}: cannot decode image: {message}", path.display())]
    Image { path: PathBuf, message: String },
    #[error("download of {url} failed: {message}")]
    Download { url: String, message: String },
    #[error(
        "{}: {algorithm} checksum mismatch (expected {expected}, got {actual}); the file was deleted, run again to re-download",
        path.display()
    )]
    Checksum { path: PathBuf, algorithm: &'static str, expected: String, actual: String },
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), error: source }
    }

    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Format { path: path.into(), message: message.into() }
    }
}
