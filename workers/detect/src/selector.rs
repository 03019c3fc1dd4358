//! The Detector's event selector: which events of the pipeline a detector looks at.

use std::collections::{BTreeMap, BTreeSet};

use helios_crds::detector::EventSelector;
use helios_detection::event::Event;

/// Every listed condition must hold; an empty list accepts anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Accepted services (any when empty).
    pub services: BTreeSet<String>,
    /// Accepted endpoints (any when empty; an event without endpoint then fails).
    pub endpoints: BTreeSet<String>,
    /// Attributes that must be present with exactly these values.
    pub attributes: BTreeMap<String, String>,
}

impl Selector {
    /// Builds the selector of a spec.
    pub fn from_spec(spec: &EventSelector) -> Self {
        Self {
            services: spec.services.iter().cloned().collect(),
            endpoints: spec.endpoints.iter().cloned().collect(),
            attributes: spec.attributes.clone(),
        }
    }

    /// Whether the event belongs to this detector.
    pub fn matches(&self, e: &Event) -> bool {
        (self.services.is_empty() || self.services.contains(&e.service))
            && (self.endpoints.is_empty()
                || e.endpoint
                    .as_ref()
                    .is_some_and(|ep| self.endpoints.contains(ep)))
            && self
                .attributes
                .iter()
                .all(|(k, v)| e.attributes.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: serde_json::Value) -> Event {
        serde_json::from_value(json).unwrap()
    }

    fn selector(json: serde_json::Value) -> Selector {
        Selector::from_spec(&serde_json::from_value(json).unwrap())
    }

    #[test]
    fn empty_selector_accepts_everything() {
        let s = selector(serde_json::json!({}));
        assert!(s.matches(&event(serde_json::json!({"timestamp": 1, "service": "a"}))));
    }

    #[test]
    fn every_condition_must_hold() {
        let s = selector(serde_json::json!({
            "services": ["checkout", "cart"],
            "endpoints": ["/pay"],
            "attributes": {"region": "eu", "tier": "gold"}
        }));
        let ok = serde_json::json!({"timestamp": 1, "service": "cart", "endpoint": "/pay",
                                    "attributes": {"region": "eu", "tier": "gold", "x": "y"}});
        assert!(s.matches(&event(ok.clone())));
        let mut wrong_service = ok.clone();
        wrong_service["service"] = "search".into();
        assert!(!s.matches(&event(wrong_service)));
        let mut no_endpoint = ok.clone();
        no_endpoint.as_object_mut().unwrap().remove("endpoint");
        assert!(!s.matches(&event(no_endpoint)));
        let mut wrong_attr = ok.clone();
        wrong_attr["attributes"]["region"] = "us".into();
        assert!(!s.matches(&event(wrong_attr)));
        let mut missing_attr = ok;
        missing_attr["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("tier");
        assert!(!s.matches(&event(missing_attr)));
    }
}
