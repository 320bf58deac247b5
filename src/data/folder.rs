//! Image folders `ROOT/<split>/<class>/*.{png,jpg,jpeg}` read from a directory or straight from a
//! `.tar.gz`/`.tgz`/`.tar` archive (any leading directories are allowed in the archive). Class
//! names are the sorted class directory names (the torchvision `ImageFolder` convention). Images
//! are decoded in parallel (rayon); all must have the same size. The split `all` reads every
//! split together. A directory holding image files directly (and no directory named like the
//! split) is a flat, unlabeled batch.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::error::DataError;
use super::Dataset;

const IMAGE_EXT: &[&str] = &["png", "jpg", "jpeg"];

/// The split name that reads every split of the folder together (class names are the union).
pub const ALL: &str = "all";

fn is_image(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !lower.rsplit('/').next().unwrap_or("").starts_with('.')
        && IMAGE_EXT.iter().any(|e| lower.ends_with(&format!(".{e}")))
}

/// One undecoded image: entry name (for errors), class name, encoded bytes.
struct Raw {
    entry: String,
    class: String,
    bytes: Vec<u8>,
}

/// Reads `split` of an image folder (directory or archive) at `path`.
pub fn read_folder(path: &Path, split: &str) -> Result<Dataset, DataError> {
    let name = path.to_string_lossy().to_lowercase();
    let (raws, classes) = if path.is_dir() && !path.join(split).is_dir() && split != ALL && has_images(path)? {
        // a flat folder of images: an unlabeled batch
        let raws = collect_flat(path)?;
        return Ok(decode_all(path, split, raws, BTreeSet::from([String::new()]))?.into_unlabeled());
    } else if path.is_dir() {
        collect_dir(path, split)?
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") || name.ends_with(".tar") {
        collect_tar(path, split)?
    } else if !path.exists() {
        return Err(DataError::Missing {
            path: path.into(),
            hint: "expected a directory or a .tar.gz".into(),
        });
    } else {
        return Err(DataError::format(
            path,
            "an image folder must be a directory or a .tar.gz/.tgz/.tar archive",
        ));
    };
    decode_all(path, split, raws, classes)
}

/// The image files directly in `dir`, sorted by name.
fn flat_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && is_image(&p.to_string_lossy()))
        .collect();
    files.sort();
    Ok(files)
}

fn has_images(dir: &Path) -> Result<bool, DataError> {
    Ok(!flat_files(dir)?.is_empty())
}

/// Every image directly in `dir` (class "").
fn collect_flat(dir: &Path) -> Result<Vec<Raw>, DataError> {
    flat_files(dir)?
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).map_err(|e| DataError::io(&f, e))?;
            Ok(Raw {
                entry: f.display().to_string(),
                class: String::new(),
                bytes,
            })
        })
        .collect()
}

fn collect_dir(root: &Path, split: &str) -> Result<(Vec<Raw>, BTreeSet<String>), DataError> {
    if split == ALL && !root.join(ALL).is_dir() {
        let mut splits: Vec<PathBuf> = std::fs::read_dir(root)
            .map_err(|e| DataError::io(root, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        splits.sort();
        let (mut raws, mut classes) = (Vec::new(), BTreeSet::new());
        for s in splits {
            let name = s
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let (r, c) = collect_dir(root, &name)?;
            raws.extend(r);
            classes.extend(c);
        }
        return Ok((raws, classes));
    }
    let sdir = root.join(split);
    if !sdir.is_dir() {
        let found: Vec<String> = std::fs::read_dir(root)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        return Err(DataError::Missing {
            path: sdir,
            hint: format!("no split directory `{split}`; found {found:?}"),
        });
    }
    let mut raws = Vec::new();
    let mut classes = BTreeSet::new();
    let rd = std::fs::read_dir(&sdir).map_err(|e| DataError::io(&sdir, e))?;
    let mut class_dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    class_dirs.sort();
    for cdir in class_dirs {
        let class = cdir
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        classes.insert(class.clone());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&cdir)
            .map_err(|e| DataError::io(&cdir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_image(&p.to_string_lossy()))
            .collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).map_err(|e| DataError::io(&f, e))?;
            raws.push(Raw {
                entry: f.display().to_string(),
                class: class.clone(),
                bytes,
            });
        }
    }
    Ok((raws, classes))
}

fn collect_tar(path: &Path, split: &str) -> Result<(Vec<Raw>, BTreeSet<String>), DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let reader: Box<dyn Read> = if path.to_string_lossy().to_lowercase().ends_with(".tar") {
        Box::new(std::io::BufReader::new(file))
    } else {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::with_capacity(
            1 << 20,
            file,
        )))
    };
    // entries may not inflate beyond the limits of the archive's size (tar headers can claim
    // any size; a gzip stream can inflate 1000×)
    let file_len = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?.len();
    let mut inflated = 0u64;
    let mut archive = tar::Archive::new(reader);
    let terr = |e: std::io::Error| DataError::format(path, format!("broken archive: {e}"));
    let mut raws = Vec::new();
    let mut classes = BTreeSet::new();
    let mut splits = BTreeSet::new();
    for entry in archive.entries().map_err(terr)? {
        let mut entry = entry.map_err(terr)?;
        let ename = entry
            .path()
            .map_err(terr)?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let parts: Vec<&str> = ename.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        let is_dir = entry.header().entry_type().is_dir();
        // find `<split>/<class>[/<file>]` at the end of the path
        let (sp, class, file) = match (is_dir, parts.len()) {
            (true, n) if n >= 2 => (parts[n - 2], parts[n - 1], None),
            (false, n) if n >= 3 => (parts[n - 3], parts[n - 2], Some(parts[n - 1])),
            _ => continue,
        };
        if let Some(f) = file {
            if is_image(f) {
                splits.insert(sp.to_string());
            }
        }
        if sp != split && split != ALL {
            continue;
        }
        match file {
            None => {
                classes.insert(class.to_string());
            }
            Some(f) if is_image(f) => {
                classes.insert(class.to_string());
                let size = entry.size();
                inflated = inflated.saturating_add(size);
                crate::limits::check_inflate("the archive's images", file_len, inflated)
                    .map_err(|e| DataError::entry(path, &ename, e.to_string()))?;
                let mut bytes = Vec::with_capacity(size.min(1 << 20) as usize);
                (&mut entry)
                    .take(size)
                    .read_to_end(&mut bytes)
                    .map_err(|e| DataError::entry(path, &ename, format!("cannot read: {e}")))?;
                if bytes.len() as u64 != size {
                    return Err(DataError::entry(
                        path,
                        &ename,
                        format!("truncated: {} of {size} bytes", bytes.len()),
                    ));
                }
                raws.push(Raw {
                    entry: ename.clone(),
                    class: class.to_string(),
                    bytes,
                });
            }
            Some(_) => {}
        }
    }
    if raws.is_empty() {
        return Err(DataError::Empty {
            what: path.display().to_string(),
            reason: format!("no images under a `{split}/<class>/` directory; splits with images: {splits:?}"),
        });
    }
    Ok((raws, classes))
}

/// Decodes one image to `(width, height, CHW RGB bytes)`.
pub fn decode_rgb_chw(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    // the size from the image's header, bounded before decoding (PNG/JPEG bombs)
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot decode image: {e}"))
    };
    let (w, h) = reader()?
        .into_dimensions()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let cap = crate::limits::inflate_cap(bytes.len() as u64);
    let need = 4 * w as u64 * h as u64;
    crate::limits::check_inflate(&format!("a {w}×{h} image"), bytes.len() as u64, need).map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(cap);
    let mut r = reader()?;
    r.limits(limits);
    let img = r.decode().map_err(|e| format!("cannot decode image: {e}"))?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let src = rgb.as_raw();
    let mut out = vec![0u8; 3 * w * h];
    let plane = w * h;
    for (p, px) in src.chunks_exact(3).enumerate() {
        out[p] = px[0];
        out[plane + p] = px[1];
        out[2 * plane + p] = px[2];
    }
    Ok((w, h, out))
}

fn decode_all(path: &Path, split: &str, raws: Vec<Raw>, classes: BTreeSet<String>) -> Result<Dataset, DataError> {
    let class_names: Vec<String> = classes.into_iter().collect();
    let index: BTreeMap<&str, u32> = class_names
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let mut counts = vec![0usize; class_names.len()];
    for r in &raws {
        counts[index[r.class.as_str()] as usize] += 1;
    }
    if let Some(i) = counts.iter().position(|&c| c == 0) {
        return Err(DataError::Empty {
            what: format!("{}: {split}/{}", path.display(), class_names[i]),
            reason: "class directory holds no images".into(),
        });
    }
    if raws.is_empty() {
        return Err(DataError::Empty {
            what: path.join(split).display().to_string(),
            reason: "no images".into(),
        });
    }
    // decode the first image for the size, then every image straight into its slot (peak memory
    // ≈ the encoded bytes + the u8 images)
    let (w0, h0, _) = decode_rgb_chw(&raws[0].bytes).map_err(|e| DataError::entry(path, &raws[0].entry, e))?;
    let per = 3 * w0 * h0;
    let encoded: u64 = raws.iter().map(|r| r.bytes.len() as u64).sum();
    let total = crate::limits::product(&[raws.len(), per]);
    crate::limits::check_alloc(&format!("{} images of {w0}×{h0}", raws.len()), total)
        .and_then(|t| crate::limits::check_inflate("the decoded images", encoded, t))
        .map_err(|e| DataError::format(path, e.to_string()))?;
    let mut images = vec![0u8; raws.len() * per];
    images
        .par_chunks_mut(per)
        .zip(raws.par_iter())
        .try_for_each(|(dst, r)| {
            let (w, h, px) = decode_rgb_chw(&r.bytes).map_err(|e| DataError::entry(path, &r.entry, e))?;
            if (w, h) != (w0, h0) {
                return Err(DataError::entry(
                    path,
                    &r.entry,
                    format!("image is {w}×{h}, the first image ({}) is {w0}×{h0}", raws[0].entry),
                ));
            }
            dst.copy_from_slice(&px);
            Ok(())
        })?;
    let labels = raws.iter().map(|r| index[r.class.as_str()]).collect();
    Dataset::new(
        format!("{}:{split}", path.display()),
        images,
        labels,
        [3, h0, w0],
        class_names,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, v: u8) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([v, v / 2, 255 - v]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn tar_gz(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(enc);
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn reads_tar_gz_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            ("root/test/cat/0.png", png(4, 4, 10)),
            ("root/test/ant/0.png", png(4, 4, 20)),
            ("root/test/ant/1.png", png(4, 4, 30)),
            ("root/train/ant/0.png", png(4, 4, 40)),
            ("root/test/ant/notes.txt", b"skip me".to_vec()),
        ];
        let p = dir.path().join("d.tar.gz");
        std::fs::write(&p, tar_gz(&files)).unwrap();
        let d = read_folder(&p, "test").unwrap();
        assert_eq!(d.class_names, vec!["ant", "cat"]);
        assert_eq!(d.labels, vec![1, 0, 0]);
        assert_eq!((d.shape, d.image(0)[0], d.image(0)[16]), ([3, 4, 4], 10, 5));
        assert!(read_folder(&p, "val").unwrap_err().to_string().contains("train"));
        // directory form
        for (name, data) in &files {
            let f = dir.path().join("plain").join(name);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, data).unwrap();
        }
        let d2 = read_folder(&dir.path().join("plain/root"), "test").unwrap();
        assert_eq!(
            (d2.labels.clone(), d2.images.clone()),
            (vec![0, 0, 1], {
                let mut v = d.image(1).to_vec();
                v.extend(d.image(2));
                v.extend(d.image(0));
                v
            })
        );
        // an empty class, a broken image, a wrong-sized image
        std::fs::create_dir_all(dir.path().join("plain/root/test/zebra")).unwrap();
        let e = read_folder(&dir.path().join("plain/root"), "test")
            .unwrap_err()
            .to_string();
        assert!(e.contains("zebra") && e.contains("no images"), "{e}");
        let bad = vec![("t/a/0.png", png(4, 4, 1)), ("t/a/1.png", b"\x89PNG broken".to_vec())];
        std::fs::write(&p, tar_gz(&bad)).unwrap();
        assert!(read_folder(&p, "t").unwrap_err().to_string().contains("t/a/1.png"));
        let bad = vec![("t/a/0.png", png(4, 4, 1)), ("t/b/1.png", png(5, 4, 1))];
        std::fs::write(&p, tar_gz(&bad)).unwrap();
        assert!(read_folder(&p, "t").unwrap_err().to_string().contains("5×4"));
        std::fs::write(&p, b"not a tar").unwrap();
        assert!(read_folder(&p, "t").is_err());
    }

    /// Issue item 7: a tiny tar.gz whose header claims 2^40 bytes was a 1 TiB reservation.
    #[test]
    fn a_tar_header_claiming_a_terabyte_is_an_error() {
        let mut h = tar::Header::new_gnu();
        h.set_path("r/train/a/0.png").unwrap();
        h.set_size(1 << 40);
        h.set_mode(0o644);
        h.set_cksum();
        let mut raw = h.as_bytes().to_vec();
        raw.extend([0u8; 1024]);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, &raw).unwrap();
        let gz = e.finish().unwrap();
        assert!(gz.len() < 200, "{}", gz.len());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("claims.tar.gz");
        std::fs::write(&p, gz).unwrap();
        let e = read_folder(&p, "train").unwrap_err().to_string();
        assert!(e.contains("claims.tar.gz") && e.contains("1.00 TiB"), "{e}");
    }

    /// Issue item 8: a few-KiB archive of 6000×6000 PNGs decoded every image at full size
    /// (1.56 GB); the size from each image's header is bounded before decoding.
    #[test]
    fn image_bombs_are_refused_before_decoding() {
        let img = image::GrayImage::new(6000, 6000);
        let mut bomb = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bomb, image::ImageFormat::Png).unwrap();
        let bomb = bomb.into_inner();
        assert!(bomb.len() < 200_000, "{}", bomb.len());
        let e = decode_rgb_chw(&bomb).unwrap_err();
        assert!(e.contains("6000×6000"), "{e}");
        let files: Vec<(String, Vec<u8>)> = (0..12).map(|i| (format!("r/train/a/{i}.png"), bomb.clone())).collect();
        let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bombs.tar.gz");
        std::fs::write(&p, tar_gz(&files)).unwrap();
        let e = read_folder(&p, "train").unwrap_err().to_string();
        assert!(e.contains("bombs.tar.gz") && e.contains("r/train/a/0.png"), "{e}");
        // a legitimate photo-sized image still decodes
        assert_eq!(decode_rgb_chw(&png(64, 48, 7)).unwrap().0, 64);
    }
}
