//! Blurs: gaussian (`skimage.filters.gaussian`, truncate 4, border `nearest`) and defocus (an
//! aliased disk of the given radius smoothed by a 3×3 gaussian, as `make_cifar_c.disk`, applied
//! with `cv2.filter2D`'s default reflect-101 border).

use super::geometric::reflect101;
use super::Planes;

/// A normalized 1-D gaussian kernel of radius `⌊truncate·σ + 0.5⌋`.
pub fn gaussian_kernel(sigma: f32, truncate: f32) -> Vec<f32> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let rad = (truncate * sigma + 0.5) as i32;
    let k: Vec<f32> = (-rad..=rad)
        .map(|x| (-(x * x) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Separable filtering of one plane with border index map `border(i, n)`.
pub fn separable(p: &[f32], h: usize, w: usize, k: &[f32], border: fn(i64, usize) -> usize) -> Vec<f32> {
    let r = (k.len() / 2) as i64;
    let mut tmp = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = k
                .iter()
                .enumerate()
                .map(|(j, &kv)| kv * p[y * w + border(x as i64 + j as i64 - r, w)])
                .sum();
        }
    }
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = k
                .iter()
                .enumerate()
                .map(|(j, &kv)| kv * tmp[border(y as i64 + j as i64 - r, h) * w + x])
                .sum();
        }
    }
    out
}

fn nearest(i: i64, n: usize) -> usize {
    i.clamp(0, n as i64 - 1) as usize
}

pub fn gaussian(img: &mut Planes, sigma: f32) {
    let k = gaussian_kernel(sigma, 4.0);
    let (h, w) = (img.h, img.w);
    for c in 0..3 {
        let out = separable(img.plane(c), h, w, &k, nearest);
        img.data[c * h * w..(c + 1) * h * w].copy_from_slice(&out);
    }
}

/// The `make_cifar_c` defocus kernel: disk on a 17×17 grid, 3×3 gaussian with σ = `alias`.
pub fn disk_kernel(radius: f32, alias: f32) -> Vec<f32> {
    let n = 17usize;
    let mut d: Vec<f32> = (0..n * n)
        .map(|i| {
            let (x, y) = ((i % n) as f32 - 8.0, (i / n) as f32 - 8.0);
            if x * x + y * y <= radius * radius {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let s: f32 = d.iter().sum();
    d.iter_mut().for_each(|v| *v /= s);
    let g = {
        let k: Vec<f32> = [-1.0f32, 0.0, 1.0]
            .iter()
            .map(|x| (-(x * x) / (2.0 * alias * alias)).exp())
            .collect();
        let s: f32 = k.iter().sum();
        k.into_iter().map(|v| v / s).collect::<Vec<_>>()
    };
    separable(&d, n, n, &g, reflect101)
}

pub fn defocus(img: &mut Planes, radius: f32, alias: f32) {
    let k = disk_kernel(radius, alias);
    let (h, w) = (img.h, img.w);
    // keep only the nonzero support of the 17×17 kernel
    let taps: Vec<(i64, i64, f32)> = (0..17 * 17)
        .filter(|&i| k[i] > 1e-7)
        .map(|i| ((i % 17) as i64 - 8, (i / 17) as i64 - 8, k[i]))
        .collect();
    for c in 0..3 {
        let p = img.plane(c).to_vec();
        for y in 0..h {
            for x in 0..w {
                img.data[c * h * w + y * w + x] = taps
                    .iter()
                    .map(|&(dx, dy, kv)| kv * p[reflect101(y as i64 + dy, h) * w + reflect101(x as i64 + dx, w)])
                    .sum();
            }
        }
    }
}
