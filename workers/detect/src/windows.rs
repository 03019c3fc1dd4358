//! Event-time windows per partition key, closed by an *external* watermark.
//!
//! The library's `Windower` derives its watermark from the newest event it has seen, which is
//! wrong when one consumer reads several Kafka partitions: a partition read ahead of the others
//! would close windows the others still feed. Here the caller passes the bound (the minimum
//! over partitions, see [`crate::watermark`]) and windows close up to it. Window `k` covers
//! `[k·hop, k·hop + size)`; an event goes to every containing window that is still open (a
//! window is closed once its end is at or before the highest bound seen); closed windows are
//! emitted per key in start order with gaps filled by empty windows, ordered by (start, key).

use std::collections::BTreeMap;

use helios_detection::features::{FeatureAccumulator, Observation};
use helios_detection::window::{ClosedWindow, WindowConfig};

#[derive(Debug, Clone, Default)]
struct KeyWindows {
    next_start: Option<i64>,
    open: BTreeMap<i64, FeatureAccumulator>,
}

/// Open windows of every key.
#[derive(Debug, Clone)]
pub struct KeyedWindows {
    cfg: WindowConfig,
    closed_bound: i64,
    keys: BTreeMap<String, KeyWindows>,
}

impl KeyedWindows {
    /// No windows yet (the configuration is validated by the caller).
    pub fn new(cfg: WindowConfig) -> Self {
        Self {
            cfg,
            closed_bound: i64::MIN,
            keys: BTreeMap::new(),
        }
    }

    /// The highest bound windows were closed through.
    pub fn closed_bound(&self) -> i64 {
        self.closed_bound
    }

    /// Adds an event; false when every window containing it is already closed (late).
    pub fn ingest(&mut self, key: &str, ts_ms: i64, obs: &Observation) -> bool {
        let (size, hop) = (self.cfg.size_ms, self.cfg.hop_ms);
        let last = ts_ms.div_euclid(hop) * hop;
        let first = (ts_ms - size).div_euclid(hop) * hop + hop;
        let mut start = first;
        let mut accepted = None;
        while start <= last {
            if start.saturating_add(size) > self.closed_bound {
                let state = self.keys.entry(key.to_string()).or_default();
                state.open.entry(start).or_default().add(obs);
                accepted.get_or_insert(start);
            }
            start += hop;
        }
        match (accepted, self.keys.get_mut(key)) {
            (Some(s), Some(state)) => {
                // Never below an emitted window: every accepted window is still open.
                state.next_start = Some(state.next_start.map_or(s, |n| n.min(s)));
                true
            }
            _ => false,
        }
    }

    /// Closes and returns every window ending at or before `bound`.
    pub fn close(&mut self, bound: i64) -> Vec<ClosedWindow<FeatureAccumulator>> {
        if bound <= self.closed_bound {
            return Vec::new();
        }
        self.closed_bound = bound;
        let (size, hop) = (self.cfg.size_ms, self.cfg.hop_ms);
        let mut out = Vec::new();
        for (key, st) in &mut self.keys {
            let Some(mut next) = st.next_start else {
                continue;
            };
            while next + size <= bound {
                out.push(ClosedWindow {
                    key: key.clone(),
                    start_ms: next,
                    end_ms: next + size,
                    acc: st.open.remove(&next).unwrap_or_default(),
                });
                next += hop;
            }
            st.next_start = Some(next);
        }
        out.sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then_with(|| a.key.cmp(&b.key)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs() -> Observation {
        Observation {
            error: false,
            latency_ms: Some(1.0),
            metrics: vec![],
        }
    }

    fn tumbling() -> KeyedWindows {
        KeyedWindows::new(WindowConfig {
            size_ms: 10,
            hop_ms: 10,
            allowed_lateness_ms: 0,
        })
    }

    fn summary(w: &[ClosedWindow<FeatureAccumulator>]) -> Vec<(String, i64, u64)> {
        w.iter()
            .map(|c| (c.key.clone(), c.start_ms, c.acc.event_count()))
            .collect()
    }

    #[test]
    fn windows_close_only_up_to_the_external_bound() {
        let mut w = tumbling();
        // Partition 1 reads far ahead; partition 2 is behind: nothing is dropped.
        assert!(w.ingest("fast", 95, &obs()));
        assert!(w.ingest("slow", 3, &obs()));
        assert!(w.ingest("slow", 14, &obs()));
        assert_eq!(
            summary(&w.close(20)),
            vec![("slow".into(), 0, 1), ("slow".into(), 10, 1)]
        );
        assert!(!w.ingest("slow", 19, &obs()), "its window is closed");
        assert!(w.ingest("slow", 20, &obs()));
        assert_eq!(
            summary(&w.close(100)),
            vec![
                ("slow".into(), 20, 1),
                ("slow".into(), 30, 0),
                ("slow".into(), 40, 0),
                ("slow".into(), 50, 0),
                ("slow".into(), 60, 0),
                ("slow".into(), 70, 0),
                ("slow".into(), 80, 0),
                ("fast".into(), 90, 1),
                ("slow".into(), 90, 0),
            ]
        );
        assert!(w.close(100).is_empty());
        assert!(w.close(50).is_empty(), "the bound never moves back");
    }

    #[test]
    fn hopping_events_go_to_open_windows_only() {
        let mut w = KeyedWindows::new(WindowConfig {
            size_ms: 10,
            hop_ms: 5,
            allowed_lateness_ms: 0,
        });
        assert!(w.ingest("a", 7, &obs())); // windows 0 and 5
        assert_eq!(summary(&w.close(10)), vec![("a".into(), 0, 1)]);
        assert!(w.ingest("a", 8, &obs())); // window 0 closed, window 5 open
        assert_eq!(summary(&w.close(15)), vec![("a".into(), 5, 2)]);
        assert!(!w.ingest("a", 9, &obs()));
    }
}
