//! The rdkafka admin client: observe a topic, carry out a [`TopicPlan`], delete topics.

use super::plan::{self, DesiredTopic, ObservedTopic, TopicPlan};
use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A failed Kafka admin operation. Variant names are metric labels and condition reasons.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The connection settings could not be resolved (ConfigMap, Secret, retention).
    #[error("{0}")]
    Connection(String),
    /// The admin client could not be created (bad properties).
    #[error("cannot create a Kafka admin client: {0}")]
    ClientConfig(#[source] KafkaError),
    /// The brokers did not answer a metadata request.
    #[error("Kafka is unreachable: {0}")]
    KafkaUnreachable(#[source] KafkaError),
    /// An admin request did not finish in time.
    #[error("Kafka did not answer {0} in time")]
    KafkaTimeout(&'static str),
    /// Reading a topic's configs failed.
    #[error("cannot describe the configs of topic {topic}: {message}")]
    DescribeConfigsFailed {
        /// The topic.
        topic: String,
        /// What Kafka said.
        message: String,
    },
    /// Creating a topic failed.
    #[error("cannot create topic {topic}: {message}")]
    CreateTopicFailed {
        /// The topic.
        topic: String,
        /// What Kafka said.
        message: String,
    },
    /// Adding partitions failed.
    #[error("cannot grow topic {topic} to {partitions} partitions: {message}")]
    CreatePartitionsFailed {
        /// The topic.
        topic: String,
        /// The declared partitions.
        partitions: i32,
        /// What Kafka said.
        message: String,
    },
    /// Altering topic configs failed.
    #[error("cannot alter the configs of topic {topic}: {message}")]
    AlterConfigsFailed {
        /// The topic.
        topic: String,
        /// What Kafka said.
        message: String,
    },
    /// Deleting a topic failed.
    #[error("cannot delete topic {topic}: {message}")]
    DeleteTopicFailed {
        /// The topic.
        topic: String,
        /// What Kafka said.
        message: String,
    },
}

impl TopicError {
    /// The variant name: a stable metric label, Event reason and condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            TopicError::Connection(_) => "KafkaConnectionConfig",
            TopicError::ClientConfig(_) => "KafkaClientConfig",
            TopicError::KafkaUnreachable(_) => "KafkaUnreachable",
            TopicError::KafkaTimeout(_) => "KafkaTimeout",
            TopicError::DescribeConfigsFailed { .. } => "DescribeConfigsFailed",
            TopicError::CreateTopicFailed { .. } => "CreateTopicFailed",
            TopicError::CreatePartitionsFailed { .. } => "CreatePartitionsFailed",
            TopicError::AlterConfigsFailed { .. } => "AlterConfigsFailed",
            TopicError::DeleteTopicFailed { .. } => "DeleteTopicFailed",
        }
    }
}

/// What ensuring one topic did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicOutcome {
    /// The plan that was carried out (or refused, when incompatible).
    pub plan: TopicPlan,
    /// Partitions after the changes (as declared when created or grown).
    pub partitions: i32,
}

/// An admin client for one Kafka cluster.
#[derive(Clone)]
pub struct TopicAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
    timeout: Duration,
}

impl std::fmt::Debug for TopicAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicAdmin")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn code_message(code: RDKafkaErrorCode) -> String {
    format!("{code:?} ({code})")
}

impl TopicAdmin {
    /// An admin client for `bootstrap` with extra librdkafka `properties`; every request is
    /// bounded by `timeout`.
    pub fn new(
        bootstrap: &str,
        properties: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self, TopicError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", bootstrap);
        config.set("socket.timeout.ms", timeout.as_millis().to_string());
        config.set("reconnect.backoff.max.ms", "5000");
        for (k, v) in properties {
            config.set(k, v);
        }
        let client = config
            .create::<AdminClient<DefaultClientContext>>()
            .map_err(TopicError::ClientConfig)?;
        Ok(Self {
            client: Arc::new(client),
            timeout,
        })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// Bound an admin future by the request timeout (plus slack for librdkafka's own).
    async fn bounded<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = T>,
    ) -> Result<T, TopicError> {
        tokio::time::timeout(self.timeout + Duration::from_secs(2), fut)
            .await
            .map_err(|_| TopicError::KafkaTimeout(op))
    }

    /// Partitions and replication factor of `topic`, or `None` when it does not exist.
    async fn metadata(&self, topic: &str) -> Result<Option<(i32, i32)>, TopicError> {
        let client = Arc::clone(&self.client);
        let name = topic.to_string();
        let timeout = self.timeout;
        let joined = tokio::task::spawn_blocking(move || {
            let md = client
                .inner()
                .fetch_metadata(Some(&name), timeout)
                .map_err(TopicError::KafkaUnreachable)?;
            let found = md.topics().iter().find(|t| t.name() == name).and_then(|t| {
                if t.error().is_some() || t.partitions().is_empty() {
                    return None;
                }
                let partitions = i32::try_from(t.partitions().len()).unwrap_or(i32::MAX);
                let rf = t
                    .partitions()
                    .first()
                    .map_or(0, |p| i32::try_from(p.replicas().len()).unwrap_or(i32::MAX));
                Some((partitions, rf))
            });
            Ok(found)
        })
        .await;
        joined.unwrap_or(Err(TopicError::KafkaTimeout("metadata")))
    }

    /// The configs set on `topic` itself.
    async fn topic_config(&self, topic: &str) -> Result<BTreeMap<String, String>, TopicError> {
        let spec = ResourceSpecifier::Topic(topic);
        let opts = self.options();
        let results = self
            .bounded(
                "DescribeConfigs",
                self.client.describe_configs([&spec], &opts),
            )
            .await?
            .map_err(|e| TopicError::DescribeConfigsFailed {
                topic: topic.into(),
                message: e.to_string(),
            })?;
        let resource = results
            .into_iter()
            .next()
            .ok_or_else(|| TopicError::DescribeConfigsFailed {
                topic: topic.into(),
                message: "empty response".into(),
            })?
            .map_err(|code| TopicError::DescribeConfigsFailed {
                topic: topic.into(),
                message: code_message(code),
            })?;
        Ok(resource
            .entries
            .into_iter()
            .filter(|e| e.source == ConfigSource::DynamicTopic)
            .filter_map(|e| e.value.map(|v| (e.name, v)))
            .collect())
    }

    /// The topic as found in Kafka, or `None`.
    pub async fn observe(&self, topic: &str) -> Result<Option<ObservedTopic>, TopicError> {
        let Some((partitions, replication_factor)) = self.metadata(topic).await? else {
            return Ok(None);
        };
        let config = self.topic_config(topic).await?;
        Ok(Some(ObservedTopic {
            partitions,
            replication_factor,
            config,
        }))
    }

    /// Make `desired` exist as declared: create, grow partitions, correct config drift; an
    /// incompatible topic is left alone and reported in the outcome.
    pub async fn ensure(&self, desired: &DesiredTopic) -> Result<TopicOutcome, TopicError> {
        let observed = self.observe(&desired.name).await?;
        let plan = plan::plan(desired, observed.as_ref());
        let mut partitions = observed.as_ref().map_or(0, |o| o.partitions);
        if !plan.incompatible.is_empty() {
            return Ok(TopicOutcome { plan, partitions });
        }
        if plan.create {
            self.create(desired).await?;
            partitions = desired.partitions;
        }
        if let Some(count) = plan.grow_to {
            self.grow(&desired.name, count).await?;
            partitions = count;
        }
        if let Some(config) = &plan.set_config {
            self.alter(&desired.name, config).await?;
        }
        Ok(TopicOutcome { plan, partitions })
    }

    async fn create(&self, desired: &DesiredTopic) -> Result<(), TopicError> {
        let mut topic = NewTopic::new(
            &desired.name,
            desired.partitions,
            TopicReplication::Fixed(desired.replication_factor),
        );
        for (k, v) in &desired.config {
            topic = topic.set(k, v);
        }
        let opts = self.options();
        let fail = |message: String| TopicError::CreateTopicFailed {
            topic: desired.name.clone(),
            message,
        };
        let results = self
            .bounded("CreateTopics", self.client.create_topics([&topic], &opts))
            .await?
            .map_err(|e| fail(e.to_string()))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(fail(code_message(code))),
            }
        }
        Ok(())
    }

    async fn grow(&self, topic: &str, partitions: i32) -> Result<(), TopicError> {
        let count = usize::try_from(partitions).unwrap_or(0);
        let request = NewPartitions::new(topic, count);
        let opts = self.options();
        let fail = |message: String| TopicError::CreatePartitionsFailed {
            topic: topic.into(),
            partitions,
            message,
        };
        let results = self
            .bounded(
                "CreatePartitions",
                self.client.create_partitions([&request], &opts),
            )
            .await?
            .map_err(|e| fail(e.to_string()))?;
        for result in results {
            if let Err((_, code)) = result {
                return Err(fail(code_message(code)));
            }
        }
        Ok(())
    }

    async fn alter(
        &self,
        topic: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let mut request = AlterConfig::new(ResourceSpecifier::Topic(topic));
        for (k, v) in config {
            request = request.set(k, v);
        }
        let opts = self.options();
        let fail = |message: String| TopicError::AlterConfigsFailed {
            topic: topic.into(),
            message,
        };
        let results = self
            .bounded("AlterConfigs", self.client.alter_configs([&request], &opts))
            .await?
            .map_err(|e| fail(e.to_string()))?;
        for result in results {
            if let Err((_, code)) = result {
                return Err(fail(code_message(code)));
            }
        }
        Ok(())
    }

    /// Delete `topics`; topics that are already gone count as deleted.
    pub async fn delete(&self, topics: &[&str]) -> Result<(), TopicError> {
        // A metadata round trip first, so an unreachable broker is reported as such.
        for topic in topics {
            self.metadata(topic).await?;
        }
        let opts = self.options();
        let results = self
            .bounded("DeleteTopics", self.client.delete_topics(topics, &opts))
            .await?
            .map_err(|e| TopicError::DeleteTopicFailed {
                topic: topics.join(","),
                message: e.to_string(),
            })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => {
                    return Err(TopicError::DeleteTopicFailed {
                        topic,
                        message: code_message(code),
                    });
                }
            }
        }
        Ok(())
    }
}
