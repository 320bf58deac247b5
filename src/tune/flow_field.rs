//! Adapters from the flow module to the fine-tuner: [`Field`]/[`TrainableField`] for
//! [`VelocityMlp`], and the whitening of a meta-model's source.
//!
//! The meta-model runs in standardized coordinates x = (w − m)/s ([`Standardizer`]). Its source is
//! either N(0, I) there (identity whitening) or the architecture's init drawn in weight space and
//! standardized: a weight tensor with Kaiming-normal N(0, σ²) becomes N(−m/s, (σ/s)²), Kaiming
//! uniform U(−b, b) becomes a uniform of half-width b/s around −m/s (treated as its moment-matched
//! Gaussian, std b/(s√3)), and the constant bias 0.01 becomes the constant (0.01 − m)/s, given the
//! scale `degenerate_scale` (see [`Whitening::from_source`]).

use super::field::{Field, SourceCoord, TrainableField, Whitening};
use super::{check_len, TuneError};
use crate::flow::source::{Source, Standardizer};
use crate::flow::{VelocityField, VelocityMlp};
use crate::nets::init::{fan_in, InitScheme, BIAS_CONSTANT};
use crate::nets::ParamLayout;

fn shapes_ok(m: &VelocityMlp, x: &[f32], t: &[f32], ctx: &[f32]) -> Result<(), TuneError> {
    let b = t.len();
    check_len("velocity input x", x, b * m.config.dim)?;
    check_len("velocity context", ctx, b * m.config.ctx_dim)
}

impl Field for VelocityMlp {
    fn dim(&self) -> usize {
        self.config.dim
    }
    fn ctx_dim(&self) -> usize {
        self.config.ctx_dim
    }
    fn velocity(&self, x: &[f32], t: &[f32], ctx: &[f32]) -> Result<Vec<f32>, TuneError> {
        shapes_ok(self, x, t, ctx)?;
        Ok(VelocityField::velocity(self, x, t, ctx))
    }
    fn vjp_x(&self, x: &[f32], t: &[f32], ctx: &[f32], u: &[f32]) -> Result<Vec<f32>, TuneError> {
        shapes_ok(self, x, t, ctx)?;
        check_len("velocity VJP cotangent", u, x.len())?;
        Ok(VelocityField::vjp_x(self, x, t, ctx, u))
    }
    fn velocity_and_vjp_x(
        &self,
        x: &[f32],
        t: &[f32],
        ctx: &[f32],
        u: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), TuneError> {
        shapes_ok(self, x, t, ctx)?;
        check_len("velocity VJP cotangent", u, x.len())?;
        Ok(VelocityField::velocity_and_vjp_x(self, x, t, ctx, u))
    }
}

impl TrainableField for VelocityMlp {
    fn params(&self) -> &[f32] {
        &self.params
    }
    fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }
    fn param_grad(&self, x: &[f32], t: &[f32], ctx: &[f32], dv: &[f32]) -> Result<Vec<f32>, TuneError> {
        shapes_ok(self, x, t, ctx)?;
        check_len("velocity parameter-gradient cotangent", dv, x.len())?;
        Ok(VelocityMlp::param_grad(self, x, t, ctx, dv).params)
    }
    fn output_ranges(&self) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let e = &self.mlp.layout.entries;
        let (w, b) = (&e[e.len() - 2], &e[e.len() - 1]);
        (w.range().start..b.range().end, b.range())
    }
}

/// The per-coordinate source of a meta-model in its standardized coordinates.
pub fn source_coords(source: Source, layout: &ParamLayout, st: &Standardizer) -> Result<Vec<SourceCoord>, TuneError> {
    let d = st.mean.len();
    match source {
        Source::Gaussian => Ok(vec![SourceCoord::Normal { mean: 0.0, std: 1.0 }; d]),
        Source::Init(scheme) => {
            if layout.dim() != d {
                return Err(TuneError::Config(format!(
                    "layout has {} values, the standardizer {d}",
                    layout.dim()
                )));
            }
            let mut out = Vec::with_capacity(d);
            let mut last_fan_in = 1usize;
            for e in &layout.entries {
                let is_bias = e.shape.len() == 1;
                if !is_bias {
                    last_fan_in = fan_in(&e.shape);
                }
                let scale = if is_bias && scheme == InitScheme::TorchDefault {
                    Some(1.0 / (last_fan_in as f32).sqrt())
                } else {
                    scheme.scale(&e.shape)
                };
                for i in e.range() {
                    let (m, s) = (st.mean[i], st.std[i]);
                    out.push(match scale {
                        None => SourceCoord::Constant((BIAS_CONSTANT - m) / s),
                        Some(sc) if scheme.is_normal() => SourceCoord::Normal {
                            mean: -m / s,
                            std: sc / s,
                        },
                        Some(b) => SourceCoord::Uniform {
                            mean: -m / s,
                            bound: b / s,
                        },
                    });
                }
            }
            Ok(out)
        }
    }
}

/// The whitening of a meta-model's source (see the module doc).
pub fn whitening_for(
    source: Source,
    layout: &ParamLayout,
    st: &Standardizer,
    degenerate_scale: f32,
) -> Result<Whitening, TuneError> {
    Whitening::from_source(&source_coords(source, layout, st)?, degenerate_scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::VelocityConfig;
    use crate::tune::adjoint::{AdjointMatching, AmConfig};
    use crate::tune::reward::LinearReward;

    /// A 3-D velocity-form MLP of the given width and depth.
    fn toy_config(width: usize, depth: usize) -> VelocityConfig {
        VelocityConfig {
            dim: 3,
            ctx_dim: 0,
            time_freqs: 2,
            width,
            depth,
            residual: false,
            param: crate::flow::velocity::Parameterization::Velocity,
        }
    }

    /// The Adjoint-Matching settings of the toy tests.
    fn toy_am(seed: u64, scope: crate::tune::adjoint::Scope) -> AmConfig {
        AmConfig {
            steps: 20,
            batch: 32,
            loss_steps: 8,
            lr: 1e-2,
            seed,
            scope,
            ..AmConfig::default()
        }
    }

    /// A velocity MLP trained by independent-coupling flow matching from N(0, I) to
    /// N((1, −1, 0.5), diag(0.5, 1, 0.8)).
    fn trained_base(cfg: VelocityConfig) -> VelocityMlp {
        use crate::engine::optim::{OptimConfig, Optimizer};
        use rand_distr::{Distribution, StandardNormal};
        let mut m = VelocityMlp::new(cfg, 1, &mut crate::engine::rng::stream(0, "test-mlp", 0));
        let mut opt = Optimizer::new(OptimConfig::adam(3e-3, 0.0), m.params.len());
        let mut rng = crate::engine::rng::stream(0, "test-cfm", 0);
        let (mu, sd) = ([1.0f32, -1.0, 0.5], [0.5f32.sqrt(), 1.0, 0.8f32.sqrt()]);
        let b = 256;
        for _ in 0..1500 {
            let mut x = vec![0f32; b * 3];
            let mut u = vec![0f32; b * 3];
            let mut t = vec![0f32; b];
            for i in 0..b {
                t[i] = rand::Rng::gen_range(&mut rng, 0.0..1.0);
                for j in 0..3 {
                    let x0: f32 = StandardNormal.sample(&mut rng);
                    let e: f32 = StandardNormal.sample(&mut rng);
                    let x1 = mu[j] + sd[j] * e;
                    x[i * 3 + j] = (1.0 - t[i]) * x0 + t[i] * x1;
                    u[i * 3 + j] = x1 - x0;
                }
            }
            let v = VelocityField::velocity(&m, &x, &t, &[]);
            let dv: Vec<f32> = v.iter().zip(&u).map(|(p, q)| 2.0 * (p - q) / (b * 3) as f32).collect();
            let g = VelocityMlp::param_grad(&m, &x, &t, &[], &dv).params;
            opt.update(&mut m.params, &g);
        }
        m
    }

    /// The shared forward pass of the lean adjoint returns what the two separate calls return
    /// (endpoint form, a context, a non-trivial whitening).
    #[test]
    fn velocity_and_vjp_share_one_forward_pass_exactly() {
        let cfg = VelocityConfig {
            ctx_dim: 2,
            residual: true,
            param: crate::flow::velocity::Parameterization::Endpoint,
            ..toy_config(16, 2)
        };
        let m = VelocityMlp::new(cfg, 1, &mut crate::engine::rng::stream(3, "test-mlp", 0));
        let w = Whitening {
            alpha: vec![0.1, -0.2, 0.05],
            beta: vec![0.5, 2.0, 1.5],
        };
        let z = [0.3f32, -0.7, 1.1, -0.2, 0.4, 0.9];
        let t = [0.3f32, 0.8];
        let ctx = [0.5f32, -1.0, 0.2, 0.1];
        let u = [0.2f32, -1.0, 0.5, 1.5, 0.3, -0.4];
        let (v, g) = w.velocity_and_vjp(&m, &z, &t, &ctx, &u).unwrap();
        assert_eq!(v, w.velocity(&m, &z, &t, &ctx).unwrap());
        assert_eq!(g, w.vjp(&m, &z, &t, &ctx, &u).unwrap());
        assert!(w.velocity_and_vjp(&m, &z, &t, &ctx, &u[..5]).is_err());
    }

    /// The whole fine-tuner on the flow's velocity MLP, trained by flow matching to a Gaussian,
    /// with r = ⟨c, x⟩: the tilt should raise E⟨c, x⟩ by c'Σc (exact for the Gaussian target).
    #[test]
    fn adjoint_matching_tilts_a_velocity_mlp() {
        let base = trained_base(toy_config(64, 2));
        let c = vec![0.6f32, -0.5, 0.4];
        let am_cfg = toy_am(1, crate::tune::adjoint::Scope::All);
        let mut am = AdjointMatching::new(&base, base.clone(), Whitening::identity(3), am_cfg).unwrap();
        let proj = |x: &[f32]| -> (f64, f64) {
            let v: Vec<f64> = x
                .chunks(3)
                .map(|r| r.iter().zip(&c).map(|(a, b)| (a * b) as f64).sum())
                .collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            (m, v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64)
        };
        let (m0, var0) = proj(&am.sample_ode(4000, &[], 50, 5, true).unwrap());
        let mut r = LinearReward { c: c.clone() };
        for _ in 0..500 {
            am.step(&mut r, &[]).unwrap();
        }
        let (m1, _) = proj(&am.sample_ode(4000, &[], 50, 5, false).unwrap());
        let mut big = am.config.clone();
        big.batch = 4000;
        let am2 = AdjointMatching::new(&base, am.ft.clone(), Whitening::identity(3), big).unwrap();
        let tr = am2.sample_trajectories(&[], &[], 99).unwrap();
        let (m_sde, _) = proj(&tr.z[20]);
        eprintln!("SDE mean {m_sde:.3}");
        eprintln!("E<c,x>: base {m0:.3} (var {var0:.3}) → fine-tuned {m1:.3}");
        // Gaussian tilt: shift = Var⟨c,x⟩; accept 60–140 % of it.
        assert!(
            (m1 - m0) > 0.6 * var0 && (m1 - m0) < 1.4 * var0,
            "{m0} → {m1}, var {var0}"
        );
    }

    /// A fine-tuning restricted to the output bias moves only that bias, and the shift it learns
    /// still raises the linear reward.
    #[test]
    fn output_bias_scope_moves_only_the_bias() {
        let base = trained_base(toy_config(32, 1));
        let c = vec![0.6f32, -0.5, 0.4];
        let am_cfg = toy_am(2, crate::tune::adjoint::Scope::OutputBias);
        let mut am = AdjointMatching::new(&base, base.clone(), Whitening::identity(3), am_cfg).unwrap();
        let mean_reward = |am: &AdjointMatching<'_, VelocityMlp, VelocityMlp>, base: bool| -> f64 {
            let x = am.sample_ode(4000, &[], 50, 5, base).unwrap();
            let n = (x.len() / 3) as f64;
            x.chunks(3)
                .map(|r| r.iter().zip(&c).map(|(a, b)| (a * b) as f64).sum::<f64>())
                .sum::<f64>()
                / n
        };
        let m0 = mean_reward(&am, true);
        let mut r = LinearReward { c: c.clone() };
        for _ in 0..200 {
            am.step(&mut r, &[]).unwrap();
        }
        let (_, bias) = am.ft.output_ranges();
        for (i, (a, b)) in am.ft.params.iter().zip(&base.params).enumerate() {
            assert_eq!(bias.contains(&i), a != b, "parameter {i} (bias range {bias:?})");
        }
        let m1 = mean_reward(&am, false);
        // Var⟨c, x⟩ of the base target is 0.6²·0.5 + 0.5² + 0.4²·0.8 = 0.558 (the full tilt).
        assert!(m1 - m0 > 0.2, "E<c,x> {m0} -> {m1}");
    }

    /// Warmup scales the first Adam step by 1/warmup (Adam's first step moves each parameter
    /// with a nonzero gradient by ≈ lr), and a power grid fine-tunes as well as a uniform one.
    #[test]
    fn warmup_scales_the_first_step() {
        let base = trained_base(toy_config(16, 1));
        let mut r = LinearReward {
            c: vec![0.6, -0.5, 0.4],
        };
        let mut first_step = |warmup: usize| -> f32 {
            let cfg = AmConfig {
                warmup,
                grid_power: 2.0,
                ..toy_am(3, crate::tune::adjoint::Scope::All)
            };
            let mut am = AdjointMatching::new(&base, base.clone(), Whitening::identity(3), cfg).unwrap();
            am.step(&mut r, &[]).unwrap();
            am.ft
                .params
                .iter()
                .zip(&base.params)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max)
        };
        let (plain, warm) = (first_step(0), first_step(10));
        assert!((plain / 1e-2 - 1.0).abs() < 0.05, "max step {plain}");
        assert!((warm / plain - 0.1).abs() < 0.01, "warm {warm} vs {plain}");
    }

    #[test]
    fn init_source_whitening_per_layer() {
        let spec = crate::nets::ArchSpec::cnn3(3, 10, crate::nets::Activation::Gelu);
        let layout = spec.layout();
        let d = layout.dim();
        let st = Standardizer {
            mean: vec![0.1; d],
            std: vec![0.5; d],
        };
        let w = whitening_for(Source::Init(InitScheme::KaimingUniform), &layout, &st, 0.05).unwrap();
        let b = (6.0f32 / 27.0).sqrt();
        assert!((w.beta[0] - b / 0.5 / 3f32.sqrt()).abs() < 1e-6);
        assert!((w.alpha[0] + 0.2).abs() < 1e-6);
        let bias0 = layout.entries[1].offset;
        assert_eq!(w.beta[bias0], 0.05);
        assert!((w.alpha[bias0] - (0.01 - 0.1) / 0.5).abs() < 1e-6);
        assert_eq!(
            whitening_for(Source::Gaussian, &layout, &st, 0.05).unwrap(),
            Whitening::identity(d)
        );
    }
}
