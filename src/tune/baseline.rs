//! The SGD fine-tuning baseline: fine-tune K classifiers directly on a labelled dataset with the
//! population engine and Adam (the comparison column of the paper's Table 2).

use super::classify::accuracies;
use super::TuneError;
use crate::data::{Dataset, Normalization};
use crate::engine::loss::Objective;
use crate::engine::optim::{OptimConfig, Optimizer};
use crate::engine::population::{Input, Mode, Population};
use crate::engine::rng::stream;
use crate::nets::ArchSpec;
use rand::seq::index::sample as sample_indices;
use serde::{Deserialize, Serialize};

/// Settings of the baseline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SgdBaseline {
    pub iters: usize,
    pub batch: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub seed: u64,
}

/// What the baseline measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BaselineResult {
    pub before_acc: Vec<f32>,
    pub after_acc: Vec<f32>,
    pub loss: Vec<f32>,
    pub seconds: f64,
}

impl SgdBaseline {
    /// Fine-tunes `w [K, D]` in place on `train`; accuracies on `eval` (first `eval_limit` images).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        spec: &ArchSpec,
        w: &mut [f32],
        k: usize,
        train: &Dataset,
        eval: &Dataset,
        norm: &Normalization,
        eval_limit: Option<usize>,
    ) -> Result<BaselineResult, TuneError> {
        if train.is_empty() || self.batch == 0 {
            return Err(TuneError::Reward(format!(
                "{}: empty dataset or zero batch",
                train.name
            )));
        }
        let start = std::time::Instant::now();
        let threads = rayon::current_num_threads();
        let before_acc = accuracies(spec, w, k, eval, norm, eval_limit, threads)?;
        let mut opt = Optimizer::new(OptimConfig::adam(self.lr, self.weight_decay), w.len());
        let mut losses = Vec::with_capacity(self.iters);
        for it in 0..self.iters {
            let mut rng = stream(self.seed, "sgd-baseline", it as u64);
            let n = self.batch.min(train.len());
            let idx = sample_indices(&mut rng, train.len(), n).into_vec();
            let x = train.to_tensor(&idx, norm);
            let labels: Vec<u32> = idx.iter().map(|&i| train.labels[i]).collect();
            let g = {
                let pop = Population::new(spec, w, k, threads).map_err(|e| TuneError::Reward(e.to_string()))?;
                pop.gradient(
                    Input::Shared(&x),
                    n,
                    &Objective::Classify {
                        labels: &labels,
                        kinds: None,
                        weights: None,
                    },
                    Mode::Eval,
                    false,
                )
                .map_err(|e| TuneError::Reward(e.to_string()))?
            };
            losses.push(g.loss.iter().sum::<f32>() / k as f32);
            opt.update(w, &g.dw);
        }
        let after_acc = accuracies(spec, w, k, eval, norm, eval_limit, threads)?;
        Ok(BaselineResult {
            before_acc,
            after_acc,
            loss: losses,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}
