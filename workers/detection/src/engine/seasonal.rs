//! Seasonal baselines: the typical value of each feature per hour of the week (or of the day),
//! learned from unflagged windows, so a residual `x − typical(hour)` says whether a value is
//! normal *for this time*. Night-time traffic at noon is an outage; at night it is not.
//!
//! Every hour-of-week slot keeps the last [`PER_SLOT`] values per feature (a fixed ring, so
//! memory is bounded: 168 × 16 × features values per key). The weekly profile is used once the
//! observed windows span its start (two weeks by default; [`REQUEST_WEEKLY_AFTER_MS`] for
//! request traffic, which follows the working week); before that the daily profile (the same
//! hour of every day pooled) once they span two days; before that none, and the core says so
//! on `ModelTrained`.

use serde::{Deserialize, Serialize};

use crate::stats::median;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// One week in milliseconds.
pub const WEEK_MS: i64 = 7 * DAY_MS;
/// When the weekly profile starts by default: two weeks of every slot.
pub const WEEKLY_AFTER_MS: i64 = 2 * WEEK_MS;
/// When the weekly profile of request traffic starts: a week and a day, since request rates
/// follow the working week (a daily profile pooling weekend and weekday hours blurs a drop
/// at a weekday peak).
pub const REQUEST_WEEKLY_AFTER_MS: i64 = WEEK_MS + DAY_MS;
/// Values kept per hour-of-week slot and feature.
pub const PER_SLOT: usize = 16;
const SLOTS: usize = 168;

/// Which seasonal profile the residuals use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Period {
    /// History shorter than two days (or seasonality off): no seasonal baseline.
    None,
    /// Hour of day (history spans at least two days).
    Daily,
    /// Hour of week (history spans the weekly start: two weeks, or a week and a day).
    Weekly,
}

impl Period {
    /// Lower-case name for messages and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::None => "none",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
        }
    }
}

/// What seasonality a detector may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SeasonalityMode {
    /// Weekly once the weekly start is covered, daily once two days are.
    #[default]
    Auto,
    /// At most the daily profile.
    Daily,
    /// No seasonal baseline.
    Off,
}

/// A ring of recent values of one slot and feature.
#[derive(Debug, Clone, Default, PartialEq)]
struct Ring {
    values: Vec<f64>,
    next: usize,
}

impl Ring {
    fn push(&mut self, v: f64) {
        if self.values.len() < PER_SLOT {
            self.values.push(v);
        } else {
            self.values[self.next] = v;
            self.next = (self.next + 1) % PER_SLOT;
        }
    }
}

/// Hour-of-week profile of every feature of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct SeasonalProfile {
    dims: usize,
    mode: SeasonalityMode,
    weekly_after_ms: i64,
    slots: Vec<Ring>,
    /// Cached median per hour-of-week slot and feature.
    weekly: Vec<Option<f64>>,
    /// Cached median per hour of day (7 slots pooled) and feature.
    daily: Vec<Option<f64>>,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
}

/// Hour-of-week slot of a time (0 = Monday 00:00 UTC).
pub fn hour_of_week(ts_ms: i64) -> usize {
    // 1970-01-01 was a Thursday: shift by three days so slot 0 is Monday.
    let h = (ts_ms + 3 * DAY_MS)
        .div_euclid(HOUR_MS)
        .rem_euclid(SLOTS as i64);
    h as usize
}

impl SeasonalProfile {
    /// An empty profile for `dims` features whose weekly profile starts once the windows span
    /// `weekly_after_ms` (at least a week).
    pub fn new(dims: usize, mode: SeasonalityMode, weekly_after_ms: i64) -> Self {
        Self {
            dims,
            mode,
            weekly_after_ms: weekly_after_ms.max(WEEK_MS),
            slots: vec![Ring::default(); SLOTS * dims],
            weekly: vec![None; SLOTS * dims],
            daily: vec![None; 24 * dims],
            first_ms: None,
            last_ms: None,
        }
    }

    /// Learns one (unflagged) window.
    pub fn observe(&mut self, ts_ms: i64, x: &[f64]) {
        if self.mode == SeasonalityMode::Off {
            return;
        }
        let slot = hour_of_week(ts_ms);
        for (j, &v) in x.iter().enumerate().take(self.dims) {
            let k = slot * self.dims + j;
            self.slots[k].push(v);
            self.weekly[k] = Some(median(&self.slots[k].values));
            let pooled: Vec<f64> = (0..7)
                .flat_map(|d| {
                    self.slots[((slot % 24) + 24 * d) * self.dims + j]
                        .values
                        .iter()
                })
                .copied()
                .collect();
            self.daily[(slot % 24) * self.dims + j] = Some(median(&pooled));
        }
        self.first_ms = Some(self.first_ms.map_or(ts_ms, |f| f.min(ts_ms)));
        self.last_ms = Some(self.last_ms.map_or(ts_ms, |l| l.max(ts_ms)));
    }

    /// Time covered by the learned windows (ms).
    pub fn span_ms(&self) -> i64 {
        match (self.first_ms, self.last_ms) {
            (Some(f), Some(l)) => l - f,
            _ => 0,
        }
    }

    /// The profile in use for the covered span.
    pub fn period(&self) -> Period {
        let span = self.span_ms();
        match self.mode {
            SeasonalityMode::Off => Period::None,
            SeasonalityMode::Auto if span >= self.weekly_after_ms => Period::Weekly,
            SeasonalityMode::Auto | SeasonalityMode::Daily if span >= 2 * DAY_MS => Period::Daily,
            _ => Period::None,
        }
    }

    /// Typical value of feature `j` at `ts_ms` under the current period (`None` without one or
    /// when the slot has no values yet).
    pub fn expected(&self, ts_ms: i64, j: usize) -> Option<f64> {
        if j >= self.dims {
            return None;
        }
        let slot = hour_of_week(ts_ms);
        match self.period() {
            Period::None => None,
            Period::Weekly => self.weekly[slot * self.dims + j],
            Period::Daily => self.daily[(slot % 24) * self.dims + j],
        }
    }
}

/// The expected request count `e` of a window of count `v` whose local level (`v` minus its
/// local residual: the median of the last windows) is `level`, settled for the daily profile:
/// a count below its baseline counts only as far as the local level is below it too. The
/// daily profile pools weekdays, so the first weekend is below every slot all day long while
/// the local level follows it; an outage is sudden and stays below the local level, and the
/// drop guard, which compares with the local level itself, sees it either way.
pub fn settled_count(v: f64, level: f64, e: f64) -> f64 {
    if v < e && level < e {
        e.min(level.max(v))
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_count_is_judged_against_its_local_level() {
        // A weekend: 600 at a 1,000 slot, the local level at 620 → expected 620.
        assert_eq!(settled_count(600.0, 620.0, 1000.0), 620.0);
        // The level below the value: expected falls to the value, never below it.
        assert_eq!(settled_count(640.0, 600.0, 1000.0), 640.0);
        // A sudden drop: the level is still at the slot → unchanged.
        assert_eq!(settled_count(300.0, 1000.0, 1000.0), 1000.0);
        assert_eq!(settled_count(300.0, 1100.0, 1000.0), 1000.0);
        // Above the baseline: unchanged whatever the level.
        assert_eq!(settled_count(1200.0, 1300.0, 1000.0), 1000.0);
    }

    #[test]
    fn monday_midnight_is_slot_zero() {
        // 2024-01-01 00:00 UTC was a Monday.
        let monday = 1_704_067_200_000;
        assert_eq!(hour_of_week(monday), 0);
        assert_eq!(hour_of_week(monday + 25 * HOUR_MS), 25);
        assert_eq!(hour_of_week(monday - HOUR_MS), 167);
    }

    #[test]
    fn daily_after_two_days_weekly_after_two_weeks() {
        let mut p = SeasonalProfile::new(1, SeasonalityMode::Auto, WEEKLY_AFTER_MS);
        let step = 300_000;
        let mut t = 0;
        while t <= 15 * DAY_MS {
            let hour = (t / HOUR_MS) % 24;
            // Weekends (slots of days 5 and 6 from Monday) are half as busy.
            let dow = (hour_of_week(t) / 24) as i64;
            let weekend = if dow >= 5 { 0.5 } else { 1.0 };
            let v = if (8..20).contains(&hour) { 100.0 } else { 10.0 } * weekend;
            p.observe(t, &[v]);
            if t == DAY_MS {
                assert_eq!(p.period(), Period::None);
                assert_eq!(p.expected(t, 0), None);
            }
            if t == 3 * DAY_MS {
                assert_eq!(p.period(), Period::Daily);
            }
            t += step;
        }
        assert_eq!(p.period(), Period::Weekly);
        // Noon on a weekday vs noon at the weekend vs 03:00.
        let monday_noon = 4 * DAY_MS + 12 * HOUR_MS; // 1970-01-05 was a Monday
        assert_eq!(hour_of_week(monday_noon), 12);
        assert_eq!(p.expected(monday_noon, 0), Some(100.0));
        assert_eq!(p.expected(monday_noon + 5 * DAY_MS, 0), Some(50.0));
        assert_eq!(p.expected(monday_noon - 9 * HOUR_MS, 0), Some(10.0));
        // Request traffic: weekly after a week and a day.
        let mut req = SeasonalProfile::new(1, SeasonalityMode::Auto, REQUEST_WEEKLY_AFTER_MS);
        req.observe(0, &[1.0]);
        req.observe(7 * DAY_MS, &[1.0]);
        assert_eq!(req.period(), Period::Daily);
        req.observe(8 * DAY_MS, &[1.0]);
        assert_eq!(req.period(), Period::Weekly);
        let mut off = SeasonalProfile::new(1, SeasonalityMode::Off, WEEKLY_AFTER_MS);
        off.observe(0, &[1.0]);
        off.observe(20 * DAY_MS, &[1.0]);
        assert_eq!(off.period(), Period::None);
    }
}
