//! Scores a replay against a scenario's ground truth ([`ScenarioLabels`]): which incidents its
//! alerts caught and how many windows late, the false alerts per key per day, and window
//! precision/recall/F1, with the Markdown `helios backtest --labels` prints. Shared by
//! `helios backtest` and the incident benchmark that runs `helios detect`, so both report the
//! same figures from the same rules.
//!
//! An incident concerns a key whose events come from the incident's service (and endpoint,
//! for an endpoint incident). It is *caught* when an alert of such a key begins in a window
//! that ends after the incident starts and starts at most [`GRACE_WINDOWS`] windows after it
//! ends; its delay is the number of hops from the window holding the incident start to the
//! firing window. Alerts catching no incident are false alerts. Window-wise, a window is
//! positive when it overlaps an incident of its key and predicted when the model flagged it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::scenario::{LabelledIncident, ScenarioLabels};

/// Windows after an incident's end in which an alert still counts as catching it.
pub const GRACE_WINDOWS: i64 = 2;
const DAY_MS: f64 = 86_400_000.0;

/// The services and endpoints a key's events came from (which incidents concern the key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyEvents {
    /// Services seen in the key's events.
    pub services: BTreeSet<String>,
    /// Endpoints seen in the key's events (`-` for events without one, as partition keys write
    /// it).
    pub endpoints: BTreeSet<String>,
}

impl KeyEvents {
    /// Records that one of the key's events came from `service` and `endpoint`.
    pub fn add(&mut self, service: &str, endpoint: &str) {
        if !self.services.contains(service) {
            self.services.insert(service.to_string());
        }
        if !self.endpoints.contains(endpoint) {
            self.endpoints.insert(endpoint.to_string());
        }
    }

    /// Whether an incident concerns this key: its service, and its endpoint if it names one.
    pub fn applies(&self, i: &LabelledIncident) -> bool {
        self.services.contains(&i.service)
            && i.endpoint
                .as_ref()
                .is_none_or(|ep| self.endpoints.contains(ep))
    }
}

/// Window-wise counts: true positives, false positives and false negatives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Flagged windows overlapping an incident of their key.
    pub tp: u64,
    /// Flagged windows overlapping none.
    pub fp: u64,
    /// Unflagged windows overlapping an incident of their key.
    pub fn_: u64,
}

impl Confusion {
    /// Counts one window: `positive` (overlaps an incident of its key), `predicted` (flagged).
    pub fn add(&mut self, positive: bool, predicted: bool) {
        match (positive, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => {}
        }
    }

    /// The counts of both.
    #[must_use]
    pub fn merged(self, other: Self) -> Self {
        Self {
            tp: self.tp + other.tp,
            fp: self.fp + other.fp,
            fn_: self.fn_ + other.fn_,
        }
    }

    /// tp / (tp + fp), `None` without a flagged window.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }

    /// tp / (tp + fn), `None` without a positive window.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// The harmonic mean of precision and recall (0 when both are 0, `None` when either is
    /// undefined).
    pub fn f1(&self) -> Option<f64> {
        match (self.precision(), self.recall()) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        }
    }

    /// Precision, recall and F1 with two decimals (`–` when undefined).
    pub fn text(&self) -> (String, String, String) {
        let text = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |v| format!("{v:.2}"));
        (text(self.precision()), text(self.recall()), text(self.f1()))
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// One alert as scored: its key, when its episode began and the window that fired it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The partition key.
    pub key: String,
    /// Start of the episode's first anomalous window, epoch ms.
    pub start_ms: i64,
    /// Start of the window in which the alert fired, epoch ms.
    pub fired_start_ms: i64,
    /// End of that window, epoch ms.
    pub fired_end_ms: i64,
}

/// What a replay saw of one key: where its events came from and its windows' counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRun {
    /// The key's events.
    pub events: KeyEvents,
    /// Its reported windows against the labels (count them with [`Scorer::positive`]).
    pub windows: Confusion,
}

/// The labels and the window geometry: decides positive windows, catches and delays.
#[derive(Debug, Clone, Copy)]
pub struct Scorer<'a> {
    labels: &'a ScenarioLabels,
    size_ms: i64,
    hop_ms: i64,
}

impl<'a> Scorer<'a> {
    /// A scorer of windows `size_ms` long starting every `hop_ms` (both positive).
    pub fn new(labels: &'a ScenarioLabels, size_ms: i64, hop_ms: i64) -> Self {
        Self {
            labels,
            size_ms: size_ms.max(1),
            hop_ms: hop_ms.max(1),
        }
    }

    /// The labels scored against.
    pub fn labels(&self) -> &'a ScenarioLabels {
        self.labels
    }

    /// Whether the window `[start_ms, end_ms)` of a key overlaps an incident concerning it.
    pub fn positive(&self, key: &KeyEvents, start_ms: i64, end_ms: i64) -> bool {
        self.labels
            .incidents
            .iter()
            .any(|i| key.applies(i) && i.start_ms < end_ms && start_ms < i.end_ms)
    }

    /// Whether an alert of a key catches an incident (see the module documentation).
    pub fn catches(&self, key: &KeyEvents, alert: &Alert, i: &LabelledIncident) -> bool {
        key.applies(i)
            && alert.start_ms + self.size_ms > i.start_ms
            && alert.start_ms <= i.end_ms + GRACE_WINDOWS * self.size_ms
    }

    /// The incidents an alert of a key catches, in label order.
    pub fn caught_by<'b>(
        &'b self,
        key: &'b KeyEvents,
        alert: &'b Alert,
    ) -> impl Iterator<Item = &'a LabelledIncident> + 'b {
        self.labels
            .incidents
            .iter()
            .filter(move |i| self.catches(key, alert, i))
    }

    /// Hops from the window holding the incident's start to the window that fired `alert`.
    pub fn delay_windows(&self, i: &LabelledIncident, alert: &Alert) -> i64 {
        let incident_window = i.start_ms.div_euclid(self.hop_ms) * self.hop_ms;
        ((alert.fired_start_ms - incident_window) / self.hop_ms).max(0)
    }

    /// Scores a replay: the keys with reported windows, every reported alert, and the
    /// reported event time `(first, last)` (at least one window long for the per-day rates).
    pub fn score<'k>(
        &self,
        keys: impl IntoIterator<Item = (&'k str, &'k KeyRun)>,
        alerts: impl IntoIterator<Item = &'k Alert>,
        span: (i64, i64),
    ) -> Scorecard<'a> {
        let keys: BTreeMap<&str, &KeyRun> = keys.into_iter().collect();
        let alerts: Vec<&Alert> = alerts.into_iter().collect();
        let (first, last) = span;
        let days = ((last - first).max(self.size_ms) as f64) / DAY_MS;
        let catches = |a: &Alert, i: &LabelledIncident| {
            keys.get(a.key.as_str())
                .is_some_and(|k| self.catches(&k.events, a, i))
        };
        let incidents: Vec<IncidentOutcome<'a>> = self
            .labels
            .incidents
            .iter()
            .map(|i| {
                let in_range = i.start_ms <= last && i.end_ms > first;
                let has_key = keys.values().any(|k| k.events.applies(i));
                let first_alert = alerts
                    .iter()
                    .copied()
                    .filter(|a| catches(a, i))
                    .min_by_key(|a| a.fired_start_ms);
                let relevant = in_range && has_key;
                IncidentOutcome {
                    incident: i,
                    relevant,
                    delay_windows: first_alert
                        .filter(|_| relevant)
                        .map(|a| self.delay_windows(i, a)),
                    first_alert: first_alert.cloned(),
                }
            })
            .collect();
        let is_false = |a: &Alert| !self.labels.incidents.iter().any(|i| catches(a, i));
        let per_key = keys
            .iter()
            .map(|(&key, run)| {
                let mine: Vec<&IncidentOutcome<'_>> = incidents
                    .iter()
                    .filter(|o| o.relevant && run.events.applies(o.incident))
                    .collect();
                let caught = mine
                    .iter()
                    .filter(|o| {
                        alerts
                            .iter()
                            .any(|a| a.key == key && self.catches(&run.events, a, o.incident))
                    })
                    .count();
                let false_alerts = alerts
                    .iter()
                    .filter(|a| a.key == key && is_false(a))
                    .count();
                KeyScore {
                    key: key.to_string(),
                    caught,
                    incidents: mine.len(),
                    false_alerts,
                    false_alerts_per_day: false_alerts as f64 / days,
                    windows: run.windows,
                }
            })
            .collect();
        let windows = keys
            .values()
            .fold(Confusion::default(), |acc, k| acc.merged(k.windows));
        Scorecard {
            false_alerts: alerts.iter().filter(|a| is_false(a)).count(),
            incidents,
            keys: per_key,
            days,
            windows,
        }
    }
}

/// A labelled incident after the replay.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentOutcome<'a> {
    /// The incident.
    pub incident: &'a LabelledIncident,
    /// A reported key concerns it and it overlaps the reported time.
    pub relevant: bool,
    /// The earliest-firing alert that catches it.
    pub first_alert: Option<Alert>,
    /// Its detection delay in windows (relevant and caught only).
    pub delay_windows: Option<i64>,
}

/// One key's figures against the labels.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyScore {
    /// The partition key.
    pub key: String,
    /// Relevant incidents concerning the key that an alert of the key caught.
    pub caught: usize,
    /// Relevant incidents concerning the key.
    pub incidents: usize,
    /// Alerts of the key catching no incident.
    pub false_alerts: usize,
    /// `false_alerts` per reported day.
    pub false_alerts_per_day: f64,
    /// The key's window counts.
    pub windows: Confusion,
}

impl KeyScore {
    /// The labelled cells of the key's row in the keys table, after the caller's own cells:
    /// incidents caught, false alerts, false alerts/day, precision, recall, F1.
    pub fn cells(&self) -> String {
        let (p, r, f) = self.windows.text();
        format!(
            " {}/{} | {} | {:.2} | {p} | {r} | {f} |",
            self.caught, self.incidents, self.false_alerts, self.false_alerts_per_day
        )
    }
}

/// The figures of a whole replay against the labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard<'a> {
    /// Every labelled incident, in label order.
    pub incidents: Vec<IncidentOutcome<'a>>,
    /// Every reported key, in key order.
    pub keys: Vec<KeyScore>,
    /// Alerts catching no incident.
    pub false_alerts: usize,
    /// Reported days.
    pub days: f64,
    /// The window counts of all keys.
    pub windows: Confusion,
}

impl Scorecard<'_> {
    /// The figures of one key.
    pub fn key(&self, key: &str) -> Option<&KeyScore> {
        self.keys.iter().find(|k| k.key == key)
    }

    /// Incidents concerning a reported key within the reported time.
    pub fn relevant(&self) -> usize {
        self.incidents.iter().filter(|o| o.relevant).count()
    }

    /// Relevant incidents caught.
    pub fn caught(&self) -> usize {
        self.incidents
            .iter()
            .filter(|o| o.relevant && o.first_alert.is_some())
            .count()
    }

    /// Relevant incidents caught with a delay of at most `windows` windows.
    pub fn caught_within(&self, windows: i64) -> usize {
        self.incidents
            .iter()
            .filter(|o| o.delay_windows.is_some_and(|d| d <= windows))
            .count()
    }

    /// False alerts per reported key per reported day.
    pub fn false_alerts_per_key_day(&self) -> f64 {
        self.false_alerts as f64 / (self.keys.len().max(1) as f64 * self.days)
    }

    /// The `## Incidents` section: per incident caught, missed or not replayed, the delay in
    /// windows and the first catching alert.
    pub fn incidents_table(&self, out: &mut String) {
        let _ = writeln!(out, "\n## Incidents ({})\n", self.incidents.len());
        let _ = writeln!(
            out,
            "| id | kind | service | start | end | caught | delay (windows) | first alert |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for o in &self.incidents {
            let i = o.incident;
            let service = match &i.endpoint {
                Some(ep) => format!("{} {ep}", i.service),
                None => i.service.clone(),
            };
            let (caught, delay, first) = match (o.relevant, &o.first_alert) {
                (false, _) => ("not replayed".to_string(), "–".to_string(), "–".to_string()),
                (true, None) => ("missed".to_string(), "–".to_string(), "–".to_string()),
                (true, Some(a)) => (
                    "caught".to_string(),
                    o.delay_windows.unwrap_or(0).to_string(),
                    format!("{} {}", rfc3339(a.fired_end_ms), a.key),
                ),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {service} | {} | {} | {caught} | {delay} | {first} |",
                i.id,
                i.kind,
                rfc3339(i.start_ms),
                rfc3339(i.end_ms)
            );
        }
    }

    /// The labelled part of the overall line: `incidents caught …; false alerts … (… per key
    /// per day); windows precision … recall … F1 …`.
    pub fn summary(&self) -> String {
        let (p, r, f) = self.windows.text();
        format!(
            "incidents caught {}/{}; false alerts {} ({:.2} per key per day); windows \
             precision {p} recall {r} F1 {f}",
            self.caught(),
            self.relevant(),
            self.false_alerts,
            self.false_alerts_per_key_day()
        )
    }
}

/// Epoch ms as RFC 3339 in UTC to whole seconds (`2026-01-05T00:00:00Z`), as reports print
/// times.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::Kind;

    const MIN: i64 = 60_000;

    fn incident(
        id: &str,
        service: &str,
        endpoint: Option<&str>,
        start: i64,
        end: i64,
    ) -> LabelledIncident {
        LabelledIncident {
            id: id.into(),
            kind: Kind::Errors,
            service: service.into(),
            endpoint: endpoint.map(str::to_string),
            start_ms: start,
            end_ms: end,
            factor: 0.3,
            spec: String::new(),
        }
    }

    fn labels() -> ScenarioLabels {
        ScenarioLabels {
            start_ms: 0,
            end_ms: 1440 * MIN,
            seed: 1,
            services: vec!["checkout".into(), "auth".into()],
            incidents: vec![
                incident("inc-01", "checkout", None, 100 * MIN, 130 * MIN),
                incident("inc-02", "auth", Some("/login"), 600 * MIN, 620 * MIN),
                incident("inc-03", "checkout", None, 1000 * MIN, 1010 * MIN),
            ],
        }
    }

    fn key(service: &str, endpoints: &[&str]) -> KeyEvents {
        let mut k = KeyEvents::default();
        for ep in endpoints {
            k.add(service, ep);
        }
        k
    }

    fn alert(key: &str, start_min: i64, fired_min: i64) -> Alert {
        Alert {
            key: key.into(),
            start_ms: start_min * MIN,
            fired_start_ms: fired_min * MIN,
            fired_end_ms: (fired_min + 5) * MIN,
        }
    }

    #[test]
    fn endpoint_incidents_concern_only_keys_with_that_endpoint() {
        let l = labels();
        assert!(key("auth", &["/login", "/token"]).applies(&l.incidents[1]));
        assert!(!key("auth", &["/token"]).applies(&l.incidents[1]));
        assert!(!key("checkout", &["/login"]).applies(&l.incidents[1]));
        assert!(key("checkout", &["-"]).applies(&l.incidents[0]));
    }

    #[test]
    fn alerts_catch_from_the_start_window_to_the_grace_windows_after_the_end() {
        let l = labels();
        let s = Scorer::new(&l, 5 * MIN, 5 * MIN);
        let k = key("checkout", &["/cart"]);
        let i = &l.incidents[0];
        // The window [95, 100) ends when the incident starts: too early.
        assert!(!s.catches(&k, &alert("checkout", 95, 95), i));
        assert!(s.catches(&k, &alert("checkout", 96, 100), i));
        // Up to GRACE_WINDOWS windows after the end (130 + 2 × 5).
        assert!(s.catches(&k, &alert("checkout", 140, 140), i));
        assert!(!s.catches(&k, &alert("checkout", 141, 141), i));
        assert_eq!(s.delay_windows(i, &alert("checkout", 100, 110)), 2);
        assert_eq!(s.delay_windows(i, &alert("checkout", 96, 95)), 0);
        assert!(s.positive(&k, 125 * MIN, 130 * MIN));
        assert!(!s.positive(&k, 130 * MIN, 135 * MIN));
    }

    #[test]
    fn a_scorecard_counts_catches_delays_false_alerts_and_windows() {
        let l = labels();
        let s = Scorer::new(&l, 5 * MIN, 5 * MIN);
        let checkout = KeyRun {
            events: key("checkout", &["/cart"]),
            windows: Confusion {
                tp: 3,
                fp: 1,
                fn_: 5,
            },
        };
        let auth = KeyRun {
            events: key("auth", &["/token"]),
            windows: Confusion {
                tp: 0,
                fp: 2,
                fn_: 0,
            },
        };
        let alerts = [
            alert("checkout", 110, 115),
            alert("checkout", 105, 105),
            alert("checkout", 400, 400),
            alert("auth", 605, 605),
        ];
        let card = s.score(
            [("auth", &auth), ("checkout", &checkout)],
            &alerts,
            (0, 1440 * MIN),
        );
        let o = &card.incidents;
        assert!(o[0].relevant);
        assert_eq!(o[0].first_alert.as_ref(), Some(&alerts[1]));
        assert_eq!(o[0].delay_windows, Some(1));
        // No key holds auth's /login events.
        assert!(!o[1].relevant);
        assert!(o[2].relevant && o[2].first_alert.is_none());
        assert_eq!(
            (card.caught(), card.relevant(), card.caught_within(0)),
            (1, 2, 0)
        );
        assert_eq!(card.false_alerts, 2);
        assert!((card.days - 1.0).abs() < 1e-12);
        assert!((card.false_alerts_per_key_day() - 1.0).abs() < 1e-12);
        let c = card.key("checkout").unwrap();
        assert_eq!((c.caught, c.incidents, c.false_alerts), (1, 2, 1));
        assert_eq!(c.cells(), " 1/2 | 1 | 1.00 | 0.75 | 0.38 | 0.50 |");
        assert_eq!(
            card.windows,
            Confusion {
                tp: 3,
                fp: 3,
                fn_: 5
            }
        );
        assert_eq!(
            card.summary(),
            "incidents caught 1/2; false alerts 2 (1.00 per key per day); windows precision \
             0.50 recall 0.38 F1 0.43"
        );
        let mut table = String::new();
        card.incidents_table(&mut table);
        assert!(
            table.contains(
                "| inc-01 | errors | checkout | 1970-01-01T01:40:00Z | 1970-01-01T02:10:00Z | \
                 caught | 1 | 1970-01-01T01:50:00Z checkout |"
            ),
            "{table}"
        );
        assert!(table.contains("| auth /login |"), "{table}");
        assert!(table.contains("| not replayed | – | – |"), "{table}");
        assert!(table.contains("| missed | – | – |"), "{table}");
    }

    #[test]
    fn ratios_format_with_two_decimals_or_a_dash() {
        let c = Confusion {
            tp: 2,
            fp: 2,
            fn_: 0,
        };
        assert_eq!(
            c.text(),
            ("0.50".to_string(), "1.00".to_string(), "0.67".to_string())
        );
        assert_eq!(Confusion::default().text().0, "–");
        let zero = Confusion {
            tp: 0,
            fp: 1,
            fn_: 1,
        };
        assert_eq!(zero.f1(), Some(0.0));
    }

    #[test]
    fn times_print_as_rfc3339_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_571_200_000), "2026-01-05T00:00:00Z");
        assert_eq!(
            rfc3339(1_767_571_200_999 + 86_399_000),
            "2026-01-05T23:59:59Z"
        );
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
