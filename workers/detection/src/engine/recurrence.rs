//! Daily recurrence: a flagged window is learnt when a window at the same time of the previous
//! day (within a tolerance) was flagged too. Flagged windows never enter the training history
//! or the seasonal profile, so without this a daily pattern the model once flagged (the
//! working-hours level of a series first seen at night, a nightly batch) is never learnt and
//! pages every day; an incident rarely recurs at the same time the next day.

use std::collections::VecDeque;

use crate::engine::seasonal::DAY_MS;

/// Default tolerance: half an hour either side of the same time yesterday.
pub const DEFAULT_TOLERANCE_MS: i64 = 30 * 60_000;
/// Default number of previous days the flag must recur on: two, so that a one-off flag the day
/// before (a false alert, or an incident) never lets an incident be learnt.
pub const DEFAULT_DAYS: usize = 2;

/// The flagged window starts of one key over the last day and the tolerance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recurrence {
    flagged: VecDeque<i64>,
}

impl Recurrence {
    /// Records window `ts` (flagged or not) and answers whether it is flagged and recurs: on
    /// each of the `days` previous days a flagged window started within `tolerance_ms` of the
    /// same time. `tolerance_ms <= 0` or `days == 0` turns it off. Windows arrive in time
    /// order; memory is at most `days` days of windows.
    pub fn note(&mut self, ts: i64, flagged: bool, tolerance_ms: i64, days: usize) -> bool {
        if tolerance_ms <= 0 || days == 0 {
            return false;
        }
        let oldest = ts - days as i64 * DAY_MS - tolerance_ms;
        while self.flagged.front().is_some_and(|&f| f < oldest) {
            self.flagged.pop_front();
        }
        if !flagged {
            return false;
        }
        let recurs = (1..=days as i64).all(|k| {
            let lo = ts - k * DAY_MS - tolerance_ms;
            let i = self.flagged.partition_point(|&f| f < lo);
            self.flagged
                .get(i)
                .is_some_and(|&f| f <= lo + 2 * tolerance_ms)
        });
        self.flagged.push_back(ts);
        recurs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn a_window_flagged_at_the_same_time_yesterday_recurs() {
        let mut r = Recurrence::default();
        let t = 10 * DAY_MS + 10 * 60 * MIN;
        assert!(
            !r.note(t, true, DEFAULT_TOLERANCE_MS, 1),
            "first day: an incident"
        );
        assert!(!r.note(t + 5 * MIN, false, DEFAULT_TOLERANCE_MS, 1));
        // The next day, 20 minutes later than yesterday: a pattern.
        assert!(r.note(t + DAY_MS + 20 * MIN, true, DEFAULT_TOLERANCE_MS, 1));
        // An unflagged window never recurs.
        assert!(!r.note(t + DAY_MS + 25 * MIN, false, DEFAULT_TOLERANCE_MS, 1));
    }

    #[test]
    fn other_times_of_day_and_older_days_do_not_recur() {
        let mut r = Recurrence::default();
        let t = 3 * DAY_MS;
        r.note(t, true, DEFAULT_TOLERANCE_MS, 1);
        // Yesterday an hour earlier: beyond the tolerance.
        assert!(!r.note(t + DAY_MS + 60 * MIN, true, DEFAULT_TOLERANCE_MS, 1));
        // Two days later at the same time: yesterday (t + 1 day) was not flagged then.
        let mut r = Recurrence::default();
        r.note(t, true, DEFAULT_TOLERANCE_MS, 1);
        assert!(!r.note(t + 2 * DAY_MS, true, DEFAULT_TOLERANCE_MS, 1));
        // Off.
        let mut r = Recurrence::default();
        r.note(t, true, 0, 1);
        assert!(!r.note(t + DAY_MS, true, 0, 1));
    }

    #[test]
    fn with_two_days_the_flag_must_recur_on_both() {
        let t = 5 * DAY_MS;
        let mut r = Recurrence::default();
        assert!(
            !r.note(t + DAY_MS, true, DEFAULT_TOLERANCE_MS, 2),
            "yesterday only"
        );
        assert!(
            !r.note(t + 2 * DAY_MS, true, DEFAULT_TOLERANCE_MS, 2),
            "one day only"
        );
        // Flagged yesterday and the day before (10 minutes apart): recurs.
        assert!(r.note(t + 3 * DAY_MS - 10 * MIN, true, DEFAULT_TOLERANCE_MS, 2));
    }

    #[test]
    fn memory_is_bounded_by_a_day_of_windows() {
        let mut r = Recurrence::default();
        for i in 0..(10 * 288) {
            r.note(i * 5 * MIN, true, DEFAULT_TOLERANCE_MS, 1);
        }
        // A day and two tolerances of 5-minute windows, at most.
        assert!(r.flagged.len() <= 288 + 13, "{}", r.flagged.len());
    }
}
