//! Camelyon17-WILDS: `ROOT/metadata.csv` (columns `patient,node,x_coord,y_coord,tumor,slide,center,split`)
//! and 96×96 RGB patches at
//! `ROOT/patches/patient_{PPP}_node_{N}/patch_patient_{PPP}_node_{N}_x_{X}_y_{Y}.png`.
//! Label = `tumor` (0 normal, 1 tumor); domain = `center` (the hospital, 0–4).
//! Splits follow WILDS: `train` = hospitals 0, 3, 4 with `split == 0`, `id_val` = the same
//! hospitals with `split == 1`, `val` = hospital 1 (OOD validation), `test` = hospital 2;
//! `hospitalN` takes every patch of hospital N, `all` every patch.

use std::path::Path;

use rayon::prelude::*;

use super::error::{read_file, DataError};
use super::folder::decode_rgb_chw;
use super::Dataset;

/// One metadata row.
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    pub patient: u32,
    pub node: u32,
    pub x: u32,
    pub y: u32,
    pub tumor: u32,
    pub center: u32,
    pub split: u32,
}

impl Patch {
    /// The patch file path relative to the root.
    pub fn rel_path(&self) -> String {
        let (p, n) = (self.patient, self.node);
        format!(
            "patches/patient_{p:03}_node_{n}/patch_patient_{p:03}_node_{n}_x_{}_y_{}.png",
            self.x, self.y
        )
    }
}

/// Parses `metadata.csv`.
pub fn parse_metadata(path: &Path, text: &str) -> Result<Vec<Patch>, DataError> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').map(str::trim).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| DataError::format(path, format!("no column `{name}` in header {header:?}")))
    };
    let cols = [
        col("patient")?,
        col("node")?,
        col("x_coord")?,
        col("y_coord")?,
        col("tumor")?,
        col("center")?,
        col("split")?,
    ];
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let mut v = [0u32; 7];
        for (k, &c) in cols.iter().enumerate() {
            let s = f.get(c).copied().unwrap_or("");
            // WILDS writes integers, sometimes as floats ("3.0")
            v[k] = s
                .parse::<u32>()
                .ok()
                .or_else(|| {
                    s.parse::<f64>()
                        .ok()
                        .filter(|x| x.fract() == 0.0 && *x >= 0.0)
                        .map(|x| x as u32)
                })
                .ok_or_else(|| {
                    DataError::entry(
                        path,
                        format!("line {}", i + 2),
                        format!("bad value `{s}` in column `{}`", header[c]),
                    )
                })?;
        }
        if v[4] > 1 {
            return Err(DataError::entry(
                path,
                format!("line {}", i + 2),
                format!("tumor label {} is not 0/1", v[4]),
            ));
        }
        out.push(Patch {
            patient: v[0],
            node: v[1],
            x: v[2],
            y: v[3],
            tumor: v[4],
            center: v[5],
            split: v[6],
        });
    }
    Ok(out)
}

fn keep(p: &Patch, split: &str) -> Result<bool, DataError> {
    let train_h = matches!(p.center, 0 | 3 | 4);
    Ok(match split {
        "train" => train_h && p.split == 0,
        "id_val" => train_h && p.split == 1,
        "val" => p.center == 1,
        "test" => p.center == 2,
        "all" => true,
        s => match s.strip_prefix("hospital").and_then(|n| n.parse::<u32>().ok()) {
            Some(h) => p.center == h,
            None => {
                return Err(DataError::arg(
                    "split",
                    format!("`{s}`: Camelyon17 has train, id_val, val, test, all, hospital0..hospital4"),
                ))
            }
        },
    })
}

/// Reads a split: the dataset (native 3×96×96) and the hospital of each image.
pub fn read_camelyon(root: &Path, split: &str) -> Result<(Dataset, Vec<u32>), DataError> {
    let mp = root.join("metadata.csv");
    let text = String::from_utf8(read_file(&mp)?).map_err(|_| DataError::format(&mp, "not UTF-8 text"))?;
    let all = parse_metadata(&mp, &text)?;
    let mut rows = Vec::new();
    for p in all {
        if keep(&p, split)? {
            rows.push(p);
        }
    }
    if rows.is_empty() {
        return Err(DataError::Empty {
            what: format!("{} split `{split}`", mp.display()),
            reason: "no patches".into(),
        });
    }
    let decoded: Vec<(usize, usize, Vec<u8>)> = rows
        .par_iter()
        .map(|p| {
            let f = root.join(p.rel_path());
            let bytes = read_file(&f)?;
            decode_rgb_chw(&bytes).map_err(|e| DataError::entry(root, p.rel_path(), e))
        })
        .collect::<Result<_, _>>()?;
    let (w0, h0) = (decoded[0].0, decoded[0].1);
    let mut images = Vec::with_capacity(rows.len() * 3 * w0 * h0);
    for (p, (w, h, px)) in rows.iter().zip(decoded) {
        if (w, h) != (w0, h0) {
            return Err(DataError::entry(
                root,
                p.rel_path(),
                format!("patch is {w}×{h}, expected {w0}×{h0}"),
            ));
        }
        images.extend_from_slice(&px);
    }
    let labels = rows.iter().map(|p| p.tumor).collect();
    let domains = rows.iter().map(|p| p.center).collect();
    let ds = Dataset::new(
        format!("{}:{split}", root.display()),
        images,
        labels,
        [3, h0, w0],
        vec!["normal".into(), "tumor".into()],
    )?;
    Ok((ds, domains))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_metadata_and_patches_by_hospital() {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from(",patient,node,x_coord,y_coord,tumor,slide,center,split\n");
        let rows = [(4, 4, 0, 0, 0), (10, 0, 1, 2, 0), (39, 1, 1, 3, 1), (12, 2, 0, 1, 0)];
        for (i, (pat, node, tumor, center, split)) in rows.iter().enumerate() {
            csv += &format!(
                "{i},{pat},{node},{},{},{tumor},{},{center},{split}\n",
                100 + i,
                200 + i,
                i
            );
            let p = Patch {
                patient: *pat,
                node: *node,
                x: 100 + i as u32,
                y: 200 + i as u32,
                tumor: *tumor,
                center: *center,
                split: *split,
            };
            let f = dir.path().join(p.rel_path());
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            image::RgbImage::from_pixel(96, 96, image::Rgb([i as u8 * 10, 0, 0]))
                .save(&f)
                .unwrap();
        }
        std::fs::write(dir.path().join("metadata.csv"), &csv).unwrap();
        let (d, dom) = read_camelyon(dir.path(), "train").unwrap();
        assert_eq!((d.len(), dom), (1, vec![0]));
        let (d, dom) = read_camelyon(dir.path(), "hospital3").unwrap();
        assert_eq!((d.labels.clone(), dom), (vec![1], vec![3]));
        assert_eq!(d.image(0)[0], 20);
        let (d, _) = read_camelyon(dir.path(), "test").unwrap();
        assert_eq!((d.len(), d.shape), (1, [3, 96, 96]));
        assert!(read_camelyon(dir.path(), "hospital9").is_err());
        std::fs::write(dir.path().join("metadata.csv"), csv.replace("39,1,1", "39,1,x")).unwrap();
        assert!(read_camelyon(dir.path(), "all")
            .unwrap_err()
            .to_string()
            .contains("line 4"));
    }
}
