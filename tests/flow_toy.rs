//! A conditional flow trained on two toy 2-D Gaussian targets reproduces each one's mean and
//! covariance when conditioned on that group's items; the model survives a save/load round trip.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use weightflow::engine::rng::stream;
use weightflow::flow::cfm::Coupling;
use weightflow::flow::context::ItemKind;
use weightflow::flow::opt::OptSettings;
use weightflow::flow::source::{Source, StandardizeMode};
use weightflow::flow::{sample, train, FlowConfig, MetaModel, Solver, TargetGroup, TargetSpace};
use weightflow::nets::ParamLayout;

/// Samples of N(mu, L Lᵀ) with L lower-triangular [[l00, 0], [l10, l11]].
fn gaussian(n: usize, mu: [f32; 2], l: [f32; 3], seed: u64) -> Vec<f32> {
    let mut r = stream(seed, "toy", 0);
    (0..n)
        .flat_map(|_| {
            let (a, b): (f32, f32) = (StandardNormal.sample(&mut r), StandardNormal.sample(&mut r));
            [mu[0] + l[0] * a, mu[1] + l[1] * a + l[2] * b]
        })
        .collect()
}

fn moments(x: &[f32]) -> ([f64; 2], [f64; 3]) {
    let n = (x.len() / 2) as f64;
    let m = [0, 1].map(|j| x.iter().skip(j).step_by(2).map(|&v| v as f64).sum::<f64>() / n);
    let mut c = [0.0; 3];
    for p in x.chunks(2) {
        let (a, b) = (p[0] as f64 - m[0], p[1] as f64 - m[1]);
        c[0] += a * a / n;
        c[1] += a * b / n;
        c[2] += b * b / n;
    }
    (m, c)
}

/// A 2-D target space conditioned on 3-feature items.
fn toy_space() -> TargetSpace {
    let mut layout = ParamLayout::default();
    layout.push("x", vec![2]);
    TargetSpace {
        layout,
        arch: None,
        items: Some(ItemKind::Features { dim: 3 }),
    }
}

/// The toy flow's training settings with the given source–target pairing.
fn toy_config(coupling: Coupling) -> FlowConfig {
    FlowConfig {
        width: 64,
        depth: 2,
        time_freqs: 3,
        // RK4 evaluates at t = 1, where the endpoint form's 1/(1 − t) is stiff: use the velocity form.
        param: weightflow::flow::velocity::Parameterization::Velocity,
        ctx_dim: 4,
        ctx_hidden: 16,
        context_k: 8,
        coupling,
        source: Source::Gaussian,
        standardize: StandardizeMode::None,
        batch: 64,
        iterations: 2000,
        opt: OptSettings {
            lr: 3e-3,
            weight_decay: 0.0,
            warmup: 50,
            clip_norm: 10.0,
            ema_decay: 0.99,
        },
        ctx_lr: 3e-3,
        threads: 1,
        ..FlowConfig::default()
    }
}

#[test]
fn conditional_toy_flow_matches_moments() {
    let space = toy_space();
    // Group A: mean (2, −1), cov [[1, 0.6], [0.6, 0.61]]; group B: mean (−1, 1.5), cov diag(0.25, 0.49).
    let specs = [([2.0f32, -1.0], [1.0f32, 0.6, 0.5]), ([-1.0, 1.5], [0.5, 0.0, 0.7])];
    let mut r = stream(9, "items", 0);
    let groups: Vec<TargetGroup> = specs
        .iter()
        .enumerate()
        .map(|(g, (mu, l))| TargetGroup {
            targets: gaussian(4000, *mu, *l, g as u64),
            items: (0..200 * 3)
                .map(|i| if i % 3 == g { 1.0 } else { 0.0 } + r.gen_range(-0.2..0.2))
                .collect(),
            name: format!("g{g}"),
            normalization: None,
        })
        .collect();
    let meta = train(&toy_config(Coupling::Exact), &space, &groups, None).expect("train");
    assert!(meta.summary.final_loss.is_finite());
    let dir = tempfile::tempdir().unwrap();
    meta.save(dir.path()).unwrap();
    let loaded = MetaModel::load(dir.path()).unwrap();
    for (g, (mu, l)) in specs.iter().enumerate() {
        let s = sample(&meta, &groups[g].items, 4000, 20, Solver::Rk4, 3).unwrap();
        assert_eq!(s.nfe, 80);
        let s2 = sample(&loaded, &groups[g].items, 4000, 20, Solver::Rk4, 3).unwrap();
        assert_eq!(s.x, s2.x, "save/load changed the model");
        let c = weightflow::flow::sample::embed_context(&meta, &groups[g].items, 3).unwrap();
        assert_eq!(meta.nearest_group(&c).map(|i| i.name.clone()), Some(format!("g{g}")));
        let (m, c) = moments(&s.x);
        let want_c = [l[0] * l[0], l[0] * l[1], l[1] * l[1] + l[2] * l[2]].map(|v| v as f64);
        eprintln!("group {g}: mean {m:?} (want {mu:?}), cov {c:?} (want {want_c:?})");
        for j in 0..2 {
            assert!((m[j] - mu[j] as f64).abs() < 0.1, "group {g} mean {m:?} vs {mu:?}");
        }
        for j in 0..3 {
            assert!(
                (c[j] - want_c[j]).abs() < 0.12 * (1.0 + want_c[j]),
                "group {g} cov {c:?} vs {want_c:?}"
            );
        }
    }
}

/// Adjoint Matching samples and tilts the flow's memoryless SDE (drift 2v − x/t), whose law is the
/// flow's own only when v is the velocity of independent pairs from a Gaussian source. With
/// independent pairs the SDE reproduces the target's covariance; with minibatch-OT pairs the same
/// SDE shrinks it (to about a third here) while the ODE still reproduces it.
#[test]
fn memoryless_sde_matches_the_flow_only_with_independent_coupling() {
    let space = toy_space();
    let (mu, l) = ([2.0f32, -1.0], [1.0f32, 0.6, 0.5]);
    let want_c = [1.0, 0.6, 0.61];
    let mut r = stream(9, "items", 0);
    let groups = vec![TargetGroup {
        targets: gaussian(4000, mu, l, 0),
        items: (0..200 * 3).map(|_| r.gen_range(-0.2..0.2)).collect(),
        name: "g".into(),
        normalization: None,
    }];
    let am = weightflow::tune::adjoint::AmConfig {
        steps: 100,
        t0: 1e-3,
        ..Default::default()
    };
    for coupling in [Coupling::Independent, Coupling::Exact] {
        let meta = train(&toy_config(coupling), &space, &groups, None).expect("train");
        let ctx = weightflow::flow::sample::embed_context(&meta, &groups[0].items, 3).unwrap();
        let x = weightflow::tune::meta::sample_sde(&meta, &meta.velocity, &ctx, 4000, &am, 0.1, 5).unwrap();
        let (m, c) = moments(&x);
        eprintln!("{coupling:?}: SDE mean {m:?}, cov {c:?} (want {mu:?}, {want_c:?})");
        for j in 0..2 {
            assert!(
                (m[j] - mu[j] as f64).abs() < 0.15,
                "{coupling:?}: SDE mean {m:?} vs {mu:?}"
            );
        }
        let ratio = c[0] / want_c[0];
        match coupling {
            Coupling::Independent => {
                for j in 0..3 {
                    assert!(
                        (c[j] - want_c[j]).abs() < 0.15 * (1.0 + want_c[j]),
                        "independent pairs: SDE cov {c:?} vs {want_c:?}"
                    );
                }
            }
            _ => assert!(
                ratio < 0.7,
                "OT pairs: the SDE variance ratio {ratio} (expected a shrink)"
            ),
        }
    }
}
