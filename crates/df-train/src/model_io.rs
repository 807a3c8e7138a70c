//! Model files written by the trainer (best and final models): `df-models`' native
//! checkpoints, which `df_models::load_checkpoint` reopens without the
//! configuration being repeated.

use std::path::Path;

use df_models::Model;
use tch::nn::VarStore;

use crate::error::Result;

/// Saves `model`'s variables with its name and configuration to `path`, atomically
/// (`df_models::checkpoint::save_checkpoint`).
///
/// # Errors
/// An I/O error, or a variable that is not float32.
pub fn save_model(path: &Path, model: &dyn Model, vs: &VarStore) -> Result<()> {
    df_models::checkpoint::save_checkpoint(vs, model, path)?;
    Ok(())
}
