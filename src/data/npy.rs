//! NumPy `.npy` (format versions 1–3) and `.npz` (zip, stored or deflated) readers and an `.npy`
//! writer; the CIFAR-10.1 release (`cifar10.1_{v4,v6}_{data,labels}.npy`) and generic image arrays.
//!
//! Image arrays are `uint8`, `float32` or `float64`, shaped `[N, H, W]` (gray), `[N, H, W, C]` or
//! `[N, C, H, W]` with C ∈ {1, 3} (scale and layout rules: [`super::array`]). Labels may be any
//! integer dtype, shape `[N]`; without a label array (a single `.npy`, an `.npz` without `y`, a
//! directory without `y.npy`) the dataset is unlabeled.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{read_file, DataError};
use super::Dataset;

/// A decoded array: shape and the raw little-endian bytes with their dtype descriptor.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub descr: String,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let k = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[k + key.len() + 2..];
    let colon = rest.find(':')?;
    Some(rest[colon + 1..].trim_start())
}

/// Parses an `.npy` buffer.
pub fn parse_npy(path: &Path, b: &[u8]) -> Result<NpyArray, DataError> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(DataError::format(path, "wrong magic: not a .npy file"));
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10usize),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(DataError::format(path, format!("unsupported .npy format version {v}"))),
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| DataError::format(path, "truncated .npy header"))?;
    let header = std::str::from_utf8(&b[start..end]).map_err(|_| DataError::format(path, "header is not text"))?;
    let descr = header_value(header, "descr")
        .and_then(|v| {
            let q = v.chars().next()?;
            let v = &v[q.len_utf8()..];
            Some(v[..v.find(q)?].to_string())
        })
        .ok_or_else(|| DataError::format(path, format!("no dtype in header `{header}`")))?;
    if header_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(DataError::format(path, "Fortran-ordered arrays are not supported"));
    }
    let shape_s = header_value(header, "shape")
        .and_then(|v| {
            v.strip_prefix('(')
                .and_then(|v| v.find(')').map(|e| v[..e].to_string()))
        })
        .ok_or_else(|| DataError::format(path, format!("no shape in header `{header}`")))?;
    let mut shape = Vec::new();
    for part in shape_s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        shape.push(
            part.parse::<usize>()
                .map_err(|_| DataError::format(path, format!("bad shape entry `{part}`")))?,
        );
    }
    let item = dtype_size(&descr).ok_or_else(|| DataError::format(path, format!("unsupported dtype `{descr}`")))?;
    let want = shape
        .iter()
        .try_fold(item, |a, &d| a.checked_mul(d))
        .ok_or_else(|| DataError::format(path, format!("shape {shape:?} overflows")))?;
    let data = &b[end..];
    if data.len() != want {
        return Err(DataError::format(
            path,
            format!(
                "shape {shape:?} of `{descr}` needs {want} bytes, file has {} (truncated?)",
                data.len()
            ),
        ));
    }
    Ok(NpyArray {
        descr,
        shape,
        data: data.to_vec(),
    })
}

fn dtype_size(d: &str) -> Option<usize> {
    if !d.is_ascii() {
        return None;
    }
    let (order, rest) = d.split_at(1.min(d.len()));
    if !matches!(order, "<" | "|" | "=") {
        return None; // big-endian is not supported
    }
    match rest {
        "u1" | "i1" | "b1" => Some(1),
        "u2" | "i2" => Some(2),
        "u4" | "i4" | "f4" => Some(4),
        "u8" | "i8" | "f8" => Some(8),
        _ => None,
    }
}

impl NpyArray {
    /// The values as integer labels (any integer dtype; negative values are errors).
    pub fn to_labels(&self, path: &Path) -> Result<Vec<u32>, DataError> {
        let size = dtype_size(&self.descr).unwrap_or(0);
        let signed = self.descr.contains('i');
        if self.descr.contains('f') || size == 0 {
            return Err(DataError::format(
                path,
                format!("labels must be integers, dtype is `{}`", self.descr),
            ));
        }
        let mut out = Vec::with_capacity(self.data.len() / size);
        for (i, c) in self.data.chunks_exact(size).enumerate() {
            let mut buf = [0u8; 8];
            buf[..size].copy_from_slice(c);
            if signed && c[size - 1] & 0x80 != 0 {
                return Err(DataError::entry(path, format!("label {i}"), "negative value"));
            }
            let v = u64::from_le_bytes(buf);
            out.push(u32::try_from(v).map_err(|_| DataError::entry(path, format!("label {i}"), "value too large"))?);
        }
        Ok(out)
    }
}

/// Writes an `.npy` (version 1) buffer.
pub fn write_npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Reads every member of a zip archive (`.npz`): `(name, bytes)`, through the `zip` crate
/// (stored and deflated members, ZIP64; CRC-32 checked). Each member's declared size is checked
/// against the limits ([`crate::limits::check_inflate`]) before anything is allocated for it, and
/// its bytes are read up to that size only.
pub fn read_zip(path: &Path, b: &[u8]) -> Result<Vec<(String, Vec<u8>)>, DataError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(b))
        .map_err(|e| DataError::format(path, format!("not a valid .npz/zip archive: {e}")))?;
    let mut out = Vec::with_capacity(archive.len().min(1024));
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut member = archive
            .by_index(i)
            .map_err(|e| DataError::format(path, format!("zip member {i}: {e}")))?;
        let name = member.name().to_string();
        let size = member.size();
        total = total.saturating_add(size);
        crate::limits::check_inflate(&format!("{} member `{name}`", path.display()), b.len() as u64, total)
            .map_err(|e| DataError::entry(path, &name, e.to_string()))?;
        let mut data = Vec::with_capacity(size.min(b.len() as u64 * 4) as usize);
        // one byte past the declared size: the reader's end, where the zip crate checks the CRC
        (&mut member)
            .take(size + 1)
            .read_to_end(&mut data)
            .map_err(|e| DataError::entry(path, &name, format!("broken member data: {e}")))?;
        if data.len() as u64 != size {
            return Err(DataError::entry(
                path,
                &name,
                format!("{} bytes, header says {size}", data.len()),
            ));
        }
        out.push((name, data));
    }
    Ok(out)
}

/// Builds a dataset from an image array and a label array.
pub fn dataset_from_arrays(
    name: &str,
    ip: &Path,
    x: &NpyArray,
    lp: &Path,
    y: &NpyArray,
    class_names: Option<Vec<String>>,
) -> Result<Dataset, DataError> {
    let labels = y.to_labels(lp)?;
    if y.shape.len() != 1 {
        return Err(DataError::format(
            lp,
            format!("labels have shape {:?}, expected [N]", y.shape),
        ));
    }
    let (images, [c, h, w]) = super::array::images_from_npy(ip, x)?;
    let n = images.len() / (c * h * w);
    if n != labels.len() {
        return Err(DataError::CountMismatch {
            path: ip.to_path_buf(),
            images: n,
            labels: labels.len(),
        });
    }
    let k = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let names = match class_names {
        Some(v) if v.len() >= k => v,
        _ => (0..k).map(|i| i.to_string()).collect(),
    };
    Dataset::new(name, images, labels, [c, h, w], names)
}

/// Reads CIFAR-10.1 (`v6` or `v4`) from `dir`.
pub fn read_cifar101_dir(dir: &Path, version: &str) -> Result<Dataset, DataError> {
    if version != "v6" && version != "v4" {
        return Err(DataError::arg(
            "split",
            format!("`{version}`: CIFAR-10.1 has versions `v6` and `v4`"),
        ));
    }
    let ip = dir.join(format!("cifar10.1_{version}_data.npy"));
    let lp = dir.join(format!("cifar10.1_{version}_labels.npy"));
    let x = parse_npy(&ip, &read_file(&ip)?)?;
    let y = parse_npy(&lp, &read_file(&lp)?)?;
    let names = super::cifar::CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect();
    let ds = dataset_from_arrays(&ip.display().to_string(), &ip, &x, &lp, &y, Some(names))?;
    if ds.shape != [3, 32, 32] {
        return Err(DataError::format(
            &ip,
            format!("images have shape {:?}, expected 32×32×3", ds.shape),
        ));
    }
    Ok(ds)
}

fn classes_txt(dir: &Path) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(dir.join("classes.txt")).ok()?;
    Some(
        s.lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
    )
}

/// Reads a generic `.npy`/`.npz` dataset (see [`super::spec`] for the naming rules).
pub fn read_npy_dataset(path: &Path, split: Option<&str>) -> Result<Dataset, DataError> {
    let name = path.display().to_string();
    if path.is_dir() {
        let cand: Vec<(PathBuf, PathBuf)> = match split {
            Some(s) => vec![(path.join(format!("{s}_x.npy")), path.join(format!("{s}_y.npy")))],
            None => vec![
                (path.join("x.npy"), path.join("y.npy")),
                (path.join("train_x.npy"), path.join("train_y.npy")),
            ],
        };
        let (ip, lp) = cand
            .iter()
            .find(|(i, _)| i.is_file())
            .cloned()
            .unwrap_or_else(|| cand[0].clone());
        let x = parse_npy(&ip, &read_file(&ip)?)?;
        if !lp.exists() {
            return super::array::unlabeled_from_npy(&name, &ip, &x);
        }
        let y = parse_npy(&lp, &read_file(&lp)?)?;
        return dataset_from_arrays(&name, &ip, &x, &lp, &y, classes_txt(path));
    }
    let bytes = read_file(path)?;
    if bytes.starts_with(b"\x93NUMPY") {
        return super::array::unlabeled_from_npy(&name, path, &parse_npy(path, &bytes)?);
    }
    let members = read_zip(path, &bytes)?;
    let find = |keys: &[String]| {
        keys.iter().find_map(|k| {
            members
                .iter()
                .find(|(n, _)| n == &format!("{k}.npy") || n == k)
                .map(|(n, b)| (n.clone(), b))
        })
    };
    let (xk, yk): (Vec<String>, Vec<String>) = match split {
        Some(s) => (
            vec![format!("x_{s}"), format!("{s}_x")],
            vec![format!("y_{s}"), format!("{s}_y")],
        ),
        None => (
            ["x", "images", "X", "data"].iter().map(|s| s.to_string()).collect(),
            ["y", "labels", "Y", "targets"].iter().map(|s| s.to_string()).collect(),
        ),
    };
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    let (xn, xb) = find(&xk)
        .ok_or_else(|| DataError::format(path, format!("no image array ({}) among {names:?}", xk.join("/"))))?;
    let xp = path.join(&xn);
    let x = parse_npy(&xp, xb)?;
    let Some((yn, yb)) = find(&yk) else {
        return super::array::unlabeled_from_npy(&name, &xp, &x);
    };
    let yp = path.join(&yn);
    let y = parse_npy(&yp, yb)?;
    dataset_from_arrays(&name, &xp, &x, &yp, &y, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A zip archive the way `np.savez` (stored) or `np.savez_compressed` (deflated) writes it.
    pub(crate) fn write_zip(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let method = if deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, data) in members {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn cifar101_npy_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let n = 3;
        let hwc: Vec<u8> = (0..n * 32 * 32 * 3).map(|i| (i % 253) as u8).collect();
        std::fs::write(
            dir.path().join("cifar10.1_v6_data.npy"),
            write_npy("|u1", &[n, 32, 32, 3], &hwc),
        )
        .unwrap();
        let labels: Vec<u8> = [2i64, 0, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(
            dir.path().join("cifar10.1_v6_labels.npy"),
            write_npy("<i8", &[n], &labels),
        )
        .unwrap();
        let d = read_cifar101_dir(dir.path(), "v6").unwrap();
        assert_eq!(d.labels, vec![2, 0, 9]);
        // pixel (row 1, col 2, channel 1) of image 2
        assert_eq!(d.image(2)[32 * 32 + 32 + 2], hwc[2 * 3072 + (32 + 2) * 3 + 1]);
        assert_eq!(d.num_classes(), 10);
        let neg: Vec<u8> = [2i64, -1, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.path().join("cifar10.1_v6_labels.npy"), write_npy("<i8", &[n], &neg)).unwrap();
        assert!(read_cifar101_dir(dir.path(), "v6")
            .unwrap_err()
            .to_string()
            .contains("label 1"));
        assert!(read_cifar101_dir(dir.path(), "v4").is_err());
    }

    #[test]
    fn npz_stored_and_deflated() {
        let dir = tempfile::tempdir().unwrap();
        let x = write_npy("|u1", &[2, 1, 28, 28], &vec![5u8; 2 * 784]);
        let y = write_npy("<i4", &[2], &[1, 0, 0, 0, 0, 0, 0, 0]);
        for deflate in [false, true] {
            let p = dir.path().join(format!("d{deflate}.npz"));
            std::fs::write(&p, write_zip(&[("x.npy", x.clone()), ("y.npy", y.clone())], deflate)).unwrap();
            let d = read_npy_dataset(&p, None).unwrap();
            assert_eq!((d.shape, d.labels.clone()), ([1, 28, 28], vec![1, 0]));
            assert!(read_npy_dataset(&p, Some("test"))
                .unwrap_err()
                .to_string()
                .contains("x_test"));
        }
        let p = dir.path().join("bad.npz");
        std::fs::write(&p, b"PK\x05\x06garbage").unwrap();
        assert!(read_npy_dataset(&p, None).is_err());
    }

    #[test]
    fn corrupt_members_fail_their_crc() {
        let x = write_npy("|u1", &[2, 1, 4, 4], &[5u8; 32]);
        let mut z = write_zip(&[("x.npy", x)], false);
        let at = z.windows(4).position(|w| w == [5, 5, 5, 5]).unwrap();
        z[at] = 6;
        let e = read_zip(Path::new("c.npz"), &z).unwrap_err().to_string();
        assert!(e.contains("c.npz") && e.contains("x.npy"), "{e}");
    }

    /// Issue item 5: a non-ASCII `descr` and an empty image dimension were panics.
    #[test]
    fn non_ascii_descr_and_empty_dimensions_are_errors() {
        let p = Path::new("bad.npy");
        for descr in ["é", "<é", "\u{1F600}u1", "|ü1"] {
            let mut b = write_npy("|u1", &[1], &[0]);
            let h = String::from_utf8_lossy(&b[10..]).replace("'|u1'", &format!("'{descr}'"));
            b.truncate(8);
            b.extend((h.len() as u16).to_le_bytes());
            b.extend(h.as_bytes());
            assert!(parse_npy(p, &b).is_err(), "{descr}");
        }
        let x = parse_npy(p, &write_npy("|u1", &[4, 0, 0, 3], &[])).unwrap();
        let y = parse_npy(p, &write_npy("<i8", &[4], &[0; 32])).unwrap();
        let e = dataset_from_arrays("d", p, &x, p, &y, None).unwrap_err().to_string();
        assert!(e.contains("bad.npy") && e.contains("empty dimension"), "{e}");
    }

    /// Issue item 8: an npz member inflating far beyond its compressed size (256 MiB from a few
    /// hundred KiB here; 1 GiB in the probe) is refused before anything is allocated for it.
    #[test]
    fn npz_bombs_are_refused_before_allocating() {
        let claimed = {
            let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .compression_level(Some(1));
            w.start_file("x.npy", opts).unwrap();
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..256 {
                w.write_all(&chunk).unwrap();
            }
            w.finish().unwrap().into_inner()
        };
        assert!(claimed.len() < 4 << 20, "{}", claimed.len());
        let e = read_zip(Path::new("bomb.npz"), &claimed).unwrap_err().to_string();
        assert!(
            e.contains("bomb.npz") && e.contains("x.npy") && e.contains("256.00 MiB"),
            "{e}"
        );
    }
}
