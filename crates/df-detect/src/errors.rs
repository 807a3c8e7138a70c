//! The most confident errors of an evaluation with their Grad-CAM maps: the section of
//! `evaluate`'s `report.md` that shows which images a detector got wrong with the most
//! conviction, and where in each its evidence lay.
//!
//! [`files_in_order`] lines the scores of a single pass over a [`Loader`] up with their
//! files, [`confident_errors`] picks the misclassified ones furthest from the threshold,
//! [`explain_errors`] writes each one's overlay (`error-1.png` ...) and [`report`] renders
//! the Markdown.
//!
//! ```no_run
//! # mod deepfake { pub mod detect { pub use df_detect::*; } }
//! use deepfake::detect::errors::{confident_errors, SHOWN};
//!
//! let paths = vec!["a.png".into(), "b.png".into(), "c.png".into()];
//! // b (real, p 0.9) is wrong with more conviction than c (fake, p 0.3).
//! let errors = confident_errors(&paths, &[0.1, 0.9, 0.3], &[0, 0, 1], 0.5, SHOWN);
//! assert_eq!(errors[0].path, std::path::Path::new("b.png"));
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use df_data::{Loader, SkipReport};
use df_metrics::Report;

use crate::{Detector, Result};

/// How many of the most confident errors `evaluate`'s report shows.
pub const SHOWN: usize = 8;

/// The overlay file of the `rank`-th error (from 1) after `prefix`: `error-1.png` ...
/// with an empty prefix (one set), `lfw-error-1.png` ... with `lfw-` (a named set of
/// several).
pub fn overlay_name(prefix: &str, rank: usize) -> String {
    format!("{prefix}error-{rank}.png")
}

/// Every overlay name [`explain_errors`] may write or remove with `prefix`, for claiming
/// an output folder before any work.
pub fn overlay_names(prefix: &str) -> Vec<String> {
    (1..=SHOWN).map(|rank| overlay_name(prefix, rank)).collect()
}

/// A misclassified image: its file, its label (1 = fake) and p(fake).
#[derive(Debug, Clone, PartialEq)]
pub struct Misclassified {
    /// The image file.
    pub path: PathBuf,
    /// Its label: 1 fake, 0 real.
    pub label: u8,
    /// The detector's probability that it is fake.
    pub p_fake: f32,
}

/// The file of each score of a single pass over `loader` (no shuffle: its epoch 0's
/// order, less the files that failed to decode, `skipped`), or `None` when they do not
/// line up with the `n` scores.
pub fn files_in_order(loader: &Loader, skipped: &[SkipReport], n: usize) -> Option<Vec<PathBuf>> {
    let left_out: HashSet<&Path> = skipped.iter().map(|s| s.path.as_path()).collect();
    let source = loader.source();
    let paths: Vec<PathBuf> = loader
        .epoch_order(0)
        .into_iter()
        .map(|i| source.path(i))
        .filter(|p| !left_out.contains(p.as_path()))
        .collect();
    (paths.len() == n).then_some(paths)
}

/// The images misclassified at `threshold` (`p_fake >= threshold` is called fake), the
/// most confident first (furthest from the threshold; ties in path order), at most
/// `count`. The three slices are read in step, up to the shortest.
pub fn confident_errors(
    paths: &[PathBuf],
    scores: &[f32],
    labels: &[u8],
    threshold: f32,
    count: usize,
) -> Vec<Misclassified> {
    let mut errors: Vec<Misclassified> = paths
        .iter()
        .zip(scores)
        .zip(labels)
        .filter(|((_, &p), &l)| (p >= threshold) != (l == 1))
        .map(|((path, &p_fake), &label)| Misclassified {
            path: path.clone(),
            label,
            p_fake,
        })
        .collect();
    errors.sort_by(|a, b| {
        let (da, db) = ((a.p_fake - threshold).abs(), (b.p_fake - threshold).abs());
        db.total_cmp(&da).then_with(|| a.path.cmp(&b.path))
    });
    errors.truncate(count);
    errors
}

/// The most confident errors of a single pass over `loader` (its `skipped` files left
/// out) whose `scores` and `labels` came in the loader's order, at `threshold`; `None`
/// when the scores do not line up with the files ([`files_in_order`]).
pub fn of_pass(
    loader: &Loader,
    skipped: &[SkipReport],
    scores: &[f32],
    labels: &[u8],
    threshold: f32,
) -> Option<Vec<Misclassified>> {
    files_in_order(loader, skipped, scores.len())
        .map(|paths| confident_errors(&paths, scores, labels, threshold, SHOWN))
}

/// One error of the report: the image, and its map's peak (in the image's pixels) and
/// layer, or why it has no map.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownError {
    /// The misclassified image.
    pub error: Misclassified,
    /// `(peak [x, y], layer)` of its map, or why there is none.
    pub map: std::result::Result<([u32; 2], String), String>,
}

/// Writes the Grad-CAM overlay of each error into `out` (`{prefix}error-1.png` ...,
/// atomically) and removes the overlays of higher ranks an earlier run left there, only
/// where df-io's record says a program of this toolkit wrote them (claim the names first,
/// [`overlay_names`]). An image that cannot be explained, or a `detector` that could not
/// be opened (`Err` with the reason), leaves that error without a map and says why.
///
/// # Errors
/// Writing an overlay or removing an old one.
pub fn explain_errors(
    out: &Path,
    prefix: &str,
    detector: std::result::Result<&Detector, &str>,
    errors: &[Misclassified],
) -> Result<Vec<ShownError>> {
    let mut owned = df_io::owned::Owned::open(out)?;
    let mut shown = Vec::new();
    for (i, error) in errors.iter().enumerate() {
        let name = overlay_name(prefix, i + 1);
        let map = detector
            .map_err(|e| format!("the detector: {e}"))
            .and_then(|detector| explain_one(detector, &error.path));
        let map = match map {
            Ok((map, bytes)) => {
                df_io::write_atomic(&out.join(&name), &bytes)?;
                Ok((map.peak, map.layer))
            }
            Err(why) => {
                owned.remove([&name])?;
                Err(why)
            }
        };
        shown.push(ShownError {
            error: error.clone(),
            map,
        });
    }
    owned.remove((errors.len() + 1..=SHOWN).map(|rank| overlay_name(prefix, rank)))?;
    Ok(shown)
}

/// [`explain_errors`] for several lists of errors, each with its overlay prefix, with the
/// detector `open` gives: called once, and only when there is an error to explain.
///
/// # Errors
/// As [`explain_errors`].
pub fn explain_all(
    out: &Path,
    lists: &[(String, &[Misclassified])],
    open: impl FnOnce() -> std::result::Result<Detector, String>,
) -> Result<Vec<Vec<ShownError>>> {
    let detector = match lists.iter().all(|(_, errors)| errors.is_empty()) {
        true => Err("no error to explain".to_string()),
        false => open(),
    };
    let detector = detector.as_ref().map_err(String::as_str);
    lists
        .iter()
        .map(|(prefix, errors)| explain_errors(out, prefix, detector, errors))
        .collect()
}

/// The map of the image at `path` and its overlay's PNG bytes, or why there is none.
fn explain_one(
    detector: &Detector,
    path: &Path,
) -> std::result::Result<(crate::CamMap, Vec<u8>), String> {
    let image = df_data::load_rgb(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let explained = detector
        .explain_image(&image)
        .map_err(|e| df_io::error_text(&e))?;
    let map = explained.maps.into_iter().next().ok_or("no map")?;
    let bytes = map.overlay_png(&image).map_err(|e| df_io::error_text(&e))?;
    Ok((map, bytes))
}

/// `report.md` of one image set: the metrics, then the most confident errors with their
/// maps (`shown`), or why none are listed: `lined_up` false when the scores could not be
/// matched to their files ([`files_in_order`] gave `None`).
pub fn report(
    weights: &Path,
    data: &Path,
    metrics: &Report,
    lined_up: bool,
    shown: &[ShownError],
) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let threshold = metrics.threshold;
    let mut text = format!(
        "# Evaluation\n\nWeights `{}` on `{}`: n {}, accuracy {:.4}, AUC {}, AP {}, EER {}, \
         log loss {:.4} (threshold {threshold}).\n\n## Most confident errors\n\n",
        weights.display(),
        data.display(),
        metrics.n,
        metrics.accuracy,
        opt(metrics.auc),
        opt(metrics.ap),
        opt(metrics.eer),
        metrics.log_loss,
    );
    text.push_str(&section(threshold, lined_up, shown, ""));
    text
}

/// The body of a "Most confident errors" section: the errors' table, each map linked as
/// `{prefix}error-N.png`, or why there is none.
pub fn section(threshold: f32, lined_up: bool, shown: &[ShownError], prefix: &str) -> String {
    if !lined_up {
        return "(The scores could not be matched to their files; no errors shown.)\n".into();
    }
    if shown.is_empty() {
        return format!("No image is misclassified at threshold {threshold}.\n");
    }
    let mut text = format!(
        "The {} misclassified images furthest from the threshold, each with its Grad-CAM map \
         (red: where the evidence for \"fake\" lies; `peak` in the image's pixels). A map \
         shows where the model looked, not why: see docs/trust.md.\n\n\
         | # | image | label | p(fake) | peak | map |\n|---|---|---|---|---|---|\n",
        shown.len()
    );
    for (i, s) in shown.iter().enumerate() {
        let label = if s.error.label == 1 { "fake" } else { "real" };
        let (peak, map) = match &s.map {
            Ok((peak, layer)) => (
                format!("{}, {}", peak[0], peak[1]),
                format!("![{}]({})", cell(layer), overlay_name(prefix, i + 1)),
            ),
            Err(why) => ("-".into(), format!("not explained: {}", cell(why))),
        };
        text.push_str(&format!(
            "| {} | `{}` | {label} | {:.4} | {peak} | {map} |\n",
            i + 1,
            cell(&s.error.path.display().to_string()),
            s.error.p_fake
        ));
    }
    text
}

/// `text` fit for one cell of a Markdown table row: no `|`, no line break.
fn cell(text: &str) -> String {
    text.replace('|', "/").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use df_metrics::Metric;

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn the_errors_are_the_misclassified_images_furthest_from_the_threshold() {
        let p = paths(&["a", "b", "c", "d", "e", "f"]);
        // a: real 0.2 right; b: real 0.95 wrong (0.45 away); c: fake 0.1 wrong (0.4);
        // d: fake 0.6 right; e: real 0.5 wrong at the threshold itself (fake from 0.5 on);
        // f: fake 0.49 wrong (0.01).
        let scores = [0.2, 0.95, 0.1, 0.6, 0.5, 0.49];
        let labels = [0, 0, 1, 1, 0, 1];
        let got = confident_errors(&p, &scores, &labels, 0.5, SHOWN);
        let names: Vec<&str> = got
            .iter()
            .map(|e| e.path.to_str().expect("UTF-8"))
            .collect();
        assert_eq!(names, ["b", "c", "f", "e"]);
        assert_eq!(
            got[1],
            Misclassified {
                path: "c".into(),
                label: 1,
                p_fake: 0.1
            }
        );
        // Another threshold moves the boundary: at 0.15, a (real 0.2) is wrong and c
        // (fake 0.1) too; b is 0.8 away.
        let got = confident_errors(&p, &scores, &labels, 0.15, 2);
        let names: Vec<&str> = got
            .iter()
            .map(|e| e.path.to_str().expect("UTF-8"))
            .collect();
        assert_eq!(names, ["b", "e"]);
    }

    #[test]
    fn equal_confidence_is_ordered_by_path_and_the_count_is_kept() {
        let p = paths(&["z", "y", "x", "w"]);
        // 0.75 and 0.25 are both exactly 0.25 from the threshold in binary floating point.
        let got = confident_errors(&p, &[0.75, 0.25, 0.75, 0.25], &[0, 1, 0, 1], 0.5, 3);
        let names: Vec<&str> = got
            .iter()
            .map(|e| e.path.to_str().expect("UTF-8"))
            .collect();
        assert_eq!(names, ["w", "x", "y"]);
        assert!(confident_errors(&p, &[0.1, 0.9, 0.1, 0.9], &[0, 1, 0, 1], 0.5, 3).is_empty());
    }

    fn metrics() -> Report {
        let mut e = df_metrics::BinaryEvaluator::new(df_metrics::EvaluatorConfig::default())
            .expect("evaluator");
        e.update(&[0.9, 0.2, 0.7, 0.4], &[1, 0, 0, 1])
            .expect("update");
        e.into_evaluation().expect("evaluation").report
    }

    #[test]
    fn the_report_lists_each_error_with_its_map_or_the_reason_it_has_none() {
        let shown = [
            ShownError {
                error: Misclassified {
                    path: "val/real/r|1.png".into(),
                    label: 0,
                    p_fake: 0.7,
                },
                map: Ok(([12, 30], "conv4".into())),
            },
            ShownError {
                error: Misclassified {
                    path: "val/fake/f.png".into(),
                    label: 1,
                    p_fake: 0.4,
                },
                map: Err("f.png: damaged\nat byte 3 | here".into()),
            },
        ];
        let text = report(
            Path::new("w.safetensors"),
            Path::new("val"),
            &metrics(),
            true,
            &shown,
        );
        assert!(text.contains("n 4, accuracy 0.5000, AUC 0.7500,"), "{text}");
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(
            rows,
            [
                "| # | image | label | p(fake) | peak | map |",
                "| 1 | `val/real/r/1.png` | real | 0.7000 | 12, 30 | ![conv4](error-1.png) |",
                "| 2 | `val/fake/f.png` | fake | 0.4000 | - | not explained: f.png: damaged at byte 3 / here |",
            ]
        );
    }

    #[test]
    fn a_named_sets_section_links_its_own_overlays() {
        let shown = [ShownError {
            error: Misclassified {
                path: "b/real/r.png".into(),
                label: 0,
                p_fake: 0.9,
            },
            map: Ok(([1, 2], "conv".into())),
        }];
        let text = section(0.5, true, &shown, "other-");
        assert!(
            text.contains(
                "| 1 | `b/real/r.png` | real | 0.9000 | 1, 2 | ![conv](other-error-1.png) |"
            ),
            "{text}"
        );
        assert_eq!(overlay_names("other-")[7], "other-error-8.png");
        assert_eq!(overlay_names("").len(), SHOWN);
    }

    #[test]
    fn the_detector_is_opened_only_for_errors_and_its_failure_is_said_per_error() {
        let tmp = tempfile::tempdir().expect("temporary folder");
        let none: [(String, &[Misclassified]); 2] = [(String::new(), &[]), ("b-".into(), &[])];
        let shown = explain_all(tmp.path(), &none, || panic!("opened without an error"))
            .expect("nothing to explain");
        assert_eq!(shown, [Vec::new(), Vec::new()]);
        let error = Misclassified {
            path: "x.png".into(),
            label: 1,
            p_fake: 0.2,
        };
        let lists = [
            (String::new(), &[][..]),
            ("b-".into(), std::slice::from_ref(&error)),
        ];
        let mut opened = 0;
        let shown = explain_all(tmp.path(), &lists, || {
            opened += 1;
            Err("no weights".into())
        })
        .expect("errors without maps");
        assert_eq!(opened, 1);
        assert_eq!(shown[0], []);
        assert_eq!(shown[1][0].map, Err("the detector: no weights".to_string()));
        assert!(!tmp.path().join("b-error-1.png").exists());
    }

    #[test]
    fn a_report_without_errors_says_why() {
        let m = metrics();
        let text = report(Path::new("w"), Path::new("d"), &m, true, &[]);
        assert!(
            text.ends_with("No image is misclassified at threshold 0.5.\n"),
            "{text}"
        );
        let text = report(Path::new("w"), Path::new("d"), &m, false, &[]);
        assert!(
            text.contains("could not be matched to their files"),
            "{text}"
        );
        assert!(!text.contains("| #"), "{text}");
    }
}
