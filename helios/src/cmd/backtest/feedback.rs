//! `helios backtest --feedback FILE`: labels on the alerts of an earlier run, replayed as a team
//! would have given them. One JSON object per line: `{"key": "checkout", "start":
//! "2026-01-09T03:00:00Z", "label": "false-positive"}` (the alert's key and episode start, as
//! the report lists them) or `{"anomalyId": "…", "label": "confirmed"}`. When a labelled alert
//! fires in the replay it still counts (the label came after it); a false positive then
//! suppresses its pattern on its key for the rest of the replay, exactly as the worker does
//! once the Detector carries the annotation.

use std::path::Path;

use helios_detect::feedback::Label;
use serde::Deserialize;

use super::{Error, parse_time};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    anomaly_id: Option<String>,
    key: Option<String>,
    start: Option<String>,
    label: String,
}

/// One label.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    anomaly_id: Option<String>,
    key: Option<String>,
    start_ms: Option<i64>,
    label: Label,
}

/// The labels of a feedback file.
#[derive(Debug, Clone, Default)]
pub(super) struct Feedback(Vec<Entry>);

impl Feedback {
    /// Reads `path`; a bad line is an error naming its number and field.
    pub(super) fn load(path: &Path) -> Result<Self, Error> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Events {
            path: name.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|e| Error::Usage(format!("--feedback {name}: {e}")))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let n = i + 1;
            let l: Line = serde_json::from_str(raw).map_err(|e| format!("line {n}: {e}"))?;
            let label = Label::parse(&l.label).ok_or_else(|| {
                format!(
                    "line {n}: label {:?} is not false-positive or confirmed",
                    l.label
                )
            })?;
            let start_ms = match &l.start {
                Some(s) => Some(parse_time(s).map_err(|e| format!("line {n}: start: {e}"))?),
                None => None,
            };
            if l.anomaly_id.is_none() && (l.key.is_none() || start_ms.is_none()) {
                return Err(format!("line {n}: needs anomalyId, or key and start"));
            }
            out.push(Entry {
                anomaly_id: l.anomaly_id,
                key: l.key,
                start_ms,
                label,
            });
        }
        Ok(Self(out))
    }

    /// Whether the alert `id` of `key` whose episode started at `start_ms` is labelled a
    /// false positive.
    pub(super) fn false_positive(&self, id: &str, key: &str, start_ms: i64) -> bool {
        self.0.iter().any(|e| {
            e.label == Label::FalsePositive
                && (e.anomaly_id.as_deref() == Some(id)
                    || (e.key.as_deref() == Some(key) && e.start_ms == Some(start_ms)))
        })
    }

    /// Labels in the file.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_by_id_or_by_key_and_start_and_bad_lines_are_named() {
        let f = Feedback::parse(
            "{\"key\":\"checkout\",\"start\":\"2026-01-09T03:00:00Z\",\"label\":\"false-positive\"}\n\
             \n{\"anomalyId\":\"abc\",\"label\":\"fp\"}\n{\"anomalyId\":\"def\",\"label\":\"confirmed\"}\n",
        )
        .unwrap_or_default();
        assert_eq!(f.len(), 3);
        let start = parse_time("2026-01-09T03:00:00Z").unwrap_or_default();
        assert!(f.false_positive("x", "checkout", start));
        assert!(!f.false_positive("x", "cart", start));
        assert!(f.false_positive("abc", "cart", 0));
        assert!(!f.false_positive("def", "cart", 0), "confirmed");
        let e = Feedback::parse("{\"key\":\"a\",\"label\":\"false-positive\"}").err();
        assert!(e.is_some_and(|e| e.contains("line 1") && e.contains("key and start")));
        let e = Feedback::parse("{}\n{\"anomalyId\":\"a\",\"label\":\"meh\"}").err();
        assert!(e.is_some_and(|e| e.contains("line 1")));
    }
}
