//! `data::load` end to end: tiny files in each real format, read through spec strings into the
//! common 3×32×32 input, with corruptions; plus opt-in real-data counts (`WF_DATA=/work/shared/data`).

use weightflow::data::{self, cifar, idx, npy, Normalization};

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn every_kind_loads_to_the_common_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // MNIST-style IDX, 28×28 gray
    write(
        d,
        "mnist/train-images-idx3-ubyte",
        &idx::write_idx(&[4, 28, 28], &[200; 4 * 784]),
    );
    write(d, "mnist/train-labels-idx1-ubyte", &idx::write_idx(&[4], &[0, 1, 2, 3]));
    let m = data::load(&format!("mnist:{}/mnist:train", d.display())).unwrap();
    assert_eq!((m.len(), m.shape), (4, [3, 32, 32]));
    assert_eq!(
        (m.image(0)[0], m.image(0)[2 * 32 + 2], m.image(0)[2048 + 29 * 32 + 29]),
        (0, 200, 200)
    );
    // CIFAR-10 binary
    let mut rec = Vec::new();
    for l in 0..5u8 {
        rec.push(l);
        rec.extend(std::iter::repeat_n(l * 40, 3072));
    }
    write(d, "c10/cifar-10-batches-bin/test_batch.bin", &rec);
    let c = data::load(&format!("cifar10:{}/c10:test", d.display())).unwrap();
    assert_eq!(
        (c.len(), c.labels.clone(), c.class_names[0].clone()),
        (5, vec![0, 1, 2, 3, 4], "airplane".into())
    );
    assert_eq!(
        c.class_names,
        cifar::CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    // STL-10 binary, 96×96 → 32×32 by 3×3 averaging
    write(d, "stl/stl10_binary/train_X.bin", &vec![99u8; 2 * 3 * 96 * 96]);
    write(d, "stl/stl10_binary/train_y.bin", &[3, 4]);
    let s = data::load(&format!("stl10:{}/stl:train", d.display())).unwrap();
    assert_eq!((s.shape, s.labels.clone()), ([3, 32, 32], vec![2, 3]));
    assert!(s.images.iter().all(|&v| v == 99));
    // CIFAR-10.1 .npy
    write(
        d,
        "c101/cifar10.1_v4_data.npy",
        &npy::write_npy("|u1", &[2, 32, 32, 3], &[5; 2 * 3072]),
    );
    write(
        d,
        "c101/cifar10.1_v4_labels.npy",
        &npy::write_npy(
            "<i8",
            &[2],
            &[[1u8, 0, 0, 0, 0, 0, 0, 0], [8, 0, 0, 0, 0, 0, 0, 0]].concat(),
        ),
    );
    let t = data::load(&format!("cifar10.1:{}/c101:v4", d.display())).unwrap();
    assert_eq!(t.labels, vec![1, 8]);
    // synthetic + corruption suffix; normalization and tensor
    let clean = data::load("synthetic:shapes,n=20:test").unwrap();
    let noisy = data::load("synthetic:shapes,n=20:test@impulse_noise:5:3").unwrap();
    assert_eq!(noisy.labels, clean.labels);
    assert_ne!(noisy.images, clean.images);
    assert_eq!(noisy.name, "synthetic:shapes,n=20:test@impulse_noise:5:3");
    let x = clean.to_tensor(&[0, 1], &Normalization::from_dataset(&clean));
    assert_eq!(x.len(), 2 * 3072);
    // bad specs and missing files are errors naming what is wrong
    let e = data::load(&format!("mnist:{}/nothing:test", d.display()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("t10k-images"), "{e}");
    assert!(data::load("synthetic:shapes:test@fog:6").is_err());
}

#[test]
fn real_data_counts_when_wf_data_is_set() {
    let Ok(root) = std::env::var("WF_DATA") else { return };
    let c = data::load(&format!("folder:{root}/cifar10/cifar10-jpeg.tar.gz:test")).unwrap();
    assert_eq!((c.len(), c.per_class()), (10_000, vec![1000; 10]));
    let m = data::load(&format!("mnist:{root}/mnist:test")).unwrap();
    assert_eq!(m.len(), 10_000);
    let m = data::load(&format!("mnist:{root}/mnist:train")).unwrap();
    assert_eq!(
        m.per_class(),
        vec![1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
}
