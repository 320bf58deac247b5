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

use super::conv::{self, ConvGeom};

/// Whether [`forward`] and [`backward`] handle a conv of geometry `g` followed by a 2×2
/// max-pool on this CPU: no padding and either 16 output channels with k·k·cin ∈ {9, 18, 27}
/// ("narrow", weights gradient in registers) or 16 → 32 channels with a 3×3 kernel ("wide").
pub fn applies(g: &ConvGeom) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        g.pad == 0
            && g.oh() >= 2
            && g.ow() >= 2
            && (narrow(g) || wide(g))
            && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        false
    }
}

fn narrow(g: &ConvGeom) -> bool {
    g.cout == 16 && matches!(g.kdim(), 9 | 18 | 27)
}

fn wide(g: &ConvGeom) -> bool {
    g.cout == 32 && g.cin == 16 && g.k == 3
}

/// Input offset of each im2col column `(kh, kw, cin)` relative to the window's first value.
fn offsets(g: &ConvGeom) -> Vec<usize> {
    let mut o = Vec::with_capacity(g.kdim());
    for a in 0..g.k {
        for b in 0..g.k {
            for c in 0..g.cin {
                o.push((a * g.w + b) * g.cin + c);
            }
        }
    }
    o
}

/// Forward: `x [n, h, w, cin]`, `wt [kdim, cout]`, `b [cout]` → pooled pre-activation
/// `y [n, oh/2, ow/2, cout]` = max over each 2×2 window of `conv(x) + b`, and `arg` (which of the
/// four won, first maximum in scan order, as [`super::pool::forward`]).
#[allow(clippy::too_many_arguments)]
pub fn forward(g: &ConvGeom, x: &[f32], n: usize, wt: &[f32], b: &[f32], y: &mut [f32], arg: &mut [u8]) {
    assert!(applies(g));
    let out = n * (g.oh() / 2) * (g.ow() / 2) * g.cout;
    assert!(x.len() >= n * g.h * g.w * g.cin && wt.len() >= g.kdim() * g.cout && b.len() >= g.cout);
    assert!(y.len() >= out && arg.len() >= out);
    let offs = offsets(g);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is available (`applies`); every index stays inside the slices checked
    // above (windows lie inside the image since pad = 0).
    unsafe {
        if narrow(g) {
            x86::forward::<1, 2>(g, x, n, &offs, wt, b, y, arg)
        } else {
            x86::forward::<2, 1>(g, x, n, &offs, wt, b, y, arg)
        }
    }
}

/// Whether [`backward_weights`] reads the dense conv-output gradient (else the pooled one).
pub fn weights_need_dense(g: &ConvGeom) -> bool {
    !narrow(g)
}

/// Weight and bias gradients: `dwt [kdim, cout] += colsᵀ · dY`, `db += Σ dY`, where dY, the
/// conv output gradient, is the pooled output gradient `gp [n, oh/2, ow/2, cout]` routed to the
/// forward's arg-max positions `arg`; `dy [n, oh, ow, cout]` is dY itself, which must be filled
/// (by [`super::pool::backward`]) when [`weights_need_dense`].
#[allow(clippy::too_many_arguments)]
pub fn backward_weights(
    g: &ConvGeom,
    x: &[f32],
    n: usize,
    gp: &[f32],
    arg: &[u8],
    dy: &[f32],
    dwt: &mut [f32],
    db: &mut [f32],
) {
    if narrow(g) {
        narrow_weights(g, x, n, gp, arg, dwt, db);
        return;
    }
    assert!(applies(g));
    let out = n * (g.oh() / 2) * (g.ow() / 2) * g.cout;
    assert!(x.len() >= n * g.h * g.w * g.cin && gp.len() >= out && dy.len() >= n * g.oh() * g.ow() * g.cout);
    assert!(dwt.len() >= g.kdim() * g.cout && db.len() >= g.cout);
    for r in gp[..out].chunks_exact(g.cout) {
        for (d, v) in db.iter_mut().zip(r) {
            *d += v;
        }
    }
    let offs = offsets(g);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `forward`.
    unsafe {
        x86::wide_weights(g, x, n, &offs, dy, dwt)
    }
}

/// Input gradient `dx [n, h, w, cin]` (overwritten) from the dense conv output gradient
/// `dy [n, oh, ow, cout]` and the weights `wt [kdim, cout]`; `dcols [n·oh·ow·kdim]` is scratch.
pub fn backward_input(g: &ConvGeom, n: usize, dy: &[f32], wt: &[f32], dcols: &mut [f32], dx: &mut [f32]) {
    let rows = n * g.oh() * g.ow();
    if narrow(g) {
        let dc = &mut dcols[..rows * g.kdim()];
        conv::backward_cols(g, dy, rows, wt, dc);
        conv::col2im(g, dc, n, dx);
        return;
    }
    assert!(applies(g));
    assert!(dy.len() >= rows * g.cout && wt.len() >= g.kdim() * g.cout && dx.len() >= n * g.h * g.w * g.cin);
    // wt [(tap, cin), cout] → [tap, cout, cin]
    let (taps, cin, cout) = (g.k * g.k, g.cin, g.cout);
    let mut wtt = vec![0.0; taps * cout * cin];
    for t in 0..taps {
        for ci in 0..cin {
            for co in 0..cout {
                wtt[(t * cout + co) * cin + ci] = wt[(t * cin + ci) * cout + co];
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `forward`.
    unsafe {
        x86::wide_input(g, n, dy, &wtt, dx)
    }
}

/// Narrow kernel: weight and bias gradients from the gradient of the pooled output `gp [n, oh/2, ow/2, 16]`
/// and the forward's `arg`: `dwt [kdim, 16] += colsᵀ · dY`, `db += Σ dY`, where dY (the conv
/// output gradient) is `gp` routed to the arg-max positions.
#[allow(clippy::too_many_arguments)]
fn narrow_weights(g: &ConvGeom, x: &[f32], n: usize, gp: &[f32], arg: &[u8], dwt: &mut [f32], db: &mut [f32]) {
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

    /// `V` 16-lane registers of output channels (cout = 16·V), `WN` pool windows at a time.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn forward<const V: usize, const WN: usize>(
        g: &ConvGeom,
        x: &[f32],
        n: usize,
        offs: &[usize],
        wt: &[f32],
        b: &[f32],
        y: &mut [f32],
        arg: &mut [u8],
    ) {
        let (h, w, cin, cout) = (g.h, g.w, g.cin, g.cout);
        let (ph, pw) = (g.oh() / 2, g.ow() / 2);
        let mut bias = [_mm512_setzero_ps(); V];
        for (v, bv) in bias.iter_mut().enumerate() {
            *bv = _mm512_loadu_ps(b.as_ptr().add(16 * v));
        }
        let (xp, wp, yp, ap) = (x.as_ptr(), wt.as_ptr(), y.as_mut_ptr(), arg.as_mut_ptr());
        // window pixel q = (di, dj) sits at di·w·cin + dj·cin from the window's corner
        let d = [0, cin, w * cin, (w + 1) * cin];
        for s in 0..n {
            for i in 0..ph {
                let row = (s * h + 2 * i) * w;
                let mut j = 0;
                while j < pw {
                    // WN windows at a time (the last ones repeat window j at the row's end)
                    let mut corner = [0usize; WN];
                    for (u, c) in corner.iter_mut().enumerate() {
                        let ju = if j + u < pw { j + u } else { j };
                        *c = (row + 2 * ju) * cin;
                    }
                    let mut a = [[[_mm512_setzero_ps(); V]; 4]; WN];
                    for (p, &o) in offs.iter().enumerate() {
                        let mut wv = [_mm512_setzero_ps(); V];
                        for (v, r) in wv.iter_mut().enumerate() {
                            *r = _mm512_loadu_ps(wp.add(p * cout + 16 * v)); // row p of wt
                        }
                        for u in 0..WN {
                            let xu = xp.add(corner[u] + o);
                            for q in 0..4 {
                                let xb = _mm512_set1_ps(*xu.add(d[q]));
                                for v in 0..V {
                                    a[u][q][v] = _mm512_fmadd_ps(xb, wv[v], a[u][q][v]);
                                }
                            }
                        }
                    }
                    for (u, au) in a.iter().enumerate() {
                        if j + u >= pw {
                            break;
                        }
                        let o = ((s * ph + i) * pw + j + u) * cout;
                        for v in 0..V {
                            let px = [au[0][v], au[1][v], au[2][v], au[3][v]];
                            finish(px, bias[v], yp.add(o + 16 * v), ap.add(o + 16 * v));
                        }
                    }
                    j += WN;
                }
            }
        }
    }

    /// Wide weight gradient `dwt [kdim, 32] += colsᵀ · dy` from the dense conv-output gradient
    /// `dy [n, oh, ow, 32]` over the pixels the pool covers, 12 rows of `dwt` at a time.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn wide_weights(g: &ConvGeom, x: &[f32], n: usize, offs: &[usize], dy: &[f32], dwt: &mut [f32]) {
        const PB: usize = 12;
        let (h, w, cin, oh, ow) = (g.h, g.w, g.cin, g.oh(), g.ow());
        let (py, px) = (2 * (oh / 2), 2 * (ow / 2));
        let (xp, dyp, dwp) = (x.as_ptr(), dy.as_ptr(), dwt.as_mut_ptr());
        let kd = offs.len();
        let mut p0 = 0;
        while p0 < kd {
            let pb = PB.min(kd - p0);
            let mut acc = [[_mm512_setzero_ps(); 2]; PB];
            for (r, a) in acc.iter_mut().enumerate().take(pb) {
                a[0] = _mm512_loadu_ps(dwp.add((p0 + r) * 32));
                a[1] = _mm512_loadu_ps(dwp.add((p0 + r) * 32 + 16));
            }
            let mut o = [0usize; PB];
            o[..pb].copy_from_slice(&offs[p0..p0 + pb]);
            for s in 0..n {
                for yy in 0..py {
                    for xx in 0..px {
                        let pix = (s * oh + yy) * ow + xx;
                        let d0 = _mm512_loadu_ps(dyp.add(pix * 32));
                        let d1 = _mm512_loadu_ps(dyp.add(pix * 32 + 16));
                        let xb = xp.add(((s * h + yy) * w + xx) * cin);
                        if pb == PB {
                            for r in 0..PB {
                                let xv = _mm512_set1_ps(*xb.add(o[r]));
                                acc[r][0] = _mm512_fmadd_ps(xv, d0, acc[r][0]);
                                acc[r][1] = _mm512_fmadd_ps(xv, d1, acc[r][1]);
                            }
                        } else {
                            for r in 0..pb {
                                let xv = _mm512_set1_ps(*xb.add(o[r]));
                                acc[r][0] = _mm512_fmadd_ps(xv, d0, acc[r][0]);
                                acc[r][1] = _mm512_fmadd_ps(xv, d1, acc[r][1]);
                            }
                        }
                    }
                }
            }
            for (r, a) in acc.iter().enumerate().take(pb) {
                _mm512_storeu_ps(dwp.add((p0 + r) * 32), a[0]);
                _mm512_storeu_ps(dwp.add((p0 + r) * 32 + 16), a[1]);
            }
            p0 += pb;
        }
    }

    /// Wide input gradient: `dx [n, h, w, 16]` = Σ over the covered conv-output pixels and the
    /// 9 taps of `wtt[tap] · dy[pixel]`, with `wtt [tap, 32, 16]`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn wide_input(g: &ConvGeom, n: usize, dy: &[f32], wtt: &[f32], dx: &mut [f32]) {
        let (h, w, oh, ow) = (g.h, g.w, g.oh(), g.ow());
        let (py, px) = (2 * (oh / 2), 2 * (ow / 2));
        dx[..n * h * w * 16].fill(0.0);
        let (dyp, wp, dxp) = (dy.as_ptr(), wtt.as_ptr(), dx.as_mut_ptr());
        for s in 0..n {
            for yy in 0..py {
                // two pixels at a time share the weight loads (px is even)
                for xx in (0..px).step_by(2) {
                    let d = dyp.add(((s * oh + yy) * ow + xx) * 32);
                    let mut acc = [[_mm512_setzero_ps(); 9]; 2];
                    for co in 0..32 {
                        let b0 = _mm512_set1_ps(*d.add(co));
                        let b1 = _mm512_set1_ps(*d.add(32 + co));
                        let [a0, a1] = &mut acc;
                        for (t, (x0, x1)) in a0.iter_mut().zip(a1.iter_mut()).enumerate() {
                            let wv = _mm512_loadu_ps(wp.add((t * 32 + co) * 16));
                            *x0 = _mm512_fmadd_ps(wv, b0, *x0);
                            *x1 = _mm512_fmadd_ps(wv, b1, *x1);
                        }
                    }
                    for (u, au) in acc.iter().enumerate() {
                        for (t, a) in au.iter().enumerate() {
                            let o = dxp.add(((s * h + yy + t / 3) * w + xx + u + t % 3) * 16);
                            _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), *a));
                        }
                    }
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
        offs: &[usize],
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
        let mut offs_k = [0usize; KD];
        offs_k.copy_from_slice(&offs[..KD]);
        let offs = offs_k;
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
    use crate::engine::layers::pool;

    fn close(what: &str, a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (u, v)) in a.iter().zip(b).enumerate() {
            assert!((u - v).abs() <= tol * (1.0 + u.abs()), "{what}[{i}]: {u} vs {v}");
        }
    }

    #[test]
    fn matches_conv_then_pool() {
        for (cin, cout, h, w) in [
            (3, 16, 9, 8),
            (1, 16, 7, 10),
            (2, 16, 6, 6),
            (16, 32, 9, 8),
            (16, 32, 15, 15),
        ] {
            let g = ConvGeom {
                cin,
                cout,
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
            let wt: Vec<f32> = (0..g.kdim() * cout).map(|i| val(i, 17) / 8.0).collect();
            let b: Vec<f32> = (0..cout).map(|i| val(i, 7)).collect();
            let rows = n * g.oh() * g.ow();
            let mut cols = vec![0.0; rows * g.kdim()];
            conv::im2col(&g, &x, n, &mut cols);
            let mut yc = vec![0.0; rows * cout];
            conv::forward_cols(&g, &cols, rows, &wt, &b, &mut yc);
            let out = n * (g.oh() / 2) * (g.ow() / 2) * cout;
            let (mut y0, mut a0) = (vec![0.0; out], vec![0u8; out]);
            pool::forward(&yc, n, g.oh(), g.ow(), cout, &mut y0, &mut a0);
            let (mut y1, mut a1) = (vec![0.0; out], vec![0u8; out]);
            forward(&g, &x, n, &wt, &b, &mut y1, &mut a1);
            close("y", &y0, &y1, 1e-5);
            assert_eq!(a0, a1);
            // gradients: dense dY through the pool, then colsᵀ·dY and col2im(dY·Wtᵀ)
            let gp: Vec<f32> = (0..out).map(|i| val(i, 13)).collect();
            let mut dy = vec![0.0; rows * cout];
            pool::backward(&gp, &a0, n, g.oh(), g.ow(), cout, &mut dy);
            let (mut dw0, mut db0) = (vec![0.5; g.kdim() * cout], vec![0.25; cout]);
            conv::backward_weights(&g, &cols, &dy, rows, &mut dw0, &mut db0);
            let mut dc = vec![0.0; rows * g.kdim()];
            conv::backward_cols(&g, &dy, rows, &wt, &mut dc);
            let mut dx0 = vec![0.0; n * h * w * cin];
            conv::col2im(&g, &dc, n, &mut dx0);
            let (mut dw1, mut db1) = (vec![0.5; g.kdim() * cout], vec![0.25; cout]);
            backward_weights(&g, &x, n, &gp, &a1, &dy, &mut dw1, &mut db1);
            let mut dx1 = vec![7.0; n * h * w * cin];
            backward_input(&g, n, &dy, &wt, &mut dc, &mut dx1);
            close("dw", &dw0, &dw1, 1e-4);
            close("db", &db0, &db1, 1e-4);
            close("dx", &dx0, &dx1, 1e-4);
        }
    }
}
