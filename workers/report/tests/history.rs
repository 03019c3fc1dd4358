//! Similar past anomalies from the stack's PostgreSQL (`e2e/stack up`).

mod common;

use helios_report::{Handler, HandlerOptions, ReportRequest};

#[tokio::test]
async fn similar_past_anomalies_are_listed() {
    let env = common::stack();
    let pool = helios_e2e::clients::postgres_pool(&env)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = common::unique("report_history").replace('-', "_");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (anomaly_id text PRIMARY KEY, fingerprint text, window_start timestamptz, score double precision, severity text)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} VALUES \
         ('past-1', 'c0ffee12ab34cd56', '2026-11-20T08:00:00Z', 0.81, 'Warning'), \
         ('past-2', 'c0ffee12ab34cd56', '2026-11-22T09:30:00Z', 0.88, 'Critical'), \
         ('other', 'ffffffffffffffff', '2026-11-22T09:30:00Z', 0.99, 'Critical'), \
         ('7f3a9c21d4e8b650', 'c0ffee12ab34cd56', '2026-11-24T10:05:00Z', 0.91, 'Critical')"
    )))
    .execute(&pool)
    .await
    .unwrap();

    let s3 = common::s3(&env);
    let bucket = common::bucket(&s3).await;
    let handler = Handler::new(HandlerOptions {
        s3_endpoint: Some(env.get("S3_ENDPOINT").unwrap().to_string()),
        s3_credentials: Some(common::credentials(&env)),
        database_url: Some(env.get("DATABASE_URL").unwrap().to_string()),
        ..HandlerOptions::default()
    })
    .unwrap();
    let mut v = common::request(&bucket);
    v["report"]["historyTable"] = serde_json::Value::from(table.clone());
    handler
        .handle(&ReportRequest::from_value(v.clone()).unwrap())
        .await
        .unwrap();
    let md = common::get_text(
        &s3,
        &bucket,
        "reports/shop/checkout-events/2026-11-24/7f3a9c21d4e8b650.md",
    )
    .await;
    assert!(md.contains("## Similar past anomalies"), "{md}");
    let past2 = md.find("`past-2`").expect("past-2 listed");
    let past1 = md.find("`past-1`").expect("past-1 listed");
    assert!(past2 < past1, "newest first");
    assert!(
        !md.contains("`other`") && !md.contains("| `7f3a9c21d4e8b650` |"),
        "{md}"
    );
    assert!(
        md.contains("fired 2 times before, most recently 2026-11-22 09:30 UTC"),
        "{md}"
    );

    // A missing table degrades to a note; the report is still written.
    v["report"]["historyTable"] = serde_json::Value::from("no_such_table_here");
    handler
        .handle(&ReportRequest::from_value(v).unwrap())
        .await
        .unwrap();
    let md = common::get_text(
        &s3,
        &bucket,
        "reports/shop/checkout-events/2026-11-24/7f3a9c21d4e8b650.md",
    )
    .await;
    assert!(md.contains("_Unavailable: history lookup failed"), "{md}");

    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&pool)
        .await
        .unwrap();
}
