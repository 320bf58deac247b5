//! Pixel noise: gaussian `x + N(0, c)`, shot `Poisson(x·c)/c`, impulse (salt & pepper on a
//! fraction c of the values, as `skimage.util.random_noise(mode='s&p')`), speckle `x + x·N(0, c)`.

use rand::Rng as _;
use rand_distr::{Distribution, Normal, Poisson};

use super::Planes;
use crate::engine::rng::Rng;

pub fn gaussian(img: &mut Planes, sd: f32, r: &mut Rng) {
    if let Ok(n) = Normal::new(0.0f32, sd) {
        for v in &mut img.data {
            *v += n.sample(r);
        }
    }
}

pub fn speckle(img: &mut Planes, sd: f32, r: &mut Rng) {
    if let Ok(n) = Normal::new(0.0f32, sd) {
        for v in &mut img.data {
            *v += *v * n.sample(r);
        }
    }
}

pub fn shot(img: &mut Planes, c: f64, r: &mut Rng) {
    for v in &mut img.data {
        let lambda = (*v as f64 * c).max(0.0);
        *v = if lambda > 0.0 {
            match Poisson::new(lambda) {
                Ok(p) => (p.sample(r) / c) as f32,
                Err(_) => *v,
            }
        } else {
            0.0
        };
    }
}

pub fn impulse(img: &mut Planes, amount: f32, r: &mut Rng) {
    for v in &mut img.data {
        if r.gen::<f32>() < amount {
            *v = if r.gen::<bool>() { 1.0 } else { 0.0 };
        }
    }
}
