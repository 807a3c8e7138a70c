//! The training loop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use df_metrics::{BinaryEvaluator, EpochRecord, EvaluatorConfig, History, Metric};
use df_models::Model;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::callbacks::{
    Callback, CallbackContext, EarlyStopping, EarlyStoppingConfig, Logs, ModelCheckpoint,
    ModelCheckpointConfig, ReduceLROnPlateau, ReduceLrOnPlateauConfig,
};
use crate::checkpoint::atomic_write_bytes;
use crate::error::{config, io, torch, Error, Result};
use crate::logits::{correct_count, detector_logits_in, to_vec_f32, Pass};
use crate::loss::Loss;
use crate::model_io::save_model_with;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::precision::{GradScaler, GradScalerConfig, Precision};
use crate::progress::{Progress, Verbosity};
use crate::source::{epoch_seed, BatchSource};

mod resume;

/// The file names a run writes in its output directory.
pub mod files {
    /// The resumable checkpoint of the last completed epoch.
    pub const LAST: &str = "last.safetensors";
    /// The best model ([`crate::ModelCheckpoint`]'s default path).
    pub const BEST: &str = "best.safetensors";
    /// The model at the end of training (after EarlyStopping restored the best weights).
    pub const FINAL: &str = "model.safetensors";
    /// The [`crate::TrainingConfig`] the run was started with.
    pub const CONFIG: &str = "config.json";
    /// The per-epoch history as JSON.
    pub const HISTORY_JSON: &str = "history.json";
    /// The per-epoch history as CSV.
    pub const HISTORY_CSV: &str = "history.csv";
}

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

/// Builds a [`Trainer`]; see [`Trainer::builder`].
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
    /// Adds [`ReduceLROnPlateau`].
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
    /// copy before [`Error::NonFiniteLoss`] is returned: the weights are those of the last
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
    pub fn build(self) -> Result<Trainer> {
        let TrainerBuilder {
            model,
            mut vs,
            loss,
            optimizer,
            epochs,
            batch_size,
            device,
            seed,
            freeze_backbone,
            callbacks_config,
            custom,
            out_dir,
            resume,
            resume_changes,
            data,
            verbosity,
            rank,
            world_size,
            precision,
            grad_scaler,
            profile,
            preparation,
            group,
            nan_check_interval,
            retain_freed_memory,
        } = self;
        if epochs == 0 {
            return Err(config("epochs", "must be > 0"));
        }
        if world_size == 0 || rank >= world_size {
            return Err(config(
                "rank",
                format!("rank {rank} is outside a world of {world_size}"),
            ));
        }
        if resume && out_dir.is_none() {
            return Err(config("resume", "needs an output directory to resume from"));
        }
        if let Some(d) = device {
            if d != vs.device() {
                vs.set_device(d);
            }
        }
        if freeze_backbone {
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
        }
        let nan_check_interval = match nan_check_interval {
            Some(0) => return Err(config("nan_check_interval", "must be at least 1 batch")),
            Some(n) => n,
            None if vs.device().is_cuda() => CUDA_NAN_CHECK_INTERVAL,
            None => 1,
        };
        let optimizer = Optimizer::for_var_store(optimizer, &vs)?;
        precision.check(vs.device())?;
        let scaler = if precision.scales_loss() {
            Some(GradScaler::new(grad_scaler, vs.device())?)
        } else {
            None
        };
        let mut callbacks: Vec<Box<dyn Callback>> = Vec::new();
        if let Some(c) = &callbacks_config.model_checkpoint {
            callbacks.push(Box::new(ModelCheckpoint::new(c.clone())?));
        }
        if let Some(c) = &callbacks_config.early_stopping {
            callbacks.push(Box::new(EarlyStopping::new(c.clone())?));
        }
        if let Some(c) = &callbacks_config.reduce_lr_on_plateau {
            callbacks.push(Box::new(ReduceLROnPlateau::new(c.clone())?));
        }
        let mut callbacks_config = callbacks_config;
        for cb in custom {
            callbacks_config
                .custom
                .push(serde_json::json!({ "name": cb.name(), "config": cb.config_json()? }));
            callbacks.push(cb);
        }
        let config = TrainingConfig {
            model: ModelRecord {
                name: model.name().to_string(),
                family: model.family().to_string(),
                config: model.config_json()?,
            },
            optimizer: *optimizer.config(),
            loss,
            epochs,
            batch_size,
            seed,
            freeze_backbone,
            data,
            callbacks: callbacks_config,
            rank,
            world_size,
            precision,
            grad_scaler: scaler.as_ref().map(|s| *s.config()),
        };
        Ok(Trainer {
            model,
            vs,
            loss,
            optimizer,
            callbacks,
            config,
            out_dir,
            resume,
            resume_changes,
            verbosity,
            history: History::new(),
            epochs_done: 0,
            stop_requested: false,
            last_checkpoint: None,
            scaler,
            profile,
            preparation,
            group,
            nan_check_interval,
            retain_freed_memory,
        })
    }
}

/// The default of [`TrainerBuilder::nan_check_interval`] on a GPU, in batches.
pub const CUDA_NAN_CHECK_INTERVAL: usize = 20;

/// The training loss and correct predictions of the batches since the last check, summed
/// on the device (one read per check).
#[derive(Default)]
struct Pending {
    loss_sum: Option<Tensor>,
    correct: Option<Tensor>,
    n: i64,
    batches: usize,
}

impl Pending {
    fn add(&mut self, loss: &Tensor, logits: &Tensor, ys: &Tensor) {
        let n = ys.size().first().copied().unwrap_or(0);
        let loss = loss.detach().to_kind(Kind::Double) * n as f64;
        let hits = logits
            .gt(0.0)
            .eq_tensor(&ys.gt(0.5))
            .sum(Kind::Int64)
            .to_kind(Kind::Double);
        self.loss_sum = Some(match self.loss_sum.take() {
            Some(sum) => sum + loss,
            None => loss,
        });
        self.correct = Some(match self.correct.take() {
            Some(sum) => sum + hits,
            None => hits,
        });
        self.n += n;
        self.batches += 1;
    }

    /// (loss sum, correct, images, batches) since the last take, read in one transfer.
    fn take(&mut self) -> Result<(f64, i64, i64, usize)> {
        let (n, batches) = (self.n, self.batches);
        let sums = match (self.loss_sum.take(), self.correct.take()) {
            (Some(l), Some(c)) => Tensor::stack(&[l, c], 0),
            _ => return Ok((0.0, 0, 0, 0)),
        };
        let v = Vec::<f64>::try_from(&sums.to_device(Device::Cpu))
            .map_err(torch("reading the loss"))?;
        *self = Pending::default();
        Ok((v[0], v[1].round() as i64, n, batches))
    }
}

/// Copies of the variables, the optimizer's and the loss scaler's state, kept on their
/// device, to roll back to.
struct Snapshot {
    variables: Vec<(Tensor, Tensor)>,
    optimizer: HashMap<String, Tensor>,
    scaler: HashMap<String, Tensor>,
}

/// The training loop: forward, loss + L2, backward, optimizer step; validation, callbacks,
/// checkpoints and history after every epoch.
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

/// The parts of a training epoch that [`TrainerBuilder::profile`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Data,
    Forward,
    Backward,
    Step,
    Validation,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::Data,
        Phase::Forward,
        Phase::Backward,
        Phase::Step,
        Phase::Validation,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Data => "data",
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::Step => "step",
            Phase::Validation => "validation",
        }
    }
}

/// Wall time per [`Phase`]: each lap charges the time since the previous one.
struct PhaseClock {
    mark: Instant,
    totals: [f64; 5],
}

impl PhaseClock {
    fn new() -> Self {
        Self {
            mark: Instant::now(),
            totals: [0.0; 5],
        }
    }

    fn lap(&mut self, phase: Phase) {
        let now = Instant::now();
        self.totals[phase as usize] += (now - self.mark).as_secs_f64();
        self.mark = now;
    }

    fn totals(&self) -> impl Iterator<Item = (Phase, f64)> + '_ {
        Phase::ALL.into_iter().zip(self.totals)
    }
}

#[derive(Default)]
struct Mean {
    loss_sum: f64,
    correct: i64,
    n: i64,
}

impl Mean {
    /// The sums over every rank of `group`.
    fn across(&self, group: &df_dist::ProcessGroup) -> Result<Mean> {
        let mut t = Tensor::from_slice(&[self.loss_sum, self.correct as f64, self.n as f64])
            .to_device(group.device());
        group.all_reduce(&mut t, df_dist::Reduce::Sum)?;
        let v = Vec::<f64>::try_from(&t.to_device(Device::Cpu))
            .map_err(torch("reading the ranks' metrics"))?;
        Ok(Mean {
            loss_sum: v[0],
            correct: v[1].round() as i64,
            n: v[2].round() as i64,
        })
    }

    fn add(&mut self, loss: f64, n: i64, correct: i64) {
        self.loss_sum += loss * n as f64;
        self.correct += correct;
        self.n += n;
    }
    fn loss(&self) -> f64 {
        self.loss_sum / self.n.max(1) as f64
    }
    fn accuracy(&self) -> f64 {
        self.correct as f64 / self.n.max(1) as f64
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

    fn snapshot(&self) -> Snapshot {
        let variables = tch::no_grad(|| {
            self.vs
                .variables()
                .into_values()
                .map(|t| {
                    let copy = t.detach().copy();
                    (t, copy)
                })
                .collect()
        });
        Snapshot {
            variables,
            optimizer: self.optimizer.state_tensors().into_iter().collect(),
            scaler: self
                .scaler
                .as_ref()
                .map(|s| s.state_tensors().into_iter().collect())
                .unwrap_or_default(),
        }
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            for (var, saved) in &snapshot.variables {
                var.shallow_clone()
                    .f_copy_(saved)
                    .map_err(torch("restoring the last good variables"))?;
            }
            Ok(())
        })?;
        self.optimizer.load_state_tensors(&snapshot.optimizer)?;
        if let Some(scaler) = &mut self.scaler {
            scaler.load_state_tensors(&snapshot.scaler)?;
        }
        Ok(())
    }

    /// Reads the pending sums; on a non-finite loss (on any rank) restores `snapshot` and
    /// fails, else adds them to `mean`, moves the progress bar and takes a new snapshot.
    #[allow(clippy::too_many_arguments)]
    fn check_pending(
        &mut self,
        pending: &mut Pending,
        snapshot: &mut Option<Snapshot>,
        mean: &mut Mean,
        progress: &Progress,
        epoch: usize,
        batch: usize,
    ) -> Result<()> {
        let (loss_sum, correct, n, batches) = pending.take()?;
        if batches == 0 {
            return Ok(());
        }
        let finite = match &self.group {
            Some(group) => group.all_agree(loss_sum.is_finite())?,
            None => loss_sum.is_finite(),
        };
        if !finite {
            if let Some(good) = snapshot.as_ref() {
                self.restore(good)?;
            }
            progress.finish();
            return Err(Error::NonFiniteLoss {
                epoch: epoch + 1,
                batch,
                value: loss_sum / n.max(1) as f64,
                last_checkpoint: self.last_checkpoint.clone(),
            });
        }
        mean.loss_sum += loss_sum;
        mean.correct += correct;
        mean.n += n;
        progress.batches(batches, mean.loss(), mean.accuracy());
        *snapshot = Some(self.snapshot());
        Ok(())
    }

    fn out_path(&self, name: &str) -> Option<PathBuf> {
        self.out_dir.as_ref().map(|d| d.join(name))
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

    /// Logits of "fake" `[N]` for preprocessed inputs `[N, 3, H, W]`.
    fn logits(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let pass = match (train, self.config.freeze_backbone) {
            (false, _) => Pass::Eval,
            (true, false) => Pass::Train,
            (true, true) => Pass::TrainHead,
        };
        detector_logits_in(self.model.as_ref(), xs, pass, self.config.precision)
    }

    /// Trains on `train`, validating on `val` after every epoch, until the configured
    /// number of epochs or a callback's stop. Resumes first when asked to and a last
    /// checkpoint exists.
    ///
    /// # Errors
    /// [`Error::NonFiniteLoss`] when the loss becomes NaN/inf (the weights are those
    /// before the bad batch, the checkpoint on disk the last good one); data errors;
    /// [`Error::MissingMetric`] when a callback monitors a metric that is not logged
    /// (`val_*` without validation data); I/O errors; a checkpoint that does not fit.
    pub fn fit(
        &mut self,
        train: &dyn BatchSource,
        val: Option<&dyn BatchSource>,
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
        } else if self.is_main() {
            self.write_config()?;
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
        let result = self.fit_epochs(train, val, averager.as_ref(), &progress);
        if retained {
            df_sys::memory::release_freed_memory();
        }
        result
    }

    /// The epochs of [`Trainer::fit`], once resumed and set up.
    fn fit_epochs(
        &mut self,
        train: &dyn BatchSource,
        val: Option<&dyn BatchSource>,
        averager: Option<&df_dist::ddp::GradientAverager>,
        progress: &Progress,
    ) -> Result<&History> {
        let epochs = self.config.epochs;
        let device = self.vs.device();
        while self.epochs_done < epochs && !self.stop_requested {
            let epoch = self.epochs_done;
            let t0 = Instant::now();
            // Dropout's stream: the run's seed and the epoch, and the rank, so that the
            // ranks of a distributed run draw their own masks (rank 0: as one process).
            let stream = (epoch_seed(self.config.seed, epoch) >> 1)
                .wrapping_add((self.config.rank as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            tch::manual_seed((stream & (i64::MAX as u64)) as i64);
            progress.start_epoch(epoch, epochs, train.num_batches());
            let mut mean = Mean::default();
            let mut clock = PhaseClock::new();
            let interval = self.nan_check_interval;
            let mut pending = Pending::default();
            let mut snapshot = (interval > 1).then(|| self.snapshot());
            let mut batches_seen = 0;
            for (b, batch) in train.epoch_batches(epoch)?.enumerate() {
                batches_seen = b + 1;
                let batch = batch?;
                let xs = batch.inputs.to_device(device).to_kind(Kind::Float);
                let ys = batch.labels.to_device(device).to_kind(Kind::Float);
                clock.lap(Phase::Data);
                let logits = self.logits(&xs, true)?;
                let weights = batch.weights.as_ref().map(|w| w.to_device(device));
                let total = self.loss.compute_weighted(&logits, &ys, weights.as_ref())
                    + self.model.l2_penalty().to_device(device);
                // Every batch (interval 1): read and check the loss before the step. Else
                // it adds up on the device, checked every `interval` batches below.
                let value = if interval == 1 {
                    let value = f64::try_from(&total).map_err(torch("reading the loss"))?;
                    // Every rank takes the decision together (one stopping alone would
                    // leave the others waiting in the next collective).
                    let finite = match &self.group {
                        Some(group) => group.all_agree(value.is_finite())?,
                        None => value.is_finite(),
                    };
                    if !finite {
                        progress.finish();
                        return Err(Error::NonFiniteLoss {
                            epoch: epoch + 1,
                            batch: b + 1,
                            value,
                            last_checkpoint: self.last_checkpoint.clone(),
                        });
                    }
                    Some(value)
                } else {
                    pending.add(&total, &logits, &ys);
                    None
                };
                clock.lap(Phase::Forward);
                self.optimizer.zero_grad();
                match &mut self.scaler {
                    None => {
                        total.backward();
                        if let (Some(group), Some(averager)) = (&self.group, &averager) {
                            averager.average(group)?;
                        }
                        clock.lap(Phase::Backward);
                        self.optimizer.step()?;
                    }
                    Some(scaler) => {
                        // torch.amp.GradScaler: backward on the scaled loss, unscale,
                        // step only when every gradient is finite, then update the scale.
                        // (Averaged scaled gradients: every rank finds the same infs.)
                        scaler.scale_loss(&total).backward();
                        if let (Some(group), Some(averager)) = (&self.group, &averager) {
                            averager.average(group)?;
                        }
                        clock.lap(Phase::Backward);
                        let found_inf = scaler.unscale(&self.optimizer.parameters())?;
                        if !found_inf {
                            self.optimizer.step()?;
                        }
                        scaler.update(found_inf);
                    }
                }
                match value {
                    Some(value) => {
                        let correct = correct_count(&logits, &ys)?;
                        mean.add(value, ys.size()[0], correct);
                        progress.batch(mean.loss(), mean.accuracy());
                    }
                    None if pending.batches == interval => self.check_pending(
                        &mut pending,
                        &mut snapshot,
                        &mut mean,
                        progress,
                        epoch,
                        b + 1,
                    )?,
                    None => {}
                }
                clock.lap(Phase::Step);
            }
            self.check_pending(
                &mut pending,
                &mut snapshot,
                &mut mean,
                progress,
                epoch,
                batches_seen,
            )?;
            drop(snapshot);
            if let Some(group) = &self.group {
                // The epoch's metrics over every rank's batches; batch-norm statistics
                // (and any other buffer) made rank 0's, so the ranks stay identical.
                mean = mean.across(group)?;
                df_dist::ddp::broadcast_variables(
                    group,
                    &self.vs,
                    df_dist::ddp::Variables::Buffers,
                    0,
                )?;
            }
            let mut logs = Logs::new();
            logs.insert("loss".into(), mean.loss());
            logs.insert("accuracy".into(), mean.accuracy());
            if let Some(val) = val {
                let v = self.validate(val)?;
                logs.insert("val_loss".into(), v.loss);
                logs.insert("val_accuracy".into(), v.accuracy);
                if let Some(auc) = v.auc {
                    logs.insert("val_auc".into(), auc);
                }
                clock.lap(Phase::Validation);
            }
            if self.profile {
                for (phase, seconds) in clock.totals() {
                    logs.insert(format!("time_{}", phase.name()), seconds);
                }
            }
            logs.insert("learning_rate".into(), self.optimizer.learning_rate());
            if let Some(scaler) = &self.scaler {
                logs.insert("loss_scale".into(), scaler.scale()?);
            }
            let mut stop = false;
            self.each_callback(&mut stop, |cb, ctx| cb.on_epoch_end(epoch, &logs, ctx))?;
            if let Some(reason) = self.divergence(&logs)? {
                progress.finish();
                return Err(Error::Diverged {
                    epoch: epoch + 1,
                    reason,
                    last_checkpoint: self.last_checkpoint.clone(),
                });
            }
            let seconds = t0.elapsed().as_secs_f64();
            progress.end_epoch(epoch, epochs, &logs, seconds);
            let mut record = EpochRecord::new(epoch + 1);
            record.metrics = logs;
            record.insert(SECONDS, seconds);
            self.history.push(record)?;
            self.epochs_done = epoch + 1;
            self.stop_requested = stop;
            if self.is_main() {
                if let Some(path) = self.out_path(files::LAST) {
                    self.write_checkpoint(&path)?;
                    self.last_checkpoint = Some(path);
                }
                self.write_history()?;
            }
        }
        progress.finish();
        let mut stop = self.stop_requested;
        self.each_callback(&mut stop, |cb, ctx| cb.on_train_end(ctx))?;
        if self.is_main() {
            if let Some(path) = self.out_path(files::FINAL) {
                save_model_with(
                    &path,
                    self.model.as_ref(),
                    &self.vs,
                    self.preparation.as_ref(),
                )?;
            }
        }
        Ok(&self.history)
    }

    /// Why the epoch that produced `logs` diverged, if it did: a validation loss or a
    /// variable (weights, batch-norm statistics) that is NaN or infinite. The training
    /// loss is checked at every step already.
    fn divergence(&self, logs: &Logs) -> Result<Option<String>> {
        if let Some(v) = logs.get("val_loss").filter(|v| !v.is_finite()) {
            return Ok(Some(format!("the validation loss is {v}")));
        }
        let mut bad = Vec::new();
        for (name, t) in self.vs.variables() {
            let finite = tch::no_grad(|| t.isfinite().all());
            if !bool::try_from(&finite).map_err(torch("checking the variables"))? {
                bad.push(name);
            }
        }
        if bad.is_empty() {
            return Ok(None);
        }
        bad.sort();
        let shown: Vec<&str> = bad.iter().take(5).map(String::as_str).collect();
        Ok(Some(format!(
            "{} variable(s) hold NaN or infinite values ({}{})",
            bad.len(),
            shown.join(", "),
            if bad.len() > shown.len() { ", ..." } else { "" }
        )))
    }

    /// Loss (with the L2 penalty), accuracy and AUC of the model on `source`, in eval
    /// mode.
    fn validate(&self, source: &dyn BatchSource) -> Result<Validation> {
        let device = self.vs.device();
        let mut mean = Mean::default();
        let mut evaluator = BinaryEvaluator::new(EvaluatorConfig::default())?;
        let (mut all_probs, mut all_labels) = (Vec::new(), Vec::new());
        tch::no_grad(|| -> Result<()> {
            for batch in source.epoch_batches(0)? {
                let batch = batch?;
                let xs = batch.inputs.to_device(device).to_kind(Kind::Float);
                let ys = batch.labels.to_device(device).to_kind(Kind::Float);
                let logits = self.logits(&xs, false)?;
                let loss = self.loss.compute(&logits, &ys);
                let value = f64::try_from(&loss).map_err(torch("reading the validation loss"))?;
                mean.add(value, ys.size()[0], correct_count(&logits, &ys)?);
                all_probs.extend(to_vec_f32(&logits.sigmoid())?);
                all_labels.extend(to_vec_f32(&ys)?);
            }
            Ok(())
        })?;
        if let Some(group) = &self.group {
            // Every rank's share of the validation set: one set of metrics, the same on
            // every rank (early stopping and the learning-rate schedule agree).
            mean = mean.across(group)?;
            let gather = |v: &[f32]| -> Result<Vec<f32>> {
                let all =
                    group.all_gather_uneven(&Tensor::from_slice(v).to_device(group.device()))?;
                Vec::<f32>::try_from(&all.to_device(Device::Cpu))
                    .map_err(torch("reading the gathered scores"))
            };
            all_probs = gather(&all_probs)?;
            all_labels = gather(&all_labels)?;
        }
        if !all_probs.is_empty() && all_probs.iter().all(|p| p.is_finite()) {
            evaluator.update(&all_probs, &all_labels)?;
        }
        let l2 =
            f64::try_from(&self.model.l2_penalty()).map_err(torch("reading the L2 penalty"))?;
        // Non-finite scores were left out of the evaluator (the loss already says NaN);
        // the AUC is reported only when every sample was scored. `auc` is `None` when
        // the validation set holds one class.
        let auc = if mean.n > 0 && evaluator.count() == mean.n as u64 {
            evaluator.compute()?.auc
        } else {
            None
        };
        Ok(Validation {
            loss: mean.loss() + l2,
            accuracy: mean.accuracy(),
            auc,
        })
    }

    fn write_config(&self) -> Result<()> {
        if let Some(path) = self.out_path(files::CONFIG) {
            let mut text =
                serde_json::to_string_pretty(&self.config).map_err(|source| Error::Json {
                    path: path.clone(),
                    source,
                })?;
            text.push('\n');
            atomic_write_bytes(&path, text.as_bytes())?;
        }
        Ok(())
    }

    fn write_history(&self) -> Result<()> {
        if let Some(path) = self.out_path(files::HISTORY_JSON) {
            self.history.to_json_file(&path)?;
        }
        if let Some(path) = self.out_path(files::HISTORY_CSV) {
            self.history.to_csv_file(&path)?;
        }
        Ok(())
    }
}

struct Validation {
    loss: f64,
    accuracy: f64,
    auc: Option<f64>,
}

/// Reads the [`TrainingConfig`] of a run directory.
///
/// # Errors
/// An I/O or JSON error naming the file.
pub fn read_training_config(dir: &Path) -> Result<TrainingConfig> {
    let path = dir.join(files::CONFIG);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    serde_json::from_str(&text).map_err(|source| Error::Json { path, source })
}
