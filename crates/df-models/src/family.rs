//! Model families: one configuration type and the models it builds, and the open registry
//! that reopens a checkpoint from the `{family, config}` it stores.
//!
//! A family is implemented once, in its own file ([`crate::meso`], [`crate::resnet`] ...),
//! by a unit type implementing [`Family`]. The built-in families are always known; a
//! downstream crate registers its own with [`register_family`], after which
//! [`crate::load_checkpoint`] reopens its checkpoints like the built-in ones:
//!
//! ```
//! use df_models::family::{self, Family};
//! use df_models::{BuildOptions, InputSpec, Model, Preprocessing, Result};
//! use tch::nn::{self, ModuleT};
//! use tch::Tensor;
//!
//! /// A one-layer detector: global average pooling of the pixels, then one dense layer.
//! #[derive(Debug)]
//! struct Tiny { dense: nn::Linear, config: TinyConfig }
//!
//! #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct TinyConfig { size: i64 }
//!
//! impl ModuleT for Tiny {
//!     fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
//!         self.forward_head(&self.forward_features(xs, train), train)
//!     }
//! }
//! impl Model for Tiny {
//!     fn name(&self) -> &str { "tiny" }
//!     fn family(&self) -> &str { TinyFamily::NAME }
//!     fn input_spec(&self) -> InputSpec { TinyFamily::input_spec(&self.config) }
//!     fn config_json(&self) -> Result<serde_json::Value> {
//!         family::config_to_json(self.name(), &self.config)
//!     }
//!     fn forward_features(&self, xs: &Tensor, _train: bool) -> Tensor { xs.shallow_clone() }
//!     fn forward_head(&self, f: &Tensor, _train: bool) -> Tensor {
//!         f.mean_dim(&[-2i64, -1][..], false, None).apply(&self.dense)
//!     }
//!     fn head(&self) -> Option<&df_layers::DenseHead> { None }
//! }
//!
//! struct TinyFamily;
//! impl Family for TinyFamily {
//!     const NAME: &'static str = "tiny";
//!     type Config = TinyConfig;
//!     fn build(p: &nn::Path<'_>, config: &TinyConfig) -> Result<Box<dyn Model>> {
//!         let dense = nn::linear(p / "dense", 3, 1, Default::default());
//!         Ok(Box::new(Tiny { dense, config: config.clone() }))
//!     }
//!     fn input_spec(config: &TinyConfig) -> InputSpec {
//!         InputSpec { height: config.size, width: config.size,
//!                     preprocessing: Preprocessing::unit() }
//!     }
//!     fn feature_shape(config: &TinyConfig) -> [i64; 3] { [3, config.size, config.size] }
//!     fn apply_options(mut config: TinyConfig, options: &BuildOptions) -> Result<TinyConfig> {
//!         if let Some([h, _]) = options.input_size { config.size = h; }
//!         Ok(config)
//!     }
//! }
//!
//! # fn main() -> Result<()> {
//! family::register_family::<TinyFamily>()?;
//! assert!(family::family_names().contains(&"tiny"));
//! # Ok(()) }
//! ```

use std::any::TypeId;
use std::sync::RwLock;

use df_layers::HeadInput;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tch::nn;

use crate::error::{Error, Result};
use crate::registry::BuildOptions;
use crate::spec::{InputSpec, Model, Top};

/// A model family: a configuration type and how it becomes a model. Implemented once per
/// family, next to the family's models; a checkpoint stores [`Family::NAME`] and the
/// configuration as JSON.
pub trait Family: 'static {
    /// The name checkpoints store (`resnet`, `efficientnet` ...). Stable: changing it
    /// orphans the checkpoints written under the old one.
    const NAME: &'static str;
    /// Everything that determines the model's variables and computation.
    type Config: Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Builds the model, its variables under `p`.
    ///
    /// # Errors
    /// An invalid configuration (input too small, an unsupported top ...).
    fn build(p: &nn::Path<'_>, config: &Self::Config) -> Result<Box<dyn Model>>;

    /// The input the model expects.
    fn input_spec(config: &Self::Config) -> InputSpec;

    /// The `[C, H, W]` feature map that reaches the top.
    fn feature_shape(config: &Self::Config) -> [i64; 3];

    /// `config` with [`BuildOptions`] applied (top, input size, dropout, L2, memory
    /// format).
    ///
    /// # Errors
    /// An option the family cannot honour.
    fn apply_options(config: Self::Config, options: &BuildOptions) -> Result<Self::Config>;

    /// How the family's Keras files lay out a binary head: the top that dense layers of
    /// `units` (the last one 1) on `input` describe, when it is the family's own head (the
    /// MesoNet authors' `Dense(16) → Dense(1)`); `None` to read it as a generic head.
    fn keras_binary_top(units: &[i64], input: HeadInput) -> Option<Top> {
        let _ = (units, input);
        None
    }
}

/// A family's configuration with its family erased: what the catalogue builds models
/// from. Made by [`configured`].
pub trait AnyConfig: std::fmt::Debug + Send + Sync {
    /// [`Family::NAME`].
    fn family(&self) -> &'static str;
    /// [`Family::build`].
    ///
    /// # Errors
    /// As [`Family::build`].
    fn build(&self, p: &nn::Path<'_>) -> Result<Box<dyn Model>>;
    /// [`Family::input_spec`].
    fn input_spec(&self) -> InputSpec;
    /// [`Family::feature_shape`].
    fn feature_shape(&self) -> [i64; 3];
    /// [`Family::keras_binary_top`].
    fn keras_binary_top(&self, units: &[i64], input: HeadInput) -> Option<Top>;
}

struct Configured<F: Family>(F::Config);

impl<F: Family> std::fmt::Debug for Configured<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple(F::NAME).field(&self.0).finish()
    }
}

impl<F: Family> AnyConfig for Configured<F> {
    fn family(&self) -> &'static str {
        F::NAME
    }
    fn build(&self, p: &nn::Path<'_>) -> Result<Box<dyn Model>> {
        F::build(p, &self.0)
    }
    fn input_spec(&self) -> InputSpec {
        F::input_spec(&self.0)
    }
    fn feature_shape(&self) -> [i64; 3] {
        F::feature_shape(&self.0)
    }
    fn keras_binary_top(&self, units: &[i64], input: HeadInput) -> Option<Top> {
        F::keras_binary_top(units, input)
    }
}

/// `config` of family `F` with `options` applied, family erased.
///
/// # Errors
/// As [`Family::apply_options`].
pub fn configured<F: Family>(
    config: F::Config,
    options: &BuildOptions,
) -> Result<Box<dyn AnyConfig>> {
    Ok(Box::new(Configured::<F>(F::apply_options(
        config, options,
    )?)))
}

/// A configuration as JSON, for [`Model::config_json`].
///
/// # Errors
/// [`Error::InvalidConfig`] (option `config`) naming `model` when it does not serialise.
pub fn config_to_json<T: Serialize>(model: &str, config: &T) -> Result<serde_json::Value> {
    serde_json::to_value(config).map_err(|e| Error::InvalidConfig {
        model: model.to_string(),
        option: "config",
        reason: format!("does not serialise to JSON: {e}"),
    })
}

/// A registered family, erased.
#[derive(Clone, Copy)]
struct Entry {
    name: &'static str,
    type_id: fn() -> TypeId,
    from_json: fn(&serde_json::Value) -> std::result::Result<Box<dyn AnyConfig>, String>,
}

fn entry<F: Family>() -> Entry {
    Entry {
        name: F::NAME,
        type_id: TypeId::of::<F>,
        from_json: |json| {
            serde_json::from_value::<F::Config>(json.clone())
                .map(|c| Box::new(Configured::<F>(c)) as Box<dyn AnyConfig>)
                .map_err(|e| e.to_string())
        },
    }
}

fn builtin() -> [Entry; 6] {
    [
        entry::<crate::meso::Meso4Family>(),
        entry::<crate::meso::MesoInception4Family>(),
        entry::<crate::vgg::VggFamily>(),
        entry::<crate::resnet::ResNetFamily>(),
        entry::<crate::efficientnet::EfficientNetFamily>(),
        entry::<crate::inception_resnet_v2::InceptionResNetV2Family>(),
    ]
}

/// Families registered by other crates, after the built-in ones.
static REGISTERED: RwLock<Vec<Entry>> = RwLock::new(Vec::new());

fn registered() -> Vec<Entry> {
    // The vector is only ever pushed to whole entries, so a writer that panicked left it
    // consistent: read through the poison.
    let extra = REGISTERED
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    builtin().into_iter().chain(extra.iter().copied()).collect()
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
    let known = builtin().into_iter().chain(extra.iter().copied());
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
