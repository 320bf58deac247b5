//! Downloads of the official dataset files over HTTPS (`ureq`), with checksums and resume.
//!
//! Files go to `ROOT/<name>/`; a partial download is kept as `FILE.part` and resumed with an HTTP
//! `Range` request. Archives (`.tar.gz`) are unpacked next to themselves, so the spec
//! `KIND:ROOT/<name>[:SPLIT]` reads them. Checksums: sha256 where one is published or was measured
//! on a verified copy, else the md5 the publisher gives (MNIST, CIFAR, STL-10), else none (the
//! sha256 of what arrived is printed so it can be pinned). Offline, the connection fails within
//! seconds and the error names the URL and the files to place by hand.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::DataError;

/// An expected checksum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Checksum {
    Sha256(&'static str),
    Md5(&'static str),
    None,
}

/// One file of a dataset.
#[derive(Clone, Copy, Debug)]
pub struct RemoteFile {
    pub url: &'static str,
    pub file: &'static str,
    pub checksum: Checksum,
    /// Unpack this `.tar.gz` after download.
    pub extract: bool,
}

/// A downloadable dataset.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    pub name: &'static str,
    /// The spec kind that reads it.
    pub kind: &'static str,
    pub files: &'static [RemoteFile],
}

const fn f(url: &'static str, file: &'static str, checksum: Checksum, extract: bool) -> RemoteFile {
    RemoteFile {
        url,
        file,
        checksum,
        extract,
    }
}

/// The known datasets.
pub const SOURCES: &[Source] = &[
    Source {
        name: "mnist",
        kind: "mnist",
        files: &[
            f(
                "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                "train-images-idx3-ubyte.gz",
                Checksum::Md5("f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                false,
            ),
            f(
                "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                Checksum::Md5("d53e105ee54ea40749a09fcbcd1e9432"),
                false,
            ),
            f(
                "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                Checksum::Sha256("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
                false,
            ),
            f(
                "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
                Checksum::Sha256("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
                false,
            ),
        ],
    },
    Source {
        name: "fashion-mnist",
        kind: "fashion-mnist",
        files: &[
            f(
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/train-images-idx3-ubyte.gz",
                "train-images-idx3-ubyte.gz",
                Checksum::Md5("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                false,
            ),
            f(
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/train-labels-idx1-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                Checksum::Md5("25c81989df183df01b3e8a0aad5dffbe"),
                false,
            ),
            f(
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/t10k-images-idx3-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                Checksum::Md5("bef4ecab320f06d8554ea6380940ec79"),
                false,
            ),
            f(
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/t10k-labels-idx1-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
                Checksum::Md5("bb300cfdad3c16e7a12a480ee83cd310"),
                false,
            ),
        ],
    },
    Source {
        name: "cifar10",
        kind: "cifar10",
        files: &[f(
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            "cifar-10-binary.tar.gz",
            Checksum::Md5("c32a1d4ab5d03f1284b67883e8d87530"),
            true,
        )],
    },
    Source {
        name: "cifar100",
        kind: "cifar100",
        files: &[f(
            "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
            "cifar-100-binary.tar.gz",
            Checksum::Md5("03b5dce01913d631647c71ecec9e9cb8"),
            true,
        )],
    },
    Source {
        name: "stl10",
        kind: "stl10",
        files: &[f(
            "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
            "stl10_binary.tar.gz",
            Checksum::Md5("91f7769df0f17e558f3565bffb0c7dfb"),
            true,
        )],
    },
    Source {
        name: "cifar10.1",
        kind: "cifar10.1",
        files: &[
            f(
                "https://raw.githubusercontent.com/modestyachts/CIFAR-10.1/master/datasets/cifar10.1_v6_data.npy",
                "cifar10.1_v6_data.npy",
                Checksum::None,
                false,
            ),
            f(
                "https://raw.githubusercontent.com/modestyachts/CIFAR-10.1/master/datasets/cifar10.1_v6_labels.npy",
                "cifar10.1_v6_labels.npy",
                Checksum::None,
                false,
            ),
            f(
                "https://raw.githubusercontent.com/modestyachts/CIFAR-10.1/master/datasets/cifar10.1_v4_data.npy",
                "cifar10.1_v4_data.npy",
                Checksum::None,
                false,
            ),
            f(
                "https://raw.githubusercontent.com/modestyachts/CIFAR-10.1/master/datasets/cifar10.1_v4_labels.npy",
                "cifar10.1_v4_labels.npy",
                Checksum::None,
                false,
            ),
        ],
    },
    Source {
        name: "camelyon17",
        kind: "camelyon17",
        files: &[f(
            "https://worksheets.codalab.org/rest/bundles/0xe45e15f39fb54e9d9e919556af67aabe/contents/blob/",
            "camelyon17_v1.0.tar.gz",
            Checksum::None,
            true,
        )],
    },
];

/// Looks up a dataset by name.
pub fn source(name: &str) -> Result<&'static Source, DataError> {
    SOURCES.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = SOURCES.iter().map(|s| s.name).collect();
        DataError::arg(
            "dataset",
            format!("unknown dataset `{name}` (known: {})", names.join(", ")),
        )
    })
}

/// Hex digest of a file with the given checksum kind.
pub fn file_digest(path: &Path, md5: bool) -> Result<String, DataError> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut sha = Sha256::new();
    let mut m = md5::Md5::new();
    loop {
        let n = file.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        if md5 {
            m.update(&buf[..n]);
        } else {
            sha.update(&buf[..n]);
        }
    }
    Ok(if md5 { hex(&m.finalize()) } else { hex(&sha.finalize()) })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks `path` against `c`; returns the sha256 of the file.
pub fn verify(path: &Path, c: Checksum) -> Result<String, DataError> {
    let sha = file_digest(path, false)?;
    let (kind, want, got) = match c {
        Checksum::Sha256(w) => ("sha256", w, sha.clone()),
        Checksum::Md5(w) => ("md5", w, file_digest(path, true)?),
        Checksum::None => return Ok(sha),
    };
    if got != want {
        return Err(DataError::format(
            path,
            format!("{kind} is {got}, expected {want} (corrupt or changed file)"),
        ));
    }
    Ok(sha)
}

fn manual_hint(src: &Source, dir: &Path) -> String {
    let files: Vec<String> = src
        .files
        .iter()
        .map(|f| format!("{} -> {}", f.url, dir.join(f.file).display()))
        .collect();
    format!(
        "no connection? place the files by hand, then run the command again to verify (and unpack) them: {}",
        files.join("; ")
    )
}

/// Fetches `url` into `dest`, resuming from `dest.part`.
pub fn fetch(url: &str, dest: &Path, timeout: Duration) -> Result<(), DataError> {
    let part = PathBuf::from(format!("{}.part", dest.display()));
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout_read(Duration::from_secs(60))
        .build();
    let mut req = agent.get(url);
    if have > 0 {
        req = req.set("Range", &format!("bytes={have}-"));
    }
    let derr = |reason: String| DataError::Download {
        url: url.to_string(),
        reason,
    };
    let resp = req.call().map_err(|e| derr(e.to_string()))?;
    let append = have > 0 && resp.status() == 206;
    let total = resp
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|n| n + if append { have } else { 0 });
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(&part)
        .map_err(|e| DataError::io(&part, e))?;
    let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
    bar.set_position(if append { have } else { 0 });
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| derr(format!("connection dropped ({e}); run again to resume")))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| DataError::io(&part, e))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    drop(out);
    std::fs::rename(&part, dest).map_err(|e| DataError::io(dest, e))
}

/// Downloads (or verifies, when present) every file of `name` into `root/name`; returns the
/// directory and one line per file.
pub fn download(name: &str, root: &Path) -> Result<(PathBuf, Vec<String>), DataError> {
    let src = source(name)?;
    download_source(src, root, Duration::from_secs(10))
}

/// [`download`] for an explicit source (tests use a local URL).
pub fn download_source(src: &Source, root: &Path, timeout: Duration) -> Result<(PathBuf, Vec<String>), DataError> {
    let dir = root.join(src.name);
    let _lock = crate::fsio::lock_output(&dir, None).map_err(|e| DataError::io(&dir, e))?;
    let mut report = Vec::new();
    for rf in src.files {
        let dest = dir.join(rf.file);
        if !dest.is_file() {
            fetch(rf.url, &dest, timeout).map_err(|e| match e {
                DataError::Download { url, reason } => DataError::Download {
                    url,
                    reason: format!("{reason}; {}", manual_hint(src, &dir)),
                },
                other => other,
            })?;
        }
        let sha = verify(&dest, rf.checksum)?;
        if rf.extract {
            let file = std::fs::File::open(&dest).map_err(|e| DataError::io(&dest, e))?;
            tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
                .unpack(&dir)
                .map_err(|e| DataError::format(&dest, format!("cannot unpack: {e}")))?;
        }
        let check = match rf.checksum {
            Checksum::None => "no published checksum",
            Checksum::Md5(_) => "md5 ok",
            Checksum::Sha256(_) => "sha256 ok",
        };
        report.push(format!("{} ({check}; sha256 {sha})", dest.display()));
    }
    Ok((dir, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_vectors() {
        for (input, want) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            let mut m = md5::Md5::new();
            m.update(input.as_bytes());
            assert_eq!(hex(&m.finalize()), want);
        }
    }

    #[test]
    fn offline_fails_fast_naming_url_and_files_and_checksums_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        // a local port with nothing listening: refused at once, no network involved
        const FILES: &[RemoteFile] = &[f(
            "http://127.0.0.1:9/x.bin",
            "x.bin",
            Checksum::Md5("900150983cd24fb0d6963f7d28e17f72"),
            false,
        )];
        let src = Source {
            name: "t",
            kind: "npy",
            files: FILES,
        };
        let t = std::time::Instant::now();
        let e = download_source(&src, dir.path(), Duration::from_secs(2))
            .unwrap_err()
            .to_string();
        assert!(t.elapsed().as_secs() < 5);
        assert!(
            e.contains("http://127.0.0.1:9/x.bin") && e.contains("x.bin") && e.contains("by hand"),
            "{e}"
        );
        // a file placed by hand is verified instead of downloaded
        std::fs::write(dir.path().join("t/x.bin"), b"abc").unwrap();
        let (_, rep) = download_source(&src, dir.path(), Duration::from_secs(2)).unwrap();
        assert!(rep[0].contains("md5 ok"));
        std::fs::write(dir.path().join("t/x.bin"), b"abd").unwrap();
        assert!(download_source(&src, dir.path(), Duration::from_secs(2))
            .unwrap_err()
            .to_string()
            .contains("expected"));
        assert!(source("nope").is_err());
        assert!(source("mnist").is_ok());
    }
}
