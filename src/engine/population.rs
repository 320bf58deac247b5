//! Population forward and backward over `W[K, D]` for any [`ArchSpec`].
//!
//! Each model runs on one thread over chunks of [`CHUNK`] samples, in sample order, so every
//! reduction (weight gradients over samples, the loss) has a fixed order: results are bitwise
//! identical for any thread count. With `threads > 1` models are spread over the rayon pool
//! (the global one unless the caller installs another).

use rayon::prelude::*;

use crate::engine::layers::{self, conv, nchw_to_nhwc, nhwc_to_nchw, First, Op, Plan, Workspace};
use crate::engine::loss::{Objective, SampleLoss};
use crate::nets::{ArchSpec, NetError};

/// Samples per chunk of one model's forward/backward (bounds the working memory; small enough
/// that a chunk's buffers stay in L2).
pub const CHUNK: usize = 16;

/// Samples per super-chunk: a shared input is prepared once per super-chunk for all models.
pub const SUPER: usize = 256;

/// Input images, NCHW f32 (already normalized).
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// One batch `[N, C, H, W]` seen by every model.
    Shared(&'a [f32]),
    /// One batch per model `[K, N, C, H, W]`.
    PerModel(&'a [f32]),
}

/// Evaluation (dropout off) or training (dropout on, masks seeded per model and call).
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a> {
    Eval,
    /// `seeds[k]` seeds model k's dropout masks for this call.
    Train {
        seeds: &'a [u64],
    },
}

/// Result of [`Population::gradient`].
#[derive(Clone, Debug, Default)]
pub struct Gradients {
    /// Loss per model `[K]`.
    pub loss: Vec<f32>,
    /// ∂L_k/∂W_k `[K, D]`.
    pub dw: Vec<f32>,
    /// ∂L_k/∂x for each model, `[K, N, C, H, W]`, when asked.
    pub dx: Option<Vec<f32>>,
    /// Logits `[K, N, classes]`.
    pub logits: Vec<f32>,
}

/// K models of one architecture, weights borrowed as `W[K, D]`.
pub struct Population<'a> {
    pub spec: &'a ArchSpec,
    pub weights: &'a [f32],
    pub models: usize,
    /// Worker threads (≥ 1); 1 runs everything on the calling thread.
    pub threads: usize,
}

/// What one model's task writes.
struct ModelOut<'o> {
    k: usize,
    logits: &'o mut [f32],
    dw: Option<&'o mut [f32]>,
    dx: Option<&'o mut [f32]>,
    loss: &'o mut f32,
}

impl<'a> Population<'a> {
    /// Wraps `weights` after checking their length is K·D and all are finite.
    pub fn new(spec: &'a ArchSpec, weights: &'a [f32], models: usize, threads: usize) -> Result<Self, NetError> {
        spec.shapes()?;
        crate::nets::validate_weights(spec, weights, models, "population weights")?;
        Ok(Population {
            spec,
            weights,
            models,
            threads: threads.max(1),
        })
    }

    /// Logits `[K, N, classes]` for `n` samples (evaluation mode).
    pub fn logits(&self, input: Input<'_>, n: usize) -> Result<Vec<f32>, NetError> {
        let plan = Plan::new(self.spec)?;
        self.check_input(&plan, input, n)?;
        let mut logits = vec![0.0; self.models * n * plan.classes];
        let mut loss = vec![0.0; self.models];
        let outs: Vec<ModelOut> = logits
            .chunks_mut((n * plan.classes).max(1))
            .zip(loss.iter_mut())
            .enumerate()
            .map(|(k, (l, s))| ModelOut {
                k,
                logits: l,
                dw: None,
                dx: None,
                loss: s,
            })
            .collect();
        self.run(&plan, input, n, None, Mode::Eval, outs);
        Ok(logits)
    }

    /// Loss per model, ∂L/∂W `[K, D]` (and ∂L/∂x when `want_dx`) for `n` samples.
    pub fn gradient(
        &self,
        input: Input<'_>,
        n: usize,
        objective: &Objective<'_>,
        mode: Mode<'_>,
        want_dx: bool,
    ) -> Result<Gradients, NetError> {
        let plan = Plan::new(self.spec)?;
        self.check_input(&plan, input, n)?;
        check_objective(objective, self.models, n, plan.classes)?;
        if let Mode::Train { seeds } = mode {
            if seeds.len() != self.models {
                return Err(NetError::InputShape(format!(
                    "dropout seeds: {} given for {} models",
                    seeds.len(),
                    self.models
                )));
            }
        }
        let (k_models, d, c) = (self.models, plan.dim, plan.classes);
        let in_len = plan.sizes[0];
        let mut out = Gradients {
            loss: vec![0.0; k_models],
            dw: vec![0.0; k_models * d],
            dx: want_dx.then(|| vec![0.0; k_models * n * in_len]),
            logits: vec![0.0; k_models * n * c],
        };
        let mut dx_parts: Vec<Option<&mut [f32]>> = match out.dx.as_mut() {
            Some(v) => v.chunks_mut((n * in_len).max(1)).map(Some).collect(),
            None => (0..k_models).map(|_| None).collect(),
        };
        dx_parts.resize_with(k_models, || None);
        let outs: Vec<ModelOut> = out
            .logits
            .chunks_mut((n * c).max(1))
            .zip(out.dw.chunks_mut(d.max(1)))
            .zip(out.loss.iter_mut())
            .zip(dx_parts)
            .enumerate()
            .map(|(k, (((l, dw), s), dx))| ModelOut {
                k,
                logits: l,
                dw: Some(dw),
                dx,
                loss: s,
            })
            .collect();
        self.run(&plan, input, n, Some(objective), mode, outs);
        Ok(out)
    }

    fn check_input(&self, plan: &Plan, input: Input<'_>, n: usize) -> Result<(), NetError> {
        let per = plan.sizes[0];
        let (x, want, what) = match input {
            Input::Shared(x) => (x, n * per, "shared input"),
            Input::PerModel(x) => (x, self.models * n * per, "per-model input"),
        };
        if x.len() != want {
            return Err(NetError::InputShape(format!(
                "{what}: {} values given, expected {want} (N={n} × {:?}{})",
                x.len(),
                plan.input,
                if matches!(input, Input::PerModel(_)) {
                    format!(" × K={}", self.models)
                } else {
                    String::new()
                }
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(NetError::InputShape(format!(
                "{what}: value {i} is {}, not finite",
                x[i]
            )));
        }
        Ok(())
    }

    /// Runs every model's task (forward, and backward when `objective` is given), over
    /// super-chunks of [`SUPER`] samples: a shared input is converted (and, when the first layer
    /// is a conv, unfolded by im2col) once per super-chunk for all models; then the models run in
    /// parallel, each over its chunks in sample order.
    fn run(
        &self,
        plan: &Plan,
        input: Input<'_>,
        n: usize,
        objective: Option<&Objective<'_>>,
        mode: Mode<'_>,
        mut outs: Vec<ModelOut>,
    ) {
        let d = plan.dim;
        let mut states: Vec<ModelState> = (0..self.models)
            .map(|k| {
                let mut w = vec![0.0; d];
                plan.to_engine(&self.weights[k * d..(k + 1) * d], &mut w);
                ModelState {
                    w,
                    dw: vec![0.0; if objective.is_some() { d } else { 0 }],
                    rngs: match mode {
                        Mode::Train { seeds } if objective.is_some() => Some(plan.dropout_rngs(seeds[k])),
                        _ => None,
                    },
                    loss: 0.0,
                }
            })
            .collect();
        let (per, cin, hw) = (plan.sizes[0], plan.input[0], plan.input[1] * plan.input[2]);
        // an unfused first conv reads im2col columns made once per super-chunk
        let first_conv = match plan.ops.first() {
            Some(Op::Conv {
                g, fused_pool: false, ..
            }) => Some(*g),
            _ => None,
        };
        let mut start = 0;
        while start < n {
            let m = SUPER.min(n - start);
            // shared input of this super-chunk, channel-last, and its first-layer im2col
            let (shared, cols) = match input {
                Input::Shared(x) => {
                    let mut v = vec![0.0; m * per];
                    nchw_to_nhwc(&x[start * per..(start + m) * per], m, cin, hw, &mut v); // [m, H, W, C]
                    let cols = first_conv.map(|g| {
                        let mut c = vec![0.0; m * g.oh() * g.ow() * g.kdim()];
                        conv::im2col(&g, &v, m, &mut c); // [m·oh·ow, k·k·cin]
                        c
                    });
                    (Some(v), cols)
                }
                Input::PerModel(_) => (None, None),
            };
            let block = Block {
                start,
                len: m,
                n,
                shared: shared.as_deref(),
                cols: cols.as_deref(),
            };
            let task = |(st, o): (&mut ModelState, &mut ModelOut)| {
                WORKSPACE.with(|ws| self.model_block(plan, input, &block, objective, st, o, &mut ws.borrow_mut()));
            };
            if self.threads <= 1 || self.models <= 1 {
                states.iter_mut().zip(outs.iter_mut()).for_each(task);
            } else {
                states.par_iter_mut().zip(outs.par_iter_mut()).for_each(task);
            }
            start += m;
        }
        for (st, o) in states.iter().zip(outs.iter_mut()) {
            *o.loss = st.loss as f32;
            if let Some(dw) = o.dw.as_deref_mut() {
                plan.from_engine(&st.dw, dw);
            }
        }
    }

    /// One model over one super-chunk, in chunks of [`CHUNK`] samples.
    #[allow(clippy::too_many_arguments)]
    fn model_block(
        &self,
        plan: &Plan,
        input: Input<'_>,
        b: &Block<'_>,
        objective: Option<&Objective<'_>>,
        st: &mut ModelState,
        o: &mut ModelOut,
        ws: &mut Workspace,
    ) {
        let (c, per, cin, hw) = (
            plan.classes,
            plan.sizes[0],
            plan.input[0],
            plan.input[1] * plan.input[2],
        );
        let k = o.k;
        ws.fit(plan, CHUNK.min(b.n.max(1)));
        let rows_per_sample = match plan.ops.first() {
            Some(Op::Conv { g, .. }) => g.oh() * g.ow() * g.kdim(),
            _ => 0,
        };
        let mut dlogits = [0f32; 4096];
        let mut heap;
        let dl_buf: &mut [f32] = if CHUNK * c <= dlogits.len() {
            &mut dlogits[..]
        } else {
            heap = vec![0.0; CHUNK * c];
            &mut heap
        };
        let mut off = 0;
        while off < b.len {
            let m = CHUNK.min(b.len - off);
            let start = b.start + off; // global index of the first sample
                                       // the shared input, as im2col columns or channel-last, is read in place
            let first = match (b.cols, b.shared) {
                (Some(cols), _) => Some(First::Cols(&cols[off * rows_per_sample..(off + m) * rows_per_sample])),
                (None, Some(x)) => Some(First::Input(&x[off * per..(off + m) * per])), // [m, H, W, C]
                (None, None) => {
                    let (Input::PerModel(x) | Input::Shared(x)) = input;
                    let src = &x[(k * b.n + start) * per..(k * b.n + start + m) * per]; // [m, C, H, W]
                    nchw_to_nhwc(src, m, cin, hw, ws.input_mut());
                    None
                }
            };
            layers::forward(plan, &st.w, ws, m, st.rngs.as_deref_mut(), first);
            o.logits[start * c..(start + m) * c].copy_from_slice(ws.logits(plan, m));
            if let Some(obj) = objective {
                let dl = &mut dl_buf[..m * c];
                st.loss += obj.apply(k, start, b.n, c, ws.logits(plan, m), dl) as f64;
                match o.dx.as_deref_mut() {
                    Some(dx) => {
                        let mut dxc = vec![0.0; m * per];
                        layers::backward(plan, &st.w, ws, m, dl, &mut st.dw, Some(&mut dxc), first);
                        nhwc_to_nchw(&dxc, m, cin, hw, &mut dx[start * per..(start + m) * per]);
                    }
                    None => layers::backward(plan, &st.w, ws, m, dl, &mut st.dw, None, first),
                }
            }
            off += m;
        }
    }
}

/// Per-model state carried across super-chunks.
struct ModelState {
    /// Engine-layout weights `[D]`.
    w: Vec<f32>,
    /// Engine-layout gradient accumulator `[D]` (empty for forward only).
    dw: Vec<f32>,
    /// Dropout streams (training mode).
    rngs: Option<Vec<crate::engine::rng::Rng>>,
    /// Σ of the per-chunk losses, in chunk order.
    loss: f64,
}

/// One super-chunk of samples `start..start+len` of `n`, with the shared input prepared.
struct Block<'b> {
    start: usize,
    len: usize,
    n: usize,
    /// Shared input `[len, H, W, C]`.
    shared: Option<&'b [f32]>,
    /// First-layer im2col of the shared input `[len·oh·ow, k·k·cin]`.
    cols: Option<&'b [f32]>,
}

thread_local! {
    /// Each worker thread's buffers, reused across models and calls.
    static WORKSPACE: std::cell::RefCell<Workspace> = std::cell::RefCell::new(Workspace::default());
}

/// Checks that the objective's arrays fit K models, N samples and C classes.
pub fn check_objective(obj: &Objective<'_>, k: usize, n: usize, c: usize) -> Result<(), NetError> {
    let len_ok = |len: usize, unit: usize| len == n * unit || len == k * n * unit;
    let bad = |what: &str, len: usize, unit: usize| {
        Err(NetError::InputShape(format!(
            "{what}: {len} values, expected {} (shared) or {} (per model)",
            n * unit,
            k * n * unit
        )))
    };
    let weights_ok = |w: Option<&[f32]>| -> Result<(), NetError> {
        if let Some(w) = w {
            if !len_ok(w.len(), 1) {
                return bad("sample weights", w.len(), 1);
            }
            if let Some(i) = w.iter().position(|v| !v.is_finite()) {
                return Err(NetError::InputShape(format!(
                    "sample weight {i} is {}, not finite",
                    w[i]
                )));
            }
        }
        Ok(())
    };
    match *obj {
        Objective::Classify { labels, kinds, weights } => {
            if !len_ok(labels.len(), 1) {
                return bad("labels", labels.len(), 1);
            }
            if let Some(i) = labels.iter().position(|&y| y as usize >= c) {
                return Err(NetError::InputShape(format!(
                    "label {i} is {}, but there are {c} classes",
                    labels[i]
                )));
            }
            if let Some(ks) = kinds {
                if ks.len() != n {
                    return Err(NetError::InputShape(format!(
                        "loss kinds: {} values, expected N={n}",
                        ks.len()
                    )));
                }
                if c < 2 && ks.contains(&SampleLoss::Disagreement) {
                    return Err(NetError::InputShape(
                        "disagreement loss needs at least 2 classes".into(),
                    ));
                }
            }
            weights_ok(weights)
        }
        Objective::Mse { targets, weights } => {
            if !len_ok(targets.len(), c) {
                return bad("regression targets", targets.len(), c);
            }
            weights_ok(weights)
        }
    }
}
