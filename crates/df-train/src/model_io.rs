//! Model files written by the trainer (best and final models): `df-models`' native
//! checkpoints, which `df_models::load_checkpoint` reopens without the
//! configuration being repeated.

use std::path::Path;

use df_models::{ImagePreparation, Model};
use tch::nn::VarStore;

use crate::error::Result;

/// Saves `model`'s variables with its name and configuration to `path`, atomically
/// (`df_models::checkpoint::save_checkpoint`).
///
/// # Errors
/// An I/O error, or a variable that is not float32.
pub fn save_model(path: &Path, model: &dyn Model, vs: &VarStore) -> Result<()> {
    save_model_with(path, model, vs, None)
}

/// [`save_model`], recording how the training images were prepared (resize filter,
/// centre crop), which `evaluate`, `predict` and [`crate::prepared_transform`] then apply.
///
/// # Errors
/// As [`save_model`].
pub fn save_model_with(
    path: &Path,
    model: &dyn Model,
    vs: &VarStore,
    preparation: Option<&ImagePreparation>,
) -> Result<()> {
    df_models::checkpoint::save_checkpoint_with(vs, model, preparation, path)?;
    Ok(())
}
