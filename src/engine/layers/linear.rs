//! Fully connected layer with PyTorch's weight `W [out, in]`, bias `b [out]`:
//! `Y [n, out] = X [n, in] · Wᵀ + b`; `dW += dYᵀ · X`, `db += Σ_rows dY`, `dX = dY · W`.

use crate::engine::gemm::{sgemm, Trans};

/// Forward: `x [n, fin]` → `y [n, fout]`.
pub fn forward(x: &[f32], n: usize, fin: usize, fout: usize, w: &[f32], b: &[f32], y: &mut [f32]) {
    sgemm(n, fout, fin, x, Trans::No, w, Trans::Yes, y, false, 1); // [n, fout]
    for r in y[..n * fout].chunks_exact_mut(fout) {
        for (v, bb) in r.iter_mut().zip(b) {
            *v += bb; // [fout]
        }
    }
}

/// Accumulates `dw [fout, fin] += dyᵀ · x`, `db [fout] += Σ_rows dy`.
#[allow(clippy::too_many_arguments)]
pub fn backward_weights(x: &[f32], dy: &[f32], n: usize, fin: usize, fout: usize, dw: &mut [f32], db: &mut [f32]) {
    sgemm(fout, fin, n, dy, Trans::Yes, x, Trans::No, dw, true, 1);
    for r in dy[..n * fout].chunks_exact(fout) {
        for (d, v) in db.iter_mut().zip(r) {
            *d += v;
        }
    }
}

/// Input gradient `dx [n, fin] = dy [n, fout] · w [fout, fin]`.
pub fn backward_input(dy: &[f32], n: usize, fin: usize, fout: usize, w: &[f32], dx: &mut [f32]) {
    sgemm(n, fin, fout, dy, Trans::No, w, Trans::No, dx, false, 1);
}
