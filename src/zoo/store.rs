//! The zoo directory on disk: atomic file writes (temp file, fsync, rename, fsync of the
//! directory), epoch checkpoints `epoch_XXXX.safetensors` holding `W[K, D]` as tensor
//! `weights`, the optimizer state `optimizer_XXXX.safetensors` kept for the latest epoch only,
//! and [`Zoo`], the read side used by other modules.
//!
//! Safetensors headers are written with one metadata key, so the bytes of a file depend only on
//! its contents (no hash-map ordering).

use super::manifest::{Manifest, WEIGHTS_TENSOR};
use super::ZooError;
use crate::engine::Optimizer;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// File name of the manifest inside a zoo directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// File name of the checkpoint of epoch `e`.
pub fn epoch_file(e: usize) -> String {
    format!("epoch_{e:04}.safetensors")
}

/// File name of the optimizer state after epoch `e`.
pub fn optimizer_file(e: usize) -> String {
    format!("optimizer_{e:04}.safetensors")
}

/// Writes `bytes` to `path` atomically ([`crate::fsio::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ZooError> {
    crate::fsio::write_atomic(path, bytes).map_err(|e| ZooError::io(path, e))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serializes named `[rows, cols]`-or-any-shape f32 tensors with one metadata entry
/// `weightflow` = `meta` (a JSON string).
pub fn safetensors_bytes(tensors: &[(&str, Vec<usize>, &[f32])], meta: &str) -> Result<Vec<u8>, String> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| f32_bytes(v)).collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, shape, _), b) in tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, shape.clone(), b).map_err(|e| format!("tensor {name}: {e:?}"))?;
        views.push((name.to_string(), view));
    }
    let info = Some(HashMap::from([("weightflow".to_string(), meta.to_string())]));
    safetensors::serialize(views, &info).map_err(|e| format!("{e:?}"))
}

/// Reads tensor `name` of `shape` (f32, all finite) from the safetensors file `path`; also
/// returns the file's `weightflow` metadata string (empty when absent).
pub fn read_tensor(path: &Path, name: &str, shape: &[usize]) -> Result<(Vec<f32>, String), ZooError> {
    let bytes = std::fs::read(path).map_err(|e| ZooError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| ZooError::format(path, format!("not a valid safetensors file (truncated?): {e:?}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| ZooError::format(path, format!("unreadable safetensors header: {e:?}")))?;
    let meta = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("weightflow").cloned())
        .unwrap_or_default();
    let t = st
        .tensor(name)
        .map_err(|_| ZooError::format(path, format!("no tensor '{name}' (has: {:?})", st.names())))?;
    if t.dtype() != Dtype::F32 {
        return Err(ZooError::format(
            path,
            format!("tensor '{name}' has dtype {:?}, expected F32", t.dtype()),
        ));
    }
    if t.shape() != shape {
        return Err(ZooError::format(
            path,
            format!("tensor '{name}' has shape {:?}, expected {shape:?}", t.shape()),
        ));
    }
    let v: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        let cols = shape.last().copied().unwrap_or(1).max(1);
        return Err(ZooError::format(
            path,
            format!(
                "tensor '{name}' value {i} (row {}, column {}) is {x}, not finite",
                i / cols,
                i % cols
            ),
        ));
    }
    Ok((v, meta))
}

/// An opened zoo: its directory and manifest.
#[derive(Clone, Debug)]
pub struct Zoo {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Zoo {
    /// Opens the zoo in `dir` (reads and checks `manifest.json`).
    pub fn open(dir: impl AsRef<Path>) -> Result<Zoo, ZooError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(ZooError::format(
                &dir,
                "not a directory (expected a zoo written by `zoo train`)",
            ));
        }
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() && super::shards::find_shards(&dir).is_ok_and(|s| !s.is_empty()) {
            return Err(ZooError::format(
                &dir,
                "a zoo trained in shards (shard-I-of-N folders) and not merged yet: run `weightflow zoo merge DIR` once every shard has finished",
            ));
        }
        let manifest = Manifest::read(&path)?;
        Ok(Zoo { dir, manifest })
    }

    /// Path of the checkpoint of epoch `e`.
    pub fn epoch_path(&self, e: usize) -> PathBuf {
        self.dir.join(epoch_file(e))
    }

    /// D.
    pub fn dim(&self) -> usize {
        self.manifest.dim
    }

    /// All K models at epoch `e` as `W[K, D]`.
    pub fn load_epoch(&self, e: usize) -> Result<Vec<f32>, ZooError> {
        let path = self.epoch_path(e);
        if e > self.manifest.epochs {
            return Err(ZooError::format(
                &path,
                format!(
                    "epoch {e} requested but the zoo has epochs 0..={}",
                    self.manifest.epochs
                ),
            ));
        }
        let (w, _) = read_tensor(
            &path,
            &self.manifest.weights_tensor,
            &[self.manifest.models, self.manifest.dim],
        )?;
        Ok(w)
    }

    /// Model `k` at epoch `e` as `[D]`.
    pub fn load_model(&self, e: usize, k: usize) -> Result<Vec<f32>, ZooError> {
        if k >= self.manifest.models {
            return Err(ZooError::Invalid(format!(
                "model {k} requested but the zoo has models 0..{}",
                self.manifest.models
            )));
        }
        let d = self.dim();
        Ok(self.load_epoch(e)?[k * d..(k + 1) * d].to_vec())
    }

    /// Metrics of model `k` at epoch `e`.
    pub fn metrics(&self, k: usize, e: usize) -> Option<&super::ModelMetrics> {
        self.manifest.metrics(k, e)
    }
}

/// Writes the checkpoint `W[K, D]` of epoch `e` into `dir`.
pub fn write_epoch(dir: &Path, e: usize, w: &[f32], models: usize, dim: usize) -> Result<(), ZooError> {
    let path = dir.join(epoch_file(e));
    let meta = format!(
        r#"{{"format":"{}","epoch":{e},"models":{models},"dim":{dim}}}"#,
        super::FORMAT_NAME
    );
    let bytes =
        safetensors_bytes(&[(WEIGHTS_TENSOR, vec![models, dim], w)], &meta).map_err(|r| ZooError::format(&path, r))?;
    write_atomic(&path, &bytes)
}

/// Writes the optimizer state after epoch `e` (moments as `[K, D]` tensors `m`, `v`; step count
/// and configuration in the metadata).
pub fn write_optimizer(dir: &Path, e: usize, opt: &Optimizer, models: usize, dim: usize) -> Result<(), ZooError> {
    let path = dir.join(optimizer_file(e));
    let meta = serde_json::json!({"epoch": e, "step": opt.step, "config": opt.config}).to_string();
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![("m", vec![models, dim], &opt.m)];
    if !opt.v.is_empty() {
        tensors.push(("v", vec![models, dim], &opt.v));
    }
    let bytes = safetensors_bytes(&tensors, &meta).map_err(|r| ZooError::format(&path, r))?;
    write_atomic(&path, &bytes)
}

/// Reads the optimizer state after epoch `e`; its configuration must equal `fresh.config`
/// (`fresh` is a new optimizer of the right size).
pub fn read_optimizer(dir: &Path, e: usize, fresh: Optimizer, models: usize) -> Result<Optimizer, ZooError> {
    let path = dir.join(optimizer_file(e));
    let dim = fresh.m.len() / models.max(1);
    let (m, meta) = read_tensor(&path, "m", &[models, dim])?;
    let v = if fresh.v.is_empty() {
        Vec::new()
    } else {
        read_tensor(&path, "v", &[models, dim])?.0
    };
    let meta: serde_json::Value =
        serde_json::from_str(&meta).map_err(|err| ZooError::format(&path, format!("bad metadata: {err}")))?;
    if meta.get("epoch").and_then(|x| x.as_u64()) != Some(e as u64) {
        return Err(ZooError::format(
            &path,
            format!("metadata is not for epoch {e}: {meta}"),
        ));
    }
    let step = meta
        .get("step")
        .and_then(|x| x.as_u64())
        .ok_or_else(|| ZooError::format(&path, "metadata has no step count"))?;
    let config: crate::engine::OptimConfig = meta
        .get("config")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .ok_or_else(|| ZooError::format(&path, "metadata has no optimizer config"))?;
    if config != fresh.config {
        return Err(ZooError::format(
            &path,
            format!(
                "optimizer config {config:?} differs from the manifest's {:?}",
                fresh.config
            ),
        ));
    }
    Ok(Optimizer { config, step, m, v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_roundtrip_and_deterministic_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let w: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        write_epoch(dir.path(), 3, &w, 2, 3).unwrap();
        let p = dir.path().join(epoch_file(3));
        let first = std::fs::read(&p).unwrap();
        write_epoch(dir.path(), 3, &w, 2, 3).unwrap();
        assert_eq!(
            first,
            std::fs::read(&p).unwrap(),
            "same weights must give the same bytes"
        );
        let (back, meta) = read_tensor(&p, WEIGHTS_TENSOR, &[2, 3]).unwrap();
        assert_eq!(back, w);
        assert!(meta.contains("\"epoch\":3"));
        assert!(!dir.path().join("epoch_0003.safetensors.tmp").exists());
    }

    #[test]
    fn malformed_checkpoints_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = vec![0.25f32; 8];
        write_epoch(dir.path(), 1, &w, 2, 4).unwrap();
        let p = dir.path().join(epoch_file(1));
        let bytes = std::fs::read(&p).unwrap();
        // wrong shape
        let e = read_tensor(&p, WEIGHTS_TENSOR, &[4, 2]).unwrap_err().to_string();
        assert!(e.contains("epoch_0001.safetensors") && e.contains("shape"), "{e}");
        // truncated
        std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
        let e = read_tensor(&p, WEIGHTS_TENSOR, &[2, 4]).unwrap_err().to_string();
        assert!(e.contains("epoch_0001.safetensors") && e.contains("truncated"), "{e}");
        // NaN
        let mut w2 = w.clone();
        w2[5] = f32::NAN;
        write_epoch(dir.path(), 1, &w2, 2, 4).unwrap();
        let e = read_tensor(&p, WEIGHTS_TENSOR, &[2, 4]).unwrap_err().to_string();
        assert!(
            e.contains("epoch_0001.safetensors") && e.contains("row 1") && e.contains("NaN"),
            "{e}"
        );
        // missing
        let e = read_tensor(&dir.path().join(epoch_file(9)), WEIGHTS_TENSOR, &[2, 4])
            .unwrap_err()
            .to_string();
        assert!(e.contains("epoch_0009.safetensors"), "{e}");
    }

    #[test]
    fn optimizer_state_roundtrip_checks_epoch_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::engine::OptimConfig::adam(1e-3, 1e-2);
        let mut opt = Optimizer::new(cfg, 6);
        let mut p = vec![1.0f32; 6];
        opt.update(&mut p, &[0.1, -0.2, 0.3, 0.0, 1.0, -1.0]);
        write_optimizer(dir.path(), 2, &opt, 2, 3).unwrap();
        let back = read_optimizer(dir.path(), 2, Optimizer::new(cfg, 6), 2).unwrap();
        assert_eq!((back.step, &back.m, &back.v), (1, &opt.m, &opt.v));
        std::fs::rename(dir.path().join(optimizer_file(2)), dir.path().join(optimizer_file(3))).unwrap();
        assert!(read_optimizer(dir.path(), 3, Optimizer::new(cfg, 6), 2).is_err());
        let other = crate::engine::OptimConfig::adam(1e-4, 1e-2);
        let e = read_optimizer(dir.path(), 3, Optimizer::new(other, 6), 2);
        assert!(e.is_err());
    }
}
