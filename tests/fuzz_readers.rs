//! Fuzz runs of the binary readers, one per reader (npy/npz, IDX, tar.gz image folders,
//! safetensors checkpoints and meta-models): proptest mutates valid files (byte flips, cuts,
//! header fields set to extreme values) and every read must return `Ok` or an error, never
//! panic, and never ask the allocator for one block larger than [`MAX_BLOCK`] — a header that
//! claims terabytes is refused before allocating. The case counts are fixed (a few seconds
//! each in a release build; `WF_FUZZ_CASES=N` runs N each); docs/fuzz.md records the runs.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use weightflow::data::{folder, idx, npy};
use weightflow::flow::MetaModel;

/// The largest single allocation any read may make (the inflation floor of `limits` is 64 MiB).
const MAX_BLOCK: usize = 96 << 20;

/// The system allocator, recording the largest block requested.
struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The case count: `default`, or `WF_FUZZ_CASES` for longer runs.
fn cases(default: u32) -> u32 {
    std::env::var("WF_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn assert_bounded(what: &str) {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest <= MAX_BLOCK, "{what}: one allocation of {largest} bytes");
}

/// Flips bytes, overwrites a little-endian u64 with `big` and cuts the tail, at chosen places.
fn mutate(mut b: Vec<u8>, flips: &[(usize, u8)], big: (usize, u64), cut: usize) -> Vec<u8> {
    for &(i, v) in flips {
        if !b.is_empty() {
            let k = i % b.len();
            b[k] ^= v;
        }
    }
    if b.len() >= 8 {
        let at = big.0 % (b.len() - 7);
        b[at..at + 8].copy_from_slice(&big.1.to_le_bytes());
    }
    let keep = b.len() - cut % (b.len() + 1) / 4;
    b.truncate(keep);
    b
}

fn big_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(u64::MAX),
        Just(1u64 << 40),
        Just(1u64 << 32),
        Just(0),
        any::<u64>()
    ]
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn npz() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, deflate, data) in [
        ("x.npy", true, npy::write_npy("|u1", &[2, 3, 4, 4], &[7; 96])),
        ("y.npy", false, npy::write_npy("<i8", &[2], &[1; 16])),
    ] {
        let m = if deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        w.start_file(name, zip::write::SimpleFileOptions::default().compression_method(m))
            .unwrap();
        w.write_all(&data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn tar_gz(claim: u64) -> Vec<u8> {
    let mut img = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(3, 2)
        .write_to(&mut img, image::ImageFormat::Png)
        .unwrap();
    let img = img.into_inner();
    let mut raw = Vec::new();
    for (i, name) in ["r/train/a/0.png", "r/train/b/0.png"].iter().enumerate() {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(if i == 1 { claim } else { img.len() as u64 });
        h.set_mode(0o644);
        h.set_cksum();
        raw.extend(h.as_bytes());
        raw.extend(&img);
        raw.resize(raw.len().div_ceil(512) * 512, 0);
    }
    raw.extend([0u8; 1024]);
    gz(&raw)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), ..ProptestConfig::default() })]

    #[test]
    fn fuzz_npy_and_npz(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
                        big in (any::<usize>(), big_value()), cut in any::<usize>()) {
        let p = Path::new("fuzz.npz");
        let m = mutate(npz(), &flips, big, cut);
        if let Ok(members) = npy::read_zip(p, &m) {
            for (_, b) in members {
                if let Ok(a) = npy::parse_npy(p, &b) {
                    let _ = a.to_labels(p);
                }
            }
        }
        let n = mutate(npy::write_npy("|u1", &[4, 0, 2, 3], &[]), &flips, big, cut);
        if let Ok(a) = npy::parse_npy(p, &n) {
            let y = npy::parse_npy(p, &npy::write_npy("<i8", &[4], &[0; 32])).unwrap();
            let _ = npy::dataset_from_arrays("f", p, &a, p, &y, None);
        }
        assert_bounded("npy/npz");
    }

    #[test]
    fn fuzz_idx(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
                big in (any::<usize>(), big_value()), cut in any::<usize>()) {
        let p = Path::new("fuzz-idx3-ubyte.gz");
        let valid = idx::write_idx(&[3, 4, 4], &[5; 48]);
        for raw in [mutate(valid.clone(), &flips, big, cut), mutate(gz(&valid), &flips, big, cut)] {
            if let Ok(b) = idx::gunzip_if_needed(p, raw) {
                let _ = idx::from_idx_bytes(p, &b, p, &idx::write_idx(&[3], &[1, 2, 3]), idx::MNIST_CLASSES);
            }
        }
        assert_bounded("IDX");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(300), ..ProptestConfig::default() })]

    #[test]
    fn fuzz_tar_gz_folders(claim in big_value(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
                           big in (any::<usize>(), big_value()), cut in any::<usize>(), raw in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.tar.gz");
        let bytes = if raw { mutate(tar_gz(claim), &flips, big, cut) } else { tar_gz(claim) };
        std::fs::write(&p, bytes).unwrap();
        let _ = folder::read_folder(&p, "train");
        assert_bounded("tar.gz");
    }

    #[test]
    fn fuzz_checkpoints_and_meta_models(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
                                         big in (any::<usize>(), big_value()), cut in any::<usize>(),
                                         field in 0usize..12, value in big_value()) {
        static MODEL: std::sync::OnceLock<(Vec<u8>, serde_json::Value)> = std::sync::OnceLock::new();
        let (weights, config) = MODEL.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            common::toy_meta(0).save(dir.path()).unwrap();
            let mut c: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
            // without the hash (as in older models) the parser itself meets the mutated bytes
            c.as_object_mut().unwrap().remove("weights_sha256");
            (std::fs::read(dir.path().join("model.safetensors")).unwrap(), c)
        });
        let dir = tempfile::tempdir().unwrap();
        // a zoo checkpoint
        let ck = weightflow::zoo::store::safetensors_bytes(&[("weights", vec![2, 3], &[0.5; 6])], "{}").unwrap();
        let cp = dir.path().join("epoch_0001.safetensors");
        std::fs::write(&cp, mutate(ck, &flips, big, cut)).unwrap();
        let _ = weightflow::zoo::store::read_tensor(&cp, "weights", &[2, 3]);
        // a meta-model: mutated weights, or one config field set to an extreme value
        let mut c = config.clone();
        let fields = [
            ("config", "width"), ("config", "depth"), ("config", "context_k"), ("config", "ctx_pool"),
            ("config", "sample_steps"), ("config", "batch"), ("velocity", "width"), ("velocity", "depth"),
            ("velocity", "dim"), ("velocity", "time_freqs"), ("encoder", "hidden"), ("encoder", "out"),
        ];
        let (section, name) = fields[field];
        c[section][name] = serde_json::Value::from(value);
        std::fs::write(dir.path().join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), mutate(weights.clone(), &flips, big, cut)).unwrap();
        let _ = MetaModel::load(dir.path());
        std::fs::write(dir.path().join("config.json"), serde_json::to_vec(config).unwrap()).unwrap();
        let _ = MetaModel::load(dir.path());
        assert_bounded("safetensors");
    }
}
