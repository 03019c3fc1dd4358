//! Whether a key's window falls in one of the Detector's maintenance windows
//! (`spec.alerting.maintenance`): absolute (`start`–`end`) or weekly (`from`–`to` UTC on `days`).
//! Such a window is scored and stored (flagged if anomalous) but its anomaly is never notified
//! and the key's model and alert state come out of it unchanged (kept out of training).

use chrono::DateTime;
use helios_crds::maintenance::MaintenanceWindow;

use crate::config::ConfigError;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// When one window applies.
#[derive(Debug, Clone, PartialEq)]
enum When {
    /// `[start, end)` in epoch ms.
    Absolute { start_ms: i64, end_ms: i64 },
    /// Minutes of the day `[from, to)` (wrapping past midnight when `from > to`) starting on
    /// the days of `days` (bit *i*: Monday + *i*; all bits: every day).
    Weekly { days: u8, from: i64, to: i64 },
}

/// One maintenance window.
#[derive(Debug, Clone, PartialEq)]
struct Window {
    name: String,
    when: When,
    keys: Vec<String>,
}

/// The maintenance windows of a Detector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Maintenance(Vec<Window>);

/// `HH:MM` as minutes of the day.
fn minutes(field: &str, text: &str) -> Result<i64, ConfigError> {
    let bad = || ConfigError::Invalid(format!("{field}: {text:?} is not HH:MM (UTC)"));
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// An RFC 3339 time as epoch ms.
fn instant(field: &str, text: &str) -> Result<i64, ConfigError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| ConfigError::Invalid(format!("{field}: {text:?}: {e}")))
}

/// Monday = 0 … Sunday = 6 of the UTC day of `ts` (1970-01-01 was a Thursday).
fn weekday(ts: i64) -> i64 {
    (ts.div_euclid(DAY_MS) + 3).rem_euclid(7)
}

impl Maintenance {
    /// Reads `spec.alerting.maintenance`; a bad field is named.
    pub fn from_spec(windows: &[MaintenanceWindow]) -> Result<Self, ConfigError> {
        let mut out = Vec::with_capacity(windows.len());
        for (i, w) in windows.iter().enumerate() {
            let at = |f: &str| format!("alerting.maintenance[{i}].{f}");
            let when = match (&w.start, &w.end, &w.from, &w.to) {
                (Some(s), Some(e), None, None) => {
                    let (start_ms, end_ms) = (instant(&at("start"), s)?, instant(&at("end"), e)?);
                    if end_ms <= start_ms {
                        return Err(ConfigError::Invalid(format!(
                            "{} is not after start",
                            at("end")
                        )));
                    }
                    When::Absolute { start_ms, end_ms }
                }
                (None, None, Some(f), Some(t)) => {
                    let (from, to) = (minutes(&at("from"), f)?, minutes(&at("to"), t)?);
                    if from == to {
                        return Err(ConfigError::Invalid(format!("{} equals from", at("to"))));
                    }
                    let days = if w.days.is_empty() {
                        0x7f
                    } else {
                        w.days.iter().fold(0u8, |m, d| m | (1 << d.index()))
                    };
                    When::Weekly { days, from, to }
                }
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "alerting.maintenance[{i}]: either start and end, or from and to"
                    )));
                }
            };
            out.push(Window {
                name: w.name.clone().unwrap_or_else(|| format!("maintenance-{i}")),
                when,
                keys: w.keys.clone(),
            });
        }
        Ok(Self(out))
    }

    /// The name of the window covering `key`'s window starting at `ts` (epoch ms), if any.
    pub fn covering(&self, key: &str, ts: i64) -> Option<&str> {
        self.0
            .iter()
            .find(|w| (w.keys.is_empty() || w.keys.iter().any(|k| k == key)) && w.when.covers(ts))
            .map(|w| w.name.as_str())
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl When {
    fn covers(&self, ts: i64) -> bool {
        match *self {
            Self::Absolute { start_ms, end_ms } => (start_ms..end_ms).contains(&ts),
            Self::Weekly { days, from, to } => {
                let minute = ts.rem_euclid(DAY_MS) / MINUTE_MS;
                let on = |day: i64| days & (1 << day.rem_euclid(7)) != 0;
                let today = weekday(ts);
                if from < to {
                    on(today) && (from..to).contains(&minute)
                } else {
                    (on(today) && minute >= from) || (on(today - 1) && minute < to)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use helios_crds::maintenance::Weekday;

    fn ms(t: &str) -> i64 {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.timestamp_millis())
            .unwrap_or_default()
    }

    fn window(json: serde_json::Value) -> MaintenanceWindow {
        serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn absolute_and_weekly_windows_cover_their_times_and_keys() {
        let m = Maintenance::from_spec(&[
            window(
                serde_json::json!({"name": "migration", "start": "2026-01-10T02:00:00Z",
                                       "end": "2026-01-10T03:00:00Z", "keys": ["checkout"]}),
            ),
            window(
                serde_json::json!({"name": "deploys", "from": "22:00", "to": "01:00",
                                       "days": ["Sat"]}),
            ),
        ])
        .unwrap_or_default();
        assert_eq!(
            m.covering("checkout", ms("2026-01-10T02:30:00Z")),
            Some("migration")
        );
        assert_eq!(
            m.covering("cart", ms("2026-01-10T02:30:00Z")),
            None,
            "another key"
        );
        assert_eq!(
            m.covering("checkout", ms("2026-01-10T03:00:00Z")),
            None,
            "end excluded"
        );
        // 2026-01-10 is a Saturday: 22:00 Saturday to 01:00 Sunday, every key.
        assert_eq!(weekday(ms("2026-01-10T12:00:00Z")), Weekday::Sat.index());
        assert_eq!(
            m.covering("cart", ms("2026-01-10T23:30:00Z")),
            Some("deploys")
        );
        assert_eq!(
            m.covering("cart", ms("2026-01-11T00:30:00Z")),
            Some("deploys")
        );
        assert_eq!(m.covering("cart", ms("2026-01-11T01:00:00Z")), None);
        assert_eq!(
            m.covering("cart", ms("2026-01-11T23:30:00Z")),
            None,
            "Sunday night"
        );
        assert_eq!(
            m.covering("cart", ms("2026-01-09T23:30:00Z")),
            None,
            "Friday night"
        );
    }

    #[test]
    fn every_day_without_days_and_bad_fields_are_named() {
        let m =
            Maintenance::from_spec(&[window(serde_json::json!({"from": "02:00", "to": "03:00"}))])
                .unwrap_or_default();
        for day in 5..12 {
            let t = ms(&format!("2026-01-{day:02}T02:15:00Z"));
            assert_eq!(m.covering("x", t), Some("maintenance-0"));
        }
        let bad = |j| {
            Maintenance::from_spec(&[window(j)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(
            bad(serde_json::json!({"from": "25:00", "to": "03:00"}))
                .contains("alerting.maintenance[0].from")
        );
        assert!(
            bad(
                serde_json::json!({"start": "2026-01-10T03:00:00Z", "end": "2026-01-10T02:00:00Z"})
            )
            .contains("alerting.maintenance[0].end")
        );
        assert!(bad(serde_json::json!({"from": "02:00"})).contains("either start and end"));
    }
}
