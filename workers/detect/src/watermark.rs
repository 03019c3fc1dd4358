//! The watermark of a consumer that reads several Kafka partitions, and when a partition stops
//! holding it back.
//!
//! The watermark is the minimum, over the partitions that *hold* it, of what each partition
//! may still deliver, minus the allowed lateness. What a partition holds depends on how far it
//! has been read, which the worker learns from the broker (low/high watermarks and the
//! committed offset, refreshed about once a second, see [`PartitionClocks::observe_offsets`])
//! and from librdkafka's partition-EOF events ([`PartitionClocks::observe_eof`]):
//!
//! * **Empty**: read to its end without delivering an event in this assignment (`low == high`,
//!   or the committed offset is the high watermark). It never holds the watermark: it has
//!   nothing to deliver.
//! * **Caught up**: read to its end (position = high watermark, or an EOF event, and nothing
//!   newer delivered since). Whatever it delivers next is produced from now on, so it holds
//!   the watermark at most at its newest event time or at *wall-clock now − quiet wait*,
//!   whichever is later. A replay of old events is therefore never held back by a partition
//!   that is already read (or one that has no events at all), while a live partition keeps
//!   the watermark at its newest event for up to the quiet wait.
//! * **Behind** (unread messages are known to be there) and **Active** (anything else: the
//!   offsets are unknown, stale, or older than the offsets TTL): it holds the watermark at its
//!   newest event time, and before its first event nothing closes ([`Bound::Hold`]).
//!
//! **Quiet wait** (`--idle-close`, `HELIOS_DETECT_IDLE_CLOSE`; default window size + allowed
//! lateness): a partition that has delivered nothing for this long (monotonic wall-clock time)
//! stops holding the watermark whatever its state, so one silent service never stalls the
//! others for longer. When no partition holds the watermark any more, every window that holds
//! an event is closed ("idle close"), so the last window of a burst is written too.
//!
//! The watermark returned never goes backwards. Times are milliseconds: event time for events
//! and [`Now::wall_ms`], a monotonic clock for [`Now::mono_ms`].

use std::collections::BTreeMap;

/// The two clocks the rules read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds (any origin): measures silence and offset ages.
    pub mono_ms: i64,
    /// Wall-clock milliseconds since the epoch, comparable with event times.
    pub wall_ms: i64,
}

/// Tunables of the watermark rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The quiet wait: silence after which a partition no longer holds the watermark.
    pub quiet_ms: i64,
    /// Allowed lateness subtracted from the watermark.
    pub lateness_ms: i64,
    /// Broker offsets older than this are ignored (the partition counts as active).
    pub offsets_ttl_ms: i64,
}

/// Offsets of one partition as read from the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndOffsets {
    /// Oldest offset still stored.
    pub low: i64,
    /// One past the newest offset (the high watermark).
    pub high: i64,
    /// Where this consumer resumes while it has delivered nothing: its position, else the
    /// committed offset (`None` when neither is known).
    pub resume: Option<i64>,
}

/// How far a partition has been read (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// At its end without having delivered an event: never holds the watermark.
    Empty,
    /// At its end after delivering events: holds at most until the quiet wait.
    CaughtUp,
    /// Unread messages are known to be there: holds the watermark at its newest event.
    Behind,
    /// Not known to be at its end: holds the watermark at its newest event.
    Active,
}

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    offsets: EndOffsets,
    taken_at: i64,
}

#[derive(Debug, Clone, Copy)]
struct Eof {
    at: i64,
    /// The high watermark of the first broker snapshot taken after the EOF: a later one that is
    /// higher means new messages wait to be delivered. (The EOF itself carries no offset, and
    /// with transactional producers the high watermark counts commit markers the consumer
    /// never delivers, so the position alone cannot tell.)
    baseline: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    max_ts: Option<i64>,
    last_seen: i64,
    /// One past the newest offset delivered in this assignment.
    next_offset: Option<i64>,
    snapshot: Option<Snapshot>,
    /// An EOF event arrived and no message since.
    eof: Option<Eof>,
}

impl Clock {
    fn new(now: i64) -> Self {
        Self {
            max_ts: None,
            last_seen: now,
            next_offset: None,
            snapshot: None,
            eof: None,
        }
    }

    fn progress(&self, now: i64, rules: &Rules) -> Progress {
        let at_end = if self.max_ts.is_some() {
            Progress::CaughtUp
        } else {
            Progress::Empty
        };
        let fresh = self
            .snapshot
            .filter(|s| now - s.taken_at <= rules.offsets_ttl_ms);
        if let Some(eof) = self.eof {
            return match (fresh, eof.baseline) {
                (Some(s), Some(base)) if s.taken_at >= eof.at && s.offsets.high > base => {
                    Progress::Behind
                }
                _ => at_end,
            };
        }
        let Some(Snapshot { offsets: o, .. }) = fresh else {
            return Progress::Active;
        };
        match self.next_offset.or(o.resume) {
            // Delivered past the snapshot's high watermark: the snapshot is stale.
            Some(pos) if pos > o.high => Progress::Active,
            _ if o.low >= o.high => at_end,
            Some(pos) if pos == o.high => at_end,
            Some(_) => Progress::Behind,
            None => Progress::Active,
        }
    }
}

/// What may be closed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Nothing yet (an active partition has not delivered an event).
    Hold,
    /// Close windows ending at or before this event time.
    Watermark(i64),
    /// No partition holds the watermark: close every window holding an event.
    Idle,
}

/// Per-partition event-time and offset progress.
#[derive(Debug, Clone)]
pub struct PartitionClocks {
    rules: Rules,
    parts: BTreeMap<i32, Clock>,
    emitted: Option<i64>,
}

impl PartitionClocks {
    /// No partitions yet.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            parts: BTreeMap::new(),
            emitted: None,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Replaces the assignment; new partitions start active (they hold the watermark until
    /// they deliver, are found at their end, or turn quiet).
    pub fn assign(&mut self, partitions: &[i32], now: i64) {
        self.parts.retain(|p, _| partitions.contains(p));
        for &p in partitions {
            self.parts.entry(p).or_insert_with(|| Clock::new(now));
        }
    }

    /// A message at `offset` arrived on `partition` (with its event time when it carried a
    /// usable event).
    pub fn observe(&mut self, partition: i32, offset: i64, ts_ms: Option<i64>, now: i64) {
        let c = self
            .parts
            .entry(partition)
            .or_insert_with(|| Clock::new(now));
        c.last_seen = now;
        c.next_offset = Some(c.next_offset.map_or(offset + 1, |n| n.max(offset + 1)));
        c.eof = None;
        if let Some(ts) = ts_ms {
            c.max_ts = Some(c.max_ts.map_or(ts, |m| m.max(ts)));
        }
    }

    /// librdkafka reported the end of `partition` (`enable.partition.eof`): every message
    /// fetched so far has been delivered. Ignored for partitions not assigned.
    pub fn observe_eof(&mut self, partition: i32, now: i64) {
        if let Some(c) = self.parts.get_mut(&partition) {
            c.eof = Some(Eof {
                at: now,
                baseline: None,
            });
        }
    }

    /// Broker offsets of `partition` read at `taken_at` (monotonic ms, when the query
    /// started). Ignored for partitions not assigned.
    pub fn observe_offsets(&mut self, partition: i32, offsets: EndOffsets, taken_at: i64) {
        let Some(c) = self.parts.get_mut(&partition) else {
            return;
        };
        if c.snapshot.is_some_and(|s| s.taken_at > taken_at) {
            return;
        }
        c.snapshot = Some(Snapshot { offsets, taken_at });
        if let Some(eof) = &mut c.eof
            && eof.baseline.is_none()
            && taken_at >= eof.at
        {
            eof.baseline = Some(offsets.high);
        }
    }

    /// How far `partition` has been read at `now` (`None` when it is not assigned).
    pub fn progress(&self, partition: i32, now: i64) -> Option<Progress> {
        self.parts
            .get(&partition)
            .map(|c| c.progress(now, &self.rules))
    }

    /// Whether some assigned partition is known to have unread messages (a replay or a lag).
    pub fn any_behind(&self, now: i64) -> bool {
        self.parts
            .values()
            .any(|c| c.progress(now, &self.rules) == Progress::Behind)
    }

    /// The close bound at `now`.
    pub fn bound(&mut self, now: Now) -> Bound {
        let rules = self.rules;
        let mut min: Option<i64> = None;
        for c in self.parts.values() {
            if now.mono_ms - c.last_seen >= rules.quiet_ms {
                continue;
            }
            let holds = match (c.progress(now.mono_ms, &rules), c.max_ts) {
                (Progress::Empty, _) => continue,
                (Progress::Behind | Progress::Active, None) => return Bound::Hold,
                (Progress::Behind | Progress::Active, Some(ts)) => ts,
                (Progress::CaughtUp, ts) => {
                    let floor = now.wall_ms.saturating_sub(rules.quiet_ms);
                    ts.map_or(floor, |t| t.max(floor))
                }
            };
            min = Some(min.map_or(holds, |m| m.min(holds)));
        }
        match min {
            Some(m) => {
                let w = m.saturating_sub(rules.lateness_ms);
                let w = self.emitted.map_or(w, |e| e.max(w));
                self.emitted = Some(w);
                Bound::Watermark(w)
            }
            None => Bound::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        quiet_ms: 1000,
        lateness_ms: 0,
        offsets_ttl_ms: 5000,
    };
    /// Wall-clock "now" of the tests: event times are far in the past unless said otherwise.
    const WALL: i64 = 1_000_000_000;

    fn at(mono_ms: i64) -> Now {
        Now {
            mono_ms,
            wall_ms: WALL + mono_ms,
        }
    }

    fn offsets(low: i64, high: i64, resume: Option<i64>) -> EndOffsets {
        EndOffsets { low, high, resume }
    }

    #[test]
    fn minimum_over_active_partitions() {
        let mut c = PartitionClocks::new(RULES);
        c.assign(&[0, 1], 0);
        c.observe(0, 0, Some(5_000), 10);
        assert_eq!(
            c.bound(at(10)),
            Bound::Hold,
            "partition 1 has not delivered"
        );
        c.observe(1, 0, Some(2_000), 20);
        let mut late = PartitionClocks::new(Rules {
            lateness_ms: 500,
            ..RULES
        });
        late.assign(&[0, 1], 0);
        late.observe(0, 0, Some(5_000), 10);
        late.observe(1, 0, Some(2_000), 20);
        assert_eq!(late.bound(at(20)), Bound::Watermark(1_500));
        assert_eq!(c.bound(at(20)), Bound::Watermark(2_000));
        // Partition 1 falls silent: after the quiet wait it no longer holds the watermark.
        c.observe(0, 1, Some(9_000), 900);
        assert_eq!(c.bound(at(1_019)), Bound::Watermark(2_000));
        assert_eq!(c.bound(at(1_020)), Bound::Watermark(9_000));
        // Everything silent: idle close.
        assert_eq!(c.bound(at(1_900)), Bound::Idle);
        // A message without a usable event keeps the partition active; the watermark never
        // goes back.
        c.observe(1, 1, None, 2_000);
        assert_eq!(c.bound(at(2_000)), Bound::Watermark(9_000));
    }

    #[test]
    fn assignment_changes_drop_and_add_partitions() {
        let mut c = PartitionClocks::new(RULES);
        c.assign(&[0], 0);
        c.observe(0, 0, Some(100), 0);
        c.assign(&[1], 5);
        assert_eq!(c.bound(at(5)), Bound::Hold);
        assert_eq!(c.bound(at(1_005)), Bound::Idle);
        let mut empty = PartitionClocks::new(RULES);
        assert_eq!(empty.bound(at(0)), Bound::Idle);
        // Offsets and EOFs of partitions not assigned are ignored.
        c.observe_offsets(7, offsets(0, 0, None), 10);
        c.observe_eof(7, 10);
        assert_eq!(c.progress(7, 10), None);
    }

    #[test]
    fn an_empty_partition_never_holds_the_watermark() {
        let mut c = PartitionClocks::new(RULES);
        c.assign(&[0, 1, 2], 0);
        c.observe(0, 0, Some(5_000), 1);
        c.observe(1, 0, Some(7_000), 1);
        assert_eq!(c.bound(at(2)), Bound::Hold, "nothing known of partition 2");
        c.observe_offsets(2, offsets(0, 0, None), 2);
        assert_eq!(c.progress(2, 3), Some(Progress::Empty));
        assert_eq!(c.bound(at(3)), Bound::Watermark(5_000));
        // Still true however old its last message (none) and the others' events are.
        c.observe(0, 1, Some(6_000), 500);
        c.observe(1, 1, Some(8_000), 500);
        assert_eq!(c.bound(at(900)), Bound::Watermark(6_000));
        // Messages deleted by retention (low == high > 0) count as empty too.
        let mut r = PartitionClocks::new(RULES);
        r.assign(&[0, 1], 0);
        r.observe(0, 10, Some(5_000), 1);
        r.observe_offsets(1, offsets(42, 42, None), 1);
        assert_eq!(r.bound(at(1)), Bound::Watermark(5_000));
    }

    #[test]
    fn a_partition_read_to_its_committed_end_does_not_hold() {
        // Non-empty, but this group committed everything before: nothing will be delivered.
        let mut c = PartitionClocks::new(RULES);
        c.assign(&[0, 1], 0);
        c.observe(0, 0, Some(5_000), 1);
        c.observe_offsets(1, offsets(0, 100, Some(40)), 1);
        assert_eq!(c.progress(1, 1), Some(Progress::Behind), "60 unread");
        assert_eq!(c.bound(at(1)), Bound::Hold);
        c.observe_offsets(1, offsets(0, 100, Some(100)), 2);
        assert_eq!(c.progress(1, 2), Some(Progress::Empty));
        assert_eq!(c.bound(at(2)), Bound::Watermark(5_000));
        // Unknown resume point: active (the quiet wait still bounds it).
        c.observe_offsets(1, offsets(0, 100, None), 3);
        assert_eq!(c.progress(1, 3), Some(Progress::Active));
    }

    #[test]
    fn a_fully_read_partition_does_not_hold_a_replay_back() {
        let mut c = PartitionClocks::new(RULES);
        c.assign(&[0, 1], 0);
        // Partition 1's history ended early; partition 0 still has a backlog.
        c.observe(1, 9, Some(1_000), 1);
        c.observe(0, 9, Some(3_000), 1);
        c.observe_offsets(1, offsets(0, 10, None), 2);
        c.observe_offsets(0, offsets(0, 500, None), 2);
        assert_eq!(c.progress(0, 2), Some(Progress::Behind));
        assert_eq!(c.progress(1, 2), Some(Progress::CaughtUp));
        assert_eq!(c.bound(at(2)), Bound::Watermark(3_000));
        // The backlog drains; everything read: the floor (wall − quiet) is far past the old
        // event times, so every replayed window may close.
        c.observe(0, 499, Some(90_000), 3);
        c.observe_offsets(0, offsets(0, 500, None), 4);
        assert_eq!(c.bound(at(4)), Bound::Watermark(WALL + 4 - 1_000));
        // New messages appended and delivered past the snapshot: active again (stale
        // snapshot), holding at the newest event; the watermark never goes back.
        c.observe(1, 10, Some(2_000), 5);
        assert_eq!(c.progress(1, 5), Some(Progress::Active));
        assert_eq!(c.bound(at(5)), Bound::Watermark(WALL + 4 - 1_000));
    }

    #[test]
    fn a_caught_up_live_partition_holds_until_the_quiet_wait() {
        let mut c = PartitionClocks::new(RULES);
        c.assign(&[0, 1], 0);
        // Live: event times are wall-clock times.
        c.observe(0, 0, Some(WALL + 100), 100);
        c.observe(1, 0, Some(WALL + 100), 100);
        c.observe_offsets(1, offsets(0, 1, None), 150);
        assert_eq!(c.progress(1, 150), Some(Progress::CaughtUp));
        // Partition 0 keeps delivering; partition 1 is quiet but holds at its newest event...
        c.observe(0, 1, Some(WALL + 600), 600);
        assert_eq!(c.bound(at(600)), Bound::Watermark(WALL + 100));
        c.observe(0, 2, Some(WALL + 1_050), 1_050);
        c.observe_offsets(1, offsets(0, 1, None), 1_050);
        assert_eq!(c.bound(at(1_050)), Bound::Watermark(WALL + 100));
        // ...until wall-clock now − quiet wait passes it (here together with the silence).
        c.observe(0, 3, Some(WALL + 1_400), 1_400);
        c.observe_offsets(1, offsets(0, 1, None), 1_400);
        assert_eq!(c.bound(at(1_400)), Bound::Watermark(WALL + 1_400));
    }

    #[test]
    fn eof_marks_the_end_until_the_next_message_or_a_higher_high_watermark() {
        let mut c = PartitionClocks::new(RULES);
        c.assign(&[0, 1], 0);
        c.observe(0, 0, Some(5_000), 1);
        c.observe(1, 0, Some(1_000), 1);
        assert_eq!(c.bound(at(1)), Bound::Watermark(1_000));
        c.observe_eof(1, 2);
        assert_eq!(c.progress(1, 2), Some(Progress::CaughtUp));
        assert_eq!(c.bound(at(2)), Bound::Watermark(5_000));
        // A commit marker after the last message: the high watermark is one past the
        // position, yet the EOF stands (the first snapshot after it is the baseline).
        c.observe_offsets(1, offsets(0, 2, None), 3);
        assert_eq!(c.progress(1, 3), Some(Progress::CaughtUp));
        // New messages appended after the EOF, not yet delivered: active.
        c.observe_offsets(1, offsets(0, 30, None), 5);
        assert_eq!(c.progress(1, 5), Some(Progress::Behind));
        // A message clears the EOF (28 more to read).
        c.observe(1, 1, Some(1_500), 6);
        assert_eq!(c.progress(1, 6), Some(Progress::Behind));
        // A snapshot taken before the EOF (answered after it) is no baseline.
        c.observe_eof(1, 10);
        c.observe_offsets(1, offsets(0, 30, None), 8);
        assert_eq!(c.progress(1, 10), Some(Progress::CaughtUp));
        c.observe_offsets(1, offsets(0, 31, None), 11);
        assert_eq!(c.progress(1, 11), Some(Progress::CaughtUp), "baseline 31");
        c.observe_offsets(1, offsets(0, 32, None), 12);
        assert_eq!(c.progress(1, 12), Some(Progress::Behind));
        // An EOF on a partition that delivered nothing: empty.
        let mut e = PartitionClocks::new(RULES);
        e.assign(&[0, 1], 0);
        e.observe(0, 0, Some(5_000), 1);
        e.observe_eof(1, 1);
        assert_eq!(e.progress(1, 1), Some(Progress::Empty));
        assert_eq!(e.bound(at(1)), Bound::Watermark(5_000));
    }

    #[test]
    fn old_offsets_fall_back_to_the_quiet_wait() {
        let mut c = PartitionClocks::new(RULES);
        c.assign(&[0, 1], 0);
        c.observe(0, 0, Some(5_000), 0);
        c.observe(1, 9, Some(1_000), 0);
        c.observe_offsets(1, offsets(0, 10, None), 0);
        assert_eq!(c.bound(at(100)), Bound::Watermark(5_000));
        c.observe(0, 1, Some(6_000), 5_500);
        assert_eq!(
            c.progress(1, 5_001),
            Some(Progress::Active),
            "offsets too old"
        );
        // Partition 1 is silent since 0: the quiet wait released it long ago anyway.
        assert_eq!(c.bound(at(5_500)), Bound::Watermark(6_000));
        // Out-of-order snapshots: the newest wins.
        c.observe_offsets(1, offsets(0, 10, None), 5_500);
        c.observe_offsets(1, offsets(0, 99, None), 5_400);
        assert_eq!(c.progress(1, 5_500), Some(Progress::CaughtUp));
    }

    #[test]
    fn any_behind_tells_a_replay_from_a_caught_up_consumer() {
        let mut c = PartitionClocks::new(RULES);
        c.assign(&[0], 0);
        assert!(!c.any_behind(0), "unknown is not behind");
        c.observe(0, 4, Some(1), 0);
        c.observe_offsets(0, offsets(0, 9, None), 0);
        assert!(c.any_behind(0));
        assert_eq!(
            c.bound(at(0)),
            Bound::Watermark(1),
            "behind holds like active"
        );
        c.observe(0, 8, Some(2), 1);
        assert!(!c.any_behind(1));
        c.observe(0, 9, Some(3), 2);
        assert_eq!(
            c.progress(0, 2),
            Some(Progress::Active),
            "past the snapshot"
        );
        assert!(!c.any_behind(2));
    }
}
