//! The latent load of a machine and the feature rows derived from it.

use super::*;

pub(super) const RATE: usize = 0;
pub(super) const CPU: usize = 1;
pub(super) const MEM: usize = 2;
pub(super) const LAT: usize = 3;
pub(super) const QUEUE: usize = 4;
pub(super) const KPI: usize = 5;
pub(super) const DAY: f64 = 86_400.0;
/// Offset of the "wrong" load used by seasonal and correlation breaks.
pub(super) const ALT_SHIFT_SECS: f64 = 12.0 * 3600.0;

pub(super) fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = 1.0 - rng.next_f64();
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub(super) fn uniform(rng: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.next_f64()
}

pub(super) fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// Per-machine constants.
#[derive(Debug, Clone)]
pub(super) struct Machine {
    pub(super) rate0: f64,
    pub(super) phase_secs: f64,
    pub(super) weekend: f64,
    pub(super) noise: f64,
    pub(super) idle: f64,
    pub(super) peak_cpu: f64,
    pub(super) lat0: f64,
    pub(super) lat_k: f64,
    pub(super) queue_k: f64,
    pub(super) mem0: f64,
    pub(super) mem_k: f64,
    pub(super) mem_wander: f64,
    pub(super) conv: f64,
    /// (c0, c1) per extra feature.
    pub(super) extras: Vec<(f64, f64)>,
}

impl Machine {
    pub(super) fn new(rng: &mut SplitMix64, features: usize) -> Self {
        let extras = (6..features.max(6))
            .map(|_| (uniform(rng, 20.0, 200.0), uniform(rng, 50.0, 500.0)))
            .collect();
        Self {
            rate0: 300.0 * 10f64.powf(rng.next_f64()),
            phase_secs: uniform(rng, -3.0, 3.0) * 3600.0,
            weekend: uniform(rng, 0.5, 0.8),
            noise: uniform(rng, 0.6, 1.6),
            idle: uniform(rng, 3.0, 10.0),
            peak_cpu: uniform(rng, 45.0, 78.0),
            lat0: uniform(rng, 15.0, 60.0),
            lat_k: uniform(rng, 0.6, 1.4),
            queue_k: uniform(rng, 2.0, 10.0),
            mem0: uniform(rng, 1500.0, 6000.0),
            mem_k: uniform(rng, 300.0, 1500.0),
            mem_wander: uniform(rng, 0.02, 0.06),
            conv: uniform(rng, 0.01, 0.05),
            extras,
        }
    }

    /// Local hour of day in [0, 24).
    pub(super) fn local_hour(&self, t: f64) -> f64 {
        (t + self.phase_secs).rem_euclid(DAY) / 3600.0
    }

    /// Deterministic seasonal load multiplier (about 0.1 at night to about 1.05 at the peak).
    pub(super) fn profile(&self, t: f64) -> f64 {
        let local = t + self.phase_secs;
        let h = local.rem_euclid(DAY) / 3600.0;
        let phase = std::f64::consts::TAU * (h - 4.0) / 24.0;
        let daily =
            0.18 + 0.82 * (0.5 * (1.0 - phase.cos())).powf(1.3) + 0.06 * (2.0 * phase).sin();
        // 1970-01-01 was a Thursday: (days + 4) % 7 gives 0 = Sunday.
        let weekday = ((local / DAY).floor() as i64 + 4).rem_euclid(7);
        let weekly = match weekday {
            0 | 6 => self.weekend,
            5 => 1.0 - 0.3 * (1.0 - self.weekend),
            1 => 1.03,
            _ => 1.0,
        };
        daily.max(0.1) * weekly
    }

    /// Noise-free CPU utilisation in [0, 0.92] for a normalised load.
    pub(super) fn rho(&self, ell: f64) -> f64 {
        ((self.idle + (self.peak_cpu - self.idle) * ell) / 100.0).clamp(0.0, 0.92)
    }
}

/// Latent state of one machine over all rows.
pub(super) struct Latent {
    /// Actual load and its memory EMA.
    pub(super) load: Vec<f64>,
    pub(super) ema: Vec<f64>,
    /// Load 12 h later (same AR noise) and its memory EMA, used by breaks.
    pub(super) alt_load: Vec<f64>,
    pub(super) alt_ema: Vec<f64>,
    /// Memory wander (OU) per row.
    pub(super) wander: Vec<f64>,
    /// Standard normal noise per row and feature.
    pub(super) eps: Vec<Vec<f64>>,
}

pub(super) fn latent(
    m: &Machine,
    rng: &mut SplitMix64,
    times: &[f64],
    step: f64,
    nf: usize,
) -> Latent {
    let n = times.len();
    let ar_phi = (-step / (3.0 * 3600.0)).exp();
    let ar_sd = 0.05 * m.noise;
    let ou_phi = (-step / DAY).exp();
    let ema_alpha = 1.0 - (-step / (1.5 * 3600.0)).exp();
    let (mut ar, mut ou) = (ar_sd * normal(rng), normal(rng));
    let mut out = Latent {
        load: Vec::with_capacity(n),
        ema: Vec::with_capacity(n),
        alt_load: Vec::with_capacity(n),
        alt_ema: Vec::with_capacity(n),
        wander: Vec::with_capacity(n),
        eps: Vec::with_capacity(n),
    };
    let (mut ema, mut alt_ema) = (None::<f64>, None::<f64>);
    for &t in times {
        ar = ar_phi * ar + ar_sd * (1.0 - ar_phi * ar_phi).sqrt() * normal(rng);
        ou = ou_phi * ou + (1.0 - ou_phi * ou_phi).sqrt() * normal(rng);
        let factor = (1.0 + ar).max(0.05);
        let load = m.rate0 * m.profile(t) * factor;
        let alt = m.rate0 * m.profile(t + ALT_SHIFT_SECS) * factor;
        let e = ema.map_or(load, |e| e + ema_alpha * (load - e));
        let ae = alt_ema.map_or(alt, |e| e + ema_alpha * (alt - e));
        ema = Some(e);
        alt_ema = Some(ae);
        out.load.push(load);
        out.alt_load.push(alt);
        out.ema.push(e);
        out.alt_ema.push(ae);
        out.wander.push(ou);
        out.eps.push((0..nf).map(|_| normal(rng)).collect());
    }
    out
}

/// Computes one row; `alt[f]` selects the 12 h-shifted load for feature `f`.
pub(super) fn row(m: &Machine, lat: &Latent, i: usize, alt: &[bool]) -> Vec<f64> {
    let nu = m.noise;
    let eps = &lat.eps[i];
    (0..eps.len())
        .map(|f| {
            let use_alt = alt.get(f).copied().unwrap_or(false);
            let (load, ema) = if use_alt {
                (lat.alt_load[i], lat.alt_ema[i])
            } else {
                (lat.load[i], lat.ema[i])
            };
            let ell = load / m.rate0;
            let rho = m.rho(ell);
            let congestion = rho * rho / (1.0 - rho);
            let e = eps[f];
            let v = match f {
                RATE => load + nu * (0.03 * load + 0.5 * load.sqrt()) * e,
                CPU => 100.0 * rho + nu * (0.8 + 2.5 * ell) * e,
                MEM => {
                    m.mem0
                        + m.mem_k * (ema / m.rate0)
                        + m.mem_wander * m.mem_k * lat.wander[i]
                        + nu * 0.002 * m.mem0 * e
                }
                LAT => m.lat0 * (1.0 + m.lat_k * congestion) * (nu * (0.04 + 0.06 * ell) * e).exp(),
                QUEUE => m.queue_k * congestion * (1.0 + 0.15 * nu * e),
                KPI => {
                    let mean = m.conv * load * (1.0 - 0.5 * (rho - 0.75).max(0.0));
                    mean + nu * 0.5 * mean.max(0.0).sqrt() * e
                }
                _ => {
                    let j = f - 6;
                    let (c0, c1) = m.extras.get(j).copied().unwrap_or((50.0, 100.0));
                    match j % 3 {
                        0 => c1 * ell * (1.0 + 0.04 * nu * e),
                        1 => c0 + c1 * ell + 0.05 * nu * c1 * ell.max(0.0).sqrt() * e,
                        _ => c0 + c1 * ell.max(0.0).sqrt() + 0.03 * nu * c1 * e,
                    }
                }
            };
            clip(f, v)
        })
        .map(round4)
        .collect()
}

/// Physical bounds: CPU in [0, 100], everything non-negative.
pub(super) fn clip(f: usize, v: f64) -> f64 {
    if f == CPU {
        v.clamp(0.0, 100.0)
    } else {
        v.max(0.0)
    }
}
