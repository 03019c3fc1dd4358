//! PostgreSQL: embedded migrations, monthly partitions, and the worker's reads and writes.
//! Every statement is literal SQL with binds; every insert is idempotent.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use helios_report::request::{FeatureExplanation, WindowSample};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::types::Json;

use crate::pipeline::{Scored, StoredWindow, values_map};
use crate::records::{AnomalyMessage, ts};

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed.
    #[error("postgres: {0}")]
    Sql(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored JSON column could not be encoded.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The helios tables, as seen by one detector.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    detector: String,
    features: Vec<String>,
}

/// Connects a pool to `url`.
pub async fn connect(url: &str) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?)
}

/// Applies the embedded migrations (bookkept in `helios._sqlx_migrations`).
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.create_schema("helios");
    migrator.dangerous_set_table_name("helios._sqlx_migrations");
    migrator.run(pool).await?;
    Ok(())
}

/// Creates the monthly partitions from last month to three months ahead (no-op on hypertables).
pub async fn ensure_partitions(pool: &PgPool, now: DateTime<Utc>) -> Result<(), StoreError> {
    for table in ["windows", "anomalies"] {
        sqlx::query("SELECT helios.ensure_month_partitions($1, $2, 1, 3)")
            .bind(table)
            .bind(now)
            .execute(pool)
            .await?;
    }
    Ok(())
}

type WindowRow = (
    DateTime<Utc>,
    DateTime<Utc>,
    Json<BTreeMap<String, f64>>,
    Option<f64>,
    bool,
    Option<Json<Vec<String>>>,
);

/// A window's start and features.
type SampleRow = (DateTime<Utc>, Json<BTreeMap<String, f64>>);

type AnomalyRow = (
    String,
    String,
    String,
    String,
    f64,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
    Json<Vec<FeatureExplanation>>,
    Json<BTreeMap<String, f64>>,
    i64,
);

impl Store {
    /// The store of one detector (`namespace/name`) with its feature order.
    pub fn new(pool: PgPool, detector: String, features: Vec<String>) -> Self {
        Self {
            pool,
            detector,
            features,
        }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The newest `limit` windows of `key`, oldest first.
    pub async fn load_history(
        &self,
        key: &str,
        limit: usize,
    ) -> Result<Vec<StoredWindow>, StoreError> {
        let rows: Vec<WindowRow> = sqlx::query_as(
            "SELECT window_start, window_end, features, score, anomalous, drivers \
             FROM helios.windows WHERE detector = $1 AND key = $2 \
             ORDER BY window_start DESC LIMIT $3",
        )
        .bind(&self.detector)
        .bind(key)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .rev()
            .map(
                |(start, end, features, score, anomalous, drivers)| StoredWindow {
                    start_ms: start.timestamp_millis(),
                    end_ms: end.timestamp_millis(),
                    values: self
                        .features
                        .iter()
                        .map(|f| features.0.get(f.as_str()).copied().unwrap_or(0.0))
                        .collect(),
                    score,
                    anomalous,
                    drivers: drivers.map(|d| d.0).unwrap_or_default(),
                },
            )
            .collect())
    }

    /// Writes one batch atomically: windows, new anomalies, resolutions and model snapshots.
    /// Returns the ids of anomalies inserted now (not present before).
    pub async fn write_batch(
        &self,
        scored: &Scored,
        anomalies: &[AnomalyMessage],
        dry_run: bool,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !scored.windows.is_empty() {
            let n = scored.windows.len();
            let (mut keys, mut starts, mut ends) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut features, mut scores, mut flags, mut versions, mut drivers) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for w in &scored.windows {
                keys.push(w.key.as_str());
                starts.push(ts(w.window.start_ms));
                ends.push(ts(w.window.end_ms));
                features.push(serde_json::to_value(values_map(
                    &self.features,
                    &w.window.values,
                ))?);
                scores.push(w.window.score);
                flags.push(w.window.anomalous);
                versions.push(i64::try_from(w.model_version).unwrap_or(i64::MAX));
                drivers.push(if w.window.drivers.is_empty() {
                    None
                } else {
                    Some(serde_json::to_value(&w.window.drivers)?)
                });
            }
            sqlx::query(
                "INSERT INTO helios.windows \
                   (detector, key, window_start, window_end, features, score, anomalous, \
                    model_version, drivers) \
                 SELECT $1, * FROM UNNEST($2::text[], $3::timestamptz[], $4::timestamptz[], \
                   $5::jsonb[], $6::float8[], $7::bool[], $8::int8[], $9::jsonb[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&self.detector)
            .bind(&keys)
            .bind(&starts)
            .bind(&ends)
            .bind(&features)
            .bind(&scores)
            .bind(&flags)
            .bind(&versions)
            .bind(&drivers)
            .execute(&mut *tx)
            .await?;
        }
        let inserted = if anomalies.is_empty() {
            Vec::new()
        } else {
            insert_anomalies(&mut tx, &self.detector, anomalies, dry_run).await?
        };
        if !scored.resolved.is_empty() {
            let ids: Vec<&str> = scored
                .resolved
                .iter()
                .map(|r| r.alert_id.as_str())
                .collect();
            let ends: Vec<DateTime<Utc>> = scored.resolved.iter().map(|r| ts(r.end_ms)).collect();
            sqlx::query(
                "UPDATE helios.anomalies a SET window_end = r.end_at, resolved = true \
                 FROM UNNEST($1::text[], $2::timestamptz[]) AS r(id, end_at) \
                 WHERE a.anomaly_id = r.id AND a.detector = $3 AND NOT a.resolved",
            )
            .bind(&ids)
            .bind(&ends)
            .bind(&self.detector)
            .execute(&mut *tx)
            .await?;
        }
        for m in &scored.models {
            sqlx::query(
                "INSERT INTO helios.models (detector, key, model_version, feature_names, forest) \
                 VALUES ($1, $2, $3, $4, $5::jsonb) \
                 ON CONFLICT (detector, key) DO UPDATE SET model_version = EXCLUDED.model_version, \
                   feature_names = EXCLUDED.feature_names, forest = EXCLUDED.forest, \
                   trained_at = now() \
                 WHERE helios.models.model_version <> EXCLUDED.model_version",
            )
            .bind(&self.detector)
            .bind(&m.key)
            .bind(i64::try_from(m.version).unwrap_or(i64::MAX))
            .bind(Json(&m.feature_names))
            .bind(Json(m.forest.snapshot()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Anomalies recorded but not yet notified (the outbox), oldest first.
    pub async fn outbox(&self, pipeline: &str) -> Result<Vec<AnomalyMessage>, StoreError> {
        self.anomalies(pipeline, "NOT notified").await
    }

    /// Anomalies whose episode has not ended (their alerts stay firing across a restart),
    /// oldest first.
    pub async fn open_anomalies(&self, pipeline: &str) -> Result<Vec<AnomalyMessage>, StoreError> {
        self.anomalies(pipeline, "NOT resolved").await
    }

    /// Anomalies labelled false positives (their suppressions), oldest first.
    pub async fn false_positives(&self, pipeline: &str) -> Result<Vec<AnomalyMessage>, StoreError> {
        self.anomalies(pipeline, "feedback = 'false-positive'")
            .await
    }

    /// Records `label` (`None`: the label was withdrawn) on the anomaly `anomaly_id`; whether
    /// this detector has that anomaly.
    pub async fn set_feedback(
        &self,
        anomaly_id: &str,
        label: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE helios.anomalies SET feedback = $3, \
               feedback_at = CASE WHEN $3::text IS NULL THEN NULL ELSE now() END \
             WHERE detector = $1 AND anomaly_id = $2 AND feedback IS DISTINCT FROM $3",
        )
        .bind(&self.detector)
        .bind(anomaly_id)
        .bind(label)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        let known: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM helios.anomalies WHERE detector = $1 AND anomaly_id = $2",
        )
        .bind(&self.detector)
        .bind(anomaly_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(known > 0)
    }

    /// Withdraws every label of this detector but those on `ids`.
    pub async fn clear_feedback_except(&self, ids: &[String]) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE helios.anomalies SET feedback = NULL, feedback_at = NULL \
             WHERE detector = $1 AND feedback IS NOT NULL AND NOT (anomaly_id = ANY($2))",
        )
        .bind(&self.detector)
        .bind(ids)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// This detector's enforced anomalies matching `condition` (a fixed SQL predicate).
    async fn anomalies(
        &self,
        pipeline: &str,
        condition: &'static str,
    ) -> Result<Vec<AnomalyMessage>, StoreError> {
        let sql = format!(
            "SELECT anomaly_id, key, fingerprint, severity, score, window_start, window_end, \
                    fired_window_start, explanation, features, model_version \
             FROM helios.anomalies WHERE detector = $1 AND {condition} AND NOT dry_run \
             ORDER BY window_start"
        );
        let rows: Vec<AnomalyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&self.detector)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AnomalyMessage {
                anomaly_id: r.0,
                detector: self.detector.clone(),
                pipeline: pipeline.to_string(),
                key: r.1,
                fingerprint: r.2,
                severity: r.3,
                score: r.4,
                window_start: r.5,
                window_end: r.6,
                fired_window_start: r.7,
                explanation: r.8.0,
                features: r.9.0,
                model_version: r.10,
            })
            .collect())
    }

    /// Marks an anomaly notified, with the report's URI when one was written.
    pub async fn mark_notified(
        &self,
        anomaly_id: &str,
        window_start: DateTime<Utc>,
        report_uri: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE helios.anomalies SET notified = true, notified_at = now(), \
               report_uri = COALESCE($4, report_uri) \
             WHERE anomaly_id = $1 AND window_start = $2 AND detector = $3",
        )
        .bind(anomaly_id)
        .bind(window_start)
        .bind(&self.detector)
        .bind(report_uri)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Up to `n` windows of `key` starting at or before `until`, oldest first (report context).
    pub async fn recent_windows(
        &self,
        key: &str,
        until: DateTime<Utc>,
        n: i64,
    ) -> Result<Vec<WindowSample>, StoreError> {
        let rows: Vec<SampleRow> = sqlx::query_as(
            "SELECT window_start, features FROM helios.windows \
             WHERE detector = $1 AND key = $2 AND window_start <= $3 \
             ORDER BY window_start DESC LIMIT $4",
        )
        .bind(&self.detector)
        .bind(key)
        .bind(until)
        .bind(n)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .rev()
            .map(|(start, features)| WindowSample {
                start,
                features: features.0,
            })
            .collect())
    }

    /// Other keys of this detector with an anomalous window in `[start, end)` (blast radius).
    pub async fn related_keys(
        &self,
        key: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT key FROM helios.windows \
             WHERE detector = $1 AND key <> $2 AND anomalous \
               AND window_start >= $3 AND window_start < $4 ORDER BY key LIMIT 20",
        )
        .bind(&self.detector)
        .bind(key)
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }
}

/// Inserts new anomalies in one statement; returns the ids not present before.
async fn insert_anomalies(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    detector: &str,
    anomalies: &[AnomalyMessage],
    dry_run: bool,
) -> Result<Vec<String>, StoreError> {
    let col = |f: fn(&AnomalyMessage) -> String| anomalies.iter().map(f).collect::<Vec<_>>();
    let times =
        |f: fn(&AnomalyMessage) -> DateTime<Utc>| anomalies.iter().map(f).collect::<Vec<_>>();
    let explanations = anomalies
        .iter()
        .map(|a| serde_json::to_value(&a.explanation))
        .collect::<Result<Vec<_>, _>>()?;
    let features = anomalies
        .iter()
        .map(|a| serde_json::to_value(&a.features))
        .collect::<Result<Vec<_>, _>>()?;
    let scores: Vec<f64> = anomalies.iter().map(|a| a.score).collect();
    let versions: Vec<i64> = anomalies.iter().map(|a| a.model_version).collect();
    let ids: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO helios.anomalies \
           (anomaly_id, detector, fingerprint, key, severity, score, window_start, \
            window_end, fired_window_start, explanation, features, model_version, dry_run) \
         SELECT a.id, $1, a.fingerprint, a.key, a.severity, a.score, a.window_start, \
                a.window_end, a.fired, a.explanation, a.features, a.version, $2 \
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], \
                     $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::jsonb[], \
                     $12::jsonb[], $13::int8[]) \
           AS a(id, fingerprint, key, severity, score, window_start, window_end, fired, \
                explanation, features, version) \
         ON CONFLICT DO NOTHING RETURNING anomaly_id",
    )
    .bind(detector)
    .bind(dry_run)
    .bind(col(|a| a.anomaly_id.clone()))
    .bind(col(|a| a.fingerprint.clone()))
    .bind(col(|a| a.key.clone()))
    .bind(col(|a| a.severity.clone()))
    .bind(&scores)
    .bind(times(|a| a.window_start))
    .bind(times(|a| a.window_end))
    .bind(times(|a| a.fired_window_start))
    .bind(&explanations)
    .bind(&features)
    .bind(&versions)
    .fetch_all(&mut **tx)
    .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}
