//! The watermark of a consumer that reads several Kafka partitions: the minimum over its
//! partitions of the newest event time seen, minus the allowed lateness. A partition that has
//! delivered nothing for `idle_ms` of wall-clock time stops holding the watermark back (so one
//! silent service does not stall the others). When every partition is idle, all windows that
//! hold an event are closed ("idle close"), so the last window of a burst is written too.
//! Times are milliseconds: event time for events, a monotonic clock for `now`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
struct Clock {
    max_ts: Option<i64>,
    last_seen: i64,
}

/// What may be closed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Nothing yet (an active partition has not delivered an event).
    Hold,
    /// Close windows ending at or before this event time.
    Watermark(i64),
    /// Every partition is idle: close every window holding an event.
    Idle,
}

/// Per-partition event-time progress.
#[derive(Debug, Clone, Default)]
pub struct PartitionClocks {
    parts: BTreeMap<i32, Clock>,
}

impl PartitionClocks {
    /// No partitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the assignment; new partitions start active (they hold the watermark until
    /// they deliver or turn idle).
    pub fn assign(&mut self, partitions: &[i32], now: i64) {
        self.parts.retain(|p, _| partitions.contains(p));
        for &p in partitions {
            self.parts.entry(p).or_insert(Clock {
                max_ts: None,
                last_seen: now,
            });
        }
    }

    /// A message arrived on `partition` (with its event time when it carried a usable event).
    pub fn observe(&mut self, partition: i32, ts_ms: Option<i64>, now: i64) {
        let c = self.parts.entry(partition).or_insert(Clock {
            max_ts: None,
            last_seen: now,
        });
        c.last_seen = now;
        if let Some(ts) = ts_ms {
            c.max_ts = Some(c.max_ts.map_or(ts, |m| m.max(ts)));
        }
    }

    /// The close bound at `now`.
    pub fn bound(&self, now: i64, idle_ms: i64, lateness_ms: i64) -> Bound {
        let mut min: Option<i64> = None;
        let mut active = false;
        for c in self.parts.values() {
            if now - c.last_seen >= idle_ms {
                continue;
            }
            active = true;
            match c.max_ts {
                None => return Bound::Hold,
                Some(ts) => min = Some(min.map_or(ts, |m| m.min(ts))),
            }
        }
        match min {
            Some(m) => Bound::Watermark(m.saturating_sub(lateness_ms)),
            None if active => Bound::Hold,
            None => Bound::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_over_active_partitions() {
        let mut c = PartitionClocks::new();
        c.assign(&[0, 1], 0);
        c.observe(0, Some(5_000), 10);
        assert_eq!(
            c.bound(10, 1000, 0),
            Bound::Hold,
            "partition 1 has not delivered"
        );
        c.observe(1, Some(2_000), 20);
        assert_eq!(c.bound(20, 1000, 500), Bound::Watermark(1_500));
        // Partition 1 falls silent: after the idle time it no longer holds the watermark.
        c.observe(0, Some(9_000), 900);
        assert_eq!(c.bound(1_019, 1000, 0), Bound::Watermark(2_000));
        assert_eq!(c.bound(1_020, 1000, 0), Bound::Watermark(9_000));
        // Everything silent: idle close.
        assert_eq!(c.bound(1_900, 1000, 0), Bound::Idle);
        // A message without a usable event keeps the partition active.
        c.observe(1, None, 2_000);
        assert_eq!(c.bound(2_000, 1000, 0), Bound::Watermark(2_000));
    }

    #[test]
    fn assignment_changes_drop_and_add_partitions() {
        let mut c = PartitionClocks::new();
        c.assign(&[0], 0);
        c.observe(0, Some(100), 0);
        c.assign(&[1], 5);
        assert_eq!(c.bound(5, 1000, 0), Bound::Hold);
        assert_eq!(c.bound(1_005, 1000, 0), Bound::Idle);
        let empty = PartitionClocks::new();
        assert_eq!(empty.bound(0, 1000, 0), Bound::Idle);
    }
}
