//! Per-key score metrics with bounded cardinality: every key's recent scores are kept here, and
//! only the `top` keys with the highest recent score are exported with a `key` label (score,
//! threshold, model age, training windows), so a Grafana panel can plot score against threshold
//! for the keys that matter while a detector over 100,000 keys exports a few dozen series.

use crate::metrics::Metrics;
use std::collections::{HashMap, HashSet, VecDeque};

/// Scored windows a key's rank looks back over (its highest score among them).
pub const RECENT_WINDOWS: usize = 12;

/// Default number of keys exported with a `key` label.
pub const DEFAULT_TOP_KEYS: usize = 10;

/// What the board knows of one key.
#[derive(Debug, Clone, Default, PartialEq)]
struct KeyEntry {
    /// The last [`RECENT_WINDOWS`] scores, oldest first.
    recent: VecDeque<f64>,
    /// The threshold in force after the last scored window.
    threshold: Option<f64>,
    /// Model version of the last scored window.
    model_version: u64,
    /// End (ms) of the first window the current model version scored.
    model_since_ms: i64,
    /// End (ms) of the last scored window.
    last_end_ms: i64,
    /// Windows in the training history.
    training_windows: usize,
}

impl KeyEntry {
    /// The key's rank: its highest recent score.
    fn rank(&self) -> f64 {
        self.recent
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// One scored window as the board takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation<'a> {
    /// Partition key.
    pub key: &'a str,
    /// Window end (ms).
    pub end_ms: i64,
    /// The window's score.
    pub score: f64,
    /// Model version that scored it.
    pub model_version: u64,
    /// Threshold in force for the key.
    pub threshold: Option<f64>,
    /// Windows in the key's training history.
    pub training_windows: usize,
}

/// Recent scores per key and which keys are exported.
#[derive(Debug, Clone, Default)]
pub struct ScoreBoard {
    top: usize,
    keys: HashMap<String, KeyEntry>,
    exported: HashSet<String>,
    warming_up: usize,
}

impl ScoreBoard {
    /// A board exporting at most `top` keys (0: none, only the aggregates).
    pub fn new(top: usize) -> Self {
        Self {
            top,
            ..Self::default()
        }
    }

    /// Takes one scored window.
    pub fn observe(&mut self, o: Observation<'_>) {
        let e = self.keys.entry(o.key.to_string()).or_default();
        if e.recent.len() == RECENT_WINDOWS {
            e.recent.pop_front();
        }
        e.recent.push_back(o.score);
        if o.model_version != e.model_version {
            e.model_version = o.model_version;
            e.model_since_ms = o.end_ms;
        }
        e.last_end_ms = e.last_end_ms.max(o.end_ms);
        e.threshold = o.threshold;
        e.training_windows = o.training_windows;
    }

    /// Sets how many keys are still warming up (no score yet).
    pub fn set_warming_up(&mut self, keys: usize) {
        self.warming_up = keys;
    }

    /// The keys to export: the `top` highest ranks (ties by name, so the set is stable). A
    /// partial selection, then a sort of the `top` only: publishing runs on every close.
    fn leaders(&self) -> Vec<&str> {
        if self.top == 0 {
            return Vec::new();
        }
        let mut ranked: Vec<(&str, f64)> = self
            .keys
            .iter()
            .map(|(k, e)| (k.as_str(), e.rank()))
            .collect();
        let order =
            |a: &(&str, f64), b: &(&str, f64)| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if ranked.len() > self.top {
            ranked.select_nth_unstable_by(self.top - 1, order);
            ranked.truncate(self.top);
        }
        ranked.sort_by(order);
        ranked.into_iter().map(|(k, _)| k).collect()
    }

    /// Writes the gauges: the leaders' series set, series of keys that left the top removed,
    /// and the aggregates over every key.
    pub fn publish(&mut self, m: &Metrics) {
        let leaders: HashSet<String> = self.leaders().into_iter().map(String::from).collect();
        for gone in self.exported.difference(&leaders) {
            let _ = m.score.remove_label_values(&[gone]);
            let _ = m.threshold.remove_label_values(&[gone]);
            let _ = m.model_age.remove_label_values(&[gone]);
            let _ = m.training_windows.remove_label_values(&[gone]);
        }
        for key in &leaders {
            let Some(e) = self.keys.get(key) else {
                continue;
            };
            if let Some(s) = e.recent.back() {
                m.score.with_label_values(&[key]).set(*s);
            }
            match e.threshold {
                Some(t) => m.threshold.with_label_values(&[key]).set(t),
                None => {
                    let _ = m.threshold.remove_label_values(&[key]);
                }
            }
            let age_ms = (e.last_end_ms - e.model_since_ms).max(0);
            m.model_age
                .with_label_values(&[key])
                .set(age_ms as f64 / 1000.0);
            m.training_windows
                .with_label_values(&[key])
                .set(i64::try_from(e.training_windows).unwrap_or(i64::MAX));
        }
        self.exported = leaders;
        let max = self
            .keys
            .values()
            .filter_map(|e| e.recent.back().copied())
            .fold(0.0, f64::max);
        m.score_max.set(max);
        m.keys
            .with_label_values(&["scored"])
            .set(i64::try_from(self.keys.len()).unwrap_or(i64::MAX));
        m.keys
            .with_label_values(&["warming_up"])
            .set(i64::try_from(self.warming_up).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(key: &str, end_ms: i64, score: f64, model_version: u64) -> Observation<'_> {
        Observation {
            key,
            end_ms,
            score,
            model_version,
            threshold: Some(0.6),
            training_windows: 100,
        }
    }

    /// The `helios_detect_score` series of a rendering: key → value.
    fn scores(text: &str) -> Vec<(String, f64)> {
        text.lines()
            .filter_map(|l| l.strip_prefix("helios_detect_score{key=\""))
            .filter_map(|l| {
                let (key, rest) = l.split_once("\"} ")?;
                Some((key.to_string(), rest.parse().ok()?))
            })
            .collect()
    }

    #[test]
    fn only_the_keys_with_the_highest_recent_scores_are_exported() {
        let m = Metrics::new().unwrap_or_else(|e| panic!("{e}"));
        let mut b = ScoreBoard::new(2);
        for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            b.observe(obs(key, 300_000, 0.1 * (i as f64 + 1.0), 1));
        }
        b.publish(&m);
        let mut got = scores(&m.render());
        got.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(got, [("c".into(), 0.30000000000000004), ("d".into(), 0.4)]);
        let text = m.render();
        assert!(text.contains("helios_detect_score_max 0.4"), "{text}");
        assert!(
            text.contains("helios_detect_threshold{key=\"d\"} 0.6"),
            "{text}"
        );
        assert!(
            text.contains("helios_detect_keys{state=\"scored\"} 4"),
            "{text}"
        );

        // "a" spikes: it enters, "c" (the lower of the two) leaves and its series go with it.
        b.observe(obs("a", 600_000, 0.9, 1));
        b.publish(&m);
        let text = m.render();
        let mut got = scores(&text);
        got.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(got, [("a".into(), 0.9), ("d".into(), 0.4)]);
        assert!(!text.contains("key=\"c\""), "{text}");
    }

    #[test]
    fn a_key_ranks_by_its_highest_score_of_the_recent_windows() {
        let mut b = ScoreBoard::new(1);
        b.observe(obs("spiky", 300_000, 0.95, 1));
        for i in 0..(RECENT_WINDOWS as i64 - 1) {
            b.observe(obs("spiky", 600_000 + i * 300_000, 0.1, 1));
            b.observe(obs("steady", 600_000 + i * 300_000, 0.5, 1));
        }
        assert_eq!(b.leaders(), ["spiky"], "the spike is still recent");
        b.observe(obs("spiky", 10_000_000, 0.1, 1));
        assert_eq!(b.leaders(), ["steady"], "the spike left the recent windows");
    }

    #[test]
    fn model_age_counts_from_the_first_window_of_the_current_model() {
        let m = Metrics::new().unwrap_or_else(|e| panic!("{e}"));
        let mut b = ScoreBoard::new(1);
        b.observe(obs("k", 300_000, 0.2, 1));
        b.observe(obs("k", 3_900_000, 0.2, 1));
        b.publish(&m);
        assert!(
            m.render()
                .contains("helios_detect_model_age_seconds{key=\"k\"} 3600"),
            "{}",
            m.render()
        );
        b.observe(obs("k", 4_200_000, 0.2, 2));
        b.publish(&m);
        let text = m.render();
        assert!(
            text.contains("helios_detect_model_age_seconds{key=\"k\"} 0"),
            "a retrained model is new: {text}"
        );
        assert!(
            text.contains("helios_detect_model_training_windows{key=\"k\"} 100"),
            "{text}"
        );
    }
}
