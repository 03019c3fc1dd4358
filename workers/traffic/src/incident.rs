//! Incidents injected into the traffic: latency spikes (whole or tail), error bursts, volume
//! drops, slow latency creep and partial (one-endpoint) outages.
//!
//! Spec syntax: `kind:service:at=T:for=T:x=F[:p=F][:ep=/endpoint][:ramp=T]`, where a time `T`
//! is seconds (`90`, `90s`) or a sum of units (`3d12h`, `45m`, `1h30m`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Latency multiplied by the factor (for the fraction `p` of requests; all by default).
    Latency,
    /// Error probability set to the factor (0–1).
    Errors,
    /// Volume multiplied by the factor (e.g. 0.1 for a 90% drop, 2 for a surge).
    Volume,
    /// A silent drop: volume multiplied by the factor (0–1), no errors, normal latency.
    Drop,
    /// Latency creep: the median rises gradually to ×factor over `ramp`, then recovers.
    Creep,
    /// Partial outage of one endpoint (`ep=`): it returns 503 with probability factor (0–1).
    Partial,
}

impl Kind {
    /// Every kind, in spec order.
    pub const ALL: [Kind; 6] = [
        Kind::Latency,
        Kind::Errors,
        Kind::Volume,
        Kind::Drop,
        Kind::Creep,
        Kind::Partial,
    ];

    /// The spec / label name (`latency`, `errors`, …).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Latency => "latency",
            Kind::Errors => "errors",
            Kind::Volume => "volume",
            Kind::Drop => "drop",
            Kind::Creep => "creep",
            Kind::Partial => "partial",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One incident: `kind:service:at=SECONDS:for=SECONDS:x=FACTOR`, times relative to the start.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// What goes wrong.
    pub kind: Kind,
    /// The affected service.
    pub service: String,
    /// Start, seconds of simulated time after the beginning.
    pub at_secs: f64,
    /// Duration in seconds of simulated time.
    pub for_secs: f64,
    /// Multiplier (latency, volume, drop, creep peak) or probability (errors, partial).
    pub factor: f64,
    /// Only this endpoint of the service (`ep=`); `None` affects the whole service.
    pub endpoint: Option<String>,
    /// Fraction of requests affected (`p=`, latency only): 1 slows every request, 0.05 is a
    /// p99 tail.
    pub fraction: f64,
    /// Creep only: seconds of rise to the peak before the recovery (`ramp=`; default ¾ of `for`).
    pub ramp_secs: Option<f64>,
}

/// Why an incident spec does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "bad incident {spec:?}: {reason} (expected kind:service:at=T:for=T:x=FACTOR[:p=F][:ep=/endpoint][:ramp=T], kind latency|errors|volume|drop|creep|partial, T seconds or e.g. 3d12h, 45m)"
)]
pub struct ParseError {
    spec: String,
    reason: String,
}

impl Incident {
    /// A whole-service incident with the default fraction (1) and ramp.
    pub fn new(kind: Kind, service: &str, at_secs: f64, for_secs: f64, factor: f64) -> Self {
        Self {
            kind,
            service: service.to_string(),
            at_secs,
            for_secs,
            factor,
            endpoint: None,
            fraction: 1.0,
            ramp_secs: None,
        }
    }

    /// The same incident restricted to one endpoint.
    pub fn on_endpoint(mut self, endpoint: &str) -> Self {
        self.endpoint = Some(endpoint.to_string());
        self
    }

    /// The same incident affecting only the fraction `p` of requests (latency).
    pub fn with_fraction(mut self, p: f64) -> Self {
        self.fraction = p;
        self
    }

    /// The same incident with a creep rise of `secs`.
    pub fn with_ramp(mut self, secs: f64) -> Self {
        self.ramp_secs = Some(secs);
        self
    }

    /// Whether the incident is active at `t_secs` of simulated time.
    pub fn active(&self, t_secs: f64) -> bool {
        t_secs >= self.at_secs && t_secs < self.at_secs + self.for_secs
    }

    /// Seconds from the start to the creep's peak.
    pub fn ramp(&self) -> f64 {
        self.ramp_secs
            .unwrap_or(0.75 * self.for_secs)
            .clamp(0.0, self.for_secs)
    }

    /// The creep's latency multiplier at `t_secs`: 1 outside, rising geometrically to `factor`
    /// at `at + ramp`, then falling back to 1 at the end.
    pub fn creep_factor(&self, t_secs: f64) -> f64 {
        if !self.active(t_secs) {
            return 1.0;
        }
        let (d, ramp) = (t_secs - self.at_secs, self.ramp());
        let progress = if d < ramp {
            d / ramp
        } else if self.for_secs > ramp {
            1.0 - (d - ramp) / (self.for_secs - ramp)
        } else {
            1.0
        };
        self.factor.powf(progress.clamp(0.0, 1.0))
    }

    /// Whether the incident touches requests of `endpoint` (always, when it has no endpoint).
    pub fn matches_endpoint(&self, endpoint: &str) -> bool {
        self.endpoint.as_deref().is_none_or(|e| e == endpoint)
    }
}

impl fmt::Display for Incident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:at={}:for={}:x={}",
            self.kind, self.service, self.at_secs, self.for_secs, self.factor
        )?;
        if self.fraction != 1.0 {
            write!(f, ":p={}", self.fraction)?;
        }
        if let Some(ep) = &self.endpoint {
            write!(f, ":ep={ep}")?;
        }
        if let Some(r) = self.ramp_secs {
            write!(f, ":ramp={r}")?;
        }
        Ok(())
    }
}

/// Seconds from `90`, `90s`, `1.5h`, `3d12h`, `1h30m` (units d, h, m, s).
fn parse_secs(v: &str) -> Option<f64> {
    if let Ok(n) = v.trim_end_matches('s').parse::<f64>() {
        return Some(n);
    }
    let (mut total, mut num) = (0.0, String::new());
    for c in v.chars() {
        let unit = match c {
            'd' => 86_400.0,
            'h' => 3_600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => {
                num.push(c);
                continue;
            }
        };
        total += num.parse::<f64>().ok()? * unit;
        num.clear();
    }
    num.is_empty().then_some(total)
}

impl FromStr for Incident {
    type Err = ParseError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseError {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let mut parts = spec.split(':');
        let kind = parts
            .next()
            .and_then(|k| Kind::ALL.into_iter().find(|kind| kind.name() == k))
            .ok_or_else(|| err("unknown kind"))?;
        let service = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err("missing service"))?;
        let (mut at, mut dur, mut factor, mut p, mut ep, mut ramp) =
            (None, None, None, 1.0, None, None);
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| err("expected key=value"))?;
            let num = || {
                v.trim_end_matches('s')
                    .parse::<f64>()
                    .map_err(|_| err("not a number"))
            };
            let secs = || parse_secs(v).ok_or_else(|| err("not a duration"));
            match k {
                "at" => at = Some(secs()?),
                "for" => dur = Some(secs()?),
                "x" => factor = Some(num()?),
                "p" => p = num()?,
                "ramp" => ramp = Some(secs()?),
                "ep" if !v.is_empty() => ep = Some(v.to_string()),
                "ep" => return Err(err("empty ep")),
                _ => return Err(err("unknown key")),
            }
        }
        let factor = factor.ok_or_else(|| err("missing x"))?;
        let probability = matches!(kind, Kind::Errors | Kind::Partial | Kind::Drop);
        if probability && !(0.0..=1.0).contains(&factor) {
            return Err(err(&format!("{kind} x must be in [0, 1]")));
        }
        if !factor.is_finite() || factor < 0.0 {
            return Err(err("x must be a non-negative number"));
        }
        if !(p > 0.0 && p <= 1.0) {
            return Err(err("p must be in (0, 1]"));
        }
        if kind == Kind::Partial && ep.is_none() {
            return Err(err("partial needs ep=/endpoint"));
        }
        let at_secs = at.ok_or_else(|| err("missing at"))?;
        let for_secs = dur.ok_or_else(|| err("missing for"))?;
        if at_secs < 0.0 || for_secs < 0.0 || ramp.is_some_and(|r: f64| r < 0.0) {
            return Err(err("times must not be negative"));
        }
        Ok(Incident {
            kind,
            service: service.to_string(),
            at_secs,
            for_secs,
            factor,
            endpoint: ep,
            fraction: p,
            ramp_secs: ramp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_activity() {
        let i: Incident = "latency:checkout:at=60s:for=30:x=8".parse().unwrap();
        assert_eq!(
            (i.kind, i.service.as_str(), i.at_secs, i.for_secs, i.factor),
            (Kind::Latency, "checkout", 60.0, 30.0, 8.0)
        );
        assert_eq!(
            (i.fraction, i.endpoint.as_deref(), i.ramp_secs),
            (1.0, None, None)
        );
        assert!(!i.active(59.9) && i.active(60.0) && i.active(89.9) && !i.active(90.0));
        assert!("errors:auth:at=1:for=1:x=1.5".parse::<Incident>().is_err());
        assert!("boom:auth:at=1:for=1:x=1".parse::<Incident>().is_err());
        assert!(
            "volume:batch:at=1:x=0.1"
                .parse::<Incident>()
                .unwrap_err()
                .to_string()
                .contains("missing for")
        );
    }

    #[test]
    fn parses_the_scenario_kinds() {
        let i: Incident = "partial:checkout:at=3d12h:for=30m:x=0.9:ep=/pay"
            .parse()
            .unwrap();
        assert_eq!(i.kind, Kind::Partial);
        assert_eq!(i.at_secs, 3.0 * 86_400.0 + 12.0 * 3_600.0);
        assert_eq!(i.for_secs, 1_800.0);
        assert_eq!(i.endpoint.as_deref(), Some("/pay"));
        assert!(i.matches_endpoint("/pay") && !i.matches_endpoint("/cart"));
        let l: Incident = "latency:search:at=1h30m:for=20m:x=10:p=0.07"
            .parse()
            .unwrap();
        assert_eq!((l.at_secs, l.fraction), (5_400.0, 0.07));
        assert!(l.matches_endpoint("/anything"));
        let c: Incident = "creep:catalog:at=0:for=5h:x=3:ramp=4h".parse().unwrap();
        assert_eq!(c.ramp(), 14_400.0);
        assert_eq!(c.creep_factor(-1.0), 1.0);
        assert!((c.creep_factor(0.0) - 1.0).abs() < 1e-9);
        assert!((c.creep_factor(7_200.0) - 3f64.sqrt()).abs() < 1e-9);
        assert!((c.creep_factor(14_400.0) - 3.0).abs() < 1e-9);
        assert!((c.creep_factor(16_200.0) - 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(c.creep_factor(18_000.0), 1.0);
        // Round trip through Display.
        for spec in [
            "drop:checkout:at=100:for=60:x=0.3",
            "latency:search:at=1:for=2:x=10:p=0.07",
            "partial:checkout:at=1:for=2:x=0.9:ep=/pay",
            "creep:catalog:at=0:for=18000:x=3:ramp=14400",
        ] {
            let i: Incident = spec.parse().unwrap();
            assert_eq!(i.to_string(), spec);
            assert_eq!(i.to_string().parse::<Incident>().unwrap(), i);
        }
        for bad in [
            "partial:checkout:at=1:for=2:x=0.9",
            "drop:checkout:at=1:for=2:x=1.5",
            "latency:checkout:at=1:for=2:x=8:p=0",
            "latency:checkout:at=1:for=2:x=8:p=2",
            "latency:checkout:at=1d2q:for=2:x=8",
            "latency:checkout:at=1:for=2:x=8:ep=",
            "latency:checkout:at=-1:for=2:x=8",
        ] {
            assert!(bad.parse::<Incident>().is_err(), "{bad}");
        }
    }
}
