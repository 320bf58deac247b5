//! Reports: JSON results, markdown tables, SVG/PNG plots, progress bars.
