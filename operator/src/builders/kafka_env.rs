//! The Kafka connection settings every worker gets: bootstrap servers (a value or a ConfigMap
//! key), the security protocol and SASL mechanism as librdkafka properties, SASL credentials by
//! Secret reference.

use super::{env, env_from_config_map, env_from_secret};
use helios_crds::pipeline::{KafkaSpec, SaslMechanism};
use k8s_openapi::api::core::v1::EnvVar;

/// `HELIOS_KAFKA_BOOTSTRAP`, from the spec's value or its ConfigMap reference.
pub fn bootstrap_env(kafka: &KafkaSpec) -> EnvVar {
    match (&kafka.bootstrap_servers, &kafka.bootstrap_config_map_ref) {
        (Some(servers), _) => env("HELIOS_KAFKA_BOOTSTRAP", servers.clone()),
        (None, Some(r)) => env_from_config_map("HELIOS_KAFKA_BOOTSTRAP", &r.name, &r.key),
        // Admission refuses a spec with neither; render an empty value rather than panic.
        (None, None) => env("HELIOS_KAFKA_BOOTSTRAP", ""),
    }
}

/// librdkafka properties implied by the TLS and SASL settings (`key=value` pairs).
pub fn client_properties(kafka: &KafkaSpec) -> Vec<(String, String)> {
    let tls = kafka.tls.as_ref().is_some_and(|t| t.enabled);
    let protocol = match (tls, kafka.sasl.is_some()) {
        (false, false) => return Vec::new(),
        (true, false) => "SSL",
        (false, true) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    };
    let mut props = vec![("security.protocol".to_string(), protocol.to_string())];
    if let Some(sasl) = &kafka.sasl {
        let mechanism = match sasl.mechanism {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        };
        props.push(("sasl.mechanism".into(), mechanism.into()));
    }
    props
}

/// `HELIOS_KAFKA_PROPERTIES` (when any property applies) and the SASL credential variables.
pub fn security_env(kafka: &KafkaSpec, with_sasl_credentials: bool) -> Vec<EnvVar> {
    let mut out = Vec::new();
    let props = client_properties(kafka);
    if !props.is_empty() {
        let joined = props
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        out.push(env("HELIOS_KAFKA_PROPERTIES", joined));
    }
    if let (Some(sasl), true) = (&kafka.sasl, with_sasl_credentials) {
        out.push(env_from_secret(
            "HELIOS_KAFKA_SASL_USERNAME",
            &sasl.username_secret_ref,
        ));
        out.push(env_from_secret(
            "HELIOS_KAFKA_SASL_PASSWORD",
            &sasl.password_secret_ref,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kafka(yaml: &str) -> KafkaSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn plaintext_needs_no_properties() {
        let k = kafka("bootstrapServers: k:9092");
        assert!(client_properties(&k).is_empty());
        assert_eq!(bootstrap_env(&k).value.as_deref(), Some("k:9092"));
        assert!(security_env(&k, true).is_empty());
    }

    #[test]
    fn bootstrap_from_config_map() {
        let k = kafka("bootstrapConfigMapRef: {name: kafka, key: servers}");
        let e = bootstrap_env(&k);
        let r = e.value_from.and_then(|v| v.config_map_key_ref).unwrap();
        assert_eq!((r.name.as_str(), r.key.as_str()), ("kafka", "servers"));
    }

    #[test]
    fn sasl_over_tls() {
        let k = kafka(
            "bootstrapServers: k:9093\ntls: {enabled: true}\nsasl: {mechanism: SCRAM-SHA-512, usernameSecretRef: {name: s, key: u}, passwordSecretRef: {name: s, key: p}}",
        );
        let env = security_env(&k, true);
        assert_eq!(
            env[0].value.as_deref(),
            Some("security.protocol=SASL_SSL,sasl.mechanism=SCRAM-SHA-512")
        );
        assert_eq!(env[1].name, "HELIOS_KAFKA_SASL_USERNAME");
        assert_eq!(security_env(&k, false).len(), 1);
    }
}
