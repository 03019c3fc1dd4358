//! The benches' kit: the local stack's clients (loopback only), unique names and a
//! `helios detect` child process.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use helios_e2e::StackEnv;
use helios_e2e::clients::{kafka_config, postgres_pool};
use sqlx::PgPool;

/// The local stack (`e2e/stack up`): its environment and a PostgreSQL pool; fails loudly when
/// it is not running or names an address other than loopback.
pub async fn stack() -> (StackEnv, PgPool) {
    let env = StackEnv::load().unwrap_or_else(|e| {
        panic!("the local stack is required ({e}); start it with `e2e/stack up`")
    });
    for name in ["KAFKA_BOOTSTRAP", "DATABASE_URL"] {
        let value = env
            .get(name)
            .unwrap_or_else(|e| panic!("{name} (e2e/stack up): {e}"));
        require_loopback(name, value);
    }
    kafka_config(&env).unwrap_or_else(|e| panic!("Kafka of the stack: {e}"));
    let pool = postgres_pool(&env)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL of the stack: {e}"));
    (env, pool)
}

/// The number in environment variable `name`, or `default`.
pub fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `prefix-` and 10 hex digits from the clock and the process id.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let h = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!("{prefix}-{:010x}", h & 0xff_ffff_ffff)
}

/// Fails loudly unless `value` (a URL or host:port list) names only loopback addresses.
pub fn require_loopback(what: &str, value: &str) {
    let rest = value.split_once("://").map_or(value, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hosts = rest.split(['/', '?']).next().unwrap_or_default();
    for hp in hosts.split(',') {
        let host = hp.rsplit_once(':').map_or(hp, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        assert!(
            host == "localhost" || host.starts_with("127.") || host == "::1",
            "{what} {hp} is not a loopback address: the bench only talks to the local stack \
             (e2e/stack up)"
        );
    }
}

/// A `helios detect` child process of the bench binary, logging to a file.
pub struct Worker {
    child: Child,
    /// Its log file (stderr).
    pub log: PathBuf,
    port: u16,
}

impl Worker {
    /// Starts `helios detect` for `detector` (`ns/name`) with the Detector spec `spec_json` on
    /// the stack's Kafka and PostgreSQL, with `extra` worker arguments.
    pub fn start(
        env: &StackEnv,
        spec_json: &str,
        detector: &str,
        events_topic: &str,
        anomalies_topic: &str,
        extra: &[&str],
    ) -> Self {
        let port = helios_e2e::free_port().expect("a free loopback port");
        let log =
            std::env::temp_dir().join(format!("helios-bench-{}.log", detector.replace('/', "-")));
        let child = Command::new(env!("CARGO_BIN_EXE_helios"))
            .arg("detect")
            .args(["--detector-config", spec_json])
            .args(["--detector", detector])
            .args(["--kafka-bootstrap", env.get("KAFKA_BOOTSTRAP").unwrap()])
            .args(["--events-topic", events_topic])
            .args(["--anomalies-topic", anomalies_topic])
            .args(["--database-url", env.get("DATABASE_URL").unwrap()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--kube-status", "off"])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("HELIOS_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env_remove("KUBECONFIG")
            .env_remove("HELIOS_REPORT_FUNCTION")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the worker's log file"))
            .spawn()
            .expect("starting helios detect");
        Self { child, log, port }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Its `/metrics` text (empty while it does not answer).
    pub async fn metrics_text(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        let Ok(resp) = client.get(&url).send().await else {
            return String::new();
        };
        resp.text().await.unwrap_or_default()
    }

    /// The value of every series of `metric` (name and labels as `/metrics` writes them).
    pub async fn series(&self, metric: &str) -> BTreeMap<String, f64> {
        let text = self.metrics_text().await;
        text.lines()
            .filter_map(|l| l.strip_prefix(metric))
            .filter_map(|l| {
                let (labels, value) = l.rsplit_once(' ')?;
                Some((labels.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// The sum of the `helios_detect_events_total` series by outcome, from `/metrics`.
    pub async fn events_by_outcome(&self) -> BTreeMap<String, f64> {
        self.series("helios_detect_events_total{")
            .await
            .into_iter()
            .map(|(labels, v)| (labels.trim_end_matches('}').to_string(), v))
            .collect()
    }

    /// Kills it and waits for it.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
