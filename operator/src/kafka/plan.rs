//! What to do to a topic so it matches its declaration, decided without I/O.
//!
//! Partitions only grow; a topic with more partitions than declared, or another replication
//! factor, is reported as incompatible and left alone (never deleted and recreated).

use helios_crds::common::DurationError;
use helios_crds::pipeline::TopicSpec;
use std::collections::BTreeMap;

/// A topic as declared by the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTopic {
    /// Topic name.
    pub name: String,
    /// Declared partitions.
    pub partitions: i32,
    /// Declared replication factor.
    pub replication_factor: i32,
    /// Topic config, including `retention.ms` derived from `retention`.
    pub config: BTreeMap<String, String>,
}

/// A topic as found in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTopic {
    /// Number of partitions.
    pub partitions: i32,
    /// Replicas of the first partition.
    pub replication_factor: i32,
    /// Configs set on the topic itself (source `DYNAMIC_TOPIC_CONFIG`).
    pub config: BTreeMap<String, String>,
}

/// Why an existing topic cannot be made to match its declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incompatibility {
    /// The topic has more partitions than declared (Kafka cannot remove partitions).
    TooManyPartitions {
        /// Observed.
        actual: i32,
        /// Declared.
        declared: i32,
    },
    /// The replication factor differs (Helios never reassigns replicas).
    ReplicationFactorMismatch {
        /// Observed.
        actual: i32,
        /// Declared.
        declared: i32,
    },
}

impl std::fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incompatibility::TooManyPartitions { actual, declared } => write!(
                f,
                "has {actual} partitions but {declared} are declared (partitions cannot be removed)"
            ),
            Incompatibility::ReplicationFactorMismatch { actual, declared } => write!(
                f,
                "has replication factor {actual} but {declared} is declared (not changed by Helios)"
            ),
        }
    }
}

/// The changes a topic needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPlan {
    /// The topic does not exist: create it.
    pub create: bool,
    /// Grow the partitions to this count.
    pub grow_to: Option<i32>,
    /// Replace the topic's configs with these (they drifted).
    pub set_config: Option<BTreeMap<String, String>>,
    /// Reasons the topic cannot match; when non-empty nothing else is done.
    pub incompatible: Vec<Incompatibility>,
}

impl TopicPlan {
    /// Whether the topic already matches.
    pub fn is_noop(&self) -> bool {
        !self.create
            && self.grow_to.is_none()
            && self.set_config.is_none()
            && self.incompatible.is_empty()
    }
}

/// The declared form of a topic.
pub fn desired(name: &str, spec: &TopicSpec) -> Result<DesiredTopic, DurationError> {
    let mut config = spec.config.clone();
    if let Some(retention) = &spec.retention {
        let ms = retention.parse()?.as_millis();
        config.insert("retention.ms".into(), ms.to_string());
    }
    Ok(DesiredTopic {
        name: name.into(),
        partitions: spec.partitions,
        replication_factor: spec.replication_factor,
        config,
    })
}

/// Decide what `observed` needs to match `desired`.
pub fn plan(desired: &DesiredTopic, observed: Option<&ObservedTopic>) -> TopicPlan {
    let Some(observed) = observed else {
        return TopicPlan {
            create: true,
            ..TopicPlan::default()
        };
    };
    let mut incompatible = Vec::new();
    if observed.partitions > desired.partitions {
        incompatible.push(Incompatibility::TooManyPartitions {
            actual: observed.partitions,
            declared: desired.partitions,
        });
    }
    if observed.replication_factor != desired.replication_factor {
        incompatible.push(Incompatibility::ReplicationFactorMismatch {
            actual: observed.replication_factor,
            declared: desired.replication_factor,
        });
    }
    if !incompatible.is_empty() {
        return TopicPlan {
            incompatible,
            ..TopicPlan::default()
        };
    }
    TopicPlan {
        create: false,
        grow_to: (observed.partitions < desired.partitions).then_some(desired.partitions),
        set_config: (observed.config != desired.config).then(|| desired.config.clone()),
        incompatible,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(yaml: &str) -> TopicSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn observed(partitions: i32, rf: i32, config: &[(&str, &str)]) -> ObservedTopic {
        ObservedTopic {
            partitions,
            replication_factor: rf,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn retention_becomes_retention_ms() {
        let d = desired(
            "t",
            &spec("{partitions: 3, retention: 168h, config: {cleanup.policy: delete}}"),
        )
        .unwrap();
        assert_eq!(d.config["retention.ms"], "604800000");
        assert_eq!(d.config["cleanup.policy"], "delete");
        assert_eq!(d.replication_factor, 1);
    }

    #[test]
    fn missing_topic_is_created() {
        let d = desired("t", &spec("{partitions: 3}")).unwrap();
        assert!(plan(&d, None).create);
    }

    #[test]
    fn matching_topic_needs_nothing() {
        let d = desired("t", &spec("{partitions: 3, retention: 1h}")).unwrap();
        let o = observed(3, 1, &[("retention.ms", "3600000")]);
        assert!(plan(&d, Some(&o)).is_noop());
    }

    #[test]
    fn partitions_grow_and_config_drift_is_corrected() {
        let d = desired("t", &spec("{partitions: 6, retention: 1h}")).unwrap();
        let o = observed(3, 1, &[("retention.ms", "1000"), ("segment.ms", "5")]);
        let p = plan(&d, Some(&o));
        assert_eq!(p.grow_to, Some(6));
        assert_eq!(p.set_config, Some(d.config.clone()));
        assert!(!p.create && p.incompatible.is_empty());
    }

    #[test]
    fn shrinking_or_replication_change_is_incompatible_not_recreated() {
        let d = desired("t", &spec("{partitions: 3, replicationFactor: 1}")).unwrap();
        let p = plan(&d, Some(&observed(6, 3, &[])));
        assert!(!p.create && p.grow_to.is_none() && p.set_config.is_none());
        assert_eq!(
            p.incompatible,
            vec![
                Incompatibility::TooManyPartitions {
                    actual: 6,
                    declared: 3
                },
                Incompatibility::ReplicationFactorMismatch {
                    actual: 3,
                    declared: 1
                },
            ]
        );
        assert!(p.incompatible[0].to_string().contains("cannot be removed"));
    }
}
