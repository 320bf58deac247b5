//! Training of a [`MetaModel`] by conditional flow matching: each iteration takes one dataset
//! group, a minibatch of its standardized targets, fresh source samples (OT-paired within the
//! group), t ~ U[0,1], a random context set of the group's items embedded by the set encoder,
//! and one Adam step on the velocity (and encoder, through ∂L/∂c) for the CFM MSE.

use super::cfm::{mse, pair, path};
use super::context::{ContextConfig, ContextEncoder};
use super::model::{FlowConfig, GroupInfo, MetaModel, TargetSpace, TrainSummary};
use super::opt::{OptSettings, TrainState};
use super::source::{sample_source, Standardizer};
use super::velocity::{Parameterization, VelocityConfig, VelocityMlp};
use super::FlowError;
use crate::data::Normalization;
use crate::engine::rng::stream;
use rand::seq::index::sample as sample_indices;
use rand::Rng as _;

/// One dataset: target vectors and the items (images or feature rows) that condition on it.
#[derive(Clone, Debug)]
pub struct TargetGroup {
    /// Target vectors `[M, D]`.
    pub targets: Vec<f32>,
    /// Context items `[n, item_len]` (ignored by an unconditional model).
    pub items: Vec<f32>,
    /// A name for messages (e.g. the dataset spec).
    pub name: String,
    /// Input normalization the target networks were trained with (kept in the model).
    pub normalization: Option<Normalization>,
}

/// Progress callback: (iteration, loss).
pub type Progress<'a> = &'a mut dyn FnMut(usize, f32);

/// Draws a context set of `k` items (without replacement when possible) from `items [n, il]`.
pub fn context_set(items: &[f32], il: usize, k: usize, rng: &mut crate::engine::rng::Rng) -> Vec<f32> {
    let n = items.len() / il;
    let idx: Vec<usize> = if n >= k {
        sample_indices(rng, n, k).into_vec()
    } else {
        (0..k).map(|_| rng.gen_range(0..n)).collect()
    };
    idx.iter()
        .flat_map(|&i| items[i * il..(i + 1) * il].iter().copied())
        .collect()
}

fn check_groups(space: &TargetSpace, groups: &[TargetGroup], conditional: bool) -> Result<usize, FlowError> {
    let d = space.layout.dim();
    if groups.is_empty() || d == 0 {
        return Err(FlowError::Invalid("training needs at least one group and D > 0".into()));
    }
    let mut total = 0;
    for g in groups {
        if g.targets.is_empty() || g.targets.len() % d != 0 {
            return Err(FlowError::Shape(format!(
                "group {}: {} target values are not rows of D={d}",
                g.name,
                g.targets.len()
            )));
        }
        if let Some((i, v)) = g.targets.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(FlowError::Invalid(format!("group {}: target value {i} is {v}", g.name)));
        }
        if conditional {
            let il = space.items.map(|k| k.item_len()).unwrap_or(1);
            if g.items.is_empty() || g.items.len() % il != 0 {
                return Err(FlowError::Shape(format!(
                    "group {}: {} context values are not items of {il}",
                    g.name,
                    g.items.len()
                )));
            }
        }
        total += g.targets.len() / d;
    }
    Ok(total)
}

/// Trains a meta-model on `groups` in `space`; `progress` sees every iteration's loss.
pub fn train(
    cfg: &FlowConfig,
    space: &TargetSpace,
    groups: &[TargetGroup],
    mut progress: Option<Progress<'_>>,
) -> Result<MetaModel, FlowError> {
    cfg.validate()?;
    let conditional = cfg.ctx_dim > 0 && space.items.is_some();
    let total = check_groups(space, groups, conditional)?;
    let d = space.layout.dim();
    let start = std::time::Instant::now();
    // Standardization over all targets of all groups.
    let all: Vec<f32> = groups.iter().flat_map(|g| g.targets.iter().copied()).collect();
    let standardizer = Standardizer::fit(&all, d, cfg.standardize, &space.layout)?;
    drop(all);
    let targets: Vec<Vec<f32>> = groups
        .iter()
        .map(|g| {
            let mut t = g.targets.clone();
            standardizer.forward(&mut t);
            t
        })
        .collect();
    let vcfg = VelocityConfig {
        dim: d,
        ctx_dim: if conditional { cfg.ctx_dim } else { 0 },
        time_freqs: cfg.time_freqs,
        width: cfg.width,
        depth: cfg.depth,
        residual: cfg.residual,
        param: cfg.param,
    };
    let mut vel = VelocityMlp::new(vcfg, cfg.gemm_threads(), &mut stream(cfg.seed, "flow-init", 0));
    let mut encoder = match (conditional, space.items) {
        (true, Some(items)) => Some(ContextEncoder::new(
            ContextConfig {
                items,
                hidden: cfg.ctx_hidden,
                out: cfg.ctx_dim,
            },
            &mut stream(cfg.seed, "flow-init", 1),
        )),
        _ => None,
    };
    let mut vstate = TrainState::new(cfg.opt, &vel.params);
    let mut dp = vec![0.0f32; vel.params.len()];
    let enc_settings = OptSettings {
        lr: cfg.ctx_lr,
        ..cfg.opt
    };
    let mut estate = encoder.as_ref().map(|e| TrainState::new(enc_settings, &e.params));
    let b = cfg.batch;
    let mut last = f32::NAN;
    for it in 0..cfg.iterations {
        let mut rng = stream(cfg.seed, "flow-step", it as u64);
        let gi = rng.gen_range(0..groups.len());
        let tg = &targets[gi];
        let m = tg.len() / d;
        let mut x1 = Vec::with_capacity(b * d);
        for _ in 0..b {
            let j = rng.gen_range(0..m);
            x1.extend_from_slice(&tg[j * d..(j + 1) * d]);
        }
        let x0raw = sample_source(cfg.source, &space.layout, &standardizer, b, &mut rng);
        let perm = pair(cfg.coupling, &x0raw, &x1, d, &mut rng);
        let x0: Vec<f32> = perm
            .iter()
            .flat_map(|&i| x0raw[i * d..(i + 1) * d].iter().copied())
            .collect();
        let t: Vec<f32> = (0..b).map(|_| rng.gen::<f32>()).collect();
        let (xt, u) = path(&x0, &x1, &t, d);
        let (ctx, ccache) = match &encoder {
            Some(enc) => {
                let il = enc.config.items.item_len();
                let set = context_set(&groups[gi].items, il, cfg.context_k, &mut rng);
                let (c, cache) = enc.forward(&set)?;
                (c.iter().cycle().take(b * c.len()).copied().collect(), Some(cache))
            }
            None => (Vec::new(), None),
        };
        let cache = vel.forward(&xt, &t, &ctx);
        // Velocity form: MSE(v, x1 − x0). Endpoint form: MSE(x̂1, x1) (= the velocity loss
        // weighted by (1 − t)²).
        let (loss, dv) = match cfg.param {
            Parameterization::Velocity => mse(&cache.out, &u),
            Parameterization::Endpoint => mse(&cache.out, &x1),
        };
        if !loss.is_finite() {
            return Err(FlowError::Diverged { step: it, loss });
        }
        let dc = vel.backward_ctx_into(&cache, &dv, Some(&mut dp), encoder.is_some());
        drop(cache);
        vstate.update(&mut vel.params, &mut dp);
        if let (Some(enc), Some(cc), Some(es)) = (encoder.as_mut(), ccache, estate.as_mut()) {
            let cd = enc.config.out;
            let mut dcs = vec![0.0f32; cd];
            for row in dc.chunks(cd) {
                dcs.iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
            let mut ge = enc.backward(&cc, &dcs);
            es.update(&mut enc.params, &mut ge);
        }
        last = loss;
        if let Some(p) = progress.as_mut() {
            p(it, loss);
        }
    }
    vel.params = vstate.final_params(std::mem::take(&mut vel.params));
    if let (Some(enc), Some(es)) = (encoder.as_mut(), estate) {
        enc.params = es.final_params(std::mem::take(&mut enc.params));
    }
    let mut infos = Vec::with_capacity(groups.len());
    for (gi, g) in groups.iter().enumerate() {
        let embedding = match &encoder {
            Some(enc) => {
                let set = context_set(
                    &g.items,
                    enc.config.items.item_len(),
                    cfg.context_k,
                    &mut stream(cfg.seed, "flow-group", gi as u64),
                );
                enc.forward(&set)?.0
            }
            None => Vec::new(),
        };
        infos.push(GroupInfo {
            name: g.name.clone(),
            targets: g.targets.len() / d,
            normalization: g.normalization,
            embedding,
        });
    }
    Ok(MetaModel {
        groups: infos,
        config: cfg.clone(),
        space: space.clone(),
        standardizer,
        velocity: vel,
        encoder,
        summary: TrainSummary {
            iterations: cfg.iterations,
            final_loss: last,
            seconds: start.elapsed().as_secs_f64(),
            groups: groups.len(),
            targets: total,
            align: None,
        },
    })
}
