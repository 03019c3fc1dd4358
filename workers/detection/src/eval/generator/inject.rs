//! Planning and placing the injected anomalies of a test series.

use super::*;

/// Nominal duration range in hours (rows for spikes).
pub(super) fn nominal_rows(kind: AnomalyKind, rng: &mut SplitMix64, rows_per_hour: f64) -> usize {
    let hours = |rng: &mut SplitMix64, lo: f64, hi: f64| {
        ((uniform(rng, lo, hi) * rows_per_hour).round() as usize).max(3)
    };
    match kind {
        AnomalyKind::Spike => 1 + rng.below(3),
        AnomalyKind::LevelShift => hours(rng, 0.5, 1.5),
        AnomalyKind::SeasonalBreak => hours(rng, 1.5, 2.5),
        AnomalyKind::Drift => hours(rng, 1.5, 3.0),
        AnomalyKind::CorrelationBreak => hours(rng, 1.0, 1.5),
    }
}

/// Chooses kinds and durations so that 3.5–5.5 % of the test rows are anomalous.
pub(super) fn plan(
    rng: &mut SplitMix64,
    n_test: usize,
    nf: usize,
    rows_per_hour: f64,
) -> Vec<(AnomalyKind, usize)> {
    let kinds: Vec<AnomalyKind> = AnomalyKind::ALL
        .into_iter()
        .filter(|&k| nf >= 2 || k != AnomalyKind::CorrelationBreak)
        .collect();
    let budget = (uniform(rng, 0.035, 0.055) * n_test as f64).round() as usize;
    if budget == 0 {
        return Vec::new();
    }
    let mut order = kinds.clone();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut out: Vec<(AnomalyKind, usize)> = order
        .into_iter()
        .map(|k| (k, nominal_rows(k, rng, rows_per_hour)))
        .collect();
    let total = |v: &[(AnomalyKind, usize)]| v.iter().map(|x| x.1).sum::<usize>();
    if total(&out) > budget {
        let spikes: usize = out
            .iter()
            .filter(|x| x.0 == AnomalyKind::Spike)
            .map(|x| x.1)
            .sum();
        let rest = (total(&out) - spikes).max(1);
        let scale = budget.saturating_sub(spikes) as f64 / rest as f64;
        for x in out.iter_mut().filter(|x| x.0 != AnomalyKind::Spike) {
            x.1 = ((x.1 as f64 * scale).floor() as usize).max(2);
        }
    }
    let mut guard = 0;
    while (total(&out) as f64) < 0.9 * budget as f64 && guard < 64 {
        guard += 1;
        let kind = kinds[rng.below(kinds.len())];
        let room = budget - total(&out);
        let mut d = nominal_rows(kind, rng, rows_per_hour).min(room);
        if kind != AnomalyKind::Spike && d < 3 {
            d = room.min(3);
            out.push((AnomalyKind::Spike, d));
            continue;
        }
        out.push((kind, d));
    }
    out
}

/// Places the planned anomalies without overlap (at least an hour apart when possible). Breaks
/// are centred near local 13:00 or 02:00, where the 12 h-shifted load differs most.
pub(super) fn place(
    rng: &mut SplitMix64,
    m: &Machine,
    planned: &[(AnomalyKind, usize)],
    test_t0: f64,
    step: f64,
    n_test: usize,
) -> Vec<(AnomalyKind, usize, usize)> {
    let gap = ((3600.0 / step).round() as usize).max(1);
    let mut order: Vec<&(AnomalyKind, usize)> = planned.iter().collect();
    order.sort_by_key(|x| {
        let timed = matches!(
            x.0,
            AnomalyKind::SeasonalBreak | AnomalyKind::CorrelationBreak
        );
        (!timed, std::cmp::Reverse(x.1))
    });
    let mut placed: Vec<(AnomalyKind, usize, usize)> = Vec::new();
    let free = |placed: &[(AnomalyKind, usize, usize)], s: usize, e: usize, g: usize| {
        placed.iter().all(|&(_, ps, pe)| e + g < ps || s > pe + g)
    };
    let days = (n_test as f64 * step / DAY).ceil().max(1.0) as usize;
    for &&(kind, d) in &order {
        if d == 0 || d > n_test {
            continue;
        }
        let timed = matches!(
            kind,
            AnomalyKind::SeasonalBreak | AnomalyKind::CorrelationBreak
        );
        let mut chosen = None;
        for attempt in 0..400 {
            let g = if attempt < 300 { gap } else { 0 };
            let start = if timed && attempt < 200 {
                // Target a local hour, then convert to a test row.
                let target = if rng.below(2) == 0 { 13.0 } else { 2.0 };
                let hour = target + uniform(rng, -1.0, 1.0);
                let day = rng.below(days + 1) as f64;
                let local0 = m.local_hour(test_t0) * 3600.0;
                let centre_secs = day * DAY + hour * 3600.0 - local0;
                let centre = (centre_secs / step).round() as i64;
                let s = centre - (d as i64) / 2;
                if s < 0 || s as usize + d > n_test {
                    continue;
                }
                s as usize
            } else {
                rng.below(n_test - d + 1)
            };
            if free(&placed, start, start + d - 1, g) {
                chosen = Some(start);
                break;
            }
        }
        if let Some(s) = chosen {
            placed.push((kind, s, s + d - 1));
        }
    }
    placed.sort_by_key(|x| x.1);
    placed
}

pub(super) fn pick_features(
    rng: &mut SplitMix64,
    preferred: &[usize],
    nf: usize,
    count: usize,
) -> Vec<usize> {
    let mut pool: Vec<usize> = preferred.iter().copied().filter(|&f| f < nf).collect();
    if pool.is_empty() {
        pool = (0..nf).collect();
    }
    let mut out = Vec::new();
    while out.len() < count.min(pool.len()) {
        let f = pool[rng.below(pool.len())];
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out.sort_unstable();
    out
}

/// Robust σ (1.4826·MAD) of a training column, falling back to 1 % of the median or 1.
pub(super) fn robust_sigma(train: &[Vec<f64>], f: usize) -> f64 {
    let col: Vec<f64> = train.iter().map(|r| r[f]).collect();
    let med = median(&col);
    let s = 1.4826 * mad(&col, med);
    if s > 0.0 {
        s
    } else if med.abs() > 0.0 {
        0.01 * med.abs()
    } else {
        1.0
    }
}
