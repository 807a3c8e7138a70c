//! Trains several detectors on the same data with the same settings and writes the
//! study's comparison table (Markdown and JSON).
//!
//! ```text
//! cargo run --release --example compare -- --models study --recipe study \
//!     --data ../shared/data/lfw-faceswap/train --val ../shared/data/lfw-faceswap/val \
//!     --center-crop 0.512 --input-size 96 --epochs 3 --batch-size 16 --out runs/study
//! ```
//!
//! `--models study` is the study's nine models; `--recipe study` trains each with its
//! recipe from the study (`df_train::StudyRecipe`: Adam's rate, early stopping and
//! `ReduceLROnPlateau` on the study's metrics); `--recipe uniform` (the default) trains
//! every model with `--lr`, `--early-stop` and `--patience`. Backbone models get the study's head (`--top`,
//! `--head`, `--dropout`, `--l2` as in `train`). A real run and the study's figures are in
//! `docs/study.md`.
//!
//! Each model trains in `OUT/<model>/` (the files of the `train` example). After every
//! model, `OUT/comparison.md`, `OUT/comparison.json` and `OUT/histories.png` (the models'
//! curves side by side) are rewritten with the models so far. The table gives,
//! per model: trainable parameters, the learning rate, epochs run, the epoch the row
//! reports (the restored best epoch of early stopping, or the last) and its `loss`,
//! `accuracy`, `val_loss` and `val_accuracy`, the final model's validation AUC and EER,
//! the epoch of the lowest `val_loss`, the fluctuation of the validation curves over the
//! last `--window` epochs, or all when fewer ran (population standard deviation; the
//! study prefers the model whose curves have settled), and the mean seconds per epoch.
//!
//! `--test NAME=DIR` (repeatable) scores each final model on further labelled folders of
//! images or videos, as `evaluate --data` does, and adds a column of AUC per set (a video
//! set: frame and video level): train on one data set, test on many (DeepfakeBench's
//! cross-dataset protocol).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use deepfake::data::Augment;
use deepfake::detect::protocol::{self, NamedSet};
use deepfake::models::TopKind;
use deepfake::train::comparison::{self, ComparisonRow};
use deepfake::train::{
    check_experiment, run_experiment, DataConfig, DeviceChoice, EarlyStoppingConfig,
    ExperimentConfig, ModelChoice, OptimizerConfig, PrecisionChoice, StudyRecipe, Verbosity,
    STUDY_MODELS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RecipeArg {
    /// The study's per-model recipe.
    Study,
    /// The same settings for every model.
    Uniform,
}

fn parse_top(s: &str) -> std::result::Result<TopKind, String> {
    s.parse()
}

/// Trains several detectors alike and compares them.
#[derive(Debug, Parser)]
#[command(name = "compare")]
struct Args {
    /// Comma-separated registry names; `study` for the study's set (meso4,
    /// meso_inception4, vgg16_c, resnet50, efficientnet_b0/b3/b5/b7, inception_resnet_v2).
    #[arg(long, value_delimiter = ',', required = true)]
    models: Vec<String>,
    /// `study`: each model with the study's recipe (its Adam learning rate, early stopping
    /// and ReduceLROnPlateau monitors; --lr, --early-stop are then not used); `uniform`:
    /// every model with --lr and --early-stop.
    #[arg(long, value_enum, default_value = "uniform")]
    recipe: RecipeArg,
    /// The detector top of the backbone models: study (default), pooled or imagenet.
    #[arg(long, value_parser = parse_top)]
    top: Option<TopKind>,
    /// Hidden units of the head (e.g. 1024,2048, the study's VGG16-C head).
    #[arg(long, value_delimiter = ',')]
    head: Option<Vec<i64>>,
    /// Dropout of the head.
    #[arg(long)]
    dropout: Option<f64>,
    /// L2 coefficient of the head's kernels.
    #[arg(long)]
    l2: Option<f64>,
    /// Training images (one sub-folder per class).
    #[arg(long)]
    data: PathBuf,
    /// Validation images.
    #[arg(long, conflicts_with = "val_split")]
    val: Option<PathBuf>,
    /// A further test set, `NAME=DIR` or `DIR` (repeatable): a labelled folder of images or
    /// videos each final model is scored on, one AUC column per set.
    #[arg(long = "test", value_parser = |s: &str| NamedSet::parse_option("--test", s))]
    tests: Vec<NamedSet>,
    /// Share of the training images held out for validation (default 0.2 without --val).
    #[arg(long)]
    val_split: Option<f64>,
    /// Number of epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Learning rate (Adam; with --recipe uniform).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Early stopping on this metric (patience --patience, best weights restored; with
    /// --recipe uniform).
    #[arg(long)]
    early_stop: Option<String>,
    /// Patience of early stopping.
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// Square input size for every model (default: each model's own).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    input_size: Option<i64>,
    /// Training augmentation: presets none, study (the Keras ImageDataGenerator set of
    /// the study), forensic (study plus crop, blur, JPEG and noise), and items
    /// (flip, rotate:DEG, zoom:A-B, crop:MIN, blur:A-B, jpeg:A-B, noise:A-B, rescale:A-B,
    /// contrast:A-B, saturation:A-B ...; @P for a probability), comma-separated, e.g.
    /// `forensic,jpeg:30-95` or `flip,rescale:0.5-1@0.5`.
    #[arg(long, default_value = "none", value_parser = deepfake::cli::parse_augment)]
    augment: Augment,
    /// Keep the central fraction of each image side before resizing (e.g. 0.512: the
    /// central 128×128 of a 250×250 face photo).
    #[arg(long)]
    center_crop: Option<f32>,
    /// Epochs over which the fluctuation of the validation curves is measured.
    #[arg(long, default_value_t = 5)]
    window: usize,
    /// Decoding threads.
    #[arg(long)]
    workers: Option<usize>,
    /// Seed (the same for every model).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Compute precision of the forward passes: f32, bf16 (autocast, CPU and CUDA), f16
    /// (autocast with loss scaling in training; meant for CUDA), or auto: bf16 where the
    /// hardware computes it natively (a CPU with avx512_bf16 or amx_bf16, a GPU of compute
    /// capability 8.0 or more), else f32; the choice is printed on stderr at start.
    #[arg(long, default_value = "f32", value_parser = deepfake::cli::parse_precision)]
    precision: PrecisionChoice,
    /// Output directory.
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
    /// Print only the table.
    #[arg(long)]
    quiet: bool,
}

fn run() -> Result<()> {
    let args = Args::parse();
    if args.window < 2 {
        bail!("--window must be at least 2");
    }
    let mut data = DataConfig::new(&args.data, args.batch_size);
    data.val = args.val.clone();
    data.val_split = match (&args.val, args.val_split) {
        (Some(_), _) => None,
        (None, f) => Some(f.unwrap_or(0.2)),
    };
    if let Some(w) = args.workers {
        data.workers = w;
    }
    data.center_crop = args.center_crop;
    data.augment = args.augment;
    protocol::check_unique_option("--test", &args.tests).map_err(anyhow::Error::msg)?;
    deepfake::cli::check_out_outside(&args.out, args.tests.iter().map(|s| s.dir.as_path()))?;
    let test_sets: Vec<_> = args
        .tests
        .iter()
        .cloned()
        .zip(protocol::open_sets(&args.tests, false).context("--test")?)
        .collect();
    let device = DeviceChoice::parse(&args.device)?;
    let (precision, says) = args.precision.resolve(device.device()?);
    if let Some(line) = says {
        eprintln!("{line}");
    }
    let mut scoring = deepfake::detect::DetectorOptions::default().with_device(device.device()?);
    scoring.precision = precision;
    let models: Vec<String> = args
        .models
        .iter()
        .flat_map(|m| {
            if m == "study" {
                STUDY_MODELS.iter().map(|s| s.to_string()).collect()
            } else {
                vec![m.clone()]
            }
        })
        .collect();
    // Every option is checked before the first model trains.
    let mut configs = Vec::new();
    for name in &models {
        let info = deepfake::models::registry::info(name)?;
        let mut model = ModelChoice::new(name);
        model.options.input_size = args.input_size.map(|s| [s, s]);
        model.options.top = Some(info.top_for(args.top, args.head.as_deref())?);
        model.options.dropout = args.dropout;
        model.options.l2 = args.l2;
        let mut cfg = ExperimentConfig::new(model, data.clone(), args.epochs, args.out.join(name));
        // `compare` owns its per-model folders: a new comparison replaces the old rows.
        cfg.overwrite = true;
        cfg.seed = args.seed;
        cfg.device = device;
        cfg.precision = precision;
        cfg.verbosity = if args.quiet {
            Verbosity::Quiet
        } else {
            Verbosity::EpochLines
        };
        match args.recipe {
            RecipeArg::Study => StudyRecipe::of(name)
                .with_context(|| format!("the study has no recipe for `{name}`"))?
                .apply(&mut cfg),
            RecipeArg::Uniform => {
                cfg.optimizer = OptimizerConfig::adam(args.lr);
                if let Some(m) = &args.early_stop {
                    cfg.callbacks.early_stopping = Some(
                        EarlyStoppingConfig::new(m)
                            .with_patience(args.patience)
                            .with_restore_best_weights(true),
                    );
                }
            }
        }
        configs.push(cfg);
    }
    // Each model's folder, and the comparison's own files, before the first model trains:
    // only files a run or a comparison recorded writing are replaced.
    for cfg in &configs {
        check_experiment(cfg).with_context(|| format!("{}", cfg.out_dir.display()))?;
    }
    deepfake::io::owned::Owned::claim(&args.out, "compare", &OUTPUTS)?;
    let mut rows = Vec::new();
    let plot = args.out.join("histories.png");
    let mut histories = Vec::new();
    for (name, cfg) in models.iter().zip(&configs) {
        if !args.quiet {
            eprintln!("== {name}");
        }
        let outcome = run_experiment(cfg).with_context(|| format!("training {name}"))?;
        let checkpoint = cfg.out_dir.join("model.safetensors");
        let tests = protocol::test_cells(&checkpoint, &test_sets, &scoring, args.batch_size)
            .with_context(|| format!("scoring {name} on the --test sets"))?;
        rows.push(ComparisonRow::of_outcome(name, cfg, &outcome, args.window).with_tests(tests));
        histories.push((name.clone(), outcome.history));
        // Written after every model, so an interrupted comparison keeps its rows and plot.
        write_table(&args.out, &rows, args.window)?;
        let curves: Vec<(&str, &deepfake::metrics::History)> =
            histories.iter().map(|(n, h)| (n.as_str(), h)).collect();
        deepfake::metrics::plot_histories(&curves, &plot)?;
    }
    let md = comparison::markdown(&rows, args.window);
    print!("{md}");
    println!(
        "wrote {}, {} and {}",
        args.out.join("comparison.md").display(),
        args.out.join("comparison.json").display(),
        plot.display()
    );
    Ok(())
}

/// The comparison's own files in `--out`.
const OUTPUTS: [&str; 3] = ["comparison.md", "comparison.json", "histories.png"];

/// Writes `comparison.md` and `comparison.json` into `out`.
fn write_table(out: &std::path::Path, rows: &[ComparisonRow], window: usize) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    comparison::write(out, rows, window)?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run())
}
