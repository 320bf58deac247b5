//! Atomic file writes, shared by every artifact writer (zoo checkpoints, meta-models, reports,
//! caches): a crash or a kill leaves either the old file or the new one, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: creates the parent folder, writes and fsyncs a sibling
/// temp file `<name>.<pid>.tmp` (concurrent writers do not share it), renames it over `path` and
/// fsyncs the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The file a temp file of [`write_atomic`] (or an older `<name>.tmp`) was written for, or `None`
/// when `name` is not a temp file.
pub fn temp_target(name: &str) -> Option<&str> {
    let base = name.strip_suffix(".tmp")?;
    Some(match base.rsplit_once('.') {
        Some((head, pid)) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("wf-fsio-{}", std::process::id()));
        let path = dir.join("sub").join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(temp_target("a.json.123.tmp"), Some("a.json"));
        assert_eq!(
            temp_target("epoch_0002.safetensors.tmp"),
            Some("epoch_0002.safetensors")
        );
        assert_eq!(temp_target("a.json"), None);
        // A folder in the way: an error, no panic, nothing left behind.
        assert!(write_atomic(&dir.join("sub"), b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
