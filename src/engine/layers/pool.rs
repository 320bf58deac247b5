//! 2×2 max-pool, stride 2, floor, on channel-last maps `[n, H, W, C]`. Forward records which of
//! the four window positions won (first maximum in scan order, like PyTorch; NaN never wins, as inputs are checked finite); backward routes
//! the gradient there.

/// Forward: `x [n, h, w, c]` → `y [n, h/2, w/2, c]`, `arg [n, h/2, w/2, c]` ∈ 0..4.
pub fn forward(x: &[f32], n: usize, h: usize, w: usize, c: usize, y: &mut [f32], arg: &mut [u8]) {
    let (oh, ow) = (h / 2, w / 2);
    for s in 0..n {
        for i in 0..oh {
            let r0 = &x[((s * h + 2 * i) * w) * c..((s * h + 2 * i) * w + w) * c]; // [w, c] row 2i
            let r1 = &x[((s * h + 2 * i + 1) * w) * c..((s * h + 2 * i + 1) * w + w) * c]; // [w, c] row 2i+1
            let o = (s * oh + i) * ow * c;
            let yr = &mut y[o..o + ow * c]; // [ow, c]
            let ar = &mut arg[o..o + ow * c]; // [ow, c]
            for j in 0..ow {
                let a = &r0[2 * j * c..(2 * j + 1) * c]; // [c] x[2i, 2j]
                let b = &r0[(2 * j + 1) * c..(2 * j + 2) * c]; // [c] x[2i, 2j+1]
                let d = &r1[2 * j * c..(2 * j + 1) * c]; // [c] x[2i+1, 2j]
                let e = &r1[(2 * j + 1) * c..(2 * j + 2) * c]; // [c] x[2i+1, 2j+1]
                let yo = &mut yr[j * c..(j + 1) * c]; // [c]
                let ao = &mut ar[j * c..(j + 1) * c]; // [c]
                for ch in 0..c {
                    // first maximum in scan order wins ties, as in PyTorch
                    let (mut best, mut at) = (a[ch], 0u8);
                    if b[ch] > best {
                        best = b[ch];
                        at = 1;
                    }
                    if d[ch] > best {
                        best = d[ch];
                        at = 2;
                    }
                    if e[ch] > best {
                        best = e[ch];
                        at = 3;
                    }
                    yo[ch] = best;
                    ao[ch] = at;
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
