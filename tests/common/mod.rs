//! Fixtures shared by the integration tests.

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
