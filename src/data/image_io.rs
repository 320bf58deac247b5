//! Writing images: PNG grids a person can look at (`data show`) and dataset exports as PNG
//! folders (`DIR/<split>/<class>/NNNNN.png`, readable by the `folder` kind) or `.npy` arrays
//! (`DIR/<split>_x.npy` `[N, H, W, C]` u8 + `DIR/<split>_y.npy` int64 + `classes.txt`, readable by
//! the `npy` kind).

use std::path::Path;

use rayon::prelude::*;

use super::error::DataError;
use super::npy::write_npy;
use super::Dataset;

/// One image of `ds` as interleaved RGB (gray repeated), `[H, W, 3]`.
pub fn to_rgb(ds: &Dataset, i: usize) -> Vec<u8> {
    let [c, h, w] = ds.shape;
    let img = ds.image(i);
    let mut out = vec![0u8; h * w * 3];
    for p in 0..h * w {
        for k in 0..3 {
            out[3 * p + k] = img[(k % c) * h * w + p];
        }
    }
    out
}

fn save_rgb(path: &Path, rgb: Vec<u8>, w: usize, h: usize) -> Result<(), DataError> {
    let img = image::RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| DataError::format(path, "image buffer has the wrong size"))?;
    img.save(path)
        .map_err(|e| DataError::format(path, format!("cannot write PNG: {e}")))
}

/// Saves a grid: `rows[r][c] = (dataset, index)` (None leaves a blank cell), each image
/// upscaled `scale`× (nearest), with a 2-pixel gap.
pub fn save_grid(path: &Path, rows: &[Vec<Option<(&Dataset, usize)>>], scale: usize) -> Result<(), DataError> {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let first = rows
        .iter()
        .flatten()
        .flatten()
        .next()
        .ok_or_else(|| DataError::arg("grid", "no images to draw"))?;
    let [_, h, w] = first.0.shape;
    let (ch, cw) = (h * scale + 2, w * scale + 2);
    let (gh, gw) = (rows.len() * ch + 2, cols * cw + 2);
    let mut grid = vec![40u8; gh * gw * 3];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let Some((ds, i)) = cell else { continue };
            if ds.shape[1..] != [h, w] {
                return Err(DataError::arg("grid", "all images in a grid must have the same size"));
            }
            let rgb = to_rgb(ds, *i);
            for y in 0..h * scale {
                for x in 0..w * scale {
                    let (gy, gx) = (2 + r * ch + y, 2 + c * cw + x);
                    let s = 3 * ((y / scale) * w + x / scale);
                    grid[3 * (gy * gw + gx)..3 * (gy * gw + gx) + 3].copy_from_slice(&rgb[s..s + 3]);
                }
            }
        }
    }
    save_rgb(path, grid, gw, gh)
}

/// Writes `DIR/<split>/<class>/NNNNN.png` for every image.
pub fn export_png_folder(ds: &Dataset, dir: &Path, split: &str) -> Result<(), DataError> {
    let [_, h, w] = ds.shape;
    for name in &ds.class_names {
        if name.contains('/') || name.contains('\\') || name == ".." {
            return Err(DataError::arg(
                "class name",
                format!("`{name}` cannot be a directory name"),
            ));
        }
        let d = dir.join(split).join(name);
        std::fs::create_dir_all(&d).map_err(|e| DataError::io(&d, e))?;
    }
    (0..ds.len()).into_par_iter().try_for_each(|i| {
        let p = dir
            .join(split)
            .join(&ds.class_names[ds.labels[i] as usize])
            .join(format!("{i:05}.png"));
        save_rgb(&p, to_rgb(ds, i), w, h)
    })
}

/// Writes `DIR/<split>_x.npy` (`[N, H, W, C]` u8), `DIR/<split>_y.npy` (int64) and `DIR/classes.txt`.
pub fn export_npy(ds: &Dataset, dir: &Path, split: &str) -> Result<(), DataError> {
    let [c, h, w] = ds.shape;
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let mut hwc = vec![0u8; ds.images.len()];
    for i in 0..ds.len() {
        let img = ds.image(i);
        let dst = &mut hwc[i * c * h * w..(i + 1) * c * h * w];
        for p in 0..h * w {
            for k in 0..c {
                dst[p * c + k] = img[k * h * w + p];
            }
        }
    }
    let labels: Vec<u8> = ds.labels.iter().flat_map(|&l| (l as i64).to_le_bytes()).collect();
    let files = [
        (
            dir.join(format!("{split}_x.npy")),
            write_npy("|u1", &[ds.len(), h, w, c], &hwc),
        ),
        (
            dir.join(format!("{split}_y.npy")),
            write_npy("<i8", &[ds.len()], &labels),
        ),
        (dir.join("classes.txt"), (ds.class_names.join("\n") + "\n").into_bytes()),
    ];
    for (p, bytes) in files {
        crate::fsio::write_atomic(&p, &bytes).map_err(|e| DataError::io(&p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{folder, npy, synthetic};

    #[test]
    fn exports_read_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let ds = synthetic::from_spec("shapes,n=30", "test").unwrap();
        export_npy(&ds, dir.path(), "test").unwrap();
        let back = npy::read_npy_dataset(dir.path(), Some("test")).unwrap();
        assert_eq!(
            (back.images.clone(), back.labels.clone(), back.class_names.clone()),
            (ds.images.clone(), ds.labels.clone(), ds.class_names.clone())
        );
        export_png_folder(&ds, &dir.path().join("png"), "test").unwrap();
        let back = folder::read_folder(&dir.path().join("png"), "test").unwrap();
        // folder order is by class then file name: compare as sorted (label, image) pairs
        let key = |d: &Dataset| {
            let mut v: Vec<(String, Vec<u8>)> = (0..d.len())
                .map(|i| (d.class_names[d.labels[i] as usize].clone(), d.image(i).to_vec()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(key(&back), key(&ds));
        let grid = dir.path().join("g.png");
        save_grid(&grid, &[vec![Some((&ds, 0)), None, Some((&ds, 1))]], 2).unwrap();
        let g = image::open(&grid).unwrap();
        assert_eq!((g.width(), g.height()), (3 * 66 + 2, 66 + 2));
    }
}
