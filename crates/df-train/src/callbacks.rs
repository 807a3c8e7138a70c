//! Callbacks run by the trainer at the end of each epoch, with Keras 3 semantics:
//! [`EarlyStopping`], [`ReduceLrOnPlateau`], [`ModelCheckpoint`], and the [`Callback`]
//! trait for one's own.
//!
//! Every callback exports its state ([`Callback::state`]) so that a resumed run continues
//! with the same counters, best values and stored weights as the run that was killed.
//! The built-in ones are tested against Keras' own callbacks on scripted metric sequences
//! (`scripts/fixtures/keras_callbacks.py`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tch::{nn::VarStore, Tensor};

use crate::error::{config, Error, Result};
use crate::optim::Optimizer;

/// The values logged at the end of an epoch (`loss`, `accuracy`, `val_loss`,
/// `val_accuracy`, `val_auc`, `learning_rate` ...), by name.
pub type Logs = BTreeMap<String, f64>;

/// A copy of every variable of a model (trainable or not, as Keras' `get_weights`).
#[derive(Debug, Default)]
pub struct WeightSnapshot {
    /// Variable name → a detached copy.
    pub tensors: Vec<(String, Tensor)>,
}

impl WeightSnapshot {
    /// Copies every variable of `vs`.
    pub fn of(vs: &VarStore) -> Self {
        let mut tensors: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().copy()))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Self { tensors }
    }

    /// Copies the snapshot back into the variables of `vs`.
    ///
    /// # Errors
    /// A variable of `vs` missing from the snapshot, or a shape mismatch.
    pub fn restore(&self, vs: &VarStore) -> Result<()> {
        let mut vars = vs.variables();
        let by_name: HashMap<&str, &Tensor> =
            self.tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        tch::no_grad(|| -> Result<()> {
            for (name, var) in vars.iter_mut() {
                let src = by_name.get(name.as_str()).ok_or_else(|| {
                    config(
                        "weights",
                        format!("variable `{name}` is not in the snapshot"),
                    )
                })?;
                if src.size() != var.size() {
                    return Err(Error::Shape {
                        what: format!("stored weights of `{name}`"),
                        expected: format!("{:?}", var.size()),
                        got: src.size(),
                    });
                }
                var.copy_(&src.to_device(var.device()).to_kind(var.kind()));
            }
            Ok(())
        })
    }
}

/// What a callback can see and change during training.
pub struct CallbackContext<'a> {
    pub(crate) vs: &'a VarStore,
    pub(crate) optimizer: &'a mut Optimizer,
    pub(crate) stop: &'a mut bool,
    pub(crate) rank: usize,
    pub(crate) model: &'a dyn df_models::Model,
    pub(crate) preparation: Option<df_models::ImagePreparation>,
}

impl std::fmt::Debug for CallbackContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackContext")
            .field("learning_rate", &self.optimizer.learning_rate())
            .field("stop", &*self.stop)
            .field("rank", &self.rank)
            .finish()
    }
}

impl<'a> CallbackContext<'a> {
    /// A context over `model` (variables in `vs`) and `optimizer`, with the stop flag
    /// `stop`, as rank 0: for driving callbacks from a training loop of one's own.
    pub fn new(
        vs: &'a VarStore,
        model: &'a dyn df_models::Model,
        optimizer: &'a mut Optimizer,
        stop: &'a mut bool,
    ) -> Self {
        Self {
            vs,
            optimizer,
            stop,
            rank: 0,
            model,
            preparation: None,
        }
    }

    /// Sets this process's rank (only rank 0 writes files).
    pub fn with_rank(mut self, rank: usize) -> Self {
        self.rank = rank;
        self
    }

    /// Sets how the training images were prepared, which saved models record
    /// ([`df_models::ImagePreparation`]).
    pub fn with_preparation(mut self, preparation: Option<df_models::ImagePreparation>) -> Self {
        self.preparation = preparation;
        self
    }

    /// The optimizer's current learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.optimizer.learning_rate()
    }
    /// Sets the learning rate of the next steps.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_learning_rate(lr);
    }
    /// Asks the trainer to stop after this epoch (Keras `model.stop_training = True`).
    pub fn request_stop(&mut self) {
        *self.stop = true;
    }
    /// Whether a stop was requested.
    pub fn stop_requested(&self) -> bool {
        *self.stop
    }
    /// A copy of every model variable.
    pub fn snapshot_weights(&self) -> WeightSnapshot {
        WeightSnapshot::of(self.vs)
    }
    /// Copies `snapshot` back into the model.
    ///
    /// # Errors
    /// See [`WeightSnapshot::restore`].
    pub fn restore_weights(&mut self, snapshot: &WeightSnapshot) -> Result<()> {
        snapshot.restore(self.vs)
    }
    /// This process's rank; only rank 0 writes files.
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// Whether this process writes files (rank 0).
    pub fn is_main_process(&self) -> bool {
        self.rank == 0
    }
    /// Saves the model's weights (with its name, configuration and image preparation)
    /// to `path`, atomically; does nothing outside rank 0.
    ///
    /// # Errors
    /// An I/O or serialisation error.
    pub fn save_model(&self, path: &Path) -> Result<()> {
        if self.is_main_process() {
            crate::model_io::save_model_with(path, self.model, self.vs, self.preparation.as_ref())
        } else {
            Ok(())
        }
    }
}

/// A callback's resumable state: its values (a serialisable struct of the callback's,
/// stored as JSON in the checkpoint) and tensors.
#[derive(Debug, Default)]
pub struct CallbackState {
    /// Counters, best values, flags: a callback's state struct as JSON (see
    /// [`CallbackState::new`] and [`CallbackState::values`]).
    pub json: Value,
    /// Stored tensors (EarlyStopping's best weights).
    pub tensors: Vec<(String, Tensor)>,
}

impl CallbackState {
    /// The state of callback `name`: `values` (its own `Serialize` struct) and `tensors`.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the callback when `values` does not serialise.
    pub fn new<T: Serialize>(
        name: &str,
        values: &T,
        tensors: Vec<(String, Tensor)>,
    ) -> Result<Self> {
        let json = serde_json::to_value(values).map_err(|e| {
            config(
                "callback state",
                format!("`{name}`'s state does not serialise: {e}"),
            )
        })?;
        Ok(Self { json, tensors })
    }

    /// The values as callback `name`'s state struct.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the callback and the field when the stored values
    /// are not that struct (a checkpoint of another version or callback).
    pub fn values<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        T::deserialize(&self.json).map_err(|e| {
            config(
                "callback state",
                format!("the saved state of `{name}` does not fit it: {e}"),
            )
        })
    }
}

/// A callback configuration as JSON, for [`Callback::config_json`].
///
/// # Errors
/// [`crate::Error::Config`] naming the callback when it does not serialise.
pub fn config_to_json<T: Serialize>(name: &str, config_value: &T) -> Result<Value> {
    serde_json::to_value(config_value).map_err(|e| {
        config(
            "callback config",
            format!("`{name}`'s configuration does not serialise: {e}"),
        )
    })
}

/// A hook into the training loop (Keras `keras.callbacks.Callback`).
pub trait Callback: Send {
    /// A short name (`early_stopping` ...), used for messages and state keys.
    fn name(&self) -> String;
    /// Its configuration, recorded in the run's `config.json` ([`config_to_json`]).
    ///
    /// # Errors
    /// A configuration that does not serialise.
    fn config_json(&self) -> Result<Value> {
        Ok(Value::Null)
    }
    /// Called once before the first epoch of a fresh run, and before the state of a
    /// resumed run is loaded (so it resets, then [`Callback::load_state`] restores).
    ///
    /// # Errors
    /// Whatever the callback reports.
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
    /// Called after each epoch with its logs (`epoch` counts from 0, as in Keras).
    ///
    /// # Errors
    /// Whatever the callback reports; it ends the run.
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        ctx: &mut CallbackContext<'_>,
    ) -> Result<()>;
    /// Called once when training ends (all epochs run or a stop requested).
    ///
    /// # Errors
    /// Whatever the callback reports.
    fn on_train_end(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
    /// The state to save in a checkpoint ([`CallbackState::new`]).
    ///
    /// # Errors
    /// A state that does not serialise.
    fn state(&self) -> Result<CallbackState> {
        Ok(CallbackState::default())
    }
    /// Restores a state saved by [`Callback::state`].
    ///
    /// # Errors
    /// A malformed state.
    fn load_state(&mut self, _state: CallbackState) -> Result<()> {
        Ok(())
    }
}

/// Whether smaller or larger values of a monitored metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Inferred from the name as `df_metrics::Mode::infer` does: accuracy, AUC, AP,
    /// precision, recall and F1 are maximised, everything else (losses, EER, ECE ...)
    /// minimised.
    #[default]
    Auto,
    /// Smaller is better.
    Min,
    /// Larger is better.
    Max,
}

impl Mode {
    /// Whether smaller values are better for `monitor` under this mode.
    pub fn minimises(self, monitor: &str) -> bool {
        match self {
            Mode::Min => true,
            Mode::Max => false,
            Mode::Auto => df_metrics::Mode::infer(monitor) == df_metrics::Mode::Min,
        }
    }
}

/// Keras' `MonitorCallback` comparison: `current − min_delta` against the reference with
/// the mode's operator, `min_delta` taken with the sign that demands a real improvement.
#[derive(Debug, Clone, Copy)]
struct Monitor {
    minimise: bool,
    min_delta: f64,
}

impl Monitor {
    fn new(monitor: &str, mode: Mode, min_delta: f64) -> Self {
        let minimise = mode.minimises(monitor);
        let d = min_delta.abs();
        Self {
            minimise,
            min_delta: if minimise { -d } else { d },
        }
    }
    fn is_improvement(&self, current: f64, reference: Option<f64>) -> bool {
        match reference {
            None => true,
            Some(r) if self.minimise => current - self.min_delta < r,
            Some(r) => current - self.min_delta > r,
        }
    }
}

fn monitored(name: &str, monitor: &str, logs: &Logs) -> Result<f64> {
    logs.get(monitor)
        .copied()
        .ok_or_else(|| Error::MissingMetric {
            callback: name.to_string(),
            monitor: monitor.to_string(),
            available: logs.keys().cloned().collect(),
        })
}

fn check_monitor(option: &str, monitor: &str) -> Result<()> {
    if monitor.trim().is_empty() {
        return Err(config(option, "must name a logged metric"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------

/// Configuration of [`EarlyStopping`] (Keras `keras.callbacks.EarlyStopping`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyStoppingConfig {
    /// The logged metric to watch (`val_loss` ...).
    pub monitor: String,
    /// Whether smaller or larger is better.
    #[serde(default)]
    pub mode: Mode,
    /// The smallest change that counts as an improvement.
    #[serde(default)]
    pub min_delta: f64,
    /// Epochs without improvement before stopping.
    #[serde(default)]
    pub patience: usize,
    /// A value the metric must beat for the wait counter to reset.
    #[serde(default)]
    pub baseline: Option<f64>,
    /// At the end of training, put back the weights of the best epoch.
    #[serde(default)]
    pub restore_best_weights: bool,
    /// Epochs to ignore at the start (warm-up).
    #[serde(default)]
    pub start_from_epoch: usize,
}

impl EarlyStoppingConfig {
    /// Watches `monitor`, patience 0, as Keras' defaults.
    pub fn new(monitor: impl Into<String>) -> Self {
        Self {
            monitor: monitor.into(),
            mode: Mode::Auto,
            min_delta: 0.0,
            patience: 0,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
        }
    }
    /// Sets the mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
    /// Sets the patience.
    pub fn with_patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    /// Sets `min_delta`.
    pub fn with_min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta;
        self
    }
    /// Sets the baseline.
    pub fn with_baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self
    }
    /// Restores the best weights at the end of training.
    pub fn with_restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }
    /// Ignores the first `epochs` epochs.
    pub fn with_start_from_epoch(mut self, epochs: usize) -> Self {
        self.start_from_epoch = epochs;
        self
    }
}

/// Stops training when a monitored metric has stopped improving, with Keras 3 semantics:
/// the wait counter grows every epoch and resets on an improvement (one that also beats
/// the baseline, when set); training stops once `wait ≥ patience` after a non-improving
/// epoch (never after the first epoch). With `restore_best_weights`, the weights of the
/// best epoch are put back when training ends, whether it stopped early or not.
#[derive(Debug)]
pub struct EarlyStopping {
    config: EarlyStoppingConfig,
    monitor: Monitor,
    wait: usize,
    stopped_epoch: Option<usize>,
    best: Option<f64>,
    best_epoch: usize,
    best_weights: Option<WeightSnapshot>,
}

impl EarlyStopping {
    /// Creates the callback.
    ///
    /// # Errors
    /// An empty monitor name or a non-finite `min_delta`.
    pub fn new(config: EarlyStoppingConfig) -> Result<Self> {
        check_monitor("early_stopping.monitor", &config.monitor)?;
        if !config.min_delta.is_finite() {
            return Err(crate::error::config(
                "early_stopping.min_delta",
                "must be finite",
            ));
        }
        Ok(Self {
            monitor: Monitor::new(&config.monitor, config.mode, config.min_delta),
            config,
            wait: 0,
            stopped_epoch: None,
            best: None,
            best_epoch: 0,
            best_weights: None,
        })
    }
    /// The epoch (from 0) after which it stopped training, if it did.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }
    /// The best epoch (from 0) and value so far.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.best.map(|b| (self.best_epoch, b))
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> String {
        "early_stopping".into()
    }
    fn config_json(&self) -> Result<Value> {
        config_to_json(&self.name(), &self.config)
    }
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.wait = 0;
        self.stopped_epoch = None;
        self.best = None;
        self.best_epoch = 0;
        self.best_weights = None;
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        ctx: &mut CallbackContext<'_>,
    ) -> Result<()> {
        let current = monitored("early_stopping", &self.config.monitor, logs)?;
        if epoch < self.config.start_from_epoch {
            return Ok(());
        }
        if self.config.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(ctx.snapshot_weights());
            self.best_epoch = epoch;
        }
        self.wait += 1;
        if self.monitor.is_improvement(current, self.best) {
            self.best = Some(current);
            self.best_epoch = epoch;
            if self.config.restore_best_weights {
                self.best_weights = Some(ctx.snapshot_weights());
            }
            let beats_baseline = self
                .config
                .baseline
                .is_none_or(|b| self.monitor.is_improvement(current, Some(b)));
            if beats_baseline {
                self.wait = 0;
            }
            return Ok(());
        }
        if self.wait >= self.config.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            ctx.request_stop();
        }
        Ok(())
    }
    fn on_train_end(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if self.config.restore_best_weights {
            if let Some(w) = &self.best_weights {
                ctx.restore_weights(w)?;
            }
        }
        Ok(())
    }
    fn state(&self) -> Result<CallbackState> {
        let values = EarlyStoppingState {
            wait: self.wait,
            stopped_epoch: self.stopped_epoch,
            best: self.best,
            best_epoch: self.best_epoch,
            has_best_weights: self.best_weights.is_some(),
        };
        let tensors = self
            .best_weights
            .as_ref()
            .map(|w| {
                w.tensors
                    .iter()
                    .map(|(n, t)| (format!("best_weights/{n}"), t.shallow_clone()))
                    .collect()
            })
            .unwrap_or_default();
        CallbackState::new(&self.name(), &values, tensors)
    }
    fn load_state(&mut self, state: CallbackState) -> Result<()> {
        let values: EarlyStoppingState = state.values(&self.name())?;
        self.wait = values.wait;
        self.stopped_epoch = values.stopped_epoch;
        self.best = values.best;
        self.best_epoch = values.best_epoch;
        self.best_weights = if values.has_best_weights {
            let mut tensors: Vec<(String, Tensor)> = state
                .tensors
                .into_iter()
                .filter_map(|(n, t)| n.strip_prefix("best_weights/").map(|s| (s.to_string(), t)))
                .collect();
            tensors.sort_by(|a, b| a.0.cmp(&b.0));
            Some(WeightSnapshot { tensors })
        } else {
            None
        };
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------

/// Configuration of [`ReduceLrOnPlateau`] (Keras `keras.callbacks.ReduceLROnPlateau`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReduceLrOnPlateauConfig {
    /// The logged metric to watch.
    pub monitor: String,
    /// Whether smaller or larger is better.
    #[serde(default)]
    pub mode: Mode,
    /// The learning rate is multiplied by this (in `(0, 1)`; Keras' default 0.1).
    pub factor: f64,
    /// Epochs without improvement before a reduction (Keras' default 10).
    pub patience: usize,
    /// Epochs to wait after a reduction before counting again.
    #[serde(default)]
    pub cooldown: usize,
    /// The smallest change that counts as an improvement (Keras' default 1e-4).
    pub min_delta: f64,
    /// The learning rate never goes below this.
    #[serde(default)]
    pub min_lr: f64,
}

impl ReduceLrOnPlateauConfig {
    /// Watches `monitor` with Keras' defaults (factor 0.1, patience 10, min_delta 1e-4).
    pub fn new(monitor: impl Into<String>) -> Self {
        Self {
            monitor: monitor.into(),
            mode: Mode::Auto,
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_delta: 1e-4,
            min_lr: 0.0,
        }
    }
    /// Sets the mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
    /// Sets the factor.
    pub fn with_factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }
    /// Sets the patience.
    pub fn with_patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    /// Sets the cooldown.
    pub fn with_cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }
    /// Sets `min_delta`.
    pub fn with_min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta;
        self
    }
    /// Sets the minimum learning rate.
    pub fn with_min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }
}

/// Reduces the learning rate when a monitored metric has stopped improving, with Keras 3
/// semantics: during a cooldown the wait counter stays at zero; after `patience` epochs
/// without improvement the rate becomes `max(lr·factor, min_lr)` (when it is still above
/// `min_lr`, compared in `f32` as Keras stores it), then the cooldown starts.
#[derive(Debug)]
pub struct ReduceLrOnPlateau {
    config: ReduceLrOnPlateauConfig,
    monitor: Monitor,
    best: Option<f64>,
    wait: usize,
    cooldown_counter: usize,
}

impl ReduceLrOnPlateau {
    /// Creates the callback.
    ///
    /// # Errors
    /// An empty monitor, a factor outside `(0, 1)`, or a negative `min_lr`/`min_delta`.
    pub fn new(config: ReduceLrOnPlateauConfig) -> Result<Self> {
        check_monitor("reduce_lr_on_plateau.monitor", &config.monitor)?;
        if !(config.factor > 0.0 && config.factor < 1.0) {
            return Err(crate::error::config(
                "reduce_lr_on_plateau.factor",
                format!("must be in (0, 1), got {}", config.factor),
            ));
        }
        if !(config.min_lr.is_finite() && config.min_lr >= 0.0) {
            return Err(crate::error::config(
                "reduce_lr_on_plateau.min_lr",
                format!("must be >= 0, got {}", config.min_lr),
            ));
        }
        if !config.min_delta.is_finite() {
            return Err(crate::error::config(
                "reduce_lr_on_plateau.min_delta",
                "must be finite",
            ));
        }
        Ok(Self {
            monitor: Monitor::new(&config.monitor, config.mode, config.min_delta),
            config,
            best: None,
            wait: 0,
            cooldown_counter: 0,
        })
    }
}

impl Callback for ReduceLrOnPlateau {
    fn name(&self) -> String {
        "reduce_lr_on_plateau".into()
    }
    fn config_json(&self) -> Result<Value> {
        config_to_json(&self.name(), &self.config)
    }
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.best = None;
        self.wait = 0;
        self.cooldown_counter = 0;
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        logs: &Logs,
        ctx: &mut CallbackContext<'_>,
    ) -> Result<()> {
        let current = monitored("reduce_lr_on_plateau", &self.config.monitor, logs)?;
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.monitor.is_improvement(current, self.best) {
            self.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.config.patience {
                let old = ctx.learning_rate();
                // Keras keeps the rate in a float32 variable and compares it so.
                if (old as f32) > (self.config.min_lr as f32) {
                    let new = (old * self.config.factor).max(self.config.min_lr);
                    ctx.set_learning_rate(new);
                    self.cooldown_counter = self.config.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(())
    }
    fn state(&self) -> Result<CallbackState> {
        let values = ReduceLrOnPlateauState {
            best: self.best,
            wait: self.wait,
            cooldown_counter: self.cooldown_counter,
        };
        CallbackState::new(&self.name(), &values, Vec::new())
    }
    fn load_state(&mut self, state: CallbackState) -> Result<()> {
        let values: ReduceLrOnPlateauState = state.values(&self.name())?;
        self.best = values.best;
        self.wait = values.wait;
        self.cooldown_counter = values.cooldown_counter;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------

/// Configuration of [`ModelCheckpoint`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCheckpointConfig {
    /// Where the best model goes (a safetensors file with the model's name and config).
    pub path: PathBuf,
    /// The logged metric that decides "best".
    pub monitor: String,
    /// Whether smaller or larger is better.
    #[serde(default)]
    pub mode: Mode,
    /// A value the first saved epoch must beat (Keras `initial_value_threshold`).
    #[serde(default)]
    pub initial_value_threshold: Option<f64>,
}

impl ModelCheckpointConfig {
    /// Saves the best model by `monitor` to `path`.
    pub fn new(path: impl Into<PathBuf>, monitor: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            monitor: monitor.into(),
            mode: Mode::Auto,
            initial_value_threshold: None,
        }
    }
    /// Sets the mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
}

/// Saves the model whenever the monitored metric improves (Keras `ModelCheckpoint` with
/// `save_best_only=True`, `save_weights_only=True`), atomically. The "last" checkpoint
/// (weights, optimizer, epoch, callback states: everything a resume needs) is written by
/// the trainer itself after every epoch, once all callbacks have run; see
/// [`crate::Trainer`].
#[derive(Debug)]
pub struct ModelCheckpoint {
    config: ModelCheckpointConfig,
    monitor: Monitor,
    best: Option<f64>,
    best_epoch: Option<usize>,
}

impl ModelCheckpoint {
    /// Creates the callback.
    ///
    /// # Errors
    /// An empty monitor or path.
    pub fn new(config: ModelCheckpointConfig) -> Result<Self> {
        check_monitor("model_checkpoint.monitor", &config.monitor)?;
        if config.path.as_os_str().is_empty() {
            return Err(crate::error::config(
                "model_checkpoint.path",
                "must not be empty",
            ));
        }
        Ok(Self {
            monitor: Monitor::new(&config.monitor, config.mode, 0.0),
            best: config.initial_value_threshold,
            best_epoch: None,
            config,
        })
    }
    /// The file it writes.
    pub fn path(&self) -> &Path {
        &self.config.path
    }
    /// The epoch (from 0) of the saved model, if any.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }
}

impl Callback for ModelCheckpoint {
    fn name(&self) -> String {
        "model_checkpoint".into()
    }
    fn config_json(&self) -> Result<Value> {
        config_to_json(&self.name(), &self.config)
    }
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.best = self.config.initial_value_threshold;
        self.best_epoch = None;
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        ctx: &mut CallbackContext<'_>,
    ) -> Result<()> {
        let current = monitored("model_checkpoint", &self.config.monitor, logs)?;
        if current.is_finite() && self.monitor.is_improvement(current, self.best) {
            self.best = Some(current);
            self.best_epoch = Some(epoch);
            ctx.save_model(&self.config.path)?;
        }
        Ok(())
    }
    fn state(&self) -> Result<CallbackState> {
        let values = ModelCheckpointState {
            best: self.best,
            best_epoch: self.best_epoch,
        };
        CallbackState::new(&self.name(), &values, Vec::new())
    }
    fn load_state(&mut self, state: CallbackState) -> Result<()> {
        let values: ModelCheckpointState = state.values(&self.name())?;
        self.best = values.best;
        self.best_epoch = values.best_epoch;
        Ok(())
    }
}

/// [`EarlyStopping`]'s resumable values.
#[derive(Debug, Serialize, Deserialize)]
struct EarlyStoppingState {
    wait: usize,
    stopped_epoch: Option<usize>,
    best: Option<f64>,
    best_epoch: usize,
    has_best_weights: bool,
}

/// [`ReduceLrOnPlateau`]'s resumable values.
#[derive(Debug, Serialize, Deserialize)]
struct ReduceLrOnPlateauState {
    best: Option<f64>,
    wait: usize,
    cooldown_counter: usize,
}

/// [`ModelCheckpoint`]'s resumable values.
#[derive(Debug, Serialize, Deserialize)]
struct ModelCheckpointState {
    best: Option<f64>,
    best_epoch: Option<usize>,
}
