//! The prose of a report: where it came from, and the deterministic template.

use serde::Serialize;

use crate::facts::{Facts, History};
use crate::format;

/// Who wrote the narrative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TextSource {
    /// The deterministic template.
    Template,
    /// The configured chat model.
    Llm,
}

/// The narrative of a report and its provenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Narrative {
    /// Who wrote it.
    pub source: TextSource,
    /// The model, when an LLM wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The text (Markdown paragraphs).
    pub text: String,
    /// Why the LLM was not used although configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_error: Option<String>,
}

impl Narrative {
    /// The template narrative, with the reason the LLM was not used (if it was configured).
    pub fn template(facts: &Facts, llm_error: Option<String>) -> Self {
        Narrative {
            source: TextSource::Template,
            model: None,
            text: template(facts),
            llm_error,
        }
    }

    /// The provenance line shown in the report: `_Narrative: template (LLM unavailable: ...)_`.
    pub fn provenance(&self) -> String {
        match (self.source, &self.llm_error, &self.model) {
            (TextSource::Llm, _, Some(model)) => {
                format!("_Narrative: LLM ({model}), from the facts below_")
            }
            (TextSource::Llm, _, None) => "_Narrative: LLM, from the facts below_".to_string(),
            (TextSource::Template, Some(e), _) => {
                format!("_Narrative: template (LLM unavailable: {e})_")
            }
            (TextSource::Template, None, _) => "_Narrative: template_".to_string(),
        }
    }
}

/// The deterministic narrative: same facts → same text.
pub fn template(f: &Facts) -> String {
    let mut out = format!(
        "**{}** in pipeline `{}/{}` was flagged **{}** by detector `{}` (score {:.2}) for the window {}–{} UTC.",
        f.key,
        f.namespace,
        f.pipeline,
        f.severity,
        f.detector,
        f.score,
        format::timestamp(f.window_start).trim_end_matches(" UTC"),
        format::clock(f.window_end),
    );
    let mut parts = f.features.iter().map(|x| {
        format!(
            "{} was {} against a typical {} ({})",
            x.label, x.actual_text, x.typical_text, x.change
        )
    });
    if let Some(first) = parts.next() {
        let rest: Vec<String> = parts.collect();
        out.push(' ');
        out.push_str(&capitalise(&first));
        if !rest.is_empty() {
            out.push_str("; ");
            out.push_str(&rest.join("; "));
        }
        out.push('.');
    }
    if f.onset.deviating_windows > 1 {
        out.push_str(&format!(
            " The deviation began at {} UTC and lasted {} windows up to the alert.",
            format::clock(f.onset.started_at),
            f.onset.deviating_windows
        ));
    } else {
        out.push_str(" The deviation began with the anomalous window itself.");
    }
    if f.blast_radius.is_empty() {
        out.push_str(&format!(
            " No other key was anomalous at the same time: the impact looks confined to {}.",
            f.key
        ));
    } else {
        out.push_str(&format!(
            " {} other key{} anomalous at the same time ({}), so the cause may be shared.",
            f.blast_radius.len(),
            if f.blast_radius.len() == 1 {
                " was"
            } else {
                "s were"
            },
            f.blast_radius.join(", ")
        ));
    }
    match &f.history {
        History::Found(v) if !v.is_empty() => out.push_str(&format!(
            " The same fingerprint fired {} time{} before, most recently {}.",
            v.len(),
            if v.len() == 1 { "" } else { "s" },
            v.first()
                .map(|a| format::timestamp(a.window_start))
                .unwrap_or_default()
        )),
        History::Found(_) => {
            out.push_str(" It is the first anomaly with this fingerprint on record.")
        }
        _ => {}
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::example_value;
    use crate::request::ReportRequest;

    fn facts() -> Facts {
        Facts::derive(
            &ReportRequest::from_value(example_value()).unwrap(),
            History::NotConfigured,
        )
    }

    #[test]
    fn template_states_the_facts() {
        let t = template(&facts());
        assert!(
            t.starts_with(
                "**checkout** in pipeline `shop/checkout-events` was flagged **Critical**"
            ),
            "{t}"
        );
        assert!(
            t.contains("P99 latency was 1,240 ms against a typical 180 ms (6.9×)"),
            "{t}"
        );
        assert!(t.contains("began at 10:04 UTC and lasted 2 windows"), "{t}");
        assert!(t.contains("2 other keys were anomalous"), "{t}");
        assert_eq!(t, template(&facts()));
    }

    #[test]
    fn provenance_lines() {
        let f = facts();
        assert_eq!(
            Narrative::template(&f, None).provenance(),
            "_Narrative: template_"
        );
        assert_eq!(
            Narrative::template(&f, Some("timeout after 2000 ms".into())).provenance(),
            "_Narrative: template (LLM unavailable: timeout after 2000 ms)_"
        );
    }
}
