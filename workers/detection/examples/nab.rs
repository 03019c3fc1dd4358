//! Runs the metric-mode detector over NAB and prints the report.
//!
//! `cargo run --release -p helios-detection --example nab -- /work/shared/datasets/nab ['<NabConfig JSON>']`

use std::path::PathBuf;
use std::time::Instant;

use helios_detection::eval::nab::{NabConfig, run_nab};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/work/shared/datasets/nab".into()),
    );
    let cfg: NabConfig = match args.next() {
        Some(json) => serde_json::from_str(&json)?,
        None => NabConfig::default(),
    };
    let start = Instant::now();
    let report = run_nab(&dir, &cfg)?;
    println!("{report}");
    println!("elapsed: {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
