//! Atomic file writes, shared by every artifact writer (zoo checkpoints, meta-models, reports,
//! caches): a crash or a kill leaves either the old file or the new one, never a torn one; and
//! the advisory lock ([`DirLock`]) that makes a second writer of an output folder fail clearly;
//! multi-file artifacts committed as a whole ([`commit_dir`]); and append-only logs written one
//! whole line per `write` whose torn tail is cut before appending ([`append_line`],
//! [`repair_log_tail`]).

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

/// Whether `name` is a lock file of [`DirLock`] (`.lock`, `.lock.<name>`), which folder
/// contents checks should ignore.
pub fn is_lock_file(name: &str) -> bool {
    name == ".lock" || name.starts_with(".lock.")
}

/// Locks the output folder `dir` of a command: the whole folder (`<dir>/.lock`), or, for shard
/// `i` of `n` of a run whose shards share the folder, only that shard (`.lock.shard-I-of-N`).
pub fn lock_output(dir: &Path, shard: Option<(usize, usize)>) -> std::io::Result<DirLock> {
    match shard {
        None => DirLock::acquire(dir),
        Some((i, n)) => DirLock::acquire_named(dir, &format!(".lock.shard-{i}-of-{n}")),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            sync_tree(&e.path())?;
        } else if e.file_type()?.is_file() {
            File::open(e.path())?.sync_all()?;
        }
    }
    sync_dir(dir);
    Ok(())
}

/// Atomically swaps two paths (Linux `renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two valid NUL-terminated paths; the call only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// An error of [`commit_dir`]: the writer's own, or one of the filesystem.
#[derive(Debug)]
pub enum CommitError<E> {
    Write(E),
    Io(std::io::Error),
}

/// Commits the multi-file artifact folder `dir` as a whole: `write` fills a fresh staging sibling
/// (`.<name>.<pid>.new`), which is fsynced and then swapped with `dir` in one atomic rename
/// (`renameat2(RENAME_EXCHANGE)` when `dir` exists, a plain rename when it does not); the old
/// folder is then removed. A kill at any point leaves `dir` wholly old or wholly new (staging
/// folders of killed runs are removed by the next commit). The folder is replaced whole: files
/// of the old folder that `write` does not write are gone afterwards.
pub fn commit_dir<E>(dir: &Path, write: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), CommitError<E>> {
    let io = CommitError::Io;
    let parent = match dir.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dir
        .file_name()
        .ok_or_else(|| io(std::io::Error::other(format!("{}: not a folder name", dir.display()))))?
        .to_string_lossy()
        .to_string();
    std::fs::create_dir_all(&parent).map_err(io)?;
    // staging folders of earlier, killed commits of this folder
    let prefix = format!(".{name}.");
    for e in std::fs::read_dir(&parent).map_err(io)?.flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        let pid = n.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".new"));
        if pid.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let staging = parent.join(format!(".{name}.{}.new", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(io)?;
    let done = match write(&staging) {
        Ok(()) => sync_tree(&staging).map_err(io),
        Err(e) => Err(CommitError::Write(e)),
    };
    if let Err(e) = done {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let swapped = if dir.is_dir() {
        match exchange(&staging, dir) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
                // no RENAME_EXCHANGE on this filesystem: two renames, the old copy kept aside
                let old = parent.join(format!(".{name}.{}.old", std::process::id()));
                std::fs::rename(dir, &old)
                    .and_then(|_| std::fs::rename(&staging, dir))
                    .and_then(|_| std::fs::rename(&old, &staging))
            }
            Err(e) => Err(e),
        }
    } else {
        std::fs::rename(&staging, dir)
    };
    if let Err(e) = swapped {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(io(e));
    }
    sync_dir(&parent);
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}

/// Appends `line` and a newline to the append-only log `file` in one `write` call, then syncs
/// the data, so a kill leaves either the whole line or a torn tail that [`repair_log_tail`] cuts.
pub fn append_line(file: &mut File, line: &str) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    let n = file.write(&buf)?;
    if n != buf.len() {
        // a short write to a regular file (disk full): finish it, the reader cuts a torn tail
        file.write_all(&buf[n..])?;
    }
    file.sync_data()
}

/// Cuts a torn tail off the line log `path` (a last line without its newline, or one that
/// `valid` rejects), truncating the file in place and syncing it, so that the next append starts
/// on a line of its own. Returns the number of bytes cut (0 for a missing or clean file).
pub fn repair_log_tail(path: &Path, valid: impl Fn(&str) -> bool) -> std::io::Result<u64> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let last_start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let last = &body[last_start..];
    let whole = bytes.ends_with(b"\n");
    let ok = whole && (last.iter().all(u8::is_ascii_whitespace) || std::str::from_utf8(last).is_ok_and(&valid));
    if ok {
        return Ok(0);
    }
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(last_start as u64)?;
    f.sync_all()?;
    Ok((bytes.len() - last_start) as u64)
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

    #[test]
    fn commit_dir_replaces_the_folder_whole_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("m");
        commit_dir::<()>(&dir, |d| {
            std::fs::write(d.join("a"), "1").unwrap();
            std::fs::write(d.join("b"), "1").unwrap();
            Ok(())
        })
        .unwrap();
        // a writer that fails halfway (a kill) leaves the old folder untouched
        let r = commit_dir(&dir, |d| {
            std::fs::write(d.join("a"), "2").unwrap();
            Err("killed")
        });
        assert!(matches!(r, Err(CommitError::Write("killed"))));
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(dir.join("b")).unwrap(), "1");
        // a staging folder of a killed process is removed by the next commit
        std::fs::create_dir_all(root.path().join(".m.999999.new")).unwrap();
        let _lock = DirLock::acquire(&dir).unwrap();
        commit_dir::<()>(&dir, |d| {
            std::fs::write(d.join("a"), "3").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "3");
        assert!(!dir.join("b").exists());
        let names: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("m")]);
    }

    #[test]
    fn torn_log_tails_are_cut_and_appends_are_whole_lines() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path().join("log.jsonl");
        assert_eq!(repair_log_tail(&p, |_| true).unwrap(), 0);
        let mut f = OpenOptions::new().create(true).append(true).open(&p).unwrap();
        append_line(&mut f, "{\"a\":1}").unwrap();
        append_line(&mut f, "{\"a\":2}").unwrap();
        let valid = |l: &str| serde_json::from_str::<serde_json::Value>(l).is_ok();
        assert_eq!(repair_log_tail(&p, valid).unwrap(), 0);
        // a kill before the newline, and one mid-line
        for torn in ["{\"a\":3}", "{\"a\":"] {
            let mut f = OpenOptions::new().append(true).open(&p).unwrap();
            f.write_all(torn.as_bytes()).unwrap();
            assert_eq!(repair_log_tail(&p, valid).unwrap(), torn.len() as u64);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
        }
        // a whole last line that does not parse is cut too
        std::fs::write(&p, "{\"a\":1}\n{\"a\n").unwrap();
        assert_eq!(repair_log_tail(&p, valid).unwrap(), 4);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"a\":1}\n");
    }

    #[test]
    fn shards_lock_their_own_file() {
        let root = tempfile::tempdir().unwrap();
        let a = lock_output(root.path(), Some((0, 2))).unwrap();
        let b = lock_output(root.path(), Some((1, 2))).unwrap();
        assert!(lock_output(root.path(), Some((1, 2))).is_err());
        let whole = lock_output(root.path(), None).unwrap();
        assert!(lock_output(root.path(), None).is_err());
        drop((a, b, whole));
    }
}
