//! The context encoder: a permutation-invariant set encoder (DeepSets, Zaheer et al. 2017) of k
//! items of a dataset, `c = ρ(mean_i φ(f(item_i)))`, trained jointly with the flow through
//! `∂L/∂c`. An item is an image `[3, 32, 32]` (f = average pooling to `[3, 32/p, 32/p]`) or a
//! precomputed external feature row (f = identity), e.g. a CLIP embedding.

use super::mlp::{Mlp, MlpCache, MlpSpec};
use super::FlowError;
use crate::nets::init::InitScheme;
use crate::nets::ParamLayout;
use serde::{Deserialize, Serialize};

/// What the items are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ItemKind {
    /// Images `[channels, side, side]`, average-pooled by `pool`.
    Images { channels: usize, side: usize, pool: usize },
    /// Feature rows of length `dim`.
    Features { dim: usize },
}

impl ItemKind {
    /// Values per raw item.
    pub fn item_len(&self) -> usize {
        match *self {
            ItemKind::Images { channels, side, .. } => channels * side * side,
            ItemKind::Features { dim } => dim,
        }
    }

    /// Length of the featurized item (input of φ).
    pub fn feature_len(&self) -> usize {
        match *self {
            ItemKind::Images { channels, side, pool } => channels * (side / pool).pow(2),
            ItemKind::Features { dim } => dim,
        }
    }

    /// Featurizes `items [k, item_len]` → `[k, feature_len]`.
    pub fn featurize(&self, items: &[f32]) -> Vec<f32> {
        match *self {
            ItemKind::Features { .. } => items.to_vec(),
            ItemKind::Images { channels, side, pool } => {
                let o = side / pool;
                let inv = 1.0 / (pool * pool) as f32;
                let mut out = Vec::with_capacity(items.len() / (pool * pool));
                for img in items.chunks(channels * side * side) {
                    for ch in img.chunks(side * side) {
                        for oy in 0..o {
                            for ox in 0..o {
                                let mut s = 0.0;
                                for dy in 0..pool {
                                    let r = &ch[(oy * pool + dy) * side + ox * pool..][..pool];
                                    s += r.iter().sum::<f32>();
                                }
                                out.push(s * inv);
                            }
                        }
                    }
                }
                out
            }
        }
    }
}

/// Shape of a [`ContextEncoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextConfig {
    pub items: ItemKind,
    /// Width of φ and ρ.
    pub hidden: usize,
    /// Output size (the velocity's ctx_dim).
    pub out: usize,
}

/// DeepSets encoder; parameters `[φ…, ρ…]` named `encoder.phi.*`, `encoder.rho.*`.
#[derive(Clone, Debug)]
pub struct ContextEncoder {
    pub config: ContextConfig,
    pub phi: Mlp,
    pub rho: Mlp,
    pub params: Vec<f32>,
}

/// Forward state for [`ContextEncoder::backward`].
pub struct ContextCache {
    phi: MlpCache,
    rho: MlpCache,
    k: usize,
}

impl ContextEncoder {
    /// A fresh encoder (PyTorch default init).
    pub fn new(config: ContextConfig, rng: &mut crate::engine::rng::Rng) -> Self {
        let mut e = Self::zeros(config);
        let layout = e.layout();
        InitScheme::TorchDefault.fill(&layout, &mut e.params, rng);
        e
    }

    /// An encoder with zero parameters (to be loaded).
    pub fn zeros(config: ContextConfig) -> Self {
        let h = config.hidden;
        let phi = Mlp::new(
            MlpSpec {
                sizes: vec![config.items.feature_len(), h, h],
                residual: false,
            },
            "encoder.phi.",
            1,
        );
        let rho = Mlp::new(
            MlpSpec {
                sizes: vec![h, h, config.out],
                residual: false,
            },
            "encoder.rho.",
            1,
        );
        let params = vec![0.0; phi.num_params() + rho.num_params()];
        ContextEncoder {
            config,
            phi,
            rho,
            params,
        }
    }

    /// Tensor layout of [`Self::params`].
    pub fn layout(&self) -> ParamLayout {
        let mut l = self.phi.layout.clone();
        for e in &self.rho.layout.entries {
            l.push(e.name.clone(), e.shape.clone());
        }
        l
    }

    fn split(&self) -> (&[f32], &[f32]) {
        self.params.split_at(self.phi.num_params())
    }

    /// Embedding `[out]` of `items [k, item_len]` with the cache for backward.
    pub fn forward(&self, items: &[f32]) -> Result<(Vec<f32>, ContextCache), FlowError> {
        let il = self.config.items.item_len();
        if items.is_empty() || !items.len().is_multiple_of(il) {
            return Err(FlowError::Shape(format!(
                "context: {} values are not a non-empty set of items of {il}",
                items.len()
            )));
        }
        let k = items.len() / il;
        let (pp, pr) = self.split();
        let f = self.config.items.featurize(items);
        let phi = self.phi.forward(pp, &f, k);
        let h = self.config.hidden;
        let mut mean = vec![0.0f32; h];
        for row in phi.out.chunks(h) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v / k as f32);
        }
        let rho = self.rho.forward(pr, &mean, 1);
        Ok((rho.out.clone(), ContextCache { phi, rho, k }))
    }

    /// ∂L/∂params from `dc = ∂L/∂c [out]`.
    pub fn backward(&self, cache: &ContextCache, dc: &[f32]) -> Vec<f32> {
        let (pp, pr) = self.split();
        let mut grad = vec![0.0f32; self.params.len()];
        let (gp, gr) = grad.split_at_mut(self.phi.num_params());
        let dmean = self
            .rho
            .backward(pr, &cache.rho, dc, Some(gr), true)
            .unwrap_or_default();
        let inv = 1.0 / cache.k as f32;
        let dphi: Vec<f32> = (0..cache.k).flat_map(|_| dmean.iter().map(move |v| v * inv)).collect();
        self.phi.backward(pp, &cache.phi, &dphi, Some(gp), false);
        grad
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;
    use rand::Rng as _;

    #[test]
    fn permutation_invariant_and_gradient_matches_fd() {
        let cfg = ContextConfig {
            items: ItemKind::Images {
                channels: 3,
                side: 8,
                pool: 2,
            },
            hidden: 6,
            out: 3,
        };
        let enc = ContextEncoder::new(cfg, &mut stream(0, "enc", 0));
        let mut r = stream(1, "x", 0);
        let items: Vec<f32> = (0..4 * 192).map(|_| r.gen_range(-1.0..1.0)).collect();
        let (c, cache) = enc.forward(&items).unwrap();
        let mut swapped = items[192..].to_vec();
        swapped.extend_from_slice(&items[..192]);
        let (c2, _) = enc.forward(&swapped).unwrap();
        for (a, b) in c.iter().zip(&c2) {
            assert!((a - b).abs() < 1e-5);
        }
        let u = [0.3f32, -1.0, 0.7];
        let g = enc.backward(&cache, &u);
        let eps = 1e-2;
        for i in (0..enc.params.len()).step_by(5) {
            let mut e = enc.clone();
            e.params[i] += eps;
            let lp: f64 = e
                .forward(&items)
                .unwrap()
                .0
                .iter()
                .zip(&u)
                .map(|(a, b)| (a * b) as f64)
                .sum();
            e.params[i] -= 2.0 * eps;
            let lm: f64 = e
                .forward(&items)
                .unwrap()
                .0
                .iter()
                .zip(&u)
                .map(|(a, b)| (a * b) as f64)
                .sum();
            let fd = (lp - lm) / (2.0 * eps as f64);
            assert!(
                (fd - g[i] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                "{i}: {fd} vs {}",
                g[i]
            );
        }
        assert!(enc.forward(&items[..100]).is_err());
    }

    #[test]
    fn pooling_averages_blocks() {
        let k = ItemKind::Images {
            channels: 1,
            side: 4,
            pool: 2,
        };
        let img: Vec<f32> = (0..16).map(|i| i as f32).collect();
        assert_eq!(k.featurize(&img), vec![2.5, 4.5, 10.5, 12.5]);
    }
}
