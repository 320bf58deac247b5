//! Zoo training end to end on small synthetic data: an interrupted and resumed run writes the
//! same checkpoint bytes as an uninterrupted one; a different configuration, a malformed
//! manifest or checkpoint are clear errors; export writes a state_dict with layout names.

use std::path::Path;
use weightflow::engine::OptimConfig;
use weightflow::zoo::{self, TrainConfig, Zoo};

mod common;

use common::zoo_config as config;

fn run(cfg: &TrainConfig, out: &Path) -> Result<Zoo, zoo::ZooError> {
    zoo::train(cfg, out, &mut |_| {})
}

/// (file name, bytes) of every safetensors file in `dir`, sorted.
fn checkpoints(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn resumed_zoo_equals_uninterrupted_and_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let za = run(&config(3), &a).unwrap();
    assert_eq!(za.manifest.epochs, 3);
    assert_eq!(za.manifest.history.len(), 4);
    let w0 = za.load_epoch(0).unwrap();
    let w3 = za.load_epoch(3).unwrap();
    assert_eq!(w3.len(), 3 * 10_853);
    assert_ne!(w0, w3, "training must move the weights");
    // models differ from each other (own seeds)
    assert_ne!(w0[..10_853], w0[10_853..2 * 10_853]);
    let first = za.manifest.history[0].models[0].train_loss;
    let last = za.manifest.history[3].models[0].train_loss;
    assert!(last < first, "train loss {first} → {last}");

    // interrupted: one epoch, then leftovers of a crash in epoch 2 (half-written temp file,
    // a truncated uncommitted checkpoint), then the rerun to 3 epochs
    run(&config(1), &b).unwrap();
    std::fs::write(b.join("epoch_0002.safetensors.tmp"), b"partial").unwrap();
    std::fs::write(b.join("epoch_0002.safetensors"), b"garbage").unwrap();
    let zb = run(&config(3), &b).unwrap();
    assert_eq!(zb.manifest.epochs, 3);
    assert!(!b.join("epoch_0002.safetensors.tmp").exists());
    assert_eq!(
        checkpoints(&a),
        checkpoints(&b),
        "resumed run differs from the uninterrupted one"
    );
    assert_eq!(za.manifest.history[3].models, zb.manifest.history[3].models);
    // rerunning a finished zoo changes nothing
    run(&config(3), &b).unwrap();
    assert_eq!(checkpoints(&a), checkpoints(&b));

    // a different configuration is an error naming the field
    let mut other = config(3);
    other.seed = 12;
    let e = run(&other, &b).unwrap_err().to_string();
    assert!(e.contains("seed") && e.contains("manifest.json"), "{e}");
    let mut other = config(3);
    other.optimizer = OptimConfig::adam(1e-4, 1e-2);
    let e = run(&other, &b).unwrap_err().to_string();
    assert!(e.contains("optimizer"), "{e}");

    // malformed checkpoint / manifest
    let e3 = b.join("epoch_0003.safetensors");
    let bytes = std::fs::read(&e3).unwrap();
    std::fs::write(&e3, &bytes[..bytes.len() / 2]).unwrap();
    let e = Zoo::open(&b).unwrap().load_epoch(3).unwrap_err().to_string();
    assert!(e.contains("epoch_0003.safetensors"), "{e}");
    let e = run(&config(4), &b).unwrap_err().to_string();
    assert!(e.contains("epoch_0003.safetensors"), "{e}");
    std::fs::write(b.join("manifest.json"), b"{\"format\": 1").unwrap();
    let e = Zoo::open(&b).unwrap_err().to_string();
    assert!(e.contains("manifest.json"), "{e}");

    // export: one model as a state_dict with the layout's names and shapes
    let out = tmp.path().join("m1.safetensors");
    let py = zoo::export::export_model(&za, 1, 2, &out).unwrap();
    assert!(py.contains("nn.Conv2d(3, 16, 3, padding=0)") && py.contains("module_list"));
    let bytes = std::fs::read(&out).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("module_list.0.weight").unwrap();
    assert_eq!(t.shape(), &[16, 3, 3, 3]);
    let w2 = za.load_model(2, 1).unwrap();
    let got: Vec<f32> = t
        .data()
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(got, w2[..432]);
    assert_eq!(st.tensor("module_list.12.bias").unwrap().shape(), &[10]);
}
