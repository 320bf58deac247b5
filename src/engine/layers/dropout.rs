//! Inverted dropout: keep each value with probability 1−p and scale it by 1/(1−p). Masks are
//! drawn from a seeded stream, one uniform draw per value in storage order, so a model's mask
//! depends only on its seed, the layer and the sample index (not on chunking or threads).

use crate::engine::rng::Rng;
use rand::Rng as _;

/// Draws the scaled mask `m [len]` (0 or 1/(1−p)) and sets `y = x·m`.
pub fn forward(p: f32, x: &[f32], y: &mut [f32], mask: &mut [f32], rng: &mut Rng) {
    let scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
    for ((o, m), &v) in y.iter_mut().zip(mask.iter_mut()).zip(x) {
        let u: f32 = rng.gen();
        *m = if u >= p { scale } else { 0.0 }; // [len]
        *o = v * *m; // [len]
    }
}

/// `g ← g·m` in place.
pub fn backward(mask: &[f32], g: &mut [f32]) {
    for (gi, m) in g.iter_mut().zip(mask) {
        *gi *= m;
    }
}
