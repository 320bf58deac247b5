//! Evaluation of a whole population on a dataset: logits from the engine with
//! [`Input::Shared`] (every model sees the same images) in chunks, so memory stays bounded;
//! per-model mean cross-entropy and accuracy, summed in f64 in a fixed order, and the population's
//! diversity as the mean pairwise disagreement of its predictions.

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
    /// Mean over the K(K−1)/2 pairs of models of the fraction of images on which their
    /// predicted classes differ; `None` for a single model.
    pub disagreement: Option<f64>,
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
    let mut pred = vec![0u16; models * n]; // [K, n] predicted classes
    for chunk in idx.chunks(EVAL_CHUNK) {
        let x = ds.to_tensor(chunk, norm); // [n, C, H, W]
        let logits = pop.logits(Input::Shared(&x), chunk.len())?; // [K, n, classes]
        for k in 0..models {
            for (r, &i) in chunk.iter().enumerate() {
                let z = &logits[(k * chunk.len() + r) * classes..(k * chunk.len() + r + 1) * classes];
                let y = ds.labels[i] as usize;
                log_softmax(z, &mut lp);
                loss[k] -= lp[y] as f64;
                let p = argmax(z);
                pred[k * n + i] = p as u16;
                if p == y {
                    correct[k] += 1;
                }
            }
        }
    }
    let disagreement = mean_pairwise_disagreement(&pred, models, n);
    let n = n.max(1) as f64;
    Ok(EvalResult {
        loss: loss.iter().map(|l| l / n).collect(),
        acc: correct.iter().map(|&c| c as f64 / n).collect(),
        disagreement,
    })
}

/// Mean over pairs of rows of `pred [K, n]` of the fraction of columns where the two differ;
/// `None` when there is no pair or no column.
pub fn mean_pairwise_disagreement(pred: &[u16], models: usize, n: usize) -> Option<f64> {
    if models < 2 || n == 0 {
        return None;
    }
    let mut differ = 0u64;
    for a in 0..models {
        let pa = &pred[a * n..(a + 1) * n];
        for b in a + 1..models {
            let pb = &pred[b * n..(b + 1) * n];
            differ += pa.iter().zip(pb).filter(|(x, y)| x != y).count() as u64;
        }
    }
    let pairs = (models * (models - 1) / 2) as f64;
    Some(differ as f64 / (pairs * n as f64))
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

#[cfg(test)]
mod tests {
    use super::mean_pairwise_disagreement;

    #[test]
    fn pairwise_disagreement_by_hand() {
        // rows: [0 0 0 0], [0 0 1 1], [1 1 1 1]: pairs differ on 2, 4 and 2 of 4 columns.
        let pred = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
        let d = mean_pairwise_disagreement(&pred, 3, 4).unwrap();
        assert!((d - 8.0 / 12.0).abs() < 1e-12, "{d}");
        assert_eq!(mean_pairwise_disagreement(&pred[..4], 1, 4), None);
        assert_eq!(mean_pairwise_disagreement(&pred, 3, 0), None);
    }
}
