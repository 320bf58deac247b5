//! Colour corruptions: contrast `(x − mean_c)·c + mean_c` (per-channel image mean), brightness
//! (HSV value + c), saturate (HSV saturation · a + b), both via the `skimage` HSV conversion,
//! and JPEG re-encoding at a quality.

use super::Planes;

/// RGB on [0, 1] to HSV (h on [0, 1)), as `skimage.color.rgb2hsv`.
pub fn rgb_to_hsv([r, g, b]: [f32; 3]) -> [f32; 3] {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let s = if max > 0.0 { d / max } else { 0.0 };
    let h = if d <= 0.0 {
        0.0
    } else if max == r {
        ((g - b) / d).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / d + 2.0) / 6.0
    } else {
        ((r - g) / d + 4.0) / 6.0
    };
    [h, s, max]
}

/// HSV to RGB, as `skimage.color.hsv2rgb`.
pub fn hsv_to_rgb([h, s, v]: [f32; 3]) -> [f32; 3] {
    let h6 = h.rem_euclid(1.0) * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as u32 % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

fn map_hsv(img: &mut Planes, f: impl Fn([f32; 3]) -> [f32; 3]) {
    let n = img.h * img.w;
    for p in 0..n {
        let rgb = [img.data[p], img.data[n + p], img.data[2 * n + p]].map(|v| v.clamp(0.0, 1.0));
        let out = hsv_to_rgb(f(rgb_to_hsv(rgb)));
        for (c, &v) in out.iter().enumerate() {
            img.data[c * n + p] = v;
        }
    }
}

pub fn contrast(img: &mut Planes, c: f32) {
    let n = img.h * img.w;
    for ch in 0..3 {
        let plane = &mut img.data[ch * n..(ch + 1) * n];
        let mean = plane.iter().map(|&v| v as f64).sum::<f64>() as f32 / n as f32;
        plane.iter_mut().for_each(|v| *v = (*v - mean) * c + mean);
    }
}

pub fn brightness(img: &mut Planes, c: f32) {
    map_hsv(img, |[h, s, v]| [h, s, (v + c).clamp(0.0, 1.0)]);
}

pub fn saturate(img: &mut Planes, mul: f32, add: f32) {
    map_hsv(img, |[h, s, v]| [h, (s * mul + add).clamp(0.0, 1.0), v]);
}

/// Re-encodes as JPEG at `quality` and decodes again (the image crate's baseline encoder).
pub fn jpeg(img: &mut Planes, quality: u8) {
    let (h, w) = (img.h, img.w);
    let n = h * w;
    let mut rgb = vec![0u8; 3 * n];
    for p in 0..n {
        for c in 0..3 {
            rgb[3 * p + c] = (img.data[c * n + p].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    if image::ImageEncoder::write_image(enc, &rgb, w as u32, h as u32, image::ExtendedColorType::Rgb8).is_err() {
        return;
    }
    if let Ok(dec) = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg) {
        let dec = dec.to_rgb8();
        for (p, px) in dec.as_raw().chunks_exact(3).enumerate().take(n) {
            for (c, &v) in px.iter().enumerate() {
                img.data[c * n + p] = v as f32 / 255.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_roundtrip() {
        for rgb in [
            [0.2, 0.5, 0.9],
            [1.0, 0.0, 0.0],
            [0.3, 0.3, 0.3],
            [0.9, 0.8, 0.1],
            [0.0, 0.0, 0.0],
        ] {
            let back = hsv_to_rgb(rgb_to_hsv(rgb));
            for c in 0..3 {
                assert!((back[c] - rgb[c]).abs() < 1e-5, "{rgb:?} -> {back:?}");
            }
        }
    }
}
