//! Markdown tables with padded columns, and number formats for them (`0.850 ± 0.036`).

use super::ReportError;

/// Column alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A markdown table: a header row and rows of cells.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers; the first column left-aligned, the others right-aligned.
    pub fn new<S: AsRef<str>>(headers: &[S]) -> Self {
        let align = (0..headers.len())
            .map(|i| if i == 0 { Align::Left } else { Align::Right })
            .collect();
        Table {
            headers: headers.iter().map(|h| h.as_ref().to_string()).collect(),
            align,
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have one cell per header.
    pub fn push_row<S: AsRef<str>>(&mut self, cells: &[S]) -> Result<(), ReportError> {
        if cells.len() != self.headers.len() {
            return Err(ReportError::Invalid(format!(
                "table row has {} cells, the table has {} columns",
                cells.len(),
                self.headers.len()
            )));
        }
        self.rows.push(cells.iter().map(|c| c.as_ref().to_string()).collect());
        Ok(())
    }

    /// The table in GitHub markdown, columns padded to equal width, `|` in cells escaped.
    pub fn to_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let head: Vec<String> = self.headers.iter().map(|h| esc(h)).collect();
        let body: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(|c| esc(c)).collect()).collect();
        let width: Vec<usize> = (0..head.len())
            .map(|j| {
                body.iter()
                    .map(|r| r[j].chars().count())
                    .chain([head[j].chars().count(), 3])
                    .max()
                    .unwrap_or(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    let pad = width[j] - c.chars().count();
                    match self.align[j] {
                        Align::Left => format!("{c}{}", " ".repeat(pad)),
                        Align::Right => format!("{}{c}", " ".repeat(pad)),
                    }
                })
                .collect();
            format!("| {} |\n", parts.join(" | "))
        };
        let mut out = line(&head);
        let rule: Vec<String> = (0..head.len())
            .map(|j| match self.align[j] {
                Align::Left => format!(":{}", "-".repeat(width[j] - 1)),
                Align::Right => format!("{}:", "-".repeat(width[j] - 1)),
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for r in &body {
            out.push_str(&line(r));
        }
        out
    }
}

/// `mean ± se` with `digits` decimals.
pub fn fmt_pm(mean: f64, se: f64, digits: usize) -> String {
    format!("{mean:.digits$} ± {se:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_aligned_and_escaped() {
        let mut t = Table::new(&["method", "AUROC"]);
        t.push_row(&["detectron|ent", "0.775"]).unwrap();
        t.push_row(&["mmd".to_string(), fmt_pm(0.85, 0.0361, 3)]).unwrap();
        assert!(t.push_row(&["x"]).is_err());
        let md = t.to_markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].starts_with("| :") && lines[1].ends_with(": |"), "{md}");
        assert!(lines[2].contains("detectron\\|ent"));
        assert!(lines[3].contains("0.850 ± 0.036"));
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{md}");
    }
}
