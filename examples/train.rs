//! Trains a registered detector on an image folder and writes the run's files.
//!
//! ```text
//! cargo run --release --example train -- --model meso_inception4 \
//!     --data ../shared/data/lfw-faceswap/train --val ../shared/data/lfw-faceswap/val \
//!     --epochs 6 --batch-size 16 --dropout 0.2 --input-size 128 --center-crop 0.512 \
//!     --seed 1 --out runs/lfw
//! epoch 1/6 (40.8s) accuracy 0.4996 learning_rate 1.000e-3 loss 0.7836 val_accuracy 0.5117 val_auc 0.5451 val_loss 0.6916
//! epoch 2/6 (36.8s) accuracy 0.5542 learning_rate 1.000e-3 loss 0.6873 val_accuracy 0.5250 val_auc 0.6092 val_loss 0.6885
//! epoch 3/6 (37.1s) accuracy 0.6646 learning_rate 1.000e-3 loss 0.6221 val_accuracy 0.5050 val_auc 0.6154 val_loss 0.8303
//! epoch 4/6 (40.7s) accuracy 0.8163 learning_rate 1.000e-3 loss 0.4256 val_accuracy 0.8033 val_auc 0.8872 val_loss 0.4569
//! epoch 5/6 (73.0s) accuracy 0.8929 learning_rate 1.000e-3 loss 0.2830 val_accuracy 0.6817 val_auc 0.9667 val_loss 0.7043
//! epoch 6/6 (48.1s) accuracy 0.9292 learning_rate 1.000e-3 loss 0.1942 val_accuracy 0.9283 val_auc 0.9824 val_loss 0.1853
//! runs/lfw: 6 epochs, 46.1s/epoch, loss 0.1942; best val_loss 0.1853 at epoch 6; val accuracy 0.9283, AUC 0.9824, EER 0.0633
//! ```
//!
//! (A run on two CPU cores; epochs 5 and 6 shared them with a build.) Early stopping and
//! learning-rate reduction: `--early-stop val_loss --patience 5 --reduce-lr val_loss`.
//!
//! `DIR` has one sub-folder per class (`fake`/`real`; also `df`, `deepfake`,
//! `manipulated` ↔ `original`, `pristine`). Without `--val`, `--val-split F` holds out a
//! seeded share of each class. `--pseudo-fakes sbi` adds self-blended pseudo-fakes of the
//! real images (the folder may hold real images only): with `--val-split` the held-out
//! real images and their pseudo-fakes are the validation set (its AUC is the held-out SBI
//! AUC); with `--val DIR --val-split F` too, `DIR` is the validation set and the held-out
//! part is logged each epoch as `val_sbi_auc`. `--resume` continues a killed run from
//! `OUT/last.safetensors` and ends as the uninterrupted run would have (on the CPU); it
//! refuses a changed model, data, split, augmentation, crop, batch size or seed, and a
//! changed learning rate, epochs, callbacks or workers unless `--allow-changes` is given.
//! A fresh run into a folder that holds a run is refused without `--overwrite`; a second
//! process on the same `--out` is refused while the first runs (a lock file, `.lock`).
//!
//! Files in `--out`: `config.json` (the nested training configuration), `experiment.json`
//! (these options), `last.safetensors` (resumable), `best.safetensors` and
//! `model.safetensors` (checkpoints that the `evaluate` and `predict` examples open),
//! `history.json`, `history.csv`, `history.png`/`.svg`, `metrics.json` (validation set:
//! accuracy, AUC, AP, EER, log loss, ECE, confusion matrix), `roc.png`, `pr.png`,
//! `calibration.png`, `skipped.json` (unreadable files that were skipped).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use deepfake::data::{Augment, ResizeFilter};
use deepfake::layers::MemoryFormat;
use deepfake::models::TopKind;
use deepfake::train::{
    run_experiment, AdamConfig, DataConfig, DeviceChoice, EarlyStoppingConfig, ExperimentConfig,
    Loss, ModelChoice, OptimizerConfig, PrecisionChoice, ReduceLrOnPlateauConfig, SgdConfig,
    Verbosity,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Adam,
    Adamw,
    Sgd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LossArg {
    /// Binary cross-entropy on logits.
    Bce,
    /// Squared error of sigmoid outputs (the MesoNet authors').
    Mse,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ResizeArg {
    Nearest,
    Bilinear,
    Area,
}

/// Trains a deepfake detector.
#[derive(Debug, Parser)]
#[command(name = "train")]
struct Args {
    /// Registry name of the model (meso4, meso_inception4, efficientnet_b0 ...).
    #[arg(long)]
    model: String,
    /// Training images (one sub-folder per class).
    #[arg(long)]
    data: PathBuf,
    /// Validation images (one sub-folder per class).
    #[arg(long)]
    val: Option<PathBuf>,
    /// Share of the training images held out for validation (with --val, only with
    /// --pseudo-fakes: the held-out real images and their pseudo-fakes are then scored
    /// each epoch as val_sbi_loss, val_sbi_accuracy, val_sbi_auc).
    #[arg(long)]
    val_split: Option<f64>,
    /// Add pseudo-fakes made from the real training images: sbi (self-blended images,
    /// Shiohara and Yamasaki 2022), one per real image with a face, drawn anew each epoch;
    /// --data may then hold real images only. The faces (MTCNN's box and five landmarks)
    /// come from a prepare_faces folder's manifest or are found once and kept in
    /// OUT/landmarks.json. Real images and pseudo-fakes go through the same --augment.
    #[arg(long, value_parser = deepfake::cli::parse_pseudo_fakes)]
    pseudo_fakes: Option<deepfake::data::PseudoFakes>,
    /// With --pseudo-fakes: another run's landmarks.json on the same --data to start from
    /// (its faces are not found again; read only, this run keeps its own).
    #[arg(long, requires = "pseudo_fakes")]
    landmarks_from: Option<PathBuf>,
    /// Number of epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Optimizer.
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// AdamW's decoupled weight decay / SGD's L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Loss.
    #[arg(long, value_enum, default_value = "bce")]
    loss: LossArg,
    /// Stop when this logged metric stops improving (val_loss, val_accuracy, val_auc ...).
    #[arg(long)]
    early_stop: Option<String>,
    /// Epochs without improvement before early stopping.
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// Divide the learning rate when this logged metric plateaus.
    #[arg(long)]
    reduce_lr: Option<String>,
    /// Epochs without improvement before the learning rate is reduced.
    #[arg(long, default_value_t = 3)]
    reduce_lr_patience: usize,
    /// Factor of the learning-rate reduction.
    #[arg(long, default_value_t = 0.1)]
    reduce_lr_factor: f64,
    /// The detector top of a backbone model: study (the study's head: flatten, dense
    /// 256, dropout 0.5, dense 128, dense 1; the default), pooled (global average
    /// pooling, dropout 0.2, dense 1) or imagenet (Keras' 1000-class top: not trainable
    /// as a detector). MesoNet keeps the authors' head unless a top is given.
    #[arg(long, value_parser = parse_top)]
    top: Option<TopKind>,
    /// Hidden units of the head: two for the study head (e.g. 1024,2048, the study's
    /// VGG16-C), any number for the pooled head.
    #[arg(long, value_delimiter = ',')]
    head: Option<Vec<i64>>,
    /// A Keras weight file whose backbone starts the training: the ImageNet files that
    /// keras.applications downloads (`*_notop.h5`, or with the top, whose dense layers
    /// are ignored).
    #[arg(long)]
    backbone_weights: Option<PathBuf>,
    /// L2 coefficient of the head's kernels (Keras kernel_regularizer).
    #[arg(long)]
    l2: Option<f64>,
    /// Dropout of the head.
    #[arg(long)]
    dropout: Option<f64>,
    /// Square input size (default: the model's).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    input_size: Option<i64>,
    /// Memory format of the network on the CPU: channels_last (the models' default) or
    /// contiguous (NCHW).
    #[arg(long, value_parser = parse_memory_format)]
    memory_format: Option<MemoryFormat>,
    /// Train the head only.
    #[arg(long)]
    freeze_backbone: bool,
    /// Training augmentation: presets none, study (the Keras ImageDataGenerator set of
    /// the study), forensic (study plus crop, blur, JPEG and noise), and items
    /// (flip, rotate:DEG, zoom:A-B, crop:MIN, blur:A-B, jpeg:A-B, noise:A-B, rescale:A-B,
    /// contrast:A-B, saturation:A-B ...; @P for a probability), comma-separated, e.g.
    /// `forensic,jpeg:30-95` or `flip,rescale:0.5-1@0.5`.
    #[arg(long, default_value = "none", value_parser = deepfake::cli::parse_augment)]
    augment: Augment,
    /// Resize filter.
    #[arg(long, value_enum, default_value = "nearest")]
    resize: ResizeArg,
    /// Keep the central fraction of each image side before resizing (e.g. 0.512: the
    /// central 128×128 of a 250×250 face photo).
    #[arg(long)]
    center_crop: Option<f32>,
    /// Decoding threads (default: cores, at most 8).
    #[arg(long)]
    workers: Option<usize>,
    /// Seed of weights, data order, augmentation and dropout.
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
    /// On CUDA: cuDNN's benchmark mode (it times the convolution algorithms for each new
    /// shape and keeps the fastest: faster steps for fixed input sizes, at the cost of
    /// bit-for-bit reproducibility between runs).
    #[arg(long)]
    cudnn_benchmark: bool,
    /// Output directory.
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint. The model, data, split,
    /// augmentation, crop, batch size and seed must be the run's.
    #[arg(long)]
    resume: bool,
    /// With --resume: accept a changed learning rate, number of epochs, callbacks or
    /// workers (each is noted in the history).
    #[arg(long, requires = "resume")]
    allow_changes: bool,
    /// Replace the run already in --out (its checkpoints, history and settings).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Log where each epoch's time went (time_data, time_forward, time_backward,
    /// time_step, time_validation in the history).
    #[arg(long)]
    profile: bool,
    /// Print nothing but the summary.
    #[arg(long)]
    quiet: bool,
    /// Skip the data audit (by default each run first checks its data for shortcuts a
    /// detector could learn instead of manipulation, such as a JPEG quality that differs
    /// between the classes, and prints what it finds as `note:` lines; the report is
    /// kept in experiment.json; `audit` prints it in full).
    #[arg(long)]
    no_audit: bool,
    /// Data-parallel training with N processes on this machine (loopback Gloo, like
    /// `torchrun --standalone --nproc-per-node N`); the cores are shared among them.
    /// Without it, `train` joins a group when RANK, WORLD_SIZE, MASTER_ADDR and
    /// MASTER_PORT are set (torchrun, Slurm, a PyTorchJob).
    #[arg(long, default_value_t = 1)]
    nproc: usize,
    /// With `--nproc`: start more processes than the cores this process may use (refused
    /// otherwise: each needs a core and its own copy of the model).
    #[arg(long)]
    oversubscribe: bool,
}

fn parse_top(s: &str) -> std::result::Result<TopKind, String> {
    s.parse()
}

fn parse_memory_format(s: &str) -> std::result::Result<MemoryFormat, String> {
    s.parse()
        .map_err(|e: deepfake::layers::Error| e.to_string())
}

/// `train --nproc N`: the same command line, without `--nproc`, in N processes. SIGTERM,
/// SIGINT or SIGHUP is forwarded to them; once they have ended, this process exits with
/// 128 + the signal's number, as a shell reports a process the signal ended.
fn launch(nproc: usize, oversubscribe: bool) -> Result<()> {
    if std::env::var_os("WORLD_SIZE").is_some() {
        bail!(
            "--nproc: this process was already started as one rank of a group (WORLD_SIZE is set)"
        );
    }
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    let mut given = std::env::args_os().skip(1);
    while let Some(a) = given.next() {
        if a == "--nproc" {
            given.next();
        } else if !a.to_string_lossy().starts_with("--nproc=") {
            args.push(a);
        }
    }
    let program = std::env::current_exe().context("--nproc: locating this program")?;
    let options = deepfake::dist::LaunchOptions {
        oversubscribe,
        ..Default::default()
    };
    match deepfake::dist::launch_local_with(nproc, &program, &args, &options) {
        Err(deepfake::dist::Error::Signalled { signal }) => {
            eprintln!("train: stopped by signal {signal}; its {nproc} processes have ended");
            std::process::exit(128 + signal);
        }
        other => Ok(other?),
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if args.nproc == 0 {
        bail!("--nproc must be at least 1");
    }
    if args.nproc > 1 {
        return launch(args.nproc, args.oversubscribe);
    }
    let mut data = DataConfig::new(&args.data, args.batch_size);
    data.val = args.val.clone();
    data.val_split = args.val_split;
    data.pseudo_fakes = args.pseudo_fakes;
    data.landmarks_from = args.landmarks_from.clone();
    if data.val.is_some() && data.val_split.is_some() && data.pseudo_fakes.is_none() {
        bail!(
            "--val and --val-split: give one (both only with --pseudo-fakes, whose held-out \
             pseudo-fakes the split then holds)"
        );
    }
    data.audit = !args.no_audit;
    if let Some(w) = args.workers {
        data.workers = w;
    }
    data.augment = args.augment;
    data.resize = match args.resize {
        ResizeArg::Nearest => ResizeFilter::Nearest,
        ResizeArg::Bilinear => ResizeFilter::Bilinear,
        ResizeArg::Area => ResizeFilter::Area,
    };
    data.center_crop = args.center_crop;
    let info = deepfake::models::registry::info(&args.model)?;
    let mut model = ModelChoice::new(&args.model);
    model.options.top = Some(info.top_for(args.top, args.head.as_deref())?);
    model.backbone_weights = args.backbone_weights.clone();
    model.options.l2 = args.l2;
    model.options.dropout = args.dropout;
    model.options.input_size = args.input_size.map(|s| [s, s]);
    model.options.memory_format = args.memory_format;
    let mut cfg = ExperimentConfig::new(model, data, args.epochs, &args.out);
    cfg.optimizer = match args.optimizer {
        OptimizerArg::Adam => OptimizerConfig::Adam(AdamConfig::new(args.lr)),
        OptimizerArg::Adamw => OptimizerConfig::adamw(args.lr, args.weight_decay),
        OptimizerArg::Sgd => OptimizerConfig::Sgd(SgdConfig {
            lr: args.lr,
            momentum: args.momentum,
            nesterov: false,
            weight_decay: args.weight_decay,
        }),
    };
    cfg.loss = match args.loss {
        LossArg::Bce => Loss::BinaryCrossEntropy,
        LossArg::Mse => Loss::MeanSquaredError,
    };
    cfg.seed = args.seed;
    cfg.freeze_backbone = args.freeze_backbone;
    cfg.device = DeviceChoice::parse(&args.device)?;
    let (precision, says) = args.precision.resolve(cfg.device.device()?);
    if let Some(line) = says.filter(|_| std::env::var("RANK").map_or(true, |r| r == "0")) {
        eprintln!("{line}");
    }
    cfg.precision = precision;
    if args.cudnn_benchmark {
        deepfake::tch::Cuda::cudnn_set_benchmark(true);
    }
    cfg.profile = args.profile;
    cfg.resume = args.resume;
    cfg.allow_changes = args.allow_changes;
    cfg.overwrite = args.overwrite;
    cfg.verbosity = if args.quiet {
        Verbosity::Quiet
    } else {
        Verbosity::EpochLines
    };
    if let Some(m) = &args.early_stop {
        cfg.callbacks.early_stopping = Some(
            EarlyStoppingConfig::new(m)
                .with_patience(args.patience)
                .with_restore_best_weights(true),
        );
    }
    if let Some(m) = &args.reduce_lr {
        cfg.callbacks.reduce_lr_on_plateau = Some(
            ReduceLrOnPlateauConfig::new(m)
                .with_patience(args.reduce_lr_patience)
                .with_factor(args.reduce_lr_factor),
        );
    }

    let outcome = run_experiment(&cfg).with_context(|| format!("training {}", args.model))?;
    let last = outcome.history.epochs.last().context("no epoch ran")?;
    let mut line = format!(
        "{}: {} epochs, {:.1}s/epoch, loss {:.4}",
        args.out.display(),
        outcome.history.len(),
        outcome.seconds_per_epoch,
        last.get("loss").unwrap_or(f64::NAN)
    );
    if let Some(a) = &outcome.analysis {
        line.push_str(&format!(
            "; best {} {:.4} at epoch {}",
            a.best.metric, a.best.value, a.best.epoch
        ));
    }
    if let Some(e) = &outcome.evaluation {
        let r = &e.report;
        line.push_str(&format!(
            "; val accuracy {:.4}, AUC {}, EER {}",
            r.accuracy,
            r.auc.map_or("-".into(), |v| format!("{v:.4}")),
            r.eer.map_or("-".into(), |v| format!("{v:.4}"))
        ));
    }
    if outcome.skipped > 0 {
        line.push_str(&format!(
            "; {} unreadable files skipped (skipped.json)",
            outcome.skipped
        ));
    }
    // In a distributed run, rank 0 speaks for the group.
    if std::env::var("RANK").map_or(true, |r| r == "0") {
        println!("{line}");
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run())
}
