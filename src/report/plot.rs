//! The crate's one plotting module: line plots drawn with `plotters`, written as PNG (bitmap
//! backend; text in the embedded DejaVu Sans of `assets/fonts/`) or SVG (text as real text).
//!
//! A plot has named series, each with its own colour and marker, optional ± standard-error bars
//! (a shaded band when a series has more than [`BAND_FROM`] points), optional dashed horizontal
//! reference lines (AUROC's chance level 0.5: [`LinePlot::with_chance_line`]) and a legend to the
//! right of the data, never over it. Several plots can be stacked as panels of one figure
//! ([`save_figure`]).

use super::ReportError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// The embedded font (DejaVu Sans; its license is `assets/fonts/LICENSE`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family name the font is registered under.
const FAMILY: &str = "sans-serif";
/// Series with more points than this draw their standard errors as a band, not as bars.
pub const BAND_FROM: usize = 15;

/// One named line: points `(x, y)` drawn in order; non-finite points break the line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Standard error of each point's y (same length as `points`; a non-finite entry draws no
    /// bar); `None` when the series has none.
    pub se: Option<Vec<f64>>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            se: None,
        }
    }

    /// Adds the standard error of each point (builder style).
    pub fn with_se(mut self, se: Vec<f64>) -> Self {
        self.se = Some(se);
        self
    }

    /// The standard error of point `i`, if finite.
    fn se_at(&self, i: usize) -> Option<f64> {
        self.se.as_ref()?.get(i).copied().filter(|s| s.is_finite())
    }
}

/// A dashed horizontal reference line with its legend label.
#[derive(Clone, Debug, PartialEq)]
pub struct RefLine {
    pub y: f64,
    pub label: String,
}

/// A line plot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Fixed y range (e.g. `(0, 1)` for AUROC); automatic when `None`.
    pub y_range: Option<(f64, f64)>,
    /// Dashed horizontal lines (e.g. the chance level of an AUROC).
    pub ref_lines: Vec<RefLine>,
    /// An interval the automatic y range always covers (e.g. `(0.45, 1)` for an AUROC, so the
    /// chance level shows while values near 1 keep their resolution).
    pub y_include: Option<(f64, f64)>,
    /// Shift the series sideways by a little each, so that equal points and their error bars
    /// at the same x stay apart.
    pub dodge: bool,
}

/// Series colours (Tableau 10).
const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// Colour of series `i`.
pub fn color(i: usize) -> [u8; 3] {
    PALETTE[i % PALETTE.len()]
}

fn rgb(i: usize) -> RGBColor {
    let [r, g, b] = color(i);
    RGBColor(r, g, b)
}

/// A closed interval `(lo, hi)` of an axis.
type Range = (f64, f64);

/// Grey of reference lines.
const REF_GREY: RGBColor = RGBColor(110, 110, 110);

/// A tick label: at most 4 decimals, trailing zeros dropped; scientific for very large or
/// very small magnitudes.
pub fn tick_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    if v.abs() >= 1e5 || v.abs() < 1e-3 {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Registers the embedded font once.
fn register_font() -> Result<(), ReportError> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ReportError::Invalid("the embedded plot font does not parse".into()))
    }
}

/// `(lo, hi)` of finite values, widened when empty of extent.
fn extent(v: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = v
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if lo > hi {
        None
    } else if hi > lo {
        Some((lo, hi))
    } else {
        Some((lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0)))
    }
}

/// Widens `(lo, hi)` by `f` of its span on each side.
fn pad((lo, hi): (f64, f64), f: f64) -> (f64, f64) {
    let d = f * (hi - lo);
    (lo - d, hi + d)
}

/// Maximal runs of consecutive finite points, with their indices.
fn runs(points: &[(f64, f64)]) -> Vec<Vec<(usize, (f64, f64))>> {
    let mut out = vec![Vec::new()];
    for (i, &(x, y)) in points.iter().enumerate() {
        if x.is_finite() && y.is_finite() {
            if let Some(last) = out.last_mut() {
                last.push((i, (x, y)));
            }
        } else if out.last().is_some_and(|l| !l.is_empty()) {
            out.push(Vec::new());
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// A plotters error as a string (their error types are generic over the backend).
fn msg<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Draws marker `kind` (circle, triangle, square, cross, cycling) at `at` in `area`'s coordinates.
fn marker<DB, CT, C>(area: &DrawingArea<DB, CT>, at: C, kind: usize, c: RGBColor) -> Result<(), String>
where
    DB: DrawingBackend,
    CT: plotters::coord::CoordTranslate<From = C>,
    C: Clone + 'static,
{
    let fill = c.filled();
    match kind % 4 {
        0 => area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), 4, fill))),
        1 => area.draw(&(EmptyElement::at(at) + TriangleMarker::new((0, 0), 6, fill))),
        2 => area.draw(&(EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], fill))),
        _ => area.draw(&(EmptyElement::at(at) + Cross::new((0, 0), 5, c.stroke_width(2)))),
    }
    .map_err(msg)
}

impl LinePlot {
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        LinePlot {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Default::default()
        }
    }

    /// Adds a series (builder style).
    pub fn with_series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    /// Adds a dashed horizontal reference line (builder style).
    pub fn with_ref_line(mut self, y: f64, label: impl Into<String>) -> Self {
        self.ref_lines.push(RefLine { y, label: label.into() });
        self
    }

    /// Adds the chance level of an AUROC, 0.5 (builder style).
    pub fn with_chance_line(self) -> Self {
        self.with_ref_line(0.5, "chance (0.5)")
    }

    /// An AUROC axis: automatic, but always covering [0.45, 1], with the chance line (builder
    /// style).
    pub fn auroc_axis(mut self) -> Self {
        self.y_range = None;
        self.y_include = Some((0.45, 1.0));
        self.with_chance_line()
    }

    /// The x offset of series `i` when dodging: ±0.6 % of the x span per series, centred.
    fn offset(&self, i: usize, span: f64) -> f64 {
        if !self.dodge {
            return 0.0;
        }
        (i as f64 - (self.series.len() as f64 - 1.0) / 2.0) * 0.006 * span
    }

    /// The data ranges: x padded by 3 % a side, y by 5 % (2 % for a fixed range), with the
    /// error bars and reference lines inside.
    fn ranges(&self) -> Result<(Range, Range), ReportError> {
        let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter(finite).copied())
            .collect();
        let Some(x) = extent(pts.iter().map(|p| p.0)) else {
            return Err(ReportError::Invalid(format!(
                "plot '{}' has no finite points",
                self.title
            )));
        };
        let y = match self.y_range {
            Some((a, b)) if b > a => pad((a, b), 0.02),
            _ => {
                let ys = self.series.iter().flat_map(|s| {
                    s.points.iter().enumerate().flat_map(move |(i, p)| {
                        let e = s.se_at(i).unwrap_or(0.0);
                        [p.1 - e, p.1 + e]
                    })
                });
                let refs = self.ref_lines.iter().map(|r| r.y);
                let include = self.y_include.into_iter().flat_map(|(a, b)| [a, b]);
                pad(extent(ys.chain(refs).chain(include)).unwrap_or((0.0, 1.0)), 0.05)
            }
        };
        Ok((pad(x, 0.03), y))
    }

    /// Draws the plot into `area` (data on the left, legend on the right).
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let ((x0, x1), (y0, y1)) = self.ranges().map_err(msg)?;
        let legend_font: TextStyle = (FAMILY, 14).into_font().color(&BLACK);
        let mut entries: Vec<&str> = self.series.iter().map(|s| s.name.as_str()).collect();
        entries.extend(self.ref_lines.iter().map(|r| r.label.as_str()));
        let widest = entries
            .iter()
            .map(|e| area.estimate_text_size(e, &legend_font).map(|s| s.0))
            .try_fold(0u32, |m, w| w.map(|w| m.max(w)))
            .map_err(msg)?;
        let (w, _) = area.dim_in_pixel();
        let legend_w = if entries.is_empty() {
            0
        } else {
            (widest + widest / 10 + 56).min(w * 2 / 5)
        };
        let (plot_area, legend_area) = area.split_horizontally(w - legend_w);

        let mut chart = ChartBuilder::on(&plot_area)
            .caption(&self.title, (FAMILY, 20))
            .margin(10)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(msg)?;
        let fmt = |v: &f64| tick_label(*v);
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .axis_desc_style((FAMILY, 16))
            .label_style((FAMILY, 14))
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .bold_line_style(RGBColor(225, 225, 225))
            .max_light_lines(0)
            .draw()
            .map_err(msg)?;
        for r in &self.ref_lines {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, r.y), (x1, r.y)],
                    8,
                    6,
                    REF_GREY.stroke_width(2),
                ))
                .map_err(msg)?;
        }
        let plotting = chart.plotting_area();
        for (i, s) in self.series.iter().enumerate() {
            let c = rgb(i);
            let dx = self.offset(i, x1 - x0);
            let shifted: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x + dx, y)).collect();
            for run in runs(&shifted) {
                let with_se: Vec<(f64, f64, f64)> = run
                    .iter()
                    .filter_map(|&(k, (x, y))| s.se_at(k).map(|e| (x, y, e)))
                    .collect();
                if run.len() > BAND_FROM && with_se.len() > 1 {
                    let band: Vec<(f64, f64)> = with_se
                        .iter()
                        .map(|&(x, y, e)| (x, y + e))
                        .chain(with_se.iter().rev().map(|&(x, y, e)| (x, y - e)))
                        .collect();
                    plotting.draw(&Polygon::new(band, c.mix(0.18).filled())).map_err(msg)?;
                } else {
                    for &(x, y, e) in &with_se {
                        let bar = c.stroke_width(2);
                        plotting
                            .draw(&PathElement::new([(x, y - e), (x, y + e)], bar))
                            .map_err(msg)?;
                        for end in [y - e, y + e] {
                            plotting
                                .draw(&(EmptyElement::at((x, end)) + PathElement::new([(-5, 0), (5, 0)], bar)))
                                .map_err(msg)?;
                        }
                    }
                }
                let line: Vec<(f64, f64)> = run.iter().map(|&(_, p)| p).collect();
                plotting
                    .draw(&PathElement::new(line.clone(), c.stroke_width(2)))
                    .map_err(msg)?;
                if run.len() <= 2 * BAND_FROM {
                    for p in line {
                        marker(plotting, p, i, c)?;
                    }
                }
            }
        }
        // The legend: one row per series, then the reference lines.
        let row = 24;
        let top = 44;
        for (k, name) in entries.iter().enumerate() {
            let y = top + row * k as i32;
            if k < self.series.len() {
                let c = rgb(k);
                legend_area
                    .draw(&PathElement::new([(8, y), (36, y)], c.stroke_width(2)))
                    .map_err(msg)?;
                marker(&legend_area, (22, y), k, c)?;
            } else {
                legend_area
                    .draw(&PathElement::new([(8, y), (16, y)], REF_GREY.stroke_width(2)))
                    .map_err(msg)?;
                legend_area
                    .draw(&PathElement::new([(24, y), (36, y)], REF_GREY.stroke_width(2)))
                    .map_err(msg)?;
            }
            let style = legend_font.clone().pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            ));
            legend_area
                .draw(&Text::new(name.to_string(), (44, y), style))
                .map_err(msg)?;
        }
        Ok(())
    }

    /// The plot as an SVG document.
    pub fn to_svg(&self, width: u32, height: u32) -> Result<String, ReportError> {
        figure_svg(std::slice::from_ref(self), width, height)
    }

    /// The plot rasterized to an RGB image.
    pub fn to_png(&self, width: u32, height: u32) -> Result<image::RgbImage, ReportError> {
        figure_rgb(std::slice::from_ref(self), width, height)
    }

    /// Writes `path` as SVG or PNG by its extension (`.svg` / `.png`), atomically.
    pub fn save(&self, path: &Path, width: u32, height: u32) -> Result<(), ReportError> {
        save_figure(path, std::slice::from_ref(self), width, height)
    }
}

/// Checks the size and that every panel has data.
fn check(plots: &[LinePlot], width: u32, height: u32) -> Result<(), ReportError> {
    let panels = plots.len().max(1) as u32;
    if width < 240 || height / panels < 160 {
        return Err(ReportError::Invalid(format!(
            "plot size {width}×{height} for {panels} panel(s) is below 240×160 a panel"
        )));
    }
    if plots.is_empty() {
        return Err(ReportError::Invalid("a figure needs at least one plot".into()));
    }
    for p in plots {
        p.ranges()?;
    }
    register_font()
}

/// Draws `plots` stacked top to bottom on a white `root`.
fn render<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, plots: &[LinePlot]) -> Result<(), String> {
    root.fill(&WHITE).map_err(msg)?;
    for (p, area) in plots.iter().zip(root.split_evenly((plots.len(), 1))) {
        p.draw(&area)?;
    }
    root.present().map_err(msg)
}

/// `plots` stacked as panels of one SVG document.
pub fn figure_svg(plots: &[LinePlot], width: u32, height: u32) -> Result<String, ReportError> {
    check(plots, width, height)?;
    let mut s = String::new();
    render(
        SVGBackend::with_string(&mut s, (width, height)).into_drawing_area(),
        plots,
    )
    .map_err(|e| ReportError::Invalid(format!("drawing '{}': {e}", plots[0].title)))?;
    Ok(s)
}

/// `plots` stacked as panels of one RGB image.
pub fn figure_rgb(plots: &[LinePlot], width: u32, height: u32) -> Result<image::RgbImage, ReportError> {
    check(plots, width, height)?;
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    render(
        BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area(),
        plots,
    )
    .map_err(|e| ReportError::Invalid(format!("drawing '{}': {e}", plots[0].title)))?;
    image::RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| ReportError::Invalid(format!("plot buffer of {width}×{height} has the wrong size")))
}

/// Writes `plots`, stacked as panels, to `path` as SVG or PNG by its extension, atomically.
pub fn save_figure(path: &Path, plots: &[LinePlot], width: u32, height: u32) -> Result<(), ReportError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("svg") => super::json::write_atomic(path, figure_svg(plots, width, height)?.as_bytes()),
        Some("png") => {
            let img = figure_rgb(plots, width, height)?;
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
                .map_err(|source| ReportError::Image {
                    path: path.display().to_string(),
                    source,
                })?;
            super::json::write_atomic(path, &bytes)
        }
        _ => Err(ReportError::Invalid(format!(
            "{}: plot files must end in .svg or .png",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot() -> LinePlot {
        LinePlot::new("AUROC vs |Q| <test>", "|Q|", "AUROC")
            .with_series(
                Series::new("entropy & co", vec![(10.0, 0.5), (20.0, 0.7), (50.0, 0.9)])
                    .with_se(vec![0.05, 0.04, 0.02]),
            )
            .with_series(Series::new(
                "disagreement",
                vec![(10.0, 0.4), (20.0, f64::NAN), (50.0, 0.8)],
            ))
            .with_chance_line()
    }

    #[test]
    fn svg_has_escaped_text_axes_legend_and_chance_line() {
        let svg = plot().to_svg(640, 400).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("&lt;test&gt;") && svg.contains("entropy &amp; co"));
        assert!(svg.contains("chance (0.5)") && svg.contains("disagreement"));
        assert!(svg.contains("\n0.6\n") && svg.contains("\n30\n"), "tick labels present");
    }

    #[test]
    fn png_decodes_with_the_right_size_and_series_colours() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fig.png");
        plot().save(&p, 640, 400).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (640, 400));
        let count = |c: [u8; 3]| img.pixels().filter(|px| px.0 == c).count();
        assert!(count(color(0)) > 200, "series 0 drawn");
        assert!(count(color(1)) > 50, "series 1 drawn");
        let dark = img.pixels().filter(|px| px.0.iter().all(|&v| v < 80)).count();
        assert!(dark > 500, "axes and text drawn ({dark} dark pixels)");
        plot().save(&dir.path().join("fig.svg"), 640, 400).unwrap();
        assert!(plot().save(&dir.path().join("fig.gif"), 640, 400).is_err());
        assert!(LinePlot::new("empty", "x", "y").to_svg(400, 300).is_err());
        assert!(plot().to_png(100, 80).is_err());
    }

    /// Two stacked panels each draw their series; 40 points with standard errors draw a band.
    #[test]
    fn panels_stack_and_many_points_draw_a_band() {
        let n = 40;
        let pts: Vec<(f64, f64)> = (0..n).map(|i| (i as f64, (i as f64).sqrt())).collect();
        let a =
            LinePlot::new("reward", "iteration", "r").with_series(Series::new("r", pts.clone()).with_se(vec![0.3; n]));
        let b = LinePlot::new("loss", "iteration", "l").with_series(Series::new("l", pts));
        let img = figure_rgb(&[a, b], 640, 640).unwrap();
        let [r, g, bl] = color(0);
        // The band is the series colour mixed 18 % into white.
        let tint = |v: u8| (255.0 - 0.18 * (255.0 - v as f64)).round() as i32;
        let band = img
            .pixels()
            .filter(|p| {
                (p.0[0] as i32 - tint(r)).abs() <= 2
                    && (p.0[1] as i32 - tint(g)).abs() <= 2
                    && (p.0[2] as i32 - tint(bl)).abs() <= 2
            })
            .count();
        assert!(band > 1000, "band drawn ({band} pixels)");
        let top = (0..320).flat_map(|y| (0..640).map(move |x| (x, y)));
        let bottom = (320..640).flat_map(|y| (0..640).map(move |x| (x, y)));
        let colored =
            |it: &mut dyn Iterator<Item = (u32, u32)>| it.filter(|&(x, y)| img.get_pixel(x, y).0 == color(0)).count();
        assert!(colored(&mut top.into_iter()) > 100 && colored(&mut bottom.into_iter()) > 100);
    }

    /// An AUROC axis keeps the chance level in view and spends the rest on the data; dodging
    /// moves series apart only when asked.
    #[test]
    fn auroc_axis_covers_chance_and_dodge_separates() {
        let p = LinePlot::new("a", "|Q|", "AUROC")
            .with_series(Series::new("x", vec![(10.0, 0.9), (50.0, 1.0)]))
            .with_series(Series::new("y", vec![(10.0, 0.95), (50.0, 1.0)]))
            .auroc_axis();
        let (_, (lo, hi)) = p.ranges().unwrap();
        assert!(lo < 0.45 && lo > 0.4 && hi > 1.0 && hi < 1.05, "{lo} {hi}");
        assert_eq!(p.offset(0, 40.0), 0.0);
        let mut d = p.clone();
        d.dodge = true;
        assert!(d.offset(0, 40.0) < 0.0 && d.offset(1, 40.0) > 0.0);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.4), "0.4");
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(50.0), "50");
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(2e-5), "2.0e-5");
    }
}
