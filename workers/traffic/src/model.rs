//! The traffic model of the demo mode: services with a diurnal rate, log-normal latencies,
//! background errors, and incidents layered on top. Pure and seeded: the same seed gives the
//! same events. (The multi-week scenario with labels is in [`crate::scenario`].)

use crate::incident::{Incident, Kind};
use crate::rng::Rng;
use serde_json::{Value, json};

/// One service's normal behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceProfile {
    /// Service name (the event's `service`).
    pub name: String,
    /// Endpoints chosen uniformly.
    pub endpoints: Vec<String>,
    /// Mean events per second at the daily average.
    pub rate: f64,
    /// Median latency in milliseconds.
    pub latency_ms: f64,
    /// Log-normal spread of latency.
    pub latency_sigma: f64,
    /// Background probability of an error (status 500).
    pub error_rate: f64,
}

impl ServiceProfile {
    fn new(
        name: &str,
        endpoints: &[&str],
        rate: f64,
        latency_ms: f64,
        sigma: f64,
        error_rate: f64,
    ) -> Self {
        Self {
            name: name.into(),
            endpoints: endpoints.iter().map(|e| (*e).to_string()).collect(),
            rate,
            latency_ms,
            latency_sigma: sigma,
            error_rate,
        }
    }
}

/// A shop's services: an API, auth, search, a catalog and a batch job.
pub fn default_services() -> Vec<ServiceProfile> {
    vec![
        ServiceProfile::new(
            "checkout",
            &["/cart", "/pay", "/confirm"],
            40.0,
            120.0,
            0.35,
            0.004,
        ),
        ServiceProfile::new("auth", &["/login", "/token"], 60.0, 35.0, 0.25, 0.002),
        ServiceProfile::new("search", &["/search", "/suggest"], 80.0, 60.0, 0.45, 0.003),
        ServiceProfile::new("catalog", &["/items", "/items/:id"], 50.0, 25.0, 0.3, 0.001),
        ServiceProfile::new("billing-batch", &["/run"], 8.0, 900.0, 0.2, 0.002),
    ]
}

/// The whole model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Services.
    pub services: Vec<ServiceProfile>,
    /// Injected incidents.
    pub incidents: Vec<Incident>,
    /// Length of a simulated day in seconds (the diurnal period).
    pub day_secs: f64,
    /// Diurnal amplitude in [0, 1): rate varies between (1-a) and (1+a) of the mean.
    pub diurnal_amplitude: f64,
    /// Multiplier on every rate.
    pub rate_scale: f64,
    /// Event time of simulated second 0, epoch milliseconds.
    pub start_ms: i64,
    rng: Rng,
}

impl Model {
    /// A model with the default services and no incident.
    pub fn new(seed: u64, start_ms: i64) -> Self {
        Self {
            services: default_services(),
            incidents: Vec::new(),
            day_secs: 600.0,
            diurnal_amplitude: 0.3,
            rate_scale: 1.0,
            start_ms,
            rng: Rng::new(seed),
        }
    }

    /// The diurnal multiplier at simulated second `t` (lowest at t = 0, peak at half a day).
    pub fn diurnal(&self, t: f64) -> f64 {
        1.0 - self.diurnal_amplitude * (std::f64::consts::TAU * t / self.day_secs).cos()
    }

    /// The factor of the first whole-service incident of `kind` on `service` active at `t`
    /// (`drop` counts as `volume`; a latency tail with `p < 1` is applied per request instead).
    fn effect(&self, service: &str, kind: Kind, t: f64) -> Option<f64> {
        self.incidents
            .iter()
            .find(|i| {
                (i.kind == kind || (kind == Kind::Volume && i.kind == Kind::Drop))
                    && i.service == service
                    && i.endpoint.is_none()
                    && (i.kind != Kind::Latency || i.fraction >= 1.0)
                    && i.active(t)
            })
            .map(|i| i.factor)
    }

    /// Incidents applied per request after the endpoint is known (extra random draws only
    /// while one is active, so the old kinds give the same events as before).
    fn per_request(&self, service: &str, t: f64) -> impl Iterator<Item = &Incident> {
        self.incidents.iter().filter(move |i| {
            i.service == service
                && i.active(t)
                && (i.endpoint.is_some()
                    || (i.kind == Kind::Latency && i.fraction < 1.0)
                    || matches!(i.kind, Kind::Creep | Kind::Partial))
        })
    }

    /// Incidents active at `t`.
    pub fn active_incidents(&self, t: f64) -> Vec<&Incident> {
        self.incidents.iter().filter(|i| i.active(t)).collect()
    }

    /// Events with event time in simulated `[t0, t1)`, sorted by time.
    pub fn generate(&mut self, t0: f64, t1: f64) -> Vec<Value> {
        let mut out = Vec::new();
        let mid = (t0 + t1) / 2.0;
        for s in 0..self.services.len() {
            let svc = self.services[s].clone();
            let volume = self.effect(&svc.name, Kind::Volume, mid).unwrap_or(1.0);
            let lambda =
                svc.rate * self.rate_scale * self.diurnal(mid) * volume * (t1 - t0).max(0.0);
            let n = self.rng.poisson(lambda);
            for _ in 0..n {
                let t = t0 + self.rng.uniform() * (t1 - t0);
                let slow = self.effect(&svc.name, Kind::Latency, t).unwrap_or(1.0);
                let p_err = self
                    .effect(&svc.name, Kind::Errors, t)
                    .unwrap_or(svc.error_rate);
                let latency = svc.latency_ms * (svc.latency_sigma * self.rng.normal()).exp() * slow;
                let error = self.rng.uniform() < p_err;
                let status = if error {
                    500
                } else if self.rng.uniform() < 0.01 {
                    404
                } else {
                    200
                };
                let endpoint =
                    &svc.endpoints[(self.rng.next_u64() % svc.endpoints.len() as u64) as usize];
                let (mut latency, mut status, mut keep) = (latency, status, true);
                let special: Vec<Incident> = self.per_request(&svc.name, t).cloned().collect();
                for i in special.iter().filter(|i| i.matches_endpoint(endpoint)) {
                    let scoped = i.endpoint.is_some();
                    match i.kind {
                        Kind::Creep => latency *= i.creep_factor(t),
                        Kind::Latency if self.rng.uniform() < i.fraction => latency *= i.factor,
                        Kind::Latency => {}
                        Kind::Partial => {
                            if self.rng.uniform() < i.factor {
                                status = 503;
                            }
                        }
                        Kind::Errors if scoped && self.rng.uniform() < i.factor => status = 500,
                        Kind::Volume | Kind::Drop if scoped => {
                            keep &= self.rng.uniform() < i.factor;
                        }
                        Kind::Errors | Kind::Volume | Kind::Drop => {}
                    }
                }
                if !keep {
                    continue;
                }
                out.push((
                    t,
                    json!({
                        "timestamp": self.start_ms + (t * 1000.0) as i64,
                        "service": svc.name,
                        "endpoint": endpoint,
                        "status": status,
                        "latency_ms": (latency * 10.0).round() / 10.0,
                        "attributes": {"region": "eu-west-1"},
                    }),
                ));
            }
        }
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.into_iter().map(|(_, v)| v).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_service<'a>(events: &'a [Value], s: &str) -> Vec<&'a Value> {
        events.iter().filter(|e| e["service"] == s).collect()
    }

    fn median_latency(events: &[&Value]) -> f64 {
        let mut l: Vec<f64> = events
            .iter()
            .map(|e| e["latency_ms"].as_f64().unwrap())
            .collect();
        l.sort_by(f64::total_cmp);
        l[l.len() / 2]
    }

    #[test]
    fn same_seed_same_events() {
        let a = Model::new(7, 0).generate(0.0, 10.0);
        let b = Model::new(7, 0).generate(0.0, 10.0);
        let c = Model::new(8, 0).generate(0.0, 10.0);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(
            a.windows(2)
                .all(|w| w[0]["timestamp"].as_i64() <= w[1]["timestamp"].as_i64())
        );
    }

    #[test]
    fn volume_follows_the_day() {
        let mut m = Model::new(1, 0);
        let night = m.generate(0.0, 30.0).len() as f64;
        let noon = m.generate(285.0, 315.0).len() as f64;
        assert!(noon > night * 1.5, "night {night}, noon {noon}");
    }

    #[test]
    fn incidents_change_the_right_service() {
        let mut m = Model::new(3, 0);
        m.incidents = vec![
            "latency:checkout:at=100:for=50:x=8".parse().unwrap(),
            "errors:auth:at=100:for=50:x=0.5".parse().unwrap(),
            "volume:search:at=100:for=50:x=0.1".parse().unwrap(),
        ];
        let before = m.generate(40.0, 90.0);
        let during = m.generate(100.0, 150.0);
        let ratio = median_latency(&by_service(&during, "checkout"))
            / median_latency(&by_service(&before, "checkout"));
        assert!(ratio > 5.0, "checkout latency x{ratio}");
        let other = median_latency(&by_service(&during, "catalog"))
            / median_latency(&by_service(&before, "catalog"));
        assert!((0.7..1.4).contains(&other), "catalog untouched: x{other}");
        let auth = by_service(&during, "auth");
        let errors = auth.iter().filter(|e| e["status"] == 500).count() as f64 / auth.len() as f64;
        assert!(errors > 0.35, "auth error rate {errors}");
        let drop =
            by_service(&during, "search").len() as f64 / by_service(&before, "search").len() as f64;
        assert!(drop < 0.3, "search volume x{drop}");
        assert_eq!(m.active_incidents(120.0).len(), 3);
    }

    #[test]
    fn scenario_kinds_work_in_the_demo_mode() {
        let mut m = Model::new(5, 0);
        m.incidents = vec![
            "drop:search:at=100:for=50:x=0.3".parse().unwrap(),
            "partial:checkout:at=100:for=50:x=1:ep=/pay"
                .parse()
                .unwrap(),
            "creep:catalog:at=100:for=50:x=3:ramp=50".parse().unwrap(),
        ];
        let before = m.generate(40.0, 90.0);
        let during = m.generate(100.0, 150.0);
        let drop =
            by_service(&during, "search").len() as f64 / by_service(&before, "search").len() as f64;
        assert!(drop < 0.45, "search volume x{drop}");
        let checkout = by_service(&during, "checkout");
        assert!(
            checkout
                .iter()
                .all(|e| (e["endpoint"] == "/pay") == (e["status"] == 503))
        );
        let late: Vec<&Value> = by_service(&during, "catalog")
            .into_iter()
            .filter(|e| e["timestamp"].as_i64().unwrap() >= 135_000)
            .collect();
        let creep = median_latency(&late) / median_latency(&by_service(&before, "catalog"));
        assert!(creep > 2.0, "catalog creep x{creep}");
    }
}
