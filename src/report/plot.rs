//! Line plots of several series with axes, "nice" ticks, labels and a legend, written as SVG
//! (text as real text) or PNG (lines rasterized here, text in the built-in 3×5 bitmap font).
//! Both renderers share one layout, so the two files show the same picture.

use super::font;
use super::ReportError;
use image::{Rgb, RgbImage};
use std::path::Path;

/// One named line: points `(x, y)` drawn in order; non-finite points break the line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
        }
    }
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

/// About `target` round tick values (steps 1, 2 or 5 × 10^k) covering `[lo, hi]`, and the step.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = (hi - lo).abs().max(1e-12);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    ((first..=last).map(|k| k as f64 * step).collect(), step)
}

/// A tick label with as many decimals as the step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() >= 1e5 || step < 1e-4 {
        return format!("{v:.1e}");
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// Pixel geometry shared by both renderers.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        self.left + (x - self.x.0) / (self.x.1 - self.x.0) * (self.w - self.left - self.right)
    }
    fn py(&self, y: f64) -> f64 {
        self.h - self.bottom - (y - self.y.0) / (self.y.1 - self.y.0) * (self.h - self.top - self.bottom)
    }
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

    fn frame(&self, width: u32, height: u32) -> Result<Frame, ReportError> {
        if width < 120 || height < 90 {
            return Err(ReportError::Invalid(format!(
                "plot size {width}×{height} is below 120×90"
            )));
        }
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if pts.is_empty() {
            return Err(ReportError::Invalid(format!(
                "plot '{}' has no finite points",
                self.title
            )));
        }
        let range = |v: &mut dyn Iterator<Item = f64>| {
            let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
            if hi > lo {
                (lo, hi)
            } else {
                (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0))
            }
        };
        let x = range(&mut pts.iter().map(|p| p.0));
        let y = match self.y_range {
            Some((a, b)) if b > a => (a, b),
            _ => {
                let (a, b) = range(&mut pts.iter().map(|p| p.1));
                let pad = 0.05 * (b - a);
                (a - pad, b + pad)
            }
        };
        Ok(Frame {
            w: width as f64,
            h: height as f64,
            left: 64.0,
            right: 16.0,
            top: 30.0,
            bottom: 44.0,
            x,
            y,
        })
    }

    /// The plot as an SVG document.
    pub fn to_svg(&self, width: u32, height: u32) -> Result<String, ReportError> {
        let f = self.frame(width, height)?;
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n"
        );
        s += &format!("<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n");
        let (x0, x1, y0, y1) = (f.left, f.w - f.right, f.top, f.h - f.bottom);
        s += &format!(
            "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n",
            x1 - x0,
            y1 - y0
        );
        let (xt, xs) = nice_ticks(f.x.0, f.x.1, 6);
        for t in &xt {
            let p = f.px(*t);
            s += &format!(
                "<line x1=\"{p:.2}\" y1=\"{y1}\" x2=\"{p:.2}\" y2=\"{}\" stroke=\"black\"/>\n",
                y1 + 5.0
            );
            s += &format!(
                "<text x=\"{p:.2}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                y1 + 18.0,
                esc(&tick_label(*t, xs))
            );
        }
        let (yt, ys) = nice_ticks(f.y.0, f.y.1, 5);
        for t in &yt {
            let p = f.py(*t);
            s += &format!(
                "<line x1=\"{}\" y1=\"{p:.2}\" x2=\"{x0}\" y2=\"{p:.2}\" stroke=\"black\"/>\n",
                x0 - 5.0
            );
            s += &format!("<line x1=\"{x0}\" y1=\"{p:.2}\" x2=\"{x1}\" y2=\"{p:.2}\" stroke=\"#dddddd\"/>\n");
            s += &format!(
                "<text x=\"{}\" y=\"{:.2}\" text-anchor=\"end\">{}</text>\n",
                x0 - 8.0,
                p + 4.0,
                esc(&tick_label(*t, ys))
            );
        }
        s += &format!(
            "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
            f.w / 2.0,
            esc(&self.title)
        );
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            (x0 + x1) / 2.0,
            f.h - 8.0,
            esc(&self.x_label)
        );
        s += &format!(
            "<text x=\"14\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {0})\">{1}</text>\n",
            (y0 + y1) / 2.0,
            esc(&self.y_label)
        );
        for (i, ser) in self.series.iter().enumerate() {
            let [r, g, b] = color(i);
            for run in runs(&ser.points) {
                let pts: Vec<String> = run
                    .iter()
                    .map(|&(x, y)| format!("{:.2},{:.2}", f.px(x), f.py(y)))
                    .collect();
                s += &format!(
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"rgb({r},{g},{b})\" stroke-width=\"2\"/>\n",
                    pts.join(" ")
                );
            }
            let ly = y0 + 14.0 + 16.0 * i as f64;
            s += &format!(
                "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"rgb({r},{g},{b})\" stroke-width=\"2\"/>\n",
                x0 + 8.0,
                x0 + 28.0
            );
            s += &format!(
                "<text x=\"{}\" y=\"{}\">{}</text>\n",
                x0 + 32.0,
                ly + 4.0,
                esc(&ser.name)
            );
        }
        s += "</svg>\n";
        Ok(s)
    }

    /// The plot rasterized to an RGB image.
    pub fn to_png(&self, width: u32, height: u32) -> Result<RgbImage, ReportError> {
        let f = self.frame(width, height)?;
        let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
        let black = [0, 0, 0];
        let (x0, x1, y0, y1) = (f.left, f.w - f.right, f.top, f.h - f.bottom);
        let (xt, xs) = nice_ticks(f.x.0, f.x.1, 6);
        let (yt, ys) = nice_ticks(f.y.0, f.y.1, 5);
        for t in &yt {
            line(&mut img, (x0, f.py(*t)), (x1, f.py(*t)), [221, 221, 221], 1);
        }
        for (a, b) in [
            ((x0, y0), (x1, y0)),
            ((x1, y0), (x1, y1)),
            ((x1, y1), (x0, y1)),
            ((x0, y1), (x0, y0)),
        ] {
            line(&mut img, a, b, black, 1);
        }
        for t in &xt {
            let p = f.px(*t);
            line(&mut img, (p, y1), (p, y1 + 5.0), black, 1);
            let l = tick_label(*t, xs);
            text(
                &mut img,
                &l,
                p - font::text_width(&l, 2) as f64 / 2.0,
                y1 + 9.0,
                2,
                black,
            );
        }
        for t in &yt {
            let p = f.py(*t);
            line(&mut img, (x0 - 5.0, p), (x0, p), black, 1);
            let l = tick_label(*t, ys);
            text(
                &mut img,
                &l,
                x0 - 8.0 - font::text_width(&l, 2) as f64,
                p - 5.0,
                2,
                black,
            );
        }
        text(
            &mut img,
            &self.title,
            f.w / 2.0 - font::text_width(&self.title, 2) as f64 / 2.0,
            8.0,
            2,
            black,
        );
        let xl = font::text_width(&self.x_label, 2) as f64;
        text(
            &mut img,
            &self.x_label,
            (x0 + x1) / 2.0 - xl / 2.0,
            f.h - 16.0,
            2,
            black,
        );
        // The y label sits above the axis, written horizontally (the bitmap font does not rotate).
        text(&mut img, &self.y_label, 4.0, y0 - 13.0, 2, black);
        for (i, ser) in self.series.iter().enumerate() {
            let c = color(i);
            for run in runs(&ser.points) {
                for w in run.windows(2) {
                    line(
                        &mut img,
                        (f.px(w[0].0), f.py(w[0].1)),
                        (f.px(w[1].0), f.py(w[1].1)),
                        c,
                        2,
                    );
                }
                if run.len() == 1 {
                    line(
                        &mut img,
                        (f.px(run[0].0), f.py(run[0].1)),
                        (f.px(run[0].0), f.py(run[0].1)),
                        c,
                        3,
                    );
                }
            }
            let ly = y0 + 14.0 + 16.0 * i as f64;
            line(&mut img, (x0 + 8.0, ly), (x0 + 28.0, ly), c, 2);
            text(&mut img, &ser.name, x0 + 32.0, ly - 5.0, 2, black);
        }
        Ok(img)
    }

    /// Writes `path` as SVG or PNG by its extension (`.svg` / `.png`), atomically.
    pub fn save(&self, path: &Path, width: u32, height: u32) -> Result<(), ReportError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("svg") => super::json::write_atomic(path, self.to_svg(width, height)?.as_bytes()),
            Some("png") => {
                let img = self.to_png(width, height)?;
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
}

/// Maximal runs of consecutive finite points.
fn runs(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            if let Some(last) = out.last_mut() {
                last.push((x, y));
            }
        } else if out.last().is_some_and(|l| !l.is_empty()) {
            out.push(Vec::new());
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(c));
    }
}

/// A line of `thickness` pixels by Bresenham's algorithm (a square brush at each step).
fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), c: [u8; 3], thickness: i64) {
    let (mut x, mut y) = (a.0.round() as i64, a.1.round() as i64);
    let (xe, ye) = (b.0.round() as i64, b.1.round() as i64);
    let (dx, dy) = ((xe - x).abs(), -(ye - y).abs());
    let (sx, sy) = (if x < xe { 1 } else { -1 }, if y < ye { 1 } else { -1 });
    let mut err = dx + dy;
    let lo = -(thickness - 1) / 2;
    let hi = thickness / 2;
    loop {
        for oy in lo..=hi {
            for ox in lo..=hi {
                put(img, x + ox, y + oy, c);
            }
        }
        if x == xe && y == ye {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

fn text(img: &mut RgbImage, s: &str, x: f64, y: f64, scale: usize, c: [u8; 3]) {
    font::render(s, x.round() as i64, y.round() as i64, scale, |px, py| {
        put(img, px, py, c)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot() -> LinePlot {
        LinePlot::new("AUROC vs iterations <test>", "iteration", "AUROC")
            .with_series(Series::new("entropy & co", vec![(0.0, 0.5), (10.0, 0.7), (20.0, 0.9)]))
            .with_series(Series::new(
                "disagreement",
                vec![(0.0, 0.4), (10.0, f64::NAN), (20.0, 0.8)],
            ))
    }

    /// A minimal well-formedness check: every element opened is closed in order, attributes quoted.
    fn well_formed(svg: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let j = rest[i..].find('>').ok_or("unclosed tag")? + i;
            let tag = &rest[i + 1..j];
            if !tag.matches('"').count().is_multiple_of(2) {
                return Err(format!("unbalanced quotes in <{tag}>"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name) {
                    return Err(format!("mismatched </{name}>"));
                }
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
            }
            if rest[i + 1..j].contains('<') {
                return Err("'<' inside a tag".into());
            }
            rest = &rest[j + 1..];
        }
        if stack.is_empty() {
            Ok(())
        } else {
            Err(format!("unclosed {stack:?}"))
        }
    }

    #[test]
    fn svg_is_well_formed_with_axes_and_legend() {
        let svg = plot().to_svg(640, 400).unwrap();
        well_formed(&svg).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("&lt;test&gt;") && svg.contains("entropy &amp; co"));
        // Series 1 is split by its NaN into two runs: 1 + 2 polylines.
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains(">0.6<") && svg.contains(">10<"), "tick labels present");
        assert!(well_formed("<svg><g></svg>").is_err());
    }

    #[test]
    fn png_decodes_with_the_right_size_and_series_colours() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fig.png");
        plot().save(&p, 480, 320).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (480, 320));
        let count = |c: [u8; 3]| img.pixels().filter(|px| px.0 == c).count();
        assert!(count(color(0)) > 200, "series 0 drawn");
        assert!(count(color(1)) > 20, "series 1 drawn");
        assert!(count([0, 0, 0]) > 500, "axes and text drawn");
        plot().save(&dir.path().join("fig.svg"), 480, 320).unwrap();
        assert!(plot().save(&dir.path().join("fig.gif"), 480, 320).is_err());
        assert!(LinePlot::new("empty", "x", "y").to_svg(400, 300).is_err());
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (t, s) = nice_ticks(0.03, 0.97, 5);
        assert_eq!(s, 0.2);
        assert_eq!(t.len(), 4); // 0.2 0.4 0.6 0.8
        assert!((t[0] - 0.2).abs() < 1e-12);
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(50.0, 10.0), "50");
        assert_eq!(nice_ticks(0.0, 100.0, 5).0.len(), 6);
    }
}
