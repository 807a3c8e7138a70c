//! Grad-CAM from the command line: `predict --explain DIR` (an overlay per photo and its
//! peak in the JSON line) and `evaluate`'s report of its most confident errors with their
//! maps. What a map holds is tested in df-detect (`crates/df-detect/tests/gradcam.rs`);
//! this is the programs' behaviour.

use std::collections::HashMap;
use std::path::Path;

use deepfake::data::synthetic;

mod common;
use common::{
    cli::{ok, run, s},
    meso4_checkpoint,
};

#[test]
fn predict_explain_writes_an_overlay_per_photo_and_its_peak() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let weights = tmp.path().join("meso4.safetensors");
    meso4_checkpoint(&weights, |_| ());
    let data = tmp.path().join("data");
    synthetic::generate(&data, 2, 40, 3).expect("synthetic set");

    // Inside an input folder: refused before anything is written.
    let inside = data.join("maps");
    let out = run(
        "predict",
        &[
            "--weights",
            s(&weights),
            "--cpu",
            "--explain",
            s(&inside),
            s(&data),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--explain") && stderr.contains("inside the input folder"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty() && !inside.exists());

    let maps = tmp.path().join("maps");
    let (stdout, _) = ok(
        "predict",
        &[
            "--weights",
            s(&weights),
            "--cpu",
            "--explain",
            s(&maps),
            s(&data),
        ],
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let mut pngs = std::collections::HashSet::new();
    for line in &lines {
        let photo = deepfake::image::open(line["path"].as_str().expect("path"))
            .expect("photo")
            .to_rgb8();
        let explain = &line["explain"];
        assert_eq!(explain["layer"], "batch_normalization_3", "{line}");
        let png = Path::new(explain["png"].as_str().expect("png"));
        assert!(png.starts_with(&maps), "{line}");
        pngs.insert(png.to_path_buf());
        let overlay = deepfake::image::open(png).expect("a PNG").to_rgb8();
        assert_eq!(overlay.dimensions(), photo.dimensions());
        let peak: Vec<u64> = explain["peak"]
            .as_array()
            .expect("peak")
            .iter()
            .map(|v| v.as_u64().expect("a pixel"))
            .collect();
        assert!(
            peak.len() == 2
                && peak[0] < u64::from(photo.width())
                && peak[1] < u64::from(photo.height()),
            "{line}"
        );
        assert!(line["p_fake"].as_f64().is_some(), "{line}");
    }
    assert_eq!(pngs.len(), 4, "one overlay per photo, none overwritten");
    // Nothing but the overlays is written there (no temporary file left).
    assert_eq!(std::fs::read_dir(&maps).expect("maps").count(), 4);
}

#[test]
fn evaluates_report_shows_the_most_confident_errors_with_their_maps() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let weights = tmp.path().join("meso4.safetensors");
    meso4_checkpoint(&weights, |_| ());
    let data = tmp.path().join("data");
    synthetic::generate(&data, 8, 32, 11).expect("synthetic set");
    let out = tmp.path().join("eval");
    ok(
        "evaluate",
        &[
            "--weights",
            s(&weights),
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--device",
            "cpu",
        ],
    );

    // The errors, from `predict`'s scores of the same files (the label is the class folder).
    let (stdout, _) = ok("predict", &["--weights", s(&weights), "--cpu", s(&data)]);
    let mut errors: Vec<(String, f64)> = Vec::new();
    let mut scores = HashMap::new();
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let path = v["path"].as_str().expect("path").to_string();
        let p = v["p_fake"].as_f64().expect("p");
        let fake = Path::new(&path)
            .parent()
            .is_some_and(|d| d.ends_with("fake"));
        scores.insert(path.clone(), p);
        if (p >= 0.5) != fake {
            errors.push((path, (p - 0.5).abs()));
        }
    }
    errors.sort_by(|a, b| b.1.total_cmp(&a.1));
    let expected: Vec<&String> = errors.iter().take(8).map(|(p, _)| p).collect();
    assert!(!expected.is_empty(), "random weights make errors: {stdout}");

    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(report.contains("## Most confident errors"), "{report}");
    let rows: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| #"))
        .collect();
    assert_eq!(rows.len(), expected.len(), "{report}");
    for (i, (row, path)) in rows.iter().zip(&expected).enumerate() {
        let rank = i + 1;
        // Ties in confidence may order differently; the file must be one of the errors.
        let listed = row.split('`').nth(1).expect("a file in backquotes");
        assert!(
            errors.iter().any(|(p, _)| p == listed),
            "row {rank} lists {listed}, not an error: {report}"
        );
        let d_expected = (scores[*path] - 0.5).abs();
        let d_listed = (scores[listed] - 0.5).abs();
        assert!((d_expected - d_listed).abs() < 1e-5, "row {rank}: {report}");
        let png = format!("error-{rank}.png");
        assert!(row.contains(&format!("]({png})")), "{row}");
        let overlay = deepfake::image::open(out.join(&png)).expect("the linked PNG");
        let photo = deepfake::image::open(listed).expect("photo");
        assert_eq!(
            (overlay.width(), overlay.height()),
            (photo.width(), photo.height())
        );
    }
    assert!(!out.join(format!("error-{}.png", rows.len() + 1)).exists());
}

/// With several sets (or `--perturb`), `report.md` gives each image set's most confident
/// errors on its own images after the table, with `NAME-error-N.png` overlays.
#[test]
fn evaluates_report_of_several_sets_shows_each_sets_errors() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let weights = tmp.path().join("meso4.safetensors");
    meso4_checkpoint(&weights, |_| ());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    synthetic::generate(&a, 6, 32, 21).expect("synthetic set");
    synthetic::generate(&b, 6, 32, 22).expect("synthetic set");
    let out = tmp.path().join("eval");
    let (sa, sb) = (
        format!("one={}", a.display()),
        format!("two={}", b.display()),
    );
    ok(
        "evaluate",
        &[
            "--weights",
            s(&weights),
            "--data",
            &sa,
            "--data",
            &sb,
            "--perturb",
            "blur:1",
            "--out",
            s(&out),
            "--device",
            "cpu",
        ],
    );
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    for (name, dir, next) in [
        ("one", &a, Some("## Most confident errors: `two`")),
        ("two", &b, None),
    ] {
        // The set's errors, from `predict`'s scores of its files (the label is the folder).
        let (stdout, _) = ok("predict", &["--weights", s(&weights), "--cpu", s(dir)]);
        let mut errors = Vec::new();
        for line in stdout.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            let path = v["path"].as_str().expect("path").to_string();
            let fake = Path::new(&path)
                .parent()
                .is_some_and(|d| d.ends_with("fake"));
            if (v["p_fake"].as_f64().expect("p") >= 0.5) != fake {
                errors.push(path);
            }
        }
        let header = format!("## Most confident errors: `{name}`");
        let start = report
            .find(&header)
            .unwrap_or_else(|| panic!("{header}: {report}"));
        let end = next.map_or(report.len(), |n| report.find(n).expect(n));
        let section = &report[start..end];
        let rows: Vec<&str> = section
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| #"))
            .collect();
        assert_eq!(rows.len(), errors.len().min(8), "{name}: {section}");
        for (i, row) in rows.iter().enumerate() {
            let listed = row.split('`').nth(1).expect("a file in backquotes");
            assert!(
                errors.iter().any(|e| e == listed),
                "{name}: {listed} is not an error"
            );
            let png = format!("{name}-error-{}.png", i + 1);
            assert!(row.contains(&format!("]({png})")), "{row}");
            deepfake::image::open(out.join(&png)).expect("the linked PNG");
        }
        assert!(!out
            .join(format!("{name}-error-{}.png", rows.len() + 1))
            .exists());
    }
}
