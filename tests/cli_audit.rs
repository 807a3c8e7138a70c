//! `audit` from the command line: the table and its findings, `--json`, `--strict`'s exit
//! status, and bad options named. The sets are Pillow's (`scripts/fixtures/pillow_audit.py`,
//! one shortcut planted per set); the library's checks are tested in df-data.

mod common;
use common::cli::{ok, run};

#[path = "../fixtures/lookup.rs"]
mod lookup;

fn planted(kind: &str, split: &str) -> String {
    let path = lookup::path("pillow_audit", &format!("planted/{kind}/{split}"));
    path.to_str().expect("utf-8 fixture path").to_string()
}

#[test]
fn a_planted_jpeg_quality_is_reported_and_fails_strict() {
    let (train, val) = (planted("quality", "train"), planted("quality", "val"));
    let (stdout, _) = ok("audit", &["--data", &train, "--val", &val]);
    assert!(
        stdout.contains("audited 30 real and 30 fake images (40 training, 20 validation"),
        "{stdout}"
    );
    assert!(
        stdout.contains("shortcut: real images are JPEG quality 75, fake 95: a model can tell them apart without looking at faces"),
        "{stdout}"
    );
    let strict = run("audit", &["--data", &train, "--strict"]);
    assert_eq!(strict.status.code(), Some(3), "{strict:?}");
    let (json, _) = ok("audit", &["--data", &train, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON report");
    assert_eq!(report["findings"][0]["check"], "jpeg_quality");
    assert_eq!(report["real"], 20);
}

#[test]
fn a_clean_set_passes_strict() {
    let clean = run(
        "audit",
        &[
            "--data",
            &planted("clean", "train"),
            "--val",
            &planted("clean", "val"),
            "--strict",
        ],
    );
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(clean.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("no shortcut found"), "{stdout}");
}

#[test]
fn bad_options_and_folders_are_named() {
    let clean = planted("clean", "train");
    for (args, expected) in [
        (
            vec!["--data", clean.as_str(), "--flag-auc", "0.3"],
            "flag_auc",
        ),
        (
            vec!["--data", clean.as_str(), "--near-bits", "40"],
            "near_duplicate_bits",
        ),
        (vec!["--data", "no/such/folder"], "no/such/folder"),
    ] {
        let out = run("audit", &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}
