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
