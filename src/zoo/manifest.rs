//! `manifest.json` of a zoo: format version, architecture and layout, dataset specs and
//! normalization, hyperparameters, per-model seeds, and per-epoch, per-model metrics. The
//! manifest is the commit point of training: `epochs` counts the epochs whose checkpoint (and
//! optimizer state) were complete when it was written.

use super::ZooError;
use crate::data::Normalization;
use crate::engine::OptimConfig;
use crate::nets::init::InitScheme;
use crate::nets::{ArchSpec, ParamLayout};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `format` field of every zoo manifest.
pub const FORMAT_NAME: &str = "weightflow-zoo";
/// The current manifest/checkpoint format version.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the `[K, D]` tensor inside each epoch checkpoint.
pub const WEIGHTS_TENSOR: &str = "weights";

/// Loss and accuracy (fraction in [0, 1]) of one model at one epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMetrics {
    /// Mean training cross-entropy: at epoch 0 evaluated on the whole training split; later
    /// the running mean over the epoch's minibatches (before each update), as in a torch loop.
    pub train_loss: f64,
    pub train_acc: f64,
    /// On the validation split (absent when `val_fraction` is 0).
    pub val_loss: Option<f64>,
    pub val_acc: Option<f64>,
    /// On the test set.
    pub test_loss: f64,
    pub test_acc: f64,
}

/// What was measured at one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Seconds spent training this epoch (0 for epoch 0) and evaluating it.
    pub train_s: f64,
    pub eval_s: f64,
    /// Training images per second summed over the K models (0 for epoch 0).
    pub train_img_per_s: f64,
    /// One entry per model.
    pub models: Vec<ModelMetrics>,
}

impl EpochRecord {
    /// Mean test accuracy over the models.
    pub fn mean_test_acc(&self) -> f64 {
        mean(self.models.iter().map(|m| m.test_acc))
    }
}

/// Mean of an iterator (0 when empty).
pub fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// Population standard deviation (0 when fewer than two values).
pub fn std_dev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs.iter().copied());
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64).sqrt()
}

/// Sizes and classes of the data a zoo was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    pub class_names: Vec<String>,
}

/// The manifest of a zoo directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The architecture (its `name` is the `--arch` value) and its flat layout.
    pub arch: ArchSpec,
    pub layout: ParamLayout,
    /// D, the length of one model's weight vector.
    pub dim: usize,
    /// K, the number of models.
    pub models: usize,
    /// Epochs completed (0 = only the initialization is stored).
    pub epochs: usize,
    /// Dataset specs (`data::load` strings) and the normalization computed on the training split.
    pub train_spec: String,
    pub test_spec: String,
    pub val_fraction: f32,
    pub normalization: Normalization,
    pub data: DataInfo,
    /// Hyperparameters.
    pub init: InitScheme,
    pub batch: usize,
    pub optimizer: OptimConfig,
    /// The run seed and the seed of each model derived from it (`rng::derive_seed(seed, "model", k)`);
    /// model k draws its init from `stream(model_seeds[k], "init", 0)`, its data order in epoch e
    /// from `stream(model_seeds[k], "data-order", e)` and its dropout masks at step s from
    /// `derive_seed(model_seeds[k], "dropout", s)`.
    pub seed: u64,
    pub model_seeds: Vec<u64>,
    /// Worker threads of the run that wrote the last epoch (results are bit-identical for the
    /// same seed and thread count).
    pub threads: usize,
    /// Name of the `[K, D]` tensor in each `epoch_XXXX.safetensors`.
    pub weights_tensor: String,
    /// `history[e]` = metrics after epoch e, for e in 0..=epochs.
    pub history: Vec<EpochRecord>,
    /// Set in the zoo of one shard of a sharded run (`zoo train --shard I/N`): which models of
    /// the whole run it holds; absent in a whole (or merged) zoo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::shards::ShardPart>,
}

impl Manifest {
    /// Reads and checks `path` (a `manifest.json`).
    pub fn read(path: &Path) -> Result<Self, ZooError> {
        let text = std::fs::read_to_string(path).map_err(|e| ZooError::io(path, e))?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| ZooError::format(path, format!("not a valid zoo manifest: {e}")))?;
        m.check(path)?;
        Ok(m)
    }

    /// Internal consistency: format, version, layout vs. architecture, history length, seeds.
    pub fn check(&self, path: &Path) -> Result<(), ZooError> {
        let bad = |r: String| Err(ZooError::format(path, r));
        if self.format != FORMAT_NAME {
            return bad(format!("format is '{}', expected '{FORMAT_NAME}'", self.format));
        }
        if self.format_version != FORMAT_VERSION {
            return bad(format!(
                "format_version {} is not supported (this build reads {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if let Err(e) = self.arch.shapes() {
            return bad(format!("architecture: {e}"));
        }
        if self.arch.layout() != self.layout || self.layout.dim() != self.dim {
            return bad(format!(
                "layout (D = {}) does not match architecture '{}' (D = {})",
                self.dim,
                self.arch.name,
                self.arch.layout().dim()
            ));
        }
        if self.models == 0 || self.model_seeds.len() != self.models {
            return bad(format!(
                "{} model seeds for {} models",
                self.model_seeds.len(),
                self.models
            ));
        }
        if self.history.len() != self.epochs + 1 {
            return bad(format!(
                "history holds {} epochs, expected {} (epochs 0..={})",
                self.history.len(),
                self.epochs + 1,
                self.epochs
            ));
        }
        if let Some(p) = &self.shard {
            if p.model_indices != p.shard.indices(p.total_models) || p.model_indices.len() != self.models {
                return bad(format!(
                    "shard {} of {} models lists models {:?}, expected {:?}",
                    p.shard,
                    p.total_models,
                    p.model_indices,
                    p.shard.indices(p.total_models)
                ));
            }
        }
        for (e, r) in self.history.iter().enumerate() {
            if r.epoch != e || r.models.len() != self.models {
                return bad(format!(
                    "history entry {e} is for epoch {} with {} models",
                    r.epoch,
                    r.models.len()
                ));
            }
        }
        Ok(())
    }

    /// The fields that identify a zoo's configuration, as (name, value) pairs; resuming
    /// requires them all equal.
    pub fn identity(&self) -> Vec<(&'static str, String)> {
        identity_fields(
            &self.arch,
            self.models,
            &self.train_spec,
            &self.test_spec,
            self.val_fraction,
            self.init,
            self.batch,
            &self.optimizer,
            self.seed,
        )
    }

    /// Metrics of `model` at `epoch`.
    pub fn metrics(&self, model: usize, epoch: usize) -> Option<&ModelMetrics> {
        self.history.get(epoch).and_then(|r| r.models.get(model))
    }
}

/// See [`Manifest::identity`].
#[allow(clippy::too_many_arguments)]
pub fn identity_fields(
    arch: &ArchSpec,
    models: usize,
    train_spec: &str,
    test_spec: &str,
    val_fraction: f32,
    init: InitScheme,
    batch: usize,
    optimizer: &OptimConfig,
    seed: u64,
) -> Vec<(&'static str, String)> {
    let js = |v: serde_json::Result<String>| v.unwrap_or_default();
    vec![
        ("arch", arch.name.clone()),
        ("act", js(serde_json::to_string(&arch_activation(arch)))),
        ("arch layers", js(serde_json::to_string(arch))),
        ("models", models.to_string()),
        ("train_spec (--data)", train_spec.to_string()),
        ("test_spec (--test)", test_spec.to_string()),
        ("val_fraction", val_fraction.to_string()),
        ("init", js(serde_json::to_string(&init))),
        ("batch", batch.to_string()),
        ("optimizer (--lr, --weight-decay)", js(serde_json::to_string(optimizer))),
        ("seed", seed.to_string()),
    ]
}

/// The activation of the first activation layer (the zoo's `--act`), if any.
pub fn arch_activation(arch: &ArchSpec) -> Option<crate::nets::Activation> {
    arch.layers.iter().find_map(|l| match l {
        crate::nets::LayerSpec::Act { act } => Some(*act),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue item 4: a resumed run re-writes the metrics of earlier epochs as it read them, so
    /// every f64 must survive a JSON round trip bit for bit (serde_json's `float_roundtrip`;
    /// without it 1.4752241679854803 reads back as 1.4752241679854805, about 13 % of values).
    #[test]
    fn metrics_round_trip_through_json_exactly() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut models = vec![ModelMetrics {
            train_loss: 1.4752241679854803,
            train_acc: 1.8079224090601014,
            val_loss: None,
            val_acc: None,
            test_loss: 0.1 + 0.2,
            test_acc: 2.0 / 3.0,
        }];
        for _ in 0..2000 {
            let (a, b, c, d) = (next(), next(), next(), next());
            models.push(ModelMetrics {
                train_loss: 2.5 * a,
                train_acc: b,
                val_loss: Some(c * 1e-3),
                val_acc: Some(d),
                test_loss: a * 7.0,
                test_acc: b * c,
            });
        }
        let rec = EpochRecord {
            epoch: 3,
            train_s: next() * 100.0,
            eval_s: next(),
            train_img_per_s: next() * 1e5,
            models,
        };
        let text = serde_json::to_string_pretty(&rec).unwrap();
        let back: EpochRecord = serde_json::from_str(&text).unwrap();
        let bits = |r: &EpochRecord| -> Vec<u64> {
            let mut v = vec![r.train_s.to_bits(), r.eval_s.to_bits(), r.train_img_per_s.to_bits()];
            for m in &r.models {
                v.extend([m.train_loss, m.train_acc, m.test_loss, m.test_acc].map(f64::to_bits));
                v.extend([m.val_loss, m.val_acc].map(|x| x.map_or(0, f64::to_bits)));
            }
            v
        };
        assert_eq!(bits(&back), bits(&rec));
        assert_eq!(serde_json::to_string_pretty(&back).unwrap(), text);
    }
}
