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
use crate::checkpoint::{read_safetensors, write_safetensors};
use crate::error::{checkpoint, Error, Result};

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

    pub(super) fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let file = read_safetensors(path)?;
        let raw = file.metadata.get("train_state").ok_or_else(|| {
            checkpoint(path, "no `train_state` metadata: not a df-train checkpoint")
        })?;
        let state: TrainState = serde_json::from_str(raw).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
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
        let mut model_tensors = Vec::new();
        let mut optim_tensors = HashMap::new();
        let mut scaler_tensors = HashMap::new();
        let mut callback_tensors: Vec<Vec<(String, Tensor)>> =
            (0..self.callbacks.len()).map(|_| Vec::new()).collect();
        for (name, t) in file.tensors {
            if let Some(n) = name.strip_prefix("model/") {
                model_tensors.push((n.to_string(), t));
            } else if let Some(n) = name.strip_prefix("optimizer/") {
                optim_tensors.insert(n.to_string(), t);
            } else if let Some(n) = name.strip_prefix("scaler/") {
                scaler_tensors.insert(n.to_string(), t);
            } else if let Some(rest) = name.strip_prefix("callback/") {
                let (i, n) = rest
                    .split_once('/')
                    .and_then(|(i, n)| i.parse::<usize>().ok().map(|i| (i, n)))
                    .filter(|(i, _)| *i < callback_tensors.len())
                    .ok_or_else(|| checkpoint(path, format!("unexpected tensor `{name}`")))?;
                callback_tensors[i].push((n.to_string(), t));
            }
        }
        WeightSnapshot {
            tensors: model_tensors,
        }
        .restore(&self.vs)
        .map_err(|e| checkpoint(path, e.to_string()))?;
        self.optimizer
            .load_state_tensors(&optim_tensors)
            .map_err(|e| checkpoint(path, e.to_string()))?;
        // The loss scale goes on where it was (a run resumed in f16 from another
        // precision starts from the initial scale).
        if let Some(scaler) = &mut self.scaler {
            if !scaler_tensors.is_empty() {
                scaler
                    .load_state_tensors(&scaler_tensors)
                    .map_err(|e| checkpoint(path, e.to_string()))?;
            }
        }
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
            .zip(callback_tensors)
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
}
