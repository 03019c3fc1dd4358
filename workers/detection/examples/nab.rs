//! Tuning aid: scores NAB with the detector core (library defaults for one `value` feature,
//! optionally patched) and prints the tuning half; `--final` also prints the held-out half and
//! the whole corpus. `helios eval nab` is the supported entry point (it builds the core from a
//! Detector spec).
//!
//! `cargo run --release -p helios-detection --example nab -- DIR ['{"model":{…},"policy":{…}}'] [--final] [--per-file] [--core=CORE.json] [--dump=category/file.csv]`
//!
//! `--core=` starts from a whole core configuration (as serialised) instead of the defaults; `--dump=` prints one file's rows (index, value, score, forced,
//! inside a window) instead of the run.

use std::path::PathBuf;
use std::time::Instant;

use helios_detection::alert::{AlertPolicy, Mode};
use helios_detection::engine::CoreConfig;
use helios_detection::engine::model::{Algorithm, ModelConfig};
use helios_detection::engine::threshold::ThresholdRule;
use helios_detection::eval::nab::{NabConfig, load_nab, run_nab, score_corpus};

fn merge(base: &mut serde_json::Value, patch: &serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show_final = args.iter().any(|a| a == "--final");
    let per_file = args.iter().any(|a| a == "--per-file");
    let mut pos = args.iter().filter(|a| !a.starts_with("--"));
    let dir = PathBuf::from(
        pos.next()
            .map_or("/work/shared/datasets/nab", |s| s.as_str()),
    );
    let features = vec!["value".to_string()];
    let core = CoreConfig {
        model: ModelConfig::defaults(Algorithm::RobustForest, &features),
        features,
        rule: ThresholdRule::Budget {
            false_alerts_per_week: 1.0,
        },
        policy: AlertPolicy {
            detector_id: "nab".into(),
            bands: vec![],
            min_consecutive: 1,
            cooldown_ms: 15 * 60_000,
            floors: Default::default(),
            mode: Mode::DryRun,
        },
        hop_ms: 300_000,
    };
    let mut value = match args.iter().find_map(|a| a.strip_prefix("--core=")) {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)?,
        None => serde_json::to_value(&core)?,
    };
    if let Some(patch) = pos.next() {
        merge(&mut value, &serde_json::from_str(patch)?);
    }
    let cfg = NabConfig {
        core: serde_json::from_value(value)?,
        files: None,
        threads: 2,
    };
    if let Some(name) = args.iter().find_map(|a| a.strip_prefix("--dump=")) {
        let only = [name.to_string()];
        let series = load_nab(&dir, Some(&only))?;
        for s in score_corpus(&series, &cfg)? {
            let inside = |i: usize| s.truth.windows.iter().any(|&(l, r)| l <= i && i <= r);
            for (i, w) in s.windows.iter().enumerate() {
                let x = series[0].values[i];
                println!(
                    "{i} {x} {:.4} {} {}",
                    w.score,
                    u8::from(w.forced),
                    u8::from(inside(i))
                );
            }
        }
        return Ok(());
    }
    let start = Instant::now();
    let run = run_nab(&dir, &cfg)?;
    if per_file {
        println!("{:#}", run.tuning);
    } else {
        println!("{}", run.tuning);
    }
    if show_final {
        println!("{}\n{}", run.held_out, run.corpus);
    }
    println!("elapsed: {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
