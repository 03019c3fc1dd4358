//! Deterministic object keys: `<prefix>/<namespace>/<pipeline>/<YYYY-MM-DD>/<anomaly id>.{md,json,svg}`.

use serde::Serialize;

use crate::request::ReportRequest;

/// The three objects of one report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKeys {
    /// Bucket.
    pub bucket: String,
    /// Markdown report.
    pub markdown: String,
    /// Structured facts.
    pub json: String,
    /// Chart.
    pub svg: String,
}

impl ObjectKeys {
    /// The keys for a request (same request → same keys, so a retry overwrites).
    pub fn for_request(req: &ReportRequest) -> Self {
        let prefix = req.report.prefix.trim_matches('/');
        let day = req.window_start.format("%Y-%m-%d");
        let base = format!(
            "{}/{}/{day}/{}",
            req.namespace, req.pipeline, req.anomaly_id
        );
        let base = if prefix.is_empty() {
            base
        } else {
            format!("{prefix}/{base}")
        };
        ObjectKeys {
            bucket: req.report.bucket.clone(),
            markdown: format!("{base}.md"),
            json: format!("{base}.json"),
            svg: format!("{base}.svg"),
        }
    }

    /// `s3://bucket/key` of each object, Markdown first.
    pub fn uris(&self) -> Vec<String> {
        [&self.markdown, &self.json, &self.svg]
            .iter()
            .map(|k| self.uri(k))
            .collect()
    }

    /// `s3://bucket/key`.
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The chart's file name, for the relative link in the Markdown.
    pub fn svg_file_name(&self) -> &str {
        self.svg.rsplit('/').next().unwrap_or(&self.svg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::example_value;

    #[test]
    fn keys_are_deterministic() {
        let mut v = example_value();
        v["report"]["prefix"] = serde_json::json!("/reports/");
        let req = ReportRequest::from_value(v).unwrap();
        let k = ObjectKeys::for_request(&req);
        assert_eq!(
            k.markdown,
            "reports/shop/checkout-events/2026-11-24/7f3a9c21d4e8b650.md"
        );
        assert_eq!(
            k.uris()[2],
            "s3://helios-reports/reports/shop/checkout-events/2026-11-24/7f3a9c21d4e8b650.svg"
        );
        assert_eq!(k.svg_file_name(), "7f3a9c21d4e8b650.svg");
        assert_eq!(k, ObjectKeys::for_request(&req));
        let mut v = example_value();
        v["report"]["prefix"] = serde_json::json!("");
        let req = ReportRequest::from_value(v).unwrap();
        assert_eq!(
            ObjectKeys::for_request(&req).json,
            "shop/checkout-events/2026-11-24/7f3a9c21d4e8b650.json"
        );
    }
}
