//! Shape transforms to the common model input 3×32×32: gray → 3 channels (repeat), images
//! smaller than 32 are zero-padded centred (28 → 32 pads 2 on each side), sides that are integer
//! multiples of 32 are area-averaged (96 → 32 averages 3×3 blocks), any other size is resized
//! with a triangle (bilinear) filter.

use rayon::prelude::*;

use super::error::DataError;
use super::Dataset;

/// The common model input side.
pub const SIDE: usize = 32;

/// Converts one CHW image to 3×32×32.
pub fn image_to_common(src: &[u8], [c, h, w]: [usize; 3]) -> Vec<u8> {
    let plane = SIDE * SIDE;
    let mut out = vec![0u8; 3 * plane];
    for oc in 0..3 {
        let ch = &src[(oc % c) * h * w..(oc % c + 1) * h * w];
        let dst = &mut out[oc * plane..(oc + 1) * plane];
        if h <= SIDE && w <= SIDE {
            let (top, left) = ((SIDE - h) / 2, (SIDE - w) / 2);
            for y in 0..h {
                dst[(top + y) * SIDE + left..(top + y) * SIDE + left + w].copy_from_slice(&ch[y * w..(y + 1) * w]);
            }
        } else if h % SIDE == 0 && w % SIDE == 0 {
            let (fy, fx) = (h / SIDE, w / SIDE);
            let area = (fy * fx) as u32;
            for y in 0..SIDE {
                for x in 0..SIDE {
                    let mut s = 0u32;
                    for dy in 0..fy {
                        let row = &ch[(y * fy + dy) * w + x * fx..(y * fy + dy) * w + x * fx + fx];
                        s += row.iter().map(|&v| v as u32).sum::<u32>();
                    }
                    dst[y * SIDE + x] = ((s + area / 2) / area) as u8;
                }
            }
        } else {
            let img = image::GrayImage::from_raw(w as u32, h as u32, ch.to_vec());
            if let Some(img) = img {
                let r = image::imageops::resize(&img, SIDE as u32, SIDE as u32, image::imageops::FilterType::Triangle);
                dst.copy_from_slice(r.as_raw());
            }
        }
    }
    out
}

/// Converts a dataset to 3×32×32 (a no-op when it already is).
pub fn to_common(ds: Dataset) -> Result<Dataset, DataError> {
    let [c, h, w] = ds.shape;
    if ds.shape == [3, SIDE, SIDE] {
        return Ok(ds);
    }
    if c != 1 && c != 3 {
        return Err(DataError::format(
            &ds.name,
            format!("{c} channels: only gray (1) and RGB (3) are supported"),
        ));
    }
    if h == 0 || w == 0 {
        return Err(DataError::format(&ds.name, format!("empty image size {h}×{w}")));
    }
    let per = c * h * w;
    let mut images = vec![0u8; ds.len() * 3 * SIDE * SIDE];
    images
        .par_chunks_mut(3 * SIDE * SIDE)
        .zip(ds.images.par_chunks(per))
        .for_each(|(dst, src)| {
            dst.copy_from_slice(&image_to_common(src, ds.shape));
        });
    Ok(Dataset {
        images,
        shape: [3, SIDE, SIDE],
        ..ds
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_repeats_and_averages() {
        let gray: Vec<u8> = (0..28 * 28).map(|i| (i % 200) as u8 + 1).collect();
        let out = image_to_common(&gray, [1, 28, 28]);
        assert_eq!(out[0], 0);
        assert_eq!(out[2 * 32 + 2], gray[0]);
        assert_eq!(out[1024 + 2 * 32 + 2], gray[0]);
        assert_eq!(out[2048 + 29 * 32 + 29], gray[27 * 28 + 27]);
        assert_eq!(
            out.iter().map(|&v| v as u64).sum::<u64>(),
            3 * gray.iter().map(|&v| v as u64).sum::<u64>()
        );
        let mut big = vec![0u8; 3 * 96 * 96];
        big[0] = 90; // block (0,0) of channel 0 averages 90/9 = 10
        big[2 * 96 * 96 + 95 * 96 + 95] = 255;
        let out = image_to_common(&big, [3, 96, 96]);
        assert_eq!((out[0], out[1], out[2048 + 1023]), (10, 0, 28));
        let odd = vec![77u8; 3 * 40 * 50];
        assert!(image_to_common(&odd, [3, 40, 50]).iter().all(|&v| v == 77));
    }
}
