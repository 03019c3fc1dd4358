//! Partition keys: the event fields that split a detector's stream into independent series.

use helios_detection::event::Event;

use crate::config::ConfigError;

/// Placeholder for a partition field the event does not carry.
pub const MISSING: &str = "-";

/// One field of the partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The service.
    Service,
    /// The endpoint.
    Endpoint,
    /// One attribute.
    Attribute(String),
}

/// The ordered fields of a partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionBy(pub Vec<KeyPart>);

impl PartitionBy {
    /// Parses `service`, `endpoint` and `attributes.<name>` (at least one).
    pub fn parse<'a>(parts: impl IntoIterator<Item = &'a str>) -> Result<Self, ConfigError> {
        let mut out = Vec::new();
        for p in parts {
            let part = match p {
                "service" => KeyPart::Service,
                "endpoint" => KeyPart::Endpoint,
                other => match other.strip_prefix("attributes.") {
                    Some(name) if !name.is_empty() => KeyPart::Attribute(name.to_string()),
                    _ => {
                        return Err(ConfigError::Invalid(format!(
                            "partitionBy: unknown field {other:?} (service, endpoint, attributes.<name>)"
                        )));
                    }
                },
            };
            if !out.contains(&part) {
                out.push(part);
            }
        }
        if out.is_empty() {
            return Err(ConfigError::Invalid("partitionBy must not be empty".into()));
        }
        Ok(Self(out))
    }

    /// The key of an event: the fields' values joined by a space, `-` for a missing one.
    pub fn key(&self, e: &Event) -> String {
        let values: Vec<&str> = self
            .0
            .iter()
            .map(|p| match p {
                KeyPart::Service => Some(e.service.as_str()),
                KeyPart::Endpoint => e.endpoint.as_deref(),
                KeyPart::Attribute(name) => e.attributes.get(name).map(String::as_str),
            })
            .map(|v| v.filter(|s| !s.is_empty()).unwrap_or(MISSING))
            .collect();
        values.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        serde_json::from_value(serde_json::json!({
            "timestamp": 1, "service": "checkout", "endpoint": "/api/cart",
            "attributes": {"region": "eu"}
        }))
        .unwrap()
    }

    #[test]
    fn keys_join_fields_in_order() {
        let e = event();
        assert_eq!(PartitionBy::parse(["service"]).unwrap().key(&e), "checkout");
        assert_eq!(
            PartitionBy::parse(["service", "endpoint"]).unwrap().key(&e),
            "checkout /api/cart"
        );
        assert_eq!(
            PartitionBy::parse(["attributes.region", "service"])
                .unwrap()
                .key(&e),
            "eu checkout"
        );
    }

    #[test]
    fn missing_fields_use_a_placeholder() {
        let mut e = event();
        e.endpoint = None;
        let p = PartitionBy::parse(["service", "endpoint", "attributes.zone"]).unwrap();
        assert_eq!(p.key(&e), "checkout - -");
    }

    #[test]
    fn bad_fields_refused_duplicates_collapsed() {
        assert!(PartitionBy::parse(["host"]).is_err());
        assert!(PartitionBy::parse(["attributes."]).is_err());
        assert!(PartitionBy::parse(Vec::<&str>::new()).is_err());
        assert_eq!(
            PartitionBy::parse(["service", "service"]).unwrap().0,
            vec![KeyPart::Service]
        );
    }
}
