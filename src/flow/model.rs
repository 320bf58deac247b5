//! The trained meta-model: configuration, target space (layout and architecture of the generated
//! networks), standardization, velocity network (EMA weights) and context encoder; saved as a
//! directory with `config.json` (every setting, defaults included) and `model.safetensors`,
//! each written atomically (temp file + rename).

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
            // it shrinks the spread about 3×, `tests/flow_toy.rs`; RESULTS.md, session 12).
            coupling: Coupling::Independent,
            source: Source::Init(InitScheme::KaimingNormal),
            standardize: StandardizeMode::Coordinate,
            batch: 64,
            iterations: 1500,
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

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), FlowError> {
        let bad = |m: &str| Err(FlowError::Invalid(m.into()));
        if self.width == 0 || self.batch == 0 {
            return bad("width and batch must be positive");
        }
        if self.ctx_dim > 0 && (self.context_k == 0 || self.ctx_hidden == 0 || self.ctx_pool == 0) {
            return bad("a conditional model needs context_k, ctx_hidden and ctx_pool > 0");
        }
        if !(self.opt.lr > 0.0 && self.opt.lr.is_finite()) {
            return bad("lr must be a positive number");
        }
        if !(0.0..1.0).contains(&self.opt.ema_decay) {
            return bad("ema_decay must lie in [0, 1)");
        }
        Ok(())
    }
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
}

const FORMAT: u32 = 1;

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

/// Reads the f32 tensor `name` of `len` values.
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
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
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

    /// Saves into directory `dir` (created if missing).
    pub fn save(&self, dir: &Path) -> Result<(), FlowError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        write_tensors(&dir.join("model.safetensors"), &self.tensors())?;
        let cfg = ConfigFile {
            format: FORMAT,
            config: self.config.clone(),
            space: self.space.clone(),
            velocity: self.velocity.config.clone(),
            encoder: self.encoder.as_ref().map(|e| e.config),
            summary: self.summary.clone(),
            groups: self.groups.clone(),
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
        let mpath = dir.join("model.safetensors");
        let bytes = std::fs::read(&mpath).map_err(|e| io_err(&mpath, e))?;
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
    let st = safetensors::serialize(views, &None).map_err(|e| io_err(path, e))?;
    write_atomic(path, &st)
}
