//! A minimal SVG line plot (one panel per series) for training logs.

use std::fmt::Write as _;

/// Writes an SVG with one panel per `(name, values)` series, stacked vertically, x = index.
pub fn svg_panels(title: &str, series: &[(&str, Vec<f64>)]) -> String {
    let (w, ph, pad) = (640.0f64, 160.0f64, 40.0f64);
    let h = pad + series.len() as f64 * (ph + pad);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{}" y="20" font-size="14">{}</text>"#, pad, escape(title));
    for (p, (name, vals)) in series.iter().enumerate() {
        let top = pad + p as f64 * (ph + pad);
        let finite: Vec<f64> = vals.iter().copied().filter(|v| v.is_finite()).collect();
        let (lo, hi) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let (lo, hi) = if finite.is_empty() {
            (0.0, 1.0)
        } else if hi - lo < 1e-12 {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        };
        let (x0, x1) = (pad * 1.5, w - pad / 2.0);
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{top}" width="{}" height="{ph}" fill="none" stroke="#999"/>"##,
            x1 - x0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{} (min {:.4}, max {:.4})</text>"#,
            x0 + 4.0,
            top + 14.0,
            escape(name),
            lo,
            hi
        );
        let n = vals.len().max(2) - 1;
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| {
                let x = x0 + (x1 - x0) * i as f64 / n as f64;
                let y = top + ph - (ph - 20.0) * (v - lo) / (hi - lo) - 2.0;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>"##,
            pts.join(" ")
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn svg_has_one_polyline_per_series() {
        let s = super::svg_panels("t<1>", &[("a", vec![1.0, 2.0, 3.0]), ("b", vec![f64::NAN, 1.0])]);
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("t&lt;1&gt;"));
    }
}
