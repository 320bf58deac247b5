//! Fixtures shared by the integration tests (each test binary uses a part of them).
#![allow(dead_code)]

pub mod cli;

use weightflow::flow::context::ItemKind;
use weightflow::flow::{train, FlowConfig, MetaModel, TargetGroup, TargetSpace};
use weightflow::nets::ParamLayout;

/// A tiny conditional meta-model over 2-D targets with 3-feature context items (5 iterations).
pub fn toy_meta(seed: u64) -> MetaModel {
    let mut layout = ParamLayout::default();
    layout.push("x", vec![2]);
    let space = TargetSpace {
        layout,
        arch: None,
        items: Some(ItemKind::Features { dim: 3 }),
    };
    let cfg = FlowConfig {
        width: 8,
        depth: 1,
        ctx_dim: 2,
        ctx_hidden: 4,
        context_k: 4,
        batch: 16,
        iterations: 5,
        seed,
        threads: 1,
        ..FlowConfig::default()
    };
    let groups = vec![TargetGroup {
        targets: (0..64).map(|i| (i as f32 * 0.37).sin()).collect(),
        items: (0..30).map(|i| (i % 5) as f32 * 0.1).collect(),
        name: "g".into(),
        normalization: None,
    }];
    train(&cfg, &space, &groups, None).expect("toy train")
}

/// A 3-model CNN3 zoo on small synthetic shapes, trained `epochs` epochs (resume and shard tests).
pub fn zoo_config(epochs: usize) -> weightflow::zoo::TrainConfig {
    weightflow::zoo::TrainConfig {
        train_spec: "synthetic:shapes,n=120,seed=3:train".into(),
        test_spec: "synthetic:shapes,n=60,seed=4:test".into(),
        arch: "cnn3".into(),
        act: weightflow::nets::Activation::Gelu,
        init: weightflow::nets::init::InitScheme::KaimingUniform,
        models: 3,
        epochs,
        batch: 10,
        optimizer: weightflow::engine::OptimConfig::adam(1e-3, 1e-2),
        val_fraction: 0.25,
        seed: 11,
        threads: 2,
    }
}
