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

#[path = "predict/video_args.rs"]
mod video_args;
use std::path::{Path, PathBuf};
use video_args::VideoArgs;

#[path = "predict/score.rs"]
#[allow(dead_code)] // predict's scoring core; evaluate uses its face and video parts
mod score;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use deepfake::data::{
    ImageFolder, Loader, LoaderConfig, ResizeFilter, SkipReason, SkipReport, SkipSummary,
};
use deepfake::metrics::{EvaluatorConfig, Metric};
use deepfake::models::load::{load_weights, KerasLoadOptions};
use deepfake::models::Polarity;
use deepfake::tch::Device;
use deepfake::train::{
    evaluate_in, prepared_transform, write_evaluation, write_text, DeviceChoice, Precision,
    PrecisionChoice,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ResizeArg {
    Nearest,
    Bilinear,
    Area,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PolarityArg {
    Fake,
    Real,
}

/// Evaluates a deepfake detector on labelled images.
#[derive(Debug, Parser)]
#[command(name = "evaluate")]
struct Args {
    /// Registry name of the model (optional with a `.safetensors` checkpoint).
    #[arg(long)]
    model: Option<String>,
    /// Weights: a `.safetensors` checkpoint or a Keras `.h5` file.
    #[arg(long)]
    weights: PathBuf,
    /// Images to evaluate on (one sub-folder per class).
    #[arg(long)]
    data: PathBuf,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Decision threshold on p(fake).
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Resize filter (default: the one the checkpoint was trained with, else nearest).
    #[arg(long, value_enum)]
    resize: Option<ResizeArg>,
    /// Keep the central fraction of each image side before resizing (e.g. 0.512: the
    /// central 128×128 of a 250×250 face photo; default: the checkpoint's crop, else the
    /// whole image; 1 keeps the whole image).
    #[arg(long)]
    center_crop: Option<f32>,
    /// What a Keras file's output scores (ignored for checkpoints).
    #[arg(long, value_enum, default_value = "real")]
    polarity: PolarityArg,
    /// Decoding threads (default: cores, at most 8).
    #[arg(long)]
    workers: Option<usize>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Compute precision of the forward passes: f32, bf16 (autocast, CPU and CUDA), f16
    /// (autocast with loss scaling in training; meant for CUDA), or auto: bf16 where the
    /// hardware computes it natively (a CPU with avx512_bf16 or amx_bf16, a GPU of compute
    /// capability 8.0 or more), else f32; the choice is printed on stderr at start.
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    precision: PrecisionChoice,
    /// Score faces (on by default for a checkpoint trained on `prepare_faces` crops).
    #[arg(long)]
    faces: bool,
    #[command(flatten)]
    video: VideoArgs,
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

/// Checks `--out` before any work and records the files `evaluate` will write there: a
/// folder holding a training run (or another program's files) needs `--overwrite`; a file
/// at one of those names that no deepfake program recorded writing is never replaced.
fn claim_out(args: &Args) -> Result<()> {
    let out = &args.out;
    if out.exists() && !out.is_dir() {
        anyhow::bail!(
            "--out {}: a file, not a folder; name a folder for the evaluation's files",
            out.display()
        );
    }
    let owned = deepfake::io::owned::Owned::open(out)?;
    let run = deepfake::train::run_dir::run_files(out);
    let others: Vec<&str> = owned.programs().filter(|p| *p != "evaluate").collect();
    if !args.overwrite && (!run.is_empty() || !others.is_empty()) {
        let what = run.first().map_or_else(
            || format!("files written by {}", others.join(", ")),
            |f| format!("a training run ({})", f.display()),
        );
        anyhow::bail!(
            "--out {} holds {what}: evaluating into it would replace its metrics and plots; \
             give --overwrite to replace them, or choose another --out",
            out.display()
        );
    }
    deepfake::io::owned::Owned::claim(out, "evaluate", &OUTPUTS)?;
    Ok(())
}

/// The videos of `data`'s class folders with their labels (1 fake, 0 real), if it holds
/// any video.
fn labelled_videos(data: &Path) -> Result<Vec<(PathBuf, f32)>> {
    let mapping = deepfake::data::ClassMapping::default();
    let mut videos = Vec::new();
    let classes = std::fs::read_dir(data).with_context(|| format!("--data {}", data.display()))?;
    for class in classes {
        let class = class?.path();
        if !class.is_dir() {
            continue;
        }
        let name = class
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let files = std::fs::read_dir(&class).with_context(|| format!("{}", class.display()))?;
        for f in files {
            let f = f?.path();
            if deepfake::data::has_video_extension(&f) {
                let label = mapping.label(&name).with_context(|| {
                    format!(
                        "{}: class folder `{name}` is neither fake nor real",
                        class.display()
                    )
                })?;
                videos.push((
                    f,
                    if label == deepfake::data::Label::Fake {
                        1.0
                    } else {
                        0.0
                    },
                ));
            }
        }
    }
    videos.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(videos)
}

/// Video-level evaluation: each video scored as `predict` scores it (frames, faces, the
/// mean), the metrics over videos; videos that cannot be read or show no face are listed
/// in `skipped.json`.
fn evaluate_videos(
    args: &Args,
    videos: &[(PathBuf, f32)],
    evaluator: EvaluatorConfig,
    polarity: Polarity,
    resize: Option<ResizeFilter>,
    precision: Precision,
) -> Result<()> {
    let device = DeviceChoice::parse(&args.device)?.device()?;
    let scorer = score::Scorer::open(
        args.model.as_deref(),
        &args.weights,
        polarity,
        score::InputRequest {
            resize,
            center_crop: args.center_crop,
            input_size: None,
            faces: args.faces,
        },
        device,
        precision,
    )?;
    for note in &scorer.notes {
        deepfake::note(note);
    }
    let sampling = args.video.sampling()?;
    claim_out(args)?;
    let (mut probs, mut labels, mut skipped, mut lines) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (video, label) in videos {
        match scorer.score_video(video, &sampling, true) {
            Ok(p) => match p.p_fake {
                Some(score) => {
                    probs.push(score as f32);
                    labels.push(*label);
                    lines.push(serde_json::to_value(&p)?);
                }
                None => skipped.push(SkipReport {
                    path: video.clone(),
                    reason: SkipReason::NoFace,
                }),
            },
            Err(e) => skipped.push(SkipReport {
                path: video.clone(),
                reason: SkipReason::Video(deepfake::error_text(e.as_ref())),
            }),
        }
    }
    anyhow::ensure!(
        !probs.is_empty(),
        "{}: no video could be scored ({} skipped)",
        args.data.display(),
        skipped.len()
    );
    let mut evaluator = deepfake::metrics::BinaryEvaluator::new(evaluator)?;
    evaluator.update(&probs, &labels)?;
    let evaluation = evaluator.into_evaluation()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_evaluation(&args.out, &evaluation)?;
    write_text(
        &args.out.join("videos.json"),
        &serde_json::to_string_pretty(&lines)?,
    )?;
    let n_skipped = skipped.len();
    write_text(
        &args.out.join("skipped.json"),
        &SkipSummary::new(skipped).to_json()?,
    )?;
    let r = &evaluation.report;
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
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

fn parse_precision(s: &str) -> std::result::Result<PrecisionChoice, String> {
    PrecisionChoice::parse(s).map_err(|e| e.to_string())
}

fn run() -> Result<()> {
    let args = Args::parse();
    // Every option before any work: the threshold, the device.
    let evaluator = EvaluatorConfig::default().with_threshold(args.threshold);
    deepfake::metrics::BinaryEvaluator::new(evaluator.clone()).context("--threshold")?;
    // The report may not go inside the data it scores (canonical paths: `x/../data/out`
    // and links count): its plots would be read as images by the next run on that data.
    if deepfake::io::is_inside(&args.out, &args.data)
        .with_context(|| format!("option --out: {}", args.out.display()))?
    {
        anyhow::bail!(
            "option --out: {} is inside --data {} (the plots written there would be read as \
             images): choose a folder outside it",
            args.out.display(),
            args.data.display()
        );
    }
    let device = DeviceChoice::parse(&args.device)?.device()?;
    let (precision, says) = args.precision.resolve(device);
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
    let polarity = match args.polarity {
        PolarityArg::Fake => Polarity::Fake,
        PolarityArg::Real => Polarity::Real,
    };
    let resize = args.resize.map(|r| match r {
        ResizeArg::Nearest => ResizeFilter::Nearest,
        ResizeArg::Bilinear => ResizeFilter::Bilinear,
        ResizeArg::Area => ResizeFilter::Area,
    });
    // A folder of videos: video-level metrics.
    let videos = labelled_videos(&args.data)?;
    if !videos.is_empty() {
        return evaluate_videos(&args, &videos, evaluator, polarity, resize, precision);
    }
    let loaded = load_weights(
        args.model.as_deref(),
        &args.weights,
        device,
        &KerasLoadOptions::default().with_polarity(polarity),
    )
    .with_context(|| format!("loading {}", args.weights.display()))?;
    // The checkpoint's own preparation unless a flag says otherwise (then reported).
    let (transform, notes) = prepared_transform(&loaded, resize, args.center_crop)?;
    for note in &notes {
        deepfake::note(note);
    }
    // A model trained on face crops scores face crops: a folder `prepare_faces` made is
    // scored as it is; any other folder is said to be taken as crops too.
    if let Some(faces) = loaded.preparation().and_then(|p| p.faces) {
        if !args.data.join(deepfake::train::FACE_MANIFEST).is_file() {
            deepfake::note(&format!(
                "{} was trained on face crops ({} px, margin {}); the images of {} are \
                 scored as they are, taken as face crops (for whole photos, make crops with \
                 `prepare_faces` first, or score them with `predict`, which finds the faces)",
                args.weights.display(),
                faces.size,
                faces.margin,
                args.data.display()
            ));
        }
    }
    let data = ImageFolder::open(&args.data)?;
    claim_out(&args)?;
    let mut config = LoaderConfig::eval(transform, args.batch_size);
    if let Some(w) = args.workers {
        config = config.with_workers(w);
    }
    let loader = Loader::new(data, config)?;
    let evaluation = evaluate_in(loaded.model.as_ref(), &loader, device, evaluator, precision)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_evaluation(&args.out, &evaluation)?;
    let skipped = loader.skipped();
    let n_skipped = skipped.len();
    write_text(
        &args.out.join("skipped.json"),
        &SkipSummary::new(skipped).to_json()?,
    )?;
    let r = &evaluation.report;
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
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

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run())
}
