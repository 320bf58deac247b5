//! Reports: JSON results (atomic writes), markdown tables, SVG/PNG line plots (`plot`, on
//! plotters), progress bars.

pub mod json;
pub mod plot;
pub mod progress;
pub mod table;

pub use plot::{save_figure, LinePlot, RefLine, Series};
pub use progress::{progress_bar, spinner};
pub use table::{Align, Table};

/// Errors of the report writers.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file that could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// JSON that could not be encoded or decoded.
    #[error("{path}: JSON: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// An image that could not be encoded.
    #[error("{path}: image: {source}")]
    Image {
        path: String,
        #[source]
        source: image::ImageError,
    },
    /// Bad arguments (wrong column count, empty plot, unknown file extension, ...).
    #[error("{0}")]
    Invalid(String),
}
