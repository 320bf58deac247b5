//! Tests of Detectron on synthetic data made here: a base model trained a few steps on
//! separable template images, in-distribution query sets from the same templates, and shifted
//! query sets (negated templates with noise).

use super::*;
use crate::engine::loss::{cross_entropy_row, disagreement_row, SampleLoss};
use crate::engine::{Mode, Objective, OptimConfig, Optimizer};
use crate::nets::init::InitScheme;
use crate::nets::Activation;
use rand::Rng;

/// The CDC loss as the engine will compute it from the assembled weights equals
/// `(1/n_k)(Σ_P CE + λ_k Σ_Q DCE)` per run, padding contributing nothing.
#[test]
fn assembled_batch_weights_give_the_cdc_loss() {
    let len = 2;
    let p: Vec<f32> = (0..10).map(|v| v as f32).collect(); // 5 images of 2 values
    let p_labels = [0u32, 1, 2, 0, 1];
    let q0: Vec<f32> = vec![100.0; 6]; // 3 images
    let q1: Vec<f32> = vec![200.0; 2]; // 1 image
    let (ql0, ql1) = (vec![2u32, 1, 0], vec![1u32]);
    // Run 1 has a shorter P part than run 0 (as official runs with different counts do).
    let s0 = cdc::Step {
        p: vec![3, 1],
        q: vec![2, 0],
    };
    let s1 = cdc::Step { p: vec![4], q: vec![0] };
    let lambda = [0.25f32, 0.5];
    let b = cdc::assemble_batch(
        len,
        &Images::Tensor(&p),
        &p_labels,
        &[&q0, &q1],
        &[&ql0, &ql1],
        &[Some(&s0), Some(&s1)],
        2,
        2,
        &lambda,
    );
    assert_eq!(b.n, 4);
    assert_eq!(
        b.kinds,
        vec![
            SampleLoss::CrossEntropy,
            SampleLoss::CrossEntropy,
            SampleLoss::Disagreement,
            SampleLoss::Disagreement
        ]
    );
    assert_eq!(&b.x[0..2], &[6.0, 7.0]); // run 0, P image 3
    assert_eq!(&b.x[4..6], &[100.0, 100.0]); // run 0, Q slot 0
    assert_eq!(b.labels, vec![0, 1, 0, 2, 1, 0, 1, 0]);
    assert_eq!(&b.x[(4 + 1) * 2..(4 + 2) * 2], &[0.0, 0.0], "P padding is zero");
    assert_eq!(&b.x[(4 + 3) * 2..(4 + 4) * 2], &[0.0, 0.0], "Q padding is zero");
    // A run without a step is all padding.
    let idle = cdc::assemble_batch(
        len,
        &Images::Tensor(&p),
        &p_labels,
        &[&q0, &q1],
        &[&ql0, &ql1],
        &[Some(&s0), None],
        2,
        2,
        &lambda,
    );
    assert!(idle.weights[4..].iter().all(|&w| w == 0.0));
    let classes = 3;
    let logits: Vec<f32> = (0..8 * classes).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.3).collect();
    let obj = Objective::Classify {
        labels: &b.labels,
        kinds: Some(&b.kinds),
        weights: Some(&b.weights),
    };
    for k in 0..2 {
        let z = &logits[k * 4 * classes..(k + 1) * 4 * classes];
        let mut g = vec![0f32; 4 * classes];
        let got = obj.apply(k, 0, 4, classes, z, &mut g);
        let mut scratch = vec![0f32; classes];
        let row = |r: usize| &z[r * classes..(r + 1) * classes];
        let (np, nq) = if k == 0 { (2, 2) } else { (1, 1) };
        let mut want = 0.0;
        for r in 0..np {
            want += cross_entropy_row(row(r), b.labels[k * 4 + r] as usize, 0.0, &mut scratch);
        }
        for r in 2..2 + nq {
            want += lambda[k] * disagreement_row(row(r), b.labels[k * 4 + r] as usize, 0.0, &mut scratch);
        }
        want /= (np + nq) as f32;
        assert!(
            (got - want).abs() < 1e-5,
            "run {k}: engine loss {got} vs CDC loss {want}"
        );
    }
}

/// The official batch composition: `batch − count` P images of one permutation per step (the
/// incomplete last batch dropped) plus every remaining Q sample in every step; λ =
/// 1/(steps·count + 1). The fast budget spreads Q over the epoch with λ = κ/(|Q|+1).
#[test]
fn official_batches_hold_every_remaining_query_sample() {
    let cfg = DetectronConfig {
        batch_size: 64,
        ..DetectronConfig::default()
    };
    assert_eq!(cfg.budget, Budget::Official);
    let p_order: Vec<usize> = (0..200).rev().collect();
    let q_order = [7usize, 2, 9, 0, 4, 5, 1, 3, 8, 6];
    let plan = cdc::epoch_plan(&cfg, &p_order, &q_order).unwrap();
    assert_eq!(plan.len(), 200 / 54, "⌊|P|/(batch − count)⌋ steps");
    let mut seen = std::collections::HashSet::new();
    for s in &plan {
        assert_eq!(s.p.len() + s.q.len(), 64);
        assert_eq!(s.q, q_order, "every remaining Q sample in every batch");
        assert!(s.p.iter().all(|&i| seen.insert(i)), "P drawn without repetition");
    }
    assert_eq!(cdc::lambda(&cfg, 200, 20, 10).unwrap(), 1.0 / (3.0 * 10.0 + 1.0));
    // Fewer remaining samples: more P per batch, λ from the new count.
    assert_eq!(cdc::steps_per_epoch(&cfg, 200, 4).unwrap(), 200 / 60);
    assert_eq!(cdc::lambda(&cfg, 200, 20, 4).unwrap(), 1.0 / (3.0 * 4.0 + 1.0));
    assert!(
        cdc::steps_per_epoch(&cfg, 200, 64).is_err(),
        "|Q| must be below the batch"
    );
    assert!(cdc::steps_per_epoch(&cfg, 50, 10).is_err(), "P smaller than one batch");
    let fast = DetectronConfig {
        batch_size: 64,
        ..DetectronConfig::for_budget(Budget::Fast)
    };
    let plan = cdc::epoch_plan(&fast, &p_order, &q_order).unwrap();
    assert_eq!(plan.len(), 4);
    assert_eq!(
        plan.iter().map(|s| s.q.len()).sum::<usize>(),
        10,
        "each Q sample once per epoch"
    );
    assert_eq!(plan.iter().map(|s| s.p.len()).sum::<usize>(), 200);
    assert_eq!(cdc::lambda(&fast, 200, 20, 4).unwrap(), 1.0 / 21.0);
}

/// A whole official run records, for each CDC, λ from the count it started with and
/// `epochs·⌊|P|/(batch − count)⌋` steps; its entropy averages f with the CDCs.
#[test]
fn official_run_recomputes_lambda_per_cdc() {
    let f = fixture();
    let base = BaseModel {
        spec: &f.spec,
        weights: &f.w,
    };
    let cfg = DetectronConfig {
        batch_size: 40,
        epochs: 2,
        lr: 1e-2,
        threads: 1,
        ..DetectronConfig::default()
    };
    let (q, _) = f.synth.sample(10, 0.5, true, 40);
    let run = run_detectron(&base, &Images::Tensor(&f.p), &[&q], &[3], &cfg, true)
        .unwrap()
        .remove(0);
    assert_eq!(run.lambdas.len(), run.rounds());
    let mut steps = 0;
    for (m, &l) in run.lambdas.iter().enumerate() {
        let count = run.remaining[m];
        let s = 200 / (40 - count);
        assert!(
            (l - 1.0 / (s as f64 * count as f64 + 1.0)).abs() < 1e-9,
            "CDC {m}: λ {l}, count {count}"
        );
        steps += cfg.epochs * s;
    }
    assert_eq!(run.steps, steps);
    // With no CDC the entropy is f's own.
    let f_only = DetectronConfig {
        ensemble: 1,
        epochs: 1,
        lr: 1e-9,
        ..cfg.clone()
    };
    let r1 = run_detectron(&base, &Images::Tensor(&f.p), &[&q], &[3], &f_only, true)
        .unwrap()
        .remove(0);
    let fp = softmax_rows(&base, &q, 10, 1).unwrap();
    let h_f = averaged_softmax_entropy(&fp, 1, 10, CLASSES).unwrap();
    for (a, b) in r1.entropies.iter().zip(&h_f) {
        assert!(
            (a - b).abs() < 1e-3,
            "a CDC that barely moved averages to f's entropy: {a} vs {b}"
        );
    }
}

/// The official analysis's cut: the largest c with `#{null < c}/n ≤ α`.
#[test]
fn lower_tail_cut_allows_alpha_of_the_null_below() {
    let null: Vec<f64> = (0..20).map(|i| i as f64).collect();
    assert_eq!(lower_tail_cut(&null, 0.05), 1.0, "one of 20 below");
    assert_eq!(lower_tail_cut(&null, 0.1), 2.0);
    assert_eq!(lower_tail_cut(&null[..10], 0.05), 0.0, "none of 10 below");
    assert!(lower_tail_cut(&[], 0.05).is_infinite());
}

const CLASSES: usize = 4;

fn spec() -> ArchSpec {
    ArchSpec::mlp([3, 8, 8], &[24], CLASSES, Activation::Tanh)
}

/// Template images: class c is `templates[c] + noise·N(0,1)`; `negate` flips the template.
struct Synth {
    templates: Vec<Vec<f32>>,
    len: usize,
}

impl Synth {
    fn new(len: usize) -> Self {
        let mut rng = stream(11, "templates", 0);
        let templates = (0..CLASSES)
            .map(|_| (0..len).map(|_| if rng.gen::<bool>() { 1.0 } else { -1.0 }).collect())
            .collect();
        Synth { templates, len }
    }

    fn sample(&self, n: usize, noise: f32, negate: bool, seed: u64) -> (Vec<f32>, Vec<u32>) {
        let mut rng = stream(seed, "synth", 0);
        let mut x = Vec::with_capacity(n * self.len);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let c = rng.gen_range(0..CLASSES);
            y.push(c as u32);
            for &t in &self.templates[c] {
                let z: f32 = (0..6).map(|_| rng.gen::<f32>()).sum::<f32>() - 3.0; // ≈ N(0, 0.5)
                x.push(if negate { -t } else { t } + noise * 1.4 * z);
            }
        }
        (x, y)
    }
}

/// Base model: Kaiming init, Adam 1e-2, full-batch steps on labelled data.
fn train_base(spec: &ArchSpec, x: &[f32], y: &[u32], steps: usize) -> Vec<f32> {
    let layout = spec.layout();
    let mut w = vec![0f32; layout.dim()];
    InitScheme::KaimingUniform.fill(&layout, &mut w, &mut stream(5, "init", 0));
    let mut opt = Optimizer::new(OptimConfig::adam(1e-2, 0.0), w.len());
    let obj = Objective::Classify {
        labels: y,
        kinds: None,
        weights: None,
    };
    for _ in 0..steps {
        let g = Population::new(spec, &w, 1, 1)
            .unwrap()
            .gradient(Input::Shared(x), y.len(), &obj, Mode::Eval, false)
            .unwrap();
        opt.update(&mut w, &g.dw);
    }
    w
}

fn small_cfg() -> DetectronConfig {
    DetectronConfig {
        budget: Budget::Fast,
        ensemble: 3,
        epochs: 3,
        lr: 1e-3,
        batch_size: 50,
        patience: 2,
        kappa: 1.0,
        alpha: 0.05,
        threads: 1,
        max_parallel: 16,
    }
}

struct Fixture {
    spec: ArchSpec,
    w: Vec<f32>,
    p: Vec<f32>,
    pool: Vec<f32>,
    synth: Synth,
}

fn fixture() -> Fixture {
    let spec = spec();
    let synth = Synth::new(spec.input_len());
    let (x, y) = synth.sample(300, 0.5, false, 1);
    let w = train_base(&spec, &x, &y, 60);
    let (p, _) = synth.sample(200, 0.5, false, 2);
    let (pool, _) = synth.sample(200, 0.5, false, 3);
    Fixture {
        spec,
        w,
        p,
        pool,
        synth,
    }
}

#[test]
fn base_model_learns_the_synthetic_task() {
    let f = fixture();
    let (x, y) = f.synth.sample(200, 0.5, false, 9);
    let base = BaseModel {
        spec: &f.spec,
        weights: &f.w,
    };
    let pred = predict(&base, &Images::Tensor(&x), 200, 1).unwrap();
    let acc = pred.iter().zip(&y).filter(|(a, b)| a == b).count() as f64 / 200.0;
    assert!(acc > 0.9, "base accuracy {acc}");
}

#[test]
fn detectron_flags_shifted_queries_and_not_in_distribution_ones() {
    let f = fixture();
    let base = BaseModel {
        spec: &f.spec,
        weights: &f.w,
    };
    let cfg = small_cfg();
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("base.safetensors");
    let n_query = 10;
    let (bank, computed) = NullBank::load_or_compute(
        &model_path,
        &base,
        &Images::Tensor(&f.p),
        &f.pool,
        n_query,
        12,
        0,
        &cfg,
        true,
    )
    .unwrap();
    assert!(computed);
    assert_eq!(bank.runs.len(), 12);
    assert!(bank
        .runs
        .iter()
        .all(|r| r.entropies.len() == n_query && r.remaining[0] == n_query));
    // Reused on the second call, identical.
    let (again, computed) = NullBank::load_or_compute(
        &model_path,
        &base,
        &Images::Tensor(&f.p),
        &f.pool,
        n_query,
        12,
        0,
        &cfg,
        true,
    )
    .unwrap();
    assert!(!computed);
    assert_eq!(again.base_model, bank.base_model);
    for (a, b) in again.runs.iter().zip(&bank.runs) {
        assert_eq!((a.seed, &a.remaining), (b.seed, &b.remaining));
        for (x, y) in a.entropies.iter().zip(&b.entropies) {
            assert!(
                (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                "JSON keeps entropies: {x} vs {y}"
            );
        }
    }
    assert!(NullBank::path_next_to(&model_path, n_query).exists());

    let (q_shift, _) = f.synth.sample(n_query, 0.5, true, 40);
    let (q_null, _) = f.synth.sample(n_query, 0.5, false, 41);
    let runs = run_detectron(&base, &Images::Tensor(&f.p), &[&q_shift, &q_null], &[7, 8], &cfg, true).unwrap();
    let [dis_s, ent_s] = decide(&runs[0], &bank, 0.05).unwrap();
    let [dis_n, ent_n] = decide(&runs[1], &bank, 0.05).unwrap();
    eprintln!("null counts {:?}", bank.rejected());
    for r in [&dis_s, &ent_s, &dis_n, &ent_n] {
        eprintln!("{}", r.verdict_line());
    }
    assert!(runs[0].rejected > runs[1].rejected, "shifted Q rejected more: {runs:?}");
    assert!(dis_s.shift || ent_s.shift, "a far shift is detected");
    assert!(!dis_n.shift, "an in-distribution Q is not flagged by disagreement");
    assert!(ent_s.statistic > ent_n.statistic);
    // The one-call test gives the same verdicts, with its wall time, and refuses a foreign bank.
    let [d1, e1] = detectron_test(&base, &Images::Tensor(&f.p), &q_shift, 7, &bank, &cfg, true).unwrap();
    assert_eq!((d1.statistic, e1.statistic), (dis_s.statistic, ent_s.statistic));
    assert!(d1.extra["wall_s"].as_f64().unwrap() > 0.0);
    let other = DetectronConfig {
        epochs: 1,
        ..cfg.clone()
    };
    assert!(detectron_test(&base, &Images::Tensor(&f.p), &q_shift, 7, &bank, &other, true).is_err());
    let json = d1.to_json();
    assert_eq!(json["method"], "detectron-disagreement");
    assert!(json["remaining"].is_array() && json["shift"].is_boolean());
}

#[test]
fn runs_trained_together_equal_runs_trained_alone() {
    let f = fixture();
    let base = BaseModel {
        spec: &f.spec,
        weights: &f.w,
    };
    let cfg = small_cfg();
    let (q1, _) = f.synth.sample(10, 0.5, true, 50);
    let (q2, _) = f.synth.sample(20, 0.5, false, 51);
    let together = run_detectron(&base, &Images::Tensor(&f.p), &[&q1, &q2], &[1, 2], &cfg, true).unwrap();
    let alone = run_detectron(&base, &Images::Tensor(&f.p), &[&q2], &[2], &cfg, true).unwrap();
    assert_eq!(together[1].remaining, alone[0].remaining);
    for (a, b) in together[1].entropies.iter().zip(&alone[0].entropies) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // Same seed, same result.
    let again = run_detectron(&base, &Images::Tensor(&f.p), &[&q1, &q2], &[1, 2], &cfg, true).unwrap();
    assert_eq!(again, together);
}

#[test]
fn cnn3_detectron_smoke() {
    let spec = ArchSpec::cnn3(3, 10, Activation::Gelu);
    let layout = spec.layout();
    let mut w = vec![0f32; layout.dim()];
    InitScheme::KaimingUniform.fill(&layout, &mut w, &mut stream(3, "init", 0));
    let len = spec.input_len();
    let mut rng = stream(4, "x", 0);
    let p: Vec<f32> = (0..40 * len).map(|_| rng.gen::<f32>() - 0.5).collect();
    let q: Vec<f32> = (0..5 * len).map(|_| rng.gen::<f32>() * 2.0).collect();
    let cfg = DetectronConfig {
        ensemble: 2,
        epochs: 1,
        batch_size: 20,
        ..small_cfg()
    };
    let base = BaseModel {
        spec: &spec,
        weights: &w,
    };
    let runs = run_detectron(&base, &Images::Tensor(&p), &[&q], &[0], &cfg, true).unwrap();
    assert_eq!(runs[0].n_query, 5);
    assert!(runs[0].rounds() >= 1 && runs[0].rounds() <= 2);
    assert!(runs[0]
        .entropies
        .iter()
        .all(|h| (0.0..=(10f64).ln() + 1e-9).contains(h)));
}

#[test]
fn bad_inputs_are_errors() {
    let f = fixture();
    let base = BaseModel {
        spec: &f.spec,
        weights: &f.w,
    };
    let cfg = small_cfg();
    assert!(matches!(
        run_detectron(&base, &Images::Tensor(&f.p[..5]), &[], &[], &cfg, true),
        Err(ShiftError::Shape(_))
    ));
    let (q, _) = f.synth.sample(3, 0.5, false, 1);
    assert!(run_detectron(&base, &Images::Tensor(&f.p), &[&q], &[], &cfg, true).is_err());
    let mut bad = q.clone();
    bad[0] = f32::NAN;
    assert!(matches!(
        run_detectron(&base, &Images::Tensor(&f.p), &[&bad], &[0], &cfg, true),
        Err(ShiftError::NonFinite(_))
    ));
    let zero = DetectronConfig {
        ensemble: 0,
        ..small_cfg()
    };
    assert!(run_detectron(&base, &Images::Tensor(&f.p), &[&q], &[0], &zero, true).is_err());
}

/// Timing of one CDC epoch on CNN3 (run with `--ignored --nocapture`): 1 run alone vs 4 together.
#[test]
#[ignore]
fn cnn3_cdc_epoch_timing() {
    let spec = ArchSpec::cnn3(3, 10, Activation::Gelu);
    let layout = spec.layout();
    let mut w = vec![0f32; layout.dim()];
    InitScheme::KaimingUniform.fill(&layout, &mut w, &mut stream(3, "init", 0));
    let len = spec.input_len();
    let mut rng = stream(4, "x", 0);
    let p: Vec<f32> = (0..500 * len).map(|_| rng.gen::<f32>() - 0.5).collect();
    let q: Vec<f32> = (0..20 * len).map(|_| rng.gen::<f32>() * 2.0).collect();
    let cfg = DetectronConfig {
        ensemble: 1,
        epochs: 1,
        batch_size: 100,
        threads: rayon::current_num_threads(),
        ..small_cfg()
    };
    let base = BaseModel {
        spec: &spec,
        weights: &w,
    };
    for k in [1usize, 4] {
        let qs: Vec<&[f32]> = vec![&q; k];
        let seeds: Vec<u64> = (0..k as u64).collect();
        let t = std::time::Instant::now();
        run_detectron(&base, &Images::Tensor(&p), &qs, &seeds, &cfg, true).unwrap();
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "K={k}: one CDC epoch over 500 P + 20 Q images: {s:.2} s total, {:.2} s per run",
            s / k as f64
        );
    }
}

/// A bank is saved after every population of runs; asking for more runs completes the saved
/// bank, and the result equals a bank computed in one go.
#[test]
fn null_banks_resume_where_they_stopped() {
    let f = fixture();
    let base = BaseModel {
        spec: &f.spec,
        weights: &f.w,
    };
    let cfg = DetectronConfig {
        ensemble: 2,
        epochs: 1,
        max_parallel: 2,
        ..small_cfg()
    };
    let p = Images::Tensor(&f.p);
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("f");
    let (four, computed) = NullBank::load_or_compute(&at, &base, &p, &f.pool, 5, 4, 9, &cfg, true).unwrap();
    assert!(computed);
    assert_eq!(four.runs.len(), 4);
    let (six, computed) = NullBank::load_or_compute(&at, &base, &p, &f.pool, 5, 6, 9, &cfg, true).unwrap();
    assert!(computed);
    let whole = NullBank::compute(&base, &p, &f.pool, 5, 6, 9, &cfg, true).unwrap();
    assert_eq!(whole.runs.len(), 6);
    let same = |a: &DetectronRun, b: &DetectronRun| {
        (a.seed, &a.remaining, a.steps) == (b.seed, &b.remaining, b.steps)
            && a.entropies.iter().zip(&b.entropies).all(|(x, y)| (x - y).abs() < 1e-12)
    };
    assert!(
        four.runs.iter().zip(&six.runs).all(|(a, b)| same(a, b)),
        "the saved runs are kept"
    );
    assert!(
        whole.runs.iter().zip(&six.runs).all(|(a, b)| same(a, b)),
        "resumed = in one go"
    );
    let (_, computed) = NullBank::load_or_compute(&at, &base, &p, &f.pool, 5, 5, 9, &cfg, true).unwrap();
    assert!(!computed, "a bank with enough runs is read");
}

/// A bank built in 3 shards (each run r ≡ I mod 3, in populations of its own) and merged by the
/// unsharded call equals the bank computed in one population, bit for bit (fast budget: a run's
/// batches do not depend on the runs beside it); a missing shard is named.
#[test]
fn null_banks_built_in_shards_merge_to_the_single_run() {
    let f = fixture();
    let base = BaseModel {
        spec: &f.spec,
        weights: &f.w,
    };
    let cfg = DetectronConfig {
        ensemble: 2,
        epochs: 1,
        ..small_cfg()
    };
    let p = Images::Tensor(&f.p);
    let whole = NullBank::compute(&base, &p, &f.pool, 5, 7, 9, &cfg, true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("f");
    let shard = |i| crate::shard::Shard::new(i, 3).unwrap();
    for i in [0, 2] {
        let (done, total) = NullBank::build_shard(&at, &base, &p, &f.pool, 5, 7, 9, &cfg, shard(i), true).unwrap();
        assert_eq!((done, total), (shard(i).indices(7).len(), shard(i).indices(7).len()));
    }
    let e = NullBank::load_or_compute(&at, &base, &p, &f.pool, 5, 7, 9, &cfg, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("shard 1/3: missing"), "{e}");
    NullBank::build_shard(&at, &base, &p, &f.pool, 5, 7, 9, &cfg, shard(1), true).unwrap();
    let (merged, computed) = NullBank::load_or_compute(&at, &base, &p, &f.pool, 5, 7, 9, &cfg, true).unwrap();
    assert!(!computed, "merged, not computed");
    assert_eq!(merged.runs, whole.runs, "merged shards = one population, bit for bit");
    assert!(NullBank::path_next_to(&at, 5).exists(), "the merged bank is saved");
    let (again, _) = NullBank::load_or_compute(&at, &base, &p, &f.pool, 5, 7, 9, &cfg, true).unwrap();
    assert_eq!(again.runs, whole.runs);
}
