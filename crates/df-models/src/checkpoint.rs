//! Native checkpoints: a model's variables in one safetensors file, with what is needed to
//! rebuild the model in its metadata, so that [`crate::load_checkpoint`] reopens it
//! without the configuration being repeated. This module is the format (write, read the
//! metadata, load into built variables); [`crate::load`] opens checkpoints.
//!
//! # Format
//!
//! A [safetensors](https://github.com/huggingface/safetensors) file whose tensors are the
//! variables of the model's `VarStore`, by their variable names (`block1a_dwconv.weight`,
//! `dense_2.bias`, `stem_bn.running_var` ...), `F32`, in libtorch layout. Its string
//! metadata:
//!
//! | key | value |
//! | --- | --- |
//! | `format` | `deepfake-checkpoint` |
//! | `format_version` | [`CHECKPOINT_FORMAT_VERSION`] |
//! | `model` | the model's name (`efficientnet_b7`) |
//! | `family` | the family that rebuilds it ([`Model::family`]; from version 2) |
//! | `config` | the family's configuration, JSON ([`Model::config_json`]) |
//! | `polarity` | what the final logit scores: always `fake` when written here (imports convert) |
//! | `input_spec` | the model's [`crate::InputSpec`], JSON (informative) |
//! | `preparation` | the [`ImagePreparation`] it was trained with, JSON (from version 3; optional) |
//!
//! Writes go through df-io's one writer ([`df_io::safetensors::write`]): the file is
//! written under a temporary name in the same directory, synced, then renamed over the
//! destination, so a reader (or a crash) never sees half a checkpoint; the directory must
//! exist. Tensors become bytes through [`tensor_to_bytes`], the workspace's one
//! conversion (df-train's run files use it too). In a multi-process job, only rank 0 should call [`save_checkpoint`].

use std::collections::HashMap;
use std::path::Path;

use df_io::{Dtype, TensorBytes};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result, WeightMismatchReport};
use crate::keras::flip_final_logit;
use crate::spec::{ImagePreparation, Model, Polarity};

/// Version of the checkpoint layout written by [`save_checkpoint`]. Every version is read:
///
/// - 1: `model`, `config`, `polarity`, `input_spec`;
/// - 2: adds `family`, so that models of any registered family reopen;
/// - 3: adds `preparation` (optional), how images were brought to the input size in
///   training ([`ImagePreparation`]).
pub const CHECKPOINT_FORMAT_VERSION: u32 = 3;

/// The value of the `format` metadata key.
pub const CHECKPOINT_FORMAT: &str = "deepfake-checkpoint";

/// What a checkpoint says about its model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointMeta {
    /// The model's name.
    pub model: String,
    /// The family that rebuilds it; `None` in format-1 files, whose models are the
    /// catalogue's.
    pub family: Option<String>,
    /// The model's configuration ([`Model::config_json`]).
    pub config: serde_json::Value,
    /// What the stored final logit scores.
    pub polarity: Polarity,
    /// [`CHECKPOINT_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// How images were brought to the input size in training; `None` when the file does
    /// not say (written before version 3, or without it).
    pub preparation: Option<ImagePreparation>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The safetensors type of a libtorch kind, `None` for a kind safetensors cannot store
/// (complex, quantised ...).
fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Bool => Dtype::BOOL,
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Int16 => Dtype::I16,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Half => Dtype::F16,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        _ => return None,
    })
}

/// The libtorch kind of a safetensors type, `None` for one libtorch lacks.
fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::BOOL => Kind::Bool,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::I16 => Kind::Int16,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F16 => Kind::Half,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        _ => return None,
    })
}

/// The workspace's one tensor-to-bytes conversion: tensor `name` (copied to the CPU,
/// contiguous) as df-io's [`TensorBytes`], for [`df_io::safetensors`]' writer; every kind
/// safetensors stores keeps its type. `path` is the file it is for (named in errors).
///
/// # Errors
/// [`Error::Checkpoint`] for a kind safetensors cannot store; a libtorch copy error.
pub fn tensor_to_bytes(path: &Path, name: &str, t: &Tensor) -> Result<TensorBytes> {
    // safetensors stores little-endian values; libtorch's bytes are the machine's.
    #[cfg(target_endian = "big")]
    compile_error!(
        "checkpoints are written as the machine's bytes, and safetensors is little-endian"
    );
    let cpu = t.detach().to_device(Device::Cpu).contiguous();
    let dtype = dtype_of(cpu.kind()).ok_or_else(|| {
        invalid(
            path,
            format!(
                "`{name}` has kind {:?}, which safetensors cannot store",
                cpu.kind()
            ),
        )
    })?;
    let numel = cpu.numel();
    let mut data = vec![0u8; numel * cpu.kind().elt_size_in_bytes()];
    cpu.f_copy_data_u8(&mut data, numel)?;
    Ok(TensorBytes {
        dtype,
        shape: cpu.size().iter().map(|&d| d as usize).collect(),
        data,
    })
}

/// The inverse of [`tensor_to_bytes`]: tensor `name` of a safetensors file at `path`, on
/// the CPU, in its own type.
///
/// # Errors
/// [`Error::Checkpoint`] for a type libtorch lacks; a libtorch error for bytes that do
/// not fill the shape.
pub fn tensor_from_bytes(path: &Path, name: &str, t: &TensorBytes) -> Result<Tensor> {
    let kind = kind_of(t.dtype)
        .ok_or_else(|| invalid(path, format!("`{name}` has dtype {:?}", t.dtype)))?;
    let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
    Ok(Tensor::f_from_data_size(&t.data, &shape, kind)?)
}

/// Writes every variable of `vs` and `model`'s name and configuration to `path`
/// atomically (temporary file in the same directory, synced, renamed), recording no
/// [`ImagePreparation`] (see [`save_checkpoint_with`]).
///
/// # Errors
/// [`Error::Io`] when the directory is not writable; [`Error::Checkpoint`] for a variable
/// that is not float32.
pub fn save_checkpoint(vs: &VarStore, model: &dyn Model, path: impl AsRef<Path>) -> Result<()> {
    save_checkpoint_with(vs, model, None, path)
}

/// [`save_checkpoint`], recording how the model's images were prepared in training, which
/// the scoring programs then apply by default.
///
/// # Errors
/// As [`save_checkpoint`]; [`Error::Checkpoint`] for an invalid `preparation`.
pub fn save_checkpoint_with(
    vs: &VarStore,
    model: &dyn Model,
    preparation: Option<&ImagePreparation>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let preparation =
        match preparation {
            Some(p) => {
                p.check().map_err(|e| invalid(path, e))?;
                Some(serde_json::to_string(p).map_err(|e| {
                    invalid(path, format!("the preparation does not serialise: {e}"))
                })?)
            }
            None => None,
        };
    let mut tensors = Vec::new();
    for (name, t) in vs.variables() {
        if t.kind() != Kind::Float {
            return Err(invalid(
                path,
                format!(
                    "variable `{name}` is {:?}; checkpoints store float32",
                    t.kind()
                ),
            ));
        }
        let bytes = tensor_to_bytes(path, &name, &t)?;
        tensors.push((name, bytes));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let input_spec = serde_json::to_string(&model.input_spec()).map_err(|e| {
        invalid(
            path,
            format!("the model's input spec does not serialise: {e}"),
        )
    })?;
    let metadata: HashMap<String, String> = [
        ("format", CHECKPOINT_FORMAT.to_string()),
        ("format_version", CHECKPOINT_FORMAT_VERSION.to_string()),
        ("model", model.name().to_string()),
        ("family", model.family().to_string()),
        ("config", model.config_json()?.to_string()),
        ("polarity", polarity_text(Polarity::Fake).to_string()),
        ("input_spec", input_spec),
    ]
    .into_iter()
    .chain(preparation.map(|p| ("preparation", p)))
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(df_io::safetensors::write(path, &tensors, &metadata)?)
}

fn polarity_text(p: Polarity) -> &'static str {
    match p {
        Polarity::Fake => "fake",
        Polarity::Real => "real",
    }
}

/// The bytes of the checkpoint at `path`, a regular file: a FIFO or a link to `/dev/zero`
/// is refused unread ([`df_io::read_regular`]).
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    df_io::read_regular(path).map_err(io_error(path))
}

fn meta_from_bytes(path: &Path, bytes: &[u8]) -> Result<CheckpointMeta> {
    let meta = df_io::safetensors::parse_metadata(path, bytes)?;
    if meta.is_empty() {
        return Err(invalid(path, "no metadata (not written by this crate)"));
    }
    if meta.contains_key("train_state") {
        return Err(invalid(
            path,
            "this is a run's resumable training state (its `last.safetensors`), not a model: \
             use the run's `model.safetensors` (the end of training) or `best.safetensors` \
             (the best epoch), or continue the run with `train --resume`",
        ));
    }
    let get = |key: &str| {
        meta.get(key)
            .ok_or_else(|| invalid(path, format!("metadata key `{key}` is missing")))
    };
    if get("format")? != CHECKPOINT_FORMAT {
        return Err(invalid(
            path,
            format!("metadata `format` is not `{CHECKPOINT_FORMAT}`"),
        ));
    }
    let format_version: u32 = get("format_version")?
        .parse()
        .map_err(|_| invalid(path, "metadata `format_version` is not a number"))?;
    if format_version > CHECKPOINT_FORMAT_VERSION {
        return Err(invalid(
            path,
            format!(
                "format version {format_version} is newer than this reader's \
                 {CHECKPOINT_FORMAT_VERSION}"
            ),
        ));
    }
    let config = serde_json::from_str(get("config")?)
        .map_err(|e| invalid(path, format!("metadata `config` is not JSON: {e}")))?;
    let polarity = match get("polarity")?.as_str() {
        "fake" => Polarity::Fake,
        "real" => Polarity::Real,
        other => {
            return Err(invalid(
                path,
                format!("metadata `polarity` is `{other}`, not `fake` or `real`"),
            ))
        }
    };
    let family = match format_version {
        1 => None,
        _ => Some(get("family")?.clone()),
    };
    let preparation = match meta.get("preparation") {
        None => None,
        Some(text) => {
            let p: ImagePreparation = serde_json::from_str(text)
                .map_err(|e| invalid(path, format!("metadata `preparation` is not valid: {e}")))?;
            p.check()
                .map_err(|e| invalid(path, format!("metadata `preparation`: {e}")))?;
            Some(p)
        }
    };
    Ok(CheckpointMeta {
        model: get("model")?.clone(),
        family,
        config,
        polarity,
        format_version,
        preparation,
    })
}

/// Reads a checkpoint's metadata (without its tensors' values).
///
/// # Errors
/// [`Error::Io`]; [`Error::Checkpoint`] for a file that is not a checkpoint of this crate.
pub fn read_checkpoint_meta(path: impl AsRef<Path>) -> Result<CheckpointMeta> {
    let path = path.as_ref();
    meta_from_bytes(path, &read_bytes(path)?)
}

/// Loads a checkpoint's tensors into the variables of `vs`, which must hold exactly the
/// same names and shapes (the model built from the checkpoint's configuration); converts
/// a `real` polarity to `fake` with `model`'s head.
///
/// # Errors
/// [`Error::Io`]; [`Error::Checkpoint`] for a malformed file; [`Error::WeightMismatch`]
/// listing missing, unexpected and mis-shaped tensors (nothing is loaded then).
pub fn load_checkpoint_into(
    vs: &VarStore,
    model: &dyn Model,
    path: impl AsRef<Path>,
) -> Result<CheckpointMeta> {
    let path = path.as_ref();
    let bytes = read_bytes(path)?;
    let meta = meta_from_bytes(path, &bytes)?;
    let file = df_io::safetensors::parse(path, &bytes)?;
    let vars = vs.variables();
    let mut missing = Vec::new();
    let mut unexpected = Vec::new();
    let mut mis_shaped = Vec::new();
    let mut copies = Vec::new();
    let mut in_file = std::collections::HashSet::new();
    for (name, view) in file.tensors {
        in_file.insert(name.clone());
        let Some(dest) = vars.get(&name) else {
            unexpected.push(format!("`{name}` {:?}", view.shape));
            continue;
        };
        let shape: Vec<i64> = view.shape.iter().map(|&d| d as i64).collect();
        if shape != dest.size() {
            mis_shaped.push(format!("`{name}`: model {:?}, file {shape:?}", dest.size()));
            continue;
        }
        if view.dtype != Dtype::F32 {
            return Err(invalid(
                path,
                format!("tensor `{name}` is {:?}, expected F32", view.dtype),
            ));
        }
        let values = tensor_from_bytes(path, &name, &view)?;
        copies.push((name, values));
    }
    for (name, t) in &vars {
        if !in_file.contains(name) {
            missing.push(format!("`{name}` {:?}", t.size()));
        }
    }
    if !(missing.is_empty() && unexpected.is_empty() && mis_shaped.is_empty()) {
        missing.sort();
        unexpected.sort();
        mis_shaped.sort();
        return Err(Error::WeightMismatch(Box::new(WeightMismatchReport {
            source_file: path.to_path_buf(),
            model: model.name().to_string(),
            missing,
            unexpected,
            mis_shaped,
            notes: vec![format!(
                "the checkpoint was written for model `{}`",
                meta.model
            )],
        })));
    }
    tch::no_grad(|| -> Result<()> {
        for (name, values) in &copies {
            let dest = &vars[name];
            dest.shallow_clone()
                .f_copy_(&values.to_device(dest.device()))?;
        }
        Ok(())
    })?;
    if meta.polarity == Polarity::Real {
        flip_final_logit(model)?;
    }
    Ok(meta)
}
