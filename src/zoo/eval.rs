//! Evaluation of a whole population on a dataset: logits from the engine with
//! [`Input::Shared`] (every model sees the same images) in chunks, so memory stays bounded;
//! per-model mean cross-entropy and accuracy, summed in f64 in a fixed order.

use super::ZooError;
use crate::data::{Dataset, Normalization};
use crate::engine::loss::log_softmax;
use crate::engine::{Input, Population};
use crate::nets::ArchSpec;

/// Images per engine call during evaluation.
pub const EVAL_CHUNK: usize = 250;

/// Mean loss and accuracy of each model.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    /// `[K]` mean cross-entropy.
    pub loss: Vec<f64>,
    /// `[K]` accuracy in [0, 1].
    pub acc: Vec<f64>,
}

/// Evaluates the K models `w [K, D]` of `spec` on all of `ds` (normalized with `norm`).
pub fn evaluate(
    spec: &ArchSpec,
    w: &[f32],
    models: usize,
    ds: &Dataset,
    norm: &Normalization,
    threads: usize,
) -> Result<EvalResult, ZooError> {
    let classes = spec.num_classes();
    if ds.shape != spec.input {
        return Err(ZooError::Data {
            spec: ds.name.clone(),
            reason: format!("images are {:?}, the architecture takes {:?}", ds.shape, spec.input),
        });
    }
    if let Some(&y) = ds.labels.iter().find(|&&y| y as usize >= classes) {
        return Err(ZooError::Data {
            spec: ds.name.clone(),
            reason: format!("label {y} but the models have {classes} classes"),
        });
    }
    let pop = Population::new(spec, w, models, threads)?;
    let n = ds.len();
    let mut loss = vec![0f64; models];
    let mut correct = vec![0usize; models];
    let mut lp = vec![0f32; classes];
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(EVAL_CHUNK) {
        let x = ds.to_tensor(chunk, norm); // [n, C, H, W]
        let logits = pop.logits(Input::Shared(&x), chunk.len())?; // [K, n, classes]
        for k in 0..models {
            for (r, &i) in chunk.iter().enumerate() {
                let z = &logits[(k * chunk.len() + r) * classes..(k * chunk.len() + r + 1) * classes];
                let y = ds.labels[i] as usize;
                log_softmax(z, &mut lp);
                loss[k] -= lp[y] as f64;
                if argmax(z) == y {
                    correct[k] += 1;
                }
            }
        }
    }
    let n = n.max(1) as f64;
    Ok(EvalResult {
        loss: loss.iter().map(|l| l / n).collect(),
        acc: correct.iter().map(|&c| c as f64 / n).collect(),
    })
}

/// Index of the largest value (the first on ties).
pub fn argmax(z: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = j;
        }
    }
    best
}
