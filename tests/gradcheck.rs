//! Finite-difference checks of the population engine: every layer kind, every activation,
//! every loss (with per-sample weights), shared and per-model input, weight and input gradients,
//! dropout in training mode; plus chunking/thread invariance and input validation.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weightflow::engine::{Input, Mode, Objective, Population, SampleLoss};
use weightflow::nets::init::InitScheme;
use weightflow::nets::{Activation, ArchSpec, LayerSpec, Padding};

const ACTS: [Activation; 6] = [
    Activation::Relu,
    Activation::LeakyRelu(0.1),
    Activation::Gelu,
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Silu,
];

/// A small net using every layer kind: same-padded conv, odd-sized pool, valid conv, flatten,
/// linear, dropout.
fn small_net(act: Activation, dropout: bool) -> ArchSpec {
    use LayerSpec::*;
    let mut layers = vec![
        Conv2d {
            in_ch: 2,
            out_ch: 3,
            kernel: 3,
            padding: Padding::Same,
        },
        MaxPool2,
        Act { act },
        Conv2d {
            in_ch: 3,
            out_ch: 4,
            kernel: 2,
            padding: Padding::Valid,
        },
        Act { act },
        Flatten,
        Linear { in_f: 36, out_f: 7 },
        Act { act },
    ];
    if dropout {
        layers.push(Dropout { p: 0.3 });
    }
    layers.push(Linear { in_f: 7, out_f: 5 });
    ArchSpec {
        name: "test".into(),
        input: [2, 9, 9],
        layers,
    }
}

fn randn(rng: &mut ChaCha8Rng, len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|_| scale * (rng.gen::<f32>() * 2.0 - 1.0)).collect()
}

fn init(spec: &ArchSpec, k: usize, seed: u64) -> Vec<f32> {
    let layout = spec.layout();
    let d = layout.dim();
    let mut w = vec![0.0; k * d];
    for m in 0..k {
        let mut rng = weightflow::engine::rng::stream(seed, "init", m as u64);
        InitScheme::TorchDefault.fill(&layout, &mut w[m * d..(m + 1) * d], &mut rng);
    }
    w
}

/// Σ_k L_k for weights `w` and input `x`.
fn total(spec: &ArchSpec, w: &[f32], k: usize, x: &[f32], shared: bool, n: usize, obj: &Objective, mode: Mode) -> f64 {
    let pop = Population::new(spec, w, k, 1).unwrap();
    let input = if shared { Input::Shared(x) } else { Input::PerModel(x) };
    let g = pop.gradient(input, n, obj, mode, false).unwrap();
    g.loss.iter().map(|&v| v as f64).sum()
}

/// Checks the analytic gradient (weights and input) along random directions and on single
/// coordinates against central differences. The step `h` must stay small (1e-3): max-pool is
/// only piecewise smooth, and larger steps move pool windows across their kinks.
#[allow(clippy::too_many_arguments)]
fn check(spec: &ArchSpec, k: usize, n: usize, shared: bool, obj: &Objective, mode: Mode, h: f32, tol: f64, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w = init(spec, k, seed);
    let per = spec.input_len();
    let x = randn(&mut rng, if shared { n * per } else { k * n * per }, 1.0);
    let pop = Population::new(spec, &w, k, 1).unwrap();
    let input = if shared { Input::Shared(&x) } else { Input::PerModel(&x) };
    let g = pop.gradient(input, n, obj, mode, true).unwrap();
    let dx = g.dx.clone().unwrap();
    // weights: directional derivatives; a random direction moves every unit at once, so it takes
    // a 10× smaller step to cross no ReLU / pool kink
    let hd = h / 10.0;
    for rep in 0..3 {
        let v = randn(&mut rng, w.len(), 1.0);
        let wp: Vec<f32> = w.iter().zip(&v).map(|(a, b)| a + hd * b).collect();
        let wm: Vec<f32> = w.iter().zip(&v).map(|(a, b)| a - hd * b).collect();
        let num = (total(spec, &wp, k, &x, shared, n, obj, mode) - total(spec, &wm, k, &x, shared, n, obj, mode))
            / (2.0 * hd as f64);
        let ana: f64 = g.dw.iter().zip(&v).map(|(a, b)| *a as f64 * *b as f64).sum();
        assert!(
            (num - ana).abs() <= tol * (1.0 + ana.abs()),
            "dw direction {rep}: numeric {num} analytic {ana}"
        );
    }
    // weights: single coordinates (one per parameter tensor of model 0 and the last model)
    let d = spec.layout().dim();
    for e in spec.layout().entries {
        for m in [0, k - 1] {
            let i = m * d + e.offset + (seed as usize * 7) % e.len();
            let mut wp = w.clone();
            wp[i] += h;
            let mut wm = w.clone();
            wm[i] -= h;
            let num = (total(spec, &wp, k, &x, shared, n, obj, mode) - total(spec, &wm, k, &x, shared, n, obj, mode))
                / (2.0 * h as f64);
            let ana = g.dw[i] as f64;
            assert!(
                (num - ana).abs() <= tol * (0.1 + ana.abs()),
                "{} model {m}: numeric {num} analytic {ana}",
                e.name
            );
        }
    }
    // input: directional derivative of Σ_k L_k; shared input sums the per-model dx.
    let v = randn(&mut rng, x.len(), 1.0);
    let xp: Vec<f32> = x.iter().zip(&v).map(|(a, b)| a + h * b).collect();
    let xm: Vec<f32> = x.iter().zip(&v).map(|(a, b)| a - h * b).collect();
    let num = (total(spec, &w, k, &xp, shared, n, obj, mode) - total(spec, &w, k, &xm, shared, n, obj, mode))
        / (2.0 * h as f64);
    let ana: f64 = if shared {
        dx.chunks(n * per)
            .map(|d| d.iter().zip(&v).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>())
            .sum()
    } else {
        dx.iter().zip(&v).map(|(a, b)| *a as f64 * *b as f64).sum()
    };
    assert!(
        (num - ana).abs() <= tol * (1.0 + ana.abs()),
        "dx direction: numeric {num} analytic {ana}"
    );
}

#[test]
fn every_activation_shared_and_per_model() {
    let (k, n) = (3, 6);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 5).collect();
    let obj = Objective::Classify {
        labels: &labels,
        kinds: None,
        weights: None,
    };
    for (i, act) in ACTS.into_iter().enumerate() {
        let spec = small_net(act, false);
        for shared in [true, false] {
            // kinks (ReLU, LeakyReLU, max-pool) want a small step
            check(&spec, k, n, shared, &obj, Mode::Eval, 1e-3, 2e-2, 10 + i as u64);
        }
    }
}

#[test]
fn every_loss_with_weights() {
    let (k, n) = (2, 7);
    let spec = small_net(Activation::Tanh, false);
    let labels: Vec<u32> = (0..(k * n) as u32).map(|i| (i * 3) % 5).collect();
    let kinds: Vec<SampleLoss> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                SampleLoss::CrossEntropy
            } else {
                SampleLoss::Disagreement
            }
        })
        .collect();
    let w_shared: Vec<f32> = (0..n).map(|i| 0.5 + i as f32 * 0.25).collect();
    let w_per: Vec<f32> = (0..k * n).map(|i| 1.5 - i as f32 * 0.1).collect();
    let dce = vec![SampleLoss::Disagreement; n];
    let objs = [
        Objective::Classify {
            labels: &labels[..n],
            kinds: None,
            weights: Some(&w_shared),
        },
        Objective::Classify {
            labels: &labels[..n],
            kinds: Some(&dce),
            weights: Some(&w_shared),
        },
        Objective::Classify {
            labels: &labels,
            kinds: Some(&kinds),
            weights: Some(&w_per),
        },
    ];
    for (i, obj) in objs.iter().enumerate() {
        check(&spec, k, n, true, obj, Mode::Eval, 1e-3, 1e-2, 30 + i as u64);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let targets = randn(&mut rng, k * n * 5, 1.0);
    let mse_shared = Objective::Mse {
        targets: &targets[..n * 5],
        weights: Some(&w_shared),
    };
    let mse_per = Objective::Mse {
        targets: &targets,
        weights: Some(&w_per),
    };
    check(&spec, k, n, true, &mse_shared, Mode::Eval, 1e-3, 1e-2, 40);
    check(&spec, k, n, false, &mse_per, Mode::Eval, 1e-3, 1e-2, 41);
}

#[test]
fn dropout_in_training_mode_and_cnn3_chunks() {
    let (k, n) = (2, 5);
    let spec = small_net(Activation::Gelu, true);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 5).collect();
    let obj = Objective::Classify {
        labels: &labels,
        kinds: None,
        weights: None,
    };
    let seeds = [11u64, 12];
    check(&spec, k, n, false, &obj, Mode::Train { seeds: &seeds }, 1e-3, 1e-2, 50);
    // CNN3 (3 valid convs, pools with odd sides) over more samples than one chunk
    let spec = ArchSpec::cnn3(3, 10, Activation::Gelu);
    let n = 35;
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
    let obj = Objective::Classify {
        labels: &labels,
        kinds: None,
        weights: None,
    };
    check(&spec, 2, n, true, &obj, Mode::Eval, 1e-3, 1e-2, 51);
}

#[test]
fn dropout_masks_are_seeded_and_scaled() {
    let spec = small_net(Activation::Relu, true);
    let (k, n) = (2, 4);
    let w = init(&spec, k, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = randn(&mut rng, n * spec.input_len(), 1.0);
    let labels = vec![0u32; n];
    let obj = Objective::Classify {
        labels: &labels,
        kinds: None,
        weights: None,
    };
    let pop = Population::new(&spec, &w, k, 1).unwrap();
    let run = |seeds: &[u64]| {
        pop.gradient(Input::Shared(&x), n, &obj, Mode::Train { seeds }, false)
            .unwrap()
            .logits
    };
    let a = run(&[1, 2]);
    assert_eq!(a, run(&[1, 2]), "same seeds, same masks");
    assert_ne!(a, run(&[1, 3]), "another seed, another mask");
    let eval = pop
        .gradient(Input::Shared(&x), n, &obj, Mode::Eval, false)
        .unwrap()
        .logits;
    assert_ne!(a, eval);
    assert_eq!(eval, pop.logits(Input::Shared(&x), n).unwrap());
}

#[test]
fn results_do_not_depend_on_threads_or_input_mode() {
    let spec = ArchSpec::cnn3(3, 10, Activation::Gelu);
    let (k, n) = (4, 40);
    let w = init(&spec, k, 9);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x = randn(&mut rng, n * spec.input_len(), 1.0);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
    let obj = Objective::Classify {
        labels: &labels,
        kinds: None,
        weights: None,
    };
    let one = Population::new(&spec, &w, k, 1).unwrap();
    let two = Population::new(&spec, &w, k, 2).unwrap();
    let a = one.gradient(Input::Shared(&x), n, &obj, Mode::Eval, true).unwrap();
    let b = two.gradient(Input::Shared(&x), n, &obj, Mode::Eval, true).unwrap();
    assert_eq!(a.dw, b.dw);
    assert_eq!(a.loss, b.loss);
    assert_eq!(a.dx, b.dx);
    // the same batch given per model gives the same results
    let xs: Vec<f32> = (0..k).flat_map(|_| x.iter().copied()).collect();
    let c = two.gradient(Input::PerModel(&xs), n, &obj, Mode::Eval, true).unwrap();
    assert_eq!(a.dw, c.dw);
    assert_eq!(a.logits, c.logits);
    // model k alone gives model k's row
    let d = spec.layout().dim();
    let solo = Population::new(&spec, &w[2 * d..3 * d], 1, 1).unwrap();
    let s = solo.gradient(Input::Shared(&x), n, &obj, Mode::Eval, false).unwrap();
    assert_eq!(&a.dw[2 * d..3 * d], &s.dw[..]);
}

#[test]
fn malformed_weights_and_inputs_are_errors() {
    let spec = ArchSpec::cnn3(3, 10, Activation::Relu);
    let d = spec.layout().dim();
    let w = init(&spec, 2, 1);
    let e = Population::new(&spec, &w[..2 * d - 1], 2, 1)
        .err()
        .expect("short weights accepted");
    assert!(e.to_string().contains("expected 21706"), "{e}");
    let mut bad = w.clone();
    bad[d + 500] = f32::NAN;
    let e = Population::new(&spec, &bad, 2, 1).err().expect("NaN accepted");
    assert!(e.to_string().contains("model 1"), "{e}");
    let pop = Population::new(&spec, &w, 2, 1).unwrap();
    let x = vec![0.0; 3 * spec.input_len()];
    assert!(pop.logits(Input::Shared(&x), 4).is_err());
    assert!(pop.logits(Input::PerModel(&x), 3).is_err());
    let labels = vec![0u32, 1, 12];
    let obj = Objective::Classify {
        labels: &labels,
        kinds: None,
        weights: None,
    };
    let e = pop.gradient(Input::Shared(&x), 3, &obj, Mode::Eval, false).unwrap_err();
    assert!(e.to_string().contains("label 2"), "{e}");
    let obj = Objective::Classify {
        labels: &labels[..2],
        kinds: None,
        weights: None,
    };
    assert!(pop.gradient(Input::Shared(&x), 3, &obj, Mode::Eval, false).is_err());
    let mut xn = x.clone();
    xn[7] = f32::INFINITY;
    assert!(pop.logits(Input::Shared(&xn), 3).is_err());
}
