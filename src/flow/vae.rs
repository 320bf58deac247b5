//! A variational auto-encoder over (standardized) weight vectors, so the flow can run in a small
//! latent space. Owns the encoder/decoder MLPs (on [`crate::flow::mlp::Mlp`]), the loss and its
//! hand-written gradient, training with [`TrainState`], and the decoder vector-Jacobian product
//! (for pulling weight-space rewards back into latent space).
//!
//! Encoder `x [B, d] → [μ | log σ²] [B, 2L]`, reparameterization `z = μ + exp(½·log σ²)·ε`,
//! `ε ~ N(0, I)` from a seeded stream, decoder `z [B, L] → x̂ [B, d]`. Loss (Kingma & Welling 2014,
//! Gaussian prior and posterior, KL in closed form):
//! `L = 1/(B·d) Σ_b Σ_i (x̂_bi − x_bi)² + β · 1/B Σ_b Σ_j ½(μ_bj² + σ_bj² − 1 − log σ_bj²)`.

use crate::engine::rng::{stream, Rng};
use crate::flow::mlp::{Mlp, MlpSpec};
use crate::flow::model::{io_err, read_tensor, write_atomic, write_tensors};
use crate::flow::opt::{OptSettings, TrainState};
use crate::flow::source::{StandardizeMode, Standardizer};
use crate::flow::FlowError;
use crate::nets::init::InitScheme;
use crate::nets::ParamLayout;
use rand::Rng as _;
use rand_distr::StandardNormal;
use safetensors::tensor::SafeTensors;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Shape and loss weight of a [`Vae`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    /// Width `d` of the data vectors.
    pub data_dim: usize,
    /// Latent width `L`.
    pub latent: usize,
    /// Hidden widths of the encoder (the decoder uses them reversed).
    pub hidden: Vec<usize>,
    /// Weight β of the KL term.
    pub beta: f32,
}

/// Training settings of [`train_vae`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaeTrainSettings {
    /// Optimizer steps.
    pub steps: usize,
    /// Minibatch size (clamped to the number of vectors).
    pub batch: usize,
    /// Adam schedule.
    pub opt: OptSettings,
    /// Run seed (streams `"vae-init"`, `"vae-batch"`, `"vae-eps"`).
    pub seed: u64,
}

/// A VAE: the two MLP structures and one flat parameter vector (encoder first, then decoder).
#[derive(Clone, Debug)]
pub struct Vae {
    pub config: VaeConfig,
    pub enc: Mlp,
    pub dec: Mlp,
    /// `[enc params | dec params]`.
    pub params: Vec<f32>,
}

/// Value of the loss and its two parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VaeLoss {
    pub total: f32,
    pub recon: f32,
    pub kl: f32,
}

/// Standard normal draws.
pub fn randn(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()
}

impl Vae {
    /// A fresh VAE (PyTorch default init) with parameters drawn from `rng`.
    pub fn new(config: VaeConfig, threads: usize, rng: &mut Rng) -> Result<Self, FlowError> {
        if config.data_dim == 0 || config.latent == 0 {
            return Err(FlowError::Invalid(format!(
                "VAE needs data_dim > 0 and latent > 0, got {} and {}",
                config.data_dim, config.latent
            )));
        }
        if !(config.beta.is_finite() && config.beta >= 0.0) {
            return Err(FlowError::Invalid(format!("VAE beta must be ≥ 0, got {}", config.beta)));
        }
        let mut es = vec![config.data_dim];
        es.extend(&config.hidden);
        es.push(2 * config.latent);
        let mut ds = vec![config.latent];
        ds.extend(config.hidden.iter().rev());
        ds.push(config.data_dim);
        let enc = Mlp::new(
            MlpSpec {
                sizes: es,
                residual: false,
            },
            "vae.enc.",
            threads,
        );
        let dec = Mlp::new(
            MlpSpec {
                sizes: ds,
                residual: false,
            },
            "vae.dec.",
            threads,
        );
        let mut pe = vec![0.0f32; enc.num_params()];
        let mut pd = vec![0.0f32; dec.num_params()];
        InitScheme::TorchDefault.fill(&enc.layout, &mut pe, rng);
        InitScheme::TorchDefault.fill(&dec.layout, &mut pd, rng);
        pe.extend(pd);
        Ok(Vae {
            config,
            enc,
            dec,
            params: pe,
        })
    }

    fn split<'p>(&self, params: &'p [f32]) -> (&'p [f32], &'p [f32]) {
        params.split_at(self.enc.num_params())
    }

    fn check(&self, v: &[f32], width: usize, what: &str) -> Result<usize, FlowError> {
        if width == 0 || !v.len().is_multiple_of(width) {
            return Err(FlowError::Shape(format!(
                "VAE {what}: length {} is not a multiple of {width}",
                v.len()
            )));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(FlowError::Invalid(format!("VAE {what}: non-finite value")));
        }
        Ok(v.len() / width)
    }

    /// Posterior means `μ(x)` `[B, L]` of `x [B, d]`.
    pub fn encode_mean(&self, x: &[f32]) -> Result<Vec<f32>, FlowError> {
        let b = self.check(x, self.config.data_dim, "input")?;
        let l = self.config.latent;
        let out = self.enc.apply(self.split(&self.params).0, x, b); // [B, 2L]
        Ok(out.chunks(2 * l).flat_map(|r| r[..l].to_vec()).collect())
    }

    /// Decoded vectors `x̂ [B, d]` of latents `z [B, L]`.
    pub fn decode(&self, z: &[f32]) -> Result<Vec<f32>, FlowError> {
        let b = self.check(z, self.config.latent, "latent")?;
        Ok(self.dec.apply(self.split(&self.params).1, z, b))
    }

    /// Decoder VJP: `uᵀ ∂dec/∂z` `[B, L]` for latents `z [B, L]` and cotangents `u [B, d]`.
    pub fn decode_vjp(&self, z: &[f32], u: &[f32]) -> Result<Vec<f32>, FlowError> {
        let b = self.check(z, self.config.latent, "latent")?;
        let bu = self.check(u, self.config.data_dim, "cotangent")?;
        if b != bu {
            return Err(FlowError::Shape(format!(
                "VAE decode_vjp: {b} latents but {bu} cotangents"
            )));
        }
        let pd = self.split(&self.params).1;
        let cache = self.dec.forward(pd, z, b);
        self.dec
            .backward(pd, &cache, u, None, true)
            .ok_or_else(|| FlowError::Invalid("decoder backward returned no input gradient".into()))
    }

    /// Loss of `params` on `x [B, d]` with noise `eps [B, L]`; writes `∂L/∂params` into `grad`
    /// (same length as `params`) when given.
    pub fn loss_and_grad(&self, params: &[f32], x: &[f32], eps: &[f32], grad: Option<&mut [f32]>) -> VaeLoss {
        let (d, l) = (self.config.data_dim, self.config.latent);
        let b = x.len() / d;
        let beta = self.config.beta;
        let (pe, pd) = self.split(params);
        let ec = self.enc.forward(pe, x, b); // [B, 2L]
        let mut z = vec![0.0f32; b * l];
        let mut kl = 0.0f64;
        for r in 0..b {
            let row = &ec.out[r * 2 * l..(r + 1) * 2 * l];
            for j in 0..l {
                let (mu, lv) = (row[j], row[l + j]);
                z[r * l + j] = mu + (0.5 * lv).exp() * eps[r * l + j];
                kl += 0.5 * (mu as f64 * mu as f64 + (lv as f64).exp() - 1.0 - lv as f64);
            }
        }
        kl /= b as f64;
        let dc = self.dec.forward(pd, &z, b); // [B, d]
        let recon: f64 = dc
            .out
            .iter()
            .zip(x)
            .map(|(&y, &t)| (y as f64 - t as f64).powi(2))
            .sum::<f64>()
            / (b * d) as f64;
        let loss = VaeLoss {
            total: (recon + beta as f64 * kl) as f32,
            recon: recon as f32,
            kl: kl as f32,
        };
        if let Some(g) = grad {
            let (ge, gd) = g.split_at_mut(self.enc.num_params());
            let s = 2.0 / (b * d) as f32;
            let dy: Vec<f32> = dc.out.iter().zip(x).map(|(&y, &t)| s * (y - t)).collect();
            let dz = self.dec.backward(pd, &dc, &dy, Some(gd), true).unwrap_or_default(); // [B, L]
            let kb = beta / b as f32;
            let mut dout = vec![0.0f32; b * 2 * l];
            for r in 0..b {
                for j in 0..l {
                    let (mu, lv) = (ec.out[r * 2 * l + j], ec.out[r * 2 * l + l + j]);
                    let g = dz[r * l + j];
                    dout[r * 2 * l + j] = g + kb * mu;
                    dout[r * 2 * l + l + j] = g * eps[r * l + j] * 0.5 * (0.5 * lv).exp() + kb * 0.5 * (lv.exp() - 1.0);
                }
            }
            self.enc.backward(pe, &ec, &dout, Some(ge), false);
        }
        loss
    }
    /// Saves into directory `dir` (created if missing): `vae.json` (the [`VaeConfig`]) and
    /// `vae.safetensors` (tensors `vae.enc.layers.{i}.weight|bias`, `vae.dec.…`).
    pub fn save(&self, dir: &Path) -> Result<(), FlowError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let (pe, pd) = self.split(&self.params);
        let tensors: Vec<(String, Vec<usize>, &[f32])> = [(&self.enc, pe), (&self.dec, pd)]
            .iter()
            .flat_map(|(m, p)| {
                m.layout
                    .entries
                    .iter()
                    .map(|e| (e.name.clone(), e.shape.clone(), &p[e.range()]))
            })
            .collect();
        write_tensors(&dir.join("vae.safetensors"), &tensors)?;
        let json = serde_json::to_vec_pretty(&self.config).map_err(|e| io_err(dir, e))?;
        write_atomic(&dir.join("vae.json"), &json)
    }

    /// Loads a VAE written by [`Self::save`] from `dir`.
    pub fn load(dir: &Path, threads: usize) -> Result<Self, FlowError> {
        let cpath = dir.join("vae.json");
        let text = std::fs::read(&cpath).map_err(|e| io_err(&cpath, e))?;
        let config: VaeConfig = serde_json::from_slice(&text).map_err(|e| io_err(&cpath, e))?;
        let mpath = dir.join("vae.safetensors");
        // the sizes of the config, bounded by the weights file before anything is allocated
        let file_len = std::fs::metadata(&mpath).map_err(|e| io_err(&mpath, e))?.len();
        let mut sizes = vec![config.data_dim];
        sizes.extend(&config.hidden);
        let params = (|| {
            let enc = sizes
                .iter()
                .chain([&config.latent.checked_mul(2)?])
                .map(|&x| x as u64)
                .collect::<Vec<_>>();
            let layers = |v: &[u64]| {
                v.windows(2)
                    .try_fold(0u64, |a, w| a.checked_add(w[0].checked_mul(w[1])?.checked_add(w[1])?))
            };
            let mut dec = vec![config.latent as u64];
            dec.extend(config.hidden.iter().rev().map(|&x| x as u64));
            dec.push(config.data_dim as u64);
            layers(&enc)?.checked_add(layers(&dec)?)?.checked_mul(4)
        })();
        if params.is_none_or(|b| b > file_len) {
            return Err(io_err(
                &cpath,
                format!(
                    "data_dim/latent/hidden need more weights than {} holds ({file_len} bytes)",
                    mpath.display()
                ),
            ));
        }
        let mut vae = Vae::new(config, threads, &mut stream(0, "vae-load", 0))?;
        let bytes = std::fs::read(&mpath).map_err(|e| io_err(&mpath, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| io_err(&mpath, e))?;
        let ne = vae.enc.num_params();
        for (m, off) in [(&vae.enc, 0), (&vae.dec, ne)] {
            for e in &m.layout.entries {
                let v = read_tensor(&st, &e.name, e.len(), &mpath)?;
                let r = e.range();
                vae.params[off + r.start..off + r.end].copy_from_slice(&v);
            }
        }
        Ok(vae)
    }
}

/// A VAE with the weight-space standardization it was trained under: maps weight vectors to
/// latent codes (`encode`: standardize, posterior mean) and back (`decode`: decoder, undo the
/// standardization). Saved as `vae.json`, `vae.safetensors` and `vae_standardize.safetensors`.
#[derive(Clone, Debug)]
pub struct LatentCodec {
    pub vae: Vae,
    pub standardizer: Standardizer,
}

impl LatentCodec {
    /// Fits the standardization (`mode`, over `layout`) on `weights [N, d]` and trains the VAE on
    /// the standardized vectors. Returns the codec and the VAE's per-step losses.
    pub fn fit(
        weights: &[f32],
        layout: &ParamLayout,
        mode: StandardizeMode,
        config: VaeConfig,
        settings: &VaeTrainSettings,
        threads: usize,
    ) -> Result<(Self, Vec<VaeLoss>), FlowError> {
        if config.data_dim != layout.dim() {
            return Err(FlowError::Shape(format!(
                "VAE data_dim {} but the weight layout has {} values",
                config.data_dim,
                layout.dim()
            )));
        }
        let standardizer = Standardizer::fit(weights, config.data_dim, mode, layout)?;
        let mut z = weights.to_vec();
        standardizer.forward(&mut z);
        let (vae, losses) = train_vae(config, &z, settings, threads)?;
        Ok((LatentCodec { vae, standardizer }, losses))
    }

    /// Latent codes `[N, L]` (posterior means) of weight vectors `[N, d]`.
    pub fn encode(&self, weights: &[f32]) -> Result<Vec<f32>, FlowError> {
        let mut z = weights.to_vec();
        self.vae.check(&z, self.vae.config.data_dim, "weights")?;
        self.standardizer.forward(&mut z);
        self.vae.encode_mean(&z)
    }

    /// Weight vectors `[N, d]` decoded from latent codes `[N, L]`.
    pub fn decode(&self, latent: &[f32]) -> Result<Vec<f32>, FlowError> {
        let mut w = self.vae.decode(latent)?;
        self.standardizer.inverse(&mut w);
        Ok(w)
    }

    /// Saves into `dir` next to a meta-model.
    pub fn save(&self, dir: &Path) -> Result<(), FlowError> {
        self.vae.save(dir)?;
        let d = self.standardizer.mean.len();
        write_tensors(
            &dir.join("vae_standardize.safetensors"),
            &[
                ("standardize.mean".into(), vec![d], &self.standardizer.mean[..]),
                ("standardize.std".into(), vec![d], &self.standardizer.std[..]),
            ],
        )
    }

    /// Whether `dir` holds a saved codec.
    pub fn exists(dir: &Path) -> bool {
        dir.join("vae.json").is_file()
    }

    /// Loads a codec written by [`Self::save`].
    pub fn load(dir: &Path, threads: usize) -> Result<Self, FlowError> {
        let vae = Vae::load(dir, threads)?;
        let path = dir.join("vae_standardize.safetensors");
        let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| io_err(&path, e))?;
        let d = vae.config.data_dim;
        let standardizer = Standardizer {
            mean: read_tensor(&st, "standardize.mean", d, &path)?,
            std: read_tensor(&st, "standardize.std", d, &path)?,
        };
        Ok(LatentCodec { vae, standardizer })
    }
}

/// Trains a VAE on `data [N, d]` (row-major); returns it and the per-step losses.
pub fn train_vae(
    config: VaeConfig,
    data: &[f32],
    settings: &VaeTrainSettings,
    threads: usize,
) -> Result<(Vae, Vec<VaeLoss>), FlowError> {
    let mut vae = Vae::new(config, threads, &mut stream(settings.seed, "vae-init", 0))?;
    let n = vae.check(data, vae.config.data_dim, "training data")?;
    if n == 0 {
        return Err(FlowError::Invalid("VAE training data is empty".into()));
    }
    let (d, l) = (vae.config.data_dim, vae.config.latent);
    let b = settings.batch.clamp(1, n);
    let mut params = std::mem::take(&mut vae.params);
    let mut state = TrainState::new(settings.opt, &params);
    let mut grad = vec![0.0f32; params.len()];
    let mut losses = Vec::with_capacity(settings.steps);
    let mut xb = vec![0.0f32; b * d];
    for step in 0..settings.steps {
        let mut rb = stream(settings.seed, "vae-batch", step as u64);
        for row in xb.chunks_mut(d) {
            let i = rb.gen_range(0..n);
            row.copy_from_slice(&data[i * d..(i + 1) * d]);
        }
        let eps = randn(&mut stream(settings.seed, "vae-eps", step as u64), b * l);
        let loss = vae.loss_and_grad(&params, &xb, &eps, Some(&mut grad));
        if !loss.total.is_finite() {
            return Err(FlowError::Diverged { step, loss: loss.total });
        }
        state.update(&mut params, &mut grad);
        losses.push(loss);
    }
    vae.params = state.final_params(params);
    Ok((vae, losses))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Vae {
        let cfg = VaeConfig {
            data_dim: 5,
            latent: 3,
            hidden: vec![7],
            beta: 0.7,
        };
        let mut v = Vae::new(cfg, 1, &mut stream(3, "init", 0)).unwrap();
        // Larger log-variances and weights than the default init, so every path matters.
        v.params.iter_mut().for_each(|p| *p *= 2.0);
        v
    }

    #[test]
    fn loss_gradient_matches_finite_differences() {
        let v = tiny();
        let b = 4;
        let x = randn(&mut stream(1, "x", 0), b * 5);
        let eps = randn(&mut stream(1, "eps", 0), b * 3);
        let mut g = vec![0.0f32; v.params.len()];
        let base = v.loss_and_grad(&v.params, &x, &eps, Some(&mut g));
        assert!(base.kl > 0.0 && base.recon > 0.0);
        let h = 1e-2f32;
        let mut worst = 0.0f32;
        for i in 0..v.params.len() {
            let mut p = v.params.clone();
            p[i] += h;
            let lp = v.loss_and_grad(&p, &x, &eps, None).total;
            p[i] -= 2.0 * h;
            let lm = v.loss_and_grad(&p, &x, &eps, None).total;
            let fd = (lp - lm) / (2.0 * h);
            let err = (fd - g[i]).abs() / (1e-2 + fd.abs().max(g[i].abs()));
            worst = worst.max(err);
        }
        assert!(worst < 2e-2, "worst relative gradient error {worst}");
    }

    #[test]
    fn decoder_vjp_matches_finite_differences() {
        let v = tiny();
        let b = 3;
        let z = randn(&mut stream(2, "z", 0), b * 3);
        let u = randn(&mut stream(2, "u", 0), b * 5);
        let vjp = v.decode_vjp(&z, &u).unwrap();
        let f = |z: &[f32]| -> f64 {
            let y = v.decode(z).unwrap();
            y.iter().zip(&u).map(|(&a, &b)| a as f64 * b as f64).sum()
        };
        let h = 1e-2f32;
        for i in 0..z.len() {
            let mut zp = z.clone();
            zp[i] += h;
            let mut zm = z.clone();
            zm[i] -= h;
            let fd = ((f(&zp) - f(&zm)) / (2.0 * h as f64)) as f32;
            assert!(
                (fd - vjp[i]).abs() < 1e-2 * (1.0 + fd.abs()),
                "coordinate {i}: finite difference {fd}, vjp {}",
                vjp[i]
            );
        }
        assert!(v.decode_vjp(&z, &u[..5]).is_err());
    }

    #[test]
    fn reconstructs_low_rank_vectors() {
        // 64 vectors in R^16 on a random 2-dimensional subspace.
        let (n, d, r) = (64, 16, 2);
        let a = randn(&mut stream(5, "basis", 0), d * r); // [d, r]
        let c = randn(&mut stream(5, "coef", 0), n * r); // [n, r]
        let mut data = vec![0.0f32; n * d];
        for i in 0..n {
            for k in 0..d {
                data[i * d + k] = (0..r).map(|j| a[k * r + j] * c[i * r + j]).sum();
            }
        }
        let cfg = VaeConfig {
            data_dim: d,
            latent: 4,
            hidden: vec![64],
            beta: 1e-3,
        };
        let settings = VaeTrainSettings {
            steps: 3000,
            batch: 32,
            opt: OptSettings {
                lr: 3e-3,
                weight_decay: 0.0,
                warmup: 50,
                clip_norm: 10.0,
                ema_decay: 0.0,
            },
            seed: 11,
        };
        let (vae, losses) = train_vae(cfg, &data, &settings, 1).unwrap();
        let rec = vae.decode(&vae.encode_mean(&data).unwrap()).unwrap();
        let num: f64 = rec
            .iter()
            .zip(&data)
            .map(|(&y, &t)| (y as f64 - t as f64).powi(2))
            .sum();
        let den: f64 = data.iter().map(|&t| t as f64 * t as f64).sum();
        let rel = (num / den).sqrt();
        eprintln!(
            "VAE low-rank reconstruction: relative error {rel:.4}, loss {:.4} → {:.4}",
            losses[0].total,
            losses[losses.len() - 1].total
        );
        assert!(rel < 0.15, "relative reconstruction error {rel}");
        // Same seed, same model.
        let (again, _) = train_vae(vae.config.clone(), &data, &settings, 1).unwrap();
        assert_eq!(again.params, vae.params);
        // Save / load round trip.
        let dir = std::env::temp_dir().join(format!("wf-vae-test-{}", std::process::id()));
        vae.save(&dir).unwrap();
        let loaded = Vae::load(&dir, 1).unwrap();
        assert_eq!(loaded.config, vae.config);
        assert_eq!(loaded.params, vae.params);
        assert!(Vae::load(&dir.join("missing"), 1).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn latent_codec_round_trips_through_files() {
        let (n, d) = (20, 6);
        let w: Vec<f32> = randn(&mut stream(7, "w", 0), n * d)
            .iter()
            .map(|v| 3.0 + 0.1 * v)
            .collect();
        let mut layout = ParamLayout::default();
        layout.push("w", vec![d]);
        let cfg = VaeConfig {
            data_dim: d,
            latent: 2,
            hidden: vec![8],
            beta: 1e-2,
        };
        let settings = VaeTrainSettings {
            steps: 20,
            batch: 8,
            opt: OptSettings {
                lr: 1e-3,
                weight_decay: 0.0,
                warmup: 1,
                clip_norm: 0.0,
                ema_decay: 0.0,
            },
            seed: 1,
        };
        let (codec, losses) = LatentCodec::fit(&w, &layout, StandardizeMode::Coordinate, cfg, &settings, 1).unwrap();
        assert_eq!(losses.len(), 20);
        let z = codec.encode(&w).unwrap();
        assert_eq!(z.len(), n * 2);
        let back = codec.decode(&z).unwrap();
        // Decoding undoes the standardization: outputs live near the data's scale (mean 3).
        let mean = back.iter().sum::<f32>() / back.len() as f32;
        assert!((mean - 3.0).abs() < 0.5, "decoded mean {mean}");
        let dir = std::env::temp_dir().join(format!("wf-codec-test-{}", std::process::id()));
        codec.save(&dir).unwrap();
        assert!(LatentCodec::exists(&dir));
        let loaded = LatentCodec::load(&dir, 1).unwrap();
        assert_eq!(loaded.decode(&z).unwrap(), back);
        assert!(codec.encode(&w[..5]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
