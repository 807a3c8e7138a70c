//! Loading models from weight files: native checkpoints ([`open_checkpoint`],
//! [`load_checkpoint`]), Keras HDF5 files ([`load_keras`], reading the top from the file
//! with [`infer_top`]), and either by extension ([`load_weights`]).

use std::path::Path;

use df_layers::{Activation, DenseLayerConfig, HeadInput};
use tch::nn::VarStore;
use tch::Device;

use crate::checkpoint::{load_checkpoint_into, read_checkpoint_meta, CheckpointMeta};
use crate::error::{Error, Result};

use crate::keras::{
    import_keras_weights, KerasImport, KerasImportOptions, KerasLayerKind, KerasWeights,
};
use crate::registry::{self, build, info, BuildOptions, ModelInfo};
use crate::spec::{InputSpec, Model, Polarity, Top};

/// A model built and loaded from a weight file, with its variables.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model's variables (to train further or save).
    pub var_store: VarStore,
    /// The model.
    pub model: Box<dyn Model>,
    /// For a Keras import: what was imported.
    pub keras: Option<KerasImport>,
    /// For a native checkpoint: its metadata, with the [`crate::ImagePreparation`] it
    /// records, if any.
    pub checkpoint: Option<CheckpointMeta>,
}

impl LoadedModel {
    /// How images were brought to the input size in training, when the file records it
    /// (native checkpoints from format 3; Keras files never do).
    pub fn preparation(&self) -> Option<crate::ImagePreparation> {
        self.checkpoint.as_ref().and_then(|m| m.preparation)
    }

    /// The input the loaded weights expect: the model's [`InputSpec`], with the
    /// preprocessing of a Keras file's `Normalization` layer when it has one (see
    /// [`crate::keras::KerasNormalization::preprocessing`]).
    pub fn input_spec(&self) -> InputSpec {
        let mut spec = self.model.input_spec();
        if let Some(p) = self
            .keras
            .as_ref()
            .and_then(|k| k.normalization.as_ref())
            .and_then(|n| n.preprocessing())
        {
            spec.preprocessing = p;
        }
        spec
    }
}

/// Options of [`load_keras`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KerasLoadOptions {
    /// Import options (polarity).
    pub import: KerasImportOptions,
    /// The top; `None` to infer it from the file (see [`infer_top`]).
    pub top: Option<Top>,
    /// Input size; `None` for the model's default, or the size a Flatten head's weights
    /// imply.
    pub input_size: Option<[i64; 2]>,
}

impl KerasLoadOptions {
    /// Sets the polarity of the file's output.
    pub fn with_polarity(mut self, polarity: Polarity) -> Self {
        self.import.polarity = polarity;
        self
    }
}

/// The top a Keras file's dense layers describe, with the input size it implies.
///
/// - no `Dense` layer: a backbone (feature map out);
/// - last `Dense` with one unit: a binary head. A `Dense(16) → Dense(1)` pair on a MesoNet
///   model is the authors' head ([`Top::mesonet`]); three layers are the study's head
///   ([`Top::study`], dropout 0.5); otherwise ReLU hidden layers. Hidden activations cannot
///   be read from weights: they are assumed to be the study's (ReLU) and the authors'
///   (LeakyReLU 0.1) — pass [`KerasLoadOptions::top`] for another head. Dropout and L2
///   do not change predictions.
/// - otherwise Keras' ImageNet classifier with that many classes.
///
/// The first dense layer's input rows tell flatten from global average pooling: `C`
/// rows (the backbone's channels) is pooling, `C·H·W` a Flatten of an `H×W` map; when that
/// map is not the default input's, the input size is searched (multiples of 32 first) for
/// one that gives it.
///
/// # Errors
/// [`Error::UnknownModel`]; [`Error::KerasTop`] when the dense layers fit no input size of
/// the model.
pub fn infer_top(
    name: &str,
    weights: &KerasWeights,
    input_size: Option<[i64; 2]>,
) -> Result<(Top, [i64; 2])> {
    let info = info(name)?;
    let size = input_size.unwrap_or(info.input_size);
    let dense: Vec<(&str, i64, i64)> = weights
        .layers_of(KerasLayerKind::Dense)
        .filter_map(|l| {
            let k = l.tensor(crate::layout::KerasRole::Kernel)?;
            Some((l.name.as_str(), k.shape[0], k.shape[1]))
        })
        .collect();
    let Some(&(_, rows, _)) = dense.first() else {
        return Ok((
            Top::Backbone {
                pooling: HeadInput::Flatten,
            },
            size,
        ));
    };
    let &(_, _, last_units) = dense.last().unwrap_or(&dense[0]);
    let options = |s: [i64; 2]| BuildOptions {
        input_size: Some(s),
        ..BuildOptions::default()
    };
    let [c, h, w] = info.feature_shape(&options(size))?;
    let (input, size) = if rows == c && c * h * w != c {
        (HeadInput::GlobalAvgPool, size)
    } else if rows == c * h * w {
        (HeadInput::Flatten, size)
    } else if input_size.is_none() {
        match find_flatten_size(info, rows)? {
            Some(s) => (HeadInput::Flatten, s),
            None => {
                return Err(no_fit(weights, name, rows, [c, h, w], size));
            }
        }
    } else {
        return Err(no_fit(weights, name, rows, [c, h, w], size));
    };
    if last_units != 1 {
        return Ok((
            Top::ImageNet {
                classes: last_units,
            },
            size,
        ));
    }
    let units: Vec<i64> = dense.iter().map(|&(_, _, u)| u).collect();
    let family_top = info.config(&options(size))?.keras_binary_top(&units, input);
    let top = match (family_top, units.as_slice(), input) {
        (Some(top), _, _) => top,
        (None, [u0, u1, 1], HeadInput::Flatten) => Top::study([*u0, *u1], 0.5, 0.0),
        _ => {
            let n = units.len();
            let layers = units
                .iter()
                .enumerate()
                .map(|(i, &u)| {
                    let name = df_layers::keras_auto_name("dense", i);
                    let act = if i + 1 == n {
                        Activation::Linear
                    } else {
                        Activation::Relu
                    };
                    DenseLayerConfig::new(name, u, act)
                })
                .collect();
            Top::Binary { input, layers }
        }
    };
    Ok((top, size))
}

fn no_fit(
    weights: &KerasWeights,
    name: &str,
    rows: i64,
    [c, h, w]: [i64; 3],
    size: [i64; 2],
) -> Error {
    Error::KerasTop {
        path: weights.path.clone(),
        model: name.to_string(),
        reason: format!(
            "its first dense layer takes {rows} inputs, but `{name}` gives {c} channels, \
             {c}×{h}×{w} = {} when flattened at {}×{}; is it a `{name}` file? If so, give \
             the input size it was trained at",
            c * h * w,
            size[0],
            size[1]
        ),
    }
}

/// The input size whose feature map, flattened, has `rows` values: multiples of 32 first
/// (the usual training sizes), then every size.
fn find_flatten_size(info: &ModelInfo, rows: i64) -> Result<Option<[i64; 2]>> {
    let candidates = (1..=64)
        .map(|k| 32 * k)
        .chain(info.min_input_size..=2048)
        .filter(|&s| s >= info.min_input_size);
    for s in candidates {
        let [c, h, w] = info.feature_shape(&BuildOptions {
            input_size: Some([s, s]),
            ..BuildOptions::default()
        })?;
        if c * h * w == rows {
            return Ok(Some([s, s]));
        }
    }
    Ok(None)
}

/// Builds the model `name` for a Keras weight file and imports it: the top and input size
/// come from the file ([`infer_top`]) unless `options` gives them.
///
/// ```no_run
/// # mod deepfake { pub mod models { pub use df_models::*; } pub use tch; }
/// use deepfake::models::{load_keras, load::KerasLoadOptions, Polarity};
/// use deepfake::tch::Device;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The MesoNet authors' file scores "real": its logit is flipped on import.
/// let options = KerasLoadOptions::default().with_polarity(Polarity::Real);
/// let loaded = load_keras("meso4", "Meso4_DF.h5", Device::Cpu, &options)?;
/// println!("{} expects {:?}", loaded.model.name(), loaded.input_spec());
/// # Ok(()) }
/// ```
///
/// # Errors
/// Those of [`KerasWeights::read`], [`infer_top`], [`build`] and
/// [`crate::keras::import_keras`].
pub fn load_keras(
    name: &str,
    path: impl AsRef<Path>,
    device: Device,
    options: &KerasLoadOptions,
) -> Result<LoadedModel> {
    let weights = KerasWeights::read(path)?;
    let (top, size) = match &options.top {
        Some(top) => (
            top.clone(),
            options.input_size.unwrap_or(info(name)?.input_size),
        ),
        None => infer_top(name, &weights, options.input_size)?,
    };
    let var_store = VarStore::new(device);
    let build_options = BuildOptions {
        top: Some(top),
        input_size: Some(size),
        ..BuildOptions::default()
    };
    let model = build(name, &var_store.root(), &build_options)?;
    let report = import_keras_weights(&var_store, model.as_ref(), &weights, &options.import)?;
    Ok(LoadedModel {
        var_store,
        model,
        keras: Some(report),
        checkpoint: None,
    })
}

/// Loads weights for prediction: a native checkpoint (`.safetensors`, whose metadata names
/// the model: `name`, when given, must agree) or a Keras file (`.h5`, `name` required).
///
/// # Errors
/// [`Error::InvalidConfig`] for a missing or disagreeing name or an unknown extension;
/// those of [`open_checkpoint`] and [`load_keras`].
pub fn load_weights(
    name: Option<&str>,
    path: impl AsRef<Path>,
    device: Device,
    options: &KerasLoadOptions,
) -> Result<LoadedModel> {
    let path = path.as_ref();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let bad = |reason: String| Error::InvalidConfig {
        model: name.unwrap_or("?").to_string(),
        option: "weights",
        reason,
    };
    match ext.as_str() {
        "safetensors" => {
            let loaded = open_checkpoint(path, device)?;
            if let Some(name) = name {
                if loaded.model.name() != name {
                    return Err(bad(format!(
                        "{} is a checkpoint of `{}`",
                        path.display(),
                        loaded.model.name()
                    )));
                }
            }
            Ok(loaded)
        }
        "h5" | "hdf5" => {
            let name = name.ok_or_else(|| {
                bad(format!(
                    "{}: a Keras file does not say which model it holds; name it",
                    path.display()
                ))
            })?;
            load_keras(name, path, device, options)
        }
        _ => Err(bad(format!(
            "{}: expected a `.safetensors` checkpoint or a Keras `.h5` file",
            path.display()
        ))),
    }
}

/// Opens a checkpoint: builds the model it names from its stored `{family, config}` on
/// `device` ([`registry::build_from_config`]: one lookup, one deserialisation) and loads its
/// variables. A format-1 checkpoint, which names no family, takes its model's family from
/// the catalogue. The [`LoadedModel`] keeps the `VarStore` (to train further or save
/// again).
///
/// # Errors
/// Those of [`read_checkpoint_meta`], [`registry::build_from_config`] (an unknown family
/// lists the known ones: a model of another crate must be registered with
/// [`registry::register_family`] first) and [`load_checkpoint_into`].
pub fn open_checkpoint(path: impl AsRef<Path>, device: Device) -> Result<LoadedModel> {
    let path = path.as_ref();
    let meta = read_checkpoint_meta(path)?;
    let family = match &meta.family {
        Some(family) => family.clone(),
        None => info(&meta.model)
            .map_err(|e| Error::Checkpoint {
                path: path.to_path_buf(),
                reason: format!(
                    "format version {} names no family, and {e}",
                    meta.format_version
                ),
            })?
            .family
            .to_string(),
    };
    let var_store = VarStore::new(device);
    // The configuration cannot describe more weights than the file holds: building is
    // checked against the file's size (a tampered `input_size` fails fast, not after
    // allocating gigabytes).
    let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
    let model = df_io::memory::with_limit(
        file_size.saturating_add(file_size / 100),
        format!("that {} holds", path.display()),
        || registry::build_from_config(&family, &meta.model, &var_store.root(), &meta.config),
    )?;
    let meta = load_checkpoint_into(&var_store, model.as_ref(), path)?;
    Ok(LoadedModel {
        var_store,
        model,
        keras: None,
        checkpoint: Some(meta),
    })
}

/// Reopens a checkpoint as a ready model on `device` (see [`open_checkpoint`] to keep its
/// `VarStore`).
///
/// ```
/// # mod deepfake { pub mod models { pub use df_models::*; } pub use tch; }
/// use deepfake::models::{self, checkpoint::save_checkpoint, BuildOptions};
/// use deepfake::tch::{nn::VarStore, Device};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("model.safetensors");
/// let vs = VarStore::new(Device::Cpu);
/// let options = BuildOptions::default().with_input_size(64, 64);
/// let model = models::build("meso4", &vs.root(), &options)?;
/// save_checkpoint(&vs, model.as_ref(), &path)?; // what training writes
///
/// // The checkpoint names its model and configuration: nothing else to say.
/// let reopened = models::load_checkpoint(&path, Device::Cpu)?;
/// assert_eq!(reopened.name(), "meso4");
/// assert_eq!(reopened.input_spec().height, 64);
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`open_checkpoint`].
pub fn load_checkpoint(path: impl AsRef<Path>, device: Device) -> Result<Box<dyn Model>> {
    Ok(open_checkpoint(path, device)?.model)
}
