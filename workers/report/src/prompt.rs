//! The chat prompt, built from the structured facts only (never from raw event payloads).

use serde::Serialize;

use crate::facts::{Facts, History};

/// One chat message of the OpenAI-compatible API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    /// `system` or `user`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

const SYSTEM: &str = "You write the \"What happened\" section of an incident report for on-call engineers. \
Use only the facts in the JSON you are given; do not invent causes, numbers, names or timelines. \
Write 3 to 5 plain sentences of Markdown (no headings, no lists): what is anomalous and how much, \
when it started, what else is affected, and whether it happened before.";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeature<'a> {
    feature: &'a str,
    actual: &'a str,
    typical: &'a str,
    change: &'a str,
    contribution: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PromptFacts<'a> {
    summary: &'a str,
    severity: String,
    score: f64,
    namespace: &'a str,
    pipeline: &'a str,
    detector: &'a str,
    key: &'a str,
    window_start: String,
    window_end: String,
    started_at: String,
    deviating_windows: usize,
    features: Vec<PromptFeature<'a>>,
    other_keys_anomalous_at_the_same_time: &'a [String],
    similar_past_anomalies: Option<Vec<String>>,
}

/// The messages for the narrative of `facts`.
pub fn messages(facts: &Facts) -> Vec<ChatMessage> {
    let similar = match &facts.history {
        History::Found(v) => Some(
            v.iter()
                .map(|a| {
                    format!(
                        "{} {} score {:.2}",
                        a.window_start.to_rfc3339(),
                        a.severity,
                        a.score
                    )
                })
                .collect(),
        ),
        _ => None,
    };
    let p = PromptFacts {
        summary: &facts.summary,
        severity: facts.severity.to_string(),
        score: facts.score,
        namespace: &facts.namespace,
        pipeline: &facts.pipeline,
        detector: &facts.detector,
        key: &facts.key,
        window_start: facts.window_start.to_rfc3339(),
        window_end: facts.window_end.to_rfc3339(),
        started_at: facts.onset.started_at.to_rfc3339(),
        deviating_windows: facts.onset.deviating_windows,
        features: facts
            .features
            .iter()
            .map(|f| PromptFeature {
                feature: &f.label,
                actual: &f.actual_text,
                typical: &f.typical_text,
                change: &f.change,
                contribution: f.contribution,
            })
            .collect(),
        other_keys_anomalous_at_the_same_time: &facts.blast_radius,
        similar_past_anomalies: similar,
    };
    let json = serde_json::to_string_pretty(&p).unwrap_or_else(|_| facts.summary.clone());
    vec![
        ChatMessage {
            role: "system",
            content: SYSTEM.to_string(),
        },
        ChatMessage {
            role: "user",
            content: format!("Facts of the anomaly:\n{json}"),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::example_value;
    use crate::request::ReportRequest;

    #[test]
    fn prompt_carries_the_facts_only() {
        let mut v = example_value();
        v["rawEvents"] = serde_json::json!([{"payload": "SECRET-PAYLOAD"}]);
        let req = ReportRequest::from_value(v).unwrap();
        let m = messages(&Facts::derive(&req, History::NotConfigured));
        assert_eq!(m.len(), 2);
        let user = &m[1].content;
        for needle in [
            "1,240 ms",
            "180 ms",
            "6.9×",
            "checkout",
            "payments",
            "Critical",
            "2026-11-24T10:04:00+00:00",
        ] {
            assert!(user.contains(needle), "missing {needle} in {user}");
        }
        assert!(!user.contains("SECRET-PAYLOAD"));
    }
}
