//! A fitted, saved shift detector (the alibi-detect `fit` / `save` / `load` / `predict` cycle):
//! one [`Setup`] built once from the reference set, its in-distribution banks computed for the
//! batch sizes asked for, and everything a test needs written to one self-contained directory,
//! so that many unlabeled batches can be tested without the reference set, the zoo or the
//! meta-model's source data.
//!
//! The directory `DET/`:
//! - `detector.json` — [`DetectorConfig`]: method, sizes, α, the crate version that wrote it, f's
//!   architecture and normalization, the reference images' native `[C, H, W]`, the reference
//!   set's SHA-256 fingerprint, the setup's settings;
//! - `model.safetensors` — f (tensor names = the PyTorch `state_dict` keys);
//! - `reference.npy` — P, the reference images the tests compare against, u8 `[n, 3, 32, 32]`;
//! - `banks/` — the null banks per |Q| (Detectron, Meta-Detectron);
//! - `meta/` and `context.npy` — Meta-Detectron (and its untuned ablation) only: the meta-model that fine-tunes g and the
//!   context items f was generated from, u8 `[≤ 2000, 3, 32, 32]`.
//!
//! A fit sharded with `--shard I/N` ([`Detector::fit_shard`]) writes only its parts of the banks,
//! into `DET/shards/` ([`crate::shift::bank_shards`]); the unsharded fit then merges them and
//! writes the directory above in place of `DET`.
//!
//! The statistics are those of [`Setup::test`]; this module only stores and restores a setup.
//! A directory is written into a temp sibling and renamed into place, under a [`DirLock`].

use super::pipeline::{BankShard, Method, ModelSource, Setup, SetupConfig, SetupParts};
use super::{DetectionResult, DetectronConfig, MetaDetectronConfig, ShiftError};
use crate::data::{array, npy, transform, Dataset, Normalization};
use crate::fsio::DirLock;
use crate::nets::ArchSpec;
use crate::shard::Shard;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The version of the directory format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const CONFIG_FILE: &str = "detector.json";
const MODEL_FILE: &str = "model.safetensors";
const REFERENCE_FILE: &str = "reference.npy";
const CONTEXT_FILE: &str = "context.npy";
const BANKS_DIR: &str = "banks";
const META_DIR: &str = "meta";
const SHARDS_DIR: &str = "shards";
/// The folder where the shards of a sharded `detector fit --out DET --shard I/N` build their parts
/// of the banks (`DET/shards`); the unsharded fit merges them and replaces `DET` with the
/// detector.
pub fn shard_dir(dir: &Path) -> PathBuf {
    dir.join(SHARDS_DIR)
}

/// Whether `dir` holds nothing but the shard parts of a sharded fit (and lock files).
fn only_shards(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(|e| e.ok()).all(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name == SHARDS_DIR || crate::fsio::is_lock_file(&name)
        })
    })
}

/// The meta-model files [`crate::flow::MetaModel::load`] reads.
const META_FILES: [&str; 2] = ["config.json", "model.safetensors"];

/// The settings of the [`Setup`] a detector was fitted with (those that shape its statistics).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedSetup {
    pub n_reference: usize,
    pub null_pool: usize,
    pub null_runs: usize,
    #[serde(default)]
    pub p_images: usize,
    #[serde(default)]
    pub null_data: Option<String>,
    pub model_seed: u64,
    pub steps: Option<usize>,
    pub detectron: DetectronConfig,
    pub mmd_permutations: usize,
    pub mmd_pixels: bool,
    pub meta_detectron: MetaDetectronConfig,
}

impl SavedSetup {
    fn from_config(c: &SetupConfig) -> Self {
        SavedSetup {
            n_reference: c.n_reference,
            null_pool: c.null_pool,
            null_runs: c.null_runs,
            p_images: c.p_images,
            null_data: c.null_data.clone(),
            model_seed: c.model_seed,
            steps: c.steps,
            detectron: c.detectron.clone(),
            mmd_permutations: c.mmd_permutations,
            mmd_pixels: c.mmd_pixels,
            meta_detectron: c.meta_detectron.clone(),
        }
    }

    fn to_config(&self, threads: usize, quiet: bool) -> SetupConfig {
        SetupConfig {
            n_reference: self.n_reference,
            null_pool: self.null_pool,
            null_runs: self.null_runs,
            p_images: self.p_images,
            null_data: self.null_data.clone(),
            model_seed: self.model_seed,
            steps: self.steps,
            detectron: DetectronConfig {
                threads: threads.max(1),
                ..self.detectron.clone()
            },
            mmd_permutations: self.mmd_permutations,
            mmd_pixels: self.mmd_pixels,
            meta_detectron: self.meta_detectron.clone(),
            quiet,
        }
    }
}

/// The reference set a detector was fitted on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceInfo {
    /// The dataset spec (or `array` for an in-memory array).
    pub spec: String,
    /// Images in the reference set.
    pub images: usize,
    /// Their native `[C, H, W]` (before the conversion to 3×32×32); queries must match it.
    pub shape: [usize; 3],
    /// SHA-256 of the converted u8 images `[N, 3, 32, 32]` and their shape.
    pub sha256: String,
}

/// `detector.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    pub format_version: u32,
    /// The weightflow version that fitted the detector; another version refuses to load it.
    pub crate_version: String,
    /// A short hash of f, the reference set and the settings: the detector's name in results.
    pub id: String,
    pub method: String,
    /// The batch sizes |Q| the banks were computed for (any size for bbsd and mmd).
    pub sizes: Vec<usize>,
    pub alpha: f64,
    /// Where f came from (`model FILE` or `meta DIR`, as given at fit time).
    pub model_source: String,
    pub arch: ArchSpec,
    pub normalization: Normalization,
    pub reference: ReferenceInfo,
    /// The setup's cache key (bank files are `banks/<key>.*`).
    pub key: String,
    pub setup: SavedSetup,
}

/// The smallest p-value `method` can give with `runs` null runs (Detectron, Meta-Detectron) or
/// `permutations` (MMD): 1/(n + 1); None for the methods without a null sample.
pub fn min_p_value(method: Method, null_runs: usize, md_null_runs: usize, permutations: usize) -> Option<f64> {
    let n = match method {
        Method::Detectron => null_runs,
        Method::MetaDetectron | Method::MetaDetectronUntuned => md_null_runs,
        Method::Mmd => permutations,
        _ => return None,
    };
    Some(1.0 / (n as f64 + 1.0))
}

/// A warning when no p-value of `method` under `cfg` can fall below α (it can never report a
/// shift).
pub fn alpha_warning(method: Method, cfg: &SetupConfig) -> Option<String> {
    let alpha = cfg.detectron.alpha;
    let p = min_p_value(
        method,
        cfg.null_runs,
        cfg.meta_detectron.null_runs,
        cfg.mmd_permutations,
    )?;
    (p > alpha).then(|| {
        format!(
            "the null bank cannot reach alpha: its smallest p-value is {p:.4} > alpha = {alpha}; \
             use more null runs (at least {})",
            (1.0 / alpha).ceil() as usize
        )
    })
}

impl DetectorConfig {
    /// A warning when no p-value can fall below α (the detector can never report a shift).
    pub fn alpha_warning(&self) -> Option<String> {
        let mut cfg = self.setup.to_config(1, true);
        cfg.detectron.alpha = self.alpha;
        alpha_warning(self.method()?, &cfg)
    }

    fn method(&self) -> Option<Method> {
        self.method.parse().ok()
    }

    /// Whether the method needs a bank per batch size.
    fn needs_banks(&self) -> bool {
        self.method()
            .is_some_and(|m| m == Method::Detectron || m.is_meta_detectron())
    }
}

/// A fitted detector: its configuration and the rebuilt setup.
pub struct Detector {
    pub config: DetectorConfig,
    method: Method,
    setup: Setup,
    /// The directory the banks are in (a temp folder until saved, removed on drop).
    banks: PathBuf,
    owns_banks: bool,
    /// The meta-model directory to copy into a saved detector.
    meta_dir: Option<PathBuf>,
}

impl Drop for Detector {
    fn drop(&mut self) {
        if self.owns_banks {
            let _ = std::fs::remove_dir_all(&self.banks);
        }
    }
}

fn invalid(msg: impl Into<String>) -> ShiftError {
    ShiftError::Invalid(msg.into())
}

fn io(path: &Path, e: impl std::fmt::Display) -> ShiftError {
    invalid(format!("{}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a dataset's images and shape.
fn fingerprint(ds: &Dataset) -> String {
    let mut h = Sha256::new();
    h.update(format!("{:?}", ds.shape));
    h.update(&ds.images);
    hex(&h.finalize())
}

/// A fresh temp directory for the banks of a detector being fitted.
fn temp_banks() -> Result<PathBuf, ShiftError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("weightflow-detector-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    Ok(dir)
}

/// u8 `[n, C, H, W]` images as an `.npy` buffer.
fn images_npy(ds: &Dataset) -> Vec<u8> {
    let [c, h, w] = ds.shape;
    npy::write_npy("|u1", &[ds.len(), c, h, w], &ds.images)
}

fn read_images(path: &Path) -> Result<Dataset, ShiftError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let x = npy::parse_npy(path, &bytes)?;
    Ok(array::unlabeled_from_npy(&path.display().to_string(), path, &x)?)
}

/// Items on [0, 1] `[n, C, H, W]` back to u8 pixels (exact for items made by `p / 255`).
fn items_to_dataset(items: &[f32], shape: [usize; 3]) -> Result<Dataset, ShiftError> {
    let px = items
        .iter()
        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    Ok(Dataset::unlabeled("context", px, shape)?)
}

/// What a detector is fitted from: the method, f, the reference set and the settings.
pub struct FitInputs<'a> {
    pub method: Method,
    /// Where f comes from (a model file or a meta-model).
    pub source: &'a ModelSource,
    /// The reference set, already loaded from `reference_spec`.
    pub reference: Dataset,
    pub reference_spec: &'a str,
    /// The reference images' shape as stored, before conversion to f's input.
    pub native_shape: [usize; 3],
    /// The query sizes |Q| to build banks for.
    pub sizes: &'a [usize],
    pub cfg: SetupConfig,
}

impl Detector {
    /// Fits `method` with f from `source` against `reference` (already loaded from
    /// `reference_spec`, native shape `native_shape`): builds the setup and computes the banks for
    /// every size in `sizes`.
    pub fn fit(
        method: Method,
        source: &ModelSource,
        reference: Dataset,
        reference_spec: &str,
        native_shape: [usize; 3],
        sizes: &[usize],
        cfg: SetupConfig,
    ) -> Result<Detector, ShiftError> {
        let inputs = FitInputs {
            method,
            source,
            reference,
            reference_spec,
            native_shape,
            sizes,
            cfg,
        };
        Self::fit_in(inputs, None)
    }

    /// [`Detector::fit`] with the banks computed in the folder `banks` (kept), e.g. a sharded
    /// fit's `DET/shards` ([`shard_dir`]), whose shard parts are merged into the banks when every
    /// shard is done (an error names those missing); `None`: a temp folder.
    pub fn fit_in(inputs: FitInputs<'_>, banks: Option<&Path>) -> Result<Detector, ShiftError> {
        let method = inputs.method;
        let det = Self::prepare(inputs, banks)?;
        let quiet = det.setup.cfg.quiet;
        for &n in &det.config.sizes {
            match method {
                Method::Detectron => {
                    det.setup.null_bank(n)?;
                }
                Method::MetaDetectron | Method::MetaDetectronUntuned => {
                    det.setup.meta_bank(method, n)?;
                }
                _ => {}
            }
            if !quiet && det.config.needs_banks() {
                eprintln!("{}: bank for |Q| = {n} ready", det.config.method);
            }
        }
        Ok(det)
    }

    /// Builds (or resumes) the part of `shard` of every bank of the detector in the folder
    /// `banks` ([`Setup::bank_shard`]) and nothing else: no detector is saved. Returns the
    /// detector's configuration and what was built per size.
    pub fn fit_shard(
        inputs: FitInputs<'_>,
        banks: &Path,
        shard: Shard,
    ) -> Result<(DetectorConfig, Vec<BankShard>), ShiftError> {
        let method = inputs.method;
        let det = Self::prepare(inputs, Some(banks))?;
        let built = det
            .config
            .sizes
            .iter()
            .map(|&n| det.setup.bank_shard(method, n, shard))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((det.config.clone(), built))
    }

    /// The setup and configuration of a detector, its banks not computed yet.
    fn prepare(inputs: FitInputs<'_>, banks: Option<&Path>) -> Result<Detector, ShiftError> {
        let FitInputs {
            method,
            source,
            reference,
            reference_spec,
            native_shape,
            sizes,
            cfg,
        } = inputs;
        if method == Method::Oracle {
            return Err(invalid(
                "the label oracle reads the query's true labels: it is no detector for unlabeled batches",
            ));
        }
        if method == Method::Detectron && cfg.detectron.budget == super::Budget::Official {
            return Err(invalid(
                "a saved detector runs Detectron with `--budget fast` only: the official budget's P \
                 (f's whole training split) is not stored in a detector directory",
            ));
        }
        if method.is_meta_detectron() && cfg.meta_detectron.p_labels == super::PLabels::True {
            return Err(invalid(
                "a saved detector stores P without its labels: fit Meta-Detectron with \
                 `--md-p-labels predicted`",
            ));
        }
        if sizes.is_empty() || sizes.contains(&0) {
            return Err(invalid(format!("--sizes {sizes:?}: give one or more batch sizes ≥ 1")));
        }
        let mut sizes = sizes.to_vec();
        sizes.sort_unstable();
        sizes.dedup();
        let reference_info = ReferenceInfo {
            spec: reference_spec.to_string(),
            images: reference.len(),
            shape: native_shape,
            sha256: fingerprint(&reference),
        };
        let alpha = cfg.detectron.alpha;
        let mut setup = Setup::with_reference(source, reference, reference_spec, cfg)?;
        let meta_dir = setup.meta_dir().map(Path::to_path_buf);
        if method.is_meta_detectron() && meta_dir.is_none() {
            return Err(invalid(format!("{method} needs the meta-model (--meta) to fine-tune")));
        }
        let owns_banks = banks.is_none();
        let banks = match banks {
            Some(b) => {
                std::fs::create_dir_all(b).map_err(|e| io(b, e))?;
                b.to_path_buf()
            }
            None => temp_banks()?,
        };
        setup.cache_dir = banks.clone();
        let model_source = match source {
            ModelSource::Meta(d) => format!("meta {}", d.display()),
            ModelSource::File { path, .. } => format!("model {}", path.display()),
        };
        let saved = SavedSetup::from_config(&setup.cfg);
        let mut h = Sha256::new();
        h.update(&setup.key);
        h.update(&reference_info.sha256);
        h.update(method.name());
        h.update(serde_json::to_string(&saved).unwrap_or_default());
        h.update(format!("{sizes:?}"));
        let config = DetectorConfig {
            format_version: FORMAT_VERSION,
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            id: hex(&h.finalize()[..6]),
            method: method.name().to_string(),
            sizes: sizes.clone(),
            alpha,
            model_source,
            arch: setup.spec.clone(),
            normalization: setup.norm,
            reference: reference_info,
            key: setup.key.clone(),
            setup: saved,
        };
        let det = Detector {
            config,
            method,
            setup,
            banks,
            owns_banks,
            meta_dir,
        };
        Ok(det)
    }

    /// Writes the detector to `dir` (created; an existing detector there is replaced) through a
    /// temp sibling and one rename, holding the lock `.lock.<name>` beside `dir` (a lock inside
    /// `dir` would not survive its replacement).
    pub fn save(&self, dir: &Path) -> Result<(), ShiftError> {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dir
            .file_name()
            .ok_or_else(|| invalid(format!("{}: not a directory name", dir.display())))?
            .to_string_lossy()
            .to_string();
        std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
        let lock = DirLock::acquire_named(&parent, &format!(".lock.{name}")).map_err(|e| io(dir, e))?;
        let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let written = self.write_into(&tmp).and_then(|()| {
            if dir.exists() {
                if !dir.join(CONFIG_FILE).is_file() && !only_shards(dir) {
                    return Err(invalid(format!(
                        "{} exists and is not a detector directory; choose another --out",
                        dir.display()
                    )));
                }
                std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
            }
            std::fs::rename(&tmp, dir).map_err(|e| io(dir, e))
        });
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        drop(lock);
        written
    }

    fn write_into(&self, tmp: &Path) -> Result<(), ShiftError> {
        let put = |rel: &str, bytes: &[u8]| {
            let p = tmp.join(rel);
            crate::fsio::write_atomic(&p, bytes).map_err(|e| io(&p, e))
        };
        let json = serde_json::to_vec_pretty(&self.config).map_err(|e| invalid(e.to_string()))?;
        put(CONFIG_FILE, &json)?;
        let w = &self.setup.weights;
        let layout = self.setup.spec.layout();
        let tensors: Vec<(&str, Vec<usize>, &[f32])> = layout
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.shape.clone(), &w[e.range()]))
            .collect();
        let meta = serde_json::json!({
            "arch": self.config.arch.name, "architecture": self.config.arch,
            "normalization": self.config.normalization, "detector": self.config.id,
        })
        .to_string();
        let st = crate::zoo::store::safetensors_bytes(&tensors, &meta).map_err(invalid)?;
        put(MODEL_FILE, &st)?;
        put(REFERENCE_FILE, &images_npy(&self.setup.p_images()))?;
        std::fs::create_dir_all(tmp.join(BANKS_DIR)).map_err(|e| io(tmp, e))?;
        for entry in std::fs::read_dir(&self.banks).map_err(|e| io(&self.banks, e))? {
            let p = entry.map_err(|e| io(&self.banks, e))?.path();
            let fname = p
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default();
            let part = fname.contains(".shard-");
            if p.is_file() && fname.ends_with(".json") && !part && crate::fsio::temp_target(&fname).is_none() {
                let bytes = std::fs::read(&p).map_err(|e| io(&p, e))?;
                put(&format!("{BANKS_DIR}/{fname}"), &bytes)?;
            }
        }
        if self.method.is_meta_detectron() {
            let Some(src) = &self.meta_dir else {
                return Err(invalid(format!("{} needs the meta-model", self.method)));
            };
            for f in META_FILES {
                let p = src.join(f);
                let bytes = std::fs::read(&p).map_err(|e| io(&p, e))?;
                put(&format!("{META_DIR}/{f}"), &bytes)?;
            }
            let ctx = items_to_dataset(self.setup.context_items(), self.setup.reference.shape)?;
            put(CONTEXT_FILE, &images_npy(&ctx))?;
        }
        Ok(())
    }

    /// Reads the configuration of the detector in `dir`, refusing another format or crate version.
    pub fn read_config(dir: &Path) -> Result<DetectorConfig, ShiftError> {
        let path = dir.join(CONFIG_FILE);
        let bytes = std::fs::read(&path).map_err(|e| {
            io(
                &path,
                format!("{e} (is {} a directory written by `detector fit`?)", dir.display()),
            )
        })?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| io(&path, e))?;
        let version = v.get("crate_version").and_then(|s| s.as_str()).unwrap_or("?");
        let format = v.get("format_version").and_then(|s| s.as_u64()).unwrap_or(0);
        let ours = env!("CARGO_PKG_VERSION");
        if version != ours || format != FORMAT_VERSION as u64 {
            return Err(invalid(format!(
                "detector {} was fitted by weightflow {version} (format {format}); this is weightflow {ours} \
                 (format {FORMAT_VERSION}): refit it with `weightflow detector fit`",
                dir.display()
            )));
        }
        serde_json::from_value(v).map_err(|e| io(&path, e))
    }

    /// Loads the detector saved in `dir`; tests run with `threads` worker threads.
    pub fn load(dir: &Path, threads: usize, quiet: bool) -> Result<Detector, ShiftError> {
        let config = Self::read_config(dir)?;
        let method: Method = config.method.parse()?;
        let model = dir.join(MODEL_FILE);
        let layout = config.arch.layout();
        let mut weights = vec![0f32; layout.dim()];
        for e in &layout.entries {
            let (v, _) = crate::zoo::store::read_tensor(&model, &e.name, &e.shape)?;
            weights[e.range()].copy_from_slice(&v);
        }
        let p_images = read_images(&dir.join(REFERENCE_FILE))?;
        let (context, meta_dir) = if method.is_meta_detectron() {
            let ctx = read_images(&dir.join(CONTEXT_FILE))?;
            let all: Vec<usize> = (0..ctx.len()).collect();
            (
                Some(ctx.to_tensor(&all, &Normalization::IDENTITY)),
                Some(dir.join(META_DIR)),
            )
        } else {
            (None, None)
        };
        let banks = dir.join(BANKS_DIR);
        let setup = Setup::from_parts(SetupParts {
            spec: config.arch.clone(),
            weights,
            norm: config.normalization,
            p_images,
            context,
            cache_dir: banks.clone(),
            key: config.key.clone(),
            cfg: config.setup.to_config(threads, quiet),
            meta_dir: meta_dir.clone(),
        })?;
        Ok(Detector {
            config,
            method,
            setup,
            banks,
            owns_banks: false,
            meta_dir,
        })
    }

    /// The method the detector runs.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Tests one batch `q`, already converted to the common input (`native_shape` is its shape
    /// before the conversion, checked against the reference's), with the test seed `seed`.
    /// The result is the method's usual one (Detectron: the entropy test, with the disagreement
    /// test nested) plus `detector` (the id), `alpha_reachable` and, when it is false, `warning`.
    pub fn test(&self, q: &Dataset, native_shape: [usize; 3], seed: u64) -> Result<DetectionResult, ShiftError> {
        // the same size; colour only where the reference has it (gray images stored as RGB, as
        // PNG folders often are, are gray)
        let want = self.config.reference.shape;
        let colour_on_gray = want[0] == 1 && native_shape[0] == 3 && !is_gray(q);
        if native_shape[1..] != want[1..] || colour_on_gray {
            return Err(ShiftError::Shape(format!(
                "{}: {}images of {native_shape:?} (C, H, W); this detector was fitted on {want:?} images",
                q.name,
                if colour_on_gray { "colour " } else { "" }
            )));
        }
        let n = q.len();
        if self.config.needs_banks() && !self.config.sizes.contains(&n) {
            return Err(invalid(format!(
                "{}: a batch of {n} images; this {} detector holds null banks for |Q| ∈ {:?} only \
                 (refit with --sizes including {n})",
                q.name, self.config.method, self.config.sizes
            )));
        }
        let all: Vec<usize> = (0..n).collect();
        let x = q.to_tensor(&all, &self.setup.norm);
        let labels = q.is_labeled().then_some(&q.labels[..]);
        let results = self.setup.test(self.method, &x, labels, seed)?;
        let r = results
            .into_iter()
            .next()
            .ok_or_else(|| invalid(format!("{} gave no result", self.config.method)))?;
        let warning = self.config.alpha_warning();
        let mut r = r
            .with("detector", self.config.id.clone())
            .with("alpha_reachable", warning.is_none());
        if let Some(w) = warning {
            r = r.with("warning", w);
        }
        Ok(r)
    }

    /// [`Detector::test`] on a caller's image buffer of `ty` and `shape` (NHWC or NCHW, see
    /// [`array`]), e.g. a NumPy array.
    pub fn test_buffer(
        &self,
        name: &str,
        ty: array::PixelType,
        shape: &[usize],
        data: &[u8],
        seed: u64,
    ) -> Result<DetectionResult, ShiftError> {
        let (ds, native) = buffer_dataset(name, ty, shape, data)?;
        self.test(&ds, native, seed)
    }
}

/// Whether every image of `ds` has three equal channels (or one).
fn is_gray(ds: &Dataset) -> bool {
    let [c, h, w] = ds.shape;
    let plane = h * w;
    c == 1
        || ds
            .images
            .chunks_exact(c * plane)
            .all(|img| (1..c).all(|k| img[k * plane..(k + 1) * plane] == img[..plane]))
}

/// An unlabeled dataset in the common input from a caller's buffer, with its native shape.
pub fn buffer_dataset(
    name: &str,
    ty: array::PixelType,
    shape: &[usize],
    data: &[u8],
) -> Result<(Dataset, [usize; 3]), ShiftError> {
    let (px, native) = array::images_from_buffer(name, ty, shape, data).map_err(ShiftError::Shape)?;
    let ds = transform::to_common(Dataset::unlabeled(name, px, native)?)?;
    Ok((ds, native))
}
