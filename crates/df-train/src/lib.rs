//! # df-train
//!
//! Where models, data and metrics meet: the training loop ([`Trainer`]), optimizers whose
//! state can be saved ([`Optimizer`]: Adam, AdamW, SGD with momentum), the losses
//! ([`Loss`]), Keras-style callbacks ([`EarlyStopping`], [`ReduceLrOnPlateau`],
//! [`ModelCheckpoint`]), resumable checkpoints, per-epoch history files, a progress bar,
//! and evaluation into `df-metrics`' report ([`evaluate()`]).
//!
//! A run with an output directory writes `config.json` (the nested [`TrainingConfig`]),
//! then after every epoch `last.safetensors` (everything a resume needs, written
//! atomically), `history.json` and `history.csv`; the final model goes to
//! `model.safetensors`. The best model is written only where a [`ModelCheckpoint`] says
//! ([`TrainerBuilder::model_checkpoint`]; [`run_experiment`] puts it in the run's
//! `best.safetensors`). A killed run started again with
//! [`TrainerBuilder::resume`] continues from its last completed epoch and ends with the
//! same history as an uninterrupted run (on the CPU).
//!
//! [`run_experiment`] does a whole run from image folders (model from the registry,
//! loaders with the model's input transform, training, evaluation, plots); the
//! `train`, `compare` and `demo` examples are thin command lines over it.
//!
//! ```
//! # mod deepfake { pub use df_models as models; pub mod train { pub use df_train::*; } }
//! use deepfake::models::BuildOptions;
//! use deepfake::train::{EarlyStoppingConfig, OptimizerConfig, TensorBatches, Trainer, Verbosity};
//! use tch::{nn::VarStore, Device, Kind, Tensor};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let vs = VarStore::new(Device::Cpu);
//! let options = BuildOptions::default().with_input_size(64, 64);
//! let model = deepfake::models::build("meso4", &vs.root(), &options)?;
//! // Preprocessed images [N, 3, 64, 64] and labels (1 = fake).
//! let x = Tensor::rand([24, 3, 64, 64], (Kind::Float, Device::Cpu));
//! let y = Tensor::from_slice(&[0.0f32, 1.0]).repeat([12]);
//! let train = TensorBatches::new(x.shallow_clone(), y.shallow_clone(), 8)?.shuffled(7);
//! let val = TensorBatches::new(x, y, 8)?;
//! let tmp = tempfile::tempdir().expect("a private temporary folder");
//! let dir = tmp.path().join("run");
//! let mut trainer = Trainer::builder(model, vs)
//!     .optimizer(OptimizerConfig::adam(1e-3))
//!     .epochs(2)
//!     .seed(7)
//!     .early_stopping(EarlyStoppingConfig::new("val_loss").with_patience(3))
//!     .out_dir(&dir)
//!     .resume(true)
//!     .verbosity(Verbosity::Quiet)
//!     .build()?;
//! let history = trainer.fit(&train, Some(&val))?;
//! assert_eq!(history.len(), 2);
//! assert!(dir.join("last.safetensors").exists());
//! # Ok(()) }
//! ```

mod callbacks;
pub mod comparison;
pub mod data_record;
mod error;
mod evaluate;
mod experiment;
mod logits;
mod loss;
mod model_io;
mod optim;
mod precision;
mod progress;
pub mod pseudo;
pub mod run_dir;
pub mod run_files;
mod source;
mod study;
mod trainer;

pub use callbacks::{
    config_to_json, Callback, CallbackContext, CallbackState, EarlyStopping, EarlyStoppingConfig,
    Logs, Mode, ModelCheckpoint, ModelCheckpointConfig, ReduceLrOnPlateau, ReduceLrOnPlateauConfig,
    WeightSnapshot,
};
/// Writes a value as pretty JSON, atomically: df-io's [`df_io::write_json`].
pub use df_io::write_json;
pub use df_metrics::{EpochRecord, History};
/// The C library allocator's policy for freed memory ([`df_sys::memory`]): what
/// [`Trainer::fit`] applies on the CPU, for a program that scores on the CPU to apply too
/// (`retain_freed_memory` at its start; the `evaluate` and `predict` examples do).
pub use df_sys::memory as allocator;
pub use error::{Error, Result};
pub use evaluate::{evaluate, evaluate_in, evaluate_report, predict, predict_in, Predictions};
pub use experiment::{
    check_experiment, resume_changes, run_experiment, DataConfig, DeviceChoice, ExperimentConfig,
    ExperimentOutcome, ModelChoice,
};
pub use logits::{detector_logits, detector_logits_in, Pass};
pub use loss::Loss;
pub use model_io::{save_model, save_model_with};
pub use optim::{AdamConfig, EpsilonMode, Optimizer, OptimizerConfig, SgdConfig};
pub use precision::{
    bf16_hardware, GradScaler, GradScalerConfig, Precision, PrecisionChoice, BF16_HARDWARE_VAR,
};
pub use progress::Verbosity;
pub use run_files::{
    files, read_training_config, write_evaluation, write_report, write_text, SafetensorsFile,
};
pub use source::{
    check_input_memory, epoch_seed, face_crops_of, permutation, preparation_of, prepared_transform,
    resize_filter, resize_method, transform_for, Batch, BatchSource, TensorBatches, FACE_MANIFEST,
};
pub use study::{
    StudyRecipe, EARLY_STOP_PATIENCE, REDUCE_LR_FACTOR, REDUCE_LR_PATIENCE, STUDY_MODELS,
};
pub use trainer::{
    CallbacksConfig, ModelRecord, Trainer, TrainerBuilder, TrainingConfig, CUDA_NAN_CHECK_INTERVAL,
    SECONDS,
};

/// The entry point of the fuzz target `run_config` (`fuzz/`), shared with the test that
/// replays its corpus on stable, so both exercise the same code.
#[doc(hidden)]
pub mod fuzz {
    use std::path::Path;

    use crate::{DataConfig, ExperimentConfig, ModelChoice};

    /// Reads `data` as JSON the way the run configuration files are read back: as a
    /// stored `experiment.json` that a resumed run is compared with, as an
    /// `ExperimentConfig` checked before a run starts, and as a checkpoint's model
    /// configuration for every family (its input and feature shapes). Every error is
    /// acceptable, a panic is not.
    pub fn run_config(data: &[u8]) {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
            return;
        };
        let mut cfg = ExperimentConfig::new(
            ModelChoice::new("meso4"),
            DataConfig::new("train", 8),
            2,
            "run",
        );
        cfg.resume = true;
        cfg.allow_changes = data.len().is_multiple_of(2);
        let _ = crate::experiment::changes_against(&value, &cfg, Path::new("experiment.json"));
        if let Ok(parsed) = serde_json::from_value::<ExperimentConfig>(value.clone()) {
            let _ = crate::experiment::check_options(&parsed);
        }
        for family in df_models::registry::family_names() {
            if let Ok(c) = df_models::registry::config_from_json(family, "fuzz", &value) {
                let _ = c.input_spec();
                let _ = c.feature_shape();
            }
        }
    }
}
