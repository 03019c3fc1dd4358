//! Incidents injected into the traffic: latency spikes, error bursts, volume drops.

use std::str::FromStr;

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Latency multiplied by the factor.
    Latency,
    /// Error probability set to the factor (0–1).
    Errors,
    /// Volume multiplied by the factor (e.g. 0.1 for a 90% drop).
    Volume,
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
    /// Multiplier (latency, volume) or error probability (errors).
    pub factor: f64,
}

/// Why an incident spec does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "bad incident {spec:?}: {reason} (expected kind:service:at=SECONDS:for=SECONDS:x=FACTOR, kind latency|errors|volume)"
)]
pub struct ParseError {
    spec: String,
    reason: String,
}

impl Incident {
    /// Whether the incident is active at `t_secs` of simulated time.
    pub fn active(&self, t_secs: f64) -> bool {
        t_secs >= self.at_secs && t_secs < self.at_secs + self.for_secs
    }
}

impl FromStr for Incident {
    type Err = ParseError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseError {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let mut parts = spec.split(':');
        let kind = match parts.next() {
            Some("latency") => Kind::Latency,
            Some("errors") => Kind::Errors,
            Some("volume") => Kind::Volume,
            _ => return Err(err("unknown kind")),
        };
        let service = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err("missing service"))?;
        let (mut at, mut dur, mut factor) = (None, None, None);
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| err("expected key=value"))?;
            let v: f64 = v
                .trim_end_matches('s')
                .parse()
                .map_err(|_| err("not a number"))?;
            match k {
                "at" => at = Some(v),
                "for" => dur = Some(v),
                "x" => factor = Some(v),
                _ => return Err(err("unknown key")),
            }
        }
        let factor = factor.ok_or_else(|| err("missing x"))?;
        if kind == Kind::Errors && !(0.0..=1.0).contains(&factor) {
            return Err(err("errors x must be a probability in [0, 1]"));
        }
        Ok(Incident {
            kind,
            service: service.to_string(),
            at_secs: at.ok_or_else(|| err("missing at"))?,
            for_secs: dur.ok_or_else(|| err("missing for"))?,
            factor,
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
}
