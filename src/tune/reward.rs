//! Rewards r(x) of generated vectors: one trait (values and gradients for a batch), and the
//! analytic rewards used to verify the fine-tuner. Classifier rewards live in [`super::classify`].

use super::{check_len, TuneError};

/// A reward on vectors of dimension [`Reward::dim`] (in the flow's coordinates).
pub trait Reward {
    /// Dimension of the generated vectors.
    fn dim(&self) -> usize;
    /// Values `[B]` and gradients ∂r/∂x `[B, dim]` for the rows of `x [B, dim]`. Stateful so
    /// that a reward can draw a fresh minibatch per call.
    fn value_and_grad(&mut self, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>), TuneError>;
}

fn rows(x: &[f32], dim: usize) -> Result<usize, TuneError> {
    if dim == 0 || !x.len().is_multiple_of(dim) {
        return Err(TuneError::Shape {
            what: "reward input (rows of dim)".into(),
            expected: dim,
            got: x.len(),
        });
    }
    Ok(x.len() / dim)
}

/// r(x) = ⟨c, x⟩.
#[derive(Clone, Debug)]
pub struct LinearReward {
    pub c: Vec<f32>,
}

impl Reward for LinearReward {
    fn dim(&self) -> usize {
        self.c.len()
    }
    fn value_and_grad(&mut self, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>), TuneError> {
        let b = rows(x, self.c.len())?;
        let vals = x
            .chunks(self.c.len())
            .map(|r| r.iter().zip(&self.c).map(|(a, c)| a * c).sum())
            .collect();
        let grads = (0..b).flat_map(|_| self.c.iter().copied()).collect();
        Ok((vals, grads))
    }
}

/// r(x) = −½ Σ_j p_j (x_j − m_j)².
#[derive(Clone, Debug)]
pub struct QuadraticReward {
    pub center: Vec<f32>,
    pub precision: Vec<f32>,
}

impl Reward for QuadraticReward {
    fn dim(&self) -> usize {
        self.center.len()
    }
    fn value_and_grad(&mut self, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>), TuneError> {
        let d = self.center.len();
        check_len("quadratic reward precision", &self.precision, d)?;
        rows(x, d)?;
        let mut vals = Vec::new();
        let mut grads = Vec::with_capacity(x.len());
        for r in x.chunks(d) {
            let mut v = 0.0;
            for (j, &rj) in r.iter().enumerate() {
                let e = rj - self.center[j];
                v -= 0.5 * self.precision[j] * e * e;
                grads.push(-self.precision[j] * e);
            }
            vals.push(v);
        }
        Ok((vals, grads))
    }
}

/// r(x) = 0: fine-tuning must leave the model unchanged.
#[derive(Clone, Debug)]
pub struct ZeroReward {
    pub dim: usize,
}

impl Reward for ZeroReward {
    fn dim(&self) -> usize {
        self.dim
    }
    fn value_and_grad(&mut self, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>), TuneError> {
        let b = rows(x, self.dim)?;
        Ok((vec![0.0; b], vec![0.0; x.len()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytic_rewards_and_their_gradients() {
        let mut lin = LinearReward { c: vec![1.0, -2.0] };
        let (v, g) = lin.value_and_grad(&[1.0, 1.0, 0.5, 0.0]).unwrap();
        assert_eq!(v, vec![-1.0, 0.5]);
        assert_eq!(g, vec![1.0, -2.0, 1.0, -2.0]);
        let mut q = QuadraticReward {
            center: vec![1.0, 0.0],
            precision: vec![2.0, 1.0],
        };
        let x = [0.3f32, -0.4];
        let (v, g) = q.value_and_grad(&x).unwrap();
        for j in 0..2 {
            let mut xp = x;
            xp[j] += 1e-3;
            let mut xm = x;
            xm[j] -= 1e-3;
            let fd = (q.value_and_grad(&xp).unwrap().0[0] - q.value_and_grad(&xm).unwrap().0[0]) / 2e-3;
            assert!((fd - g[j]).abs() < 1e-3, "{fd} vs {}", g[j]);
        }
        assert!(v[0] < 0.0);
        assert!(lin.value_and_grad(&[1.0, 2.0, 3.0]).is_err());
    }
}
