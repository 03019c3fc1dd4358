//! A real Alertmanager for the suites (the binary `e2e/stack up` builds), a webhook receiver
//! that records what it sends, and a minimal HTTP client for its API.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use helios_detect::Args;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Stack, free_port, unique, wait_for};

/// How Alertmanager routes every alert to the receiver.
pub struct Route {
    /// Labels alerts are grouped by.
    pub group_by: &'static str,
    /// `group_wait`.
    pub group_wait: &'static str,
    /// `group_interval`.
    pub group_interval: &'static str,
}

/// Notifications the webhook receiver got, with when.
pub type Received = Arc<Mutex<Vec<(Instant, Value)>>>;

/// Starts the webhook receiver on a free loopback port.
pub async fn webhook() -> (u16, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(|State(r): State<Received>, body: Bytes| async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                r.lock().unwrap().push((Instant::now(), v));
                "ok"
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, received)
}

/// An Alertmanager process (killed on drop).
pub struct Alertmanager {
    /// Its API port on 127.0.0.1.
    child: Child,
    pub port: u16,
    _dir: PathBuf,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Starts the stack's Alertmanager routing every alert to `hook` by `route`, and waits
    /// for `/-/ready`.
    pub async fn start(s: &Stack, hook: u16, route: &Route) -> Self {
        let bin = s
            .env
            .get("ALERTMANAGER")
            .expect("ALERTMANAGER in e2e/.stack/env: run e2e/stack up")
            .to_string();
        assert!(
            std::path::Path::new(&bin).is_file(),
            "{bin} missing: run e2e/stack up"
        );
        let dir = std::env::temp_dir().join(unique("alertmanager"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "route:\n  receiver: hook\n  group_by: [{}]\n  group_wait: {}\n  \
             group_interval: {}\n  repeat_interval: 1h\nreceivers:\n- name: hook\n  \
             webhook_configs:\n  - url: http://127.0.0.1:{hook}/hook\n    send_resolved: true\n",
            route.group_by, route.group_wait, route.group_interval
        );
        std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
        let port = free_port();
        let child = Command::new(&bin)
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("alertmanager.log")).unwrap())
            .spawn()
            .unwrap();
        let am = Self {
            child,
            port,
            _dir: dir,
        };
        wait_for("Alertmanager ready", Duration::from_secs(30), || async {
            request(port, "GET", "/-/ready", None)
                .await
                .is_some_and(|(status, _)| status == 200)
        })
        .await;
        am
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// One HTTP/1.0 request to 127.0.0.1:`port`: status and body (`None` when nothing answers).
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<(u16, String)> {
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.ok()?;
    conn.write_all(body.as_bytes()).await.ok()?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((status, body))
}

/// The worker's arguments with Alertmanager at `url`, re-posting every second.
pub fn with_alertmanager(base: Args, url: &str) -> Args {
    Args {
        alertmanager_urls: vec![url.to_string()],
        alertmanager_resend: Some("1s".into()),
        ..base
    }
}
