//! A convolution with 16 output channels and a short im2col row (k·k·cin ∈ {9, 18, 27}, no
//! padding), fused with the 2×2 max-pool that follows it, computed directly from the
//! channel-last input with AVX-512 (one 16-lane register holds the 16 channels of a pixel).
//!
//! This is the first layer of the CIFAR CNNs (3→16, 3×3): as im2col + GEMM its inner dimension
//! is 27, a poor shape for a GEMM, and its 16-channel output map is the largest of the network.
//! Fused, the conv output is never written: the forward keeps only the pooled pre-activation
//! and the pool arg-max (the layout of [`super::pool`]); the weight gradient accumulates the
//! whole `[k·k·cin, 16]` matrix in registers while it walks the pooled gradient once.
//!
//! Results are deterministic (fixed summation orders) but not bitwise equal to the unfused
//! path (the sums run in another order).

use super::conv::ConvGeom;

/// Whether [`forward`] and [`backward_weights`] handle a conv of geometry `g` followed by a
/// 2×2 max-pool on this CPU.
pub fn applies(g: &ConvGeom) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        g.cout == 16
            && g.pad == 0
            && matches!(g.kdim(), 9 | 18 | 27)
            && g.oh() >= 2
            && g.ow() >= 2
            && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        false
    }
}

/// Input offset of each im2col column `(kh, kw, cin)` relative to the window's first value.
fn offsets(g: &ConvGeom) -> [usize; 27] {
    let mut o = [0; 27];
    let mut p = 0;
    for a in 0..g.k {
        for b in 0..g.k {
            for c in 0..g.cin {
                o[p] = (a * g.w + b) * g.cin + c;
                p += 1;
            }
        }
    }
    o
}

/// Forward: `x [n, h, w, cin]`, `wt [kdim, 16]`, `b [16]` → pooled pre-activation
/// `y [n, oh/2, ow/2, 16]` = max over each 2×2 window of `conv(x) + b`, and `arg` (which of the
/// four won, first maximum in scan order, as [`super::pool::forward`]).
#[allow(clippy::too_many_arguments)]
pub fn forward(g: &ConvGeom, x: &[f32], n: usize, wt: &[f32], b: &[f32], y: &mut [f32], arg: &mut [u8]) {
    assert!(applies(g));
    let out = n * (g.oh() / 2) * (g.ow() / 2) * 16;
    assert!(x.len() >= n * g.h * g.w * g.cin && wt.len() >= g.kdim() * 16 && b.len() >= 16);
    assert!(y.len() >= out && arg.len() >= out);
    let offs = offsets(g);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is available (`applies`); every index stays inside the slices checked
    // above (windows lie inside the image since pad = 0).
    unsafe {
        x86::forward(g, x, n, &offs[..g.kdim()], wt, b, y, arg)
    }
}

/// Weight and bias gradients from the gradient of the pooled output `gp [n, oh/2, ow/2, 16]`
/// and the forward's `arg`: `dwt [kdim, 16] += colsᵀ · dY`, `db += Σ dY`, where dY (the conv
/// output gradient) is `gp` routed to the arg-max positions.
#[allow(clippy::too_many_arguments)]
pub fn backward_weights(g: &ConvGeom, x: &[f32], n: usize, gp: &[f32], arg: &[u8], dwt: &mut [f32], db: &mut [f32]) {
    assert!(applies(g));
    let out = n * (g.oh() / 2) * (g.ow() / 2) * 16;
    assert!(x.len() >= n * g.h * g.w * g.cin && gp.len() >= out && arg.len() >= out);
    assert!(dwt.len() >= g.kdim() * 16 && db.len() >= 16);
    let offs = offsets(g);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `forward`.
    unsafe {
        match g.kdim() {
            9 => x86::backward_weights::<9>(g, x, n, &offs, gp, arg, dwt, db),
            18 => x86::backward_weights::<18>(g, x, n, &offs, gp, arg, dwt, db),
            _ => x86::backward_weights::<27>(g, x, n, &offs, gp, arg, dwt, db),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::ConvGeom;
    use std::arch::x86_64::*;

    /// Bias-adds the four window pixels, takes the first maximum in scan order and stores it
    /// and its position.
    #[inline(always)]
    unsafe fn finish(v: [__m512; 4], bias: __m512, y: *mut f32, arg: *mut u8) {
        let mut best = _mm512_add_ps(v[0], bias);
        let mut at = _mm512_setzero_si512();
        for (q, &vq) in v.iter().enumerate().skip(1) {
            let c = _mm512_add_ps(vq, bias);
            let m = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(c, best);
            best = _mm512_mask_blend_ps(m, best, c);
            at = _mm512_mask_blend_epi32(m, at, _mm512_set1_epi32(q as i32));
        }
        _mm512_storeu_ps(y, best);
        _mm_storeu_si128(arg as *mut __m128i, _mm512_cvtepi32_epi8(at));
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn forward(
        g: &ConvGeom,
        x: &[f32],
        n: usize,
        offs: &[usize],
        wt: &[f32],
        b: &[f32],
        y: &mut [f32],
        arg: &mut [u8],
    ) {
        let (h, w, cin) = (g.h, g.w, g.cin);
        let (ph, pw) = (g.oh() / 2, g.ow() / 2);
        let bias = _mm512_loadu_ps(b.as_ptr());
        let (xp, wp, yp, ap) = (x.as_ptr(), wt.as_ptr(), y.as_mut_ptr(), arg.as_mut_ptr());
        // window pixel q = (di, dj) sits at di·w·cin + dj·cin from the window's corner
        let (d1, d2, d3) = (cin, w * cin, (w + 1) * cin);
        for s in 0..n {
            for i in 0..ph {
                let row = (s * h + 2 * i) * w;
                let mut j = 0;
                while j < pw {
                    // two windows at a time (the second repeats the first at the row's end)
                    let j2 = if j + 1 < pw { j + 1 } else { j };
                    let (b0, b1) = ((row + 2 * j) * cin, (row + 2 * j2) * cin);
                    let mut a = [_mm512_setzero_ps(); 8];
                    for (p, &o) in offs.iter().enumerate() {
                        let wv = _mm512_loadu_ps(wp.add(p * 16)); // [16] row p of wt
                        let x0 = xp.add(b0 + o);
                        let x1 = xp.add(b1 + o);
                        a[0] = _mm512_fmadd_ps(_mm512_set1_ps(*x0), wv, a[0]);
                        a[1] = _mm512_fmadd_ps(_mm512_set1_ps(*x0.add(d1)), wv, a[1]);
                        a[2] = _mm512_fmadd_ps(_mm512_set1_ps(*x0.add(d2)), wv, a[2]);
                        a[3] = _mm512_fmadd_ps(_mm512_set1_ps(*x0.add(d3)), wv, a[3]);
                        a[4] = _mm512_fmadd_ps(_mm512_set1_ps(*x1), wv, a[4]);
                        a[5] = _mm512_fmadd_ps(_mm512_set1_ps(*x1.add(d1)), wv, a[5]);
                        a[6] = _mm512_fmadd_ps(_mm512_set1_ps(*x1.add(d2)), wv, a[6]);
                        a[7] = _mm512_fmadd_ps(_mm512_set1_ps(*x1.add(d3)), wv, a[7]);
                    }
                    let o0 = ((s * ph + i) * pw + j) * 16;
                    finish([a[0], a[1], a[2], a[3]], bias, yp.add(o0), ap.add(o0));
                    if j2 != j {
                        let o1 = o0 + 16;
                        finish([a[4], a[5], a[6], a[7]], bias, yp.add(o1), ap.add(o1));
                    }
                    j += 2;
                }
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn backward_weights<const KD: usize>(
        g: &ConvGeom,
        x: &[f32],
        n: usize,
        offs: &[usize; 27],
        gp: &[f32],
        arg: &[u8],
        dwt: &mut [f32],
        db: &mut [f32],
    ) {
        let (h, w, cin) = (g.h, g.w, g.cin);
        let (ph, pw) = (g.oh() / 2, g.ow() / 2);
        let d = [0, cin, w * cin, (w + 1) * cin];
        let (xp, gpp, ap) = (x.as_ptr(), gp.as_ptr(), arg.as_ptr());
        let mut acc = [_mm512_setzero_ps(); KD];
        for (p, a) in acc.iter_mut().enumerate() {
            *a = _mm512_loadu_ps(dwt.as_ptr().add(p * 16));
        }
        let mut dbv = _mm512_loadu_ps(db.as_ptr());
        for s in 0..n {
            for i in 0..ph {
                let row = (s * h + 2 * i) * w;
                for j in 0..pw {
                    let o = ((s * ph + i) * pw + j) * 16;
                    let gv = _mm512_loadu_ps(gpp.add(o)); // [16]
                    dbv = _mm512_add_ps(dbv, gv);
                    let at = _mm512_cvtepu8_epi32(_mm_loadu_si128(ap.add(o) as *const __m128i));
                    let corner = (row + 2 * j) * cin;
                    for (q, &dq) in d.iter().enumerate() {
                        let m = _mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(q as i32));
                        if m == 0 {
                            continue;
                        }
                        let dy = _mm512_maskz_mov_ps(m, gv); // conv output gradient at pixel q
                        let xq = xp.add(corner + dq);
                        for p in 0..KD {
                            acc[p] = _mm512_fmadd_ps(_mm512_set1_ps(*xq.add(offs[p])), dy, acc[p]);
                        }
                    }
                }
            }
        }
        for (p, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(dwt.as_mut_ptr().add(p * 16), *a);
        }
        _mm512_storeu_ps(db.as_mut_ptr(), dbv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::layers::{conv, pool};

    #[test]
    fn matches_conv_then_pool() {
        for (cin, h, w) in [(3, 9, 8), (1, 7, 10), (2, 6, 6)] {
            let g = ConvGeom {
                cin,
                cout: 16,
                k: 3,
                pad: 0,
                h,
                w,
            };
            if !applies(&g) {
                return;
            }
            let n = 3;
            let val = |i: usize, m: usize| ((i * m % 97) as f32 - 48.0) / 37.0;
            let x: Vec<f32> = (0..n * h * w * cin).map(|i| val(i, 31)).collect();
            let wt: Vec<f32> = (0..g.kdim() * 16).map(|i| val(i, 17)).collect();
            let b: Vec<f32> = (0..16).map(|i| val(i, 7)).collect();
            let rows = n * g.oh() * g.ow();
            let mut cols = vec![0.0; rows * g.kdim()];
            conv::im2col(&g, &x, n, &mut cols);
            let mut yc = vec![0.0; rows * 16];
            conv::forward_cols(&g, &cols, rows, &wt, &b, &mut yc);
            let out = n * (g.oh() / 2) * (g.ow() / 2) * 16;
            let (mut y0, mut a0) = (vec![0.0; out], vec![0u8; out]);
            pool::forward(&yc, n, g.oh(), g.ow(), 16, &mut y0, &mut a0);
            let (mut y1, mut a1) = (vec![0.0; out], vec![0u8; out]);
            forward(&g, &x, n, &wt, &b, &mut y1, &mut a1);
            for (u, v) in y0.iter().zip(&y1) {
                assert!((u - v).abs() < 1e-5, "{u} vs {v}");
            }
            assert_eq!(a0, a1);
            // weight gradients: dense dY through the pool, then colsᵀ·dY
            let gp: Vec<f32> = (0..out).map(|i| val(i, 13)).collect();
            let mut dy = vec![0.0; rows * 16];
            pool::backward(&gp, &a0, n, g.oh(), g.ow(), 16, &mut dy);
            let (mut dw0, mut db0) = (vec![0.5; g.kdim() * 16], vec![0.25; 16]);
            conv::backward_weights(&g, &cols, &dy, rows, &mut dw0, &mut db0);
            let (mut dw1, mut db1) = (vec![0.5; g.kdim() * 16], vec![0.25; 16]);
            backward_weights(&g, &x, n, &gp, &a1, &mut dw1, &mut db1);
            for (u, v) in dw0.iter().zip(&dw1).chain(db0.iter().zip(&db1)) {
                assert!((u - v).abs() < 1e-4, "{u} vs {v}");
            }
        }
    }
}
