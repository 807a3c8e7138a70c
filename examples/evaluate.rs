//! Evaluates a detector on an image folder: metrics JSON and ROC/PR plots.
//!
//! ```text
//! cargo run --release --example evaluate -- --weights runs/lfw/model.safetensors \
//!     --data ../shared/data/lfw-faceswap/val --out runs/lfw/eval
//! runs/lfw/eval/metrics.json: n 600, accuracy 0.9283, AUC 0.9824, AP 0.9771, EER 0.0633, log loss 0.1853, ECE 0.0372
//! ```
//!
//! (`runs/lfw` from the `train` example's documented run, with `--center-crop 0.512`: the
//! checkpoint records the crop and the resize filter, applied here unless `--center-crop` or
//! `--resize` says otherwise; a `note:` on stderr reports such an override.)
//!
//! `--weights` takes a native checkpoint (`.safetensors`, which names its model, so
//! `--model` may be left out) or a Keras `.h5` file (`--model` required; `--polarity`
//! says what its output scores, `real` for Keras' alphabetical `fake`/`real` folders and
//! the MesoNet authors' files). Writes `metrics.json` (accuracy, precision, recall, F1,
//! confusion matrix at `--threshold`, AUC, AP, EER and its threshold, TPR at 1/5/10 %
//! FPR, log loss, Brier score, ECE), `roc.png`, `pr.png`, `calibration.png` and
//! `skipped.json` to `--out`.
//!
//! A `--data` folder whose class folders hold videos is evaluated per video: each video
//! scored as `predict` scores it (`--fps`, `--max-frames`; faces when the checkpoint was
//! trained on `prepare_faces` crops, or with `--faces`; the mean over its frames), the
//! metrics over videos, `videos.json` with each video's line, and the videos that could
//! not be read or show no face in `skipped.json`.
//!
//! Several sets (`--data lfw=DIR --data other=DIR`; a plain `--data DIR` is named after
//! its folder) give the cross-dataset table, and `--perturb jpeg:30,50,75 blur:1,2
//! resize:0.5 noise:0.02` the robustness table (the clean set, then each perturbation of
//! its images, `df_data::perturb`): one row per set and perturbation (a video set: a frame
//! and a video row; perturbations are refused on video sets), with AUC, accuracy, EER
//! and n, in `report.md` and in `metrics.json` (`sets`: each set's clean rows;
//! `robustness`: every row, with `--perturb`), each row's scores in `scores.json`. One
//! set without `--perturb` writes the single-set files above.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use deepfake::cli::{claim_out, DetectorArgs};
use deepfake::data::perturb::{Perturbation, Perturbed};
use deepfake::data::{
    ImageFolder, Label, Loader, LoaderConfig, ResizeFilter, SkipReport, SkipSummary,
};
use deepfake::detect::protocol::{self, Level, NamedSet, Row};
use deepfake::metrics::{BinaryEvaluator, Evaluation, EvaluatorConfig, Metric, Report};
use deepfake::models::load::{load_weights, KerasLoadOptions};
use deepfake::tch::Device;
use deepfake::train::{
    evaluate_in, predict_in, prepared_transform, write_evaluation, write_text, DeviceChoice,
    Precision,
};

/// Evaluates a deepfake detector on labelled images.
#[derive(Debug, Parser)]
#[command(name = "evaluate")]
struct Args {
    #[command(flatten)]
    detector: DetectorArgs,
    /// Images (or videos) to evaluate on, one sub-folder per class: `DIR` (named after its
    /// folder) or `NAME=DIR` (NAME without `/`: `./a=b` is a path). Repeat it for the
    /// cross-dataset table, one row per set.
    #[arg(long, required = true, value_name = "[NAME=]DIR", value_parser = NamedSet::parse)]
    data: Vec<NamedSet>,
    /// Robustness table: the clean set, then each perturbation of its images. KIND:V1,V2,...
    /// with KIND jpeg (quality 1-100), blur (sigma in pixels), resize (factor in (0, 1]) or
    /// noise (standard deviation as a fraction of 255), e.g. `--perturb jpeg:30,50,75
    /// blur:1,2 resize:0.5 noise:0.02`. Image sets only.
    #[arg(long, num_args = 1.., value_name = "KIND:VALUES")]
    perturb: Vec<String>,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Decision threshold on p(fake).
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Decoding threads (default: cores, at most 8).
    #[arg(long)]
    workers: Option<usize>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Output directory.
    #[arg(long, default_value = "runs/evaluate")]
    out: PathBuf,
    /// Write into an `--out` that holds another run's files (a training run's folder, or
    /// another program's results), replacing its metrics and plots.
    #[arg(long)]
    overwrite: bool,
}

/// The files `evaluate` writes into `--out`.
const OUTPUTS: [&str; 6] = [
    "metrics.json",
    "roc.png",
    "pr.png",
    "calibration.png",
    "videos.json",
    "skipped.json",
];

/// Writes the metrics, the plots and `skipped.json` (`skipped`: how many, and which).
fn write(args: &Args, evaluation: &Evaluation, skipped: Vec<SkipReport>) -> Result<usize> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_evaluation(&args.out, evaluation)?;
    let n = skipped.len();
    write_text(
        &args.out.join("skipped.json"),
        &SkipSummary::new(skipped).to_json()?,
    )?;
    Ok(n)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.4}"))
}

/// Video-level evaluation: each video scored as `predict` scores it (frames, faces, the
/// mean), the metrics over videos; videos that cannot be read or show no face are listed
/// in `skipped.json`.
fn evaluate_videos(
    args: &Args,
    data: &Path,
    videos: &[(PathBuf, deepfake::data::Label)],
    evaluator: EvaluatorConfig,
    options: deepfake::detect::DetectorOptions,
) -> Result<()> {
    let detector = args.detector.open(&options)?;
    for note in detector.notes() {
        deepfake::note(note);
    }
    claim_out(&args.out, "evaluate", &OUTPUTS, args.overwrite)?;
    let scores = detector.score_videos(videos);
    anyhow::ensure!(
        !scores.probs.is_empty(),
        "{}: no video could be scored ({} skipped)",
        data.display(),
        scores.skipped.len()
    );
    let mut evaluator = deepfake::metrics::BinaryEvaluator::new(evaluator)?;
    evaluator.update(&scores.probs, &scores.targets)?;
    let evaluation = evaluator.into_evaluation()?;
    let lines = scores.reports.iter().map(serde_json::to_value);
    let lines = lines.collect::<serde_json::Result<Vec<_>>>()?;
    let n_skipped = write(args, &evaluation, scores.skipped)?;
    write_text(
        &args.out.join("videos.json"),
        &serde_json::to_string_pretty(&lines)?,
    )?;
    let r = &evaluation.report;
    println!(
        "{}: {} videos, accuracy {:.4}, AUC {}, EER {}, log loss {:.4}{}",
        args.out.join("metrics.json").display(),
        r.n,
        r.accuracy,
        opt(r.auc),
        opt(r.eer),
        r.log_loss,
        if n_skipped == 0 {
            String::new()
        } else {
            format!(" ({n_skipped} videos skipped)")
        }
    );
    Ok(())
}

/// The files `evaluate` writes into `--out` with several sets or `--perturb`.
const PROTOCOL_OUTPUTS: [&str; 4] = ["metrics.json", "report.md", "scores.json", "skipped.json"];

fn run() -> Result<()> {
    let args = Args::parse();
    // Every option before any work: the threshold, the sets' names, the perturbations, the
    // folders, the device.
    let evaluator = EvaluatorConfig::default().with_threshold(args.threshold);
    deepfake::metrics::BinaryEvaluator::new(evaluator.clone()).context("--threshold")?;
    protocol::check_unique(&args.data).map_err(anyhow::Error::msg)?;
    let perturbations = Perturbation::parse_all(&args.perturb).context("--perturb")?;
    // The report may not go inside the data it scores (canonical paths: `x/../data/out`
    // and links count): its plots would be read as images by the next run on that data.
    for set in &args.data {
        if deepfake::io::is_inside(&args.out, &set.dir)
            .with_context(|| format!("option --out: {}", args.out.display()))?
        {
            anyhow::bail!(
                "option --out: {} is inside --data {} (the plots written there would be read \
                 as images): choose a folder outside it",
                args.out.display(),
                set.dir.display()
            );
        }
    }
    let device = DeviceChoice::parse(&args.device)?.device()?;
    let (precision, says) = args.detector.precision.resolve(device);
    if let Some(line) = says {
        eprintln!("{line}");
    }
    precision.check(device)?;
    // Scoring on the CPU keeps freed memory for the next batch, as `train` does: each
    // batch's tensors are then not page-faulted in anew (measured:
    // docs/runs/scoring-amd-epyc-5292873.md).
    if device == Device::Cpu {
        deepfake::train::allocator::retain_freed_memory();
    }
    if let ([set], true) = (args.data.as_slice(), perturbations.is_empty()) {
        return evaluate_one(&args, &set.dir, device, precision, evaluator);
    }
    evaluate_protocol(&args, &perturbations, device, precision, evaluator)
}

/// One set, no perturbation: the metrics, plots and skipped files of that set.
fn evaluate_one(
    args: &Args,
    data: &Path,
    device: Device,
    precision: Precision,
    evaluator: EvaluatorConfig,
) -> Result<()> {
    // A folder of videos: video-level metrics.
    let videos = deepfake::detect::videos::labelled_videos(data)?;
    if !videos.is_empty() {
        let options = args.detector.options(device, precision)?;
        return evaluate_videos(args, data, &videos, evaluator, options);
    }
    let d = &args.detector;
    let keras = KerasLoadOptions::default().with_polarity(d.polarity.into());
    let loaded = load_weights(d.model.as_deref(), &d.weights, device, &keras)
        .with_context(|| format!("loading {}", d.weights.display()))?;
    // The checkpoint's own preparation unless a flag says otherwise (then reported).
    let resize = d.resize.map(ResizeFilter::from);
    let (transform, notes) = prepared_transform(&loaded, resize, d.center_crop)?;
    for note in &notes {
        deepfake::note(note);
    }
    // A model trained on face crops scores face crops: a folder `prepare_faces` made is
    // scored as it is; any other folder is said to be taken as crops too.
    if let Some(note) = deepfake::detect::crops::uncropped_note(&loaded, &d.weights, data) {
        deepfake::note(&note);
    }
    let folder = ImageFolder::open(data)?;
    claim_out(&args.out, "evaluate", &OUTPUTS, args.overwrite)?;
    let mut config = LoaderConfig::eval(transform, args.batch_size);
    if let Some(w) = args.workers {
        config = config.with_workers(w);
    }
    let loader = Loader::new(folder, config)?;
    let evaluation = evaluate_in(loaded.model.as_ref(), &loader, device, evaluator, precision)?;
    let n_skipped = write(args, &evaluation, loader.skipped())?;
    let r = &evaluation.report;
    println!(
        "{}: n {}, accuracy {:.4}, AUC {}, AP {}, EER {}, log loss {:.4}, ECE {:.4}{}",
        args.out.join("metrics.json").display(),
        r.n,
        r.accuracy,
        opt(r.auc),
        opt(r.ap),
        opt(r.eer),
        r.log_loss,
        r.ece,
        if n_skipped > 0 {
            format!(" ({n_skipped} unreadable files skipped)")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// What a set holds.
enum SetData {
    Images(ImageFolder),
    Videos(Vec<(PathBuf, Label)>),
}

/// The report of `probs` against `targets` (1 fake, 0 real).
fn report_of(config: &EvaluatorConfig, probs: &[f32], targets: &[f32]) -> Result<Report> {
    let mut evaluator = BinaryEvaluator::new(config.clone())?;
    evaluator.update(probs, targets)?;
    Ok(evaluator.compute()?)
}

/// Several sets, or perturbations: one row per set and perturbation (a video set: its
/// frame and video levels), in `report.md`, `metrics.json` and `scores.json`.
fn evaluate_protocol(
    args: &Args,
    perturbations: &[Perturbation],
    device: Device,
    precision: Precision,
    evaluator: EvaluatorConfig,
) -> Result<()> {
    // Every set opened, and the combination checked, before any file is written.
    let mut sets = Vec::new();
    for set in &args.data {
        let videos = deepfake::detect::videos::labelled_videos(&set.dir)?;
        if videos.is_empty() {
            let folder = ImageFolder::open(&set.dir)
                .with_context(|| format!("--data {}", set.dir.display()))?;
            sets.push((set, SetData::Images(folder)));
        } else if !perturbations.is_empty() {
            anyhow::bail!(
                "--perturb with --data {}: it holds videos, and perturbations apply to image \
                 sets only; leave out --perturb, or evaluate the videos' frames as images",
                set.dir.display()
            );
        } else {
            sets.push((set, SetData::Videos(videos)));
        }
    }
    let d = &args.detector;
    let images = sets.iter().any(|(_, s)| matches!(s, SetData::Images(_)));
    let mut model = None;
    if images {
        let keras = KerasLoadOptions::default().with_polarity(d.polarity.into());
        let loaded = load_weights(d.model.as_deref(), &d.weights, device, &keras)
            .with_context(|| format!("loading {}", d.weights.display()))?;
        let resize = d.resize.map(ResizeFilter::from);
        let (transform, notes) = prepared_transform(&loaded, resize, d.center_crop)?;
        for note in &notes {
            deepfake::note(note);
        }
        for (set, _) in sets.iter().filter(|(_, s)| matches!(s, SetData::Images(_))) {
            if let Some(note) =
                deepfake::detect::crops::uncropped_note(&loaded, &d.weights, &set.dir)
            {
                deepfake::note(&note);
            }
        }
        let mut config = LoaderConfig::eval(transform, args.batch_size);
        if let Some(w) = args.workers {
            config = config.with_workers(w);
        }
        model = Some((loaded, config));
    }
    let mut detector = None;
    if sets.iter().any(|(_, s)| matches!(s, SetData::Videos(_))) {
        let opened = d.open(&d.options(device, precision)?)?;
        for note in opened.notes() {
            deepfake::note(note);
        }
        detector = Some(opened);
    }
    claim_out(&args.out, "evaluate", &PROTOCOL_OUTPUTS, args.overwrite)?;

    let several = args.data.len() > 1;
    let (mut clean, mut all, mut scores, mut skipped) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut add = |row: Row, probs: Vec<f32>, targets: Vec<f32>| {
        scores.push(serde_json::json!({
            "row": row.row,
            "level": row.level,
            "labels": targets,
            "p_fake": probs,
        }));
        if row.perturbation == "clean" {
            clean.push(row.clone());
        }
        all.push(row);
    };
    for (set, data) in &sets {
        match data {
            SetData::Images(folder) => {
                let (loaded, config) = model.as_ref().context("the model of the image sets")?;
                let variants = std::iter::once(None).chain(perturbations.iter().map(Some));
                for p in variants {
                    let loader = match p {
                        None => Loader::new(folder.clone(), config.clone()),
                        Some(p) => Loader::new(Perturbed::new(folder.clone(), *p), config.clone()),
                    }?;
                    let predictions = predict_in(loaded.model.as_ref(), &loader, device, precision)
                        .with_context(|| format!("--data {}", set.dir.display()))?;
                    for s in loader.skipped() {
                        if !skipped.iter().any(|k: &SkipReport| k.path == s.path) {
                            skipped.push(s);
                        }
                    }
                    let targets: Vec<f32> =
                        predictions.labels.iter().map(|&l| f32::from(l)).collect();
                    let name = p.map(ToString::to_string);
                    let row = Row {
                        row: protocol::row_name(&set.name, name.as_deref(), several),
                        set: set.name.clone(),
                        perturbation: name.unwrap_or_else(|| "clean".to_string()),
                        level: Level::Image,
                        metrics: report_of(&evaluator, &predictions.scores, &targets)?,
                    };
                    add(row, predictions.scores, targets);
                }
            }
            SetData::Videos(videos) => {
                let detector = detector
                    .as_ref()
                    .context("the detector of the video sets")?;
                let scored = detector.score_videos(videos);
                anyhow::ensure!(
                    !scored.probs.is_empty(),
                    "{}: no video could be scored ({} skipped)",
                    set.dir.display(),
                    scored.skipped.len()
                );
                let (frame_probs, frame_targets) = protocol::frame_scores(&scored);
                for (level, probs, targets) in [
                    (Level::Frame, frame_probs, frame_targets),
                    (Level::Video, scored.probs.clone(), scored.targets.clone()),
                ] {
                    let row = Row {
                        row: protocol::row_name(&set.name, None, several),
                        set: set.name.clone(),
                        perturbation: "clean".to_string(),
                        level,
                        metrics: report_of(&evaluator, &probs, &targets)?,
                    };
                    add(row, probs, targets);
                }
                skipped.extend(scored.skipped);
            }
        }
    }
    let table = protocol::render_table(&all);
    let mut metrics = serde_json::json!({ "threshold": args.threshold, "sets": clean });
    if !perturbations.is_empty() {
        metrics["robustness"] = serde_json::to_value(&all)?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut report = String::from("# Evaluation\n\n");
    report.push_str(&format!(
        "Weights: `{}`; threshold {}.\n\n",
        d.weights.display(),
        args.threshold
    ));
    for set in &args.data {
        report.push_str(&format!("- `{}`: `{}`\n", set.name, set.dir.display()));
    }
    report.push('\n');
    report.push_str(&table);
    write_text(&args.out.join("report.md"), &report)?;
    write_text(
        &args.out.join("metrics.json"),
        &serde_json::to_string_pretty(&metrics)?,
    )?;
    write_text(
        &args.out.join("scores.json"),
        &serde_json::to_string(&scores)?,
    )?;
    let n_skipped = skipped.len();
    write_text(
        &args.out.join("skipped.json"),
        &SkipSummary::new(skipped).to_json()?,
    )?;
    print!("{table}");
    println!(
        "{}{}",
        args.out.join("report.md").display(),
        if n_skipped > 0 {
            format!(" ({n_skipped} unreadable files skipped)")
        } else {
            String::new()
        }
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run())
}
