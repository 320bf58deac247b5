//! JSON files: atomic writes (temp file + rename) and reads that name the file in their errors.

use super::ReportError;
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

/// Writes `value` as pretty JSON to `path` atomically (a temp file in the same folder, then rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ReportError> {
    let shown = path.display().to_string();
    let text = serde_json::to_string_pretty(value).map_err(|source| ReportError::Json {
        path: shown.clone(),
        source,
    })?;
    write_atomic(path, text.as_bytes())
}

/// Writes `bytes` to `path` atomically ([`crate::fsio::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    crate::fsio::write_atomic(path, bytes).map_err(|source| ReportError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads JSON from `path`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: shown.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json { path: shown, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.json");
        write_json(&p, &serde_json::json!({"a": [1, 2]})).unwrap();
        let v: serde_json::Value = read_json(&p).unwrap();
        assert_eq!(v["a"][1], 2);
        std::fs::write(&p, "{oops").unwrap();
        let e = read_json::<serde_json::Value>(&p).unwrap_err().to_string();
        assert!(e.contains("x.json"), "{e}");
        let e = read_json::<serde_json::Value>(&dir.path().join("none.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.json"), "{e}");
    }
}
