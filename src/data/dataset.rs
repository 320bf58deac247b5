//! The in-memory dataset: u8 images `[N, C, H, W]` (CHW per image) with u32 labels, plus
//! deterministic stratified splits, class subsets, per-channel normalization and conversion
//! to f32 tensors for the engine. A dataset may be unlabeled ([`Dataset::unlabeled`]: no class
//! names, placeholder labels); only label-reading code (training, the label oracle) refuses it.

use serde::{Deserialize, Serialize};

use super::error::DataError;
use crate::engine::rng;
use rand::seq::SliceRandom;

/// Images and labels. After [`super::load`] the shape is always `[3, 32, 32]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Where it came from, e.g. the spec string.
    pub name: String,
    /// `[N, C, H, W]` u8, CHW per image.
    pub images: Vec<u8>,
    /// `[N]` class indices into `class_names`.
    pub labels: Vec<u32>,
    /// `[C, H, W]` of one image.
    pub shape: [usize; 3],
    /// One name per class; `labels` index into it. Empty for an unlabeled dataset.
    pub class_names: Vec<String>,
}

/// Per-channel normalization on the [0, 1] pixel scale: `x = (p/255 − mean[c]) / std[c]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// No normalization beyond scaling to [0, 1].
    pub const IDENTITY: Normalization = Normalization {
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    /// The per-channel mean and standard deviation of `ds` (on [0, 1]); a channel with zero
    /// spread gets std 1, an empty dataset gets [`Normalization::IDENTITY`]. Sums are in f64 in a
    /// fixed order, so the result is deterministic.
    pub fn from_dataset(ds: &Dataset) -> Self {
        let (mean, std) = ds.channel_stats();
        let mut out = Self::IDENTITY;
        for c in 0..3 {
            let src = c.min(mean.len().saturating_sub(1));
            if mean.is_empty() {
                break;
            }
            out.mean[c] = mean[src] as f32;
            out.std[c] = if std[src] > 1e-8 { std[src] as f32 } else { 1.0 };
        }
        out
    }
}

impl Dataset {
    /// A dataset after checking that the buffer sizes agree.
    pub fn new(
        name: impl Into<String>,
        images: Vec<u8>,
        labels: Vec<u32>,
        shape: [usize; 3],
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        let name = name.into();
        let per = shape.iter().product::<usize>();
        if per == 0 || images.len() != per * labels.len() {
            return Err(DataError::Format {
                path: name.clone().into(),
                reason: format!(
                    "{} image bytes do not hold {} images of shape {:?}",
                    images.len(),
                    labels.len(),
                    shape
                ),
            });
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= class_names.len()) {
            return Err(DataError::Format {
                path: name.into(),
                reason: format!("label {bad} out of range for {} classes", class_names.len()),
            });
        }
        Ok(Dataset {
            name,
            images,
            labels,
            shape,
            class_names,
        })
    }

    /// An unlabeled dataset (a production batch): every label is 0 and `class_names` is empty,
    /// which is what [`Dataset::is_labeled`] tests. Errors when `images` is not a whole number of
    /// `shape` images.
    pub fn unlabeled(name: impl Into<String>, images: Vec<u8>, shape: [usize; 3]) -> Result<Self, DataError> {
        let name = name.into();
        let per = shape.iter().product::<usize>();
        if per == 0 || !images.len().is_multiple_of(per) {
            return Err(DataError::Format {
                path: name.into(),
                reason: format!(
                    "{} image bytes are not a whole number of {shape:?} images",
                    images.len()
                ),
            });
        }
        let n = images.len() / per;
        Ok(Dataset {
            name,
            images,
            labels: vec![0; n],
            shape,
            class_names: Vec::new(),
        })
    }

    /// The same images without labels (see [`Dataset::unlabeled`]).
    pub fn into_unlabeled(self) -> Dataset {
        Dataset {
            labels: vec![0; self.len()],
            class_names: Vec::new(),
            ..self
        }
    }

    /// False for an unlabeled dataset (no class names; its labels are placeholders).
    pub fn is_labeled(&self) -> bool {
        !self.class_names.is_empty()
    }

    /// An error naming the dataset when it is unlabeled and `purpose` (e.g. "training") needs labels.
    pub fn require_labels(&self, purpose: &str) -> Result<(), DataError> {
        if self.is_labeled() {
            return Ok(());
        }
        Err(DataError::Empty {
            what: self.name.clone(),
            reason: format!("{purpose} needs labels, and this dataset has none"),
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of classes (the length of `class_names`, even if some are absent).
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Bytes of one image (`C·H·W`).
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The CHW bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// How many images each class has, `[num_classes]`.
    pub fn per_class(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.num_classes()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// The images at `idx`, in that order (indices may repeat).
    ///
    /// # Panics
    /// When an index is `>= len()` (a programming error; see [`Dataset::try_subset`]).
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        match self.try_subset(idx) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`Dataset::subset`] that reports an out-of-range index as an error.
    pub fn try_subset(&self, idx: &[usize]) -> Result<Dataset, DataError> {
        let n = self.image_len();
        if let Some(&bad) = idx.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::arg(
                "idx",
                format!("index {bad} out of range for {} images", self.len()),
            ));
        }
        let mut images = Vec::with_capacity(idx.len() * n);
        for &i in idx {
            images.extend_from_slice(self.image(i));
        }
        Ok(Dataset {
            name: self.name.clone(),
            images,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape,
            class_names: self.class_names.clone(),
        })
    }

    /// Keeps only the classes in `classes` (by index) and relabels them `0..classes.len()` in the
    /// given order.
    pub fn class_subset(&self, classes: &[usize]) -> Result<Dataset, DataError> {
        if classes.is_empty() {
            return Err(DataError::arg("classes", "empty class list"));
        }
        let mut map = vec![u32::MAX; self.num_classes()];
        for (new, &c) in classes.iter().enumerate() {
            if c >= self.num_classes() {
                return Err(DataError::arg(
                    "classes",
                    format!("class {c} out of range for {} classes", self.num_classes()),
                ));
            }
            if map[c] != u32::MAX {
                return Err(DataError::arg("classes", format!("class {c} listed twice")));
            }
            map[c] = new as u32;
        }
        let idx: Vec<usize> = (0..self.len())
            .filter(|&i| map[self.labels[i] as usize] != u32::MAX)
            .collect();
        let mut out = self.try_subset(&idx)?;
        for l in &mut out.labels {
            *l = map[*l as usize];
        }
        out.class_names = classes.iter().map(|&c| self.class_names[c].clone()).collect();
        Ok(out)
    }

    /// Deterministic stratified split into `(train, val)`: in every class, a seeded shuffle
    /// (stream `"split"`, index = class) picks `round(val_fraction · n_class)` images for val.
    /// Both parts keep the original order. `val_fraction` is clamped to [0, 1] (NaN → 0).
    pub fn split(&self, val_fraction: f32, seed: u64) -> (Dataset, Dataset) {
        let f = if val_fraction.is_nan() {
            0.0
        } else {
            val_fraction.clamp(0.0, 1.0)
        } as f64;
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); self.num_classes()];
        for (i, &l) in self.labels.iter().enumerate() {
            by_class[l as usize].push(i);
        }
        let mut is_val = vec![false; self.len()];
        for (c, members) in by_class.iter_mut().enumerate() {
            let mut r = rng::stream(seed, "split", c as u64);
            members.shuffle(&mut r);
            let k = (f * members.len() as f64).round() as usize;
            for &i in &members[..k.min(members.len())] {
                is_val[i] = true;
            }
        }
        let train: Vec<usize> = (0..self.len()).filter(|&i| !is_val[i]).collect();
        let val: Vec<usize> = (0..self.len()).filter(|&i| is_val[i]).collect();
        (self.subset(&train), self.subset(&val))
    }

    /// The images at `idx` as f32 `[n, C, H, W]`, scaled to [0, 1] and normalized per channel.
    ///
    /// # Panics
    /// When an index is `>= len()`.
    pub fn to_tensor(&self, idx: &[usize], norm: &Normalization) -> Vec<f32> {
        let [c, h, w] = self.shape;
        let plane = h * w;
        // per channel: x = p · a + b with a = 1/(255·std), b = −mean/std
        let coef: Vec<(f32, f32)> = (0..c)
            .map(|ch| {
                let k = ch.min(2);
                (1.0 / (255.0 * norm.std[k]), -norm.mean[k] / norm.std[k])
            })
            .collect();
        let mut out = Vec::with_capacity(idx.len() * c * plane);
        for &i in idx {
            let img = self.image(i);
            for (ch, &(a, b)) in coef.iter().enumerate() {
                out.extend(img[ch * plane..(ch + 1) * plane].iter().map(|&p| p as f32 * a + b));
            }
        }
        out
    }

    /// Per-channel mean and standard deviation on [0, 1] (f64, population std), `[C]` each.
    pub fn channel_stats(&self) -> (Vec<f64>, Vec<f64>) {
        let [c, h, w] = self.shape;
        let plane = h * w;
        let mut sum = vec![0u64; c];
        let mut sq = vec![0u64; c];
        for img in self.images.chunks_exact(c * plane) {
            for ch in 0..c {
                for &p in &img[ch * plane..(ch + 1) * plane] {
                    sum[ch] += p as u64;
                    sq[ch] += (p as u64) * (p as u64);
                }
            }
        }
        let n = (self.len() * plane) as f64;
        if n == 0.0 {
            return (vec![0.0; c], vec![1.0; c]);
        }
        let mean: Vec<f64> = sum.iter().map(|&s| s as f64 / n / 255.0).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(&q, &m)| ((q as f64 / n / (255.0 * 255.0)) - m * m).max(0.0).sqrt())
            .collect();
        (mean, std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Dataset {
        // 20 images of 1×2×2, classes alternate 0/1
        let n = 20;
        let images: Vec<u8> = (0..n * 4).map(|i| (i * 3 % 256) as u8).collect();
        let labels = (0..n).map(|i| (i % 2) as u32).collect();
        Dataset::new("toy", images, labels, [1, 2, 2], vec!["a".into(), "b".into()]).unwrap()
    }

    #[test]
    fn split_is_stratified_disjoint_and_deterministic() {
        let d = toy();
        let (t, v) = d.split(0.3, 7);
        assert_eq!(t.len() + v.len(), 20);
        assert_eq!(v.per_class(), vec![3, 3]);
        let (t2, v2) = d.split(0.3, 7);
        assert_eq!(t, t2);
        assert_eq!(v, v2);
        let (_, v3) = d.split(0.3, 8);
        assert_ne!(v.images, v3.images);
    }

    #[test]
    fn tensor_and_normalization() {
        let d = toy();
        let norm = Normalization::from_dataset(&d);
        let x = d.to_tensor(&(0..d.len()).collect::<Vec<_>>(), &norm);
        let m: f64 = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
        let s: f64 = (x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        assert!(m.abs() < 1e-4, "mean {m}");
        assert!((s - 1.0).abs() < 1e-3, "std {s}");
        let one = d.to_tensor(&[3], &Normalization::IDENTITY);
        assert_eq!(one, d.image(3).iter().map(|&p| p as f32 / 255.0).collect::<Vec<_>>());
    }

    #[test]
    fn class_subset_relabels_and_rejects_bad_input() {
        let d = toy();
        let s = d.class_subset(&[1]).unwrap();
        assert_eq!(s.len(), 10);
        assert!(s.labels.iter().all(|&l| l == 0));
        assert_eq!(s.class_names, vec!["b".to_string()]);
        assert!(d.class_subset(&[2]).is_err());
        assert!(d.class_subset(&[0, 0]).is_err());
        assert!(d.try_subset(&[20]).is_err());
        assert!(Dataset::new("x", vec![0; 5], vec![0], [1, 2, 2], vec!["a".into()]).is_err());
        assert!(Dataset::new("x", vec![0; 4], vec![1], [1, 2, 2], vec!["a".into()]).is_err());
    }
}
