//! Weight initializers over a [`ParamLayout`]: Kaiming uniform/normal (fan_in, gain √2),
//! PyTorch's default `nn.Conv2d`/`nn.Linear` init, and constant biases.

use super::{NetError, ParamLayout};
use crate::engine::rng::Rng;
use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// How weight tensors (rank ≥ 2) are drawn; biases follow [`InitScheme::bias`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitScheme {
    /// U(−b, b), b = √(6 / fan_in) (Kaiming uniform, gain √2); biases constant 0.01.
    KaimingUniform,
    /// N(0, 2 / fan_in) (Kaiming normal, gain √2); biases constant 0.01.
    KaimingNormal,
    /// PyTorch's default: weights U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5),
    /// biases U(−1/√fan_in, 1/√fan_in).
    TorchDefault,
}

impl std::str::FromStr for InitScheme {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        match s {
            "kaiming-uniform" | "kaiming_uniform" => Ok(Self::KaimingUniform),
            "kaiming-normal" | "kaiming_normal" => Ok(Self::KaimingNormal),
            "torch-default" | "default" => Ok(Self::TorchDefault),
            o => Err(NetError::Invalid(format!(
                "unknown init '{o}' (kaiming-uniform, kaiming-normal, torch-default)"
            ))),
        }
    }
}

/// The constant used for biases by the Kaiming schemes (ModelZoo recipe).
pub const BIAS_CONSTANT: f32 = 0.01;

impl InitScheme {
    /// Per-scalar scale of the source distribution for tensor `shape`: the bound `b` of
    /// U(−b, b) or the standard deviation of N(0, s²); `None` for constant tensors.
    pub fn scale(&self, shape: &[usize]) -> Option<f32> {
        let fan_in = fan_in(shape);
        let is_bias = shape.len() == 1;
        match (self, is_bias) {
            (Self::KaimingUniform | Self::KaimingNormal, true) => None,
            (Self::KaimingUniform, false) => Some((6.0 / fan_in as f32).sqrt()),
            (Self::KaimingNormal, false) => Some((2.0 / fan_in as f32).sqrt()),
            (Self::TorchDefault, _) => Some(1.0 / (fan_in as f32).sqrt()),
        }
    }

    /// Whether the scheme draws from a normal distribution.
    pub fn is_normal(&self) -> bool {
        matches!(self, Self::KaimingNormal)
    }

    /// Fills one weight vector `w` (length D) for `layout`. For bias tensors of the torch
    /// default, fan_in is that of the weight tensor just before them.
    pub fn fill(&self, layout: &ParamLayout, w: &mut [f32], rng: &mut Rng) {
        let mut last_fan_in = 1usize;
        for e in &layout.entries {
            let dst = &mut w[e.range()];
            let shape: Vec<usize> = if e.shape.len() == 1 {
                vec![e.shape[0], last_fan_in]
            } else {
                e.shape.clone()
            };
            if e.shape.len() > 1 {
                last_fan_in = fan_in(&e.shape);
            }
            let scale = if e.shape.len() == 1 && matches!(self, Self::TorchDefault) {
                self.scale(&shape)
            } else {
                self.scale(&e.shape)
            };
            match scale {
                None => dst.fill(BIAS_CONSTANT),
                Some(s) if self.is_normal() => dst.iter_mut().for_each(|v| {
                    let z: f32 = StandardNormal.sample(rng);
                    *v = s * z
                }),
                Some(b) => dst.iter_mut().for_each(|v| *v = rng.gen_range(-b..b)),
            }
        }
    }
}

/// fan_in of a weight tensor `[out, in, kh, kw]` or `[out, in]` = in·kh·kw.
pub fn fan_in(shape: &[usize]) -> usize {
    shape.iter().skip(1).product::<usize>().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::{Activation, ArchSpec};

    #[test]
    fn kaiming_uniform_bounds_and_bias() {
        let layout = ArchSpec::cnn3(3, 10, Activation::Gelu).layout();
        let mut w = vec![0.0; layout.dim()];
        InitScheme::KaimingUniform.fill(&layout, &mut w, &mut crate::engine::rng::stream(0, "init", 0));
        let conv1 = &w[layout.entries[0].range()];
        let b = (6.0f32 / 27.0).sqrt();
        assert!(conv1.iter().all(|v| v.abs() <= b));
        assert!(conv1.iter().any(|v| v.abs() > 0.8 * b));
        assert!(w[layout.entries[1].range()].iter().all(|&v| v == BIAS_CONSTANT));
    }

    #[test]
    fn kaiming_normal_std() {
        let layout = ArchSpec::cnn3(3, 10, Activation::Gelu).layout();
        let mut w = vec![0.0; layout.dim()];
        InitScheme::KaimingNormal.fill(&layout, &mut w, &mut crate::engine::rng::stream(0, "init", 0));
        let conv2 = &w[layout.entries[2].range()];
        let var = conv2.iter().map(|v| v * v).sum::<f32>() / conv2.len() as f32;
        let want = 2.0 / 144.0;
        assert!((var / want - 1.0).abs() < 0.1, "var {var} want {want}");
    }
}
