//! Datasets: u8 images + labels, readers of the real formats, dataset specs, transforms,
//! corruptions, synthetic data.
//!
//! Everything enters through [`load`] with a spec string `KIND:PATH[:SPLIT][@CORRUPTION:SEVERITY[:SEED]]`
//! (see [`spec`]) and leaves as a [`Dataset`] in the common model input: 3×32×32 u8, CHW per image
//! (28×28 images are padded to 32, gray is repeated to 3 channels, 96×96 is area-averaged to 32).
//!
//! Files: [`dataset`] (the container, splits, tensors, normalization), [`spec`] (spec strings),
//! readers [`idx`], [`cifar`], [`stl`], [`npy`], [`folder`], [`camelyon`], [`transform`] (shape
//! conversions), [`corrupt`] (CIFAR-10-C corruptions), [`synthetic`] (the built-in shapes set),
//! [`download`] (official files over HTTPS with checksums), [`image_io`] (PNG grids, exports).

pub mod array;
pub mod camelyon;
pub mod cifar;
pub mod corrupt;
pub mod dataset;
pub mod download;
pub mod error;
pub mod folder;
pub mod idx;
pub mod image_io;
pub mod npy;
pub mod spec;
pub mod stl;
pub mod synthetic;
pub mod transform;

pub use dataset::{Dataset, Normalization};
pub use error::DataError;
pub use spec::{DatasetSpec, Kind};

/// Parses `spec`, reads the files, converts to the common 3×32×32 input and applies the
/// corruption suffix if any.
pub fn load(spec: &str) -> Result<Dataset, DataError> {
    DatasetSpec::parse(spec)?.load()
}
