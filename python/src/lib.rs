//! `weightflow._native`: the Rust side of the Python package. Arrays cross as
//! `(dtype, shape, bytes)` triples (the pure-Python `weightflow` package converts NumPy arrays),
//! results as JSON strings; every computation is the crate's own, run with the GIL released.

// pyo3 0.22's macros test cfgs newer compilers do not know, and convert PyErr into itself
#![allow(unexpected_cfgs, clippy::useless_conversion)]

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::PathBuf;

use weightflow::data::array::PixelType;
use weightflow::data::{DatasetSpec, Normalization};
use weightflow::nets::{Activation, ArchSpec};
use weightflow::shift::detector::buffer_dataset;
use weightflow::shift::{DetectronConfig, MetaDetectronConfig, Method, ModelSource, SetupConfig};

create_exception!(
    _native,
    WeightflowError,
    PyException,
    "An error reported by weightflow."
);

fn err(e: impl std::fmt::Display) -> PyErr {
    WeightflowError::new_err(e.to_string())
}

fn pixel_type(dtype: &str) -> PyResult<PixelType> {
    match dtype {
        "uint8" => Ok(PixelType::U8),
        "float32" => Ok(PixelType::F32),
        "float64" => Ok(PixelType::F64),
        other => Err(err(format!(
            "images must be uint8, float32 or float64, dtype is {other}"
        ))),
    }
}

fn threads_or_all(threads: Option<usize>) -> usize {
    threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// A fitted shift detector (see `weightflow.Detector`).
#[pyclass(module = "weightflow._native", name = "Detector")]
struct PyDetector {
    inner: weightflow::shift::Detector,
}

#[pymethods]
impl PyDetector {
    /// Fits a detector; the reference is a dataset spec or an image buffer.
    #[staticmethod]
    #[pyo3(signature = (method, sizes, model=None, meta=None, reference_spec=None, reference_array=None,
                        n_reference=300, null_runs=20, alpha=0.05, model_seed=0, threads=None, quiet=true))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        py: Python<'_>,
        method: &str,
        sizes: Vec<usize>,
        model: Option<PathBuf>,
        meta: Option<PathBuf>,
        reference_spec: Option<String>,
        reference_array: Option<(String, Vec<usize>, Bound<'_, PyBytes>)>,
        n_reference: usize,
        null_runs: usize,
        alpha: f64,
        model_seed: u64,
        threads: Option<usize>,
        quiet: bool,
    ) -> PyResult<PyDetector> {
        let method: Method = method.parse().map_err(err)?;
        let source = match (model, meta) {
            (Some(path), meta) => ModelSource::File { path, meta },
            (None, Some(dir)) => ModelSource::Meta(dir),
            (None, None) => {
                return Err(err(
                    "give model= (a safetensors file) or meta= (a meta-model directory)",
                ))
            }
        };
        let (spec, array) = match (&reference_spec, &reference_array) {
            (Some(spec), None) => (spec.clone(), None),
            (None, Some((dtype, shape, data))) => (
                "array".to_string(),
                Some((pixel_type(dtype)?, shape.clone(), data.as_bytes())),
            ),
            _ => return Err(err("give the reference as a dataset spec string or as an image array")),
        };
        let threads = threads_or_all(threads);
        let cfg = SetupConfig {
            n_reference,
            null_runs,
            model_seed,
            detectron: DetectronConfig {
                alpha,
                threads,
                // A saved detector keeps P's n-reference images only: the fast budget.
                ..DetectronConfig::for_budget(weightflow::shift::Budget::Fast)
            },
            meta_detectron: MetaDetectronConfig {
                alpha,
                null_runs,
                ..MetaDetectronConfig::default()
            },
            quiet,
            ..SetupConfig::default()
        };
        let inner = py
            .allow_threads(|| {
                let (ds, native) = match array {
                    None => DatasetSpec::parse(&spec)
                        .and_then(|s| s.load_with_native_shape())
                        .map_err(|e| e.to_string())?,
                    Some((ty, shape, data)) => {
                        buffer_dataset("reference array", ty, &shape, data).map_err(|e| e.to_string())?
                    }
                };
                weightflow::shift::Detector::fit(method, &source, ds, &spec, native, &sizes, cfg)
                    .map_err(|e| e.to_string())
            })
            .map_err(err)?;
        Ok(PyDetector { inner })
    }

    /// Loads a detector directory written by `save` or `weightflow detector fit`.
    #[staticmethod]
    #[pyo3(signature = (dir, threads=None))]
    fn load(py: Python<'_>, dir: PathBuf, threads: Option<usize>) -> PyResult<PyDetector> {
        let threads = threads_or_all(threads);
        let inner = py
            .allow_threads(|| weightflow::shift::Detector::load(&dir, threads, true).map_err(|e| e.to_string()))
            .map_err(err)?;
        Ok(PyDetector { inner })
    }

    /// Writes the detector directory.
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        py.allow_threads(|| self.inner.save(&dir).map_err(|e| e.to_string()))
            .map_err(err)
    }

    /// Tests one batch given as `(dtype, shape, bytes)`; returns the result as JSON.
    #[pyo3(signature = (dtype, shape, data, seed=0))]
    fn test(
        &self,
        py: Python<'_>,
        dtype: &str,
        shape: Vec<usize>,
        data: Bound<'_, PyBytes>,
        seed: u64,
    ) -> PyResult<String> {
        let ty = pixel_type(dtype)?;
        let data = data.as_bytes();
        py.allow_threads(|| {
            let r = self
                .inner
                .test_buffer("batch", ty, &shape, data, seed)
                .map_err(|e| e.to_string())?;
            serde_json::to_string(&r).map_err(|e| e.to_string())
        })
        .map_err(err)
    }

    /// The detector's configuration (`detector.json`) as JSON.
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner.config).map_err(err)
    }
}

/// A trained meta-model (see `weightflow.MetaModel`).
#[pyclass(module = "weightflow._native", name = "MetaModel")]
struct PyMetaModel {
    inner: weightflow::flow::MetaModel,
}

#[pymethods]
impl PyMetaModel {
    /// Loads a meta-model directory (`weightflow flow train --out`).
    #[staticmethod]
    fn load(py: Python<'_>, dir: PathBuf) -> PyResult<PyMetaModel> {
        let inner = py
            .allow_threads(|| weightflow::flow::MetaModel::load(&dir).map_err(|e| e.to_string()))
            .map_err(err)?;
        Ok(PyMetaModel { inner })
    }

    /// `n` weight vectors conditioned on the context images `(dtype, shape, bytes)`: returns
    /// `(bytes of f32 [n, D], D)`.
    #[pyo3(signature = (dtype, shape, data, n, seed=0, steps=None))]
    #[allow(clippy::too_many_arguments)]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        dtype: &str,
        shape: Vec<usize>,
        data: Bound<'py, PyBytes>,
        n: usize,
        seed: u64,
        steps: Option<usize>,
    ) -> PyResult<(Bound<'py, PyBytes>, usize)> {
        let ty = pixel_type(dtype)?;
        let data = data.as_bytes();
        let m = &self.inner;
        let x = py
            .allow_threads(|| {
                let (ds, _) = buffer_dataset("context", ty, &shape, data).map_err(|e| e.to_string())?;
                let items = weightflow::shift::pipeline::context_items(&ds, 2000, seed);
                weightflow::flow::sample(
                    m,
                    &items,
                    n,
                    steps.unwrap_or(m.config.sample_steps),
                    m.config.solver,
                    seed,
                )
                .map(|s| s.x)
                .map_err(|e| e.to_string())
            })
            .map_err(err)?;
        let d = x.len().checked_div(n).unwrap_or(0);
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok((PyBytes::new_bound(py, &bytes), d))
    }

    /// The architecture the meta-model generates, as JSON (null when it generates no networks).
    fn arch_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner.space.arch).map_err(err)
    }

    /// The input normalization of the meta-model's first training group, as JSON.
    fn normalization_json(&self) -> PyResult<String> {
        let n = self
            .inner
            .groups
            .first()
            .and_then(|g| g.normalization)
            .unwrap_or(Normalization::IDENTITY);
        serde_json::to_string(&n).map_err(err)
    }
}

fn arch_spec(arch: &str, in_ch: usize, classes: usize) -> PyResult<ArchSpec> {
    if arch.trim_start().starts_with('{') {
        serde_json::from_str(arch).map_err(|e| err(format!("arch: {e}")))
    } else {
        ArchSpec::by_name(arch, in_ch, classes, Activation::Relu).map_err(err)
    }
}

/// Writes one weight vector (f32 `[D]` bytes) of `arch` as a self-contained safetensors file
/// (tensor names = PyTorch `state_dict` keys; architecture and normalization in the metadata),
/// usable as `Detector.fit(model=...)` and `weightflow detector fit --model`.
#[pyfunction]
#[pyo3(signature = (path, weights, arch="cnn3", in_ch=3, classes=10, mean=[0.0; 3], std=[1.0; 3]))]
#[allow(clippy::too_many_arguments)]
fn save_model(
    py: Python<'_>,
    path: PathBuf,
    weights: Bound<'_, PyBytes>,
    arch: &str,
    in_ch: usize,
    classes: usize,
    mean: [f32; 3],
    std: [f32; 3],
) -> PyResult<()> {
    let spec = arch_spec(arch, in_ch, classes)?;
    let w: Vec<f32> = weights
        .as_bytes()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    weightflow::nets::validate_weights(&spec, &w, 1, "weights").map_err(err)?;
    py.allow_threads(|| {
        let layout = spec.layout();
        let tensors: Vec<(&str, Vec<usize>, &[f32])> = layout
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.shape.clone(), &w[e.range()]))
            .collect();
        let meta = serde_json::json!({
            "arch": spec.name, "architecture": spec, "normalization": Normalization { mean, std },
        })
        .to_string();
        let bytes = weightflow::zoo::store::safetensors_bytes(&tensors, &meta)?;
        weightflow::fsio::write_atomic(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
    })
    .map_err(err)
}

/// `[(name, shape, offset)]` of the PyTorch `state_dict` of `arch` (JSON of an `ArchSpec`, or
/// `cnn3`/`small-cnn`/`mlp` with `in_ch` and `classes`).
#[pyfunction]
#[pyo3(signature = (arch="cnn3", in_ch=3, classes=10))]
fn state_dict_layout(arch: &str, in_ch: usize, classes: usize) -> PyResult<Vec<(String, Vec<usize>, usize)>> {
    let layout = arch_spec(arch, in_ch, classes)?.layout();
    Ok(layout
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.shape.clone(), e.range().start))
        .collect())
}

/// The crate version the bindings were built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDetector>()?;
    m.add_class::<PyMetaModel>()?;
    m.add_function(wrap_pyfunction!(state_dict_layout, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(save_model, m)?)?;
    m.add("WeightflowError", m.py().get_type_bound::<WeightflowError>())?;
    Ok(())
}
