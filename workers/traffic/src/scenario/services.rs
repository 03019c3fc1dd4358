//! The scenario's services: their endpoints, rates and daily/weekly shapes.

use super::*;

/// One endpoint of a scenario service.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioEndpoint {
    /// The event's `endpoint`.
    pub path: String,
    /// Share of the service's requests (shares are normalised).
    pub share: f64,
    /// Median latency relative to the service's.
    pub latency_factor: f64,
}

/// How a service's traffic moves through the day and the week: a night floor plus a midday
/// and an evening bump (Gaussian in the hour of day), normalised to a daily mean of 1, times a
/// weekday factor (Mon 1.02, Tue–Thu 1, Fri 0.96, Sat `weekend`, Sun 0.95 × `weekend`).
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Night level relative to the bumps' weights.
    pub night: f64,
    /// Hour of the midday peak.
    pub midday_hour: f64,
    /// Width (standard deviation, hours) of the midday bump.
    pub midday_width: f64,
    /// Weight of the midday bump.
    pub midday_weight: f64,
    /// Hour of the evening peak.
    pub evening_hour: f64,
    /// Width (hours) of the evening bump.
    pub evening_width: f64,
    /// Weight of the evening bump.
    pub evening_weight: f64,
    /// Saturday's level relative to a weekday.
    pub weekend: f64,
    /// Hours the daily shape starts later on weekends.
    pub weekend_shift: f64,
}

impl Shape {
    fn raw(&self, hour: f64) -> f64 {
        let bump = |mu: f64, width: f64| {
            let d = (hour - mu + 36.0).rem_euclid(24.0) - 12.0;
            (-d * d / (2.0 * width * width)).exp()
        };
        self.night
            + self.midday_weight * bump(self.midday_hour, self.midday_width)
            + self.evening_weight * bump(self.evening_hour, self.evening_width)
    }

    pub(super) fn raw_mean(&self) -> f64 {
        (0..1440).map(|m| self.raw(m as f64 / 60.0)).sum::<f64>() / 1440.0
    }

    /// The rate multiplier `t_secs` after the scenario's start (Monday 00:00): daily mean 1 on
    /// weekdays.
    pub fn factor(&self, t_secs: f64) -> f64 {
        self.factor_with_mean(t_secs, self.raw_mean())
    }

    pub(super) fn factor_with_mean(&self, t_secs: f64, raw_mean: f64) -> f64 {
        let day = (t_secs / DAY_SECS as f64).floor();
        let dow = (day as i64).rem_euclid(7);
        let weekend = dow >= 5;
        let mut hour = (t_secs - day * DAY_SECS as f64) / 3600.0;
        if weekend {
            hour -= self.weekend_shift;
        }
        let weekly = match dow {
            0 => 1.02,
            4 => 0.96,
            5 => self.weekend,
            6 => 0.95 * self.weekend,
            _ => 1.0,
        };
        self.raw(hour) / raw_mean * weekly
    }
}

/// One service of the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioService {
    /// The event's `service`.
    pub name: String,
    /// Endpoints with their shares.
    pub endpoints: Vec<ScenarioEndpoint>,
    /// Nominal mean events per second on a weekday (before the events scale).
    pub rate: f64,
    /// Median latency in ms at average load.
    pub latency_ms: f64,
    /// Log-normal spread of latency.
    pub latency_sigma: f64,
    /// Background probability of a 5xx (500 or 503).
    pub error_rate: f64,
    /// The client-error status it answers (not an error: 404, 401 for auth).
    pub client_error: u16,
    /// The `region` attribute.
    pub region: String,
    /// Daily and weekly shape.
    pub shape: Shape,
}

#[allow(clippy::too_many_arguments)]
fn service(
    name: &str,
    endpoints: &[(&str, f64, f64)],
    rate: f64,
    latency_ms: f64,
    latency_sigma: f64,
    error_rate: f64,
    region: &str,
    shape: Shape,
) -> ScenarioService {
    ScenarioService {
        name: name.into(),
        endpoints: endpoints
            .iter()
            .map(|&(path, share, latency_factor)| ScenarioEndpoint {
                path: path.into(),
                share,
                latency_factor,
            })
            .collect(),
        rate,
        latency_ms,
        latency_sigma,
        error_rate,
        client_error: if name.starts_with("auth") { 401 } else { 404 },
        region: region.into(),
        shape,
    }
}

#[allow(clippy::too_many_arguments)]
fn shape(
    night: f64,
    (midday_hour, midday_width, midday_weight): (f64, f64, f64),
    (evening_hour, evening_width, evening_weight): (f64, f64, f64),
    weekend: f64,
    weekend_shift: f64,
) -> Shape {
    Shape {
        night,
        midday_hour,
        midday_width,
        midday_weight,
        evening_hour,
        evening_width,
        evening_weight,
        weekend,
        weekend_shift,
    }
}

/// The five scenario services (a shop: checkout, auth, search, catalog, notify), then variants
/// `checkout-2`, `auth-2`, … (shifted phase, lower rate) when more are asked for.
pub fn scenario_services(n: usize) -> Vec<ScenarioService> {
    let base = [
        service(
            "checkout",
            &[
                ("/cart", 0.5, 0.6),
                ("/pay", 0.2, 1.8),
                ("/confirm", 0.3, 1.0),
            ],
            2.0,
            120.0,
            0.35,
            0.004,
            "eu-west-1",
            shape(0.12, (12.5, 3.0, 1.0), (20.0, 2.0, 0.9), 0.8, 1.5),
        ),
        service(
            "auth",
            &[
                ("/login", 0.3, 1.6),
                ("/token", 0.6, 0.7),
                ("/logout", 0.1, 0.5),
            ],
            4.5,
            35.0,
            0.25,
            0.002,
            "eu-west-1",
            shape(0.10, (10.0, 3.5, 1.0), (19.0, 2.0, 0.35), 0.55, 1.0),
        ),
        service(
            "search",
            &[("/search", 0.7, 1.0), ("/suggest", 0.3, 0.4)],
            5.0,
            60.0,
            0.45,
            0.003,
            "eu-central-1",
            shape(0.18, (14.0, 3.5, 0.9), (21.0, 2.5, 1.0), 0.85, 1.5),
        ),
        service(
            "catalog",
            &[
                ("/items", 0.45, 1.2),
                ("/item", 0.4, 0.8),
                ("/reviews", 0.1, 1.5),
                ("/images", 0.05, 2.0),
            ],
            3.0,
            25.0,
            0.3,
            0.001,
            "eu-central-1",
            shape(0.15, (12.0, 3.0, 1.0), (20.5, 2.5, 0.8), 0.7, 1.0),
        ),
        service(
            "notify",
            &[("/email", 0.6, 1.2), ("/push", 0.4, 0.6)],
            0.8,
            80.0,
            0.4,
            0.008,
            "us-east-1",
            shape(0.35, (11.0, 3.0, 0.8), (18.0, 2.0, 0.6), 0.6, 0.0),
        ),
    ];
    (0..n)
        .map(|k| {
            let mut s = base[k % base.len()].clone();
            let round = (k / base.len()) as f64;
            if round > 0.0 {
                s.name = format!("{}-{}", s.name, round + 1.0);
                s.rate *= 0.85f64.powf(round);
                s.shape.midday_hour += 0.5 * round;
                s.shape.evening_hour += 0.25 * round;
            }
            s
        })
        .collect()
}
