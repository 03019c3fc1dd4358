//! Clients for the stack's servers, configured from [`StackEnv`]: Kafka, PostgreSQL, S3, Lambda.

use crate::env::{StackEnv, StackError};
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use rdkafka::ClientConfig;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

/// A Kafka client configuration pointing at the stack's broker (checked reachable).
pub fn kafka_config(env: &StackEnv) -> Result<ClientConfig, StackError> {
    env.require_reachable("Kafka", "KAFKA_BOOTSTRAP")?;
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", env.get("KAFKA_BOOTSTRAP")?);
    Ok(cfg)
}

/// [`kafka_config`] with the ingest worker's producer settings (idempotent, acks all,
/// `linger.ms` 2, lz4, large batches and queue): what a load generator standing in for
/// `helios ingest` produces with.
pub fn ingest_producer_config(env: &StackEnv) -> Result<ClientConfig, StackError> {
    let mut cfg = kafka_config(env)?;
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000");
    Ok(cfg)
}

/// A small connection pool to the stack's PostgreSQL (checked reachable).
pub async fn postgres_pool(env: &StackEnv) -> Result<PgPool, StackError> {
    env.require_reachable("PostgreSQL", "DATABASE_URL")?;
    let url = env.get("DATABASE_URL")?;
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|e| StackError::Unreachable {
            component: "PostgreSQL".into(),
            addr: crate::env::host_port(url),
            reason: e.to_string(),
        })
}

fn credentials(env: &StackEnv) -> Result<(Credentials, Region), StackError> {
    let creds = Credentials::new(
        env.get("AWS_ACCESS_KEY_ID")?,
        env.get("AWS_SECRET_ACCESS_KEY")?,
        None,
        None,
        "helios-stack",
    );
    Ok((creds, Region::new(env.get("AWS_REGION")?.to_string())))
}

/// An S3 client for the stack's S3 server (path-style addressing, static credentials).
pub fn s3_client(env: &StackEnv) -> Result<aws_sdk_s3::Client, StackError> {
    env.require_reachable("S3", "S3_ENDPOINT")?;
    let (creds, region) = credentials(env)?;
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(creds)
        .endpoint_url(env.get("S3_ENDPOINT")?)
        .force_path_style(true)
        .build();
    Ok(aws_sdk_s3::Client::from_conf(conf))
}

/// A Lambda client for the stack's Lambda emulator.
pub fn lambda_client(env: &StackEnv) -> Result<aws_sdk_lambda::Client, StackError> {
    env.require_reachable("Lambda emulator", "LAMBDA_ENDPOINT")?;
    let (creds, region) = credentials(env)?;
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(creds)
        .endpoint_url(env.get("LAMBDA_ENDPOINT")?)
        .build();
    Ok(aws_sdk_lambda::Client::from_conf(conf))
}
