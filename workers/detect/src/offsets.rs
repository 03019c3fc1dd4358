//! Which Kafka offsets may be committed: a message is *done* once every window containing its
//! event is closed and written, or at once when it contributes to no window (filtered out,
//! unparsable, dropped as late). The committable offset of a partition is its lowest
//! not-done offset (or one past the highest seen), so a restart replays every message whose
//! windows are not yet durable and nothing else is lost.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
struct PartitionState {
    /// Not-done offsets → the close bound (ms) their last window needs.
    pending: BTreeMap<i64, i64>,
    /// One past the highest offset seen.
    next: Option<i64>,
    /// The offset last handed out for commit.
    committed: Option<i64>,
}

/// Per-partition bookkeeping of done and pending messages.
#[derive(Debug, Clone, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<i32, PartitionState>,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a consumed message; `needs` is the window-end bound (ms) that must be closed and
    /// written before it is done, `None` when it is done already.
    pub fn record(&mut self, partition: i32, offset: i64, needs: Option<i64>) {
        let p = self.partitions.entry(partition).or_default();
        p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
        if let Some(bound) = needs {
            p.pending.insert(offset, bound);
        }
    }

    /// Marks every message whose windows end at or before `bound` as done (results written).
    pub fn closed_through(&mut self, bound: i64) {
        for p in self.partitions.values_mut() {
            p.pending.retain(|_, needs| *needs > bound);
        }
    }

    /// Marks every pending message done (all open windows were flushed and written).
    pub fn all_done(&mut self) {
        for p in self.partitions.values_mut() {
            p.pending.clear();
        }
    }

    /// Number of messages still waiting for their windows.
    pub fn pending(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }

    /// The offset to commit per partition (Kafka semantics: the next message to read).
    pub fn committable(&self) -> BTreeMap<i32, i64> {
        self.partitions
            .iter()
            .filter_map(|(&part, p)| {
                let next = p.next?;
                Some((part, p.pending.keys().next().copied().unwrap_or(next)))
            })
            .collect()
    }

    /// Committable offsets that moved since the last call (and remembers them as committed).
    pub fn take_commit(&mut self) -> BTreeMap<i32, i64> {
        let ready = self.committable();
        let mut out = BTreeMap::new();
        for (part, off) in ready {
            if let Some(p) = self.partitions.get_mut(&part)
                && p.committed != Some(off)
            {
                p.committed = Some(off);
                out.insert(part, off);
            }
        }
        out
    }
}

/// The close bound an event at `ts_ms` needs: the end of the last window that contains it.
pub fn needed_bound(ts_ms: i64, size_ms: i64, hop_ms: i64) -> i64 {
    ts_ms.div_euclid(hop_ms) * hop_ms + size_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_is_end_of_last_containing_window() {
        assert_eq!(needed_bound(0, 1000, 1000), 1000);
        assert_eq!(needed_bound(999, 1000, 1000), 1000);
        assert_eq!(needed_bound(1000, 1000, 1000), 2000);
        // Hopping: 1500 is in [1000,2000) and [1500,2500): the latter ends last.
        assert_eq!(needed_bound(1500, 1000, 500), 2500);
        assert_eq!(needed_bound(-1, 1000, 1000), 0);
    }

    #[test]
    fn commits_stop_at_the_first_pending_message() {
        let mut t = OffsetTracker::new();
        t.record(0, 10, Some(1000));
        t.record(0, 11, None); // filtered: done at once
        t.record(0, 12, Some(2000));
        t.record(1, 5, Some(1000));
        assert_eq!(t.committable(), BTreeMap::from([(0, 10), (1, 5)]));
        t.closed_through(1000);
        assert_eq!(t.committable(), BTreeMap::from([(0, 12), (1, 6)]));
        assert_eq!(t.pending(), 1);
        t.closed_through(1999);
        assert_eq!(t.committable(), BTreeMap::from([(0, 12), (1, 6)]));
        t.closed_through(2000);
        assert_eq!(t.committable(), BTreeMap::from([(0, 13), (1, 6)]));
    }

    #[test]
    fn out_of_order_needs_hold_back_later_offsets() {
        let mut t = OffsetTracker::new();
        // A late-ish event (needs an earlier window) after a newer one.
        t.record(0, 0, Some(3000));
        t.record(0, 1, Some(2000));
        t.closed_through(2000);
        // Offset 1 is done but 0 is not: nothing beyond 0 may be committed.
        assert_eq!(t.committable(), BTreeMap::from([(0, 0)]));
        t.all_done();
        assert_eq!(t.committable(), BTreeMap::from([(0, 2)]));
    }

    #[test]
    fn take_commit_reports_only_changes() {
        let mut t = OffsetTracker::new();
        t.record(3, 7, None);
        assert_eq!(t.take_commit(), BTreeMap::from([(3, 8)]));
        assert!(t.take_commit().is_empty());
        t.record(3, 8, Some(10));
        assert!(t.take_commit().is_empty());
        t.closed_through(10);
        assert_eq!(t.take_commit(), BTreeMap::from([(3, 9)]));
    }
}
