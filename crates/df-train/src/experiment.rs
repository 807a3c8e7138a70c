//! One training run from image folders to a report: what the `train`, `compare` and
//! `demo` examples and the real-data checks share.
//!
//! [`run_experiment`] builds the registered model, opens the image folders, makes the
//! loaders with the model's input transform, trains with the configured optimizer and
//! callbacks, evaluates the final model on the validation set, and writes everything a
//! person opens afterwards into the output directory:
//!
//! | file | what |
//! | --- | --- |
//! | `experiment.json` | the [`ExperimentConfig`] |
//! | `config.json` | the trainer's nested [`crate::TrainingConfig`] (model name and config, optimizer, data, callbacks) |
//! | `last.safetensors` | resumable checkpoint of the last completed epoch |
//! | `best.safetensors`, `model.safetensors` | best and final model (`df-models` checkpoints) |
//! | `history.json`, `history.csv` | per-epoch metrics |
//! | `history.png`, `history.svg` | loss and accuracy curves |
//! | `metrics.json` | `df-metrics`' report on the validation set (final model) |
//! | `roc.png`, `pr.png`, `calibration.png` | the validation curves |
//! | `skipped.json` | unreadable input files, skipped |

use std::path::{Path, PathBuf};

use df_data::{Augment, Balance, ImageFolder, Loader, LoaderConfig, ResizeFilter};
use df_layers::util::{param_count, ParamCount};
use df_metrics::{Evaluation, EvaluatorConfig, History, HistoryAnalysis};
use df_models::{BuildOptions, Model, Top};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Device;

use crate::callbacks::ModelCheckpointConfig;
use crate::checkpoint::atomic_write_bytes;
use crate::error::{config, Error, Result};
use crate::evaluate::evaluate_in;
use crate::loss::Loss;
use crate::optim::OptimizerConfig;
use crate::precision::Precision;
use crate::progress::Verbosity;
use crate::run_dir::{self, Reuse};
use crate::source::transform_for;
use crate::trainer::{files, CallbacksConfig, Trainer, SECONDS};

/// Where the run computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// The first CUDA device when there is one, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device `n`.
    Cuda(usize),
}

impl DeviceChoice {
    /// The libtorch device, checked before anything uses it: a CUDA device asked for
    /// must exist (libtorch would panic on first use otherwise).
    ///
    /// # Errors
    /// [`Error::Config`] (`device`) when CUDA device `n` is not there, saying how many
    /// libtorch sees.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(n) => {
                let count = tch::Cuda::device_count();
                if (n as i64) < count {
                    Ok(Device::Cuda(n))
                } else {
                    Err(config(
                        "device",
                        format!(
                            "cuda:{n} asked for, but libtorch sees {count} CUDA device(s){}; \
                             use `--device cpu` or `auto`",
                            if count == 0 {
                                " (no GPU visible, or a CPU-only libtorch)"
                            } else {
                                ""
                            }
                        ),
                    ))
                }
            }
        }
    }

    /// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| {
                    config(
                        "device",
                        format!("expected auto, cpu, cuda or cuda:N, got `{other}`"),
                    )
                }),
        }
    }
}

/// Where the images come from and how they are batched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// Training images: a folder with one sub-folder per class (`fake`/`real` ...).
    pub train: PathBuf,
    /// Validation images, a folder like `train`.
    #[serde(default)]
    pub val: Option<PathBuf>,
    /// Without `val`: the share of `train` held out for validation (seeded, per class).
    #[serde(default)]
    pub val_split: Option<f64>,
    /// Training batch size.
    pub batch_size: usize,
    /// Validation batch size (default: the training one).
    #[serde(default)]
    pub val_batch_size: Option<usize>,
    /// Decoding threads.
    pub workers: usize,
    /// Training augmentation.
    pub augment: Augment,
    /// Resize filter (Keras `flow_from_directory`: nearest).
    pub resize: ResizeFilter,
    /// Keep the central fraction of each image side before resizing (see
    /// [`df_data::Transform::center_crop`]); `None`: the whole image.
    #[serde(default)]
    pub center_crop: Option<f32>,
    /// Class balancing.
    pub balance: Balance,
}

impl DataConfig {
    /// `train` with batches of `batch_size`, no augmentation, nearest resize, as many
    /// workers as cores (at most 8).
    pub fn new(train: impl Into<PathBuf>, batch_size: usize) -> Self {
        Self {
            train: train.into(),
            val: None,
            val_split: None,
            batch_size,
            val_batch_size: None,
            workers: std::thread::available_parallelism()
                .map(|n| n.get().min(8))
                .unwrap_or(2),
            augment: Augment::none(),
            resize: ResizeFilter::Nearest,
            center_crop: None,
            balance: Balance::None,
        }
    }
    /// Validates on a separate folder.
    pub fn with_val(mut self, val: impl Into<PathBuf>) -> Self {
        self.val = Some(val.into());
        self
    }
    /// Holds out `fraction` of the training folder for validation.
    pub fn with_val_split(mut self, fraction: f64) -> Self {
        self.val_split = Some(fraction);
        self
    }
    /// Sets the augmentation.
    pub fn with_augment(mut self, augment: Augment) -> Self {
        self.augment = augment;
        self
    }
    /// Sets the number of decoding threads.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }
}

/// The model part of an [`ExperimentConfig`]: a catalogue name and df-models'
/// [`BuildOptions`] as they are (stored flattened: `experiment.json` has `name`,
/// `input_size`, `dropout`, `l2`, `top`, `memory_format`, `backbone_weights`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelChoice {
    /// The registry name (`meso4`, `meso_inception4`, `efficientnet_b0` ...).
    pub name: String,
    /// How the model departs from its defaults. A `None` top means the detector top
    /// ([`df_models::ModelInfo::detector_top`]: the study's head on a backbone, the
    /// model's own binary head otherwise); training needs a binary top.
    #[serde(flatten)]
    pub options: BuildOptions,
    /// A Keras weight file whose backbone starts the training (`keras.applications`
    /// ImageNet weights, `*_notop.h5` or with the top, whose dense layers are ignored);
    /// the head starts from its initialisation.
    #[serde(default)]
    pub backbone_weights: Option<PathBuf>,
}

impl ModelChoice {
    /// The registered model `name` with its defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            options: BuildOptions::default(),
            backbone_weights: None,
        }
    }

    /// The architecture options, with the detector top resolved.
    ///
    /// # Errors
    /// An unknown model name.
    pub fn build_options(&self) -> Result<BuildOptions> {
        let mut options = self.options.clone();
        if options.top.is_none() {
            options.top = Some(df_models::registry::info(&self.name)?.detector_top());
        }
        Ok(options)
    }

    /// Builds the detector under `vs` (the caller seeds libtorch first for reproducible
    /// weights) and loads [`ModelChoice::backbone_weights`] when given.
    ///
    /// # Errors
    /// An unknown model, invalid options, a top that is not a binary detector head
    /// (option `top`), a backbone weight file that does not fit.
    pub fn build(&self, vs: &VarStore) -> Result<Box<dyn Model>> {
        let options = self.build_options()?;
        if let Some(top) = options.top.as_ref().filter(|t| !t.is_binary()) {
            let what = match top {
                Top::ImageNet { classes } => format!("the ImageNet top gives {classes} logits"),
                _ => "a backbone gives a feature map".into(),
            };
            return Err(config(
                "top",
                format!(
                    "{what} per image, but a detector trains on one logit of \"fake\" \
                     (binary cross-entropy): use the study or pooled top"
                ),
            ));
        }
        let model = df_models::build(&self.name, &vs.root(), &options)?;
        if let Some(path) = &self.backbone_weights {
            let weights = df_models::keras::KerasWeights::read(path)?;
            df_models::keras::import_keras_backbone(vs, model.as_ref(), &weights)?;
        }
        Ok(model)
    }

    /// [`ModelChoice::build`] with libtorch's generator seeded from `seed` first, as
    /// [`run_experiment`] does with the run's seed: the same seed gives the same initial
    /// weights. ([`crate::Trainer`] is handed a built model, so its own seed orders the
    /// data and draws dropout, not the weights: build with this, or call
    /// `tch::manual_seed` before building.) libtorch's generator is global to the process:
    /// another thread drawing random numbers during the build changes the weights.
    ///
    /// # Errors
    /// As [`ModelChoice::build`].
    pub fn build_seeded(&self, vs: &VarStore, seed: u64) -> Result<Box<dyn Model>> {
        tch::manual_seed((seed >> 1) as i64);
        self.build(vs)
    }
}

/// Everything one run needs; saved as `experiment.json` in its output directory (the
/// trainer writes its nested configuration as `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// The model.
    pub model: ModelChoice,
    /// The data.
    pub data: DataConfig,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The loss.
    pub loss: Loss,
    /// Number of epochs.
    pub epochs: usize,
    /// Seed of the weights, the data order, augmentation and dropout.
    pub seed: u64,
    /// Trains the head only.
    #[serde(default)]
    pub freeze_backbone: bool,
    /// Early stopping, LR schedule, best-model checkpoint (default: best by `val_loss`
    /// to `best.safetensors`).
    #[serde(default)]
    pub callbacks: CallbacksConfig,
    /// Where to compute.
    #[serde(default)]
    pub device: DeviceChoice,
    /// The compute precision of the forward passes (`f32`, `bf16`, `f16`: autocast),
    /// in training and in the final evaluation.
    #[serde(default)]
    pub precision: Precision,
    /// Log where each epoch's time went (`time_data`, `time_forward` ...; see
    /// [`crate::TrainerBuilder::profile`]).
    #[serde(default)]
    pub profile: bool,
    /// This process's rank and the number of processes: each rank reads its shard of
    /// the training data; only rank 0 writes.
    #[serde(default)]
    pub rank: usize,
    /// See `rank`.
    #[serde(default = "one")]
    pub world_size: usize,
    /// The output directory.
    pub out_dir: PathBuf,
    /// Continue the run in `out_dir` from its last checkpoint, if any. The run's stored
    /// `experiment.json` must agree on everything that shapes what is learnt (model,
    /// data, split, augmentation, crop, batch size, seed, loss); see
    /// [`ExperimentConfig::allow_changes`] for the rest.
    #[serde(default)]
    pub resume: bool,
    /// With `resume`: accept a changed learning rate, number of epochs, callbacks
    /// (patience ...) or number of workers, noting each in the history; without it such a
    /// change is refused by name.
    #[serde(default)]
    pub allow_changes: bool,
    /// Start afresh in an `out_dir` that holds another run, removing its files (without
    /// it, and without `resume`, that is refused).
    #[serde(default)]
    pub overwrite: bool,
    /// What to print.
    #[serde(default)]
    pub verbosity: Verbosity,
}

fn one() -> usize {
    1
}

impl ExperimentConfig {
    /// Trains `model` on `data` for `epochs` epochs with Adam (lr 1e-3), binary
    /// cross-entropy, seed 0, writing to `out_dir`.
    pub fn new(
        model: ModelChoice,
        data: DataConfig,
        epochs: usize,
        out_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            model,
            data,
            optimizer: OptimizerConfig::default(),
            loss: Loss::default(),
            epochs,
            seed: 0,
            freeze_backbone: false,
            callbacks: CallbacksConfig::default(),
            device: DeviceChoice::Auto,
            precision: Precision::F32,
            profile: false,
            rank: 0,
            world_size: 1,
            out_dir: out_dir.into(),
            resume: false,
            allow_changes: false,
            overwrite: false,
            verbosity: Verbosity::Auto,
        }
    }
}

/// What [`run_experiment`] returns.
#[derive(Debug)]
pub struct ExperimentOutcome {
    /// The per-epoch history.
    pub history: History,
    /// The final model on the validation set (`None` without validation data).
    pub evaluation: Option<Evaluation>,
    /// Best epoch, generalization gap and fluctuation of the validation curves (`None`
    /// without validation data).
    pub analysis: Option<HistoryAnalysis>,
    /// The model's parameters.
    pub params: ParamCount,
    /// Mean wall-clock seconds per epoch.
    pub seconds_per_epoch: f64,
    /// The trained model.
    pub model: Box<dyn Model>,
    /// Its variables.
    pub var_store: VarStore,
    /// Unreadable files skipped in training and validation.
    pub skipped: usize,
}

fn json_err(path: &Path) -> impl FnOnce(serde_json::Error) -> Error + '_ {
    move |source| Error::Json {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `value` as pretty JSON to `path`, atomically.
///
/// # Errors
/// An I/O error naming the file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(json_err(path))?;
    text.push('\n');
    atomic_write_bytes(path, text.as_bytes())
}

/// Writes `text` to `path`, atomically.
///
/// # Errors
/// An I/O error naming the file.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    atomic_write_bytes(path, text.as_bytes())
}

/// Runs the experiment described by `cfg`; see the module documentation for the files
/// it writes.
///
/// # Errors
/// An unknown model or invalid option, a missing or single-class data folder, a data or
/// training error ([`Error::NonFiniteLoss`] ...), an I/O error.
pub fn run_experiment(cfg: &ExperimentConfig) -> Result<ExperimentOutcome> {
    let (device, reuse) = check_options(cfg)?;
    // A distributed launch (`train --nproc N`, torchrun, Slurm, a PyTorchJob) sets RANK,
    // WORLD_SIZE, MASTER_ADDR and MASTER_PORT: join the group, which gives the rank and
    // world size (recorded in experiment.json; a resume must keep the world size).
    let group = match df_dist::DistConfig::from_env()? {
        Some(dist) => {
            // A rank that `train --nproc` started ends with it, never as an orphan.
            df_dist::bind_to_launcher()?;
            if dist.local_world_size > 1 {
                // The machine's cores shared among its ranks, not oversubscribed.
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                tch::set_num_threads((cores / dist.local_world_size).max(1) as i32);
            }
            Some(df_dist::ProcessGroup::new(&dist)?)
        }
        None => None,
    };
    let mut effective = cfg.clone();
    if let Some(g) = &group {
        effective.rank = g.rank();
        effective.world_size = g.world_size();
    } else if cfg.world_size > 1 {
        return Err(config(
            "world_size",
            format!(
                "{} processes need a process group: start them with `train --nproc {}` or \
                 a launcher that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (torchrun)",
                cfg.world_size, cfg.world_size
            ),
        ));
    }
    let cfg = &effective;
    let main = cfg.rank == 0;
    // NCCL trains on the rank's GPU (cuda:LOCAL_RANK); Gloo's collectives take CPU tensors.
    let device = match &group {
        Some(g) if g.device() != tch::Device::Cpu => g.device(),
        Some(_) if device != tch::Device::Cpu => {
            return Err(config(
                "device",
                format!(
                    "{device:?} in a Gloo group: Gloo's collectives take CPU tensors; train on \
                     the CPU, or on GPUs with DF_DIST_BACKEND=nccl (the `nccl` feature)"
                ),
            ))
        }
        _ => device,
    };
    let resume_changes = if cfg.resume {
        resume_changes(cfg)?
    } else {
        Vec::new()
    };
    let vs = VarStore::new(device);
    let model = cfg.model.build_seeded(&vs, cfg.seed)?;
    let params = param_count(&vs);
    // Validated with every other option in `check_options`.
    let transform =
        transform_for(&model.input_spec(), cfg.data.resize).with_center_crop(cfg.data.center_crop);

    let folder = ImageFolder::open(&cfg.data.train)?;
    let (train_set, val_set) = match (&cfg.data.val, cfg.data.val_split) {
        (Some(dir), _) => {
            let val = ImageFolder::open(dir)?;
            folder.check_disjoint(&val)?;
            (folder, Some(val))
        }
        (None, Some(f)) => {
            let (t, v) = folder.validation_split(f, cfg.seed)?;
            (t, Some(v))
        }
        (None, None) => (folder, None),
    };
    // The files trained and validated on: a resume on other files is refused, naming
    // what changed; a fresh run records them (`data.json`).
    let data_record = if main {
        let record = crate::data_record::DataRecord::of(&train_set, val_set.as_ref())?;
        if cfg.resume {
            record.check_resume(&cfg.out_dir)?;
        }
        Some(record)
    } else {
        None
    };
    // Data-parallel: each epoch's order split among the ranks (equal parts, the same
    // number of steps everywhere); the validation set split whole, scores gathered.
    let shard = (cfg.world_size > 1).then_some((cfg.rank, cfg.world_size));
    // The final evaluation (rank 0's report) is on the whole validation set.
    let val_whole = if shard.is_some() {
        val_set.clone()
    } else {
        None
    };
    let val_set = match (val_set, shard) {
        (Some(v), Some((rank, world))) => Some(v.part(rank, world)?),
        (v, _) => v,
    };
    let train_loader = Loader::new(
        train_set,
        LoaderConfig {
            batch_size: cfg.data.batch_size,
            shuffle: true,
            drop_last: false,
            workers: cfg.data.workers,
            prefetch: 2,
            seed: cfg.seed,
            transform,
            augment: cfg.data.augment,
            balance: cfg.data.balance,
            shard,
        },
    )?;
    let eval_loader = |set: ImageFolder| {
        Loader::new(
            set,
            LoaderConfig::eval(
                transform,
                cfg.data.val_batch_size.unwrap_or(cfg.data.batch_size),
            )
            .with_workers(cfg.data.workers),
        )
    };
    let val_loader = val_set.map(eval_loader).transpose()?;

    let mut callbacks = cfg.callbacks.clone();
    if callbacks.model_checkpoint.is_none() {
        let monitor = if val_loader.is_some() {
            "val_loss"
        } else {
            "loss"
        };
        callbacks.model_checkpoint = Some(ModelCheckpointConfig::new(
            cfg.out_dir.join(files::BEST),
            monitor,
        ));
    }
    let mut builder = Trainer::builder(model, vs)
        .optimizer(cfg.optimizer)
        .loss(cfg.loss)
        .epochs(cfg.epochs)
        .batch_size(cfg.data.batch_size)
        .seed(cfg.seed)
        .freeze_backbone(cfg.freeze_backbone)
        .out_dir(&cfg.out_dir)
        .resume(cfg.resume)
        .resume_changes(resume_changes)
        .data_config(serde_json::to_value(&cfg.data).map_err(json_err(&cfg.out_dir))?)
        .verbosity(cfg.verbosity)
        .precision(cfg.precision)
        .profile(cfg.profile)
        .image_preparation(df_models::ImagePreparation {
            // Face folders made by `prepare_faces`: scoring crops faces the same way.
            faces: crate::source::face_crops_of(&cfg.data.train)?,
            ..crate::source::preparation_of(&transform)
        })
        .distributed(cfg.rank, cfg.world_size);
    if let Some(g) = group {
        builder = builder.process_group(g);
    }
    if let Some(c) = callbacks.early_stopping {
        builder = builder.early_stopping(c);
    }
    if let Some(c) = callbacks.reduce_lr_on_plateau {
        builder = builder.reduce_lr_on_plateau(c);
    }
    if let Some(c) = callbacks.model_checkpoint {
        builder = builder.model_checkpoint(c);
    }
    let mut trainer = builder.build()?;
    // Every option has been checked (model, data, loaders, optimizer, callbacks): only
    // now is anything written, holding the folder's lock for the whole run (rank 0).
    let _lock = if main {
        let lock = run_dir::lock(&cfg.out_dir)?;
        run_dir::prepare(&lock, reuse)?;
        run_dir::remove_stale_temporaries(&lock)?;
        write_json(&cfg.out_dir.join("experiment.json"), cfg)?;
        if let Some(record) = &data_record {
            write_json(&cfg.out_dir.join(crate::data_record::DATA_FILE), record)?;
        }
        Some(lock)
    } else {
        None
    };
    let val_source = val_loader.as_ref().map(|l| l as &dyn crate::BatchSource);
    let history = trainer.fit(&train_loader, val_source)?.clone();

    let (model, var_store) = trainer.into_parts();
    let whole_loader = val_whole.filter(|_| main).map(eval_loader).transpose()?;
    let final_loader = match (&whole_loader, shard) {
        (Some(whole), _) => Some(whole),
        // Other ranks of a distributed run leave the report to rank 0.
        (None, Some(_)) => None,
        (None, None) => val_loader.as_ref(),
    };
    let evaluation = match final_loader {
        Some(v) => Some(evaluate_in(
            model.as_ref(),
            v,
            device,
            EvaluatorConfig::default(),
            cfg.precision,
        )?),
        None => None,
    };
    let analysis = if val_loader.is_some() {
        match history.analyze(&df_metrics::AnalysisConfig::monitoring("val_loss")) {
            Ok(analysis) => Some(analysis),
            // No finite validation loss in any epoch: nothing to analyse, which the
            // history itself shows; any other failure is an error.
            Err(df_metrics::Error::MissingMetric { .. }) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let seconds = history.values(SECONDS);
    let seconds_per_epoch = if seconds.is_empty() {
        0.0
    } else {
        seconds.iter().sum::<f64>() / seconds.len() as f64
    };
    let mut skipped = train_loader.skipped();
    if let Some(v) = &val_loader {
        skipped.extend(v.skipped());
    }
    let n_skipped = skipped.len();
    if main {
        write_report(&cfg.out_dir, &history, evaluation.as_ref())?;
        let summary = df_data::SkipSummary::new(skipped);
        let path = cfg.out_dir.join("skipped.json");
        atomic_write_bytes(&path, summary.to_json()?.as_bytes())?;
    }
    Ok(ExperimentOutcome {
        history,
        evaluation,
        analysis,
        params,
        seconds_per_epoch,
        model,
        var_store,
        skipped: n_skipped,
    })
}

/// Writes the plots of a history (`history.png`, `history.svg`) and, when given, an
/// evaluation's `metrics.json`, `roc.png`, `pr.png` and `calibration.png` into `dir`.
///
/// # Errors
/// An I/O or plotting error.
pub fn write_report(dir: &Path, history: &History, evaluation: Option<&Evaluation>) -> Result<()> {
    if !history.is_empty() {
        df_metrics::plot_history(history, dir.join("history.png"))?;
        df_metrics::plot_history(history, dir.join("history.svg"))?;
    }
    if let Some(e) = evaluation {
        write_evaluation(dir, e)?;
    }
    Ok(())
}

/// Writes an evaluation's `metrics.json` and its ROC, PR and calibration plots (PNG)
/// into `dir`.
///
/// # Errors
/// An I/O or plotting error.
pub fn write_evaluation(dir: &Path, evaluation: &Evaluation) -> Result<()> {
    evaluation.report.to_json_file(dir.join("metrics.json"))?;
    if let Some(roc) = &evaluation.roc {
        df_metrics::plot_roc(&[("model", roc)], dir.join("roc.png"))?;
    }
    if let Some(pr) = &evaluation.pr {
        df_metrics::plot_pr(&[("model", pr)], dir.join("pr.png"))?;
    }
    df_metrics::plot_calibration(&evaluation.calibration, dir.join("calibration.png"))?;
    Ok(())
}

/// Refuses a callback that monitors a metric the run will not log, before any work
/// (otherwise the error would come at the end of the first epoch).
///
/// # Errors
/// [`Error::Config`] naming the callback's option and listing what the run logs.
fn check_monitors(cfg: &ExperimentConfig) -> Result<()> {
    let validates = cfg.data.val.is_some() || cfg.data.val_split.is_some();
    let mut logged = vec!["loss", "accuracy", "learning_rate"];
    if validates {
        logged.extend(["val_loss", "val_accuracy", "val_auc"]);
    }
    let c = &cfg.callbacks;
    let monitors = [
        (
            "early_stopping.monitor",
            c.early_stopping.as_ref().map(|c| &c.monitor),
        ),
        (
            "reduce_lr_on_plateau.monitor",
            c.reduce_lr_on_plateau.as_ref().map(|c| &c.monitor),
        ),
        (
            "model_checkpoint.monitor",
            c.model_checkpoint.as_ref().map(|c| &c.monitor),
        ),
    ];
    for (option, monitor) in monitors {
        if let Some(m) = monitor.filter(|m| !logged.contains(&m.as_str())) {
            return Err(config(
                option,
                format!(
                    "`{m}` is not a metric this run logs; it logs {}{}",
                    logged.join(", "),
                    if validates {
                        ""
                    } else {
                        " (the val_ metrics need validation data: --val or --val-split)"
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Every number of `cfg` that is a float in its configuration must survive the f32 its
/// tensors hold it in: finite, and not a non-zero value that rounds to zero (`--lr 1e308`
/// passed the f64 checks, wrote the run's files, then failed inside libtorch).
///
/// # Errors
/// [`Error::Config`] naming the option (its path in the configuration) and the value.
fn check_f32_range(cfg: &ExperimentConfig) -> Result<()> {
    fn walk(v: &serde_json::Value, at: &mut Vec<String>) -> Result<()> {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                let single = x as f32;
                let why = if !single.is_finite() {
                    Some("is beyond f32's range (about 3.4e38), the precision it is used in")
                } else if x != 0.0 && single == 0.0 {
                    Some("rounds to 0 in f32, the precision it is used in")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(config(at.join("."), format!("{x:e} {why}")));
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    at.push(i.to_string());
                    walk(item, at)?;
                    at.pop();
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    at.push(k.clone());
                    walk(item, at)?;
                    at.pop();
                }
            }
            _ => {}
        }
        Ok(())
    }
    let value = serde_json::to_value(cfg).map_err(json_err(&cfg.out_dir))?;
    walk(&value, &mut Vec::new())
}

/// Every check of `cfg` that needs no file: options that exclude each other, the
/// callbacks' monitors, the device, the model and its options, the input transform and
/// the memory the input batches need, before anything is allocated or written.
///
/// # Errors
/// [`Error::Config`] naming the option; the model's errors; the input's memory check.
pub(crate) fn check_options(cfg: &ExperimentConfig) -> Result<(tch::Device, Reuse)> {
    check_f32_range(cfg)?;
    if cfg.data.val.is_some() && cfg.data.val_split.is_some() {
        return Err(config("data", "give either `val` or `val_split`, not both"));
    }
    check_out_dir_outside_data(cfg)?;
    check_monitors(cfg)?;
    let device = cfg.device.device()?;
    cfg.precision.check(device)?;
    let reuse = match (cfg.resume, cfg.overwrite) {
        (true, true) => {
            return Err(config(
                "overwrite",
                "give either `resume` (continue the run) or `overwrite` (replace it), not both",
            ))
        }
        (true, false) => Reuse::Resume,
        (false, true) => Reuse::Overwrite,
        (false, false) => Reuse::Refuse,
    };
    // The input's memory, before the model or any batch is allocated.
    let spec = df_models::registry::info(&cfg.model.name)?
        .config(&cfg.model.build_options()?)?
        .input_spec();
    crate::source::check_input_memory(
        &spec,
        cfg.data
            .batch_size
            .max(cfg.data.val_batch_size.unwrap_or(0)),
    )?;
    transform_for(&spec, cfg.data.resize)
        .with_center_crop(cfg.data.center_crop)
        .validate()?;
    // The output folder, read only: a file there, or files no run recorded writing.
    if cfg.rank == 0 {
        run_dir::check(&cfg.out_dir, reuse)?;
    }
    Ok((device, reuse))
}

/// Refuses an output folder inside the training or validation data (`--data d --out
/// d/real/run`): its plots would be read as images by the next run on that data. Compares
/// canonical paths ([`df_io::is_inside`]), so `other/../d/run` or a link into `d` is
/// found too; the output folder need not exist yet.
fn check_out_dir_outside_data(cfg: &ExperimentConfig) -> Result<()> {
    let data = [
        (Some(&cfg.data.train), "the training data"),
        (cfg.data.val.as_ref(), "the validation data"),
    ];
    for (dir, what) in data {
        let Some(dir) = dir else { continue };
        if df_io::is_inside(&cfg.out_dir, dir).map_err(crate::error::io(&cfg.out_dir))? {
            return Err(config(
                "out_dir",
                format!(
                    "the output folder {} is inside {what} {}: what the run writes there \
                     (plots, checkpoints) would be read as images; choose a folder outside it",
                    cfg.out_dir.display(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Every check [`run_experiment`] makes before it writes anything (options, device, model,
/// input, the output folder), for programs that start several runs and must refuse a bad
/// one before the first trains.
///
/// # Errors
/// As [`run_experiment`]'s checks.
pub fn check_experiment(cfg: &ExperimentConfig) -> Result<()> {
    check_options(cfg).map(|_| ())
}

/// What a resumed run changes against the run stored in its folder, described for the
/// history; refuses what may not change.
///
/// # Errors
/// [`Error::Config`] (`resume`) naming the first setting that may not change (model, data,
/// validation folder or split, augmentation, crop, resize, balance, batch size, seed,
/// loss, frozen backbone), or one that may only change with
/// [`ExperimentConfig::allow_changes`] (learning rate and optimizer settings, epochs,
/// callbacks, workers); an unreadable stored `experiment.json`.
pub fn resume_changes(cfg: &ExperimentConfig) -> Result<Vec<String>> {
    let path = cfg.out_dir.join("experiment.json");
    if !path.exists() {
        return Ok(Vec::new()); // nothing to resume: a fresh start
    }
    let text = std::fs::read_to_string(&path).map_err(crate::error::io(&path))?;
    let stored: serde_json::Value = serde_json::from_str(&text).map_err(json_err(&path))?;
    changes_against(&stored, cfg, &path)
}

/// [`resume_changes`] against a stored `experiment.json` already read from `path`.
pub(crate) fn changes_against(
    stored: &serde_json::Value,
    cfg: &ExperimentConfig,
    path: &Path,
) -> Result<Vec<String>> {
    let now = serde_json::to_value(cfg).map_err(json_err(path))?;
    let at = |v: &serde_json::Value, pointer: &str| v.pointer(pointer).cloned();
    const FIXED: [(&str, &str); 13] = [
        (
            "/model",
            "the model (name, input size, top, dropout, L2, memory format, backbone weights)",
        ),
        ("/data/train", "the training data"),
        ("/data/val", "the validation folder"),
        ("/data/val_split", "the validation split"),
        ("/data/augment", "the augmentation"),
        ("/data/center_crop", "the centre crop"),
        ("/data/resize", "the resize filter"),
        ("/data/balance", "the class balance"),
        ("/data/batch_size", "the batch size"),
        ("/seed", "the seed"),
        ("/loss", "the loss"),
        ("/freeze_backbone", "freezing the backbone"),
        ("/world_size", "the number of processes"),
    ];
    for (pointer, what) in FIXED {
        let (before, after) = (at(stored, pointer), at(&now, pointer));
        if before != after {
            return Err(config(
                "resume",
                format!(
                    "{what} differs from the run in {} ({} there, {} now): a resumed run \
                     must keep it; start a new run (another folder, or --overwrite)",
                    cfg.out_dir.display(),
                    show(before.as_ref()),
                    show(after.as_ref())
                ),
            ));
        }
    }
    const CHANGEABLE: [(&str, &str); 5] = [
        ("/precision", "the precision"),
        ("/optimizer", "the optimizer settings"),
        ("/epochs", "the number of epochs"),
        ("/callbacks", "the callbacks (patience, monitor ...)"),
        ("/data/workers", "the number of workers"),
    ];
    let mut changes = Vec::new();
    for (pointer, what) in CHANGEABLE {
        let (mut before, after) = (at(stored, pointer), at(&now, pointer));
        if pointer == "/precision" && before.is_none() {
            // Runs from before the setting trained in f32.
            before = Some(serde_json::json!(Precision::F32.as_str()));
        }
        if before == after {
            continue;
        }
        let lr = |v: Option<&serde_json::Value>| v.and_then(|o| o.get("lr")).cloned();
        let change = if pointer == "/optimizer" && lr(before.as_ref()) != lr(after.as_ref()) {
            format!(
                "learning rate {} -> {} (optimizer {} -> {})",
                show(lr(before.as_ref()).as_ref()),
                show(lr(after.as_ref()).as_ref()),
                show(before.as_ref()),
                show(after.as_ref())
            )
        } else {
            format!(
                "{what} {} -> {}",
                show(before.as_ref()),
                show(after.as_ref())
            )
        };
        if !cfg.allow_changes {
            return Err(config(
                "resume",
                format!(
                    "{change} against the run in {}; to resume with it, say so \
                     (--allow-changes), or resume with the stored settings",
                    cfg.out_dir.display()
                ),
            ));
        }
        changes.push(change);
    }
    Ok(changes)
}

fn show(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => "none".into(),
        Some(v) => v.to_string(),
    }
}
