//! The training loop.

use std::path::PathBuf;

use df_metrics::History;
use df_models::Model;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tch::{nn::VarStore, Device};

use crate::callbacks::{
    Callback, CallbackContext, EarlyStopping, EarlyStoppingConfig, ModelCheckpoint,
    ModelCheckpointConfig, ReduceLrOnPlateau, ReduceLrOnPlateauConfig,
};
use crate::error::{config, io, Result};
use crate::loss::Loss;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::precision::{GradScaler, GradScalerConfig, Precision};
use crate::progress::{Progress, Verbosity};
use crate::run_files::{self, files};
use crate::source::BatchSource;

mod epoch;
mod guard;
mod resume;
mod step;
mod validate;

/// The history entry holding an epoch's wall-clock seconds (training and validation).
pub const SECONDS: &str = "seconds";

/// The model part of a [`TrainingConfig`]: its registry name and configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The model's name (`meso4` ...).
    pub name: String,
    /// Its family ([`Model::family`]; empty in records written before it was stored).
    #[serde(default)]
    pub family: String,
    /// The model's own configuration ([`Model::config_json`]).
    pub config: Value,
}

/// The callbacks of a [`TrainingConfig`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CallbacksConfig {
    /// Early stopping.
    #[serde(default)]
    pub early_stopping: Option<EarlyStoppingConfig>,
    /// Learning-rate reduction on plateau.
    #[serde(default)]
    pub reduce_lr_on_plateau: Option<ReduceLrOnPlateauConfig>,
    /// Best-model checkpoint.
    #[serde(default)]
    pub model_checkpoint: Option<ModelCheckpointConfig>,
    /// Other callbacks, by name and configuration (recorded, not rebuilt).
    #[serde(default)]
    pub custom: Vec<Value>,
}

/// Everything a run was started with, nested as burn's training configs are, and saved
/// as `config.json` next to the checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    /// The model.
    pub model: ModelRecord,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The data term of the loss.
    pub loss: Loss,
    /// Number of epochs.
    pub epochs: usize,
    /// Batch size of the training data (as the data pipeline was configured).
    pub batch_size: Option<usize>,
    /// The run's seed.
    pub seed: u64,
    /// Only the head trains.
    pub freeze_backbone: bool,
    /// The data pipeline's configuration, as given by the caller.
    #[serde(default)]
    pub data: Value,
    /// The callbacks.
    #[serde(default)]
    pub callbacks: CallbacksConfig,
    /// This process's rank (only rank 0 writes files).
    pub rank: usize,
    /// Number of processes.
    pub world_size: usize,
    /// The compute precision (autocast dtype) of the forward passes.
    #[serde(default)]
    pub precision: Precision,
    /// Dynamic loss scaling (with `f16` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_scaler: Option<GradScalerConfig>,
}

/// Builds a [`Trainer`]; see [`Trainer::builder`]. Everything has a default (Adam 1e-3,
/// binary cross-entropy, 10 epochs, the CPU, no callbacks, no files); each method sets one
/// thing, and [`TrainerBuilder::build`] checks them together.
///
/// ```no_run
/// # mod deepfake { pub use df_models as models; pub mod train { pub use df_train::*; } }
/// use deepfake::models::{self, BuildOptions, Top};
/// use deepfake::train::{
///     EarlyStoppingConfig, Mode, ModelCheckpointConfig, OptimizerConfig,
///     ReduceLrOnPlateauConfig, Trainer,
/// };
/// use tch::{nn::VarStore, Device};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = Device::cuda_if_available();
/// let vs = VarStore::new(device);
/// let options = BuildOptions::default().with_top(Top::pooled(&[], 0.2));
/// let model = models::build("efficientnet_b0", &vs.root(), &options)?;
/// let trainer = Trainer::builder(model, vs)
///     .device(device)
///     .optimizer(OptimizerConfig::adam(1e-4))
///     .epochs(30)
///     .seed(42)
///     .early_stopping(EarlyStoppingConfig::new("val_loss").with_patience(5))
///     .reduce_lr_on_plateau(ReduceLrOnPlateauConfig::new("val_loss"))
///     // The best epoch's model: only written where a ModelCheckpoint says.
///     .model_checkpoint(
///         ModelCheckpointConfig::new("runs/b0/best.safetensors", "val_auc").with_mode(Mode::Max),
///     )
///     .out_dir("runs/b0") // config.json, last.safetensors, history, model.safetensors
///     .resume(true)
///     .build()?;
/// # drop(trainer);
/// # Ok(()) }
/// ```
pub struct TrainerBuilder {
    model: Box<dyn Model>,
    vs: VarStore,
    loss: Loss,
    optimizer: OptimizerConfig,
    epochs: usize,
    batch_size: Option<usize>,
    device: Option<Device>,
    seed: u64,
    freeze_backbone: bool,
    callbacks_config: CallbacksConfig,
    custom: Vec<Box<dyn Callback>>,
    out_dir: Option<PathBuf>,
    resume: bool,
    resume_changes: Vec<String>,
    data: Value,
    verbosity: Verbosity,
    rank: usize,
    world_size: usize,
    precision: Precision,
    grad_scaler: GradScalerConfig,
    profile: bool,
    preparation: Option<df_models::ImagePreparation>,
    group: Option<df_dist::ProcessGroup>,
    nan_check_interval: Option<usize>,
    retain_freed_memory: bool,
}

impl std::fmt::Debug for TrainerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainerBuilder")
            .field("model", &self.model.name())
            .field("optimizer", &self.optimizer)
            .field("epochs", &self.epochs)
            .field("out_dir", &self.out_dir)
            .finish_non_exhaustive()
    }
}

impl TrainerBuilder {
    /// The data term of the loss (default binary cross-entropy on logits).
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }
    /// The optimizer (default Adam, lr 1e-3, ε 1e-7).
    pub fn optimizer(mut self, optimizer: OptimizerConfig) -> Self {
        self.optimizer = optimizer;
        self
    }
    /// Number of epochs (default 10).
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    /// Records the training batch size in the run's configuration (the data source
    /// makes the batches).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size);
        self
    }
    /// Moves the model to `device` (default: where its `VarStore` is; use
    /// `Device::cuda_if_available()` for the GPU when there is one).
    pub fn device(mut self, device: Device) -> Self {
        self.device = Some(device);
        self
    }
    /// The run's seed (default 0): seeds libtorch at every epoch from `(seed, epoch)`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Trains only the head's variables (transfer learning), as Keras'
    /// `backbone.trainable = False` does: the backbone runs in inference mode (its batch
    /// norms normalise with their moving statistics and never update them), without
    /// gradients; the head runs in training mode (dropout).
    pub fn freeze_backbone(mut self, freeze: bool) -> Self {
        self.freeze_backbone = freeze;
        self
    }
    /// Adds [`EarlyStopping`].
    pub fn early_stopping(mut self, config: EarlyStoppingConfig) -> Self {
        self.callbacks_config.early_stopping = Some(config);
        self
    }
    /// Adds [`ReduceLrOnPlateau`].
    pub fn reduce_lr_on_plateau(mut self, config: ReduceLrOnPlateauConfig) -> Self {
        self.callbacks_config.reduce_lr_on_plateau = Some(config);
        self
    }
    /// Adds [`ModelCheckpoint`] (best model).
    pub fn model_checkpoint(mut self, config: ModelCheckpointConfig) -> Self {
        self.callbacks_config.model_checkpoint = Some(config);
        self
    }
    /// Adds a callback of one's own (run after the built-in ones, in order).
    pub fn callback(mut self, callback: Box<dyn Callback>) -> Self {
        self.custom.push(callback);
        self
    }
    /// Where the run writes `config.json`, `last.safetensors` (resumable),
    /// `model.safetensors` (final) and `history.{json,csv}`; nothing is written without it.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }
    /// Continues the run in `out_dir` from its `last.safetensors` when there is one.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }
    /// Settings deliberately changed for a resumed run (a learning rate, a number of
    /// epochs ...), each described in words: noted in the history when the run resumes.
    /// When one of them is the learning rate (it contains `learning rate`), the configured
    /// optimizer's rate replaces the one saved with the checkpoint.
    pub fn resume_changes(mut self, changes: Vec<String>) -> Self {
        self.resume_changes = changes;
        self
    }
    /// The data pipeline's configuration, recorded in `config.json`.
    pub fn data_config(mut self, data: Value) -> Self {
        self.data = data;
        self
    }
    /// How much to print (default [`Verbosity::Auto`]).
    pub fn verbosity(mut self, verbosity: Verbosity) -> Self {
        self.verbosity = verbosity;
        self
    }
    /// The compute precision of the forward passes (default `f32`): `bf16` or `f16` run
    /// them under libtorch's autocast; `f16` also scales the loss ([`GradScaler`]).
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Log where each epoch's time went (default off): `time_data` (waiting for the
    /// batch and moving it to the device), `time_forward` (forward pass, loss and its
    /// read), `time_backward`, `time_step` (unscaling, optimizer, metrics),
    /// `time_validation`, in seconds, in the history beside `seconds`.
    pub fn profile(mut self, profile: bool) -> Self {
        self.profile = profile;
        self
    }

    /// How often the training loss is read back and checked for NaN/inf, in batches
    /// (default: every batch on the CPU, where reading a scalar is cheap; every
    /// [`CUDA_NAN_CHECK_INTERVAL`] batches on a GPU, where each read waits for the device).
    /// Between checks the loss and accuracy add up on the device. With an interval above
    /// one, the variables, the optimizer's and the loss scaler's state are copied (on the
    /// device) at every good check, and a non-finite loss found at a check restores that
    /// copy before [`crate::Error::NonFiniteLoss`] is returned: the weights are those of the last
    /// good check, as they are those before the bad batch with an interval of one. The
    /// progress bar and a distributed run's agreement move at the same rhythm.
    pub fn nan_check_interval(mut self, batches: usize) -> Self {
        self.nan_check_interval = Some(batches);
        self
    }

    /// Whether training on the CPU keeps freed memory for reuse (default `true`): at the
    /// start of [`Trainer::fit`], [`df_sys::memory::retain_freed_memory`] (glibc: no
    /// trimming, blocks up to 32 MiB from the heaps), so that the tensors each step
    /// allocates anew stop being page-faulted in, zeroed by the kernel, step after step;
    /// the free pages go back to the kernel when `fit` returns
    /// ([`df_sys::memory::release_freed_memory`]). The policy is process-wide and stays in
    /// effect; it is left alone when `GLIBC_TUNABLES` sets malloc tunables, and not applied
    /// for a GPU. `docs/runs/epoch-amd-epyc-890e996.md` ("The training epoch") has its
    /// effect on speed and resident memory.
    pub fn retain_freed_memory(mut self, retain: bool) -> Self {
        self.retain_freed_memory = retain;
        self
    }

    /// How the training images were brought to the model's input size (resize filter,
    /// centre crop): recorded in the model files the trainer writes, so that scoring
    /// applies it by default (default: not recorded).
    pub fn image_preparation(mut self, preparation: df_models::ImagePreparation) -> Self {
        self.preparation = Some(preparation);
        self
    }

    /// The loss scaling settings used with `f16` (default: PyTorch's).
    pub fn grad_scaler(mut self, config: GradScalerConfig) -> Self {
        self.grad_scaler = config;
        self
    }

    /// This process's rank and the number of processes (default 0 and 1); only rank 0
    /// writes files and shows progress. Without [`TrainerBuilder::process_group`], nothing
    /// synchronises the ranks: use that for data-parallel training.
    pub fn distributed(mut self, rank: usize, world_size: usize) -> Self {
        self.rank = rank;
        self.world_size = world_size;
        self
    }

    /// Data-parallel training in `group` (DDP's semantics, one process per rank): the
    /// variables are broadcast from rank 0 when `fit` starts (after a resume too), the
    /// gradients averaged across ranks after each backward pass ([`df_dist::ddp`]), the
    /// batch-norm statistics made rank 0's at each epoch's end, the training metrics
    /// averaged and the validation scores gathered, so that every rank logs the same
    /// values and callbacks take the same decisions; only rank 0 writes. The rank and
    /// world size are the group's. Each rank's [`BatchSource`] must yield its own part of
    /// the data, the same number of batches on every rank (`df_data::LoaderConfig::shard`
    /// for training; any split of the validation set).
    pub fn process_group(mut self, group: df_dist::ProcessGroup) -> Self {
        self.rank = group.rank();
        self.world_size = group.world_size();
        self.group = Some(group);
        self
    }

    /// Builds the trainer.
    ///
    /// # Errors
    /// An invalid optimizer or callback configuration, zero epochs, a rank outside the
    /// world, `freeze_backbone` on a model without a head, `resume` without `out_dir`.
    pub fn build(mut self) -> Result<Trainer> {
        self.check()?;
        if let Some(d) = self.device.filter(|&d| d != self.vs.device()) {
            self.vs.set_device(d);
        }
        if self.freeze_backbone {
            freeze_to_head(self.model.as_ref(), &self.vs)?;
        }
        let device = self.vs.device();
        let nan_check_interval = match self.nan_check_interval {
            Some(0) => return Err(config("nan_check_interval", "must be at least 1 batch")),
            Some(n) => n,
            None if device.is_cuda() => CUDA_NAN_CHECK_INTERVAL,
            None => 1,
        };
        let optimizer = Optimizer::for_var_store(self.optimizer, &self.vs)?;
        self.precision.check(device)?;
        let scaler = if self.precision.scales_loss() {
            Some(GradScaler::new(self.grad_scaler, device)?)
        } else {
            None
        };
        let (callbacks, callbacks_config) = built_callbacks(self.callbacks_config, self.custom)?;
        let config = TrainingConfig {
            model: ModelRecord {
                name: self.model.name().to_string(),
                family: self.model.family().to_string(),
                config: self.model.config_json()?,
            },
            optimizer: *optimizer.config(),
            loss: self.loss,
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            freeze_backbone: self.freeze_backbone,
            data: self.data,
            callbacks: callbacks_config,
            rank: self.rank,
            world_size: self.world_size,
            precision: self.precision,
            grad_scaler: scaler.as_ref().map(|s| *s.config()),
        };
        Ok(Trainer {
            model: self.model,
            vs: self.vs,
            loss: self.loss,
            optimizer,
            callbacks,
            config,
            out_dir: self.out_dir,
            resume: self.resume,
            resume_changes: self.resume_changes,
            verbosity: self.verbosity,
            history: History::new(),
            epochs_done: 0,
            stop_requested: false,
            last_checkpoint: None,
            scaler,
            profile: self.profile,
            preparation: self.preparation,
            group: self.group,
            nan_check_interval,
            retain_freed_memory: self.retain_freed_memory,
        })
    }

    /// The options that need nothing built: epochs, rank, `resume`.
    fn check(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(config("epochs", "must be > 0"));
        }
        let (rank, world_size) = (self.rank, self.world_size);
        if world_size == 0 || rank >= world_size {
            return Err(config(
                "rank",
                format!("rank {rank} is outside a world of {world_size}"),
            ));
        }
        if self.resume && self.out_dir.is_none() {
            return Err(config("resume", "needs an output directory to resume from"));
        }
        Ok(())
    }
}

/// Turns `backbone` training off: every variable outside the model's head stops
/// requiring gradients.
fn freeze_to_head(model: &dyn Model, vs: &VarStore) -> Result<()> {
    let head = model.head().ok_or_else(|| {
        config(
            "freeze_backbone",
            format!("model `{}` has no binary head to train", model.name()),
        )
    })?;
    let trainable = head.variable_names();
    for (name, t) in vs.variables() {
        if !trainable.contains(&name) && t.requires_grad() {
            let _ = t.set_requires_grad(false);
        }
    }
    Ok(())
}

/// The built-in callbacks of `callbacks_config` (best model, early stopping, learning-rate
/// schedule, in that order), then `custom` ones, recorded by name and configuration.
fn built_callbacks(
    callbacks_config: CallbacksConfig,
    custom: Vec<Box<dyn Callback>>,
) -> Result<(Vec<Box<dyn Callback>>, CallbacksConfig)> {
    let mut callbacks: Vec<Box<dyn Callback>> = Vec::new();
    if let Some(c) = &callbacks_config.model_checkpoint {
        callbacks.push(Box::new(ModelCheckpoint::new(c.clone())?));
    }
    if let Some(c) = &callbacks_config.early_stopping {
        callbacks.push(Box::new(EarlyStopping::new(c.clone())?));
    }
    if let Some(c) = &callbacks_config.reduce_lr_on_plateau {
        callbacks.push(Box::new(ReduceLrOnPlateau::new(c.clone())?));
    }
    let mut callbacks_config = callbacks_config;
    for cb in custom {
        callbacks_config
            .custom
            .push(serde_json::json!({ "name": cb.name(), "config": cb.config_json()? }));
        callbacks.push(cb);
    }
    Ok((callbacks, callbacks_config))
}

/// The default of [`TrainerBuilder::nan_check_interval`] on a GPU, in batches.
pub const CUDA_NAN_CHECK_INTERVAL: usize = 20;

/// The training loop: forward, loss + L2, backward, optimizer step; validation, callbacks,
/// checkpoints and history after every epoch. [`Trainer::fit`] changes two things that
/// belong to the whole process: it seeds libtorch's global generator at every epoch
/// (`tch::manual_seed`, see Reproducibility below), and on the CPU it sets the C
/// library's policy for freed memory ([`df_sys::memory::retain_freed_memory`]: glibc
/// keeps freed blocks for reuse; the policy lasts after `fit`, which returns the free
/// pages when it ends, [`df_sys::memory::release_freed_memory`]); turn that off with
/// [`TrainerBuilder::retain_freed_memory`]`(false)`.
///
/// The loop's parts, each in its own module: the step (forward, loss, backward, loss
/// scaler, gradient averaging), the guard (finite checks, snapshot and rollback, the
/// divergence check), the validation (through evaluation's loop, [`crate::evaluate_in`]),
/// the resumable state, and the run's files ([`crate::run_files`]).
///
/// Logged per epoch (Keras' names): `loss` and `accuracy` (means over the epoch's
/// training batches, weighted by batch size, the loss including the L2 penalty),
/// `val_loss`, `val_accuracy`, `val_auc` (when there is validation data; `val_loss`
/// includes the L2 penalty as Keras' does), and `learning_rate`.
///
/// Reproducibility: at the start of every epoch libtorch is seeded from
/// `(seed, epoch)`, so dropout masks depend only on the seed and the epoch; with a data
/// source whose order depends only on its seed and the epoch, a run resumed from its last
/// checkpoint produces the same history as an uninterrupted one (on the CPU; CUDA kernels
/// are not all deterministic).
///
/// Files (rank 0, with [`TrainerBuilder::out_dir`]), see [`files`]: `config.json` at the
/// start; after every epoch, once all callbacks have run, `last.safetensors` (weights,
/// optimizer state, learning rate, epoch, history and callback states, written
/// atomically), then `history.json` and `history.csv`; `model.safetensors` at the end.
/// The best epoch's model only with [`TrainerBuilder::model_checkpoint`].
///
/// ```
/// # mod deepfake { pub use df_models as models; pub mod train { pub use df_train::*; } }
/// use deepfake::models::{self, BuildOptions};
/// use deepfake::train::{TensorBatches, Trainer, Verbosity};
/// use tch::{nn::VarStore, Device, Kind, Tensor};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vs = VarStore::new(Device::Cpu);
/// let options = BuildOptions::default().with_input_size(32, 32);
/// let model = models::build("meso4", &vs.root(), &options)?;
/// // Preprocessed pictures [N, 3, 32, 32] and their labels (1 = fake); image folders
/// // come through `deepfake::data::Loader` instead.
/// let pictures = Tensor::rand([16, 3, 32, 32], (Kind::Float, Device::Cpu));
/// let labels = Tensor::from_slice(&[0.0f32, 1.0]).repeat([8]);
/// let train = TensorBatches::new(pictures, labels, 8)?;
/// let mut trainer = Trainer::builder(model, vs).epochs(1).verbosity(Verbosity::Quiet).build()?;
/// let history = trainer.fit(&train, None)?;
/// assert_eq!(history.len(), 1);
/// let (trained, _variables) = trainer.into_parts();
/// assert_eq!(trained.name(), "meso4");
/// # Ok(()) }
/// ```
pub struct Trainer {
    model: Box<dyn Model>,
    vs: VarStore,
    loss: Loss,
    optimizer: Optimizer,
    callbacks: Vec<Box<dyn Callback>>,
    config: TrainingConfig,
    out_dir: Option<PathBuf>,
    resume: bool,
    resume_changes: Vec<String>,
    verbosity: Verbosity,
    history: History,
    epochs_done: usize,
    stop_requested: bool,
    last_checkpoint: Option<PathBuf>,
    scaler: Option<GradScaler>,
    profile: bool,
    preparation: Option<df_models::ImagePreparation>,
    group: Option<df_dist::ProcessGroup>,
    nan_check_interval: usize,
    retain_freed_memory: bool,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.config)
            .field("epochs_done", &self.epochs_done)
            .finish_non_exhaustive()
    }
}

impl Trainer {
    /// A builder for training `model`, whose variables live in `vs`.
    pub fn builder(model: Box<dyn Model>, vs: VarStore) -> TrainerBuilder {
        TrainerBuilder {
            model,
            vs,
            loss: Loss::default(),
            optimizer: OptimizerConfig::default(),
            epochs: 10,
            batch_size: None,
            device: None,
            seed: 0,
            freeze_backbone: false,
            callbacks_config: CallbacksConfig::default(),
            custom: Vec::new(),
            out_dir: None,
            resume: false,
            resume_changes: Vec::new(),
            data: Value::Null,
            verbosity: Verbosity::Auto,
            rank: 0,
            world_size: 1,
            precision: Precision::F32,
            grad_scaler: GradScalerConfig::default(),
            profile: false,
            preparation: None,
            group: None,
            nan_check_interval: None,
            retain_freed_memory: true,
        }
    }

    /// The configuration the run records.
    pub fn config(&self) -> &TrainingConfig {
        &self.config
    }
    /// The model.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }
    /// The model's variables.
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }
    /// The optimizer.
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }
    /// The history so far.
    pub fn history(&self) -> &History {
        &self.history
    }
    /// Epochs completed (including those of a resumed run).
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }
    /// The model and its variables, to keep using after training.
    pub fn into_parts(self) -> (Box<dyn Model>, VarStore) {
        (self.model, self.vs)
    }

    fn is_main(&self) -> bool {
        self.config.rank == 0
    }

    /// The batches between two loss checks ([`TrainerBuilder::nan_check_interval`]).
    pub fn nan_check_interval(&self) -> usize {
        self.nan_check_interval
    }

    /// Calls `f` on every callback in order, each with a context over the model, its
    /// variables, the optimizer and the shared stop flag.
    fn each_callback(
        &mut self,
        stop: &mut bool,
        mut f: impl FnMut(&mut dyn Callback, &mut CallbackContext<'_>) -> Result<()>,
    ) -> Result<()> {
        let Self {
            callbacks,
            vs,
            optimizer,
            model,
            config,
            preparation,
            ..
        } = self;
        for cb in callbacks.iter_mut() {
            let mut ctx = CallbackContext {
                vs,
                optimizer,
                stop,
                rank: config.rank,
                model: model.as_ref(),
                preparation: *preparation,
            };
            f(cb.as_mut(), &mut ctx)?;
        }
        Ok(())
    }

    /// Trains on `train`, validating on `val` after every epoch, until the configured
    /// number of epochs or a callback's stop. Resumes first when asked to and a last
    /// checkpoint exists.
    ///
    /// # Errors
    /// [`crate::Error::NonFiniteLoss`] when the loss becomes NaN/inf (the weights are those
    /// before the bad batch, the checkpoint on disk the last good one); data errors;
    /// [`crate::Error::MissingMetric`] when a callback monitors a metric that is not logged
    /// (`val_*` without validation data); I/O errors; a checkpoint that does not fit.
    pub fn fit(
        &mut self,
        train: &dyn BatchSource,
        val: Option<&dyn BatchSource>,
    ) -> Result<&History> {
        self.fit_with_extra(train, val, &[])
    }

    /// [`Trainer::fit`], scoring each of `extra` after every epoch as well: `(name,
    /// source)` logs `val_<name>_loss`, `val_<name>_accuracy` and `val_<name>_auc` (the
    /// held-out pseudo-fakes of a run validated on another folder, `val_sbi_auc`).
    /// Callbacks may monitor them.
    ///
    /// # Errors
    /// As [`Trainer::fit`].
    pub fn fit_with_extra(
        &mut self,
        train: &dyn BatchSource,
        val: Option<&dyn BatchSource>,
        extra: &[(&str, &dyn BatchSource)],
    ) -> Result<&History> {
        if train.num_batches() == 0 {
            return Err(config("training data", "has no batch"));
        }
        // Keras order: reset every callback, then (resume) restore their saved state.
        let mut stop = false;
        self.each_callback(&mut stop, |cb, ctx| cb.on_train_begin(ctx))?;
        let resume_from = match (&self.out_dir, self.resume) {
            (Some(dir), true) => Some(dir.join(files::LAST)).filter(|p| p.exists()),
            _ => None,
        };
        if let Some(path) = resume_from {
            self.load_checkpoint(&path)?;
        } else if let (true, Some(dir)) = (self.is_main(), &self.out_dir) {
            // The run's folder, created here (df-io's writer creates no folder).
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            run_files::write_training_config(dir, &self.config)?;
        }
        // Data-parallel: every rank starts from rank 0's variables (fresh or resumed), and
        // the gradients of what is trainable now are averaged after each backward pass.
        let averager = match &self.group {
            Some(group) => {
                df_dist::ddp::broadcast_variables(
                    group,
                    &self.vs,
                    df_dist::ddp::Variables::All,
                    0,
                )?;
                Some(df_dist::ddp::GradientAverager::new(
                    &self.vs,
                    df_dist::ddp::DEFAULT_BUCKET_BYTES,
                )?)
            }
            None => None,
        };
        let progress = Progress::new(self.verbosity, self.is_main());
        let device = self.vs.device();
        let retained = self.retain_freed_memory
            && device == Device::Cpu
            && df_sys::memory::retain_freed_memory() == df_sys::memory::Retain::Applied;
        let result = self.fit_epochs(train, val, extra, averager.as_ref(), &progress);
        if retained {
            df_sys::memory::release_freed_memory();
        }
        result
    }
}
