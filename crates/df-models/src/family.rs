//! Model families: one configuration type and the models it builds.
//!
//! A family is implemented once, in its own file ([`crate::meso`], [`crate::resnet`](mod@crate::resnet) ...),
//! by a unit type implementing [`Family`]. The built-in families are always known to the
//! family registry ([`mod@crate::registry`]); a downstream crate registers its own with
//! [`crate::register_family`], after which [`crate::load_checkpoint`] reopens its
//! checkpoints from the `{family, config}` they store, like the built-in ones:
//!
//! ```
//! # mod deepfake { pub use df_layers as layers; pub mod models { pub use df_models::*; } }
//! use deepfake::models::family::{self, Family};
//! use deepfake::models::registry;
//! use deepfake::models::{BuildOptions, InputSpec, Model, Preprocessing, Result};
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
//!     fn head(&self) -> Option<&deepfake::layers::DenseHead> { None }
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
//! deepfake::models::register_family::<TinyFamily>()?;
//! assert!(registry::family_names().contains(&"tiny"));
//! # Ok(()) }
//! ```

use df_layers::HeadInput;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tch::nn;

use crate::error::{Error, Result};
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

    /// Checks a configuration read from a file (a checkpoint's `config`) before anything
    /// uses it: sizes, strides, rates in range. The default accepts every configuration.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the setting.
    fn validate(config: &Self::Config) -> Result<()> {
        let _ = config;
        Ok(())
    }

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

pub(crate) struct Configured<F: Family>(pub(crate) F::Config);

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

/// How a model departs from its defaults ([`crate::build`], [`Family::apply_options`]). Serialisable: a run's settings
/// (`df-train`'s `ModelChoice`) store it as it is.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BuildOptions {
    /// The top; `None` for [`crate::ModelInfo::default_top`].
    pub top: Option<Top>,
    /// Input `[height, width]`; `None` for the default.
    pub input_size: Option<[i64; 2]>,
    /// Dropout rate of the top's dropout layers (EfficientNet: also its ImageNet
    /// `top_dropout`); `None` keeps the top's own.
    pub dropout: Option<f64>,
    /// L2 coefficient of the binary head's kernels; `None` keeps the top's own.
    pub l2: Option<f64>,
    /// The memory format the model computes in on the CPU; `None` for the default,
    /// channels-last (see [`df_layers::MemoryFormat`]).
    pub memory_format: Option<df_layers::MemoryFormat>,
}

impl BuildOptions {
    /// Sets the top.
    pub fn with_top(mut self, top: Top) -> Self {
        self.top = Some(top);
        self
    }
    /// Sets the input size.
    pub fn with_input_size(mut self, height: i64, width: i64) -> Self {
        self.input_size = Some([height, width]);
        self
    }
    /// Sets the dropout rate of the top.
    pub fn with_dropout(mut self, rate: f64) -> Self {
        self.dropout = Some(rate);
        self
    }
    /// Sets the L2 coefficient of the binary head.
    pub fn with_l2(mut self, l2: f64) -> Self {
        self.l2 = Some(l2);
        self
    }
    /// Sets the memory format the model computes in on the CPU.
    pub fn with_memory_format(mut self, format: df_layers::MemoryFormat) -> Self {
        self.memory_format = Some(format);
        self
    }
}
