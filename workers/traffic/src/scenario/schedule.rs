//! The fixed default incident schedule.

use super::*;

/// The fixed default schedule, before filtering: (kind, service, day 1–14, hh:mm, minutes,
/// factor, fraction, endpoint, creep ramp in minutes, at the service's daily peak).
type Planned = (
    Kind,
    &'static str,
    u32,
    (u32, u32),
    u32,
    f64,
    f64,
    Option<&'static str>,
    Option<u32>,
    bool,
);

pub(super) const SCHEDULE: [Planned; 13] = [
    (
        Kind::Drop,
        "checkout",
        4,
        (12, 30),
        45,
        0.3,
        1.0,
        None,
        None,
        true,
    ),
    (
        Kind::Errors,
        "auth",
        4,
        (3, 10),
        20,
        0.3,
        1.0,
        None,
        None,
        false,
    ),
    (
        Kind::Latency,
        "search",
        5,
        (14, 0),
        20,
        10.0,
        0.07,
        None,
        None,
        true,
    ),
    (
        Kind::Creep,
        "catalog",
        6,
        (7, 0),
        300,
        3.0,
        1.0,
        None,
        Some(240),
        false,
    ),
    (
        Kind::Partial,
        "checkout",
        7,
        (21, 0),
        30,
        0.85,
        1.0,
        Some("/pay"),
        None,
        true,
    ),
    (
        Kind::Errors,
        "search",
        8,
        (20, 15),
        25,
        0.25,
        1.0,
        None,
        None,
        true,
    ),
    (
        Kind::Drop,
        "auth",
        9,
        (9, 30),
        40,
        0.35,
        1.0,
        None,
        None,
        true,
    ),
    (
        Kind::Latency,
        "checkout",
        10,
        (2, 30),
        25,
        12.0,
        0.08,
        None,
        None,
        false,
    ),
    (
        Kind::Creep,
        "search",
        11,
        (8, 0),
        360,
        3.0,
        1.0,
        None,
        Some(270),
        false,
    ),
    (
        Kind::Latency,
        "notify",
        12,
        (17, 50),
        20,
        8.0,
        0.1,
        None,
        None,
        true,
    ),
    (
        Kind::Partial,
        "catalog",
        12,
        (20, 30),
        30,
        0.9,
        1.0,
        Some("/items"),
        None,
        true,
    ),
    (
        Kind::Drop,
        "catalog",
        13,
        (13, 0),
        60,
        0.25,
        1.0,
        None,
        None,
        true,
    ),
    (
        Kind::Errors,
        "notify",
        14,
        (5, 0),
        30,
        0.4,
        1.0,
        None,
        None,
        false,
    ),
];

fn planned_incident(p: &Planned) -> Incident {
    let &(kind, service, day, (hh, mm), minutes, factor, fraction, endpoint, ramp, _) = p;
    let at = f64::from(day - 1) * DAY_SECS as f64 + f64::from(hh * 3600 + mm * 60);
    let mut i = Incident::new(kind, service, at, f64::from(minutes * 60), factor);
    i.fraction = fraction;
    i.endpoint = endpoint.map(str::to_string);
    i.ramp_secs = ramp.map(|r| f64::from(r * 60));
    i
}

/// The default incident schedule (13 incidents over days 4–14, every kind, peak and
/// off-peak), keeping those whose service is among `services` and that start within `days`.
pub fn default_incidents(days: f64, services: &[ScenarioService]) -> Vec<Incident> {
    SCHEDULE
        .iter()
        .map(planned_incident)
        .filter(|i| i.at_secs < days * DAY_SECS as f64)
        .filter(|i| services.iter().any(|s| s.name == i.service))
        .collect()
}
