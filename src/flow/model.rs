//! The trained meta-model: configuration, target space (layout and architecture of the generated
//! networks), standardization, velocity network (EMA weights) and context encoder; saved as a
//! directory with `config.json` (every setting, defaults included, and the SHA-256 of the
//! weights) and `model.safetensors`, committed as a whole ([`crate::fsio::commit_dir`]) and
//! validated on load (setting ranges, sizes against the weights file, finite weights), with
//! errors naming the file and the field.

use super::align::{AlignMode, AlignSummary};
use super::cfm::Coupling;
use super::context::{ContextConfig, ContextEncoder, ItemKind};
use super::opt::OptSettings;
use super::solve::Solver;
use super::source::{Source, StandardizeMode, Standardizer};
use super::velocity::{Parameterization, VelocityConfig, VelocityMlp};
use super::FlowError;
use crate::data::Normalization;
use crate::nets::init::InitScheme;
use crate::nets::{ArchSpec, ParamLayout};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Every setting of training and sampling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowConfig {
    /// Hidden width of the velocity MLP.
    pub width: usize,
    /// Hidden width → width layers.
    pub depth: usize,
    /// Fourier frequencies of the time embedding.
    pub time_freqs: usize,
    pub residual: bool,
    /// Network output: velocity or endpoint x̂1 (see `velocity::Parameterization`).
    pub param: Parameterization,
    /// Context embedding size (0: unconditional, no encoder).
    pub ctx_dim: usize,
    /// Width of the set encoder.
    pub ctx_hidden: usize,
    /// Items (images) per context set.
    pub context_k: usize,
    /// Average-pooling factor of context images.
    pub ctx_pool: usize,
    pub coupling: Coupling,
    pub source: Source,
    pub standardize: StandardizeMode,
    /// Permutation alignment the targets went through before training ([`super::align`];
    /// applied by the caller, `flow train --align`; absent in older models: none).
    pub align: AlignMode,
    /// Minibatch size of target samples.
    pub batch: usize,
    /// Training iterations.
    pub iterations: usize,
    pub opt: OptSettings,
    /// Learning rate of the context encoder.
    pub ctx_lr: f32,
    /// Default solver and step count for sampling.
    pub solver: Solver,
    pub sample_steps: usize,
    pub seed: u64,
    /// GEMM threads (0 = all rayon threads).
    pub threads: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            width: 512,
            depth: 2,
            time_freqs: 6,
            residual: true,
            param: Parameterization::Endpoint,
            ctx_dim: 32,
            ctx_hidden: 64,
            context_k: 16,
            ctx_pool: 4,
            // Independent coupling and a Gaussian (Kaiming-normal) source: the memoryless SDE that
            // Adjoint Matching samples and tilts has the flow's law only for these (with OT pairs
            // it shrinks the spread about 3×, `tests/flow_toy.rs`; RESULTS.md).
            coupling: Coupling::Independent,
            source: Source::Init(InitScheme::KaimingNormal),
            standardize: StandardizeMode::Coordinate,
            align: AlignMode::None,
            batch: 64,
            // 1500 left 2–8 % of generated CIFAR-10 CNN3s broken (RESULTS.md, Table 1).
            iterations: 5000,
            opt: OptSettings {
                lr: 1e-3,
                weight_decay: 0.0,
                warmup: 100,
                clip_norm: 1.0,
                ema_decay: 0.995,
            },
            ctx_lr: 1e-3,
            solver: Solver::Euler,
            sample_steps: 100,
            seed: 0,
            threads: 0,
        }
    }
}

impl FlowConfig {
    /// The number of GEMM threads to use.
    pub fn gemm_threads(&self) -> usize {
        if self.threads == 0 {
            rayon::current_num_threads()
        } else {
            self.threads
        }
    }

    /// Checks the settings; an error names the field and its allowed range.
    pub fn validate(&self) -> Result<(), FlowError> {
        let bad = |m: String| Err(FlowError::Invalid(m));
        let ranges: [(&str, usize, usize, usize); 9] = [
            ("width", self.width, 1, MAX_WIDTH),
            ("depth", self.depth, 0, MAX_DEPTH),
            ("time_freqs", self.time_freqs, 0, MAX_FREQS),
            ("ctx_dim", self.ctx_dim, 0, MAX_WIDTH),
            ("ctx_hidden", self.ctx_hidden, 0, MAX_WIDTH),
            ("context_k", self.context_k, 0, MAX_WIDTH),
            ("batch", self.batch, 1, MAX_WIDTH),
            ("sample_steps", self.sample_steps, 1, MAX_STEPS),
            ("iterations", self.iterations, 0, MAX_ITERATIONS),
        ];
        for (field, v, lo, hi) in ranges {
            if v < lo || v > hi {
                return bad(format!("{field} is {v}; it must lie in [{lo}, {hi}]"));
            }
        }
        if self.ctx_dim > 0 {
            for (field, v) in [
                ("context_k", self.context_k),
                ("ctx_hidden", self.ctx_hidden),
                ("ctx_pool", self.ctx_pool),
            ] {
                if v == 0 {
                    return bad(format!(
                        "{field} is 0; a conditional model (ctx_dim > 0) needs it positive"
                    ));
                }
            }
        }
        if !(self.opt.lr > 0.0 && self.opt.lr.is_finite()) {
            return bad(format!("lr is {}; it must be a positive number", self.opt.lr));
        }
        if !(self.ctx_lr >= 0.0 && self.ctx_lr.is_finite()) {
            return bad(format!("ctx_lr is {}; it must be a number ≥ 0", self.ctx_lr));
        }
        if !(self.opt.weight_decay >= 0.0 && self.opt.weight_decay.is_finite()) {
            return bad(format!(
                "weight_decay is {}; it must be a number ≥ 0",
                self.opt.weight_decay
            ));
        }
        if !self.opt.clip_norm.is_finite() {
            return bad(format!("clip_norm is {}; it must be a number", self.opt.clip_norm));
        }
        if !(0.0..1.0).contains(&self.opt.ema_decay) {
            return bad(format!("ema_decay is {}; it must lie in [0, 1)", self.opt.ema_decay));
        }
        Ok(())
    }
}

/// Bounds of the settings, far above any useful value, that keep every size computable.
pub const MAX_WIDTH: usize = 1 << 16;
/// Most hidden layers.
pub const MAX_DEPTH: usize = 1024;
/// Most Fourier frequencies.
pub const MAX_FREQS: usize = 1024;
/// Most solver steps of one sampling run.
pub const MAX_STEPS: usize = 100_000;
/// Most training iterations.
pub const MAX_ITERATIONS: usize = 100_000_000;

/// The parameter count of a velocity MLP (`None`: a size overflows or exceeds the bounds), in
/// closed form: `[input, width × (depth + 1), dim]` layers of weights and biases.
pub fn velocity_params(c: &VelocityConfig) -> Option<u64> {
    if c.width > MAX_WIDTH || c.depth > MAX_DEPTH || c.time_freqs > MAX_FREQS || c.ctx_dim > MAX_WIDTH {
        return None;
    }
    let (w, d) = (c.width as u64, c.dim as u64);
    let input = d.checked_add((c.time_dim() + c.ctx_dim) as u64)?;
    let first = input.checked_mul(w)?.checked_add(w)?;
    let hidden = (w * w + w).checked_mul(c.depth as u64)?;
    let last = w.checked_mul(d)?.checked_add(d)?;
    first.checked_add(hidden)?.checked_add(last)
}

/// The parameter count of a context encoder (`None`: a size overflows or exceeds the bounds).
pub fn encoder_params(c: &ContextConfig) -> Option<u64> {
    let f = match c.items {
        ItemKind::Images { channels, side, pool } if pool > 0 => {
            (channels as u64).checked_mul(((side / pool) as u64).checked_pow(2)?)?
        }
        ItemKind::Images { .. } => return None,
        ItemKind::Features { dim } => dim as u64,
    };
    if c.hidden > MAX_WIDTH || c.out > MAX_WIDTH {
        return None;
    }
    let (h, o) = (c.hidden as u64, c.out as u64);
    let phi = f.checked_mul(h)?.checked_add(h + h * h + h)?;
    phi.checked_add(h * h + h + h * o + o)
}

/// What the generated vectors are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetSpace {
    /// Layout of one vector (D = layout.dim()).
    pub layout: ParamLayout,
    /// The architecture, when the vectors are network weights.
    pub arch: Option<ArchSpec>,
    /// Context items (None: unconditional).
    pub items: Option<ItemKind>,
}

/// Summary of training, stored in `config.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub iterations: usize,
    pub final_loss: f32,
    pub seconds: f64,
    pub groups: usize,
    pub targets: usize,
    /// What the permutation alignment of the targets did (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<AlignSummary>,
}

/// What the model knows about each training group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    /// Number of target vectors.
    pub targets: usize,
    /// Input normalization of the group's networks.
    pub normalization: Option<Normalization>,
    /// Context embedding of one seeded context set of the group (empty: unconditional).
    pub embedding: Vec<f32>,
}

/// The meta-model.
#[derive(Clone, Debug)]
pub struct MetaModel {
    pub config: FlowConfig,
    pub space: TargetSpace,
    pub standardizer: Standardizer,
    /// EMA weights.
    pub velocity: VelocityMlp,
    pub encoder: Option<ContextEncoder>,
    pub summary: TrainSummary,
    pub groups: Vec<GroupInfo>,
}

#[derive(Serialize, Deserialize)]
struct ConfigFile {
    format: u32,
    config: FlowConfig,
    space: TargetSpace,
    velocity: VelocityConfig,
    encoder: Option<ContextConfig>,
    summary: TrainSummary,
    groups: Vec<GroupInfo>,
    /// SHA-256 of `model.safetensors` as written with this config (absent in older models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weights_sha256: Option<String>,
}

const FORMAT: u32 = 1;

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks that every value of tensor `name` is finite.
fn check_finite(path: &Path, name: &str, v: &[f32]) -> Result<(), FlowError> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(io_err(
            path,
            format!("tensor {name} holds {} at index {i}: the weights are not finite", v[i]),
        )),
    }
}

pub(crate) fn io_err(path: &Path, e: impl std::fmt::Display) -> FlowError {
    FlowError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// Writes `bytes` to `path` atomically ([`crate::fsio::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FlowError> {
    crate::fsio::write_atomic(path, bytes).map_err(|e| io_err(path, e))
}

pub(crate) fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Reads the f32 tensor `name` of `len` values, all finite.
pub(crate) fn read_tensor(st: &SafeTensors<'_>, name: &str, len: usize, path: &Path) -> Result<Vec<f32>, FlowError> {
    let t = st
        .tensor(name)
        .map_err(|e| io_err(path, format!("tensor {name}: {e}")))?;
    if t.dtype() != Dtype::F32 || t.data().len() != 4 * len {
        return Err(io_err(
            path,
            format!(
                "tensor {name}: expected {len} f32 values, found {:?} {:?}",
                t.dtype(),
                t.shape()
            ),
        ));
    }
    let v: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    check_finite(path, name, &v)?;
    Ok(v)
}

impl MetaModel {
    /// The training group whose stored embedding is nearest to `embedding` (the first group for an
    /// unconditional model); `None` without groups.
    pub fn nearest_group(&self, embedding: &[f32]) -> Option<&GroupInfo> {
        let dist = |g: &GroupInfo| -> f64 {
            g.embedding
                .iter()
                .zip(embedding)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum()
        };
        self.groups.iter().min_by(|a, b| dist(a).total_cmp(&dist(b)))
    }

    /// State dimension D.
    pub fn dim(&self) -> usize {
        self.standardizer.mean.len()
    }

    /// All named tensors: velocity, encoder, standardization.
    fn tensors(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let mut out = Vec::new();
        for e in &self.velocity.layout().entries {
            out.push((e.name.clone(), e.shape.clone(), &self.velocity.params[e.range()]));
        }
        if let Some(enc) = &self.encoder {
            for e in enc.layout().entries {
                let r = e.range();
                out.push((e.name, e.shape, &enc.params[r]));
            }
        }
        let d = self.dim();
        out.push(("standardize.mean".into(), vec![d], &self.standardizer.mean[..]));
        out.push(("standardize.std".into(), vec![d], &self.standardizer.std[..]));
        out
    }

    /// Saves into directory `dir`, committed as a whole ([`crate::fsio::commit_dir`]): a kill
    /// leaves the old model or the new one, never a mix. `dir` is replaced: it must be missing,
    /// empty or an earlier model.
    pub fn save(&self, dir: &Path) -> Result<(), FlowError> {
        self.save_with(dir, |_| Ok(()))
    }

    /// [`Self::save`], with `extra` writing more files of the same artifact (a latent codec)
    /// into the staging folder before the commit.
    pub fn save_with(&self, dir: &Path, extra: impl FnOnce(&Path) -> Result<(), FlowError>) -> Result<(), FlowError> {
        if dir.is_dir() && !dir.join("config.json").is_file() {
            let foreign = std::fs::read_dir(dir)
                .map_err(|e| io_err(dir, e))?
                .flatten()
                .any(|e| !crate::fsio::is_lock_file(&e.file_name().to_string_lossy()));
            if foreign {
                return Err(io_err(
                    dir,
                    "exists and holds files but no meta-model (config.json); refusing to replace it",
                ));
            }
        }
        crate::fsio::commit_dir(dir, |tmp| {
            self.write_into(tmp)?;
            extra(tmp)
        })
        .map_err(|e| match e {
            crate::fsio::CommitError::Write(e) => e,
            crate::fsio::CommitError::Io(e) => io_err(dir, e),
        })
    }

    /// Writes `model.safetensors`, then `config.json` naming its hash, into `dir`.
    fn write_into(&self, dir: &Path) -> Result<(), FlowError> {
        let mpath = dir.join("model.safetensors");
        let bytes = tensors_bytes(&mpath, &self.tensors())?;
        write_atomic(&mpath, &bytes)?;
        let cfg = ConfigFile {
            format: FORMAT,
            config: self.config.clone(),
            space: self.space.clone(),
            velocity: self.velocity.config.clone(),
            encoder: self.encoder.as_ref().map(|e| e.config),
            summary: self.summary.clone(),
            groups: self.groups.clone(),
            weights_sha256: Some(sha256_hex(&bytes)),
        };
        let json = serde_json::to_vec_pretty(&cfg).map_err(|e| io_err(dir, e))?;
        write_atomic(&dir.join("config.json"), &json)
    }

    /// Loads a directory written by [`Self::save`].
    pub fn load(dir: &Path) -> Result<Self, FlowError> {
        let cpath = dir.join("config.json");
        let text = std::fs::read(&cpath).map_err(|e| io_err(&cpath, e))?;
        let cfg: ConfigFile = serde_json::from_slice(&text).map_err(|e| io_err(&cpath, e))?;
        if cfg.format != FORMAT {
            return Err(io_err(
                &cpath,
                format!("format {} (this build reads {FORMAT})", cfg.format),
            ));
        }
        cfg.config.validate().map_err(|e| {
            io_err(
                &cpath,
                format!("config.{}", e.to_string().trim_start_matches("invalid: ")),
            )
        })?;
        let mpath = dir.join("model.safetensors");
        let file_len = std::fs::metadata(&mpath).map_err(|e| io_err(&mpath, e))?.len();
        // sizes from the config, bounded by the weights file before anything is allocated
        let vel = velocity_params(&cfg.velocity);
        let enc = cfg.encoder.as_ref().map(encoder_params);
        let values = (|| {
            vel?.checked_add(enc.unwrap_or(Some(0))?)?
                .checked_add(2 * cfg.velocity.dim as u64)
        })();
        match values.and_then(|n| n.checked_mul(4)) {
            Some(b) if b <= file_len => {}
            b => {
                return Err(io_err(
                    &cpath,
                    format!(
                        "velocity {:?} / encoder {:?} need {} bytes of weights, {} holds {file_len}",
                        cfg.velocity,
                        cfg.encoder,
                        b.map_or("more than 2^64".into(), |b| b.to_string()),
                        mpath.display()
                    ),
                ))
            }
        }
        let bytes = std::fs::read(&mpath).map_err(|e| io_err(&mpath, e))?;
        if let Some(want) = &cfg.weights_sha256 {
            if &sha256_hex(&bytes) != want {
                return Err(io_err(
                    &mpath,
                    format!(
                        "is not the weights file {} was written with (SHA-256 differs)",
                        cpath.display()
                    ),
                ));
            }
        }
        let st = SafeTensors::deserialize(&bytes).map_err(|e| io_err(&mpath, e))?;
        let mut velocity = VelocityMlp::zeros(cfg.velocity.clone(), cfg.config.gemm_threads());
        for e in velocity.mlp.layout.entries.clone() {
            let v = read_tensor(&st, &e.name, e.len(), &mpath)?;
            velocity.params[e.range()].copy_from_slice(&v);
        }
        let encoder = match cfg.encoder {
            None => None,
            Some(c) => {
                let mut enc = ContextEncoder::zeros(c);
                for e in enc.layout().entries {
                    let v = read_tensor(&st, &e.name, e.len(), &mpath)?;
                    enc.params[e.range()].copy_from_slice(&v);
                }
                Some(enc)
            }
        };
        let d = cfg.velocity.dim;
        let standardizer = Standardizer {
            mean: read_tensor(&st, "standardize.mean", d, &mpath)?,
            std: read_tensor(&st, "standardize.std", d, &mpath)?,
        };
        Ok(MetaModel {
            config: cfg.config,
            space: cfg.space,
            standardizer,
            velocity,
            encoder,
            summary: cfg.summary,
            groups: cfg.groups,
        })
    }
}

/// Writes named f32 tensors `(name, shape, values)` as one safetensors file.
pub(crate) fn write_tensors(path: &Path, tensors: &[(String, Vec<usize>, &[f32])]) -> Result<(), FlowError> {
    write_atomic(path, &tensors_bytes(path, tensors)?)
}

/// Named f32 tensors `(name, shape, values)` as safetensors bytes (`path` names errors).
fn tensors_bytes(path: &Path, tensors: &[(String, Vec<usize>, &[f32])]) -> Result<Vec<u8>, FlowError> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), to_bytes(v)))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| io_err(path, e))
        })
        .collect::<Result<_, _>>()?;
    safetensors::serialize(views, &None).map_err(|e| io_err(path, e))
}
