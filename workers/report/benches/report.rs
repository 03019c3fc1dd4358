//! Figures, not assertions: template report generation (facts + narrative + Markdown + JSON +
//! SVG) over 1000 iterations, and end-to-end invoke latency through the Lambda emulator into
//! MinIO over 100 invokes. Run: `cargo bench -p helios-report --bench report` (needs the stack).
// A benchmark harness: a panic with the error is the right failure here.
#![allow(missing_docs, clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use helios_report::facts::{Facts, History};
use helios_report::handler::render_all;
use helios_report::keys::ObjectKeys;
use helios_report::narrative::Narrative;
use helios_report::{ReportRequest, example::example_value};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut d: Vec<Duration>) {
    d.sort();
    let mean = d.iter().sum::<Duration>() / d.len() as u32;
    println!(
        "{name}: n={} p50={:.3} ms p99={:.3} ms mean={:.3} ms max={:.3} ms",
        d.len(),
        percentile(&d, 0.5).as_secs_f64() * 1e3,
        percentile(&d, 0.99).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        d.last().unwrap().as_secs_f64() * 1e3
    );
}

fn template_generation() {
    let value = example_value();
    let mut sizes = (0, 0, 0);
    let mut times = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let start = Instant::now();
        let req = ReportRequest::from_value(value.clone()).unwrap();
        let facts = Facts::derive(&req, History::NotConfigured);
        let narrative = Narrative::template(&facts, None);
        let r = render_all(&facts, &narrative, &ObjectKeys::for_request(&req)).unwrap();
        times.push(start.elapsed());
        sizes = (r.markdown.len(), r.json.len(), r.svg.len());
    }
    println!(
        "objects: markdown {} B, json {} B, svg {} B",
        sizes.0, sizes.1, sizes.2
    );
    report("template report (parse+validate+facts+md+json+svg)", times);
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn emulator_invokes() {
    let env = helios_e2e::StackEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let s3 = helios_e2e::clients::s3_client(&env).unwrap_or_else(|e| panic!("{e}"));
    let lambda = helios_e2e::clients::lambda_client(&env).unwrap_or_else(|e| panic!("{e}"));
    let bucket = format!(
        "helios-report-bench-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let _runtime = Kill(
        Command::new(env!("CARGO_BIN_EXE_helios-report"))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!(
                    "{}/helios-report",
                    env.get("LAMBDA_RUNTIME_API_BASE").unwrap()
                ),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "helios-report")
            .env("AWS_ACCESS_KEY_ID", env.get("AWS_ACCESS_KEY_ID").unwrap())
            .env(
                "AWS_SECRET_ACCESS_KEY",
                env.get("AWS_SECRET_ACCESS_KEY").unwrap(),
            )
            .env("AWS_REGION", env.get("AWS_REGION").unwrap())
            .env("HELIOS_REPORT_S3_ENDPOINT", env.get("S3_ENDPOINT").unwrap())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn helios-report"),
    );
    let mut payload = example_value();
    payload["report"]["bucket"] = bucket.clone().into();
    let body = payload.to_string();
    let invoke = || async {
        let out = lambda
            .invoke()
            .function_name("helios-report")
            .payload(aws_sdk_lambda::primitives::Blob::new(body.clone()))
            .send()
            .await
            .expect("invoke");
        assert!(out.function_error().is_none());
    };
    for _ in 0..5 {
        invoke().await; // warm-up: first connection to MinIO, page cache
    }
    let mut times = Vec::with_capacity(100);
    for _ in 0..100 {
        let start = Instant::now();
        invoke().await;
        times.push(start.elapsed());
    }
    report("invoke through the emulator (S3 writes included)", times);
}

fn main() {
    // `cargo test --benches` runs benches with --bench absent: only do the quick part then.
    let full = std::env::args().any(|a| a == "--bench");
    template_generation();
    if full {
        let rt = tokio::runtime::Runtime::new().expect("tokio");
        rt.block_on(emulator_invokes());
    }
}
