//! The cross-dataset and robustness protocols of the `evaluate` program (DeepfakeBench's
//! cross-dataset and robustness evaluations): named evaluation sets (`--data NAME=DIR`),
//! the rows of one table (a set, a set under a perturbation, a video set's frame and video
//! levels) and that table in Markdown.
//!
//! ```
//! # mod deepfake { pub mod detect { pub use df_detect::*; } }
//! use deepfake::detect::protocol::NamedSet;
//! let set = NamedSet::parse("lfw=../shared/data/lfw-faceswap/val").expect("NAME=DIR");
//! assert_eq!(set.name, "lfw");
//! // A `/` before the `=`: the whole text is a path, named after its last folder.
//! let path = NamedSet::parse("./a=b").expect("a path");
//! assert_eq!((path.name.as_str(), path.dir.to_str()), ("a=b", Some("./a=b")));
//! ```

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use df_metrics::Report;
use serde::Serialize;

/// An evaluation set and the name its rows carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSet {
    /// The name (no `/`).
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
}

impl NamedSet {
    /// Parses `--data`'s value: `NAME=DIR` when the text before the first `=` holds no
    /// `/`, else a plain `DIR` named after its last component (`a/b/` is `b`; `.` and `..`
    /// after the folder they resolve to).
    ///
    /// # Errors
    /// An empty name or folder, naming the option and the text.
    pub fn parse(text: &str) -> Result<NamedSet, String> {
        Self::parse_option("--data", text)
    }

    /// [`NamedSet::parse`] for another option (`compare --test`), whose errors name it.
    ///
    /// # Errors
    /// As [`NamedSet::parse`].
    pub fn parse_option(option: &str, text: &str) -> Result<NamedSet, String> {
        let bad = |why: &str| format!("{option} `{text}`: {why} (NAME=DIR or DIR)");
        if let Some((name, dir)) = text.split_once('=') {
            if !name.contains('/') && !name.contains(std::path::MAIN_SEPARATOR) {
                if name.trim().is_empty() {
                    return Err(bad("the name before `=` is empty"));
                }
                if dir.is_empty() {
                    return Err(bad("the folder after `=` is empty"));
                }
                return Ok(NamedSet {
                    name: name.to_string(),
                    dir: PathBuf::from(dir),
                });
            }
        }
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let dir = PathBuf::from(text);
        Ok(NamedSet {
            name: folder_name(&dir),
            dir,
        })
    }
}

/// The name of folder `dir`: its last normal component, else (`.`, `..`, `/`) that of
/// the folder it resolves to, else the text itself.
fn folder_name(dir: &Path) -> String {
    let last = |p: &Path| match p.components().next_back() {
        Some(Component::Normal(n)) => Some(n.to_string_lossy().into_owned()),
        _ => None,
    };
    last(dir)
        .or_else(|| dir.canonicalize().ok().as_deref().and_then(last))
        .unwrap_or_else(|| dir.display().to_string())
}

/// Checks that no two sets share a name.
///
/// # Errors
/// The first name given twice, with both folders.
pub fn check_unique(sets: &[NamedSet]) -> Result<(), String> {
    check_unique_option("--data", sets)
}

/// [`check_unique`] for another option, whose errors name it.
///
/// # Errors
/// As [`check_unique`].
pub fn check_unique_option(option: &str, sets: &[NamedSet]) -> Result<(), String> {
    for (i, a) in sets.iter().enumerate() {
        if let Some(b) = sets[..i].iter().find(|b| b.name == a.name) {
            return Err(format!(
                "{option}: the name `{}` is given twice ({} and {}); name each set: {option} NAME=DIR",
                a.name,
                b.dir.display(),
                a.dir.display(),
            ));
        }
    }
    Ok(())
}

/// What a row's scores are of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Each image.
    Image,
    /// Each sampled frame of a video, labelled as its video.
    Frame,
    /// Each video (the mean of its frames).
    Video,
}

impl Level {
    /// Its word in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Image => "image",
            Level::Frame => "frame",
            Level::Video => "video",
        }
    }
}

/// One row of a protocol's table and its `metrics.json` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The row's name in the table (see [`row_name`]).
    pub row: String,
    /// The set's name.
    pub set: String,
    /// The perturbation's name (`clean` for none).
    pub perturbation: String,
    /// What was scored.
    pub level: Level,
    /// Every metric.
    pub metrics: Report,
}

/// A row's name: the perturbation's (`clean`, `jpeg:30`) when there is one set, the set's
/// (`lfw`) for its clean row and `lfw+jpeg:30` for the others when there are several.
pub fn row_name(set: &str, perturbation: Option<&str>, several_sets: bool) -> String {
    match (perturbation, several_sets) {
        (None, true) => set.to_string(),
        (None, false) => "clean".to_string(),
        (Some(p), true) => format!("{set}+{p}"),
        (Some(p), false) => p.to_string(),
    }
}

/// The rows as one Markdown table: the row's name, its level when some row is not of
/// images, then AUC, accuracy and EER (4 decimals, `-` when undefined) and n.
pub fn render_table(rows: &[Row]) -> String {
    let levels = rows.iter().any(|r| r.level != Level::Image);
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
    let mut out = String::new();
    if levels {
        out.push_str("| set | level | AUC | accuracy | EER | n |\n");
        out.push_str("|---|---|---:|---:|---:|---:|\n");
    } else {
        out.push_str("| set | AUC | accuracy | EER | n |\n");
        out.push_str("|---|---:|---:|---:|---:|\n");
    }
    for r in rows {
        let name = r.row.replace('|', "\\|");
        let m = &r.metrics;
        let level = if levels {
            format!(" {} |", r.level.as_str())
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {name} |{level} {} | {} | {} | {} |",
            cell(m.auc),
            cell(Some(m.accuracy)),
            cell(m.eer),
            m.n
        );
    }
    out
}

/// Frame-level scores of scored videos: each sampled frame's p(fake) with its video's
/// target, frames without a score left out.
pub fn frame_scores(scores: &crate::videos::VideoScores) -> (Vec<f32>, Vec<f32>) {
    let (mut probs, mut targets) = (Vec::new(), Vec::new());
    for (report, &target) in scores.reports.iter().zip(&scores.targets) {
        for p in report.per_frame.iter().flatten().flatten() {
            probs.push(*p as f32);
            targets.push(target);
        }
    }
    (probs, targets)
}

/// What a named set holds.
#[derive(Debug, Clone)]
pub enum SetData {
    /// Labelled images.
    Images(df_data::ImageFolder),
    /// Labelled videos (each scored as `predict` scores it).
    Videos(Vec<(PathBuf, df_data::Label)>),
}

/// Opens each set: a folder of labelled videos, else an image folder. `perturbed`:
/// perturbations are asked for, which apply to image sets only (a video set is refused).
///
/// # Errors
/// A folder that cannot be opened, or a video set with `perturbed`, naming the folder.
pub fn open_sets(sets: &[NamedSet], perturbed: bool) -> Result<Vec<SetData>, crate::Error> {
    let mut out = Vec::new();
    for set in sets {
        let videos = crate::videos::labelled_videos(&set.dir)?;
        if videos.is_empty() {
            let folder = df_data::ImageFolder::open(&set.dir)
                .map_err(|e| crate::Error::from(e).in_file(&set.dir))?;
            out.push(SetData::Images(folder));
        } else if perturbed {
            return Err(crate::Error::File {
                path: set.dir.clone(),
                message: "it holds videos, and perturbations apply to image sets only; leave out \
                          --perturb, or evaluate the videos' frames as images"
                    .into(),
            });
        } else {
            out.push(SetData::Videos(videos));
        }
    }
    Ok(out)
}

/// One row's scores (`scores.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RowScores {
    /// The row's name.
    pub row: String,
    /// What was scored.
    pub level: Level,
    /// The targets (1 fake, 0 real).
    pub labels: Vec<f32>,
    /// The detector's p(fake), in the same order.
    pub p_fake: Vec<f32>,
}

/// What scores the sets: the model and loader settings for image sets, the detector for
/// video sets (each needed only where such a set is given).
pub struct Scorers<'a> {
    /// The model and the evaluation loader's settings (its transform) for image sets.
    pub images: Option<(&'a dyn df_models::Model, &'a df_data::LoaderConfig)>,
    /// The detector for video sets.
    pub videos: Option<&'a crate::Detector>,
    /// Where the model runs.
    pub device: tch::Device,
    /// At which precision.
    pub precision: df_train::Precision,
    /// The metrics' settings (the threshold).
    pub evaluator: &'a df_metrics::EvaluatorConfig,
}

/// A protocol's result: every row, each row's scores, the inputs skipped, and the most
/// confident errors of each image set.
#[derive(Debug, Clone)]
pub struct Tables {
    /// The rows, set by set, clean first, then each perturbation (a video set: its frame
    /// and video rows).
    pub rows: Vec<Row>,
    /// Each row's scores.
    pub scores: Vec<RowScores>,
    /// The inputs skipped, each once.
    pub skipped: Vec<df_data::SkipReport>,
    /// Each image set's most confident errors on its clean images, in set order.
    pub errors: Vec<SetErrors>,
}

/// The most confident errors of one image set, as it was given (no perturbation):
/// [`crate::errors::confident_errors`] at the evaluator's threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct SetErrors {
    /// The set's name.
    pub set: String,
    /// Whether the scores could be matched to their files (else `errors` is empty).
    pub lined_up: bool,
    /// At most [`crate::errors::SHOWN`], the most confident first.
    pub errors: Vec<crate::errors::Misclassified>,
}

/// The prefix of a set's overlay files among several sets: `NAME-` (`lfw-error-1.png`).
pub fn overlay_prefix(set: &str) -> String {
    format!("{set}-")
}

impl Tables {
    /// `metrics.json`: the threshold, `sets` (the clean rows) and, with perturbations,
    /// `robustness` (every row).
    pub fn metrics_json(&self, threshold: f32, perturbed: bool) -> serde_json::Value {
        let clean: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.perturbation == "clean")
            .collect();
        let mut metrics = serde_json::json!({ "threshold": threshold, "sets": clean });
        if perturbed {
            metrics["robustness"] = serde_json::json!(self.rows);
        }
        metrics
    }

    /// `report.md`: the weights, the threshold, each set's folder, the table, then each
    /// image set's most confident errors with their maps: `shown[i]` is `self.errors[i]`
    /// explained ([`crate::errors::explain_errors`] with [`overlay_prefix`]).
    pub fn report(
        &self,
        weights: &Path,
        threshold: f32,
        sets: &[NamedSet],
        shown: &[Vec<crate::errors::ShownError>],
    ) -> String {
        let mut report = format!(
            "# Evaluation\n\nWeights: `{}`; threshold {threshold}.\n\n",
            weights.display()
        );
        for set in sets {
            let _ = writeln!(report, "- `{}`: `{}`", set.name, set.dir.display());
        }
        report.push('\n');
        report.push_str(&render_table(&self.rows));
        for (errors, shown) in self.errors.iter().zip(shown) {
            let _ = write!(
                report,
                "\n## Most confident errors: `{}`\n\n{}",
                errors.set,
                crate::errors::section(
                    threshold,
                    errors.lined_up,
                    shown,
                    &overlay_prefix(&errors.set)
                )
            );
        }
        report
    }
}

/// The files [`Tables::write`] writes into an output folder for `sets` (opened as
/// `data`): `metrics.json`, `report.md`, `scores.json`, `skipped.json`, and each image
/// set's error overlays; to claim the folder before any work.
pub fn output_files(sets: &[NamedSet], data: &[SetData]) -> Vec<String> {
    let mut files: Vec<String> = ["metrics.json", "report.md", "scores.json", "skipped.json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (set, data) in sets.iter().zip(data) {
        if matches!(data, SetData::Images(_)) {
            files.extend(crate::errors::overlay_names(&overlay_prefix(&set.name)));
        }
    }
    files
}

impl Tables {
    /// Writes the protocol's files into `out` (claimed first, [`output_files`]), each
    /// atomically: `report.md` ([`Tables::report`], each image set's errors explained by the
    /// detector `explainer` opens, called only when there is an error; one it cannot open
    /// leaves them without maps, said in the report), `metrics.json`
    /// ([`Tables::metrics_json`]), `scores.json` and `skipped.json`.
    ///
    /// # Errors
    /// Writing a file, naming it.
    pub fn write(
        &self,
        out: &Path,
        weights: &Path,
        threshold: f32,
        sets: &[NamedSet],
        perturbed: bool,
        explainer: impl FnOnce() -> Result<crate::Detector, String>,
    ) -> Result<(), crate::Error> {
        let lists: Vec<_> = self
            .errors
            .iter()
            .map(|e| (overlay_prefix(&e.set), e.errors.as_slice()))
            .collect();
        let shown = crate::errors::explain_all(out, &lists, explainer)?;
        let json = |what: &str, e: serde_json::Error| {
            crate::Error::Message(format!("{}: {e}", out.join(what).display()))
        };
        let metrics = serde_json::to_string_pretty(&self.metrics_json(threshold, perturbed))
            .map_err(|e| json("metrics.json", e))?;
        let scores = serde_json::to_string(&self.scores).map_err(|e| json("scores.json", e))?;
        let report = self.report(weights, threshold, sets, &shown);
        df_io::write_atomic(&out.join("report.md"), report)?;
        df_io::write_atomic(&out.join("metrics.json"), metrics)?;
        df_io::write_atomic(&out.join("scores.json"), scores)?;
        let skipped = df_data::SkipSummary::new(self.skipped.clone()).to_json()?;
        df_io::write_atomic(&out.join("skipped.json"), skipped)?;
        Ok(())
    }
}

fn report_of(
    config: &df_metrics::EvaluatorConfig,
    probs: &[f32],
    targets: &[f32],
) -> Result<Report, crate::Error> {
    use df_metrics::Metric;
    let mut evaluator = df_metrics::BinaryEvaluator::new(config.clone())?;
    evaluator.update(probs, targets)?;
    Ok(evaluator.compute()?)
}

/// Scores every set, clean and under each perturbation (image sets), at the image or the
/// frame and video levels, into one table's rows (see the module's documentation).
///
/// # Errors
/// A set whose scorer is missing from `scorers`, a scoring error naming the set's folder,
/// a video set of which no video could be scored.
pub fn score_sets(
    sets: &[(NamedSet, SetData)],
    perturbations: &[df_data::perturb::Perturbation],
    scorers: &Scorers<'_>,
) -> Result<Tables, crate::Error> {
    let several = sets.len() > 1;
    let mut tables = Tables {
        rows: Vec::new(),
        scores: Vec::new(),
        skipped: Vec::new(),
        errors: Vec::new(),
    };
    let add = |tables: &mut Tables,
               set: &NamedSet,
               p: Option<String>,
               level,
               probs: Vec<f32>,
               targets: Vec<f32>| {
        let row = Row {
            row: row_name(&set.name, p.as_deref(), several),
            set: set.name.clone(),
            perturbation: p.unwrap_or_else(|| "clean".to_string()),
            level,
            metrics: report_of(scorers.evaluator, &probs, &targets)?,
        };
        tables.scores.push(RowScores {
            row: row.row.clone(),
            level,
            labels: targets,
            p_fake: probs,
        });
        tables.rows.push(row);
        Ok::<(), crate::Error>(())
    };
    let missing = |what: &str| crate::Error::Message(format!("no {what} to score the sets with"));
    for (set, data) in sets {
        match data {
            SetData::Images(folder) => {
                let (model, config) = scorers.images.ok_or_else(|| missing("model"))?;
                for p in std::iter::once(None).chain(perturbations.iter().map(Some)) {
                    let loader = match p {
                        None => df_data::Loader::new(folder.clone(), config.clone()),
                        Some(p) => df_data::Loader::new(
                            df_data::perturb::Perturbed::new(folder.clone(), p.clone()),
                            config.clone(),
                        ),
                    }?;
                    let predictions =
                        df_train::predict_in(model, &loader, scorers.device, scorers.precision)
                            .map_err(|e| crate::Error::from(e).in_file(&set.dir))?;
                    let skipped = loader.skipped();
                    if p.is_none() {
                        let (scores, labels) = (&predictions.scores, &predictions.labels);
                        let threshold = scorers.evaluator.threshold;
                        let errors =
                            crate::errors::of_pass(&loader, &skipped, scores, labels, threshold);
                        tables.errors.push(SetErrors {
                            set: set.name.clone(),
                            lined_up: errors.is_some(),
                            errors: errors.unwrap_or_default(),
                        });
                    }
                    for s in skipped {
                        if !tables.skipped.iter().any(|k| k.path == s.path) {
                            tables.skipped.push(s);
                        }
                    }
                    let targets = predictions.labels.iter().map(|&l| f32::from(l)).collect();
                    add(
                        &mut tables,
                        set,
                        p.map(ToString::to_string),
                        Level::Image,
                        predictions.scores,
                        targets,
                    )?;
                }
            }
            SetData::Videos(videos) => {
                let detector = scorers.videos.ok_or_else(|| missing("detector"))?;
                let scored = detector.score_videos(videos);
                if scored.probs.is_empty() {
                    return Err(crate::Error::File {
                        path: set.dir.clone(),
                        message: format!(
                            "no video could be scored ({} skipped)",
                            scored.skipped.len()
                        ),
                    });
                }
                let (frame_probs, frame_targets) = frame_scores(&scored);
                add(
                    &mut tables,
                    set,
                    None,
                    Level::Frame,
                    frame_probs,
                    frame_targets,
                )?;
                add(
                    &mut tables,
                    set,
                    None,
                    Level::Video,
                    scored.probs.clone(),
                    scored.targets.clone(),
                )?;
                tables.skipped.extend(scored.skipped);
            }
        }
    }
    Ok(tables)
}

/// Scores `sets` (opened by [`open_sets`]) with the checkpoint at `checkpoint`, each as
/// `evaluate --data` would: image sets through the checkpoint's own preparation in
/// batches of `batch_size`, video sets through a [`crate::Detector`] opened with
/// `options` (device, precision, faces, frame sampling). What `compare --test` adds to
/// each model's row.
///
/// # Errors
/// The checkpoint unreadable (naming it), as [`score_sets`] otherwise.
pub fn score_checkpoint(
    checkpoint: &Path,
    sets: &[(NamedSet, SetData)],
    options: &crate::DetectorOptions,
    batch_size: usize,
    evaluator: &df_metrics::EvaluatorConfig,
) -> Result<Tables, crate::Error> {
    let any = |videos: bool| {
        sets.iter()
            .any(|(_, d)| matches!(d, SetData::Videos(_)) == videos)
    };
    let images = match any(false) {
        true => {
            let keras = df_models::load::KerasLoadOptions::default();
            let loaded = df_models::load::load_weights(None, checkpoint, options.device, &keras)?;
            let (transform, _) =
                df_train::prepared_transform(&loaded, options.resize, options.center_crop)?;
            Some((loaded, df_data::LoaderConfig::eval(transform, batch_size)))
        }
        false => None,
    };
    let detector = match any(true) {
        true => Some(crate::Detector::open(checkpoint, options)?),
        false => None,
    };
    let scorers = Scorers {
        images: images
            .as_ref()
            .map(|(loaded, config)| (loaded.model.as_ref(), config)),
        videos: detector.as_ref(),
        device: options.device,
        precision: options.precision,
        evaluator,
    };
    score_sets(sets, &[], &scorers)
}

/// The model at `checkpoint` on each set: one `compare` column per set and level (a video
/// set's `NAME (frame)` and `NAME (video)`), scored as [`score_checkpoint`] scores them at
/// the default threshold.
///
/// # Errors
/// As [`score_checkpoint`].
pub fn test_cells(
    checkpoint: &Path,
    sets: &[(NamedSet, SetData)],
    options: &crate::DetectorOptions,
    batch_size: usize,
) -> Result<Vec<df_train::comparison::TestCell>, crate::Error> {
    if sets.is_empty() {
        return Ok(Vec::new());
    }
    let config = df_metrics::EvaluatorConfig::default();
    let tables = score_checkpoint(checkpoint, sets, options, batch_size, &config)?;
    Ok(tables.rows.into_iter().map(test_cell).collect())
}

/// A row's `compare` cell: its set's name, with the level for a video set.
fn test_cell(r: Row) -> df_train::comparison::TestCell {
    df_train::comparison::TestCell {
        column: match r.level {
            Level::Image => r.set,
            level => format!("{} ({})", r.set, level.as_str()),
        },
        auc: r.metrics.auc,
        accuracy: r.metrics.accuracy,
        eer: r.metrics.eer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compare_column_names_the_level_of_a_video_set_only() {
        let metrics = report_of(
            &df_metrics::EvaluatorConfig::default(),
            &[0.9, 0.2, 0.4, 0.6],
            &[1.0, 0.0, 1.0, 0.0],
        )
        .expect("metrics");
        let row = |set: &str, level| Row {
            row: set.into(),
            set: set.into(),
            perturbation: "clean".into(),
            level,
            metrics: metrics.clone(),
        };
        let cells: Vec<String> = [
            row("lfw", Level::Image),
            row("clips", Level::Frame),
            row("clips", Level::Video),
        ]
        .into_iter()
        .map(|r| test_cell(r).column)
        .collect();
        assert_eq!(cells, ["lfw", "clips (frame)", "clips (video)"]);
        let cell = test_cell(row("lfw", Level::Image));
        // Pairs fake > real: 0.9 beats both reals, 0.4 beats 0.2 only: 3 of 4.
        assert_eq!((cell.auc, cell.accuracy), (Some(0.75), 0.5));
    }

    #[test]
    fn an_image_sets_overlays_are_among_the_files_to_claim_a_video_sets_are_not() {
        let tmp = tempfile::tempdir().expect("temporary folder");
        let folder = df_data::synthetic::generate(tmp.path().join("a"), 1, 32, 1).expect("set");
        let sets = [
            NamedSet::parse("lfw=a").expect("a set"),
            NamedSet::parse("clips=b").expect("a set"),
        ];
        let data = [SetData::Images(folder), SetData::Videos(Vec::new())];
        let files = output_files(&sets, &data);
        assert_eq!(files.len(), 4 + crate::errors::SHOWN, "{files:?}");
        assert!(files.contains(&"lfw-error-8.png".to_string()), "{files:?}");
        assert!(!files.iter().any(|f| f.starts_with("clips-")), "{files:?}");
    }

    #[test]
    fn the_report_gives_each_image_sets_errors_after_the_table() {
        use crate::errors::{Misclassified, ShownError};
        let error = |path: &str| Misclassified {
            path: path.into(),
            label: 1,
            p_fake: 0.1,
        };
        let tables = Tables {
            rows: Vec::new(),
            scores: Vec::new(),
            skipped: Vec::new(),
            errors: vec![
                SetErrors {
                    set: "lfw".into(),
                    lined_up: true,
                    errors: vec![error("a/fake/1.png")],
                },
                SetErrors {
                    set: "other".into(),
                    lined_up: true,
                    errors: Vec::new(),
                },
            ],
        };
        let shown = vec![
            vec![ShownError {
                error: error("a/fake/1.png"),
                map: Ok(([3, 4], "conv".into())),
            }],
            Vec::new(),
        ];
        let sets = [
            NamedSet::parse("lfw=a").expect("a set"),
            NamedSet::parse("other=b").expect("a set"),
        ];
        let text = tables.report(Path::new("w.safetensors"), 0.5, &sets, &shown);
        let lfw = text.find("## Most confident errors: `lfw`").expect(&text);
        let other = text.find("## Most confident errors: `other`").expect(&text);
        assert!(lfw < other, "{text}");
        assert!(
            text[lfw..other].contains(
                "| 1 | `a/fake/1.png` | fake | 0.1000 | 3, 4 | ![conv](lfw-error-1.png) |"
            ),
            "{text}"
        );
        assert!(
            text[other..].contains("No image is misclassified at threshold 0.5."),
            "{text}"
        );
    }
    use df_metrics::{BinaryEvaluator, EvaluatorConfig, Metric};

    fn set(name: &str, dir: &str) -> NamedSet {
        NamedSet {
            name: name.into(),
            dir: dir.into(),
        }
    }

    #[test]
    fn named_sets_and_paths() {
        for (text, want) in [
            ("lfw=/data/lfw", set("lfw", "/data/lfw")),
            ("x=./a=b", set("x", "./a=b")),
            ("./a=b", set("a=b", "./a=b")),
            ("data/val", set("val", "data/val")),
            ("data/val/", set("val", "data/val/")),
            ("/srv/x=y/val", set("val", "/srv/x=y/val")),
            ("a=b=c", set("a", "b=c")),
        ] {
            assert_eq!(NamedSet::parse(text), Ok(want), "{text}");
        }
        // `.` is named after the folder it is.
        let here = std::env::current_dir().expect("cwd");
        let name = here.file_name().expect("named").to_string_lossy();
        assert_eq!(NamedSet::parse(".").expect(".").name, name);
        for (text, why) in [("=dir", "name"), ("lfw=", "folder"), ("", "empty")] {
            let e = NamedSet::parse(text).expect_err(text);
            assert!(e.contains("--data") && e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn duplicate_names_are_refused() {
        assert!(check_unique(&[set("a", "x/a"), set("b", "a")]).is_ok());
        let e = check_unique(&[set("val", "x/val"), set("b", "b"), set("val", "y/val")])
            .expect_err("twice");
        assert!(
            e.contains("`val` is given twice") && e.contains("x/val") && e.contains("y/val"),
            "{e}"
        );
    }

    #[test]
    fn row_names() {
        assert_eq!(row_name("lfw", None, false), "clean");
        assert_eq!(row_name("lfw", Some("jpeg:30"), false), "jpeg:30");
        assert_eq!(row_name("lfw", None, true), "lfw");
        assert_eq!(row_name("lfw", Some("blur:1"), true), "lfw+blur:1");
    }

    fn report(scores: &[f32], labels: &[u8]) -> Report {
        let mut e = BinaryEvaluator::new(EvaluatorConfig::default()).expect("evaluator");
        e.update(scores, labels).expect("update");
        e.compute().expect("report")
    }

    #[test]
    fn table_against_hand_computed_values() {
        // Fakes 0.9, 0.4; reals 0.6, 0.1. Pairs ranked right: (0.9,0.6), (0.9,0.1),
        // (0.4,0.1) of 4: AUC 0.75. At 0.5: 0.9 and 0.1 right, 0.4 and 0.6 wrong:
        // accuracy 0.5; at 0.5 one fake of two missed and one real of two flagged, so
        // EER 0.5.
        let a = report(&[0.9, 0.4, 0.6, 0.1], &[1, 1, 0, 0]);
        assert_eq!((a.auc, a.accuracy, a.n), (Some(0.75), 0.5, 4));
        // Perfectly ranked and decided: AUC 1, accuracy 1, EER 0.
        let b = report(&[0.8, 0.3], &[1, 0]);
        // Fakes only: no AUC, no EER.
        let c = report(&[0.7, 0.2, 0.9], &[1, 1, 1]);
        let rows = vec![
            Row {
                row: "lfw".into(),
                set: "lfw".into(),
                perturbation: "clean".into(),
                level: Level::Image,
                metrics: a,
            },
            Row {
                row: "lfw+jpeg:30".into(),
                set: "lfw".into(),
                perturbation: "jpeg:30".into(),
                level: Level::Image,
                metrics: b,
            },
            Row {
                row: "a|b".into(),
                set: "a|b".into(),
                perturbation: "clean".into(),
                level: Level::Image,
                metrics: c,
            },
        ];
        assert_eq!(
            render_table(&rows),
            "| set | AUC | accuracy | EER | n |\n\
             |---|---:|---:|---:|---:|\n\
             | lfw | 0.7500 | 0.5000 | 0.5000 | 4 |\n\
             | lfw+jpeg:30 | 1.0000 | 1.0000 | 0.0000 | 2 |\n\
             | a\\|b | - | 0.6667 | - | 3 |\n"
        );
        // With a video set: the level column.
        let mut video = rows[1].clone();
        video.level = Level::Video;
        assert_eq!(
            render_table(&[video]),
            "| set | level | AUC | accuracy | EER | n |\n\
             |---|---|---:|---:|---:|---:|\n\
             | lfw+jpeg:30 | video | 1.0000 | 1.0000 | 0.0000 | 2 |\n"
        );
    }

    #[test]
    fn frame_scores_carry_their_videos_label() {
        use crate::videos::VideoScores;
        use crate::VideoReport;
        let line = |per_frame: Vec<Option<f64>>| VideoReport {
            path: "v.mp4".into(),
            p_fake: None,
            label: crate::Label::Fake,
            frames: per_frame.len(),
            frames_scored: 0,
            per_frame: Some(per_frame),
            frame_faces: None,
        };
        let scores = VideoScores {
            probs: vec![0.5, 0.25],
            targets: vec![1.0, 0.0],
            reports: vec![
                line(vec![Some(0.5), None, Some(0.25)]),
                line(vec![Some(0.75)]),
            ],
            skipped: Vec::new(),
        };
        assert_eq!(
            frame_scores(&scores),
            (vec![0.5, 0.25, 0.75], vec![1.0, 1.0, 0.0])
        );
    }
}
