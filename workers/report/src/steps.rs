//! Suggested next steps per feature family (latency, errors, volume).

use crate::facts::{FeatureFact, NextSteps};
use crate::format::FeatureKind;

/// One entry per family present, in order of the most responsible feature of each.
pub fn for_features(features: &[FeatureFact]) -> Vec<NextSteps> {
    let mut out: Vec<NextSteps> = Vec::new();
    for f in features {
        if let Some(existing) = out.iter_mut().find(|s| s.kind == f.kind) {
            existing.features.push(f.feature.clone());
            continue;
        }
        let rising = f.ratio.is_none_or(|r| r >= 1.0);
        out.push(NextSteps {
            kind: f.kind,
            features: vec![f.feature.clone()],
            steps: steps(f.kind, rising)
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
        });
    }
    out
}

/// The checklist for a family; `rising` tells a spike from a drop.
pub fn steps(kind: FeatureKind, rising: bool) -> &'static [&'static str] {
    match (kind, rising) {
        (FeatureKind::Latency, _) => &[
            "Check deploys and config changes of this key that landed just before the start time.",
            "Open traces of the slowest requests in the window; find the span that grew.",
            "Check the dependencies it calls (database, caches, downstream services) for the same window.",
            "Check saturation: CPU throttling, memory/GC pauses, connection-pool and thread-pool waits.",
        ],
        (FeatureKind::Errors, _) => &[
            "Group the window's errors by status code and message; find the dominant one.",
            "Check deploys, feature flags and config changes right before the start time; roll back if one matches.",
            "Check the health of downstream dependencies and their error rates.",
            "Check whether clients retried into the errors (retry storms inflate both errors and volume).",
        ],
        (FeatureKind::Volume, true) => &[
            "Find who sent the extra traffic: top clients, user agents, source IPs.",
            "Check for retry storms, a batch job or a marketing event that started at that time.",
            "Check that rate limits and autoscaling kept up (queue depth, 429s, pending pods).",
        ],
        (FeatureKind::Volume, false) => &[
            "Check upstream callers and routing (ingress, DNS, load balancer) for the missing traffic.",
            "Check whether clients are failing before they reach the service (client-side errors).",
            "Check the event pipeline itself (ingest, Kafka lag) before concluding traffic really dropped.",
        ],
        (FeatureKind::Other, _) => &[
            "Compare the feature with the same window on previous days to rule out a regular pattern.",
            "Check recent changes to this key around the start time.",
        ],
    }
}
