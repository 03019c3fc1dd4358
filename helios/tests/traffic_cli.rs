//! The real binary end to end on the real broker: `helios ingest` as a process, fed by
//! `helios traffic` with an incident; every generated event is acknowledged; SIGTERM drains.

#![allow(clippy::unwrap_used)]

use helios_e2e::{StackEnv, clients};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn traffic_through_the_ingest_binary() {
    let env = StackEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let topic = format!("traffic-cli-{}", helios_e2e::kubectl::unique_suffix());
    let admin: AdminClient<DefaultClientContext> =
        clients::kafka_config(&env).unwrap().create().unwrap();
    let res = admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(res.iter().all(Result::is_ok), "{res:?}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut ingest = Command::new(env!("CARGO_BIN_EXE_helios"))
        .args([
            "ingest",
            "--kafka-bootstrap",
            env.get("KAFKA_BOOTSTRAP").unwrap(),
            "--topic",
            &topic,
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("HELIOS_INGEST_TOKEN", "s3cret")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = reqwest::Client::new();
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "helios ingest never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let out = Command::new(env!("CARGO_BIN_EXE_helios"))
        .args([
            "traffic",
            "--url",
            &format!("http://127.0.0.1:{port}/v1/events"),
            "--token",
            "s3cret",
        ])
        .args([
            "--duration-secs",
            "30",
            "--speedup",
            "0",
            "--quiet",
            "--seed",
            "7",
        ])
        .args(["--incident", "latency:checkout:at=10:for=5:x=8"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nums: Vec<u64> = stdout
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        nums.len() >= 2 && nums[0] > 1000 && nums[0] == nums[1],
        "generated == accepted: {stdout}"
    );

    // A wrong token is refused by the real binary.
    let bad = Command::new(env!("CARGO_BIN_EXE_helios"))
        .args([
            "traffic",
            "--url",
            &format!("http://127.0.0.1:{port}/v1/events"),
            "--token",
            "nope",
        ])
        .args(["--duration-secs", "2", "--speedup", "0", "--quiet"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let kill = Command::new("kill")
        .args(["-TERM", &ingest.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = ingest.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}
