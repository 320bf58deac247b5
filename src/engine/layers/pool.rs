//! 2×2 max-pool, stride 2, floor, on channel-last maps `[n, H, W, C]`. Forward records which of
//! the four window positions won (first maximum in scan order, like PyTorch); backward routes
//! the gradient there.

/// Forward: `x [n, h, w, c]` → `y [n, h/2, w/2, c]`, `arg [n, h/2, w/2, c]` ∈ 0..4.
pub fn forward(x: &[f32], n: usize, h: usize, w: usize, c: usize, y: &mut [f32], arg: &mut [u8]) {
    let (oh, ow) = (h / 2, w / 2);
    for s in 0..n {
        let xs = &x[s * h * w * c..(s + 1) * h * w * c]; // [h, w, c]
        for i in 0..oh {
            for j in 0..ow {
                let o = ((s * oh + i) * ow + j) * c; // start of y[s, i, j, :]
                let p00 = ((2 * i) * w + 2 * j) * c; // x[s, 2i, 2j, :]
                let p01 = p00 + c; // x[s, 2i, 2j+1, :]
                let p10 = p00 + w * c; // x[s, 2i+1, 2j, :]
                let p11 = p10 + c; // x[s, 2i+1, 2j+1, :]
                for ch in 0..c {
                    let mut best = xs[p00 + ch];
                    let mut a = 0u8;
                    for (q, p) in [p01, p10, p11].into_iter().enumerate() {
                        let v = xs[p + ch];
                        if v > best || v.is_nan() {
                            best = v;
                            a = q as u8 + 1;
                        }
                    }
                    y[o + ch] = best; // [n, oh, ow, c]
                    arg[o + ch] = a; // [n, oh, ow, c]
                }
            }
        }
    }
}

/// Backward: `dy [n, h/2, w/2, c]` → `dx [n, h, w, c]` (overwritten).
#[allow(clippy::too_many_arguments)]
pub fn backward(dy: &[f32], arg: &[u8], n: usize, h: usize, w: usize, c: usize, dx: &mut [f32]) {
    let (oh, ow) = (h / 2, w / 2);
    dx[..n * h * w * c].fill(0.0);
    for s in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                let o = ((s * oh + i) * ow + j) * c;
                for ch in 0..c {
                    let a = arg[o + ch] as usize;
                    let (di, dj) = (a / 2, a % 2);
                    dx[((s * h + 2 * i + di) * w + 2 * j + dj) * c + ch] += dy[o + ch];
                }
            }
        }
    }
}
