//! The configuration of a [`super::run_experiment`] run: the model, the data, the device
//! and everything else it is started with (saved as `experiment.json`), and what it
//! returns.

use std::path::PathBuf;

use df_data::{Augment, Balance, ResizeFilter};
use df_layers::util::ParamCount;
use df_metrics::{Evaluation, History, HistoryAnalysis};
use df_models::{BuildOptions, Model, Top};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Device;

use crate::error::{config, Result};
use crate::loss::Loss;
use crate::optim::OptimizerConfig;
use crate::precision::Precision;
use crate::progress::Verbosity;
use crate::trainer::CallbacksConfig;

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
    /// [`crate::Error::Config`] (`device`) when CUDA device `n` is not there, saying how many
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
    /// Audit the data for shortcuts before training ([`df_data::audit`]): the findings
    /// are printed as `note:` lines and recorded in `experiment.json` (default true).
    #[serde(default = "yes")]
    pub audit: bool,
    /// Pseudo-fakes made from the real training images each epoch (`--pseudo-fakes sbi`:
    /// self-blended images, [`df_data::sbi`]); the training folder may then hold real
    /// images only. With `val_split`, the held-out real images and their pseudo-fakes
    /// (drawn once) are the validation set; with `val` too, `val` is the validation set
    /// and the held-out part is scored each epoch as `val_sbi_loss`, `val_sbi_accuracy`
    /// and `val_sbi_auc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_fakes: Option<df_data::PseudoFakes>,
    /// With `pseudo_fakes`: another run's landmark cache (`landmarks.json`, on the same
    /// training folder) to start from, so that its faces are not found again; read only
    /// (this run keeps its own). Not a setting of what is learnt: it may change on resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks_from: Option<PathBuf>,
}

fn yes() -> bool {
    true
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
            audit: true,
            pseudo_fakes: None,
            landmarks_from: None,
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
    /// [`crate::run_experiment`] does with the run's seed: the same seed gives the same initial
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

/// What [`crate::run_experiment`] returns.
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
    /// The data audit of the training and validation sets (rank 0, with
    /// [`DataConfig::audit`]); also in `experiment.json`.
    pub audit: Option<df_data::AuditReport>,
}
