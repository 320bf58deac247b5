//! The built-in synthetic image set "shapes": 10 classes of 32×32 RGB glyphs drawn in code with
//! random pose (position, scale, rotation ±20°), colours, background gradient/texture and pixel
//! noise, deterministic from a seed (one RNG stream per image, so any thread count gives the same
//! bytes). 5,000 images take well under a second.
//!
//! Classes: 0 disk, 1 square, 2 triangle, 3 plus, 4 ring, 5 bars, 6 x-cross, 7 L-shape,
//! 8 two dots, 9 frame. The shapes differ in topology or in orientation by more than the pose
//! range, so the label is a function of the image.
//!
//! **Covariate shift.** The *source* domain draws bright foregrounds on dark, smooth backgrounds
//! with little noise; the *shifted* domain draws dark, smaller glyphs on bright checkerboard
//! textures with stronger noise (same shapes, same labels: p(y|x) is unchanged). The knob
//! `shift = s ∈ [0, 1]` is the fraction of images drawn from the shifted domain (chosen per image).
//!
//! **Spec names** (`synthetic:NAME[:SPLIT]`): NAME is `shapes` (shift 0) or `shapes-shift` (shift 1),
//! optionally followed by comma-separated options `n=COUNT`, `seed=SEED`, `shift=S`:
//! `synthetic:shapes:train` (5,000 images), `synthetic:shapes:val` and `synthetic:shapes:test`
//! (1,000 each), `synthetic:shapes-shift:test`, `synthetic:shapes,shift=0.3,n=500,seed=2:test`.
//! The split names its own RNG stream, so train, val and test are disjoint draws.

use rand::Rng as _;
use rayon::prelude::*;

use super::error::DataError;
use super::Dataset;
use crate::engine::rng;

/// Class names of the shapes set.
pub const SHAPE_CLASSES: &[&str] = &[
    "disk", "square", "triangle", "plus", "ring", "bars", "x-cross", "L", "dots", "frame",
];

const SIDE: usize = 32;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    pub count: usize,
    pub seed: u64,
    /// Fraction of images from the shifted domain, in [0, 1].
    pub shift: f32,
    /// Names the RNG stream (use the split name).
    pub split: String,
}

/// Is the canonical point (u, v) ∈ [-1, 1]² (y down) inside the glyph of `class`?
fn inside(class: u32, u: f32, v: f32) -> bool {
    let r = (u * u + v * v).sqrt();
    let plus = |a: f32, b: f32| (a.abs() < 0.25 && b.abs() < 0.85) || (b.abs() < 0.25 && a.abs() < 0.85);
    match class {
        0 => r < 0.8,
        1 => u.abs() < 0.7 && v.abs() < 0.7,
        2 => v < 0.7 && v > -0.8 && u.abs() < 0.8 * (v + 0.8) / 1.5,
        3 => plus(u, v),
        4 => r > 0.45 && r < 0.85,
        5 => u.abs() < 0.85 && (v.abs() < 0.17 || (v.abs() > 0.5 && v.abs() < 0.85)),
        6 => {
            let s = std::f32::consts::FRAC_1_SQRT_2;
            plus((u + v) * s, (v - u) * s)
        }
        7 => (u > -0.7 && u < -0.3 && v.abs() < 0.8) || (v > 0.4 && v < 0.8 && u.abs() < 0.7),
        8 => ((u + 0.45).powi(2) + v * v).sqrt() < 0.35 || ((u - 0.45).powi(2) + v * v).sqrt() < 0.35,
        _ => u.abs() < 0.8 && v.abs() < 0.8 && !(u.abs() < 0.45 && v.abs() < 0.45),
    }
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
    let f = h6 - h6.floor();
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match h6 as u32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Renders image `index` of `cfg` with label `class` into `out` (`[3, 32, 32]`).
fn render(cfg: &SyntheticConfig, index: usize, class: u32, out: &mut [u8]) {
    let mut r = rng::stream(cfg.seed, &format!("synthetic/{}", cfg.split), index as u64);
    let shifted = r.gen::<f32>() < cfg.shift;
    let (fg_v, bg_v, scale, noise) = if shifted {
        (
            r.gen_range(0.05..0.35),
            r.gen_range(0.6..1.0),
            r.gen_range(7.0..10.0),
            20.0,
        )
    } else {
        (
            r.gen_range(0.6..1.0),
            r.gen_range(0.0..0.3),
            r.gen_range(9.0..13.0),
            6.0,
        )
    };
    let fg = hsv(r.gen(), r.gen_range(0.3..1.0), fg_v);
    let bg1 = hsv(r.gen(), r.gen_range(0.0..0.8), bg_v);
    let bg2 = hsv(
        r.gen(),
        r.gen_range(0.0..0.8),
        (bg_v + r.gen_range(-0.15..0.15)).clamp(0.0, 1.0),
    );
    let theta: f32 = r.gen_range(-20f32..20.0).to_radians();
    let (cx, cy) = (16.0 + r.gen_range(-4.0..4.0), 16.0 + r.gen_range(-4.0..4.0));
    let (gdx, gdy): (f32, f32) = (r.gen_range(-1.0..1.0), r.gen_range(-1.0..1.0));
    let checker = r.gen_range(2..5);
    let (cs, sn) = (theta.cos(), theta.sin());
    let plane = SIDE * SIDE;
    for y in 0..SIDE {
        for x in 0..SIDE {
            // 2×2 supersampled coverage of the glyph
            let mut cov = 0.0;
            for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (dx, dy) = (x as f32 + sx - cx, y as f32 + sy - cy);
                let (u, v) = ((cs * dx + sn * dy) / scale, (-sn * dx + cs * dy) / scale);
                if inside(class, u, v) {
                    cov += 0.25;
                }
            }
            let t = if shifted {
                ((x / checker + y / checker) % 2) as f32
            } else {
                (((x as f32 - 16.0) * gdx + (y as f32 - 16.0) * gdy) / 45.0 + 0.5).clamp(0.0, 1.0)
            };
            for c in 0..3 {
                let bg = bg1[c] * (1.0 - t) + bg2[c] * t;
                let val = (bg * (1.0 - cov) + fg[c] * cov) * 255.0 + noise * (r.gen::<f32>() - 0.5) * 2.0;
                out[c * plane + y * SIDE + x] = val.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Generates a balanced set (labels cycle 0..9, so every class has ⌊n/10⌋ or ⌈n/10⌉ images).
pub fn generate(cfg: &SyntheticConfig) -> Result<Dataset, DataError> {
    if !(0.0..=1.0).contains(&cfg.shift) {
        return Err(DataError::arg("shift", format!("{} is outside [0, 1]", cfg.shift)));
    }
    if cfg.count == 0 {
        return Err(DataError::arg("n", "synthetic count must be positive"));
    }
    let per = 3 * SIDE * SIDE;
    crate::limits::check_alloc(
        &format!("synthetic n={} ({per} bytes an image)", cfg.count),
        crate::limits::product(&[cfg.count, per + 4]),
    )
    .map_err(|e| DataError::arg("n", e.to_string()))?;
    let labels: Vec<u32> = (0..cfg.count).map(|i| (i % 10) as u32).collect();
    let mut images = vec![0u8; cfg.count * per];
    images
        .par_chunks_mut(per)
        .enumerate()
        .for_each(|(i, out)| render(cfg, i, labels[i], out));
    let name = format!(
        "synthetic:shapes,shift={},n={},seed={}:{}",
        cfg.shift, cfg.count, cfg.seed, cfg.split
    );
    Dataset::new(
        name,
        images,
        labels,
        [3, SIDE, SIDE],
        SHAPE_CLASSES.iter().map(|s| s.to_string()).collect(),
    )
}

/// Builds from a spec NAME (`shapes`/`shapes-shift` + options) and split.
pub fn from_spec(name: &str, split: &str) -> Result<Dataset, DataError> {
    let bad = |reason: String| DataError::Spec {
        spec: format!("synthetic:{name}:{split}"),
        reason,
    };
    let mut parts = name.split(',');
    let base = parts.next().unwrap_or("");
    let mut shift = match base {
        "shapes" => 0.0,
        "shapes-shift" => 1.0,
        other => {
            return Err(bad(format!(
                "unknown synthetic set `{other}` (known: shapes, shapes-shift)"
            )))
        }
    };
    let mut count = match split {
        "train" => 5000,
        "val" | "test" => 1000,
        other => return Err(bad(format!("split `{other}`: synthetic sets have train, val, test"))),
    };
    let mut seed = 0u64;
    for opt in parts {
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| bad(format!("option `{opt}` is not KEY=VALUE")))?;
        let num = || bad(format!("option `{k}`: `{v}` is not a number"));
        match k {
            "n" => count = v.parse().map_err(|_| num())?,
            "seed" => seed = v.parse().map_err(|_| num())?,
            "shift" => shift = v.parse().map_err(|_| num())?,
            _ => return Err(bad(format!("unknown option `{k}` (known: n, seed, shift)"))),
        }
    }
    generate(&SyntheticConfig {
        count,
        seed,
        shift,
        split: split.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_balanced_and_fast() {
        let t = std::time::Instant::now();
        let a = from_spec("shapes", "train").unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!((a.len(), a.shape), (5000, [3, 32, 32]));
        assert!(secs < 2.0, "5,000 images took {secs:.2}s");
        assert_eq!(a.per_class(), vec![500; 10]);
        let b = from_spec("shapes,n=50", "train").unwrap();
        assert_eq!(b.images[..], a.images[..50 * 3072]);
        let t = from_spec("shapes,n=50", "test").unwrap();
        assert_ne!(t.images, b.images);
        assert!(from_spec("shapes,shift=2", "test").is_err());
        assert!(from_spec("circles", "test").is_err());
        assert!(from_spec("shapes,bogus=1", "test").is_err());
    }

    #[test]
    fn glyph_masks_are_distinct_and_the_shift_changes_pixels() {
        // the canonical masks differ pairwise on a 64×64 grid, also under ±20° rotation
        let mask = |c: u32, th: f32| -> Vec<bool> {
            let (cs, sn) = (th.cos(), th.sin());
            (0..64 * 64)
                .map(|i| {
                    let (x, y) = ((i % 64) as f32 / 32.0 - 1.0, (i / 64) as f32 / 32.0 - 1.0);
                    inside(c, cs * x + sn * y, -sn * x + cs * y)
                })
                .collect()
        };
        for a in 0..10 {
            for b in 0..10 {
                if a == b {
                    continue;
                }
                let ma = mask(a, 0.0);
                let mb = mask(b, 20f32.to_radians());
                let diff = ma.iter().zip(&mb).filter(|(x, y)| x != y).count();
                assert!(diff > 150, "classes {a} and {b} differ in only {diff} pixels");
            }
        }
        let src = from_spec("shapes,n=200", "test").unwrap();
        let sh = from_spec("shapes-shift,n=200", "test").unwrap();
        let mean = |d: &Dataset| d.images.iter().map(|&v| v as f64).sum::<f64>() / d.images.len() as f64;
        assert!(mean(&sh) > mean(&src) + 40.0, "{} vs {}", mean(&sh), mean(&src));
    }

    /// Issue item 9: a count beyond the memory budget was an abort, now an error naming `n`.
    #[test]
    fn huge_counts_are_errors() {
        let e = crate::data::load("synthetic:shapes,n=99999999999999")
            .unwrap_err()
            .to_string();
        assert!(e.contains("n=99999999999999") && e.contains("memory budget"), "{e}");
    }
}
