//! Datasets: u8 images + labels, readers of the real formats, dataset specs, transforms, corruptions, synthetic data.
