//! 2-D convolution, stride 1, zero padding `pad`, on channel-last maps `[n, H, W, C]`, as
//! im2col + GEMM. The engine keeps conv weights as `Wt [(kh, kw, cin), cout]` (a permutation of
//! PyTorch's `[cout, cin, kh, kw]`, see [`to_engine`]/[`from_engine`]) so that im2col copies
//! contiguous channel runs.
//!
//! Forward: `Y [n·oh·ow, cout] = cols [n·oh·ow, k·k·cin] · Wt + b`.
//! Backward: `dWt += colsᵀ · dY`, `db += Σ_rows dY`, `dcols = dY · Wtᵀ`, `dX = col2im(dcols)`.

use crate::engine::gemm::{sgemm, Trans};

/// Geometry of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub pad: usize,
    /// Input height and width.
    pub h: usize,
    pub w: usize,
}

impl ConvGeom {
    /// Output height.
    pub fn oh(&self) -> usize {
        self.h + 2 * self.pad + 1 - self.k
    }
    /// Output width.
    pub fn ow(&self) -> usize {
        self.w + 2 * self.pad + 1 - self.k
    }
    /// Columns of the im2col matrix, k·k·cin.
    pub fn kdim(&self) -> usize {
        self.k * self.k * self.cin
    }
}

/// PyTorch `[cout, cin, k, k]` → engine `[(kh, kw, cin), cout]`.
pub fn to_engine(g: &ConvGeom, torch: &[f32], eng: &mut [f32]) {
    let (k, cin, cout) = (g.k, g.cin, g.cout);
    for o in 0..cout {
        for i in 0..cin {
            for a in 0..k {
                for b in 0..k {
                    eng[((a * k + b) * cin + i) * cout + o] = torch[((o * cin + i) * k + a) * k + b];
                }
            }
        }
    }
}

/// Engine `[(kh, kw, cin), cout]` → PyTorch `[cout, cin, k, k]`.
pub fn from_engine(g: &ConvGeom, eng: &[f32], torch: &mut [f32]) {
    let (k, cin, cout) = (g.k, g.cin, g.cout);
    for o in 0..cout {
        for i in 0..cin {
            for a in 0..k {
                for b in 0..k {
                    torch[((o * cin + i) * k + a) * k + b] = eng[((a * k + b) * cin + i) * cout + o];
                }
            }
        }
    }
}

/// im2col: `x [n, h, w, cin]` → `cols [n·oh·ow, k·k·cin]`, zeros outside the image.
pub fn im2col(g: &ConvGeom, x: &[f32], n: usize, cols: &mut [f32]) {
    let (oh, ow, k, cin, kd) = (g.oh(), g.ow(), g.k, g.cin, g.kdim());
    let pad = g.pad as isize;
    for s in 0..n {
        let xs = &x[s * g.h * g.w * cin..(s + 1) * g.h * g.w * cin]; // [h, w, cin]
        for i in 0..oh {
            for j in 0..ow {
                let row = &mut cols[((s * oh + i) * ow + j) * kd..((s * oh + i) * ow + j + 1) * kd]; // [k·k·cin]
                for a in 0..k {
                    let y = i as isize + a as isize - pad;
                    for b in 0..k {
                        let xx = j as isize + b as isize - pad;
                        let dst = &mut row[(a * k + b) * cin..(a * k + b + 1) * cin]; // [cin]
                        if y < 0 || xx < 0 || y >= g.h as isize || xx >= g.w as isize {
                            dst.fill(0.0);
                        } else {
                            let p = (y as usize * g.w + xx as usize) * cin;
                            dst.copy_from_slice(&xs[p..p + cin]);
                        }
                    }
                }
            }
        }
    }
}

/// col2im (adjoint of [`im2col`]): `dcols [n·oh·ow, k·k·cin]` → `dx [n, h, w, cin]` (overwritten).
pub fn col2im(g: &ConvGeom, dcols: &[f32], n: usize, dx: &mut [f32]) {
    let (oh, ow, k, cin, kd) = (g.oh(), g.ow(), g.k, g.cin, g.kdim());
    let pad = g.pad as isize;
    dx[..n * g.h * g.w * cin].fill(0.0);
    for s in 0..n {
        let xs = &mut dx[s * g.h * g.w * cin..(s + 1) * g.h * g.w * cin];
        for i in 0..oh {
            for j in 0..ow {
                let row = &dcols[((s * oh + i) * ow + j) * kd..((s * oh + i) * ow + j + 1) * kd];
                for a in 0..k {
                    let y = i as isize + a as isize - pad;
                    if y < 0 || y >= g.h as isize {
                        continue;
                    }
                    for b in 0..k {
                        let xx = j as isize + b as isize - pad;
                        if xx < 0 || xx >= g.w as isize {
                            continue;
                        }
                        let p = (y as usize * g.w + xx as usize) * cin;
                        let src = &row[(a * k + b) * cin..(a * k + b + 1) * cin];
                        for (d, s) in xs[p..p + cin].iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// Forward from im2col columns: `y [rows, cout] = cols [rows, kdim] · wt [kdim, cout] + b`.
pub fn forward_cols(g: &ConvGeom, cols: &[f32], rows: usize, wt: &[f32], b: &[f32], y: &mut [f32]) {
    sgemm(rows, g.cout, g.kdim(), cols, Trans::No, wt, Trans::No, y, false, 1); // [rows, cout]
    for r in y[..rows * g.cout].chunks_exact_mut(g.cout) {
        for (v, bb) in r.iter_mut().zip(b) {
            *v += bb; // [cout]
        }
    }
}

/// Weight and bias gradients: `dwt [kdim, cout] += colsᵀ · dy`, `db [cout] += Σ_rows dy`.
pub fn backward_weights(g: &ConvGeom, cols: &[f32], dy: &[f32], rows: usize, dwt: &mut [f32], db: &mut [f32]) {
    sgemm(g.kdim(), g.cout, rows, cols, Trans::Yes, dy, Trans::No, dwt, true, 1);
    for r in dy[..rows * g.cout].chunks_exact(g.cout) {
        for (d, v) in db.iter_mut().zip(r) {
            *d += v;
        }
    }
}

/// Input gradient columns: `dcols [rows, kdim] = dy [rows, cout] · wtᵀ`.
pub fn backward_cols(g: &ConvGeom, dy: &[f32], rows: usize, wt: &[f32], dcols: &mut [f32]) {
    sgemm(rows, g.kdim(), g.cout, dy, Trans::No, wt, Trans::Yes, dcols, false, 1);
}
