//! `helios eval nab` on a small slice of NAB prints the three-profile table.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn eval_nab_on_a_slice_prints_the_three_profiles() {
    let nab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/nab");
    assert!(
        nab.join("labels").is_dir(),
        "NAB dataset missing at {} (shared/ beside the checkout)",
        nab.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_helios"))
        .args(["eval", "nab", "--dir"])
        .arg(&nab)
        .args(["--files", "artificialWithAnomaly/art_daily_jumpsup.csv,realKnownCause/ambient_temperature_system_failure.csv"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("NAB: 2 files"), "{text}");
    for profile in ["standard", "reward_low_FP_rate", "reward_low_FN_rate"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("| {profile} |")))
            .unwrap_or_else(|| panic!("{profile} missing: {text}"));
        let score: f64 = line.split('|').nth(2).unwrap().trim().parse().unwrap();
        assert!(score.is_finite() && score <= 100.0, "{profile}: {score}");
    }
}

#[test]
fn eval_rejects_an_unknown_algorithm() {
    let out = Command::new(env!("CARGO_BIN_EXE_helios"))
        .args(["eval", "nab", "--dir", ".", "--algorithm", "Magic"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Magic"));
}

#[test]
fn eval_multivariate_prints_per_series_and_overall() {
    let dir = std::env::temp_dir().join(format!("helios-mv-{}", std::process::id()));
    for sub in ["train", "test", "test_label"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // Two series: normal rows around 0.5; test rows 100..110 jump to 5.0 (labelled).
    for name in ["m-1", "m-2"] {
        let row = |i: usize, v: f64| {
            format!(
                "{:.3},{:.3},{:.3}",
                v + (i % 7) as f64 * 0.01,
                v,
                0.5 - (i % 5) as f64 * 0.01
            )
        };
        let train: Vec<String> = (0..500).map(|i| row(i, 0.5)).collect();
        let test: Vec<String> = (0..300)
            .map(|i| row(i, if (100..110).contains(&i) { 5.0 } else { 0.5 }))
            .collect();
        let labels: Vec<&str> = (0..300)
            .map(|i| if (100..110).contains(&i) { "1" } else { "0" })
            .collect();
        std::fs::write(
            dir.join("train").join(format!("{name}.txt")),
            train.join("\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("test").join(format!("{name}.txt")),
            test.join("\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("test_label").join(format!("{name}.txt")),
            labels.join("\n"),
        )
        .unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_helios"))
        .args(["eval", "multivariate", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("| m-1 | 300 | 10 |") && text.contains("| m-2 | 300 | 10 |"),
        "{text}"
    );
    let overall = text
        .lines()
        .find(|l| l.starts_with("| overall (2 series)"))
        .unwrap();
    // The jumps are obvious: point adjustment catches every labelled segment, and the scores
    // rank the jumps above normal rows far better than chance.
    let auc: f64 = overall
        .split('|')
        .nth(6)
        .unwrap()
        .trim()
        .trim_end_matches("(mean)")
        .trim()
        .parse()
        .unwrap();
    assert!(auc > 0.7, "{overall}");
    let adjusted_recall: f64 = overall
        .split('|')
        .nth(5)
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((adjusted_recall - 1.0).abs() < 1e-9, "{overall}");
}
