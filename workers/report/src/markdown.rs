//! The Markdown report and the JSON object: pure renderings of the facts and the narrative.

use std::fmt::Write as _;

use serde::Serialize;

use crate::facts::{Facts, History};
use crate::format;
use crate::keys::ObjectKeys;
use crate::narrative::Narrative;

/// The JSON object: the facts, the narrative and where the objects are.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportDocument<'a> {
    /// The facts.
    #[serde(flatten)]
    pub facts: &'a Facts,
    /// The narrative and its provenance.
    pub narrative: &'a Narrative,
    /// The objects of the report.
    pub objects: &'a ObjectKeys,
}

/// Render the JSON object (pretty, deterministic).
pub fn render_json(
    facts: &Facts,
    narrative: &Narrative,
    keys: &ObjectKeys,
) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&ReportDocument {
        facts,
        narrative,
        objects: keys,
    })
}

/// Escape text for a Markdown table cell or inline text.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Render the Markdown report.
pub fn render(f: &Facts, narrative: &Narrative, keys: &ObjectKeys) -> String {
    let mut s = String::with_capacity(4 * 1024);
    let _ = writeln!(s, "# {}\n", cell(&f.summary));
    let _ = writeln!(
        s,
        "**Severity** {} · **Score** {:.2} · **Window** {}–{} UTC · **Pipeline** `{}/{}` · **Detector** `{}` · **Key** `{}`\n",
        f.severity,
        f.score,
        format::timestamp(f.window_start).trim_end_matches(" UTC"),
        format::clock(f.window_end),
        f.namespace,
        f.pipeline,
        f.detector,
        cell(&f.key),
    );
    let _ = writeln!(
        s,
        "## What happened\n\n{}\n\n{}\n",
        narrative.text.trim(),
        narrative.provenance()
    );

    s.push_str("## What was anomalous\n\n| Feature | Actual | Typical | Change | Robust z | Contribution |\n|---|---:|---:|---:|---:|---:|\n");
    for x in &f.features {
        let _ = writeln!(
            s,
            "| {} | **{}** | {} | {} | {} | {:.2} |",
            cell(&x.label),
            x.actual_text,
            x.typical_text,
            x.change,
            x.robust_z
                .map_or_else(|| "–".to_string(), |z| format!("{z:.1}")),
            x.contribution
        );
    }

    s.push_str("\n## When it started\n\n");
    if f.onset.deviating_windows > 1 {
        let _ = writeln!(
            s,
            "Started **{}** — {} consecutive deviating windows up to and including the alert window ({}).\n",
            format::timestamp(f.onset.started_at),
            f.onset.deviating_windows,
            format::clock(f.window_start)
        );
    } else {
        let _ = writeln!(
            s,
            "Started **{}** — the alert window is the first deviating one.\n",
            format::timestamp(f.window_start)
        );
    }

    s.push_str("## Blast radius\n\n");
    if f.blast_radius.is_empty() {
        let _ = writeln!(s, "Only `{}` was anomalous in this window.\n", cell(&f.key));
    } else {
        let _ = writeln!(s, "Anomalous at the same time as `{}`:\n", cell(&f.key));
        for k in &f.blast_radius {
            let _ = writeln!(s, "- `{}`", cell(k));
        }
        s.push('\n');
    }

    let _ = writeln!(
        s,
        "## Chart\n\n![{} over the surrounding windows, anomalous window shaded]({})\n",
        f.features
            .iter()
            .take(crate::chart::MAX_PANELS)
            .map(|x| x.label.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        keys.svg_file_name()
    );

    match &f.history {
        History::NotConfigured => {}
        History::Unavailable(why) => {
            let _ = writeln!(
                s,
                "## Similar past anomalies\n\n_Unavailable: {}_\n",
                cell(why)
            );
        }
        History::Found(v) if v.is_empty() => {
            s.push_str("## Similar past anomalies\n\nNone on record with this fingerprint.\n\n");
        }
        History::Found(v) => {
            s.push_str("## Similar past anomalies\n\n| When | Severity | Score | Anomaly |\n|---|---|---:|---|\n");
            for a in v {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.2} | `{}` |",
                    format::timestamp(a.window_start),
                    cell(&a.severity),
                    a.score,
                    cell(&a.anomaly_id)
                );
            }
            s.push('\n');
        }
    }

    s.push_str("## Suggested next steps\n\n");
    for group in &f.next_steps {
        let names: Vec<String> = group.features.iter().map(|n| format::label(n)).collect();
        let _ = writeln!(s, "**{}** ({})\n", group.kind.title(), names.join(", "));
        for (i, step) in group.steps.iter().enumerate() {
            let _ = writeln!(s, "{}. {step}", i + 1);
        }
        s.push('\n');
    }

    let _ = writeln!(
        s,
        "---\nAnomaly `{}` · fingerprint `{}` · facts: `{}` · chart: `{}`",
        f.anomaly_id,
        f.fingerprint,
        keys.uri(&keys.json),
        keys.uri(&keys.svg)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::example_value;
    use crate::facts::SimilarAnomaly;
    use crate::request::ReportRequest;

    fn parts(history: History) -> (Facts, Narrative, ObjectKeys) {
        let req = ReportRequest::from_value(example_value()).unwrap();
        let facts = Facts::derive(&req, history);
        let n = Narrative::template(&facts, None);
        (facts, n, ObjectKeys::for_request(&req))
    }

    #[test]
    fn markdown_has_every_section() {
        let (f, n, k) = parts(History::NotConfigured);
        let md = render(&f, &n, &k);
        assert!(
            md.starts_with("# checkout p99 latency 1,240 ms vs typical 180 ms (6.9×) — Critical\n")
        );
        for needle in [
            "## What happened",
            "_Narrative: template_",
            "| p99 latency | **1,240 ms** | 180 ms | 6.9× | 35.2 | 0.72 |",
            "| error rate | **4.2 %** | 0.4 % |",
            "Started **2026-11-24 10:04 UTC** — 2 consecutive",
            "- `payments`",
            "](7f3a9c21d4e8b650.svg)",
            "**Latency** (p99 latency)",
            "**Errors** (error rate)",
            "**Volume** (event count)",
        ] {
            assert!(md.contains(needle), "missing {needle:?} in\n{md}");
        }
        assert!(!md.contains("Similar past anomalies"));
    }

    #[test]
    fn markdown_lists_history() {
        let t = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let (f, n, k) = parts(History::Found(vec![SimilarAnomaly {
            anomaly_id: "old1".into(),
            window_start: t,
            score: 0.8,
            severity: "Warning".into(),
        }]));
        let md = render(&f, &n, &k);
        assert!(md.contains("| Warning | 0.80 | `old1` |"), "{md}");
        let (f, n, k) = parts(History::Unavailable("timeout".into()));
        assert!(render(&f, &n, &k).contains("_Unavailable: timeout_"));
    }

    #[test]
    fn json_holds_structured_facts() {
        let (f, n, k) = parts(History::NotConfigured);
        let v: serde_json::Value = serde_json::from_str(&render_json(&f, &n, &k).unwrap()).unwrap();
        assert_eq!(v["schema"], crate::facts::SCHEMA);
        assert_eq!(v["anomalyId"], "7f3a9c21d4e8b650");
        assert_eq!(v["features"][0]["actual"], 1240.0);
        assert_eq!(v["features"][0]["kind"], "latency");
        assert_eq!(v["narrative"]["source"], "template");
        assert_eq!(v["onset"]["deviatingWindows"], 2);
        assert_eq!(v["history"]["status"], "notConfigured");
        assert_eq!(v["objects"]["svg"], k.svg);
    }
}
