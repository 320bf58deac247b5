//! CIFAR-10 and CIFAR-100 binary releases. CIFAR-10: `data_batch_{1..5}.bin` / `test_batch.bin`,
//! records of 1 label byte + 3072 pixel bytes (CHW, 3×32×32). CIFAR-100: `train.bin` / `test.bin`,
//! records of a coarse and a fine label byte + 3072 pixel bytes; the split `train`/`test` uses the
//! fine labels (100 classes), `train_coarse`/`test_coarse` the 20 superclasses.

use std::path::{Path, PathBuf};

use super::error::{read_file, DataError};
use super::Dataset;

/// CIFAR-10 class names in label order.
pub const CIFAR10_CLASSES: &[&str] = &[
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const PIXELS: usize = 3 * 32 * 32;

/// Parses records of `label_bytes` label bytes + 3072 pixels; `which` picks the label byte.
pub fn parse_records(
    path: &Path,
    bytes: &[u8],
    label_bytes: usize,
    which: usize,
    num_classes: usize,
    images: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<(), DataError> {
    let rec = label_bytes + PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(rec) {
        return Err(DataError::format(
            path,
            format!(
                "{} bytes is not a whole number of {rec}-byte records (truncated or not a CIFAR binary file)",
                bytes.len()
            ),
        ));
    }
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        let l = r[which] as usize;
        if l >= num_classes {
            return Err(DataError::entry(
                path,
                format!("record {i}"),
                format!("label {l} out of range 0..{num_classes}"),
            ));
        }
        labels.push(l as u32);
        images.extend_from_slice(&r[label_bytes..]);
    }
    Ok(())
}

fn base_dir(dir: &Path, sub: &str, probe: &str) -> PathBuf {
    if dir.join(probe).is_file() {
        dir.to_path_buf()
    } else {
        dir.join(sub)
    }
}

fn names_file(path: &Path, fallback: Vec<String>) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let v: Vec<String> = s
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            if v.len() == fallback.len() {
                v
            } else {
                fallback
            }
        }
        Err(_) => fallback,
    }
}

/// Reads CIFAR-10 `train` (5 batches) or `test` from `dir` or `dir/cifar-10-batches-bin`.
pub fn read_cifar10_dir(dir: &Path, split: &str) -> Result<Dataset, DataError> {
    let files: Vec<String> = match split {
        "train" => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        "test" => vec!["test_batch.bin".into()],
        other => {
            return Err(DataError::arg(
                "split",
                format!("`{other}`: CIFAR-10 has `train` and `test`"),
            ))
        }
    };
    let base = base_dir(dir, "cifar-10-batches-bin", &files[0]);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for f in &files {
        let p = base.join(f);
        parse_records(&p, &read_file(&p)?, 1, 0, 10, &mut images, &mut labels)?;
    }
    let names = names_file(
        &base.join("batches.meta.txt"),
        CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
    );
    Dataset::new(
        base.join(&files[0]).display().to_string(),
        images,
        labels,
        [3, 32, 32],
        names,
    )
}

/// Reads CIFAR-100 `train`/`test` (fine labels) or `train_coarse`/`test_coarse`.
pub fn read_cifar100_dir(dir: &Path, split: &str) -> Result<Dataset, DataError> {
    let (file, coarse) = match split {
        "train" => ("train.bin", false),
        "test" => ("test.bin", false),
        "train_coarse" => ("train.bin", true),
        "test_coarse" => ("test.bin", true),
        other => {
            return Err(DataError::arg(
                "split",
                format!("`{other}`: CIFAR-100 has `train`, `test`, `train_coarse`, `test_coarse`"),
            ))
        }
    };
    let base = base_dir(dir, "cifar-100-binary", file);
    let p = base.join(file);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    let n = if coarse { 20 } else { 100 };
    parse_records(
        &p,
        &read_file(&p)?,
        2,
        usize::from(!coarse),
        n,
        &mut images,
        &mut labels,
    )?;
    let names_path = base.join(if coarse {
        "coarse_label_names.txt"
    } else {
        "fine_label_names.txt"
    });
    let names = names_file(&names_path, (0..n).map(|i| i.to_string()).collect());
    Dataset::new(p.display().to_string(), images, labels, [3, 32, 32], names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cifar10_and_cifar100_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut test = Vec::new();
        for i in 0..3u8 {
            test.push(i * 3);
            test.extend(std::iter::repeat_n(i, PIXELS));
        }
        std::fs::write(dir.path().join("test_batch.bin"), &test).unwrap();
        let d = read_cifar10_dir(dir.path(), "test").unwrap();
        assert_eq!(d.labels, vec![0, 3, 6]);
        assert_eq!(d.image(2)[100], 2);
        assert_eq!(d.class_names[3], "cat");
        std::fs::write(dir.path().join("test_batch.bin"), &test[..PIXELS + 5]).unwrap();
        assert!(read_cifar10_dir(dir.path(), "test")
            .unwrap_err()
            .to_string()
            .contains("test_batch.bin"));
        test[0] = 10;
        std::fs::write(dir.path().join("test_batch.bin"), &test).unwrap();
        assert!(read_cifar10_dir(dir.path(), "test")
            .unwrap_err()
            .to_string()
            .contains("record 0"));
        assert!(read_cifar10_dir(dir.path(), "train").is_err());

        let mut c100 = Vec::new();
        for i in 0..2u8 {
            c100.extend([i + 1, 50 + i]);
            c100.extend(std::iter::repeat_n(7, PIXELS));
        }
        std::fs::create_dir(dir.path().join("cifar-100-binary")).unwrap();
        std::fs::write(dir.path().join("cifar-100-binary/train.bin"), &c100).unwrap();
        let d = read_cifar100_dir(dir.path(), "train").unwrap();
        assert_eq!((d.labels.clone(), d.num_classes()), (vec![50, 51], 100));
        let d = read_cifar100_dir(dir.path(), "train_coarse").unwrap();
        assert_eq!((d.labels.clone(), d.num_classes()), (vec![1, 2], 20));
    }
}
