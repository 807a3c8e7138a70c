//! Model files written by the trainer (best and final models).
//!
//! Local stand-in until `df-models` offers its checkpoint writer: the model's variables
//! by name, with its registry name and configuration in the safetensors metadata
//! (`model`, `config`).

use std::collections::HashMap;
use std::path::Path;

use df_models::Model;
use tch::nn::VarStore;

use crate::checkpoint::write_safetensors;
use crate::error::{Error, Result};

/// Saves `model`'s variables with its name and configuration to `path`, atomically.
///
/// # Errors
/// An I/O or serialisation error naming the file.
pub fn save_model(path: &Path, model: &dyn Model, vs: &VarStore) -> Result<()> {
    let mut tensors: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut metadata = HashMap::new();
    metadata.insert("model".to_string(), model.name().to_string());
    metadata.insert(
        "config".to_string(),
        serde_json::to_string(&model.config_json()).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?,
    );
    write_safetensors(path, &tensors, &metadata)
}
