//! The study's final-model story: EfficientNet-B7 with the study's head trained three
//! times on the same data, without dropout, with dropout 0.5, and with dropout 0.5 plus
//! L2 1e-4 on the head's kernels; the table says how much each one's validation curves
//! fluctuate (the study chose the last for its steadier curves).
//!
//! ```text
//! cargo run --release --example final_model -- --data ../shared/data/lfw-faceswap/train \
//!     --val ../shared/data/lfw-faceswap/val --center-crop 0.512 --input-size 96 \
//!     --epochs 4 --out runs/final_model
//! ```
//!
//! Each variant trains with the study's EfficientNet recipe (Adam 1e-4, early stopping on
//! `loss`, ReduceLROnPlateau on `val_accuracy`; see `df_train::StudyRecipe`) in
//! `OUT/<variant>/` (the files of the `train` example), and `OUT/final_model.md`,
//! `OUT/final_model.json` and `OUT/histories.png` hold the comparison, rewritten after
//! every variant. 96 px on the CPU; the
//! study's 600 px wants a GPU (`--device cuda`). `--model` trains another model the same
//! way (the tests use `efficientnet_b0`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use deepfake::metrics::{AnalysisConfig, History};
use deepfake::models::TopKind;
use deepfake::train::{
    check_experiment, run_experiment, write_json, write_text, DataConfig, DeviceChoice,
    ExperimentConfig, ModelChoice, StudyRecipe, Verbosity,
};
use serde::Serialize;

/// Trains the study's final model without and with its regularisation.
#[derive(Debug, Parser)]
#[command(name = "final_model")]
struct Args {
    /// Registry name of the model.
    #[arg(long, default_value = "efficientnet_b7")]
    model: String,
    /// Training images (one sub-folder per class).
    #[arg(long)]
    data: PathBuf,
    /// Validation images.
    #[arg(long, conflicts_with = "val_split")]
    val: Option<PathBuf>,
    /// Share of the training images held out for validation (default 0.2 without --val).
    #[arg(long)]
    val_split: Option<f64>,
    /// Number of epochs.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Square input size.
    #[arg(long, default_value_t = 96)]
    input_size: i64,
    /// Keep the central fraction of each image side before resizing.
    #[arg(long)]
    center_crop: Option<f32>,
    /// Hidden units of the study head.
    #[arg(long, value_delimiter = ',')]
    head: Option<Vec<i64>>,
    /// Epochs over which the fluctuation of the validation curves is measured.
    #[arg(long, default_value_t = 3)]
    window: usize,
    /// Decoding threads.
    #[arg(long)]
    workers: Option<usize>,
    /// Seed (the same for every variant).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Output directory.
    #[arg(long, default_value = "runs/final_model")]
    out: PathBuf,
    /// Print only the table.
    #[arg(long)]
    quiet: bool,
}

/// One variant's row.
#[derive(Debug, Serialize)]
struct Row {
    variant: &'static str,
    dropout: f64,
    l2: f64,
    epochs: usize,
    val_loss: Option<f64>,
    val_accuracy: Option<f64>,
    val_auc: Option<f64>,
    val_loss_fluctuation: Option<f64>,
    val_accuracy_fluctuation: Option<f64>,
    seconds_per_epoch: f64,
}

const VARIANTS: [(&str, &str, f64, f64); 3] = [
    ("no-dropout", "no dropout", 0.0, 0.0),
    ("dropout", "dropout 0.5", 0.5, 0.0),
    ("dropout-l2", "dropout 0.5 + L2 1e-4", 0.5, 1e-4),
];

fn cell(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

fn markdown(args: &Args, rows: &[Row]) -> String {
    let mut md = format!(
        "| {} variant | epochs | last val_loss | last val_accuracy | val AUC (final model) | val_loss fluctuation (std, last {w} epochs or all) | val_accuracy fluctuation (std, last {w} epochs or all) | s/epoch |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        args.model,
        w = args.window
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} |\n",
            r.variant,
            r.epochs,
            cell(r.val_loss),
            cell(r.val_accuracy),
            cell(r.val_auc),
            cell(r.val_loss_fluctuation),
            cell(r.val_accuracy_fluctuation),
            r.seconds_per_epoch
        ));
    }
    md
}

/// The program's own files in `--out`.
const OUTPUTS: [&str; 3] = ["final_model.md", "final_model.json", "histories.png"];

/// `final_model.md`, `final_model.json` and `histories.png` in `--out`.
fn write_outputs(args: &Args, rows: &[Row], histories: &[(&str, History)]) -> Result<()> {
    write_text(&args.out.join("final_model.md"), markdown(args, rows))?;
    write_json(&args.out.join("final_model.json"), &rows)?;
    let curves: Vec<(&str, &History)> = histories.iter().map(|(n, h)| (*n, h)).collect();
    deepfake::metrics::plot_histories(&curves, args.out.join("histories.png"))?;
    Ok(())
}

fn run() -> Result<()> {
    let args = Args::parse();
    if args.window < 2 {
        anyhow::bail!("--window must be at least 2");
    }
    let info = deepfake::models::registry::info(&args.model)?;
    let top = info.top_for(Some(TopKind::Study), args.head.as_deref())?;
    let recipe = StudyRecipe::of(&args.model)
        .with_context(|| format!("the study has no recipe for `{}`", args.model))?;
    let mut data = DataConfig::new(&args.data, args.batch_size);
    data.val = args.val.clone();
    data.val_split = match &args.val {
        Some(_) => None,
        None => Some(args.val_split.unwrap_or(0.2)),
    };
    data.center_crop = args.center_crop;
    if let Some(w) = args.workers {
        data.workers = w;
    }
    let device = DeviceChoice::parse(&args.device)?;
    let mut configs = Vec::new();
    for (dir, variant, dropout, l2) in VARIANTS {
        let mut model = ModelChoice::new(&args.model);
        model.options.input_size = Some([args.input_size, args.input_size]);
        model.options.top = Some(top.clone());
        model.options.dropout = Some(dropout);
        model.options.l2 = Some(l2);
        let mut cfg = ExperimentConfig::new(model, data.clone(), args.epochs, args.out.join(dir));
        // It owns its per-variant folders: running it again replaces the files its runs
        // recorded there (and refuses a folder holding anything else).
        cfg.overwrite = true;
        recipe.apply(&mut cfg);
        cfg.seed = args.seed;
        cfg.device = device;
        cfg.verbosity = if args.quiet {
            Verbosity::Quiet
        } else {
            Verbosity::EpochLines
        };
        check_experiment(&cfg).with_context(|| format!("{}", cfg.out_dir.display()))?;
        configs.push((variant, dropout, l2, cfg));
    }
    deepfake::io::owned::Owned::claim(&args.out, "final_model", &OUTPUTS)?;
    let mut rows = Vec::new();
    let mut histories: Vec<(&str, History)> = Vec::new();
    for (variant, dropout, l2, cfg) in configs {
        if !args.quiet {
            eprintln!("== {} {variant}", args.model);
        }
        let outcome = run_experiment(&cfg).with_context(|| format!("training {variant}"))?;
        let h = &outcome.history;
        let analysis = h
            .analyze(&AnalysisConfig::monitoring("val_loss").with_window(args.window))
            .ok();
        rows.push(Row {
            variant,
            dropout,
            l2,
            epochs: h.len(),
            val_loss: h.last_value("val_loss"),
            val_accuracy: h.last_value("val_accuracy"),
            val_auc: outcome.evaluation.as_ref().and_then(|e| e.report.auc),
            val_loss_fluctuation: analysis
                .as_ref()
                .and_then(|a| a.val_loss_fluctuation.as_ref())
                .map(|f| f.std),
            val_accuracy_fluctuation: analysis
                .as_ref()
                .and_then(|a| a.val_accuracy_fluctuation.as_ref())
                .map(|f| f.std),
            seconds_per_epoch: outcome.seconds_per_epoch,
        });
        histories.push((variant, outcome.history));
        // After every variant, so a run cut short keeps the variants it finished.
        write_outputs(&args, &rows, &histories)?;
    }
    let md = markdown(&args, &rows);
    print!("{md}");
    Ok(())
}

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run())
}
