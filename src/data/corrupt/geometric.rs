//! Geometric corruptions: pixelate (box down- and up-sampling, as PIL `Image.BOX`: whole input
//! pixels whose centres fall in the output pixel's support, so up-sampling is nearest-neighbour), elastic
//! transform (`make_cifar_c`: a random affine warp of three points by ±affine·size, then a smooth
//! displacement field `gaussian(U(−1,1), sigma·size)·alpha·size`, bilinear sampling), rotation by
//! ±degrees and translation by `d` pixels in a random direction (bilinear, reflect border).

use rand::Rng as _;

use super::blur::{gaussian_kernel, separable};
use super::Planes;
use crate::engine::rng::Rng;

/// cv2 `BORDER_REFLECT_101` index (`dcb|abcd|cba`).
pub fn reflect101(i: i64, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let p = 2 * (n as i64 - 1);
    let m = i.rem_euclid(p);
    (if m < n as i64 { m } else { p - m }) as usize
}

/// scipy `mode='reflect'` index (`cba|abcd|dcb`).
pub fn reflect(i: i64, n: usize) -> usize {
    let p = 2 * n as i64;
    let m = i.rem_euclid(p);
    (if m < n as i64 { m } else { p - 1 - m }) as usize
}

/// Bilinear sample of `plane` at (x, y) with a border index map.
pub fn bilinear(plane: &[f32], h: usize, w: usize, x: f32, y: f32, border: fn(i64, usize) -> usize) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let at = |yy: i64, xx: i64| plane[border(yy, h) * w + border(xx, w)];
    (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
        + fy * ((1.0 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))
}

/// Resamples every channel by the inverse map `src(x, y)` of output pixel centres.
fn warp(img: &mut Planes, map: impl Fn(f32, f32) -> (f32, f32), border: fn(i64, usize) -> usize) {
    let (h, w) = (img.h, img.w);
    let src = img.data.clone();
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = map(x as f32, y as f32);
            for c in 0..3 {
                img.data[c * h * w + y * w + x] = bilinear(&src[c * h * w..(c + 1) * h * w], h, w, sx, sy, border);
            }
        }
    }
}

/// Box resampling of one plane from `h×w` to `oh×ow` (area weights, PIL `BOX` support).
fn box_resize(p: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    let weights = |n: usize, on: usize| -> Vec<Vec<(usize, f32)>> {
        let scale = n as f32 / on as f32;
        let support = scale.max(1.0) * 0.5;
        (0..on)
            .map(|o| {
                let centre = (o as f32 + 0.5) * scale;
                // PIL's box filter weighs whole input pixels whose centre lies in [c − s, c + s)
                let (lo, hi) = (centre - support, centre + support);
                let mut ws: Vec<(usize, f32)> = (lo.floor().max(0.0) as usize..(hi.ceil() as usize + 1).min(n))
                    .filter(|&i| {
                        let ci = i as f32 + 0.5;
                        ci >= lo && ci < hi
                    })
                    .map(|i| (i, 1.0))
                    .collect();
                if ws.is_empty() {
                    ws.push(((centre as usize).min(n - 1), 1.0));
                }
                let s: f32 = ws.iter().map(|w| w.1).sum();
                ws.iter_mut().for_each(|w| w.1 /= s);
                ws
            })
            .collect()
    };
    let (wy, wx) = (weights(h, oh), weights(w, ow));
    let mut out = vec![0.0; oh * ow];
    for (oy, ry) in wy.iter().enumerate() {
        for (ox, rx) in wx.iter().enumerate() {
            out[oy * ow + ox] = ry
                .iter()
                .map(|&(y, a)| rx.iter().map(|&(x, b)| a * b * p[y * w + x]).sum::<f32>())
                .sum();
        }
    }
    out
}

pub fn pixelate(img: &mut Planes, c: f32) {
    let (h, w) = (img.h, img.w);
    let (sh, sw) = (((h as f32 * c) as usize).max(1), ((w as f32 * c) as usize).max(1));
    for ch in 0..3 {
        let small = box_resize(img.plane(ch), h, w, sh, sw);
        let back = box_resize(&small, sh, sw, h, w);
        img.data[ch * h * w..(ch + 1) * h * w].copy_from_slice(&back);
    }
}

/// Solves the 2×3 affine `M` with `M·[p;1] = q` for three point pairs (Cramer's rule).
fn affine_from_points(p: [[f32; 2]; 3], q: [[f32; 2]; 3]) -> Option<[[f32; 3]; 2]> {
    let det = |a: [[f32; 3]; 3]| {
        a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
    };
    let a = [
        [p[0][0], p[0][1], 1.0],
        [p[1][0], p[1][1], 1.0],
        [p[2][0], p[2][1], 1.0],
    ];
    let d = det(a);
    if d.abs() < 1e-9 {
        return None;
    }
    let mut m = [[0.0; 3]; 2];
    for (row, mrow) in m.iter_mut().enumerate() {
        for (col, mv) in mrow.iter_mut().enumerate() {
            let mut b = a;
            for k in 0..3 {
                b[k][col] = q[k][row];
            }
            *mv = det(b) / d;
        }
    }
    Some(m)
}

fn invert_affine(m: [[f32; 3]; 2]) -> Option<[[f32; 3]; 2]> {
    let d = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if d.abs() < 1e-9 {
        return None;
    }
    let (a, b, c, e) = (m[1][1] / d, -m[0][1] / d, -m[1][0] / d, m[0][0] / d);
    Some([
        [a, b, -(a * m[0][2] + b * m[1][2])],
        [c, e, -(c * m[0][2] + e * m[1][2])],
    ])
}

/// `make_cifar_c.elastic_transform` with `(alpha, sigma, affine)` as fractions of the size.
pub fn elastic(img: &mut Planes, (alpha, sigma, affine): (f32, f32, f32), r: &mut Rng) {
    let (h, w) = (img.h, img.w);
    let size = h.min(w) as f32;
    let (alpha, sigma, affine) = (alpha * size, sigma * size, affine * size);
    let (cx, cy) = ((w / 2) as f32, (h / 2) as f32);
    let sq = (h.min(w) / 3) as f32;
    let p = [[cx + sq, cy + sq], [cx + sq, cy - sq], [cx - sq, cy - sq]];
    let mut q = p;
    for pt in &mut q {
        for v in pt.iter_mut() {
            *v += if affine > 0.0 {
                r.gen_range(-affine..affine)
            } else {
                0.0
            };
        }
    }
    if let Some(inv) = affine_from_points(p, q).and_then(invert_affine) {
        warp(
            img,
            |x, y| {
                (
                    inv[0][0] * x + inv[0][1] * y + inv[0][2],
                    inv[1][0] * x + inv[1][1] * y + inv[1][2],
                )
            },
            reflect101,
        );
    }
    let field = |r: &mut Rng| -> Vec<f32> {
        let u: Vec<f32> = (0..h * w).map(|_| r.gen_range(-1.0f32..1.0)).collect();
        let s = if sigma > 0.0 {
            separable(&u, h, w, &gaussian_kernel(sigma, 3.0), reflect)
        } else {
            u
        };
        s.into_iter().map(|v| v * alpha).collect()
    };
    let (dx, dy) = (field(r), field(r));
    warp(
        img,
        |x, y| (x + dx[y as usize * w + x as usize], y + dy[y as usize * w + x as usize]),
        reflect,
    );
}

/// Rotation by an angle of `deg` degrees with a random sign, about the image centre.
pub fn rotate(img: &mut Planes, deg: f32, r: &mut Rng) {
    let th = if r.gen::<bool>() { deg } else { -deg }.to_radians();
    let (cs, sn) = (th.cos(), th.sin());
    let (cx, cy) = ((img.w as f32 - 1.0) / 2.0, (img.h as f32 - 1.0) / 2.0);
    warp(
        img,
        |x, y| (cs * (x - cx) + sn * (y - cy) + cx, -sn * (x - cx) + cs * (y - cy) + cy),
        reflect,
    );
}

/// Translation by `d` pixels in a uniformly random direction.
pub fn translate(img: &mut Planes, d: f32, r: &mut Rng) {
    let phi = r.gen_range(0.0..std::f32::consts::TAU);
    let (tx, ty) = (d * phi.cos(), d * phi.sin());
    warp(img, |x, y| (x - tx, y - ty), reflect);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borders_and_affine() {
        assert_eq!(
            (0..7).map(|i| reflect101(i - 2, 3)).collect::<Vec<_>>(),
            vec![2, 1, 0, 1, 2, 1, 0]
        );
        assert_eq!(
            (0..7).map(|i| reflect(i - 2, 3)).collect::<Vec<_>>(),
            vec![1, 0, 0, 1, 2, 2, 1]
        );
        let p = [[1.0, 2.0], [5.0, 1.0], [3.0, 7.0]];
        let q = p.map(|[x, y]| [2.0 * x - y + 3.0, x + 0.5 * y - 1.0]);
        let m = affine_from_points(p, q).unwrap();
        let want = [[2.0, -1.0, 3.0], [1.0, 0.5, -1.0]];
        for i in 0..2 {
            for j in 0..3 {
                assert!((m[i][j] - want[i][j]).abs() < 1e-4);
            }
        }
        let inv = invert_affine(m).unwrap();
        let [x, y] = q[1];
        assert!((inv[0][0] * x + inv[0][1] * y + inv[0][2] - 5.0).abs() < 1e-4);
        // box resize keeps a constant image and the mean of a down-sample
        let p: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let d = box_resize(&p, 4, 4, 2, 2);
        assert_eq!(d, vec![2.5, 4.5, 10.5, 12.5]);
    }
}
