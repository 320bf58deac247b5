//! Property tests: random and mutated bytes fed to every binary reader must give `Ok` or a
//! `DataError`, never a panic.

use std::path::Path;

use proptest::prelude::*;
use weightflow::data::{camelyon, cifar, folder, idx, npy, stl, DatasetSpec};

fn valid_idx() -> Vec<u8> {
    idx::write_idx(&[2, 3, 3], &[7; 18])
}

fn valid_npy() -> Vec<u8> {
    npy::write_npy("|u1", &[2, 2, 2, 3], &[9; 24])
}

/// Flips/truncates a valid buffer at proptest-chosen places.
fn mutate(mut b: Vec<u8>, flips: &[(usize, u8)], cut: usize) -> Vec<u8> {
    for &(i, v) in flips {
        if !b.is_empty() {
            let k = i % b.len();
            b[k] ^= v;
        }
    }
    let keep = b.len() - cut % (b.len() + 1);
    b.truncate(keep);
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn idx_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4), cut in any::<usize>()) {
        let p = Path::new("fuzz.idx");
        let _ = idx::parse_idx(p, &bytes);
        let _ = idx::gunzip_if_needed(p, bytes.clone());
        let m = mutate(valid_idx(), &flips, cut);
        let _ = idx::from_idx_bytes(p, &m, p, &idx::write_idx(&[2], &[1, 2]), idx::MNIST_CLASSES);
        let _ = idx::from_idx_bytes(p, &valid_idx(), p, &m, idx::MNIST_CLASSES);
        let mut gz = vec![0x1f, 0x8b];
        gz.extend(&bytes);
        let _ = idx::gunzip_if_needed(p, gz);
    }

    #[test]
    fn cifar_and_stl_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..7000), labels in proptest::collection::vec(any::<u8>(), 0..4)) {
        let p = Path::new("fuzz.bin");
        let (mut i, mut l) = (Vec::new(), Vec::new());
        let _ = cifar::parse_records(p, &bytes, 1, 0, 10, &mut i, &mut l);
        let _ = cifar::parse_records(p, &bytes, 2, 1, 100, &mut i, &mut l);
        let _ = stl::from_stl_bytes(p, &bytes, p, &labels);
    }

    #[test]
    fn npy_and_npz_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                               flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4), cut in any::<usize>()) {
        let p = Path::new("fuzz.npy");
        let _ = npy::parse_npy(p, &bytes);
        let m = mutate(valid_npy(), &flips, cut);
        if let Ok(a) = npy::parse_npy(p, &m) {
            let _ = a.to_labels(p);
            let y = npy::parse_npy(p, &npy::write_npy("<i8", &[2], &[0; 16])).unwrap();
            let _ = npy::dataset_from_arrays("f", p, &a, p, &y, None);
        }
        let _ = npy::read_zip(p, &bytes);
        let mut z = bytes.clone();
        z.extend([0x50, 0x4b, 0x05, 0x06, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let _ = npy::read_zip(p, &z);
    }

    #[test]
    fn images_and_metadata_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), text in ".{0,200}") {
        let _ = folder::decode_rgb_chw(&bytes);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(&bytes);
        let _ = folder::decode_rgb_chw(&png);
        let _ = camelyon::parse_metadata(Path::new("m.csv"), &text);
        let _ = camelyon::parse_metadata(Path::new("m.csv"), &format!("patient,node,x_coord,y_coord,tumor,center,split\n{text}"));
        let _ = DatasetSpec::parse(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn archives_on_disk_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000), gz in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(if gz { "a.tar.gz" } else { "a.tar" });
        let mut data = bytes.clone();
        if gz {
            data.splice(0..0, [0x1f, 0x8b, 8, 0]);
        }
        std::fs::write(&p, &data).unwrap();
        let _ = folder::read_folder(&p, "train");
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), &data).unwrap();
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), &bytes).unwrap();
        let _ = idx::read_mnist_dir(dir.path(), "test", idx::MNIST_CLASSES);
    }
}
