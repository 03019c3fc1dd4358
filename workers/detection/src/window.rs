//! Event-time tumbling/hopping windows per partition key with a global watermark.
//!
//! Window `k` covers `[k·hop, k·hop + size)`; with `hop == size` the windows tumble. The
//! watermark is `max event time seen − allowed_lateness`. A window closes once the watermark
//! reaches its end. An event older than the watermark is dropped and counted (none of its
//! windows can still be open); anything newer is accepted, including out-of-order, duplicate
//! and backwards timestamps. Closed windows are emitted per key in start order, with gaps
//! filled by empty windows (`event_count = 0`); across keys the order is (start, key), so
//! emission is deterministic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::DetectionError;

/// Window geometry and lateness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// Window length in ms.
    pub size_ms: i64,
    /// Distance between window starts in ms (`== size_ms` for tumbling windows).
    pub hop_ms: i64,
    /// How far behind the newest event an event may be and still be accepted.
    pub allowed_lateness_ms: i64,
}

impl WindowConfig {
    /// Validates the configuration (`size > 0`, `0 < hop <= size`, `lateness >= 0`).
    pub fn validate(&self) -> Result<(), DetectionError> {
        if self.size_ms <= 0 || self.hop_ms <= 0 || self.hop_ms > self.size_ms {
            return Err(DetectionError::InvalidConfig(format!(
                "window needs size > 0 and 0 < hop <= size (size={}, hop={})",
                self.size_ms, self.hop_ms
            )));
        }
        if self.allowed_lateness_ms < 0 {
            return Err(DetectionError::InvalidConfig(
                "allowed_lateness_ms must be >= 0".into(),
            ));
        }
        Ok(())
    }

    /// Start of the earliest window that contains `t`.
    fn first_start(&self, t: i64) -> i64 {
        (t - self.size_ms).div_euclid(self.hop_ms) * self.hop_ms + self.hop_ms
    }
}

/// Per-window state that absorbs inputs (implemented by `FeatureAccumulator`).
pub trait Accumulate: Default + Clone {
    /// What one event contributes.
    type Input;
    /// Adds one input.
    fn add(&mut self, input: &Self::Input);
}

/// A window that can no longer change.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedWindow<A> {
    /// Partition key.
    pub key: String,
    /// Inclusive start (ms).
    pub start_ms: i64,
    /// Exclusive end (ms).
    pub end_ms: i64,
    /// Accumulated state (default/empty for gap windows).
    pub acc: A,
}

/// Whether an event was taken into account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    /// The event was added to its windows.
    Accepted,
    /// The event was older than the watermark and was dropped.
    DroppedLate,
}

#[derive(Debug, Clone)]
struct KeyState<A> {
    next_start: i64,
    open: BTreeMap<i64, A>,
}

/// Assigns events to windows and emits closed windows in order.
#[derive(Debug, Clone)]
pub struct Windower<A> {
    cfg: WindowConfig,
    max_ts: Option<i64>,
    keys: BTreeMap<String, KeyState<A>>,
    dropped: u64,
}

impl<A: Accumulate> Windower<A> {
    /// Creates a windower after validating the configuration.
    pub fn new(cfg: WindowConfig) -> Result<Self, DetectionError> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            max_ts: None,
            keys: BTreeMap::new(),
            dropped: 0,
        })
    }

    /// Current watermark (`None` before the first event).
    pub fn watermark(&self) -> Option<i64> {
        self.max_ts
            .map(|m| m.saturating_sub(self.cfg.allowed_lateness_ms))
    }

    /// Number of events dropped for being later than the allowed lateness.
    pub fn dropped_late(&self) -> u64 {
        self.dropped
    }

    /// Adds one event for `key` at event time `ts_ms`.
    pub fn ingest(&mut self, key: &str, ts_ms: i64, input: &A::Input) -> Ingest {
        if let Some(w) = self.watermark()
            && ts_ms < w
        {
            self.dropped += 1;
            return Ingest::DroppedLate;
        }
        self.max_ts = Some(self.max_ts.map_or(ts_ms, |m| m.max(ts_ms)));
        let first = self.cfg.first_start(ts_ms);
        let state = self
            .keys
            .entry(key.to_string())
            .or_insert_with(|| KeyState {
                next_start: first,
                open: BTreeMap::new(),
            });
        // Only possible before anything was emitted for this key (see module docs).
        state.next_start = state.next_start.min(first);
        let mut start = first;
        while start <= ts_ms {
            state.open.entry(start).or_default().add(input);
            start += self.cfg.hop_ms;
        }
        Ingest::Accepted
    }

    /// Emits every window whose end is at or before the watermark, ordered by (start, key).
    pub fn drain_closed(&mut self) -> Vec<ClosedWindow<A>> {
        match self.watermark() {
            Some(w) => self.emit_until(w),
            None => Vec::new(),
        }
    }

    /// Closes and emits every window that holds an event (end of stream).
    pub fn flush(&mut self) -> Vec<ClosedWindow<A>> {
        match self.max_ts {
            Some(m) => {
                self.emit_until(m.div_euclid(self.cfg.hop_ms) * self.cfg.hop_ms + self.cfg.size_ms)
            }
            None => Vec::new(),
        }
    }

    fn emit_until(&mut self, bound: i64) -> Vec<ClosedWindow<A>> {
        let (size, hop) = (self.cfg.size_ms, self.cfg.hop_ms);
        let mut out = Vec::new();
        for (key, st) in &mut self.keys {
            while st.next_start + size <= bound {
                let acc = st.open.remove(&st.next_start).unwrap_or_default();
                out.push(ClosedWindow {
                    key: key.clone(),
                    start_ms: st.next_start,
                    end_ms: st.next_start + size,
                    acc,
                });
                st.next_start += hop;
            }
        }
        out.sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then_with(|| a.key.cmp(&b.key)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Count(u64);
    impl Accumulate for Count {
        type Input = ();
        fn add(&mut self, _: &()) {
            self.0 += 1;
        }
    }

    fn tumbling(lateness: i64) -> Windower<Count> {
        Windower::new(WindowConfig {
            size_ms: 10,
            hop_ms: 10,
            allowed_lateness_ms: lateness,
        })
        .unwrap()
    }

    fn summary(w: &[ClosedWindow<Count>]) -> Vec<(String, i64, u64)> {
        w.iter()
            .map(|c| (c.key.clone(), c.start_ms, c.acc.0))
            .collect()
    }

    #[test]
    fn invalid_config_rejected() {
        assert!(
            Windower::<Count>::new(WindowConfig {
                size_ms: 10,
                hop_ms: 20,
                allowed_lateness_ms: 0
            })
            .is_err()
        );
        assert!(
            Windower::<Count>::new(WindowConfig {
                size_ms: 0,
                hop_ms: 0,
                allowed_lateness_ms: 0
            })
            .is_err()
        );
    }

    #[test]
    fn gaps_emit_empty_windows() {
        let mut w = tumbling(0);
        w.ingest("a", 1, &());
        w.ingest("a", 35, &());
        let out = w.drain_closed();
        assert_eq!(
            summary(&out),
            vec![("a".into(), 0, 1), ("a".into(), 10, 0), ("a".into(), 20, 0)]
        );
        assert_eq!(summary(&w.flush()), vec![("a".into(), 30, 1)]);
    }

    #[test]
    fn late_dropped_out_of_order_within_lateness_accepted() {
        let mut w = tumbling(5);
        w.ingest("a", 12, &());
        assert_eq!(w.ingest("a", 8, &()), Ingest::Accepted); // watermark 7
        w.ingest("a", 25, &()); // watermark 20 -> windows [0,10) and [10,20) close
        assert_eq!(w.ingest("a", 19, &()), Ingest::DroppedLate);
        assert_eq!(w.dropped_late(), 1);
        assert_eq!(
            summary(&w.drain_closed()),
            vec![("a".into(), 0, 1), ("a".into(), 10, 1)]
        );
    }

    #[test]
    fn duplicates_and_backwards_timestamps() {
        let mut w = tumbling(20);
        for t in [15, 15, 15, 3, 14, 2] {
            assert_eq!(w.ingest("a", t, &()), Ingest::Accepted);
        }
        assert_eq!(
            summary(&w.flush()),
            vec![("a".into(), 0, 2), ("a".into(), 10, 4)]
        );
        assert!(w.flush().is_empty());
    }

    #[test]
    fn hopping_windows_and_key_order_deterministic() {
        let mut w = Windower::<Count>::new(WindowConfig {
            size_ms: 10,
            hop_ms: 5,
            allowed_lateness_ms: 0,
        })
        .unwrap();
        w.ingest("b", 7, &());
        w.ingest("a", 7, &());
        w.ingest("a", 30, &());
        let out = summary(&w.drain_closed());
        assert_eq!(
            out,
            vec![
                ("a".into(), 0, 1),
                ("b".into(), 0, 1),
                ("a".into(), 5, 1),
                ("b".into(), 5, 1),
                ("a".into(), 10, 0),
                ("b".into(), 10, 0),
                ("a".into(), 15, 0),
                ("b".into(), 15, 0),
                ("a".into(), 20, 0),
                ("b".into(), 20, 0),
            ]
        );
    }

    #[test]
    fn negative_timestamps() {
        let mut w = tumbling(0);
        w.ingest("a", -1, &());
        assert_eq!(summary(&w.flush()), vec![("a".into(), -10, 1)]);
    }
}
