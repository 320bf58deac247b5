//! Compares the engine with PyTorch on fixtures written by `tools/make_fixtures.py`
//! (logits, loss per model, ∂L/∂W and ∂L/∂x at rtol 1e-4); torch is not needed at test time.

use safetensors::SafeTensors;
use weightflow::engine::{Input, Mode, Objective, Population, SampleLoss};
use weightflow::nets::{Activation, ArchSpec, LayerSpec, Padding};

fn load(name: &str) -> (Vec<u8>, String) {
    let path = format!("{}/tests/fixtures/{name}.safetensors", env!("CARGO_MANIFEST_DIR"));
    (std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")), path)
}

fn tensor(st: &SafeTensors, name: &str) -> Vec<f32> {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// |a − b| ≤ rtol·|b| + atol·scale elementwise, with scale = max |b| (so values that cancel to
/// ~0 are held to the precision of the tensor's largest entries).
fn close(what: &str, a: &[f32], b: &[f32], rtol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rtol * y.abs() + rtol * scale,
            "{what}[{i}]: engine {x} torch {y} (scale {scale})"
        );
    }
}

fn same_pad_net() -> ArchSpec {
    use LayerSpec::*;
    let conv = |i, o, k| Conv2d {
        in_ch: i,
        out_ch: o,
        kernel: k,
        padding: Padding::Same,
    };
    ArchSpec {
        name: "same-pad".into(),
        input: [3, 9, 9],
        layers: vec![
            conv(3, 4, 3),
            MaxPool2,
            Act { act: Activation::Relu },
            conv(4, 5, 5),
            Act { act: Activation::Silu },
            MaxPool2,
            Flatten,
            Linear { in_f: 20, out_f: 12 },
            Act { act: Activation::Tanh },
            Linear { in_f: 12, out_f: 6 },
        ],
    }
}

enum Obj {
    Ce,
    CeDceWeighted,
    MseWeighted,
}

fn compare(name: &str, spec: &ArchSpec, k: usize, n: usize, per_model: bool, obj: Obj) {
    let (bytes, path) = load(name);
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    let w = tensor(&st, "w");
    let x = tensor(&st, "x");
    let labels: Vec<u32> = tensor(&st, "labels").iter().map(|&v| v as u32).collect();
    let kinds: Vec<SampleLoss> = tensor(&st, "kinds")
        .iter()
        .map(|&v| {
            if v > 0.5 {
                SampleLoss::Disagreement
            } else {
                SampleLoss::CrossEntropy
            }
        })
        .collect();
    let sw = tensor(&st, "sample_weights");
    let targets = tensor(&st, "targets");
    let objective = match obj {
        Obj::Ce => Objective::Classify {
            labels: &labels,
            kinds: None,
            weights: None,
        },
        Obj::CeDceWeighted => Objective::Classify {
            labels: &labels,
            kinds: Some(&kinds),
            weights: Some(&sw),
        },
        Obj::MseWeighted => Objective::Mse {
            targets: &targets,
            weights: Some(&sw),
        },
    };
    let pop = Population::new(spec, &w, k, 2).unwrap();
    let input = if per_model {
        Input::PerModel(&x)
    } else {
        Input::Shared(&x)
    };
    let g = pop.gradient(input, n, &objective, Mode::Eval, true).unwrap();
    close(&format!("{name} logits"), &g.logits, &tensor(&st, "logits"), 1e-4);
    close(&format!("{name} loss"), &g.loss, &tensor(&st, "loss"), 1e-4);
    close(&format!("{name} dw"), &g.dw, &tensor(&st, "dw"), 1e-4);
    close(
        &format!("{name} dx"),
        g.dx.as_deref().unwrap(),
        &tensor(&st, "dx"),
        1e-4,
    );
    assert_eq!(pop.logits(input, n).unwrap(), g.logits);
}

#[test]
fn cnn3_gelu_cross_entropy_matches_torch() {
    compare(
        "cnn3_gelu_ce",
        &ArchSpec::cnn3(3, 10, Activation::Gelu),
        2,
        4,
        false,
        Obj::Ce,
    );
}

#[test]
fn same_padding_net_with_weighted_ce_and_dce_matches_torch() {
    compare("same_pad_dce", &same_pad_net(), 3, 5, true, Obj::CeDceWeighted);
}

#[test]
fn same_padding_net_with_weighted_mse_matches_torch() {
    compare("same_pad_mse", &same_pad_net(), 2, 5, false, Obj::MseWeighted);
}
