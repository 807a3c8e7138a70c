//! Plots are written in the format their extension names, and their text is drawn.

use df_metrics::{
    calibration, evaluate, plot_calibration, plot_history, plot_pr, plot_roc, EpochRecord,
    EvaluatorConfig, History,
};

use crate::fixtures::cases;

fn history() -> History {
    let mut h = History::new();
    for epoch in 1..=8 {
        let e = epoch as f64;
        h.push(
            EpochRecord::new(epoch)
                .with("loss", 0.7 / e)
                .with("val_loss", 0.75 / e + 0.02 * (e % 3.0))
                .with("accuracy", 1.0 - 0.45 / e)
                .with("val_accuracy", 1.0 - 0.5 / e - 0.01 * (e % 2.0)),
        )
        .expect("increasing");
    }
    h
}

/// Number of dark pixels in rows `rows` of a PNG: text and lines, not the white page.
fn dark_pixels(path: &std::path::Path, rows: std::ops::Range<u32>) -> (u32, u32, usize) {
    let img = image::open(path).expect("a decodable PNG").to_rgb8();
    let dark = img
        .enumerate_pixels()
        .filter(|(_, y, p)| {
            rows.contains(y) && p.0.iter().map(|&c| u32::from(c)).sum::<u32>() < 300
        })
        .count();
    (img.width(), img.height(), dark)
}

#[test]
fn png_and_svg_by_extension_with_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let case = cases()
        .into_iter()
        .find(|c| c.name == "random")
        .expect("random");
    let evaluation =
        evaluate(&case.scores, &case.labels, EvaluatorConfig::default()).expect("valid");
    let roc = evaluation.roc.as_ref().expect("roc");
    let pr = evaluation.pr.as_ref().expect("pr");
    let tied = cases()
        .into_iter()
        .find(|c| c.name == "heavy_ties")
        .expect("heavy_ties");
    let roc_tied = evaluate(&tied.scores, &tied.labels, EvaluatorConfig::default())
        .expect("valid")
        .roc
        .expect("roc");

    for ext in ["png", "svg", "PNG"] {
        plot_history(&history(), dir.path().join(format!("history.{ext}"))).expect("history plot");
        plot_roc(
            &[("random", roc), ("heavy ties", &roc_tied)],
            dir.path().join(format!("roc.{ext}")),
        )
        .expect("roc plot");
        plot_pr(&[("random", pr)], dir.path().join(format!("pr.{ext}"))).expect("pr plot");
        plot_calibration(
            &evaluation.calibration,
            dir.path().join(format!("calibration.{ext}")),
        )
        .expect("calibration plot");
    }

    // The caption band above the chart holds only the title: dark pixels there are text.
    let (w, h, dark) = dark_pixels(&dir.path().join("roc.png"), 0..40);
    assert_eq!((w, h), (640, 600));
    assert!(
        dark > 100,
        "no caption text drawn in roc.png ({dark} dark pixels)"
    );
    let (w, h, dark) = dark_pixels(&dir.path().join("history.png"), 0..40);
    assert_eq!((w, h), (1200, 480));
    assert!(
        dark > 100,
        "no caption text drawn in history.png ({dark} dark pixels)"
    );
    // Axis labels: the band left of the plot area holds the y tick labels.
    let img = image::open(dir.path().join("pr.png"))
        .expect("png")
        .to_rgb8();
    let tick_text = img
        .enumerate_pixels()
        .filter(|(x, y, p)| *x < 60 && (60..500).contains(y) && p.0[0] < 100)
        .count();
    assert!(tick_text > 50, "no tick labels drawn in pr.png");

    let svg = std::fs::read_to_string(dir.path().join("roc.svg")).expect("svg");
    assert!(svg.starts_with("<svg"), "an SVG document");
    assert!(
        svg.contains("ROC curve") && svg.contains("AUC"),
        "title and legend in the SVG"
    );
    let svg = std::fs::read_to_string(dir.path().join("history.svg")).expect("svg");
    assert!(svg.contains("validation") && svg.contains("epoch"));
}

#[test]
fn history_without_accuracy_or_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut losses_only = History::new();
    losses_only
        .push(EpochRecord::new(1).with("loss", 0.5))
        .expect("first");
    plot_history(&losses_only, dir.path().join("one.png")).expect("single epoch, loss only");
    let mut nothing = History::new();
    nothing
        .push(EpochRecord::new(1).with("lr", 0.1))
        .expect("first");
    assert!(matches!(
        plot_history(&nothing, dir.path().join("none.png")),
        Err(df_metrics::Error::MissingMetric { .. })
    ));
    let c = calibration(&[0.1f32, 0.9], &[0u8, 1], 10).expect("valid");
    plot_calibration(&c, dir.path().join("cal.svg")).expect("sparse bins");
}
