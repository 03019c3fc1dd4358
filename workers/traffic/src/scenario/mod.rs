//! The multi-week scenario (`helios traffic --scenario weeks`): days of request events from
//! several services with a daily and a weekly shape, noise and per-service differences, plus a
//! fixed schedule of incidents of every kind, and the ground-truth labels for them.
//!
//! Simulated time is event time: a day is 86,400 s. Day 0 of the scenario is a Monday starting
//! at 00:00 (the default start, [`DEFAULT_START_MS`], is Monday 2026-01-05 00:00 UTC); the daily
//! and weekly shapes follow the time since the start, so they stay aligned with the schedule
//! whatever `start_ms` is.
//!
//! Every service draws from its own random stream, and every request consumes the same random
//! numbers whether or not an incident touches it, so outside the incident windows the events
//! are identical with and without incidents, and a run with fewer services or days is a prefix
//! of a larger one. The same seed gives byte-identical output.

use crate::incident::{Incident, Kind};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::Path;

mod event;
mod labels;
mod schedule;
mod services;

pub use event::Event;
pub use labels::{LabelledIncident, ScenarioLabels};
pub use schedule::default_incidents;
pub use services::{ScenarioEndpoint, ScenarioService, Shape, scenario_services};

/// Default scenario start: Monday 2026-01-05 00:00:00 UTC, epoch milliseconds.
pub const DEFAULT_START_MS: i64 = 1_767_571_200_000;
/// Default multiplier on the nominal service rates (0.8–5 events/s): about 2.5 million events
/// over 14 days with 5 services.
pub const DEFAULT_EVENTS_SCALE: f64 = 0.15;
/// Seconds in a simulated day.
pub const DAY_SECS: u64 = 86_400;
/// Probability of a non-error client status (404, or 401 for auth) on a normal request.
const CLIENT_ERROR_RATE: f64 = 0.01;
/// Exponent of the load effect on latency: the median is ×(load / average load)^this.
const LOAD_EXPONENT: f64 = 0.15;
/// Minute-level rate noise (log scale): standard deviation and correlation time in minutes.
const NOISE_SIGMA: f64 = 0.06;
const NOISE_MINUTES: f64 = 20.0;
/// Day-to-day level noise (log scale).
const DAY_SIGMA: f64 = 0.03;
/// Natural slow tail: this fraction of requests is ×2–5 slower (GC pauses, cold caches).
const NATURAL_TAIL: f64 = 0.003;
/// Latency of a 503 relative to a normal request (failing fast at the load balancer).
const FAST_FAIL: f64 = 0.2;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioConfig {
    /// Simulated days.
    pub days: f64,
    /// Number of services (see [`scenario_services`]).
    pub services: usize,
    /// Random seed (changes the noise, never the schedule).
    pub seed: u64,
    /// Multiplier on the nominal service rates.
    pub events_scale: f64,
    /// Event time of the start (a Monday 00:00 of the scenario), epoch ms.
    pub start_ms: i64,
    /// Incidents; `None` is the default schedule, `Some(vec![])` a run without incidents.
    pub incidents: Option<Vec<Incident>>,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        Self {
            days: 14.0,
            services: 5,
            seed: 42,
            events_scale: DEFAULT_EVENTS_SCALE,
            start_ms: DEFAULT_START_MS,
            incidents: None,
        }
    }
}

/// Why a scenario cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// `days` is not a positive number.
    #[error("--days must be positive and finite (got {0})")]
    Days(f64),
    /// Zero services.
    #[error("--services must be at least 1")]
    NoServices,
    /// The events scale is not a positive number.
    #[error("--events-per-window-scale must be positive and finite (got {0})")]
    Scale(f64),
    /// An incident names a service the scenario does not have.
    #[error("incident {spec}: no service {service:?} in the scenario (it has {known})")]
    UnknownService {
        /// The incident.
        spec: String,
        /// The service it names.
        service: String,
        /// The scenario's services.
        known: String,
    },
    /// An incident names an endpoint the service does not have.
    #[error("incident {spec}: service {service} has no endpoint {endpoint:?} (it has {known})")]
    UnknownEndpoint {
        /// The incident.
        spec: String,
        /// The service.
        service: String,
        /// The endpoint it names.
        endpoint: String,
        /// The service's endpoints.
        known: String,
    },
    /// An incident starts after the scenario ends.
    #[error("incident {spec}: starts after the scenario ends ({end_secs} s)")]
    OutOfRange {
        /// The incident.
        spec: String,
        /// The scenario's length in seconds.
        end_secs: u64,
    },
}

/// An incident resolved against the scenario: indices and times relative to the start, in ms.
#[derive(Debug, Clone)]
struct Resolved {
    incident: Incident,
    service: usize,
    endpoint: Option<usize>,
    start: u64,
    end: u64,
}

impl Resolved {
    fn touches(&self, ts: u64, endpoint: usize) -> bool {
        ts >= self.start && ts < self.end && self.endpoint.is_none_or(|e| e == endpoint)
    }
}

/// A validated scenario, ready to generate.
#[derive(Debug, Clone)]
pub struct Scenario {
    services: Vec<ScenarioService>,
    /// Cumulative normalised endpoint shares per service.
    cumulative: Vec<Vec<f64>>,
    shape_means: Vec<f64>,
    incidents: Vec<Resolved>,
    seed: u64,
    scale: f64,
    start_ms: i64,
    secs: u64,
}

/// Per-service generation state.
struct State {
    rng: Rng,
    surge: Rng,
    noise: f64,
    day_level: f64,
    /// Expected events per second this minute.
    rate: f64,
    /// Latency multiplier from the load this minute.
    load: f64,
    /// Incidents of this service (indices into `Scenario::incidents`) overlapping this second.
    active: Vec<usize>,
    /// Seconds at which `active` changes, ascending; `next` is the first not yet passed.
    changes: Vec<u64>,
    next: usize,
}

/// One event before it is borrowed into an [`Event`].
#[derive(Debug, Clone, Copy)]
struct Rec {
    ts: u64,
    service: u16,
    seq: u32,
    endpoint: u16,
    status: u16,
    tenths: u32,
}

impl Scenario {
    /// Validate a configuration and resolve its incidents.
    pub fn new(cfg: &ScenarioConfig) -> Result<Self, ScenarioError> {
        if !(cfg.days.is_finite() && cfg.days > 0.0) {
            return Err(ScenarioError::Days(cfg.days));
        }
        if cfg.services == 0 {
            return Err(ScenarioError::NoServices);
        }
        if !(cfg.events_scale.is_finite() && cfg.events_scale > 0.0) {
            return Err(ScenarioError::Scale(cfg.events_scale));
        }
        let services = scenario_services(cfg.services);
        let secs = (cfg.days * DAY_SECS as f64).round().max(1.0) as u64;
        let incidents = match &cfg.incidents {
            Some(list) => list.clone(),
            None => default_incidents(cfg.days, &services),
        };
        let names = || {
            services
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut resolved = Vec::with_capacity(incidents.len());
        for incident in incidents {
            let spec = incident.to_string();
            let service = services
                .iter()
                .position(|s| s.name == incident.service)
                .ok_or_else(|| ScenarioError::UnknownService {
                    spec: spec.clone(),
                    service: incident.service.clone(),
                    known: names(),
                })?;
            let eps = &services[service].endpoints;
            let endpoint = match &incident.endpoint {
                None => None,
                Some(ep) => Some(eps.iter().position(|e| &e.path == ep).ok_or_else(|| {
                    ScenarioError::UnknownEndpoint {
                        spec: spec.clone(),
                        service: incident.service.clone(),
                        endpoint: ep.clone(),
                        known: eps
                            .iter()
                            .map(|e| e.path.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                })?),
            };
            let start = (incident.at_secs * 1000.0).round() as u64;
            let end = ((incident.at_secs + incident.for_secs) * 1000.0).round() as u64;
            if start >= secs * 1000 {
                return Err(ScenarioError::OutOfRange {
                    spec,
                    end_secs: secs,
                });
            }
            resolved.push(Resolved {
                incident,
                service,
                endpoint,
                start,
                end: end.min(secs * 1000),
            });
        }
        let cumulative = services
            .iter()
            .map(|s| {
                let total: f64 = s.endpoints.iter().map(|e| e.share).sum();
                let mut acc = 0.0;
                s.endpoints
                    .iter()
                    .map(|e| {
                        acc += e.share / total;
                        acc
                    })
                    .collect()
            })
            .collect();
        Ok(Self {
            shape_means: services.iter().map(|s| s.shape.raw_mean()).collect(),
            services,
            cumulative,
            incidents: resolved,
            seed: cfg.seed,
            scale: cfg.events_scale,
            start_ms: cfg.start_ms,
            secs,
        })
    }

    /// The services.
    pub fn services(&self) -> &[ScenarioService] {
        &self.services
    }

    /// The incidents, as configured (times relative to the start).
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.iter().map(|r| &r.incident)
    }

    /// The ground truth of this scenario.
    pub fn labels(&self) -> ScenarioLabels {
        ScenarioLabels {
            start_ms: self.start_ms,
            end_ms: self.start_ms + (self.secs * 1000) as i64,
            seed: self.seed,
            services: self.services.iter().map(|s| s.name.clone()).collect(),
            incidents: self
                .incidents
                .iter()
                .enumerate()
                .map(|(n, r)| LabelledIncident {
                    id: format!("inc-{:02}", n + 1),
                    kind: r.incident.kind,
                    service: r.incident.service.clone(),
                    endpoint: r.incident.endpoint.clone(),
                    start_ms: self.start_ms + r.start as i64,
                    end_ms: self.start_ms + r.end as i64,
                    factor: r.incident.factor,
                    spec: r.incident.to_string(),
                })
                .collect(),
        }
    }

    /// The expected (noise-free, incident-free) events per second of service `s` at `t_secs`.
    pub fn expected_rate(&self, s: usize, t_secs: f64) -> f64 {
        let svc = &self.services[s];
        svc.rate * self.scale * svc.shape.factor_with_mean(t_secs, self.shape_means[s])
    }

    /// Generate every event in non-decreasing timestamp order into `sink`; stops at the first
    /// error of the sink. Returns the number of events.
    pub fn for_each_event<E>(
        &self,
        mut sink: impl FnMut(&Event<'_>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut states: Vec<State> = (0..self.services.len())
            .map(|k| {
                let mut h =
                    Rng::new(self.seed ^ 0xA24B_AED4_963E_E407u64.wrapping_mul(k as u64 + 1));
                let mut changes: Vec<u64> = self
                    .incidents
                    .iter()
                    .filter(|r| r.service == k)
                    .flat_map(|r| [r.start / 1000, r.end.div_ceil(1000)])
                    .collect();
                changes.sort_unstable();
                changes.dedup();
                State {
                    rng: Rng::new(h.next_u64()),
                    surge: Rng::new(h.next_u64()),
                    noise: 0.0,
                    day_level: 0.0,
                    rate: 0.0,
                    load: 1.0,
                    active: Vec::new(),
                    changes,
                    next: 0,
                }
            })
            .collect();
        let rho = (-1.0 / NOISE_MINUTES).exp();
        let innovation = (1.0 - rho * rho).sqrt() * NOISE_SIGMA;
        let mut chunk: Vec<Rec> = Vec::with_capacity(1024);
        let mut count = 0u64;
        for sec in 0..self.secs {
            if sec % 60 == 0 {
                for (k, st) in states.iter_mut().enumerate() {
                    if sec % DAY_SECS == 0 {
                        st.day_level = DAY_SIGMA * st.rng.normal();
                    }
                    st.noise = rho * st.noise + innovation * st.rng.normal();
                    let svc = &self.services[k];
                    let load = svc
                        .shape
                        .factor_with_mean(sec as f64 + 30.0, self.shape_means[k])
                        * (st.noise + st.day_level).exp();
                    st.rate = svc.rate * self.scale * load;
                    st.load = load.powf(LOAD_EXPONENT);
                }
            }
            chunk.clear();
            for (k, st) in states.iter_mut().enumerate() {
                if st.next < st.changes.len() && st.changes[st.next] <= sec {
                    while st.next < st.changes.len() && st.changes[st.next] <= sec {
                        st.next += 1;
                    }
                    let (lo, hi) = (sec * 1000, sec * 1000 + 1000);
                    st.active = (0..self.incidents.len())
                        .filter(|&i| {
                            let r = &self.incidents[i];
                            r.service == k && r.start < hi && r.end > lo
                        })
                        .collect();
                }
                let n = st.rng.poisson(st.rate);
                for _ in 0..n {
                    let seq = chunk.len() as u32;
                    if let Some(rec) = self.draw(k, st, sec, seq, None) {
                        chunk.push(rec);
                    }
                }
                self.surge(k, st, sec, &mut chunk);
            }
            chunk.sort_unstable_by_key(|r| (r.ts, r.service, r.seq));
            for r in &chunk {
                let svc = &self.services[usize::from(r.service)];
                sink(&Event {
                    timestamp: self.start_ms + r.ts as i64,
                    service: &svc.name,
                    endpoint: &svc.endpoints[usize::from(r.endpoint)].path,
                    status: r.status,
                    latency_ms: f64::from(r.tenths) / 10.0,
                    region: &svc.region,
                })?;
            }
            count += chunk.len() as u64;
        }
        Ok(count)
    }

    /// Extra events of `volume` incidents with a factor above 1 (from a separate stream, so the
    /// normal traffic is unchanged).
    fn surge(&self, k: usize, st: &mut State, sec: u64, chunk: &mut Vec<Rec>) {
        for a in 0..st.active.len() {
            let r = &self.incidents[st.active[a]];
            if r.incident.kind != Kind::Volume || r.incident.factor <= 1.0 {
                continue;
            }
            let share = r.endpoint.map_or(1.0, |e| {
                let c = &self.cumulative[k];
                c[e] - if e == 0 { 0.0 } else { c[e - 1] }
            });
            let n = st
                .surge
                .poisson(st.rate * (r.incident.factor - 1.0) * share);
            for _ in 0..n {
                let seq = chunk.len() as u32;
                let mut rng = st.surge.clone();
                let rec = self.draw_with(k, st, &mut rng, sec, seq, r.endpoint, true);
                st.surge = rng;
                if let Some(rec) = rec.filter(|rec| rec.ts >= r.start && rec.ts < r.end) {
                    chunk.push(rec);
                }
            }
        }
    }

    fn draw(&self, k: usize, st: &mut State, sec: u64, seq: u32, ep: Option<usize>) -> Option<Rec> {
        let mut rng = st.rng.clone();
        let rec = self.draw_with(k, st, &mut rng, sec, seq, ep, false);
        st.rng = rng;
        rec
    }

    /// One request of service `k` in second `sec`: always the same random draws, then the
    /// active incidents transform it (or drop it, `None`).
    #[allow(clippy::too_many_arguments)]
    fn draw_with(
        &self,
        k: usize,
        st: &State,
        rng: &mut Rng,
        sec: u64,
        seq: u32,
        force_endpoint: Option<usize>,
        surge: bool,
    ) -> Option<Rec> {
        let svc = &self.services[k];
        let u_ms = rng.uniform();
        let u_ep = rng.uniform();
        let z = rng.normal();
        let u_tail = rng.uniform();
        let u_lat = rng.uniform();
        let u_err = rng.uniform();
        let u_code = rng.uniform();
        let u_keep = rng.uniform();

        let ts = sec * 1000 + ((u_ms * 1000.0) as u64).min(999);
        let cumulative = &self.cumulative[k];
        let endpoint = force_endpoint.unwrap_or_else(|| {
            cumulative
                .iter()
                .position(|&c| u_ep < c)
                .unwrap_or(cumulative.len() - 1)
        });
        let mut latency = svc.latency_ms
            * svc.endpoints[endpoint].latency_factor
            * st.load
            * (svc.latency_sigma * z).exp();
        if u_tail < NATURAL_TAIL {
            latency *= 2.0 + 3.0 * u_tail / NATURAL_TAIL;
        }
        let mut p_error = svc.error_rate;
        let mut p_unavailable = 0.0;
        for &a in &st.active {
            let r = &self.incidents[a];
            if !r.touches(ts, endpoint) {
                continue;
            }
            let i = &r.incident;
            match i.kind {
                Kind::Latency if u_lat < i.fraction => latency *= i.factor,
                Kind::Latency => {}
                Kind::Creep => latency *= i.creep_factor(ts as f64 / 1000.0),
                Kind::Errors => p_error = p_error.max(i.factor),
                Kind::Partial => p_unavailable = f64::max(p_unavailable, i.factor),
                Kind::Drop | Kind::Volume if !surge && u_keep >= i.factor => return None,
                Kind::Drop | Kind::Volume => {}
            }
        }
        let status = if u_err < p_unavailable {
            503
        } else if u_err < p_error {
            if u_code < 0.6 { 500 } else { 503 }
        } else if u_code < CLIENT_ERROR_RATE {
            svc.client_error
        } else {
            200
        };
        if status == 503 {
            latency *= FAST_FAIL;
        }
        let tenths = (latency * 10.0).round().clamp(1.0, f64::from(u32::MAX)) as u32;
        Some(Rec {
            ts,
            service: k as u16,
            seq,
            endpoint: endpoint as u16,
            status,
            tenths,
        })
    }

    /// Write every event as NDJSON to `w` (buffered internally). Returns the number of events.
    pub fn write_ndjson(&self, mut w: impl Write) -> io::Result<u64> {
        const FLUSH_AT: usize = 1 << 18;
        let mut buf = Vec::with_capacity(FLUSH_AT + 512);
        let n = self.for_each_event(|e| {
            e.write_json(&mut buf);
            if buf.len() >= FLUSH_AT {
                w.write_all(&buf)?;
                buf.clear();
            }
            Ok::<(), io::Error>(())
        })?;
        w.write_all(&buf)?;
        w.flush()?;
        Ok(n)
    }
}

/// Generate the scenario of `cfg` in-process: every event, in timestamp order, into `sink`.
/// Returns the labels.
pub fn scenario_events(
    cfg: &ScenarioConfig,
    mut sink: impl FnMut(&Event<'_>),
) -> Result<ScenarioLabels, ScenarioError> {
    let scenario = Scenario::new(cfg)?;
    let Ok(_) = scenario.for_each_event(|e| {
        sink(e);
        Ok::<(), std::convert::Infallible>(())
    });
    Ok(scenario.labels())
}

/// Write the scenario of `cfg` as NDJSON to `w`. Returns the number of events and the labels.
pub fn write_scenario(cfg: &ScenarioConfig, w: impl Write) -> io::Result<(u64, ScenarioLabels)> {
    let scenario = Scenario::new(cfg).map_err(io::Error::other)?;
    let n = scenario.write_ndjson(w)?;
    Ok((n, scenario.labels()))
}

#[cfg(test)]
mod tests {
    use super::schedule::SCHEDULE;
    use super::*;

    #[test]
    fn json_lines_match_serde() {
        let e = Event {
            timestamp: 1_767_571_200_123,
            service: "che\"ck\\out\n",
            endpoint: "/pay",
            status: 503,
            latency_ms: 5.0,
            region: "eu-west-1",
        };
        let mut out = Vec::new();
        e.write_json(&mut out);
        e.write_json(&mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"timestamp": 1_767_571_200_123_i64, "service": "che\"ck\\out\n",
                "endpoint": "/pay", "status": 503, "latency_ms": 5.0,
                "attributes": {"region": "eu-west-1"}})
        );
        for (lat, text) in [
            (123.4, "123.4"),
            (0.1, "0.1"),
            (10.0, "10.0"),
            (1234.56, "1234.6"),
        ] {
            let mut out = Vec::new();
            Event {
                latency_ms: lat,
                ..e
            }
            .write_json(&mut out);
            let line = String::from_utf8(out).unwrap();
            assert!(line.contains(&format!("\"latency_ms\":{text},")), "{line}");
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(serde_json::to_string(&v["latency_ms"]).unwrap(), text);
        }
    }

    #[test]
    fn the_default_schedule_is_where_it_claims() {
        let services = scenario_services(5);
        let all = default_incidents(14.0, &services);
        assert_eq!(all.len(), SCHEDULE.len());
        let kinds: std::collections::HashSet<_> = all.iter().map(|i| i.kind).collect();
        for k in [
            Kind::Drop,
            Kind::Errors,
            Kind::Latency,
            Kind::Creep,
            Kind::Partial,
        ] {
            assert!(kinds.contains(&k), "{k} missing");
        }
        let s = Scenario::new(&ScenarioConfig::default()).unwrap();
        for (p, i) in SCHEDULE.iter().zip(&all) {
            assert!(i.at_secs >= 3.0 * DAY_SECS as f64, "{i}: before day 4");
            assert!(
                i.at_secs + i.for_secs <= 14.0 * DAY_SECS as f64,
                "{i}: after day 14"
            );
            let k = services.iter().position(|s| s.name == i.service).unwrap();
            let peak = (0..1440)
                .map(|m| {
                    s.expected_rate(
                        k,
                        (i.at_secs / 86_400.0).floor() * 86_400.0 + m as f64 * 60.0,
                    )
                })
                .fold(0.0, f64::max);
            let mid = s.expected_rate(k, i.at_secs + i.for_secs.min(3600.0) / 2.0);
            if p.9 {
                assert!(mid > 0.75 * peak, "{i}: not at peak ({mid} vs {peak})");
            } else {
                assert!(mid < 0.75 * peak, "{i}: at peak ({mid} vs {peak})");
            }
        }
        let first_week = default_incidents(7.0, &services[..2]);
        assert!(
            first_week
                .iter()
                .all(|i| i.at_secs < 7.0 * 86_400.0 && i.service != "search")
        );
        assert_eq!(first_week.len(), 3);
        let labels = s.labels();
        assert_eq!(labels.incidents[0].id, "inc-01");
        assert_eq!(labels.incidents[12].id, "inc-13");
        assert_eq!(labels.end_ms - labels.start_ms, 14 * 86_400_000);
    }

    #[test]
    fn config_errors() {
        let bad = |f: fn(&mut ScenarioConfig)| {
            let mut c = ScenarioConfig::default();
            f(&mut c);
            Scenario::new(&c).unwrap_err().to_string()
        };
        assert!(bad(|c| c.days = 0.0).contains("--days"));
        assert!(bad(|c| c.services = 0).contains("--services"));
        assert!(bad(|c| c.events_scale = f64::NAN).contains("scale"));
        assert!(
            bad(|c| c.incidents = Some(vec!["drop:nope:at=1:for=1:x=0.5".parse().unwrap()]))
                .contains("no service \"nope\"")
        );
        assert!(
            bad(|c| {
                c.incidents = Some(vec![
                    "partial:checkout:at=1:for=1:x=0.5:ep=/x".parse().unwrap(),
                ])
            })
            .contains("/cart, /pay, /confirm")
        );
        assert!(
            bad(|c| c.incidents = Some(vec!["drop:auth:at=15d:for=1:x=0.5".parse().unwrap()]))
                .contains("after the scenario ends")
        );
    }
}
