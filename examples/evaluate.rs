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

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use deepfake::data::{ImageFolder, Loader, LoaderConfig, ResizeFilter, SkipSummary};
use deepfake::metrics::EvaluatorConfig;
use deepfake::models::load::{load_weights, KerasLoadOptions};
use deepfake::models::Polarity;
use deepfake::train::{
    evaluate_in, prepared_transform, write_evaluation, write_text, DeviceChoice, Precision,
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
    /// Compute precision of the forward passes: f32, bf16 (autocast, CPU and CUDA) or
    /// f16 (autocast with loss scaling in training; meant for CUDA).
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    precision: Precision,
    /// Output directory.
    #[arg(long, default_value = "runs/evaluate")]
    out: PathBuf,
}

fn parse_precision(s: &str) -> std::result::Result<Precision, String> {
    Precision::parse(s).map_err(|e| e.to_string())
}

fn run() -> Result<()> {
    let args = Args::parse();
    // Every option before any work: the threshold, the device.
    let evaluator = EvaluatorConfig::default().with_threshold(args.threshold);
    deepfake::metrics::BinaryEvaluator::new(evaluator.clone()).context("--threshold")?;
    let device = DeviceChoice::parse(&args.device)?.device()?;
    args.precision.check(device)?;
    let polarity = match args.polarity {
        PolarityArg::Fake => Polarity::Fake,
        PolarityArg::Real => Polarity::Real,
    };
    let loaded = load_weights(
        args.model.as_deref(),
        &args.weights,
        device,
        &KerasLoadOptions::default().with_polarity(polarity),
    )
    .with_context(|| format!("loading {}", args.weights.display()))?;
    let resize = args.resize.map(|r| match r {
        ResizeArg::Nearest => ResizeFilter::Nearest,
        ResizeArg::Bilinear => ResizeFilter::Bilinear,
        ResizeArg::Area => ResizeFilter::Area,
    });
    // The checkpoint's own preparation unless a flag says otherwise (then reported).
    let (transform, notes) = prepared_transform(&loaded, resize, args.center_crop)?;
    for note in &notes {
        eprintln!("note: {note}");
    }
    let data = ImageFolder::open(&args.data)?;
    let mut config = LoaderConfig::eval(transform, args.batch_size);
    if let Some(w) = args.workers {
        config = config.with_workers(w);
    }
    let loader = Loader::new(data, config)?;
    let evaluation = evaluate_in(
        loaded.model.as_ref(),
        &loader,
        device,
        evaluator,
        args.precision,
    )?;
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
