//! Image arrays as users hand them over: the pixel scale and the axis layout of an `.npy` array
//! (or of a caller's buffer, e.g. a NumPy array from the Python package) turned into the u8 CHW
//! images of a [`Dataset`].
//!
//! Scale: `uint8` is taken as is; `float32`/`float64` arrays whose values all lie in [0, 1] are
//! multiplied by 255, those in [0, 255] (with some value above 1) are taken as pixel values; both
//! are rounded to the nearest integer. Anything else (negative values, values above 255, NaN — a
//! normalized tensor, say) is refused with the range found, since the normalization is unknown.
//! An all-dark [0, 255] image whose values never exceed 1 reads as [0, 1]; give `uint8` then.
//!
//! Layout: `[N, H, W]` is gray; `[N, H, W, C]` (channels last) or `[N, C, H, W]` (channels first)
//! with C ∈ {1, 3}, told apart by which axis has 1 or 3 entries. A 4-D shape where both axes do
//! (e.g. `[N, 3, 3, 3]`) and a 3-D shape ending in 1 or 3 (one `[H, W, C]` image, or N gray images
//! of width 1 or 3?) are ambiguous and refused with what to reshape to.

use std::path::Path;

use super::error::DataError;
use super::npy::NpyArray;
use super::Dataset;

/// The element type of an image buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelType {
    U8,
    F32,
    F64,
}

impl PixelType {
    /// The type of an `.npy` dtype descriptor (`|u1`, `<f4`, `<f8`), None for any other.
    pub fn from_descr(descr: &str) -> Option<PixelType> {
        match descr {
            "|u1" | "<u1" | "=u1" => Some(PixelType::U8),
            "<f4" | "=f4" => Some(PixelType::F32),
            "<f8" | "=f8" => Some(PixelType::F64),
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            PixelType::U8 => 1,
            PixelType::F32 => 4,
            PixelType::F64 => 8,
        }
    }
}

/// `(n, [c, h, w], channels_last)` of an image-array shape (see the module doc).
pub fn image_layout(shape: &[usize]) -> Result<(usize, [usize; 3], bool), String> {
    let ch = |d: usize| d == 1 || d == 3;
    match *shape {
        [n, h, w] if ch(w) => Err(format!(
            "shape [{n}, {h}, {w}] is ambiguous: one {n}×{h} image with {w} channel(s), or {n} gray {h}×{w} images? \
             Reshape to [1, {n}, {h}, {w}] (one image) or [N, H, W] with W > 3"
        )),
        [n, h, w] => Ok((n, [1, h, w], false)),
        [n, a, b, c] if ch(a) && ch(c) => Err(format!(
            "shape [{n}, {a}, {b}, {c}] is ambiguous: both axis 1 and axis 3 could hold the channels"
        )),
        [n, h, w, c] if ch(c) => Ok((n, [c, h, w], true)),
        [n, c, h, w] if ch(c) => Ok((n, [c, h, w], false)),
        _ => Err(format!(
            "image shape {shape:?}: expected [N,H,W], [N,H,W,C] or [N,C,H,W] with C ∈ {{1,3}}"
        )),
    }
}

/// The values of a little-endian buffer of `ty` as f64 (u8 buffers are not converted).
fn value(ty: PixelType, b: &[u8]) -> f64 {
    match ty {
        PixelType::U8 => b[0] as f64,
        PixelType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        PixelType::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
    }
}

/// Pixel values `[len]` as u8 (see the module doc for the scale rule); `what` names the source.
pub fn to_pixels(what: &str, ty: PixelType, data: &[u8]) -> Result<Vec<u8>, String> {
    if ty == PixelType::U8 {
        return Ok(data.to_vec());
    }
    let size = ty.size();
    if !data.len().is_multiple_of(size) {
        return Err(format!(
            "{what}: {} bytes are not a whole number of {size}-byte values",
            data.len()
        ));
    }
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, c) in data.chunks_exact(size).enumerate() {
        let v = value(ty, c);
        if !v.is_finite() {
            return Err(format!("{what}: value {i} is {v}"));
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let scale = if lo >= 0.0 && hi <= 1.0 {
        255.0
    } else if lo >= 0.0 && hi <= 255.0 {
        1.0
    } else {
        return Err(format!(
            "{what}: float values span [{lo}, {hi}]; expected pixels on [0, 1] or [0, 255] \
             (undo any mean/std normalization first)"
        ));
    };
    Ok(data
        .chunks_exact(size)
        .map(|c| (value(ty, c) * scale).round().clamp(0.0, 255.0) as u8)
        .collect())
}

/// u8 CHW images `[n, c, h, w]` and their `[c, h, w]` from a buffer of `ty` with `shape`.
pub fn images_from_buffer(
    what: &str,
    ty: PixelType,
    shape: &[usize],
    data: &[u8],
) -> Result<(Vec<u8>, [usize; 3]), String> {
    let (n, [c, h, w], last) = image_layout(shape).map_err(|e| format!("{what}: {e}"))?;
    let per = c * h * w;
    let want = n
        .checked_mul(per)
        .and_then(|v| v.checked_mul(ty.size()))
        .ok_or_else(|| format!("{what}: shape {shape:?} overflows"))?;
    if per == 0 {
        return Err(format!("{what}: image shape {shape:?} has an empty dimension"));
    }
    if n == 0 {
        return Err(format!("{what}: shape {shape:?} holds no image"));
    }
    if data.len() != want {
        return Err(format!(
            "{what}: shape {shape:?} needs {want} bytes, got {}",
            data.len()
        ));
    }
    let px = to_pixels(what, ty, data)?;
    if !last || c == 1 {
        return Ok((px, [c, h, w]));
    }
    let mut out = vec![0u8; px.len()];
    for (src, dst) in px.chunks_exact(per).zip(out.chunks_exact_mut(per)) {
        for p in 0..h * w {
            for ch in 0..c {
                dst[ch * h * w + p] = src[p * c + ch];
            }
        }
    }
    Ok((out, [c, h, w]))
}

/// The images of a decoded `.npy` array at `path` (u8, f32 or f64; see the module doc).
pub fn images_from_npy(path: &Path, x: &NpyArray) -> Result<(Vec<u8>, [usize; 3]), DataError> {
    let ty = PixelType::from_descr(&x.descr).ok_or_else(|| {
        DataError::format(
            path,
            format!("images must be uint8, float32 or float64, dtype is `{}`", x.descr),
        )
    })?;
    images_from_buffer("images", ty, &x.shape, &x.data).map_err(|e| DataError::format(path, e))
}

/// An unlabeled dataset named `name` from the image array at `path`.
pub fn unlabeled_from_npy(name: &str, path: &Path, x: &NpyArray) -> Result<Dataset, DataError> {
    let (images, shape) = images_from_npy(path, x)?;
    Dataset::unlabeled(name, images, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn scales_unit_and_byte_floats() {
        let unit = f32_bytes(&[0.0, 0.5, 1.0, 0.2]);
        assert_eq!(to_pixels("x", PixelType::F32, &unit).unwrap(), vec![0, 128, 255, 51]);
        let bytes = f32_bytes(&[0.0, 2.0, 255.0, 127.6]);
        assert_eq!(to_pixels("x", PixelType::F32, &bytes).unwrap(), vec![0, 2, 255, 128]);
        let f64s: Vec<u8> = [0.25f64, 1.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(to_pixels("x", PixelType::F64, &f64s).unwrap(), vec![64, 255]);
        for bad in [vec![-0.4f32, 0.3], vec![0.0, 256.0], vec![f32::NAN, 0.0]] {
            let e = to_pixels("batch", PixelType::F32, &f32_bytes(&bad)).unwrap_err();
            assert!(e.starts_with("batch:"), "{e}");
        }
    }

    #[test]
    fn finds_the_channel_axis_and_refuses_ambiguity() {
        assert_eq!(image_layout(&[5, 28, 28]).unwrap(), (5, [1, 28, 28], false));
        assert_eq!(image_layout(&[5, 28, 28, 1]).unwrap(), (5, [1, 28, 28], true));
        assert_eq!(image_layout(&[5, 3, 32, 32]).unwrap(), (5, [3, 32, 32], false));
        assert_eq!(image_layout(&[5, 32, 32, 3]).unwrap(), (5, [3, 32, 32], true));
        assert!(image_layout(&[28, 28, 1]).unwrap_err().contains("ambiguous"));
        assert!(image_layout(&[2, 3, 5, 3]).unwrap_err().contains("ambiguous"));
        assert!(image_layout(&[2, 5, 5, 5]).is_err());
        assert!(image_layout(&[2, 5]).is_err());
    }

    #[test]
    fn nhwc_and_nchw_give_the_same_images() {
        // 1 image, 2×2, RGB; channel c of pixel p is 10·c + p
        let chw: Vec<f32> = (0..3).flat_map(|c| (0..4).map(move |p| (10 * c + p) as f32)).collect();
        let hwc: Vec<f32> = (0..4).flat_map(|p| (0..3).map(move |c| (10 * c + p) as f32)).collect();
        let a = images_from_buffer("a", PixelType::F32, &[1, 3, 2, 2], &f32_bytes(&chw)).unwrap();
        let b = images_from_buffer("b", PixelType::F32, &[1, 2, 2, 3], &f32_bytes(&hwc)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.1, [3, 2, 2]);
        assert_eq!(a.0[4..8], [10, 11, 12, 13]);
        assert!(images_from_buffer("c", PixelType::F32, &[2, 3, 2, 2], &f32_bytes(&chw)).is_err());
    }

    #[test]
    fn arrays_without_labels_read_as_unlabeled_datasets() {
        use crate::data::npy;
        let dir = tempfile::tempdir().unwrap();
        let x = npy::write_npy("<f4", &[2, 28, 28, 1], &f32_bytes(&vec![0.5; 2 * 784]));
        let one = dir.path().join("batch.npy");
        std::fs::write(&one, &x).unwrap();
        let d = crate::data::load(&format!("npy:{}", one.display())).unwrap();
        assert!(!d.is_labeled());
        assert_eq!((d.len(), d.shape), (2, [3, 32, 32]));
        assert_eq!(d.image(0)[2 * 32 + 2], 128);
        assert!(d
            .require_labels("training")
            .unwrap_err()
            .to_string()
            .contains("needs labels"));
        // a directory with x.npy only is unlabeled; with y.npy it is labeled
        std::fs::write(dir.path().join("x.npy"), &x).unwrap();
        let spec = format!("npy:{}", dir.path().display());
        assert!(!crate::data::load(&spec).unwrap().is_labeled());
        std::fs::write(dir.path().join("y.npy"), npy::write_npy("|u1", &[2], &[3, 1])).unwrap();
        let d = crate::data::load(&spec).unwrap();
        assert!(d.is_labeled());
        assert_eq!(d.labels, vec![3, 1]);
    }
}
