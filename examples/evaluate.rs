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
//! `skipped.json` to `--out`, and `report.md`: the metrics and the 8 most confident errors
//! (the misclassified images furthest from `--threshold`), each with its Grad-CAM overlay
//! (`error-1.png` ... next to it; `deepfake::detect::errors`) and the map's peak.
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
//! `robustness`: every row, with `--perturb`), each row's scores in `scores.json`, and
//! each image set's 8 most confident errors on its own images (no perturbation) with their
//! maps (`NAME-error-1.png` ...). One set without `--perturb` writes the single-set files
//! above.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use deepfake::cli::{check_out_outside, claim_out, DetectorArgs};
use deepfake::data::perturb::Perturbation;
use deepfake::data::{Loader, SkipReport, SkipSummary};
use deepfake::detect::errors;
use deepfake::detect::protocol::{self, NamedSet, SetData};
use deepfake::detect::FaceMode;
use deepfake::metrics::{BinaryEvaluator, Evaluation, EvaluatorConfig, Metric};
use deepfake::tch::Device;
use deepfake::train::{predict_in, write_evaluation, write_text, DeviceChoice};

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

/// Writes the metrics, the plots and `skipped.json`, and prints the summary line
/// (`what`: "images" or "videos").
fn write(args: &Args, evaluation: &Evaluation, skipped: Vec<SkipReport>, what: &str) -> Result<()> {
    write_evaluation(&args.out, evaluation)?;
    let n = skipped.len();
    write_text(
        &args.out.join("skipped.json"),
        SkipSummary::new(skipped).to_json()?,
    )?;
    let r = &evaluation.report;
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let skipped = if n == 0 {
        String::new()
    } else {
        format!(" ({n} {what} skipped)")
    };
    let path = args.out.join("metrics.json");
    let (accuracy, auc, eer, log_loss) = (r.accuracy, opt(r.auc), opt(r.eer), r.log_loss);
    match what {
        "videos" => println!(
            "{}: {} videos, accuracy {accuracy:.4}, AUC {auc}, EER {eer}, log loss {log_loss:.4}{skipped}",
            path.display(),
            r.n
        ),
        _ => println!(
            "{}: n {}, accuracy {accuracy:.4}, AUC {auc}, AP {}, EER {eer}, log loss {log_loss:.4}, ECE {:.4}{skipped}",
            path.display(),
            r.n,
            opt(r.ap),
            r.ece
        ),
    }
    Ok(())
}

fn run() -> Result<()> {
    let args = Args::parse();
    // Every option before any work: the threshold, the sets' names, the perturbations, the
    // folders, the device.
    let evaluator = EvaluatorConfig::default().with_threshold(args.threshold);
    BinaryEvaluator::new(evaluator.clone()).context("--threshold")?;
    protocol::check_unique(&args.data).map_err(anyhow::Error::msg)?;
    let perturbations = Perturbation::parse_all(&args.perturb).context("--perturb")?;
    check_out_outside(&args.out, args.data.iter().map(|s| s.dir.as_path()))?;
    let device = DeviceChoice::parse(&args.device)?.device()?;
    let (precision, says) = args.detector.precision.resolve(device);
    says.iter().for_each(|line| eprintln!("{line}"));
    precision.check(device)?;
    // Scoring on the CPU keeps freed memory for the next batch, as `train` does: each
    // batch's tensors are then not page-faulted in anew (measured:
    // docs/runs/scoring-amd-epyc-5292873.md).
    if device == Device::Cpu {
        deepfake::train::allocator::retain_freed_memory();
    }
    let data = protocol::open_sets(&args.data, !perturbations.is_empty()).context("--data")?;
    let d = &args.detector;
    let image_folders: Vec<&Path> = args
        .data
        .iter()
        .zip(&data)
        .filter(|(_, s)| matches!(s, SetData::Images(_)))
        .map(|(s, _)| s.dir.as_path())
        .collect();
    let model = match image_folders.is_empty() {
        true => None,
        false => Some(
            d.load_for_folders(device, args.batch_size, args.workers, &image_folders)
                .map_err(anyhow::Error::from_boxed)?,
        ),
    };
    let detector = match data.iter().any(|s| matches!(s, SetData::Videos(_))) {
        true => Some(d.open(&d.options(device, precision)?)?),
        false => None,
    };
    detector
        .iter()
        .flat_map(|d| d.notes())
        .for_each(|n| deepfake::note(n));
    let scorers = protocol::Scorers {
        images: model
            .as_ref()
            .map(|(loaded, config)| (loaded.model.as_ref(), config)),
        videos: detector.as_ref(),
        device,
        precision,
        evaluator: &evaluator,
    };
    match (data.as_slice(), perturbations.is_empty()) {
        ([SetData::Images(folder)], true) => {
            let outputs: Vec<String> = OUTPUTS
                .iter()
                .map(|s| s.to_string())
                .chain(["report.md".to_string()])
                .chain(errors::overlay_names(""))
                .collect();
            let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
            claim_out(&args.out, "evaluate", &outputs, args.overwrite)?;
            let (model, config) = scorers.images.context("the model")?;
            let loader = Loader::new(folder.clone(), config.clone())?;
            let predictions = predict_in(model, &loader, device, precision)?;
            let mut binary = BinaryEvaluator::new(evaluator.clone())?;
            binary.update(&predictions.scores, &predictions.labels)?;
            let evaluation = binary.into_evaluation()?;
            let skipped = loader.skipped();
            let (scores, labels) = (&predictions.scores, &predictions.labels);
            let errors = errors::of_pass(&loader, &skipped, scores, labels, args.threshold);
            let lined_up = errors.is_some();
            let lists = [(String::new(), errors.as_deref().unwrap_or_default())];
            let open = || explainer(&args, device, precision);
            let shown = errors::explain_all(&args.out, &lists, open)
                .map_err(|e| anyhow::anyhow!(deepfake::error_text(&e)))?
                .into_iter()
                .next()
                .unwrap_or_default();
            let (weights, dir) = (&args.detector.weights, &args.data[0].dir);
            write_text(
                &args.out.join("report.md"),
                errors::report(weights, dir, &evaluation.report, lined_up, &shown),
            )?;
            write(&args, &evaluation, skipped, "unreadable files")
        }
        ([SetData::Videos(videos)], true) => {
            claim_out(&args.out, "evaluate", &OUTPUTS, args.overwrite)?;
            let scores = scorers.videos.context("the detector")?.score_videos(videos);
            let n = scores.skipped.len();
            anyhow::ensure!(
                !scores.probs.is_empty(),
                "{}: no video could be scored ({n} skipped)",
                args.data[0].dir.display()
            );
            let mut binary = BinaryEvaluator::new(evaluator.clone())?;
            binary.update(&scores.probs, &scores.targets)?;
            write_text(
                &args.out.join("videos.json"),
                serde_json::to_string_pretty(&scores.reports)?,
            )?;
            write(&args, &binary.into_evaluation()?, scores.skipped, "videos")
        }
        _ => protocol_tables(&args, data, &perturbations, &scorers),
    }
}

/// The Detector that draws the errors' maps: on whole images, as the loader scored them;
/// one that cannot be opened leaves the errors without maps, said in the report.
fn explainer(
    args: &Args,
    device: Device,
    precision: deepfake::detect::Precision,
) -> std::result::Result<deepfake::Detector, String> {
    let d = &args.detector;
    d.options(device, precision)
        .map_err(|e| e.to_string())
        .and_then(|o| {
            d.open(&o.with_faces(FaceMode::Off))
                .map_err(|e| deepfake::error_text(&e))
        })
}

/// Several sets, or perturbations: one row per set and perturbation (a video set: its
/// frame and video levels), in `report.md`, `metrics.json` and `scores.json`, then each
/// image set's most confident errors with their maps (`NAME-error-1.png` ...).
fn protocol_tables(
    args: &Args,
    data: Vec<SetData>,
    perturbations: &[Perturbation],
    scorers: &protocol::Scorers<'_>,
) -> Result<()> {
    let outputs = protocol::output_files(&args.data, &data);
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    claim_out(&args.out, "evaluate", &outputs, args.overwrite)?;
    let sets: Vec<_> = args.data.iter().cloned().zip(data).collect();
    let tables = protocol::score_sets(&sets, perturbations, scorers)?;
    let (weights, perturbed) = (&args.detector.weights, !perturbations.is_empty());
    let explainer = || explainer(args, scorers.device, scorers.precision);
    tables
        .write(
            &args.out,
            weights,
            args.threshold,
            &args.data,
            perturbed,
            explainer,
        )
        .map_err(|e| anyhow::anyhow!(deepfake::error_text(&e)))?;
    print!("{}", protocol::render_table(&tables.rows));
    let n = tables.skipped.len();
    let skipped = match n {
        0 => String::new(),
        n => format!(" ({n} unreadable files skipped)"),
    };
    println!("{}{skipped}", args.out.join("report.md").display());
    Ok(())
}

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run())
}
