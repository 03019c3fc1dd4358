//! How features are named, classified and printed: numbers people can read at a glance.

use serde::Serialize;

/// The family a feature belongs to; it picks the unit and the suggested next steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FeatureKind {
    /// Latencies (milliseconds).
    Latency,
    /// Error rates (fractions, shown as percent).
    Errors,
    /// Event counts and rates of traffic.
    Volume,
    /// Anything else.
    Other,
}

impl FeatureKind {
    /// Classify a feature by its name (`p99_latency` → Latency, `error_rate` → Errors, ...).
    pub fn of(feature: &str) -> Self {
        let f = feature.to_ascii_lowercase();
        if f.contains("latency") || f.contains("duration") {
            FeatureKind::Latency
        } else if f.contains("error") || f.contains("fail") {
            FeatureKind::Errors
        } else if f.contains("count")
            || f.contains("volume")
            || f.contains("throughput")
            || f.contains("requests")
        {
            FeatureKind::Volume
        } else {
            FeatureKind::Other
        }
    }

    /// A heading for the kind.
    pub fn title(self) -> &'static str {
        match self {
            FeatureKind::Latency => "Latency",
            FeatureKind::Errors => "Errors",
            FeatureKind::Volume => "Volume",
            FeatureKind::Other => "Other signals",
        }
    }
}

/// A readable label: `p99_latency` → `p99 latency`.
pub fn label(feature: &str) -> String {
    feature.replace('_', " ")
}

/// Group the integer part with commas: `1240` → `1,240`.
fn group_thousands(int_part: &str) -> String {
    let (sign, digits) = int_part
        .strip_prefix('-')
        .map_or(("", int_part), |d| ("-", d));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// A number with sensible precision: integers ≥ 100, one decimal ≥ 1, two significant digits below.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    let decimals = if a >= 100.0 || a == 0.0 {
        0
    } else if a >= 1.0 {
        1
    } else {
        // two significant digits: 0.042 → 3 decimals, 0.5 → 2 decimals
        let lead = (-a.log10()).floor();
        (lead as usize + 2).min(6)
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    match s.split_once('.') {
        Some((i, f)) => format!("{}.{f}", group_thousands(i)),
        None => group_thousands(&s),
    }
}

/// A feature value with its unit: `1,240 ms`, `4.2 %`, `1,320`.
pub fn value(feature: &str, v: f64) -> String {
    match FeatureKind::of(feature) {
        FeatureKind::Latency => format!("{} ms", number(v)),
        FeatureKind::Errors if is_fraction(feature) => format!("{} %", number(v * 100.0)),
        _ => number(v),
    }
}

/// Error *rates* and *ratios* are fractions in [0, 1]; counts of errors are not.
fn is_fraction(feature: &str) -> bool {
    let f = feature.to_ascii_lowercase();
    f.contains("rate") || f.contains("ratio")
}

/// actual / typical, or `None` when typical is zero and actual is not.
pub fn ratio(actual: f64, typical: f64) -> Option<f64> {
    if typical.abs() < f64::EPSILON {
        if actual.abs() < f64::EPSILON {
            Some(1.0)
        } else {
            None
        }
    } else {
        Some(actual / typical)
    }
}

/// How far from typical, for people: `6.9×`, `12×`, `−85 %`, `new (typical 0)`.
pub fn change(actual: f64, typical: f64) -> String {
    match ratio(actual, typical) {
        None => "new (typical 0)".to_string(),
        Some(r) if r >= 10.0 => format!("{}×", number(r.round())),
        Some(r) if r >= 1.0 => format!("{r:.1}×"),
        Some(r) => format!("−{:.0} %", (1.0 - r) * 100.0),
    }
}

/// Whether a value counts as deviating from typical (more than 50 % off, or non-zero vs zero).
pub fn deviates(actual: f64, typical: f64) -> bool {
    match ratio(actual, typical) {
        None => true,
        Some(r) => !(0.5..=1.5).contains(&r),
    }
}

/// `2026-11-24 10:05 UTC`.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `10:05`.
pub fn clock(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_readable() {
        assert_eq!(number(1240.0), "1,240");
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(180.0), "180");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(4.0), "4");
        assert_eq!(number(0.042), "0.042");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-2500.0), "-2,500");
    }

    #[test]
    fn values_carry_units() {
        assert_eq!(value("p99_latency", 1240.0), "1,240 ms");
        assert_eq!(value("error_rate", 0.042), "4.2 %");
        assert_eq!(value("event_count", 1320.0), "1,320");
        assert_eq!(value("cpu", 0.25), "0.25");
    }

    #[test]
    fn changes() {
        assert_eq!(change(1240.0, 180.0), "6.9×");
        assert_eq!(change(0.042, 0.004), "11×");
        assert_eq!(change(150.0, 1000.0), "−85 %");
        assert_eq!(change(3.0, 0.0), "new (typical 0)");
        assert!(deviates(3.0, 0.0));
        assert!(deviates(620.0, 180.0));
        assert!(!deviates(190.0, 180.0));
    }

    #[test]
    fn kinds() {
        assert_eq!(FeatureKind::of("p95_latency"), FeatureKind::Latency);
        assert_eq!(FeatureKind::of("error_rate"), FeatureKind::Errors);
        assert_eq!(FeatureKind::of("event_count"), FeatureKind::Volume);
        assert_eq!(FeatureKind::of("cpu"), FeatureKind::Other);
        assert_eq!(label("p99_latency"), "p99 latency");
    }
}
