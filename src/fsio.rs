//! Atomic file writes, shared by every artifact writer (zoo checkpoints, meta-models, reports,
//! caches): a crash or a kill leaves either the old file or the new one, never a torn one; and
//! the advisory lock ([`DirLock`]) that makes a second writer of an output folder fail clearly.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
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

/// An exclusive advisory lock (`flock`) on an output folder, held until dropped. The lock file
/// (`<dir>/.lock`, or a named one for writers that may share a folder, such as shards) holds the
/// holder's pid, which a second writer's error names. The lock is released by the kernel when the
/// holder exits, even on a kill, so a stale lock file never blocks a later run.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir` (created if missing) through `<dir>/.lock`.
    pub fn acquire(dir: &Path) -> std::io::Result<DirLock> {
        Self::acquire_named(dir, ".lock")
    }

    /// Locks `dir` through the lock file `<dir>/<name>`; an error of kind `WouldBlock` names the
    /// folder and the pid of the process that holds it.
    pub fn acquire_named(dir: &Path, name: &str) -> std::io::Result<DirLock> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    format!("process {holder}")
                };
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "{} is in use by {who} (lock file {}); wait for it to finish",
                        dir.display(),
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
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

    #[test]
    fn a_second_lock_fails_naming_the_holder_and_drop_releases() {
        let dir = std::env::temp_dir().join(format!("wf-lock-{}", std::process::id()));
        let first = DirLock::acquire(&dir).unwrap();
        let err = DirLock::acquire(&dir).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        let msg = err.to_string();
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        assert!(msg.contains("in use"), "{msg}");
        // A differently named lock in the same folder is independent.
        let other = DirLock::acquire_named(&dir, ".lock.shard-1").unwrap();
        drop(first);
        let again = DirLock::acquire(&dir).unwrap();
        drop((again, other));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
