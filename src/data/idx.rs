//! IDX files (MNIST, Fashion-MNIST): `train-images-idx3-ubyte[.gz]` + `train-labels-idx1-ubyte[.gz]`
//! (and `t10k-*` for the test split). Format: two zero bytes, a type byte (0x08 = u8), the number
//! of dimensions, then each dimension as a big-endian u32, then the data.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{read_file, DataError};
use super::Dataset;

/// The MNIST class names.
pub const MNIST_CLASSES: &[&str] = &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
/// The Fashion-MNIST class names.
pub const FASHION_CLASSES: &[&str] = &[
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Reads a file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = read_file(path)?;
    gunzip_if_needed(path, raw)
}

/// Gunzips `raw` when it starts with the gzip magic, else returns it unchanged. The output may
/// not outgrow [`crate::limits::inflate_cap`] of the input (gzip bombs are errors, found after
/// reading at most the cap).
pub fn gunzip_if_needed(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        let cap = crate::limits::inflate_cap(raw.len() as u64);
        let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(cap as usize));
        flate2::read::GzDecoder::new(&raw[..])
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| DataError::format(path, format!("broken gzip stream: {e}")))?;
        if out.len() as u64 > cap {
            let e = crate::limits::check_inflate("the gzip stream", raw.len() as u64, out.len() as u64);
            return Err(DataError::format(
                path,
                e.err().map_or_else(String::new, |e| e.to_string()),
            ));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX byte buffer of u8 data: returns the dimensions and the data slice.
pub fn parse_idx<'a>(path: &Path, bytes: &'a [u8]) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    if bytes.len() < 4 {
        return Err(DataError::format(
            path,
            format!("{} bytes: too short for an IDX header", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::format(
            path,
            format!(
                "wrong magic number {:02x}{:02x}{:02x}{:02x}: not an IDX file",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(DataError::format(
            path,
            format!(
                "IDX data type 0x{:02x}, only unsigned bytes (0x08) are supported",
                bytes[2]
            ),
        ));
    }
    let nd = bytes[3] as usize;
    if nd == 0 || nd > 4 {
        return Err(DataError::format(path, format!("IDX with {nd} dimensions")));
    }
    let head = 4 + 4 * nd;
    if bytes.len() < head {
        return Err(DataError::format(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let want = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let data = &bytes[head..];
    match want {
        Some(w) if w == data.len() => Ok((dims, data)),
        Some(w) if w > data.len() => Err(DataError::format(
            path,
            format!(
                "truncated: header {:?} needs {w} data bytes, file has {}",
                dims,
                data.len()
            ),
        )),
        Some(w) => Err(DataError::format(
            path,
            format!("{} trailing bytes after {w} data bytes", data.len() - w),
        )),
        None => Err(DataError::format(path, format!("dimensions {dims:?} overflow"))),
    }
}

/// Images `[N, 1, H, W]` and labels from two IDX buffers.
pub fn from_idx_bytes(
    img_path: &Path,
    img: &[u8],
    lab_path: &Path,
    lab: &[u8],
    class_names: &[&str],
) -> Result<Dataset, DataError> {
    let (idims, idata) = parse_idx(img_path, img)?;
    if idims.len() != 3 {
        return Err(DataError::format(
            img_path,
            format!("image file has dimensions {idims:?}, expected [N, H, W]"),
        ));
    }
    let (ldims, ldata) = parse_idx(lab_path, lab)?;
    if ldims.len() != 1 {
        return Err(DataError::format(
            lab_path,
            format!("label file has dimensions {ldims:?}, expected [N]"),
        ));
    }
    if idims[0] != ldims[0] {
        return Err(DataError::CountMismatch {
            path: img_path.to_path_buf(),
            images: idims[0],
            labels: ldims[0],
        });
    }
    if let Some(i) = ldata.iter().position(|&l| l as usize >= class_names.len()) {
        return Err(DataError::entry(
            lab_path,
            format!("label {i}"),
            format!("value {} out of range", ldata[i]),
        ));
    }
    Dataset::new(
        img_path.display().to_string(),
        idata.to_vec(),
        ldata.iter().map(|&l| l as u32).collect(),
        [1, idims[1], idims[2]],
        class_names.iter().map(|s| s.to_string()).collect(),
    )
}

fn find(dir: &Path, stems: &[String]) -> Result<PathBuf, DataError> {
    for s in stems {
        for cand in [dir.join(s), dir.join(format!("{s}.gz"))] {
            if cand.is_file() {
                return Ok(cand);
            }
        }
    }
    Err(DataError::Missing {
        path: dir.join(&stems[0]),
        hint: "expected the IDX file, raw or .gz".into(),
    })
}

/// Reads `split` (`train` or `test`) from a directory of MNIST-style IDX files.
pub fn read_mnist_dir(dir: &Path, split: &str, class_names: &[&str]) -> Result<Dataset, DataError> {
    let prefix = match split {
        "train" => "train",
        "test" | "t10k" => "t10k",
        other => {
            return Err(DataError::Spec {
                spec: dir.display().to_string(),
                reason: format!("split `{other}`: IDX datasets have `train` and `test`"),
            })
        }
    };
    let ip = find(
        dir,
        &[
            format!("{prefix}-images-idx3-ubyte"),
            format!("{prefix}-images.idx3-ubyte"),
        ],
    )?;
    let lp = find(
        dir,
        &[
            format!("{prefix}-labels-idx1-ubyte"),
            format!("{prefix}-labels.idx1-ubyte"),
        ],
    )?;
    let img = read_maybe_gz(&ip)?;
    let lab = read_maybe_gz(&lp)?;
    from_idx_bytes(&ip, &img, &lp, &lab, class_names)
}

/// Encodes IDX bytes (u8 data) — used by tests and `data export`.
pub fn write_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_raw_and_gz_and_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let imgs: Vec<u8> = (0..5 * 28 * 28).map(|i| (i % 251) as u8).collect();
        std::fs::write(
            dir.path().join("t10k-images-idx3-ubyte.gz"),
            gz(&write_idx(&[5, 28, 28], &imgs)),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("t10k-labels-idx1-ubyte"),
            write_idx(&[5], &[3, 1, 4, 1, 5]),
        )
        .unwrap();
        let d = read_mnist_dir(dir.path(), "test", MNIST_CLASSES).unwrap();
        assert_eq!((d.len(), d.shape), (5, [1, 28, 28]));
        assert_eq!(d.labels, vec![3, 1, 4, 1, 5]);
        assert_eq!(d.images, imgs);
        // count mismatch
        std::fs::write(
            dir.path().join("t10k-labels-idx1-ubyte"),
            write_idx(&[4], &[3, 1, 4, 1]),
        )
        .unwrap();
        let e = read_mnist_dir(dir.path(), "test", MNIST_CLASSES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("5 images but 4 labels"), "{e}");
        // truncated gzip
        let full = gz(&write_idx(&[5, 28, 28], &imgs));
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), &full[..full.len() / 2]).unwrap();
        let e = read_mnist_dir(dir.path(), "test", MNIST_CLASSES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("t10k-images-idx3-ubyte.gz"), "{e}");
        // wrong magic
        let p = Path::new("x");
        assert!(parse_idx(p, &[1, 2, 3, 4, 5])
            .unwrap_err()
            .to_string()
            .contains("magic"));
        assert!(parse_idx(p, &write_idx(&[5, 2], &[0; 9]))
            .unwrap_err()
            .to_string()
            .contains("truncated"));
        // missing split file
        assert!(read_mnist_dir(dir.path(), "train", MNIST_CLASSES).is_err());
    }

    /// Issue item 8: a small IDX.gz inflating to far more than its size (256 MiB from about
    /// 250 KiB here, 1 GiB in the probe) is refused after reading at most the cap.
    #[test]
    fn gzip_bombs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&write_idx(&[256, 1024, 1024], &[])).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let p = dir.path().join("t10k-images-idx3-ubyte.gz");
        std::fs::write(&p, &bomb).unwrap();
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), write_idx(&[1], &[0])).unwrap();
        let e = read_mnist_dir(dir.path(), "test", MNIST_CLASSES)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t10k-images-idx3-ubyte.gz") && e.contains("decompression bomb"),
            "{e}"
        );
    }
}
