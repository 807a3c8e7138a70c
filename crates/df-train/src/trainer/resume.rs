//! The resumable state of a run: what `last.safetensors` holds besides the model's
//! variables (the optimizer's state, every callback's typed state, the history, the
//! epoch), and writing and reading it.

use std::collections::HashMap;
use std::path::Path;

use df_metrics::History;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tch::Tensor;

use super::Trainer;
use crate::callbacks::{CallbackState, WeightSnapshot};
use crate::error::{checkpoint, Error, Result};
use crate::run_files::{read_safetensors, write_safetensors};

/// The `format` of a training checkpoint.
pub(super) const STATE_FORMAT: &str = "deepfake.train_state.v1";

/// The training state saved with the last checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    format: String,
    model: String,
    optimizer: String,
    epochs_done: usize,
    stop_requested: bool,
    learning_rate: f64,
    seed: u64,
    history: History,
    callbacks: Vec<CallbackStateRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CallbackStateRecord {
    name: String,
    state: Value,
}

impl Trainer {
    /// Writes the resumable checkpoint: the model's variables under `model/`, the
    /// optimizer's state under `optimizer/`, the callbacks' tensors under
    /// `callback/{index}/`, and the rest as JSON in the metadata entry `train_state`.
    pub(super) fn write_checkpoint(&self, path: &Path) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("model/{n}"), t.detach()))
            .collect();
        for (n, t) in self.optimizer.state_tensors() {
            tensors.push((format!("optimizer/{n}"), t));
        }
        if let Some(scaler) = &self.scaler {
            for (n, t) in scaler.state_tensors() {
                tensors.push((format!("scaler/{n}"), t));
            }
        }
        let mut records = Vec::new();
        for (i, cb) in self.callbacks.iter().enumerate() {
            let CallbackState { json, tensors: ts } = cb.state()?;
            for (n, t) in ts {
                tensors.push((format!("callback/{i}/{n}"), t));
            }
            records.push(CallbackStateRecord {
                name: cb.name(),
                state: json,
            });
        }
        let state = TrainState {
            format: STATE_FORMAT.into(),
            model: self.model.name().to_string(),
            optimizer: self.optimizer.config().name().into(),
            epochs_done: self.epochs_done,
            stop_requested: self.stop_requested,
            learning_rate: self.optimizer.learning_rate(),
            seed: self.config.seed,
            history: self.history.clone(),
            callbacks: records,
        };
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), STATE_FORMAT.to_string());
        metadata.insert(
            "train_state".to_string(),
            serde_json::to_string(&state).map_err(|source| Error::Json {
                path: path.to_path_buf(),
                source,
            })?,
        );
        write_safetensors(path, &tensors, &metadata)
    }

    /// Restores the run from the resumable checkpoint at `path`: the variables, the
    /// optimizer's and the loss scaler's state, the learning rate (unless a resume change
    /// sets it), every callback's state, the history and the epoch.
    pub(super) fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let file = read_safetensors(path)?;
        let raw = file.metadata.get("train_state").ok_or_else(|| {
            checkpoint(path, "no `train_state` metadata: not a df-train checkpoint")
        })?;
        let state: TrainState = serde_json::from_str(raw).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        self.check_state(path, &state)?;
        let parts = StateTensors::split(path, file.tensors, self.callbacks.len())?;
        self.restore_tensors(path, &parts)?;
        let lr_changed = self
            .resume_changes
            .iter()
            .any(|c| c.contains("learning rate"));
        if !lr_changed {
            self.optimizer.set_learning_rate(state.learning_rate);
        }
        for ((cb, record), tensors) in self
            .callbacks
            .iter_mut()
            .zip(state.callbacks)
            .zip(parts.callbacks)
        {
            cb.load_state(CallbackState {
                json: record.state,
                tensors,
            })?;
        }
        self.epochs_done = state.epochs_done;
        self.stop_requested = state.stop_requested;
        self.history = state.history;
        for change in &self.resume_changes {
            self.history
                .note(format!("resumed with a change: {change}"));
        }
        self.last_checkpoint = Some(path.to_path_buf());
        Ok(())
    }

    /// Refuses a state written by another kind of run: its format, model, optimizer and
    /// callbacks (by name, in order) must be this trainer's.
    fn check_state(&self, path: &Path, state: &TrainState) -> Result<()> {
        if state.format != STATE_FORMAT {
            return Err(checkpoint(
                path,
                format!("unknown format `{}`", state.format),
            ));
        }
        if state.model != self.model.name() {
            return Err(checkpoint(
                path,
                format!(
                    "written for model `{}`, the trainer has `{}`",
                    state.model,
                    self.model.name()
                ),
            ));
        }
        if state.optimizer != self.optimizer.config().name() {
            return Err(checkpoint(
                path,
                format!(
                    "written with optimizer `{}`, the trainer uses `{}`",
                    state.optimizer,
                    self.optimizer.config().name()
                ),
            ));
        }
        if state.callbacks.len() != self.callbacks.len()
            || state
                .callbacks
                .iter()
                .zip(&self.callbacks)
                .any(|(r, cb)| r.name != cb.name())
        {
            let saved: Vec<&str> = state.callbacks.iter().map(|r| r.name.as_str()).collect();
            let now: Vec<String> = self.callbacks.iter().map(|c| c.name()).collect();
            return Err(checkpoint(
                path,
                format!("written with callbacks {saved:?}, the trainer has {now:?}"),
            ));
        }
        Ok(())
    }

    /// Loads the variables, the optimizer's state and the loss scaler's.
    fn restore_tensors(&mut self, path: &Path, parts: &StateTensors) -> Result<()> {
        WeightSnapshot {
            tensors: parts
                .model
                .iter()
                .map(|(n, t)| (n.clone(), t.shallow_clone()))
                .collect(),
        }
        .restore(&self.vs)
        .map_err(|e| checkpoint(path, e.to_string()))?;
        self.optimizer
            .load_state_tensors(&parts.optimizer)
            .map_err(|e| checkpoint(path, e.to_string()))?;
        // The loss scale goes on where it was (a run resumed in f16 from another
        // precision starts from the initial scale).
        if let Some(scaler) = &mut self.scaler {
            if !parts.scaler.is_empty() {
                scaler
                    .load_state_tensors(&parts.scaler)
                    .map_err(|e| checkpoint(path, e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// The tensors of a resumable checkpoint, by owner.
struct StateTensors {
    model: Vec<(String, Tensor)>,
    optimizer: HashMap<String, Tensor>,
    scaler: HashMap<String, Tensor>,
    callbacks: Vec<Vec<(String, Tensor)>>,
}

impl StateTensors {
    /// Sorts the file's tensors by their prefix (`model/`, `optimizer/`, `scaler/`,
    /// `callback/{index}/`); an index beyond `callbacks` is an error.
    fn split(
        path: &Path,
        tensors: HashMap<String, Tensor>,
        callbacks: usize,
    ) -> Result<StateTensors> {
        let mut parts = StateTensors {
            model: Vec::new(),
            optimizer: HashMap::new(),
            scaler: HashMap::new(),
            callbacks: (0..callbacks).map(|_| Vec::new()).collect(),
        };
        for (name, t) in tensors {
            if let Some(n) = name.strip_prefix("model/") {
                parts.model.push((n.to_string(), t));
            } else if let Some(n) = name.strip_prefix("optimizer/") {
                parts.optimizer.insert(n.to_string(), t);
            } else if let Some(n) = name.strip_prefix("scaler/") {
                parts.scaler.insert(n.to_string(), t);
            } else if let Some(rest) = name.strip_prefix("callback/") {
                let (i, n) = rest
                    .split_once('/')
                    .and_then(|(i, n)| i.parse::<usize>().ok().map(|i| (i, n)))
                    .filter(|(i, _)| *i < callbacks)
                    .ok_or_else(|| checkpoint(path, format!("unexpected tensor `{name}`")))?;
                parts.callbacks[i].push((n.to_string(), t));
            }
        }
        Ok(parts)
    }
}
