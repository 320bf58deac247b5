//! Source distributions p0 and the standardization of weight vectors.
//!
//! The flow runs in standardized coordinates `z = (w − μ) / s`, with μ, s per coordinate or per
//! layer, computed from the targets and stored with the model. The source is either the
//! architecture's Kaiming init (drawn in weight space, then standardized like the targets) or a
//! standard Gaussian directly in z-space.

use super::FlowError;
use crate::engine::rng::Rng;
use crate::nets::init::InitScheme;
use crate::nets::ParamLayout;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// The source p0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The architecture's initializer (e.g. Kaiming uniform), standardized.
    Init(InitScheme),
    /// N(0, I) in standardized coordinates.
    Gaussian,
}

impl std::str::FromStr for Source {
    type Err = FlowError;
    fn from_str(s: &str) -> Result<Self, FlowError> {
        match s {
            "gaussian" | "normal" => Ok(Source::Gaussian),
            o => o
                .parse::<InitScheme>()
                .map(Source::Init)
                .map_err(|e| FlowError::Invalid(format!("source: {e} (or gaussian)"))),
        }
    }
}

/// Per-coordinate or per-layer statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StandardizeMode {
    Coordinate,
    Layer,
    /// Identity (μ = 0, s = 1).
    None,
}

/// Affine map `z = (w − mean) / std` per coordinate.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Statistics of the rows of `w [m, d]`; `std` is floored at `floor` (relative to the
    /// mean std over coordinates) so constant coordinates stay finite.
    pub fn fit(w: &[f32], d: usize, mode: StandardizeMode, layout: &ParamLayout) -> Result<Self, FlowError> {
        let m = w.len().checked_div(d).unwrap_or(0);
        if m == 0 || w.len() != m * d {
            return Err(FlowError::Shape(format!(
                "standardize: {} values are not rows of D={d}",
                w.len()
            )));
        }
        let mut mean = vec![0.0f64; d];
        let mut var = vec![0.0f64; d];
        for row in w.chunks(d) {
            mean.iter_mut().zip(row).for_each(|(a, &v)| *a += v as f64);
        }
        mean.iter_mut().for_each(|a| *a /= m as f64);
        for row in w.chunks(d) {
            var.iter_mut()
                .zip(row)
                .zip(&mean)
                .for_each(|((s, &v), mu)| *s += (v as f64 - mu).powi(2));
        }
        var.iter_mut().for_each(|s| *s /= m as f64);
        let ranges: Vec<std::ops::Range<usize>> = match mode {
            StandardizeMode::Coordinate => (0..d).map(|i| i..i + 1).collect(),
            StandardizeMode::Layer | StandardizeMode::None => {
                if layout.dim() == d {
                    layout.entries.iter().map(|e| e.range()).collect()
                } else {
                    std::iter::once(0..d).collect()
                }
            }
        };
        let (mut mu, mut sd) = (vec![0.0f32; d], vec![1.0f32; d]);
        if mode != StandardizeMode::None {
            for r in ranges {
                let n = r.len() as f64;
                let gm = mean[r.clone()].iter().sum::<f64>() / n;
                // pooled variance around the group mean (per coordinate: just the variance)
                let gv = r.clone().map(|i| var[i] + (mean[i] - gm).powi(2)).sum::<f64>() / n;
                for i in r {
                    let (m_i, v_i) = if mode == StandardizeMode::Coordinate {
                        (mean[i], var[i])
                    } else {
                        (gm, gv)
                    };
                    mu[i] = m_i as f32;
                    sd[i] = v_i.sqrt() as f32;
                }
            }
            let avg = sd.iter().map(|&s| s as f64).sum::<f64>() / d as f64;
            let floor = (1e-3 * avg).max(1e-8) as f32;
            sd.iter_mut().for_each(|s| *s = s.max(floor));
        }
        Ok(Standardizer { mean: mu, std: sd })
    }

    /// `w → z` on rows of `[n, D]`, in place.
    pub fn forward(&self, w: &mut [f32]) {
        let d = self.mean.len();
        for row in w.chunks_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }

    /// `z → w` on rows of `[n, D]`, in place.
    pub fn inverse(&self, z: &mut [f32]) {
        let d = self.mean.len();
        for row in z.chunks_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * s + m;
            }
        }
    }
}

/// `n` source samples `[n, D]` in standardized coordinates.
pub fn sample_source(source: Source, layout: &ParamLayout, st: &Standardizer, n: usize, rng: &mut Rng) -> Vec<f32> {
    let d = st.mean.len();
    let mut x = vec![0.0f32; n * d];
    match source {
        Source::Gaussian => x.iter_mut().for_each(|v| *v = StandardNormal.sample(rng)),
        Source::Init(scheme) => {
            for row in x.chunks_mut(d) {
                scheme.fill(layout, row, rng);
            }
            st.forward(&mut x);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;

    #[test]
    fn standardize_roundtrip_and_stats() {
        let mut layout = ParamLayout::default();
        layout.push("a", vec![2]);
        layout.push("b", vec![1]);
        let w = [1.0f32, 10.0, 5.0, 3.0, 14.0, 5.0];
        let s = Standardizer::fit(&w, 3, StandardizeMode::Coordinate, &layout).unwrap();
        assert_eq!(s.mean, vec![2.0, 12.0, 5.0]);
        assert_eq!(&s.std[..2], &[1.0, 2.0]);
        assert!(s.std[2] > 0.0 && s.std[2] < 0.01);
        let mut z = w.to_vec();
        s.forward(&mut z);
        assert_eq!(&z[..2], &[-1.0, -1.0]);
        s.inverse(&mut z);
        for (a, b) in z.iter().zip(&w) {
            assert!((a - b).abs() < 1e-5);
        }
        let l = Standardizer::fit(&w, 3, StandardizeMode::Layer, &layout).unwrap();
        assert_eq!(l.mean[0], l.mean[1]);
        assert_eq!(l.mean[0], 7.0);
        assert!(Standardizer::fit(&w[..4], 3, StandardizeMode::Layer, &layout).is_err());
    }

    #[test]
    fn init_source_is_standardized_like_targets() {
        let mut layout = ParamLayout::default();
        layout.push("w", vec![4, 50]);
        let st = Standardizer {
            mean: vec![0.0; 200],
            std: vec![0.2; 200],
        };
        let x = sample_source(
            Source::Init(InitScheme::KaimingNormal),
            &layout,
            &st,
            10,
            &mut stream(0, "s", 0),
        );
        let var = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
        // Kaiming normal std √(2/50) = 0.2, so z has unit variance.
        assert!((var - 1.0).abs() < 0.15, "{var}");
    }
}
