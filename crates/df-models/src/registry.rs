//! The two registries: the catalogue (every model of the crate by name, with its family
//! and variant, its defaults and Keras' parameter counts; building models by name) and
//! the family registry (the built-in families and those other crates register, by which
//! checkpoints reopen from their `{family, config}`).
//!
//! A model is one catalogue entry: a name, a family ([`crate::family`]) and the family
//! configuration of that variant. Loading weights is [`crate::load`]'s.
//!
//! ```no_run
//! # mod deepfake { pub mod models { pub use df_models::*; } }
//! use deepfake::models::registry::{self, BuildOptions};
//! use deepfake::models::Top;
//! use tch::{nn, Device};
//!
//! # fn main() -> deepfake::models::Result<()> {
//! for info in registry::registry() {
//!     println!("{} {}×{}", info.name, info.input_size[0], info.input_size[1]);
//! }
//! let vs = nn::VarStore::new(Device::Cpu);
//! let options = BuildOptions::default().with_top(Top::study([256, 128], 0.5, 1e-4));
//! let model = registry::build("efficientnet_b0", &vs.root(), &options)?;
//! assert_eq!(model.name(), "efficientnet_b0");
//! # Ok(()) }
//! ```

use std::any::TypeId;
use std::sync::{OnceLock, RwLock};

use df_layers::util::ParamCount;
use df_layers::HeadInput;
use tch::nn;

use crate::error::{Error, Result};
pub use crate::family::BuildOptions;
use crate::family::{AnyConfig, Configured, Family};
use crate::spec::{InputSpec, Model, Preprocessing, Top, TopKind};

/// Keras' parameter counts of a model (`model.summary()`), as reference values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KerasParams {
    /// With the model's default top (the ImageNet classifier; the authors' head for
    /// MesoNet).
    pub with_top: ParamCount,
    /// Without a top (`include_top=False`), where Keras reports it.
    pub without_top: Option<ParamCount>,
}

pub(crate) const fn count(total: i64, trainable: i64) -> ParamCount {
    ParamCount { total, trainable }
}

/// Which metric a recipe's callback monitors (Keras' names).
pub type Monitor = &'static str;

/// The study's training recipe of a model, as data (`df_train::StudyRecipe` applies it):
/// the metrics that early stopping and `ReduceLROnPlateau` monitor and Adam's learning
/// rate. The study gives neither patience nor factor (`df_train::study`'s constants).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Recipe {
    /// The metric early stopping monitors (`loss`, `val_loss` ...).
    pub early_stop: Monitor,
    /// The metric `ReduceLROnPlateau` monitors.
    pub reduce_lr: Monitor,
    /// Adam's learning rate.
    pub lr: f64,
    /// Whether the model is one of the nine the study compares (`compare --models study`);
    /// a model outside them that shares a recipe (EfficientNet B1/B2/B4/B6, VGG16
    /// configuration D) has `false`.
    pub in_comparison: bool,
}

impl Recipe {
    /// The recipe of most of the study's models: early stopping on `loss`,
    /// `ReduceLROnPlateau` on `val_accuracy`, Adam at `lr`.
    pub(crate) const fn loss_val_accuracy(lr: f64, in_comparison: bool) -> Recipe {
        Recipe {
            early_stop: "loss",
            reduce_lr: "val_accuracy",
            lr,
            in_comparison,
        }
    }
}

/// A registered model.
#[derive(Clone, Copy)]
pub struct ModelInfo {
    /// Registry name (`meso4`, `efficientnet_b7` ...).
    pub name: &'static str,
    /// The family that builds it ([`Family::NAME`]).
    pub family: &'static str,
    /// What it is, in a few words.
    pub description: &'static str,
    /// Default input `[height, width]`.
    pub input_size: [i64; 2],
    /// Smallest input side the architecture accepts.
    pub min_input_size: i64,
    /// Input preprocessing.
    pub preprocessing: Preprocessing,
    /// Keras' parameter counts, where an independent Keras reference exists (the MesoNet
    /// data README; `keras_applications_params.json`). `None` for the study's VGG16
    /// configuration C, which Keras does not ship.
    pub keras_params: Option<KerasParams>,
    /// The `keras.applications` constructor that builds the same model (`"EfficientNetB7"`,
    /// `"Xception"`); `None` for a model Keras does not ship (MesoNet, VGG16-C).
    pub keras_application: Option<&'static str>,
    /// The study's training recipe for it ([`Recipe`]); `None` for a model outside the
    /// study's recipes (ResNet101/152, Xception).
    pub study_recipe: Option<Recipe>,
    /// The layer Grad-CAM explains by default: the output of the last convolutional stage,
    /// before any pooling of the top, by the name the model records it under
    /// ([`df_layers::trace`]; Keras' layer name where Keras names it, e.g.
    /// `block14_sepconv2_act` for Xception, `top_activation` for EfficientNet).
    pub gradcam_layer: &'static str,
    pub(crate) default_top: fn() -> Top,
    pub(crate) config: fn(&BuildOptions) -> Result<Box<dyn AnyConfig>>,
}

impl std::fmt::Debug for ModelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelInfo")
            .field("name", &self.name)
            .field("family", &self.family)
            .field("input_size", &self.input_size)
            .field("preprocessing", &self.preprocessing)
            .field("keras_params", &self.keras_params)
            .field("keras_application", &self.keras_application)
            .field("study_recipe", &self.study_recipe)
            .field("gradcam_layer", &self.gradcam_layer)
            .finish()
    }
}

/// A catalogue row as JSON (what `summary --list --json` prints, one object per model):
/// every field of [`ModelInfo`], the default top as [`Top`]'s JSON.
impl serde::Serialize for ModelInfo {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            name: &'a str,
            family: &'a str,
            description: &'a str,
            keras_application: Option<&'a str>,
            input_size: [i64; 2],
            min_input_size: i64,
            preprocessing: Preprocessing,
            keras_params: Option<KerasParams>,
            default_top: Top,
            study_recipe: Option<Recipe>,
            gradcam_layer: &'a str,
        }
        Row {
            name: self.name,
            family: self.family,
            description: self.description,
            keras_application: self.keras_application,
            input_size: self.input_size,
            min_input_size: self.min_input_size,
            preprocessing: self.preprocessing,
            keras_params: self.keras_params,
            default_top: self.default_top(),
            study_recipe: self.study_recipe,
            gradcam_layer: self.gradcam_layer,
        }
        .serialize(serializer)
    }
}

impl ModelInfo {
    /// The top the model gets when [`BuildOptions::top`] is `None`: Keras' ImageNet
    /// classifier for the Keras Applications models, the authors' head for MesoNet, the
    /// study's head for `vgg16_c`.
    pub fn default_top(&self) -> Top {
        (self.default_top)()
    }

    /// The top the model gets when it is trained as a detector and no top is given: its
    /// default top when that is a binary head (MesoNet's, `vgg16_c`'s study head), else the
    /// study's head ([`Top::study`] with [`crate::spec::STUDY_HEAD_UNITS`], dropout 0.5, no
    /// L2) on the backbone.
    pub fn detector_top(&self) -> Top {
        let top = self.default_top();
        if top.is_binary() {
            top
        } else {
            Top::study(
                crate::spec::STUDY_HEAD_UNITS,
                crate::spec::STUDY_HEAD_DROPOUT,
                0.0,
            )
        }
    }

    /// The detector top asked for by name: `kind` with hidden units `head`
    /// ([`Top::of_kind`]); without a kind, [`ModelInfo::detector_top`], with its hidden
    /// units replaced by `head` when it is a study head.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (option `head`) when the units do not fit the top.
    pub fn top_for(&self, kind: Option<TopKind>, head: Option<&[i64]>) -> Result<Top> {
        let bad = |reason: String| Error::InvalidConfig {
            model: self.name.to_string(),
            option: "head",
            reason,
        };
        match (kind, head) {
            (Some(kind), head) => Top::of_kind(kind, head).map_err(bad),
            (None, None) => Ok(self.detector_top()),
            (None, Some(units)) => {
                let top = self.detector_top();
                let is_study = matches!(&top, Top::Binary { input: HeadInput::Flatten, layers }
                    if layers.len() == 3 && layers[1].dropout_before > 0.0);
                if !is_study {
                    return Err(bad(format!(
                        "`{}` has the MesoNet authors' head; hidden units apply to a study or \
                         pooled head (give the top too)",
                        self.name
                    )));
                }
                Top::of_kind(TopKind::Study, Some(units)).map_err(bad)
            }
        }
    }

    /// The default [`InputSpec`].
    pub fn input_spec(&self) -> InputSpec {
        InputSpec {
            height: self.input_size[0],
            width: self.input_size[1],
            preprocessing: self.preprocessing,
        }
    }

    /// The `[C, H, W]` feature map that reaches the top for `options`.
    ///
    /// # Errors
    /// As [`build`] for invalid options.
    pub fn feature_shape(&self, options: &BuildOptions) -> Result<[i64; 3]> {
        Ok((self.config)(options)?.feature_shape())
    }

    /// The family configuration `options` give (what [`ModelInfo::build`] builds).
    ///
    /// # Errors
    /// As [`build`] for invalid options.
    pub fn config(&self, options: &BuildOptions) -> Result<Box<dyn AnyConfig>> {
        if let Some([h, w]) = options.input_size {
            if h <= 0 || w <= 0 {
                return Err(crate::Error::InvalidConfig {
                    model: self.name.to_string(),
                    option: "input_size",
                    reason: format!("must be positive, got {h}x{w}"),
                });
            }
        }
        (self.config)(options)
    }

    /// Builds the model under `p`.
    ///
    /// # Errors
    /// The model's configuration errors (input too small, invalid top ...).
    pub fn build(&self, p: &nn::Path<'_>, options: &BuildOptions) -> Result<Box<dyn Model>> {
        self.config(options)?.build(p)
    }
}

pub(crate) fn imagenet_top() -> Top {
    Top::ImageNet { classes: 1000 }
}

/// One family file's part of the registries: its catalogue rows (names, configurations,
/// input sizes, preprocessing, Keras' parameter counts, default tops) and its families.
/// Each family file declares one as `CATALOGUE`; `lib.rs`' list of family files (one line
/// per file) gathers them, in order. Parameter counts: MesoNet from
/// `../shared/data/mesonet/README` (the authors' architecture in Keras 3.15); the others
/// from Keras 3.15 `keras.applications` with `weights=None`
/// (`../shared/reference/keras_applications_params.json`; where that file lacks a model,
/// `scripts/fixtures/keras_init.py`'s `params.json`, which the tests compare with these).
pub(crate) struct Catalogue {
    /// The file's models, in catalogue order.
    pub(crate) models: &'static [ModelInfo],
    /// The file's families, in registry order.
    pub(crate) families: &'static [fn() -> Entry],
}

static CATALOGUE: OnceLock<Vec<ModelInfo>> = OnceLock::new();

/// Every registered model.
pub fn registry() -> &'static [ModelInfo] {
    CATALOGUE.get_or_init(|| {
        crate::FAMILY_FILES
            .iter()
            .flat_map(|file| file.models.iter().copied())
            .collect()
    })
}

/// The registry names, in registry order.
pub fn names() -> Vec<&'static str> {
    registry().iter().map(|m| m.name).collect()
}

/// The model registered as `name`.
///
/// # Errors
/// [`Error::UnknownModel`] listing the known names.
pub fn info(name: &str) -> Result<&'static ModelInfo> {
    registry()
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| Error::UnknownModel {
            name: name.to_string(),
            known: names().into_iter().map(String::from).collect(),
        })
}

/// Builds the model registered as `name` under `p`.
///
/// ```
/// # mod deepfake { pub mod models { pub use df_models::*; } pub use tch; }
/// use deepfake::models::{self, BuildOptions, Top};
/// use deepfake::tch::{nn::VarStore, Device, Kind, Tensor};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vs = VarStore::new(Device::Cpu);
/// // Meso-4 at 64×64 with the MesoNet authors' head: one logit of "fake" per picture.
/// let options = BuildOptions::default().with_input_size(64, 64).with_top(Top::mesonet());
/// let model = models::build("meso4", &vs.root(), &options)?;
/// let pictures = Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu));
/// let logits = deepfake::tch::no_grad(|| model.forward_t(&pictures, false));
/// assert_eq!(logits.size(), [2, 1]);
/// assert!(models::build("meso5", &vs.root(), &options).is_err()); // the error lists the names
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::UnknownModel`] listing the known names; the model's configuration errors.
pub fn build(name: &str, p: &nn::Path<'_>, options: &BuildOptions) -> Result<Box<dyn Model>> {
    info(name)?.build(p, options)
}

// ---- The family registry ------------------------------------------------------------

/// A registered family, erased.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    name: &'static str,
    type_id: fn() -> TypeId,
    from_json: fn(&serde_json::Value) -> std::result::Result<Box<dyn AnyConfig>, String>,
}

pub(crate) fn entry<F: Family>() -> Entry {
    Entry {
        name: F::NAME,
        type_id: TypeId::of::<F>,
        from_json: |json| {
            let config =
                serde_json::from_value::<F::Config>(json.clone()).map_err(|e| e.to_string())?;
            F::validate(&config).map_err(|e| e.to_string())?;
            Ok(Box::new(Configured::<F>(config)) as Box<dyn AnyConfig>)
        },
    }
}

fn builtin_families() -> impl Iterator<Item = Entry> {
    crate::FAMILY_FILES
        .iter()
        .flat_map(|file| file.families.iter().map(|entry| entry()))
}

/// Families registered by other crates, after the built-in ones.
static REGISTERED: RwLock<Vec<Entry>> = RwLock::new(Vec::new());

fn registered() -> Vec<Entry> {
    // The vector is only ever pushed to whole entries, so a writer that panicked left it
    // consistent: read through the poison.
    let extra = REGISTERED
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    builtin_families().chain(extra.iter().copied()).collect()
}

/// Registers family `F` so that checkpoints of its models reopen. Registering the same
/// family again does nothing.
///
/// # Errors
/// [`Error::FamilyConflict`] when another family already has its name.
pub fn register_family<F: Family>() -> Result<()> {
    let new = entry::<F>();
    let mut extra = REGISTERED
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let known = builtin_families().chain(extra.iter().copied());
    for e in known {
        if e.name == new.name {
            return if (e.type_id)() == TypeId::of::<F>() {
                Ok(())
            } else {
                Err(Error::FamilyConflict {
                    name: new.name.to_string(),
                })
            };
        }
    }
    extra.push(new);
    Ok(())
}

/// The names of every known family: the built-in ones, then the registered ones.
pub fn family_names() -> Vec<&'static str> {
    registered().iter().map(|e| e.name).collect()
}

/// The configuration of family `family` read from its JSON (as [`Model::config_json`]
/// wrote it).
///
/// # Errors
/// [`Error::UnknownFamily`] listing the known families; [`Error::InvalidConfig`] (option
/// `config`, naming `model`) when the JSON is not that family's configuration.
pub fn config_from_json(
    family: &str,
    model: &str,
    json: &serde_json::Value,
) -> Result<Box<dyn AnyConfig>> {
    let all = registered();
    let Some(e) = all.iter().find(|e| e.name == family) else {
        return Err(Error::UnknownFamily {
            name: family.to_string(),
            model: model.to_string(),
            known: all.iter().map(|e| e.name.to_string()).collect(),
        });
    };
    (e.from_json)(json).map_err(|reason| Error::InvalidConfig {
        model: model.to_string(),
        option: "config",
        reason: format!("not a `{family}` configuration: {reason}"),
    })
}

/// Builds model `model` of family `family` from its stored configuration under `p` (how
/// checkpoints reopen): one lookup, one deserialisation.
///
/// # Errors
/// As [`config_from_json`]; [`Error::InvalidConfig`] when the configuration builds a model
/// of another name; the family's build errors.
pub fn build_from_config(
    family: &str,
    model: &str,
    p: &nn::Path<'_>,
    json: &serde_json::Value,
) -> Result<Box<dyn Model>> {
    let built = config_from_json(family, model, json)?.build(p)?;
    if built.name() != model {
        return Err(Error::InvalidConfig {
            model: model.to_string(),
            option: "config",
            reason: format!("the stored configuration builds `{}`", built.name()),
        });
    }
    Ok(built)
}
