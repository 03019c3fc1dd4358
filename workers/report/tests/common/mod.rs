//! Helpers shared by the suites: the stack, unique buckets, the spawned runtime, an
//! OpenAI-compatible test server.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use helios_e2e::{StackEnv, clients};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The emulated function this suite serves and invokes; no other suite uses it, because
/// suites run side by side and an invoke goes to whichever runtime polls the function.
pub const FUNCTION: &str = "helios-report-suite";

/// The running stack, or a panic naming the command that starts it.
pub fn stack() -> StackEnv {
    StackEnv::load().unwrap_or_else(|e| panic!("{e}"))
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub fn s3(env: &StackEnv) -> aws_sdk_s3::Client {
    clients::s3_client(env).unwrap_or_else(|e| panic!("{e}"))
}

/// A Lambda client without retries (a retried function error would invoke the function again).
pub fn lambda(env: &StackEnv) -> aws_sdk_lambda::Client {
    let c = clients::lambda_client(env).unwrap_or_else(|e| panic!("{e}"));
    let conf = c
        .config()
        .to_builder()
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

/// The stack's S3 credentials.
pub fn credentials(env: &StackEnv) -> helios_report::store::StaticCredentials {
    helios_report::store::StaticCredentials {
        access_key_id: env.get("AWS_ACCESS_KEY_ID").unwrap().to_string(),
        secret_access_key: env.get("AWS_SECRET_ACCESS_KEY").unwrap().to_string(),
    }
}

/// A fresh bucket for one test.
pub async fn bucket(s3: &aws_sdk_s3::Client) -> String {
    let name = unique("helios-report-test");
    s3.create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create bucket {name}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        });
    name
}

/// Every key in `bucket` (under `prefix`).
pub async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "list {bucket}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        });
    let mut keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

pub async fn get_text(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)));
    let bytes = out.body.collect().await.expect("body").into_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

pub async fn put_text(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .expect("put");
}

/// The example request, aimed at `bucket`.
pub fn request(bucket: &str) -> Value {
    let mut v = helios_report::example::example_value();
    v["report"]["bucket"] = Value::from(bucket);
    v
}

/// The spawned `helios-report` runtime; killed on drop.
pub struct Runtime {
    child: Child,
    pub log: std::path::PathBuf,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Runtime {
    /// Start the real bootstrap against the emulator, as Lambda would.
    pub fn spawn(env: &StackEnv, extra: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!("{}.log", unique("helios-report-runtime")));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_helios-report"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // exactly what the emulator documents: the runtime completes the rest itself
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("{}/{FUNCTION}", env.get("LAMBDA_RUNTIME_API_BASE").unwrap()),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
            .env("AWS_ACCESS_KEY_ID", env.get("AWS_ACCESS_KEY_ID").unwrap())
            .env(
                "AWS_SECRET_ACCESS_KEY",
                env.get("AWS_SECRET_ACCESS_KEY").unwrap(),
            )
            .env("AWS_REGION", env.get("AWS_REGION").unwrap())
            .env("HELIOS_REPORT_S3_ENDPOINT", env.get("S3_ENDPOINT").unwrap())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn helios-report");
        Runtime { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The outcome of one invoke.
#[derive(Debug)]
pub struct Invoked {
    pub function_error: Option<String>,
    pub payload: Value,
}

pub async fn invoke(lambda: &aws_sdk_lambda::Client, payload: &Value) -> Invoked {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        lambda
            .invoke()
            .function_name(FUNCTION)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
            .send(),
    )
    .await
    .expect("invoke did not return within 90 s");
    let out = match out {
        Ok(out) => out,
        // The emulator answers a function error with HTTP 500 and the error document
        // (AWS answers 200 with X-Amz-Function-Error); both count as a function error.
        Err(e) => {
            let raw = e.raw_response().filter(|r| r.status().as_u16() == 500);
            let body = raw
                .and_then(|r| r.body().bytes())
                .and_then(|b| serde_json::from_slice::<Value>(b).ok());
            match body {
                Some(payload) if payload.get("errorType").is_some() => {
                    return Invoked {
                        function_error: Some("Unhandled".into()),
                        payload,
                    };
                }
                _ => panic!("invoke: {}", aws_sdk_lambda::error::DisplayErrorContext(&e)),
            }
        }
    };
    let bytes = out
        .payload()
        .map(|b| b.as_ref().to_vec())
        .unwrap_or_default();
    Invoked {
        function_error: out.function_error().map(str::to_string),
        payload: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// How the fake chat API behaves.
#[derive(Debug, Clone)]
pub enum Behaviour {
    Answer(String),
    Sleep(Duration),
    Fail(u16),
}

/// A tiny OpenAI-compatible chat server on 127.0.0.1:0 that records the requests.
pub struct ChatServer {
    pub base_url: String,
    pub requests: Arc<Mutex<Vec<(String, Value)>>>,
}

impl ChatServer {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    while let Some((head, body)) = read_request(&mut sock).await {
                        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        seen.lock().unwrap().push((head, json));
                        let (status, body) = match &behaviour {
                            Behaviour::Answer(text) => (
                                200,
                                serde_json::json!({"id": "x", "object": "chat.completion", "choices": [
                                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                                ]})
                                .to_string(),
                            ),
                            Behaviour::Sleep(d) => {
                                tokio::time::sleep(*d).await;
                                (200, r#"{"choices":[{"message":{"content":"too late"}}]}"#.to_string())
                            }
                            Behaviour::Fail(code) => (*code, r#"{"error":"boom"}"#.to_string()),
                        };
                        let resp = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if sock.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        ChatServer {
            base_url: format!("http://{addr}/v1"),
            requests,
        }
    }

    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// Read one HTTP/1.1 request (head, body by content-length); None at EOF.
async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}
