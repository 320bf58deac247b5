//! The error type of the data module: every variant names the file (or entry, or spec) and what
//! is wrong with it.

use std::path::PathBuf;

/// Errors of reading, parsing, converting or downloading datasets.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A bad dataset spec string.
    #[error("bad dataset spec `{spec}`: {reason}")]
    Spec { spec: String, reason: String },
    /// A file that cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file whose contents are not in the expected format.
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    /// One entry (image in a folder or archive, array in an .npz) that is wrong.
    #[error("{path}: entry `{entry}`: {reason}")]
    Entry {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    /// An expected file that does not exist.
    #[error("missing file {path} ({hint})")]
    Missing { path: PathBuf, hint: String },
    /// Images and labels that do not agree.
    #[error("{path}: {images} images but {labels} labels")]
    CountMismatch {
        path: PathBuf,
        images: usize,
        labels: usize,
    },
    /// A dataset with nothing in it, or an empty class.
    #[error("{what}: {reason}")]
    Empty { what: String, reason: String },
    /// An invalid argument to a library function (split fraction, index, severity).
    #[error("invalid argument {name}: {reason}")]
    Arg { name: String, reason: String },
    /// A failed download or checksum.
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn entry(path: impl Into<PathBuf>, entry: impl Into<String>, reason: impl Into<String>) -> Self {
        DataError::Entry {
            path: path.into(),
            entry: entry.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn arg(name: &str, reason: impl Into<String>) -> Self {
        DataError::Arg {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// Reads a whole file, mapping the error to one that names it.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>, DataError> {
    if !path.exists() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
            hint: "file not found".into(),
        });
    }
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}
