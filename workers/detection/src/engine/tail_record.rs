//! The out-of-sample record of one guard statistic and the limit fitted to its tail: the
//! calibration the drop guard and the error guard share.

use std::collections::VecDeque;

use crate::engine::threshold::tail_quantile;

/// Recent values of a guard statistic (larger = more anomalous) and the limit in force.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TailRecord {
    /// Statistics of windows the guard did not flag, oldest first.
    record: VecDeque<f64>,
    /// The limit in force (`None` while calibrating).
    limit: Option<f64>,
    /// The statistic of the last checked window, until recorded.
    last: Option<f64>,
}

impl TailRecord {
    /// Notes the statistic of the window being checked; whether it exceeds the limit.
    pub fn check(&mut self, stat: f64) -> bool {
        self.last = Some(stat);
        self.limit.is_some_and(|l| stat > l)
    }

    /// Forgets the last statistic without recording it (the window was not checked).
    pub fn skip(&mut self) {
        self.last = None;
    }

    /// Records the last checked statistic unless its window was flagged by the guard, keeping
    /// at most `keep`.
    pub fn record(&mut self, keep: usize, flagged: bool) {
        if let Some(stat) = self.last.take()
            && !flagged
        {
            self.record.push_back(stat);
            while self.record.len() > keep {
                self.record.pop_front();
            }
        }
    }

    /// Keeps `limit` in force (a freshly reset record) until a calibration has enough windows.
    pub fn carry(&mut self, limit: Option<f64>) {
        self.limit = limit;
    }

    /// Re-derives the limit once `min_windows` are recorded: the exponential tail of the record
    /// extrapolated to `rate` per window (its largest value when the tail cannot be fitted),
    /// never below `floor`. Before that, the limit carried over (if any) stays.
    pub fn calibrate(&mut self, min_windows: usize, rate: f64, floor: f64) {
        if self.record.len() < min_windows {
            return;
        }
        let v: Vec<f64> = self.record.iter().copied().collect();
        let most = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        self.limit = Some(tail_quantile(&v, rate).unwrap_or(most).max(floor));
    }

    /// The limit in force.
    pub fn limit(&self) -> Option<f64> {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrates_after_min_windows_and_never_below_the_floor() {
        let mut t = TailRecord::default();
        for i in 0..100 {
            t.check(f64::from(i % 10));
            t.record(1000, false);
        }
        t.calibrate(200, 1e-3, 0.5);
        assert_eq!(t.limit(), None);
        t.calibrate(100, 1e-3, 0.5);
        assert!(t.limit().is_some_and(|l| l >= 9.0), "{:?}", t.limit());
        t.calibrate(100, 1e-3, 50.0);
        assert_eq!(t.limit(), Some(50.0));
    }

    #[test]
    fn flagged_and_skipped_windows_are_not_recorded() {
        let mut t = TailRecord::default();
        t.check(1.0);
        t.record(10, true);
        t.check(2.0);
        t.skip();
        t.record(10, false);
        t.calibrate(1, 0.1, 0.0);
        assert_eq!(t.limit(), None);
    }
}
