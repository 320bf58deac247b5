//! The one result shape of every shift detector, serialized as one flat JSON object
//! (`{method, statistic, threshold, p_value, shift, n_query, seed, ...extra}`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Outcome of one shift test.
///
/// `threshold` is the critical value of `statistic` (a quantile of the null statistics, or the
/// smallest significant KS statistic); the method's documentation says whether `shift` means
/// "statistic above threshold" or "p-value ≤ α" (they agree up to ties). Non-finite numbers are
/// written as JSON `null` and read back as NaN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionResult {
    /// Detector name, e.g. `"detectron-entropy"`, `"bbsd"`, `"mmd"`.
    pub method: String,
    /// The test statistic on the query sample.
    #[serde(deserialize_with = "f64_or_nan")]
    pub statistic: f64,
    /// The critical value of the statistic at the test's significance level.
    #[serde(deserialize_with = "f64_or_nan")]
    pub threshold: f64,
    /// p-value of the test (never exactly 0 for permutation and quantile tests).
    #[serde(deserialize_with = "f64_or_nan")]
    pub p_value: f64,
    /// The verdict: is the query sample shifted?
    pub shift: bool,
    /// Number of query samples |Q|.
    pub n_query: usize,
    /// The seed the test ran with.
    pub seed: u64,
    /// Method-specific fields (significance level, per-class values, timings, ...), flattened
    /// into the top-level object.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl DetectionResult {
    /// A result with an empty `extra`.
    pub fn new(
        method: impl Into<String>,
        statistic: f64,
        threshold: f64,
        p_value: f64,
        shift: bool,
        n_query: usize,
        seed: u64,
    ) -> Self {
        DetectionResult {
            method: method.into(),
            statistic,
            threshold,
            p_value,
            shift,
            n_query,
            seed,
            extra: Map::new(),
        }
    }

    /// Adds one method-specific field (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// Secondary tests a detector reports inside `extra` (e.g. Meta-Detectron's
    /// `disagreement` and `entropy_gain`): every field that parses as a result with its own
    /// `method`.
    pub fn nested(&self) -> Vec<DetectionResult> {
        self.extra
            .values()
            .filter(|v| v.get("method").is_some_and(|m| m.is_string()))
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    /// The flat JSON object.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// One human line, e.g.
    /// `bbsd: SHIFT (statistic 0.4100 > threshold 0.3200, p = 4.000e-4, |Q| = 50, seed 3)`.
    pub fn verdict_line(&self) -> String {
        let (word, cmp) = if self.shift {
            ("SHIFT", ">")
        } else {
            ("no shift", "≤")
        };
        if self.method == "oracle-error" {
            // The statistic is f's error rate on Q, the threshold the critical rate: percentages.
            return format!(
                "{}: {} (error rate {:.2}% {} critical {:.2}%, p = {}, |Q| = {}, seed {})",
                self.method,
                word,
                100.0 * self.statistic,
                cmp,
                100.0 * self.threshold,
                num(self.p_value),
                self.n_query,
                self.seed
            );
        }
        format!(
            "{}: {} (statistic {} {} threshold {}, p = {}, |Q| = {}, seed {})",
            self.method,
            word,
            num(self.statistic),
            cmp,
            num(self.threshold),
            num(self.p_value),
            self.n_query,
            self.seed
        )
    }
}

fn num(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_flat_and_round_trips() {
        let r = DetectionResult::new("mmd", 0.125, 0.05, 0.0099, true, 20, 7)
            .with("alpha", 0.05)
            .with("permutations", 100);
        let v = r.to_json();
        let o = v.as_object().unwrap();
        for k in [
            "method",
            "statistic",
            "threshold",
            "p_value",
            "shift",
            "n_query",
            "seed",
            "alpha",
            "permutations",
        ] {
            assert!(o.contains_key(k), "missing {k} in {v}");
        }
        assert_eq!(o["shift"], Value::Bool(true));
        let back: DetectionResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn non_finite_threshold_is_null_and_reads_back_as_nan() {
        let r = DetectionResult::new("bbsd", 0.2, f64::NAN, 1.0, false, 5, 0);
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.contains("\"threshold\":null"), "{s}");
        let back: DetectionResult = serde_json::from_str(&s).unwrap();
        assert!(back.threshold.is_nan());
    }

    #[test]
    fn verdict_line_states_the_decision() {
        let r = DetectionResult::new("bbsd", 0.41, 0.32, 0.0004, true, 50, 3);
        let l = r.verdict_line();
        assert!(l.starts_with("bbsd: SHIFT"), "{l}");
        assert!(
            l.contains("|Q| = 50") && l.contains("0.4100") && l.contains("4.000e-4"),
            "{l}"
        );
        let l = DetectionResult::new("oracle-error", 0.35, 0.2, 0.01, true, 20, 0).verdict_line();
        assert!(l.contains("error rate 35.00% > critical 20.00%"), "{l}");
        let l = DetectionResult::new("mmd", 0.01, 0.02, 0.4, false, 10, 1).verdict_line();
        assert!(l.contains("no shift"), "{l}");
    }
}
