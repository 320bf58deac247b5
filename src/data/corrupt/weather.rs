//! Fog: a plasma fractal (diamond-square, `make_cifar_c.plasma_fractal` with map size 32) added
//! to every channel, `x ← clip((x + c·fractal)·max(x)/(max(x) + c))`.

use rand::Rng as _;

use super::Planes;
use crate::engine::rng::Rng;

/// The diamond-square height map of side `size` (a power of two) normalized to [0, 1].
pub fn plasma_fractal(size: usize, decay: f64, r: &mut Rng) -> Vec<f64> {
    let n = size;
    let mut m = vec![0.0f64; n * n];
    let mut step = n;
    let mut wibble = 100.0f64;
    let idx = |y: usize, x: usize| (y % n) * n + (x % n);
    while step >= 2 {
        let half = step / 2;
        // squares: centre = mean of the 4 corners + noise
        for y in (0..n).step_by(step) {
            for x in (0..n).step_by(step) {
                let s = m[idx(y, x)] + m[idx(y + step, x)] + m[idx(y, x + step)] + m[idx(y + step, x + step)];
                m[idx(y + half, x + half)] = s / 4.0 + wibble * r.gen_range(-wibble..=wibble);
            }
        }
        // diamonds: the edge midpoints (periodic), as the numpy roll-based original
        for y in (0..n).step_by(step) {
            for x in (0..n).step_by(step) {
                // top edge midpoint (y, x + half): left/right corners + centres above and below
                let s =
                    m[idx(y, x)] + m[idx(y, x + step)] + m[idx(y + half, x + half)] + m[idx(y + n - half, x + half)];
                m[idx(y, x + half)] = s / 4.0 + wibble * r.gen_range(-wibble..=wibble);
                // left edge midpoint (y + half, x)
                let s =
                    m[idx(y, x)] + m[idx(y + step, x)] + m[idx(y + half, x + half)] + m[idx(y + half, x + n - half)];
                m[idx(y + half, x)] = s / 4.0 + wibble * r.gen_range(-wibble..=wibble);
            }
        }
        step /= 2;
        wibble /= decay;
    }
    let min = m.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = m.iter().cloned().fold(f64::NEG_INFINITY, f64::max) - min;
    m.iter()
        .map(|v| if max > 0.0 { (v - min) / max } else { 0.0 })
        .collect()
}

pub fn fog(img: &mut Planes, amount: f32, decay: f64, r: &mut Rng) {
    let (h, w) = (img.h, img.w);
    let size = h.max(w).next_power_of_two().max(2);
    let f = plasma_fractal(size, decay, r);
    let max = img.data.iter().cloned().fold(0.0f32, f32::max);
    let n = h * w;
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let v = &mut img.data[c * n + y * w + x];
                *v = ((*v + amount * f[y * size + x] as f32) * max / (max + amount)).clamp(0.0, 1.0);
            }
        }
    }
}
