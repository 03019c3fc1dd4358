//! Similar past anomalies: the same fingerprint in a PostgreSQL table named by the caller.
//!
//! The table needs the columns `anomaly_id text`, `fingerprint text`,
//! `window_start timestamptz`, `score double precision` and `severity text`. The lookup is
//! bounded in time; when it fails the report says so instead of failing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::error::Error;
use crate::facts::{History, SimilarAnomaly};
use crate::request::{ReportRequest, is_table_name};

/// How many past anomalies a report lists.
pub const LIMIT: i64 = 5;
/// Upper bound on the whole lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// A lazily connecting pool to the history database.
#[derive(Debug, Clone)]
pub struct HistoryDb {
    pool: PgPool,
}

impl HistoryDb {
    /// A pool for `url`; nothing connects until the first lookup.
    pub fn connect_lazy(url: &str) -> Result<Self, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(LOOKUP_TIMEOUT)
            .connect_lazy(url)
            .map_err(|e| Error::Config(format!("DATABASE_URL: {e}")))?;
        Ok(Self { pool })
    }

    /// Past anomalies with the request's fingerprint before its window, newest first.
    pub async fn similar(&self, table: &str, req: &ReportRequest) -> History {
        if !is_table_name(table) {
            return History::Unavailable(format!("`{table}` is not a table name"));
        }
        // Audited: the table name is a validated identifier, quoted part by part; values are bound.
        let sql = sqlx::AssertSqlSafe(select_sql(table));
        let query = sqlx::query_as::<_, (String, DateTime<Utc>, f64, String)>(sql)
            .bind(&req.fingerprint)
            .bind(&req.anomaly_id)
            .bind(req.window_start)
            .bind(LIMIT)
            .fetch_all(&self.pool);
        match tokio::time::timeout(LOOKUP_TIMEOUT, query).await {
            Err(_) => History::Unavailable(format!(
                "history lookup timed out after {} ms",
                LOOKUP_TIMEOUT.as_millis()
            )),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, table, "history lookup failed");
                History::Unavailable(format!("history lookup failed: {e}"))
            }
            Ok(Ok(rows)) => History::Found(
                rows.into_iter()
                    .map(
                        |(anomaly_id, window_start, score, severity)| SimilarAnomaly {
                            anomaly_id,
                            window_start,
                            score,
                            severity,
                        },
                    )
                    .collect(),
            ),
        }
    }
}

/// The lookup query for a (validated) table name; each part is quoted.
pub fn select_sql(table: &str) -> String {
    let quoted: Vec<String> = table.split('.').map(|p| format!("\"{p}\"")).collect();
    format!(
        "SELECT anomaly_id, window_start, score, severity FROM {} \
         WHERE fingerprint = $1 AND anomaly_id <> $2 AND window_start < $3 \
         ORDER BY window_start DESC LIMIT $4",
        quoted.join(".")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_the_table() {
        assert!(select_sql("helios.anomalies").contains("FROM \"helios\".\"anomalies\" WHERE"));
    }
}
