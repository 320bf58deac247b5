//! STL-10 binary release (`stl10_binary/`): `{train,test}_X.bin` hold N × 3 × 96 × 96 u8 stored
//! column-major per channel (each channel is written x-major), `{train,test}_y.bin` hold labels 1..10.
//! The reader returns CHW row-major `[N, 3, 96, 96]` with labels 0..9.

use std::path::Path;

use super::error::{read_file, DataError};
use super::Dataset;

/// STL-10 class names in label order.
pub const STL10_CLASSES: &[&str] = &[
    "airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck",
];

const SIDE: usize = 96;
const PER: usize = 3 * SIDE * SIDE;

/// Parses STL-10 image and label buffers.
pub fn from_stl_bytes(xp: &Path, x: &[u8], yp: &Path, y: &[u8]) -> Result<Dataset, DataError> {
    if x.is_empty() || !x.len().is_multiple_of(PER) {
        return Err(DataError::format(
            xp,
            format!(
                "{} bytes is not a whole number of 3×96×96 images (truncated or not STL-10)",
                x.len()
            ),
        ));
    }
    let n = x.len() / PER;
    if y.len() != n {
        return Err(DataError::CountMismatch {
            path: xp.to_path_buf(),
            images: n,
            labels: y.len(),
        });
    }
    let mut labels = Vec::with_capacity(n);
    for (i, &l) in y.iter().enumerate() {
        if !(1..=10).contains(&l) {
            return Err(DataError::entry(
                yp,
                format!("label {i}"),
                format!("value {l} outside 1..10"),
            ));
        }
        labels.push(l as u32 - 1);
    }
    let mut images = vec![0u8; x.len()];
    for (src, dst) in x.chunks_exact(PER).zip(images.chunks_exact_mut(PER)) {
        for c in 0..3 {
            let (s, d) = (&src[c * SIDE * SIDE..], &mut dst[c * SIDE * SIDE..]);
            for col in 0..SIDE {
                for row in 0..SIDE {
                    d[row * SIDE + col] = s[col * SIDE + row];
                }
            }
        }
    }
    let names = STL10_CLASSES.iter().map(|s| s.to_string()).collect();
    Dataset::new(xp.display().to_string(), images, labels, [3, SIDE, SIDE], names)
}

/// Reads `train` or `test` from `dir` or `dir/stl10_binary`.
pub fn read_stl10_dir(dir: &Path, split: &str) -> Result<Dataset, DataError> {
    if split != "train" && split != "test" {
        return Err(DataError::arg(
            "split",
            format!("`{split}`: STL-10 has labelled `train` and `test`"),
        ));
    }
    let base = if dir.join(format!("{split}_X.bin")).is_file() {
        dir.to_path_buf()
    } else {
        dir.join("stl10_binary")
    };
    let (xp, yp) = (base.join(format!("{split}_X.bin")), base.join(format!("{split}_y.bin")));
    from_stl_bytes(&xp, &read_file(&xp)?, &yp, &read_file(&yp)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_and_shifts_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut x = vec![0u8; 2 * PER];
        // image 1, channel 2, stored at column 5, row 7 (x-major) => row-major (7, 5)
        x[PER + 2 * SIDE * SIDE + 5 * SIDE + 7] = 200;
        std::fs::write(dir.path().join("test_X.bin"), &x).unwrap();
        std::fs::write(dir.path().join("test_y.bin"), [1u8, 10]).unwrap();
        let d = read_stl10_dir(dir.path(), "test").unwrap();
        assert_eq!(d.labels, vec![0, 9]);
        assert_eq!(d.image(1)[2 * SIDE * SIDE + 7 * SIDE + 5], 200);
        std::fs::write(dir.path().join("test_y.bin"), [1u8, 11]).unwrap();
        assert!(read_stl10_dir(dir.path(), "test")
            .unwrap_err()
            .to_string()
            .contains("label 1"));
        std::fs::write(dir.path().join("test_y.bin"), [1u8]).unwrap();
        assert!(read_stl10_dir(dir.path(), "test").is_err());
    }
}
