//! The closed feature set and a mergeable per-window accumulator that computes it.
//!
//! Empty windows: `event_count = 0`, `error_rate = 0`, and the latency features are `0.0`
//! (never NaN); [`FeatureAccumulator::has_latency`] tells callers the 0 is a placeholder.
//! Percentiles come from [`QuantileSketch`]: exact up to 128 latencies, within 1% relative
//! error beyond.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DetectionError;
use crate::event::Event;
use crate::sketch::QuantileSketch;
use crate::window::Accumulate;

/// A feature computed per window (closed set; names are snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Number of events in the window.
    EventCount,
    /// Fraction of events that are errors.
    ErrorRate,
    /// Mean latency (ms).
    AvgLatency,
    /// 95th percentile latency (ms).
    P95Latency,
    /// 99th percentile latency (ms).
    P99Latency,
}

impl Feature {
    /// Every feature, in canonical order.
    pub const ALL: [Feature; 5] = [
        Feature::EventCount,
        Feature::ErrorRate,
        Feature::AvgLatency,
        Feature::P95Latency,
        Feature::P99Latency,
    ];

    /// The share of a window's requests above a tail percentile (0.05 for the p95, 0.01 for
    /// the p99; `None` for the other features).
    pub fn tail_share(self) -> Option<f64> {
        match self {
            Feature::P95Latency => Some(0.05),
            Feature::P99Latency => Some(0.01),
            _ => None,
        }
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::EventCount => "event_count",
            Feature::ErrorRate => "error_rate",
            Feature::AvgLatency => "avg_latency",
            Feature::P95Latency => "p95_latency",
            Feature::P99Latency => "p99_latency",
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Feature {
    type Err = DetectionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Feature::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| DetectionError::UnknownFeature(s.to_string()))
    }
}

/// The smallest scale a deviation of this feature is measured in: below it a change is noise
/// whatever the history's spread (1 event, 1 percentage point of errors, 1 ms; a millionth for
/// a gauge). Keeps near-constant features from producing infinite robust z.
pub fn min_scale(name: &str) -> f64 {
    match name {
        "event_count" => 1.0,
        "error_rate" => 0.01,
        "avg_latency" | "p95_latency" | "p99_latency" => 1.0,
        _ => 1e-6,
    }
}

/// Whether a feature is a statistic of the window's requests (its noise depends on how many
/// there are), not a gauge the events carry (`metrics.<name>`).
pub fn per_request(name: &str) -> bool {
    !name.starts_with("metrics.")
}

/// A feature as a detector computes it: a request feature, or the window mean of the numeric
/// metric `metrics.<name>` (its index into the detector's metric list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureDef {
    /// Computed from the window's events.
    Request(Feature),
    /// Mean of a metric the events carry; `NaN` when no event of the window carried it.
    Metric {
        /// Index into the detector's metric names.
        index: usize,
        /// Metric name (without `metrics.`).
        name: String,
    },
}

impl FeatureDef {
    /// The wire name (`p99_latency`, `metrics.cpu`).
    pub fn name(&self) -> String {
        match self {
            FeatureDef::Request(f) => f.as_str().to_string(),
            FeatureDef::Metric { name, .. } => format!("metrics.{name}"),
        }
    }
}

/// Parses feature names (request features or `metrics.<name>`), refusing unknown names and
/// duplicates; returns the definitions and the metric names in index order.
pub fn parse_feature_defs(
    names: &[&str],
) -> Result<(Vec<FeatureDef>, Vec<String>), DetectionError> {
    let mut defs = Vec::with_capacity(names.len());
    let mut metrics: Vec<String> = Vec::new();
    for n in names {
        let def = match n.strip_prefix("metrics.") {
            Some(m) if !m.is_empty() && !m.contains('@') => {
                metrics.push(m.to_string());
                FeatureDef::Metric {
                    index: metrics.len() - 1,
                    name: m.to_string(),
                }
            }
            _ => FeatureDef::Request(n.parse()?),
        };
        if defs.contains(&def) || defs.iter().any(|d: &FeatureDef| d.name() == def.name()) {
            return Err(DetectionError::InvalidConfig(format!(
                "duplicate feature {n}"
            )));
        }
        defs.push(def);
    }
    Ok((defs, metrics))
}

/// The per-event input to a window: error flag, optional latency and the detector's metrics
/// the event carries (by index).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// Whether the event is an error.
    pub error: bool,
    /// Latency in ms, if known.
    pub latency_ms: Option<f64>,
    /// `(metric index, value)` of the detector's metrics present on the event.
    pub metrics: Vec<(usize, f64)>,
}

impl From<&Event> for Observation {
    fn from(e: &Event) -> Self {
        Observation {
            error: e.is_error(),
            latency_ms: e.latency_ms,
            metrics: Vec::new(),
        }
    }
}

impl Observation {
    /// The observation of an event for a detector whose metric names are `metrics`.
    pub fn of(e: &Event, metrics: &[String]) -> Self {
        let mut o = Observation::from(e);
        if !metrics.is_empty() {
            o.metrics = metrics
                .iter()
                .enumerate()
                .filter_map(|(i, m)| e.metrics.get(m).filter(|v| v.is_finite()).map(|&v| (i, v)))
                .collect();
        }
        o
    }
}

/// Mergeable per-window state from which every [`Feature`] is computed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureAccumulator {
    count: u64,
    errors: u64,
    latency_sum: f64,
    latency_count: u64,
    sketch: QuantileSketch,
    /// `(sum, count)` per metric index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    metrics: Vec<(f64, u64)>,
}

impl FeatureAccumulator {
    /// Adds one observation.
    pub fn add(&mut self, o: &Observation) {
        self.count += 1;
        if o.error {
            self.errors += 1;
        }
        if let Some(l) = o.latency_ms.filter(|l| l.is_finite()) {
            self.latency_sum += l;
            self.latency_count += 1;
            self.sketch.insert(l);
        }
        for &(i, v) in &o.metrics {
            if self.metrics.len() <= i {
                self.metrics.resize(i + 1, (0.0, 0));
            }
            self.metrics[i].0 += v;
            self.metrics[i].1 += 1;
        }
    }

    /// Merges another accumulator (e.g. two partial windows).
    pub fn merge(&mut self, other: &FeatureAccumulator) {
        self.count += other.count;
        self.errors += other.errors;
        self.latency_sum += other.latency_sum;
        self.latency_count += other.latency_count;
        self.sketch.merge(&other.sketch);
        if self.metrics.len() < other.metrics.len() {
            self.metrics.resize(other.metrics.len(), (0.0, 0));
        }
        for (a, b) in self.metrics.iter_mut().zip(&other.metrics) {
            a.0 += b.0;
            a.1 += b.1;
        }
    }

    /// Mean of metric `index` over the window (`NaN` when no event carried it).
    pub fn metric_mean(&self, index: usize) -> f64 {
        match self.metrics.get(index) {
            Some(&(sum, n)) if n > 0 => sum / n as f64,
            _ => f64::NAN,
        }
    }

    /// Values of the given definitions, in order (metrics may be `NaN`: no sample).
    pub fn values(&self, defs: &[FeatureDef]) -> Vec<f64> {
        defs.iter()
            .map(|d| match d {
                FeatureDef::Request(f) => self.value(*f),
                FeatureDef::Metric { index, .. } => self.metric_mean(*index),
            })
            .collect()
    }

    /// Number of events.
    pub fn event_count(&self) -> u64 {
        self.count
    }

    /// True when at least one event carried a latency (else latency features are 0 placeholders).
    pub fn has_latency(&self) -> bool {
        self.latency_count > 0
    }

    /// The value of one feature (never NaN).
    pub fn value(&self, f: Feature) -> f64 {
        match f {
            Feature::EventCount => self.count as f64,
            Feature::ErrorRate if self.count == 0 => 0.0,
            Feature::ErrorRate => self.errors as f64 / self.count as f64,
            Feature::AvgLatency if self.latency_count == 0 => 0.0,
            Feature::AvgLatency => self.latency_sum / self.latency_count as f64,
            Feature::P95Latency | Feature::P99Latency => {
                let share = f.tail_share().unwrap_or(0.0);
                self.sketch.quantile(1.0 - share).unwrap_or(0.0)
            }
        }
    }

    /// The values of the requested features, in order.
    pub fn vector(&self, features: &[Feature]) -> Vec<f64> {
        features.iter().map(|&f| self.value(f)).collect()
    }
}

impl Accumulate for FeatureAccumulator {
    type Input = Observation;
    fn add(&mut self, input: &Observation) {
        FeatureAccumulator::add(self, input);
    }
}

/// Parses a list of feature names, rejecting unknown names and duplicates.
pub fn parse_features(names: &[&str]) -> Result<Vec<Feature>, DetectionError> {
    let mut out: Vec<Feature> = Vec::with_capacity(names.len());
    for n in names {
        let f: Feature = n.parse()?;
        if out.contains(&f) {
            return Err(DetectionError::InvalidConfig(format!(
                "duplicate feature {n}"
            )));
        }
        out.push(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(error: bool, l: Option<f64>) -> Observation {
        Observation {
            error,
            latency_ms: l,
            metrics: vec![],
        }
    }

    #[test]
    fn names_round_trip_and_unknown_rejected() {
        for f in Feature::ALL {
            assert_eq!(f.as_str().parse::<Feature>().unwrap(), f);
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
        }
        assert!("p50_latency".parse::<Feature>().is_err());
        assert!(serde_json::from_str::<Feature>("\"bogus\"").is_err());
        assert!(parse_features(&["event_count", "event_count"]).is_err());
        assert_eq!(
            parse_features(&["error_rate"]).unwrap(),
            vec![Feature::ErrorRate]
        );
    }

    #[test]
    fn hand_computed_values() {
        let mut a = FeatureAccumulator::default();
        // latencies 10..=100 step 10; errors on 3 of 10 events.
        for i in 1..=10 {
            a.add(&obs(i % 4 == 0 || i == 1, Some(10.0 * i as f64)));
        }
        assert_eq!(a.value(Feature::EventCount), 10.0);
        assert!((a.value(Feature::ErrorRate) - 0.3).abs() < 1e-12);
        assert!((a.value(Feature::AvgLatency) - 55.0).abs() < 1e-12);
        // nearest rank: ceil(0.95*10)=10th -> 100; ceil(0.99*10)=10th -> 100.
        assert_eq!(a.value(Feature::P95Latency), 100.0);
        assert_eq!(a.value(Feature::P99Latency), 100.0);
        let mut b = FeatureAccumulator::default();
        b.add(&obs(false, None));
        a.merge(&b);
        assert_eq!(a.event_count(), 11);
        assert!((a.value(Feature::ErrorRate) - 3.0 / 11.0).abs() < 1e-12);
        assert!((a.value(Feature::AvgLatency) - 55.0).abs() < 1e-12);
    }

    #[test]
    fn empty_window_is_nan_free() {
        let a = FeatureAccumulator::default();
        for f in Feature::ALL {
            assert_eq!(a.value(f), 0.0);
        }
        assert!(!a.has_latency());
    }

    #[test]
    fn p99_of_large_window_within_one_percent() {
        let mut a = FeatureAccumulator::default();
        for i in 1..=1000 {
            a.add(&obs(false, Some(i as f64)));
        }
        assert!((a.value(Feature::P99Latency) - 990.0).abs() <= 9.9);
        assert!((a.value(Feature::P95Latency) - 950.0).abs() <= 9.5);
    }
}
