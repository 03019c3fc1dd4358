//! The chart: a hand-written SVG of the most responsible features over the surrounding
//! windows, one small panel per feature, with the anomalous window shaded and labelled.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::facts::Facts;
use crate::format;

const WIDTH: f64 = 760.0;
const PANEL_HEIGHT: f64 = 140.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 62.0;
const GAP: f64 = 34.0;
const BOTTOM: f64 = 30.0;
/// At most this many features are charted (the most responsible ones).
pub const MAX_PANELS: usize = 3;

/// Escape text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A linear map from time to x pixels.
struct TimeAxis {
    t0: i64,
    t1: i64,
}

impl TimeAxis {
    fn x(&self, t: DateTime<Utc>) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        LEFT + (t.timestamp_millis() - self.t0) as f64 / span * (WIDTH - LEFT - RIGHT)
    }
}

/// Render the chart of `facts` (deterministic: same facts → same bytes).
pub fn render(facts: &Facts) -> String {
    let window = facts.window_end - facts.window_start;
    let t0 = facts
        .series
        .iter()
        .map(|w| w.start)
        .chain([facts.window_start])
        .min()
        .unwrap_or(facts.window_start);
    let t1 = facts
        .series
        .iter()
        .map(|w| w.start + window)
        .chain([facts.window_end])
        .max()
        .unwrap_or(facts.window_end);
    let axis = TimeAxis {
        t0: t0.timestamp_millis(),
        t1: t1.timestamp_millis(),
    };
    let panels: Vec<_> = facts.features.iter().take(MAX_PANELS).collect();
    let n = panels.len().max(1) as f64;
    let height = TOP + n * PANEL_HEIGHT + (n - 1.0) * GAP + BOTTOM;
    let band_x0 = axis.x(facts.window_start);
    let band_x1 = axis.x(facts.window_end).max(band_x0 + 2.0);

    let mut s = String::with_capacity(8 * 1024);
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="Helvetica,Arial,sans-serif" font-size="12" role="img">"#
    );
    let _ = write!(s, "<title>{}</title>", escape(&facts.summary));
    s.push_str(r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="20" font-size="14" font-weight="bold" fill="#222">{}</text>"##,
        escape(&facts.summary)
    );
    for (i, f) in panels.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL_HEIGHT + GAP);
        panel(&mut s, facts, f, &axis, top, i + 1 == panels.len());
    }
    // The anomalous window: one band across all panels, labelled once.
    let band_top = TOP - 20.0;
    let band_h = n * PANEL_HEIGHT + (n - 1.0) * GAP + 20.0;
    let _ = write!(
        s,
        r##"<rect class="anomaly-band" id="anomalous-window" data-window-start="{}" data-window-end="{}" x="{band_x0:.1}" y="{band_top:.1}" width="{:.1}" height="{band_h:.1}" fill="#d62728" fill-opacity="0.14" stroke="#d62728" stroke-opacity="0.5"><title>anomalous window {}–{} UTC</title></rect>"##,
        facts.window_start.to_rfc3339(),
        facts.window_end.to_rfc3339(),
        band_x1 - band_x0,
        format::clock(facts.window_start),
        format::clock(facts.window_end),
    );
    let label_x = (band_x0 + band_x1) / 2.0;
    let anchor = if label_x > WIDTH - 120.0 {
        "end"
    } else {
        "middle"
    };
    let _ = write!(
        s,
        r##"<text class="anomaly-label" x="{label_x:.1}" y="{:.1}" text-anchor="{anchor}" fill="#b22222" font-weight="bold">anomalous window {}–{}</text>"##,
        TOP - 26.0,
        format::clock(facts.window_start),
        format::clock(facts.window_end),
    );
    s.push_str("</svg>");
    s
}

fn panel(
    s: &mut String,
    facts: &Facts,
    f: &crate::facts::FeatureFact,
    axis: &TimeAxis,
    top: f64,
    last: bool,
) {
    let window = facts.window_end - facts.window_start;
    let mut points: Vec<(DateTime<Utc>, f64, bool)> = facts
        .series
        .iter()
        .filter_map(|w| {
            w.features
                .get(&f.feature)
                .map(|&v| (w.start + window / 2, v, w.start == facts.window_start))
        })
        .collect();
    if !points.iter().any(|p| p.2) {
        points.push((facts.window_start + window / 2, f.actual, true));
        points.sort_by_key(|p| p.0);
    }
    let lo = points
        .iter()
        .map(|p| p.1)
        .chain([f.typical, 0.0])
        .fold(f64::INFINITY, f64::min);
    let mut hi = points
        .iter()
        .map(|p| p.1)
        .chain([f.typical])
        .fold(f64::NEG_INFINITY, f64::max);
    if hi <= lo {
        hi = lo + 1.0;
    }
    hi += (hi - lo) * 0.08;
    let y = |v: f64| top + PANEL_HEIGHT - (v - lo) / (hi - lo) * PANEL_HEIGHT;
    let x_end = WIDTH - RIGHT;

    let _ = write!(
        s,
        r#"<g class="panel" data-feature="{}">"#,
        escape(&f.feature)
    );
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" fill="#333" font-weight="bold">{} <tspan font-weight="normal" fill="#666">actual {} vs typical {} ({})</tspan></text>"##,
        top - 6.0,
        escape(&f.label),
        escape(&f.actual_text),
        escape(&f.typical_text),
        escape(&f.change),
    );
    // frame and y ticks (min, typical, max)
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{PANEL_HEIGHT}" fill="none" stroke="#ccc"/>"##,
        x_end - LEFT
    );
    for v in [lo, hi] {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#666" font-size="10">{}</text>"##,
            LEFT - 6.0,
            y(v) + 3.0,
            escape(&format::value(&f.feature, v))
        );
    }
    let ty = y(f.typical);
    let _ = write!(
        s,
        r##"<line class="typical" x1="{LEFT}" y1="{ty:.1}" x2="{x_end:.1}" y2="{ty:.1}" stroke="#2ca02c" stroke-dasharray="5,4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#2ca02c" font-size="10">typical {}</text>"##,
        LEFT - 6.0,
        ty + 3.0,
        escape(&f.typical_text)
    );
    let path: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", axis.x(p.0), y(p.1)))
        .collect();
    let _ = write!(
        s,
        r##"<polyline class="series" points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        path.join(" ")
    );
    for (t, v, anomalous) in &points {
        let (r, fill) = if *anomalous {
            (5.0, "#d62728")
        } else {
            (2.5, "#1f77b4")
        };
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{r}" fill="{fill}"{}><title>{} {}</title></circle>"#,
            axis.x(*t),
            y(*v),
            if *anomalous {
                r#" class="anomalous-point""#
            } else {
                ""
            },
            format::clock(*t - window / 2),
            escape(&format::value(&f.feature, *v)),
        );
    }
    if last {
        x_ticks(s, facts, axis, top + PANEL_HEIGHT);
    }
    s.push_str("</g>");
}

fn x_ticks(s: &mut String, facts: &Facts, axis: &TimeAxis, bottom: f64) {
    let starts: Vec<DateTime<Utc>> = if facts.series.is_empty() {
        vec![facts.window_start]
    } else {
        facts.series.iter().map(|w| w.start).collect()
    };
    let step = starts.len().div_ceil(8).max(1);
    for t in starts.iter().step_by(step) {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666" font-size="10">{}</text>"##,
            axis.x(*t),
            bottom + 16.0,
            format::clock(*t)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::example_value;
    use crate::facts::History;
    use crate::request::ReportRequest;

    fn svg() -> (Facts, String) {
        let req = ReportRequest::from_value(example_value()).unwrap();
        let facts = Facts::derive(&req, History::NotConfigured);
        let svg = render(&facts);
        (facts, svg)
    }

    #[test]
    fn parses_and_marks_the_anomalous_window() {
        let (facts, svg) = svg();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let band = doc
            .descendants()
            .find(|n| n.attribute("class") == Some("anomaly-band"))
            .expect("band");
        assert_eq!(
            band.attribute("data-window-start"),
            Some(facts.window_start.to_rfc3339().as_str())
        );
        let x: f64 = band.attribute("x").unwrap().parse().unwrap();
        let w: f64 = band.attribute("width").unwrap().parse().unwrap();
        // every anomalous point lies inside the band
        let points: Vec<_> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("anomalous-point"))
            .collect();
        assert_eq!(points.len(), MAX_PANELS);
        for p in points {
            let cx: f64 = p.attribute("cx").unwrap().parse().unwrap();
            assert!(cx > x && cx < x + w, "{cx} outside [{x}, {}]", x + w);
        }
        let label = doc
            .descendants()
            .find(|n| n.attribute("class") == Some("anomaly-label"))
            .expect("label");
        assert_eq!(label.text(), Some("anomalous window 10:05–10:06"));
        let panels = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("panel"))
            .count();
        assert_eq!(panels, 3);
    }

    #[test]
    fn is_deterministic_and_escapes_text() {
        let (_, a) = svg();
        let (_, b) = svg();
        assert_eq!(a, b);
        let mut v = example_value();
        v["key"] = serde_json::json!("<script>&\"x\"");
        let req = ReportRequest::from_value(v).unwrap();
        let svg = render(&Facts::derive(&req, History::NotConfigured));
        roxmltree::Document::parse(&svg).unwrap();
        assert!(!svg.contains("<script>"));
    }

    #[test]
    fn works_without_recent_windows() {
        let mut v = example_value();
        v["recentWindows"] = serde_json::json!([]);
        let req = ReportRequest::from_value(v).unwrap();
        let svg = render(&Facts::derive(&req, History::NotConfigured));
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert!(
            doc.descendants()
                .any(|n| n.attribute("class") == Some("anomalous-point"))
        );
    }
}
