//! The Markdown report of a replay: alerts, keys, incidents and the overall line.

use std::fmt::Write as _;

use helios_detect::records::{severity_name, ts};
use helios_detect::status::rfc3339;
use helios_detection::engine::Guard;
use helios_traffic::score::{Scorecard, Scorer};

use super::{DAY_MS, Replay};

impl Replay {
    /// The reported time: from the first replayed event (or --from) to the last event.
    pub(super) fn span(&self) -> (i64, i64) {
        let last = self.max_ts.unwrap_or(0);
        let first = self.min_ts.unwrap_or(0).max(self.from.unwrap_or(i64::MIN));
        (first.min(last), last)
    }

    /// Reported days (at least one window).
    pub(super) fn days(&self) -> f64 {
        let (first, last) = self.span();
        ((last - first).max(self.size_ms) as f64) / DAY_MS
    }

    /// The Markdown report.
    pub(super) fn report(&self, detector: &str, events: &str) -> String {
        let mut out = String::new();
        let c = &self.counts;
        let _ = writeln!(out, "# Backtest of {detector} on {events}\n");
        let (first, last) = self.span();
        let warmup = if c.before_from > 0 {
            format!(
                " ({} of them before --from: they only train the detector)",
                c.before_from
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "Replayed {} events{warmup}; reported {} keys, {} windows ({} to {}, {:.1} days; \
             window {}, hop {}, allowed lateness {}).",
            c.accepted,
            self.reported().count(),
            c.windows,
            time(first),
            time(last),
            self.days(),
            duration(self.size_ms),
            duration(self.hop_ms),
            duration(self.lateness_ms)
        );
        let _ = writeln!(
            out,
            "Skipped: {} bad lines, {} at or after --to, {} not matched by the selector, {} \
             late{}.",
            c.bad,
            c.after_to,
            c.filtered,
            c.late,
            if c.late > 0 {
                " (older than the watermark: is the file in timestamp order?)"
            } else {
                ""
            }
        );
        if let Some(fb) = &self.feedback {
            let _ = writeln!(
                out,
                "Feedback: {} labels; {} false positives applied when they fired, {} later \
                 alerts of their pattern suppressed.",
                fb.len(),
                self.feedback_applied.0,
                self.feedback_applied.1
            );
        }
        if !c.bad_shown.is_empty() {
            let _ = writeln!(
                out,
                "\nBad lines (first {} of {}):",
                c.bad_shown.len(),
                c.bad
            );
            for (at, e) in &c.bad_shown {
                let _ = writeln!(out, "- {at}: {e}");
            }
        }
        let card = self.scorecard();
        self.alerts_table(&mut out);
        self.keys_table(&mut out, card.as_ref());
        if let Some(card) = &card {
            card.incidents_table(&mut out);
        }
        self.overall(&mut out, card.as_ref());
        out
    }

    /// The scorer of the labels, if any, over this replay's windows.
    pub(super) fn scorer(&self) -> Option<Scorer<'_>> {
        self.labels
            .as_ref()
            .map(|l| Scorer::new(l, self.size_ms, self.hop_ms))
    }

    /// The reported keys and alerts scored against the labels, if any.
    pub(super) fn scorecard(&self) -> Option<Scorecard<'_>> {
        let scorer = self.scorer()?;
        Some(scorer.score(
            self.reported().map(|(k, ks)| (k.as_str(), &ks.run)),
            self.alerts.iter().map(|a| &a.alert),
            self.span(),
        ))
    }

    pub(super) fn alerts_table(&self, out: &mut String) {
        let _ = writeln!(out, "\n## Alerts ({})\n", self.alerts.len());
        if self.alerts.is_empty() {
            let _ = writeln!(out, "No alert would have fired.");
            return;
        }
        let scorer = self.scorer();
        let _ = writeln!(
            out,
            "| fired | episode start | key | severity | score | flagged by | top features{} |",
            if scorer.is_some() { " | incident" } else { "" }
        );
        let _ = writeln!(
            out,
            "|---|---|---|---|---|---|---|{}",
            if scorer.is_some() { "---|" } else { "" }
        );
        for row in &self.alerts {
            let a = &row.alert;
            let top: Vec<String> = row
                .top
                .iter()
                .map(|f| format!("{} {} ({})", f.feature, num(f.actual), num(f.typical)))
                .collect();
            let _ = write!(
                out,
                "| {} | {} | {} | {} | {:.3} | {} | {} |",
                time(a.fired_end_ms),
                time(a.start_ms),
                a.key,
                severity_name(row.severity),
                row.score,
                flagged_by(row.guard),
                top.join(", ")
            );
            if let Some(scorer) = &scorer {
                let ids: Vec<&str> = self
                    .keys
                    .get(&a.key)
                    .map(|ks| {
                        scorer
                            .caught_by(&ks.run.events, a)
                            .map(|i| i.id.as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    " {} |",
                    if ids.is_empty() {
                        "false alert".to_string()
                    } else {
                        ids.join(", ")
                    }
                );
            }
            out.push('\n');
        }
    }

    pub(super) fn keys_table(&self, out: &mut String, card: Option<&Scorecard<'_>>) {
        let _ = writeln!(out, "\n## Keys ({})\n", self.reported().count());
        if card.is_some() {
            let _ = writeln!(
                out,
                "| key | windows | warm-up | anomalous | alerts | incidents caught | false \
                 alerts | false alerts/day | precision | recall | F1 |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
        } else {
            let _ = writeln!(out, "| key | windows | warm-up | anomalous | alerts |");
            let _ = writeln!(out, "|---|---|---|---|---|");
        }
        for (key, ks) in self.reported() {
            let _ = write!(
                out,
                "| {key} | {} | {} | {} | {} |",
                ks.windows, ks.warmup, ks.anomalous, ks.alerts
            );
            if let Some(score) = card.and_then(|c| c.key(key)) {
                out.push_str(&score.cells());
            }
            out.push('\n');
        }
    }

    pub(super) fn overall(&self, out: &mut String, card: Option<&Scorecard<'_>>) {
        let c = &self.counts;
        let anomalous: u64 = self.keys.values().map(|k| k.anomalous).sum();
        let _ = write!(
            out,
            "\noverall: {} keys, {} windows, {} anomalous, {} alerts",
            self.reported().count(),
            c.windows,
            anomalous,
            self.alerts.len()
        );
        if let Some(card) = card {
            let _ = write!(out, "; {}", card.summary());
        }
        out.push('\n');
    }
}

/// Epoch ms as RFC 3339 (UTC, whole seconds).
pub(super) fn time(ms: i64) -> String {
    rfc3339(ts(ms))
}

/// Milliseconds as `5m`, `30s`, `1h`, `250ms`.
pub(super) fn duration(ms: i64) -> String {
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    helios_detect::status::human(std::time::Duration::from_millis(ms.unsigned_abs()))
}

/// A feature value with a precision that suits its size.
pub(super) fn num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".to_string()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A count as `950`, `3.4k`, `1.2M`.
pub(super) fn human(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// What flagged an alert's firing window: its score, or a guard whatever the threshold.
fn flagged_by(guard: Option<Guard>) -> String {
    guard.map_or_else(|| "threshold".into(), |g| format!("{} guard", g.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_format() {
        assert_eq!(human(1_234_567), "1.2M");
        assert_eq!(human(3_400), "3.4k");
        assert_eq!(duration(300_000), "5m");
        assert_eq!(num(0.0123), "0.012");
    }
}
