//! Dataset spec strings: `KIND:PATH[:SPLIT][@CORRUPTION:SEVERITY[:SEED]]`.
//!
//! | kind | PATH | SPLIT (default) |
//! |---|---|---|
//! | `mnist`, `fashion-mnist` | directory of the four IDX files (raw or `.gz`) | `train` \| `test` (`train`) |
//! | `cifar10` | directory with `data_batch_{1..5}.bin`, `test_batch.bin` (or its `cifar-10-batches-bin/`) | `train` \| `test` |
//! | `cifar100` | directory with `train.bin`, `test.bin` (or `cifar-100-binary/`); fine labels | `train` \| `test` |
//! | `stl10` | directory with `{train,test}_{X,y}.bin` (or `stl10_binary/`) | `train` \| `test` |
//! | `cifar10.1` | directory with `cifar10.1_{v6,v4}_{data,labels}.npy` | `v6` \| `v4` (`v6`) |
//! | `npy` / `npz` | an `.npz` file (arrays `x`/`y`, or `x_SPLIT`/`y_SPLIT`), a directory with `SPLIT_x.npy` + `SPLIT_y.npy` (or `x.npy` + `y.npy`), or one `.npy` of images; without labels the dataset is unlabeled | any |
//! | `folder` | directory or `.tar.gz` of `SPLIT/CLASS/*.png\|jpg`, or a directory of images (unlabeled) | any (`train`) |
//! | `camelyon17` | the WILDS root with `metadata.csv` + `patches/` | `train` \| `id_val` \| `val` \| `test` \| `hospitalN` \| `all` |
//! | `synthetic` | generator name, see [`super::synthetic`] (`shapes`, `shapes-shift`) | `train` \| `val` \| `test` |
//!
//! The optional suffix `@NAME:SEVERITY[:SEED]` applies a corruption from [`super::corrupt`]
//! (severity 1–5, seed default 0), e.g. `cifar10:data/cifar:test@gaussian_noise:3`.

use std::path::PathBuf;
use std::str::FromStr;

use super::corrupt::Corruption;
use super::error::DataError;
use super::{camelyon, cifar, folder, idx, npy, stl, synthetic, transform, Dataset};

/// Which reader a spec names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mnist,
    FashionMnist,
    Cifar10,
    Cifar100,
    Stl10,
    Cifar101,
    Npy,
    Folder,
    Camelyon17,
    Synthetic,
}

impl Kind {
    /// All kinds with their spec names.
    pub const ALL: [(Kind, &'static str); 10] = [
        (Kind::Mnist, "mnist"),
        (Kind::FashionMnist, "fashion-mnist"),
        (Kind::Cifar10, "cifar10"),
        (Kind::Cifar100, "cifar100"),
        (Kind::Stl10, "stl10"),
        (Kind::Cifar101, "cifar10.1"),
        (Kind::Npy, "npy"),
        (Kind::Folder, "folder"),
        (Kind::Camelyon17, "camelyon17"),
        (Kind::Synthetic, "synthetic"),
    ];

    fn parse(s: &str) -> Option<Kind> {
        let s = s.to_ascii_lowercase();
        let s = match s.as_str() {
            "npz" => "npy",
            "fashion_mnist" | "fashionmnist" => "fashion-mnist",
            "cifar-10" => "cifar10",
            "cifar-100" => "cifar100",
            "cifar10.1" | "cifar-10.1" | "cifar101" => "cifar10.1",
            "stl-10" => "stl10",
            "camelyon" | "camelyon17-wilds" => "camelyon17",
            other => other,
        };
        Kind::ALL.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
    }

    /// The spec name of the kind.
    pub fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }
}

/// A corruption suffix `@NAME:SEVERITY[:SEED]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CorruptionSpec {
    pub corruption: Corruption,
    /// 1..=5
    pub severity: u8,
    pub seed: u64,
}

/// A parsed dataset spec.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    /// The string it was parsed from.
    pub raw: String,
    pub kind: Kind,
    /// The file or directory (for `synthetic`: the generator name with its options).
    pub path: PathBuf,
    pub split: Option<String>,
    pub corruption: Option<CorruptionSpec>,
}

fn is_split_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '='))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

impl DatasetSpec {
    /// Parses `KIND:PATH[:SPLIT][@CORRUPTION:SEVERITY[:SEED]]`.
    pub fn parse(spec: &str) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::Spec {
            spec: spec.to_string(),
            reason,
        };
        let s = spec.trim();
        let (main, corruption) = match s.rsplit_once('@') {
            Some((m, c)) if !c.contains('/') => {
                let parts: Vec<&str> = c.split(':').collect();
                if parts.len() < 2 || parts.len() > 3 {
                    return Err(bad(format!("corruption suffix `@{c}` must be `@NAME:SEVERITY[:SEED]`")));
                }
                let corruption = Corruption::from_str(parts[0]).map_err(bad)?;
                let severity: u8 = parts[1]
                    .parse()
                    .ok()
                    .filter(|v| (1..=5).contains(v))
                    .ok_or_else(|| bad(format!("severity `{}` must be an integer 1..5", parts[1])))?;
                let seed = match parts.get(2) {
                    Some(p) => p
                        .parse()
                        .map_err(|_| bad(format!("corruption seed `{p}` is not an integer")))?,
                    None => 0,
                };
                (
                    m,
                    Some(CorruptionSpec {
                        corruption,
                        severity,
                        seed,
                    }),
                )
            }
            _ => (s, None),
        };
        let (kind_s, rest) = main
            .split_once(':')
            .ok_or_else(|| bad("expected KIND:PATH[:SPLIT], e.g. `mnist:data/mnist:test`".into()))?;
        let kind = Kind::parse(kind_s).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|(_, n)| *n).collect();
            bad(format!("unknown kind `{kind_s}` (known: {})", names.join(", ")))
        })?;
        let (path, split) = match rest.rsplit_once(':') {
            Some((p, sp)) if is_split_token(sp) => (p, Some(sp.to_string())),
            _ => (rest, None),
        };
        if path.is_empty() {
            return Err(bad("empty PATH".into()));
        }
        Ok(DatasetSpec {
            raw: s.to_string(),
            kind,
            path: PathBuf::from(path),
            split,
            corruption,
        })
    }

    /// Reads the dataset in its native shape (no conversion, no corruption).
    pub fn load_native(&self) -> Result<Dataset, DataError> {
        let split = self.split.as_deref();
        let p = &self.path;
        match self.kind {
            Kind::Mnist | Kind::FashionMnist => {
                let names = if self.kind == Kind::Mnist {
                    idx::MNIST_CLASSES
                } else {
                    idx::FASHION_CLASSES
                };
                idx::read_mnist_dir(p, split.unwrap_or("train"), names)
            }
            Kind::Cifar10 => cifar::read_cifar10_dir(p, split.unwrap_or("train")),
            Kind::Cifar100 => cifar::read_cifar100_dir(p, split.unwrap_or("train")),
            Kind::Stl10 => stl::read_stl10_dir(p, split.unwrap_or("train")),
            Kind::Cifar101 => npy::read_cifar101_dir(p, split.unwrap_or("v6")),
            Kind::Npy => npy::read_npy_dataset(p, split),
            Kind::Folder => folder::read_folder(p, split.unwrap_or("train")),
            Kind::Camelyon17 => camelyon::read_camelyon(p, split.unwrap_or("train")).map(|(d, _)| d),
            Kind::Synthetic => {
                let name = p.to_string_lossy();
                synthetic::from_spec(&name, split.unwrap_or("train"))
            }
        }
    }

    /// Reads, converts to 3×32×32 and applies the corruption; the dataset is named after the spec.
    pub fn load(&self) -> Result<Dataset, DataError> {
        Ok(self.load_with_native_shape()?.0)
    }

    /// [`DatasetSpec::load`], also returning the images' `[C, H, W]` before the conversion.
    pub fn load_with_native_shape(&self) -> Result<(Dataset, [usize; 3]), DataError> {
        let native = self.load_native()?;
        let native_shape = native.shape;
        let mut ds = transform::to_common(native)?;
        if ds.is_empty() {
            return Err(DataError::Empty {
                what: self.raw.clone(),
                reason: "no images".into(),
            });
        }
        if let Some(c) = self.corruption {
            ds = super::corrupt::apply(&ds, c.corruption, c.severity, c.seed)?;
        }
        ds.name = self.raw.clone();
        Ok((ds, native_shape))
    }
}

impl FromStr for DatasetSpec {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatasetSpec::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let s = DatasetSpec::parse("folder:../shared/data/cifar10/cifar10-jpeg.tar.gz:test@gaussian_noise:3").unwrap();
        assert_eq!(s.kind, Kind::Folder);
        assert_eq!(s.path, PathBuf::from("../shared/data/cifar10/cifar10-jpeg.tar.gz"));
        assert_eq!(s.split.as_deref(), Some("test"));
        let c = s.corruption.unwrap();
        assert_eq!((c.corruption, c.severity, c.seed), (Corruption::GaussianNoise, 3, 0));
        let s = DatasetSpec::parse("mnist:/data/mnist").unwrap();
        assert_eq!((s.kind, s.split), (Kind::Mnist, None));
        let s = DatasetSpec::parse("cifar10.1:dir:v4").unwrap();
        assert_eq!((s.kind, s.split.as_deref()), (Kind::Cifar101, Some("v4")));
        let s = DatasetSpec::parse("synthetic:shapes-shift:test@rotate:2:9").unwrap();
        assert_eq!(s.path, PathBuf::from("shapes-shift"));
        assert_eq!(s.corruption.unwrap().seed, 9);
        let s = DatasetSpec::parse("npz:/a/b@c/x.npz").unwrap();
        assert_eq!(s.path, PathBuf::from("/a/b@c/x.npz"));
    }

    #[test]
    fn rejects_bad_specs_with_reasons() {
        for (bad, word) in [
            ("mnist", "KIND:PATH"),
            ("foo:bar", "unknown kind"),
            ("mnist:d:test@gaussian_noise:9", "severity"),
            ("mnist:d:test@nonsense:2", "nonsense"),
            ("mnist:d:test@gaussian_noise", "SEVERITY"),
            ("mnist::test", "PATH"),
        ] {
            let e = DatasetSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(word), "{bad}: {e}");
        }
    }
}
