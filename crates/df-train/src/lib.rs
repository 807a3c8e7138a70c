//! # df-train
//!
//! Where models, data and metrics meet: the training loop ([`Trainer`]), optimizers whose
//! state can be saved ([`Optimizer`]: Adam, AdamW, SGD with momentum), the losses
//! ([`Loss`]), Keras-style callbacks ([`EarlyStopping`], [`ReduceLROnPlateau`],
//! [`ModelCheckpoint`]), resumable checkpoints, per-epoch history files, a progress bar,
//! and evaluation into `df-metrics`' report ([`evaluate()`]).
//!
//! A run with an output directory writes `config.json` (the nested [`TrainingConfig`]),
//! then after every epoch `last.safetensors` (everything a resume needs, written
//! atomically), `history.json` and `history.csv`; the best model and the final one go to
//! `best.safetensors` and `model.safetensors`. A killed run started again with
//! [`TrainerBuilder::resume`] continues from its last completed epoch and ends with the
//! same history as an uninterrupted run (on the CPU).
//!
//! ```no_run
//! use df_train::{EarlyStoppingConfig, OptimizerConfig, TensorBatches, Trainer};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (model, vs): (Box<dyn df_models::Model>, tch::nn::VarStore) = unimplemented!();
//! # let (x, y, vx, vy): (tch::Tensor, tch::Tensor, tch::Tensor, tch::Tensor) = unimplemented!();
//! let train = TensorBatches::new(x, y, 32)?.shuffled(7);
//! let val = TensorBatches::new(vx, vy, 64)?;
//! let mut trainer = Trainer::builder(model, vs)
//!     .optimizer(OptimizerConfig::adam(1e-3))
//!     .epochs(20)
//!     .seed(7)
//!     .early_stopping(EarlyStoppingConfig::new("val_loss").with_patience(3))
//!     .out_dir("runs/example")
//!     .resume(true)
//!     .build()?;
//! let history = trainer.fit(&train, Some(&val))?;
//! println!("{} epochs", history.epochs.len());
//! # Ok(()) }
//! ```

mod callbacks;
pub mod checkpoint;
mod error;
mod evaluate;
mod experiment;
mod loss;
mod model_io;
mod optim;
mod progress;
mod source;
mod trainer;

pub use callbacks::{
    Callback, CallbackContext, CallbackState, EarlyStopping, EarlyStoppingConfig, Logs, Mode,
    ModelCheckpoint, ModelCheckpointConfig, ReduceLROnPlateau, ReduceLrOnPlateauConfig,
    WeightSnapshot,
};
pub use df_metrics::{EpochRecord, History};
pub use error::{Error, Result};
pub use evaluate::{evaluate, evaluate_report, predict, Predictions};
pub use experiment::{
    run_experiment, write_evaluation, write_json, write_report, DataConfig, DeviceChoice,
    ExperimentConfig, ExperimentOutcome, ModelChoice,
};
pub use loss::Loss;
pub use model_io::save_model;
pub use optim::{AdamConfig, EpsilonMode, Optimizer, OptimizerConfig, SgdConfig};
pub use progress::Verbosity;
pub use source::{epoch_seed, permutation, transform_for, Batch, BatchSource, TensorBatches};
pub use trainer::{
    files, read_training_config, CallbacksConfig, ModelRecord, Trainer, TrainerBuilder,
    TrainingConfig, SECONDS,
};
