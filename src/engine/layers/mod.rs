//! Layer kernels (forward + backward each) and the [`Plan`] that runs one model of an
//! [`ArchSpec`] over a chunk of samples. Inside the engine, feature maps are channel-last
//! `[n, H, W, C]` (flatten converts to PyTorch's `C·H·W` order) and conv weights are permuted to
//! `[(kh, kw, cin), cout]` (see [`conv`]); everything else keeps PyTorch's layout.

pub mod act;
pub mod conv;
pub mod dropout;
pub mod fused;
pub mod linear;
pub mod pool;

use crate::engine::rng::{stream, Rng};
use crate::nets::{Activation, ArchSpec, LayerSpec, NetError, Padding};
use conv::ConvGeom;

/// One compiled layer.
#[derive(Clone, Debug)]
pub enum Op {
    Conv {
        g: ConvGeom,
        w_off: usize,
        b_off: usize,
        /// The next op is a 2×2 max-pool computed together with this conv by [`fused`]: the
        /// conv writes the pool's output and arg-max, and the pool op is skipped.
        fused_pool: bool,
    },
    Pool {
        h: usize,
        w: usize,
        c: usize,
    },
    Act {
        act: Activation,
    },
    Flatten {
        c: usize,
        h: usize,
        w: usize,
    },
    Linear {
        fin: usize,
        fout: usize,
        w_off: usize,
        b_off: usize,
    },
    Dropout {
        p: f32,
    },
}

/// An architecture compiled for the engine: ops, per-sample sizes between them, parameters.
#[derive(Clone, Debug)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// `sizes[i]` = values per sample entering op i; `sizes[ops.len()]` = classes.
    pub sizes: Vec<usize>,
    /// Input `[C, H, W]`.
    pub input: [usize; 3],
    /// Parameters per model D.
    pub dim: usize,
    /// Output width.
    pub classes: usize,
}

impl Plan {
    /// Compiles `spec` (checking that its layers fit together).
    pub fn new(spec: &ArchSpec) -> Result<Self, NetError> {
        let shapes = spec.shapes()?;
        let layout = spec.layout();
        let mut entries = layout.entries.iter();
        let mut next_param = |i: usize| {
            let w = entries.next();
            let b = entries.next();
            match (w, b) {
                (Some(w), Some(b)) => Ok((w.offset, b.offset)),
                _ => Err(NetError::Invalid(format!("layer {i}: parameters missing from layout"))),
            }
        };
        let mut ops = Vec::with_capacity(spec.layers.len());
        let mut sizes = vec![spec.input_len()];
        let mut s = spec.input;
        for (i, l) in spec.layers.iter().enumerate() {
            let op = match *l {
                LayerSpec::Conv2d {
                    in_ch,
                    out_ch,
                    kernel,
                    padding,
                } => {
                    let (w_off, b_off) = next_param(i)?;
                    let pad = match padding {
                        Padding::Valid => 0,
                        Padding::Same => (kernel - 1) / 2,
                    };
                    let g = ConvGeom {
                        cin: in_ch,
                        cout: out_ch,
                        k: kernel,
                        pad,
                        h: s[1],
                        w: s[2],
                    };
                    Op::Conv {
                        g,
                        w_off,
                        b_off,
                        fused_pool: false,
                    }
                }
                LayerSpec::MaxPool2 => {
                    if s[1] < 2 || s[2] < 2 {
                        return Err(NetError::Invalid(format!(
                            "layer {i}: max-pool on a {}×{} map",
                            s[1], s[2]
                        )));
                    }
                    Op::Pool {
                        h: s[1],
                        w: s[2],
                        c: s[0],
                    }
                }
                LayerSpec::Act { act } => Op::Act { act },
                LayerSpec::Flatten => Op::Flatten {
                    c: s[0],
                    h: s[1],
                    w: s[2],
                },
                LayerSpec::Linear { in_f, out_f } => {
                    let (w_off, b_off) = next_param(i)?;
                    Op::Linear {
                        fin: in_f,
                        fout: out_f,
                        w_off,
                        b_off,
                    }
                }
                LayerSpec::Dropout { p } => {
                    if !(0.0..1.0).contains(&p) {
                        return Err(NetError::Invalid(format!("layer {i}: dropout p = {p} not in [0, 1)")));
                    }
                    Op::Dropout { p }
                }
            };
            ops.push(op);
            s = shapes[i];
            sizes.push(s.iter().product());
        }
        for i in 1..ops.len() {
            let (before, after) = ops.split_at_mut(i);
            if let (Op::Pool { .. }, Some(Op::Conv { g, fused_pool, .. })) = (&after[0], before.last_mut()) {
                *fused_pool = fused::applies(g);
            }
        }
        let classes = *sizes.last().unwrap_or(&0);
        Ok(Plan {
            ops,
            sizes,
            input: spec.input,
            dim: layout.dim(),
            classes,
        })
    }

    /// PyTorch-layout weights of one model `[D]` → engine layout `[D]` (conv tensors permuted).
    pub fn to_engine(&self, torch: &[f32], eng: &mut [f32]) {
        eng.copy_from_slice(torch);
        for op in &self.ops {
            if let Op::Conv { g, w_off, .. } = op {
                let len = g.kdim() * g.cout;
                conv::to_engine(g, &torch[*w_off..w_off + len], &mut eng[*w_off..w_off + len]);
            }
        }
    }

    /// Engine-layout vector `[D]` (weights or gradients) → PyTorch layout.
    pub fn from_engine(&self, eng: &[f32], torch: &mut [f32]) {
        torch.copy_from_slice(eng);
        for op in &self.ops {
            if let Op::Conv { g, w_off, .. } = op {
                let len = g.kdim() * g.cout;
                conv::from_engine(g, &eng[*w_off..w_off + len], &mut torch[*w_off..w_off + len]);
            }
        }
    }

    /// Dropout streams of model `k` for one call seeded by `seed`, one per dropout op.
    pub fn dropout_rngs(&self, seed: u64) -> Vec<Rng> {
        self.ops
            .iter()
            .enumerate()
            .filter(|(_, op)| matches!(op, Op::Dropout { .. }))
            .map(|(i, _)| stream(seed, "dropout", i as u64))
            .collect()
    }
}

/// NCHW input of `n` samples → channel-last `[n, H, W, C]`.
pub fn nchw_to_nhwc(x: &[f32], n: usize, c: usize, hw: usize, out: &mut [f32]) {
    for s in 0..n {
        let src = &x[s * c * hw..(s + 1) * c * hw]; // [c, hw]
        let dst = &mut out[s * c * hw..(s + 1) * c * hw]; // [hw, c]
        for ch in 0..c {
            for p in 0..hw {
                dst[p * c + ch] = src[ch * hw + p];
            }
        }
    }
}

/// Channel-last `[n, H, W, C]` → NCHW.
pub fn nhwc_to_nchw(x: &[f32], n: usize, c: usize, hw: usize, out: &mut [f32]) {
    for s in 0..n {
        let src = &x[s * c * hw..(s + 1) * c * hw]; // [hw, c]
        let dst = &mut out[s * c * hw..(s + 1) * c * hw]; // [c, hw]
        for ch in 0..c {
            for p in 0..hw {
                dst[ch * hw + p] = src[p * c + ch];
            }
        }
    }
}

/// Buffers for one model over chunks of up to `cap` samples, reused across chunks and calls.
#[derive(Default)]
pub struct Workspace {
    cap: usize,
    /// The plan shape the buffers were made for.
    sizes: Vec<usize>,
    ops: usize,
    /// `acts[i]` = input of op i `[n, sizes[i]]`; the last one holds the logits.
    acts: Vec<Vec<f32>>,
    /// im2col columns per conv op.
    cols: Vec<Vec<f32>>,
    /// Pool arg-max per pool op.
    args: Vec<Vec<u8>>,
    /// Dropout masks per dropout op.
    masks: Vec<Vec<f32>>,
    /// Gradient ping-pong buffers and conv input-gradient columns.
    ga: Vec<f32>,
    gb: Vec<f32>,
    dcols: Vec<f32>,
    /// Whether the last forward applied dropout masks.
    train: bool,
}

impl Workspace {
    /// Makes sure the buffers fit `cap` samples of `plan`.
    pub fn fit(&mut self, plan: &Plan, cap: usize) {
        if self.cap >= cap && self.sizes == plan.sizes && self.ops == plan.ops.len() {
            return;
        }
        self.cap = cap;
        self.sizes = plan.sizes.clone();
        self.ops = plan.ops.len();
        self.acts = plan.sizes.iter().map(|s| vec![0.0; s * cap]).collect();
        let mut maxg = 0;
        let mut maxcols = 0;
        self.cols = Vec::with_capacity(plan.ops.len());
        self.args = Vec::with_capacity(plan.ops.len());
        self.masks = Vec::with_capacity(plan.ops.len());
        for (i, op) in plan.ops.iter().enumerate() {
            maxg = maxg.max(plan.sizes[i] * cap).max(plan.sizes[i + 1] * cap);
            let (c, a, m) = match op {
                Op::Conv { g, fused_pool, .. } => {
                    let len = g.oh() * g.ow() * g.kdim() * cap;
                    maxcols = maxcols.max(len);
                    (if *fused_pool { 0 } else { len }, 0, 0)
                }
                Op::Pool { .. } => (0, plan.sizes[i + 1] * cap, 0),
                Op::Dropout { .. } => (0, 0, plan.sizes[i] * cap),
                _ => (0, 0, 0),
            };
            self.cols.push(vec![0.0; c]);
            self.args.push(vec![0; a]);
            self.masks.push(vec![0.0; m]);
        }
        self.ga = vec![0.0; maxg];
        self.gb = vec![0.0; maxg];
        self.dcols = vec![0.0; maxcols];
    }

    /// The input buffer `[cap, sizes[0]]` (channel-last), to be filled before [`forward`].
    pub fn input_mut(&mut self) -> &mut [f32] {
        &mut self.acts[0]
    }

    /// Logits `[n, classes]` of the last forward.
    pub fn logits(&self, plan: &Plan, n: usize) -> &[f32] {
        &self.acts[plan.ops.len()][..n * plan.classes]
    }
}

/// A first-layer input prepared once for a batch shared by many models; the workspace input is
/// then not read.
#[derive(Clone, Copy, Debug)]
pub enum First<'a> {
    /// The first op is an unfused conv: its im2col columns `[n·oh·ow, k·k·cin]`.
    Cols(&'a [f32]),
    /// The channel-last input `[n, sizes[0]]` itself.
    Input(&'a [f32]),
}

/// Whether op `i` is a pool computed by the fused conv before it.
fn pool_is_fused(plan: &Plan, i: usize) -> bool {
    i > 0 && matches!(plan.ops[i - 1], Op::Conv { fused_pool: true, .. })
}

/// Forward of one model (engine-layout weights `w [D]`) over the `n` samples in the workspace
/// input; `rngs` (one per dropout op) turn dropout on, `None` = evaluation. `first` replaces
/// the workspace input (see [`First`]).
pub fn forward(
    plan: &Plan,
    w: &[f32],
    ws: &mut Workspace,
    n: usize,
    mut rngs: Option<&mut [Rng]>,
    first: Option<First<'_>>,
) {
    let mut di = 0;
    ws.train = rngs.is_some();
    for (i, op) in plan.ops.iter().enumerate() {
        if pool_is_fused(plan, i) {
            continue;
        }
        let (prev, rest) = ws.acts.split_at_mut(i + 1);
        let x = match first {
            Some(First::Input(v)) if i == 0 => &v[..n * plan.sizes[0]],
            _ => &prev[i][..n * plan.sizes[i]], // [n, sizes[i]]
        };
        let y = &mut rest[0][..n * plan.sizes[i + 1]]; // [n, sizes[i+1]]
        match op {
            Op::Conv {
                g,
                w_off,
                b_off,
                fused_pool: true,
            } => {
                // conv + bias + 2×2 max-pool, into the pool's output [n, oh/2, ow/2, cout]
                let wt = &w[*w_off..w_off + g.kdim() * g.cout]; // [k·k·cin, cout]
                let y = &mut rest[1][..n * plan.sizes[i + 2]];
                fused::forward(g, x, n, wt, &w[*b_off..b_off + g.cout], y, &mut ws.args[i + 1]);
            }
            Op::Conv { g, w_off, b_off, .. } => {
                let rows = n * g.oh() * g.ow();
                let cols: &[f32] = match first {
                    Some(First::Cols(c)) if i == 0 => &c[..rows * g.kdim()], // [n·oh·ow, k·k·cin]
                    _ => {
                        let c = &mut ws.cols[i][..rows * g.kdim()]; // [n·oh·ow, k·k·cin]
                        conv::im2col(g, x, n, c);
                        c
                    }
                };
                let wt = &w[*w_off..w_off + g.kdim() * g.cout]; // [k·k·cin, cout]
                conv::forward_cols(g, cols, rows, wt, &w[*b_off..b_off + g.cout], y);
                // [n, oh, ow, cout]
            }
            Op::Pool { h, w: wd, c } => pool::forward(x, n, *h, *wd, *c, y, &mut ws.args[i]), // [n, h/2, w/2, c]
            Op::Act { act } => act::forward(*act, x, y),                                      // [n, sizes[i]]
            Op::Flatten { c, h, w: wd } => nhwc_to_nchw(x, n, *c, h * wd, y),                 // [n, c·h·w]
            Op::Linear {
                fin,
                fout,
                w_off,
                b_off,
            } => {
                let wm = &w[*w_off..w_off + fin * fout]; // [fout, fin]
                linear::forward(x, n, *fin, *fout, wm, &w[*b_off..b_off + fout], y);
                // [n, fout]
            }
            Op::Dropout { p } => match rngs.as_deref_mut() {
                Some(r) => {
                    dropout::forward(*p, x, y, &mut ws.masks[i][..x.len()], &mut r[di]); // [n, sizes[i]]
                    di += 1;
                }
                None => y.copy_from_slice(x), // [n, sizes[i]]
            },
        }
    }
}

/// Backward of one model over the chunk last run by [`forward`] (with the same dropout
/// setting): `dlogits [n, classes]`; accumulates into engine-layout `dw [D]`; writes the
/// input gradient `[n, sizes[0]]` (channel-last) into `dx` when given. `first` as in
/// [`forward`].
#[allow(clippy::too_many_arguments)]
pub fn backward(
    plan: &Plan,
    w: &[f32],
    ws: &mut Workspace,
    n: usize,
    dlogits: &[f32],
    dw: &mut [f32],
    dx: Option<&mut [f32]>,
    first: Option<First<'_>>,
) {
    let Workspace {
        acts,
        cols,
        args,
        masks,
        ga,
        gb,
        dcols,
        train,
        ..
    } = ws;
    let mut g: &mut Vec<f32> = ga;
    let mut other: &mut Vec<f32> = gb;
    g[..dlogits.len()].copy_from_slice(dlogits);
    let want_dx = dx.is_some();
    for (i, op) in plan.ops.iter().enumerate().rev() {
        let need_in = i > 0 || want_dx;
        let gin_len = n * plan.sizes[i];
        if pool_is_fused(plan, i) {
            continue; // the conv before takes the pool's output gradient
        }
        let x = match first {
            Some(First::Input(v)) if i == 0 => &v[..gin_len],
            _ => &acts[i][..gin_len],
        };
        if let Op::Conv {
            g: geo,
            w_off,
            b_off,
            fused_pool: true,
        } = op
        {
            let gp = &g[..n * plan.sizes[i + 2]]; // pooled gradient [n, oh/2, ow/2, cout]
            let wlen = geo.kdim() * geo.cout;
            let (dwt, db) = two_mut(dw, *w_off..w_off + wlen, *b_off..b_off + geo.cout);
            let rows = n * geo.oh() * geo.ow();
            let dy = &mut other[..rows * geo.cout]; // dense conv-output gradient [n, oh, ow, cout]
            if need_in || fused::weights_need_dense(geo) {
                pool::backward(gp, &args[i + 1], n, geo.oh(), geo.ow(), geo.cout, dy);
            }
            fused::backward_weights(geo, x, n, gp, &args[i + 1], dy, dwt, db);
            if need_in {
                let wt = &w[*w_off..w_off + wlen];
                fused::backward_input(geo, n, dy, wt, dcols, &mut g[..gin_len]);
            }
            continue;
        }
        let gout = &mut g[..n * plan.sizes[i + 1]];
        let mut swapped = true;
        match op {
            Op::Conv {
                g: geo, w_off, b_off, ..
            } => {
                let rows = n * geo.oh() * geo.ow();
                let c = match first {
                    Some(First::Cols(c)) if i == 0 => &c[..rows * geo.kdim()],
                    _ => &cols[i][..rows * geo.kdim()],
                };
                let wlen = geo.kdim() * geo.cout;
                let (dwt, db) = two_mut(dw, *w_off..w_off + wlen, *b_off..b_off + geo.cout);
                conv::backward_weights(geo, c, gout, rows, dwt, db);
                if need_in {
                    let dc = &mut dcols[..rows * geo.kdim()];
                    conv::backward_cols(geo, gout, rows, &w[*w_off..w_off + wlen], dc);
                    conv::col2im(geo, dc, n, &mut other[..gin_len]);
                }
            }
            Op::Pool { h, w: wd, c } => {
                if need_in {
                    pool::backward(gout, &args[i], n, *h, *wd, *c, &mut other[..gin_len]);
                }
            }
            Op::Act { act } => {
                act::backward(*act, x, gout);
                swapped = false;
            }
            Op::Flatten { c, h, w: wd } => {
                // forward was NHWC → NCHW per sample, so backward is NCHW → NHWC
                nchw_to_nhwc(gout, n, *c, h * wd, &mut other[..gin_len]);
            }
            Op::Linear {
                fin,
                fout,
                w_off,
                b_off,
            } => {
                let (dwm, db) = two_mut(dw, *w_off..w_off + fin * fout, *b_off..b_off + fout);
                linear::backward_weights(x, gout, n, *fin, *fout, dwm, db);
                if need_in {
                    linear::backward_input(
                        gout,
                        n,
                        *fin,
                        *fout,
                        &w[*w_off..w_off + fin * fout],
                        &mut other[..gin_len],
                    );
                }
            }
            Op::Dropout { .. } => {
                if *train {
                    dropout::backward(&masks[i][..gin_len], gout);
                }
                swapped = false;
            }
        }
        if swapped {
            std::mem::swap(&mut g, &mut other);
        }
    }
    if let Some(d) = dx {
        d[..n * plan.sizes[0]].copy_from_slice(&g[..n * plan.sizes[0]]);
    }
}

/// Two disjoint mutable sub-slices of `v`.
fn two_mut(v: &mut [f32], a: std::ops::Range<usize>, b: std::ops::Range<usize>) -> (&mut [f32], &mut [f32]) {
    if a.start < b.start {
        let (lo, hi) = v.split_at_mut(b.start);
        (&mut lo[a], &mut hi[..b.end - b.start])
    } else {
        let (lo, hi) = v.split_at_mut(a.start);
        (&mut hi[..a.end - a.start], &mut lo[b])
    }
}
