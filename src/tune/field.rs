//! The velocity-field interface the fine-tuner needs, and per-coordinate whitening.
//!
//! A field maps `x [B, dim]`, `t [B]`, `ctx [B, ctx_dim]` to `v [B, dim]`. Fine-tuning needs
//! the vector-Jacobian product in x (the lean adjoint) of the base field, and parameter
//! gradients of the fine-tuned copy.
//!
//! **Whitening.** The memoryless identity of Adjoint Matching needs the source p0 = N(0, I).
//! When the flow's source in its own coordinates is x0 = α + β⊙ε (a Kaiming-normal source: α = the
//! bias constant or 0, β = the layer's std), the affine change z = (x − α)/β keeps the linear
//! interpolation path (it is affine and (1−t)+t = 1) and gives the field
//! `v_z(z, t) = v_x(α + β⊙z, t) / β`. A **uniform** source U(−b, b) is treated as its
//! moment-matched Gaussian N(0, b²/3) (β = b/√3); this is an approximation: the memoryless
//! SDE then starts from a Gaussian the base flow was not trained on, which is close in the
//! first two moments only. Coordinates whose source is a constant (Kaiming biases) get the
//! scale `degenerate_scale` (see [`Whitening::from_source`]).

use super::{check_len, TuneError};

/// A velocity field v(x, t; ctx).
pub trait Field {
    /// Dimension of x.
    fn dim(&self) -> usize;
    /// Dimension of the per-sample context (0 when unconditional).
    fn ctx_dim(&self) -> usize;
    /// `v [B, dim]` for `x [B, dim]`, `t [B]`, `ctx [B, ctx_dim]`.
    fn velocity(&self, x: &[f32], t: &[f32], ctx: &[f32]) -> Result<Vec<f32>, TuneError>;
    /// `uᵀ ∂v/∂x` per row, `[B, dim]`, for `u [B, dim]`.
    fn vjp_x(&self, x: &[f32], t: &[f32], ctx: &[f32], u: &[f32]) -> Result<Vec<f32>, TuneError>;
    /// `(v, uᵀ ∂v/∂x)` at the same points; fields that can share one forward pass override it.
    fn velocity_and_vjp_x(
        &self,
        x: &[f32],
        t: &[f32],
        ctx: &[f32],
        u: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), TuneError> {
        Ok((self.velocity(x, t, ctx)?, self.vjp_x(x, t, ctx, u)?))
    }
}

/// A field with trainable parameters θ.
pub trait TrainableField: Field {
    /// The flat parameter vector.
    fn params(&self) -> &[f32];
    /// The flat parameter vector, writable.
    fn params_mut(&mut self) -> &mut [f32];
    /// `Σ_b dv_bᵀ ∂v(x_b, t_b)/∂θ`, length = `params().len()`.
    fn param_grad(&self, x: &[f32], t: &[f32], ctx: &[f32], dv: &[f32]) -> Result<Vec<f32>, TuneError>;
    /// The parameters of the output layer (weight then bias) and of its bias alone, as ranges of
    /// `params()`; fields without layers return the whole vector for both.
    fn output_ranges(&self) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        (0..self.params().len(), 0..self.params().len())
    }
}

/// Per-coordinate affine map between the flow's coordinates x and whitened z = (x − α)/β.
#[derive(Clone, Debug, PartialEq)]
pub struct Whitening {
    /// Source mean per coordinate `[dim]`.
    pub alpha: Vec<f32>,
    /// Source scale per coordinate `[dim]`, all > 0.
    pub beta: Vec<f32>,
}

/// How one coordinate of the source is drawn, in the flow's coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SourceCoord {
    /// N(mean, std²).
    Normal { mean: f32, std: f32 },
    /// U(mean − bound, mean + bound): moment-matched, std = bound/√3.
    Uniform { mean: f32, bound: f32 },
    /// A constant.
    Constant(f32),
}

impl Whitening {
    /// The identity map (source already N(0, I)).
    pub fn identity(dim: usize) -> Self {
        Whitening {
            alpha: vec![0.0; dim],
            beta: vec![1.0; dim],
        }
    }

    /// From a per-coordinate source description. Constant coordinates get scale
    /// `degenerate_scale` (> 0): the memoryless SDE then treats them as N(c, degenerate_scale²).
    pub fn from_source(source: &[SourceCoord], degenerate_scale: f32) -> Result<Self, TuneError> {
        if degenerate_scale.is_nan() || degenerate_scale <= 0.0 {
            return Err(TuneError::Config(format!(
                "degenerate_scale must be > 0, got {degenerate_scale}"
            )));
        }
        let mut alpha = Vec::with_capacity(source.len());
        let mut beta = Vec::with_capacity(source.len());
        for (i, s) in source.iter().enumerate() {
            let (a, b) = match *s {
                SourceCoord::Normal { mean, std } => (mean, std),
                SourceCoord::Uniform { mean, bound } => (mean, bound / 3f32.sqrt()),
                SourceCoord::Constant(c) => (c, 0.0),
            };
            let b = if b > 0.0 { b } else { degenerate_scale };
            if !a.is_finite() || !b.is_finite() {
                return Err(TuneError::Config(format!("source coordinate {i} is not finite: {s:?}")));
            }
            alpha.push(a);
            beta.push(b);
        }
        Ok(Whitening { alpha, beta })
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.beta.len()
    }

    /// x = α + β⊙z, row by row for `z [B, dim]`.
    pub fn to_x(&self, z: &[f32]) -> Vec<f32> {
        let d = self.dim();
        z.iter()
            .enumerate()
            .map(|(i, &v)| self.alpha[i % d] + self.beta[i % d] * v)
            .collect()
    }

    /// z = (x − α)/β, row by row.
    pub fn to_z(&self, x: &[f32]) -> Vec<f32> {
        let d = self.dim();
        x.iter()
            .enumerate()
            .map(|(i, &v)| (v - self.alpha[i % d]) / self.beta[i % d])
            .collect()
    }

    /// Multiplies each row elementwise by β (a gradient in x → a gradient in z).
    pub fn scale_by_beta(&self, g: &mut [f32]) {
        let d = self.dim();
        g.iter_mut().enumerate().for_each(|(i, v)| *v *= self.beta[i % d]);
    }

    /// Divides each row elementwise by β (a velocity in x → a velocity in z).
    pub fn divide_by_beta(&self, g: &mut [f32]) {
        let d = self.dim();
        g.iter_mut().enumerate().for_each(|(i, v)| *v /= self.beta[i % d]);
    }

    /// `v_z(z, t) = v_x(α + β⊙z, t)/β`.
    pub fn velocity<F: Field + ?Sized>(&self, f: &F, z: &[f32], t: &[f32], ctx: &[f32]) -> Result<Vec<f32>, TuneError> {
        check_len("whitened velocity: z", z, t.len() * self.dim())?;
        let mut v = f.velocity(&self.to_x(z), t, ctx)?;
        check_len("whitened velocity: field output", &v, z.len())?;
        self.divide_by_beta(&mut v);
        Ok(v)
    }

    /// `uᵀ ∂v_z/∂z = β ⊙ vjp_x(x, (u/β))` (through [`Self::velocity_and_vjp`]: the fields that
    /// matter share the forward pass, so the velocity costs next to nothing).
    pub fn vjp<F: Field + ?Sized>(
        &self,
        f: &F,
        z: &[f32],
        t: &[f32],
        ctx: &[f32],
        u: &[f32],
    ) -> Result<Vec<f32>, TuneError> {
        Ok(self.velocity_and_vjp(f, z, t, ctx, u)?.1)
    }

    /// `(v_z, uᵀ ∂v_z/∂z)` from one call of the field (see [`Self::velocity`]).
    pub fn velocity_and_vjp<F: Field + ?Sized>(
        &self,
        f: &F,
        z: &[f32],
        t: &[f32],
        ctx: &[f32],
        u: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), TuneError> {
        check_len("whitened vjp: z", z, t.len() * self.dim())?;
        check_len("whitened vjp: u", u, z.len())?;
        let mut ux = u.to_vec();
        self.divide_by_beta(&mut ux);
        let (mut v, mut g) = f.velocity_and_vjp_x(&self.to_x(z), t, ctx, &ux)?;
        check_len("whitened velocity: field output", &v, z.len())?;
        check_len("whitened vjp: field output", &g, z.len())?;
        self.divide_by_beta(&mut v);
        self.scale_by_beta(&mut g);
        Ok((v, g))
    }

    /// `Σ dv_zᵀ ∂v_z/∂θ = param_grad(x, dv_z/β)`.
    pub fn param_grad<F: TrainableField + ?Sized>(
        &self,
        f: &F,
        z: &[f32],
        t: &[f32],
        ctx: &[f32],
        dv: &[f32],
    ) -> Result<Vec<f32>, TuneError> {
        let mut dvx = dv.to_vec();
        self.divide_by_beta(&mut dvx);
        f.param_grad(&self.to_x(z), t, ctx, &dvx)
    }
}
