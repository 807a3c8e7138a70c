//! Building and running a model's [`Top`], shared by the model families.

use df_layers::trace::record;
use df_layers::{DenseHead, DenseHeadConfig, HeadInput, MemoryFormat};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::spec::Top;

/// A model's top, built.
#[derive(Debug)]
pub(crate) enum TopLayer {
    /// No dense layers: the feature map, or its global pooling.
    Backbone(HeadInput),
    /// Dense layers (the ImageNet classifier or a binary head).
    Dense(DenseHead),
}

impl TopLayer {
    /// Builds `top` over a `[C, H, W]` feature map, with variables under `p`.
    /// `imagenet` gives the family's ImageNet classifier for a number of classes, or
    /// `None` when the family has none.
    pub(crate) fn new(
        p: &nn::Path<'_>,
        model: &str,
        top: &Top,
        feature_shape: [i64; 3],
        imagenet: Option<&dyn Fn(i64) -> DenseHeadConfig>,
    ) -> Result<Self> {
        let config = match top {
            Top::Backbone { pooling } => return Ok(TopLayer::Backbone(*pooling)),
            Top::ImageNet { classes } => match imagenet {
                Some(head) => head(*classes),
                None => {
                    return Err(Error::InvalidConfig {
                        model: model.into(),
                        option: "top",
                        reason: "this model has no ImageNet classifier; use a backbone or a \
                                 binary top"
                            .into(),
                    })
                }
            },
            Top::Binary { .. } => {
                top.binary_head_config(feature_shape)
                    .ok_or_else(|| Error::InvalidConfig {
                        model: model.into(),
                        option: "top",
                        reason: "binary top without a head".into(),
                    })?
            }
        };
        check_head_fits(model, &config)?;
        Ok(TopLayer::Dense(DenseHead::new(p, &config)?))
    }

    /// The dense layers, if any.
    pub(crate) fn head(&self) -> Option<&DenseHead> {
        match self {
            TopLayer::Backbone(_) => None,
            TopLayer::Dense(head) => Some(head),
        }
    }
}

impl ModuleT for TopLayer {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            TopLayer::Backbone(HeadInput::Flatten) => xs.shallow_clone(),
            // Keras' `pooling="avg"` / `"max"` layers.
            TopLayer::Backbone(HeadInput::GlobalAvgPool) => {
                let ys = xs.mean_dim(&[-2i64, -1][..], false, None::<Kind>);
                record(|| "avg_pool".into(), "GlobalAveragePooling2D", &ys);
                ys
            }
            TopLayer::Backbone(HeadInput::GlobalMaxPool) => {
                let ys = xs.amax(&[-2i64, -1][..], false);
                record(|| "max_pool".into(), "GlobalMaxPooling2D", &ys);
                ys
            }
            TopLayer::Dense(head) => head.forward_t(xs, train),
        }
    }
}

/// Sets the dropout rate of every dense layer of a binary top that has dropout.
pub(crate) fn set_top_dropout(top: &mut Top, rate: f64) {
    if let Top::Binary { layers, .. } = top {
        for l in layers.iter_mut().filter(|l| l.dropout_before > 0.0) {
            l.dropout_before = rate;
        }
    }
}

/// Sets the L2 coefficient of every kernel of a binary top.
pub(crate) fn set_top_l2(top: &mut Top, l2: f64) {
    if let Top::Binary { layers, .. } = top {
        for l in layers.iter_mut() {
            l.l2 = l2;
        }
    }
}

/// The builders every model configuration shares (`with_input_size`, `with_top`,
/// `with_dropout`, `with_l2`), for a struct with `input_size: [i64; 2]` and `top: Top`.
/// `config_builders!(T; dropout also sets field)` makes `with_dropout` set that field to
/// the rate too (EfficientNet's ImageNet-top `dropout_rate`).
macro_rules! config_builders {
    ($config:ty; dropout also sets $field:ident) => {
        $crate::top_head::config_builders!(@impl $config, |c: &mut $config, rate: f64| c.$field = rate);
    };
    ($config:ty) => {
        $crate::top_head::config_builders!(@impl $config, |_: &mut $config, _: f64| ());
    };
    (@impl $config:ty, $also:expr) => {
        impl $config {
            /// Sets the input size.
            pub fn with_input_size(mut self, height: i64, width: i64) -> Self {
                self.input_size = [height, width];
                self
            }

            /// Sets the top.
            pub fn with_top(mut self, top: $crate::Top) -> Self {
                self.top = top;
                self
            }

            /// Sets the rate of every dropout of a binary top (the layers that have one;
            /// for EfficientNet also the ImageNet top's `dropout_rate`).
            pub fn with_dropout(mut self, rate: f64) -> Self {
                ($also)(&mut self, rate);
                $crate::top_head::set_top_dropout(&mut self.top, rate);
                self
            }

            /// Sets the memory format the model computes in on the CPU (see
            /// [`df_layers::MemoryFormat`]).
            pub fn with_memory_format(mut self, format: df_layers::MemoryFormat) -> Self {
                self.memory_format = format;
                self
            }

            /// Sets the L2 coefficient of every kernel of a binary top.
            pub fn with_l2(mut self, l2: f64) -> Self {
                $crate::top_head::set_top_l2(&mut self.top, l2);
                self
            }

            /// The configuration with every option `options` gives applied, in the order
            /// top, input size, dropout, L2, memory format (so dropout and L2 apply to the
            /// top given there).
            pub fn with_options(mut self, options: &$crate::BuildOptions) -> Self {
                if let Some(top) = &options.top {
                    self = self.with_top(top.clone());
                }
                if let Some([h, w]) = options.input_size {
                    self = self.with_input_size(h, w);
                }
                if let Some(rate) = options.dropout {
                    self = self.with_dropout(rate);
                }
                if let Some(l2) = options.l2 {
                    self = self.with_l2(l2);
                }
                if let Some(format) = options.memory_format {
                    self = self.with_memory_format(format);
                }
                self
            }
        }
    };
}
pub(crate) use config_builders;

/// Implements [`crate::family::Family`] for a built-in family whose configuration has
/// `input_spec`, `feature_shape` and the [`config_builders`] methods:
/// `builtin_family!(Unit, "name", Config, |p, config| Model::new(p, config))`.
macro_rules! builtin_family {
    ($(#[$doc:meta])* $family:ident, $name:literal, $config:ty, $build:expr
     $(, keras_binary_top: $keras_top:expr)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $family;

        impl $crate::family::Family for $family {
            const NAME: &'static str = $name;
            type Config = $config;

            fn build(
                p: &tch::nn::Path<'_>,
                config: &$config,
            ) -> $crate::Result<Box<dyn $crate::Model>> {
                let build: fn(&tch::nn::Path<'_>, &$config) -> $crate::Result<_> = $build;
                Ok(Box::new(build(p, config)?))
            }
            fn validate(config: &$config) -> $crate::Result<()> {
                config.check($name)
            }
            fn input_spec(config: &$config) -> $crate::InputSpec {
                config.input_spec()
            }
            fn feature_shape(config: &$config) -> [i64; 3] {
                config.feature_shape()
            }
            fn apply_options(
                config: $config,
                options: &$crate::BuildOptions,
            ) -> $crate::Result<$config> {
                Ok(config.with_options(options))
            }
            $(
            fn keras_binary_top(
                units: &[i64],
                input: df_layers::HeadInput,
            ) -> Option<$crate::Top> {
                let read: fn(&[i64], df_layers::HeadInput) -> Option<$crate::Top> = $keras_top;
                read(units, input)
            }
            )?
        }
    };
}
pub(crate) use builtin_family;

/// The memory format models compute in on the CPU unless told otherwise: channels-last,
/// faster for most blocks there (`docs/runs/blocks-intel-xeon-b73109e.md` measures the
/// blocks both ways). Configurations stored before the option existed read as this too.
pub(crate) fn default_memory_format() -> MemoryFormat {
    MemoryFormat::ChannelsLast
}

/// A model's input in its memory format: converted once, before the first layer, on the
/// CPU; elsewhere (CUDA, not measured in either format) as it comes. The blocks keep the
/// format they are given. Inputs that are not 4-D pass unchanged, for the first layer to
/// report.
pub(crate) fn in_memory_format(xs: &Tensor, format: MemoryFormat) -> Tensor {
    if xs.device() != Device::Cpu {
        return xs.shallow_clone();
    }
    format.apply(xs).unwrap_or_else(|_| xs.shallow_clone())
}

/// Refuses a dense head whose weights would not fit in memory, before allocating them: a
/// Flatten head grows with the input (`meso4` at 10000×10000 would need 1.6 GB of head
/// weights, at 100000×100000 160 GB).
fn check_head_fits(model: &str, config: &DenseHeadConfig) -> Result<()> {
    let mut inputs = config.in_features();
    let mut values: i64 = 0;
    for layer in &config.layers {
        values = values.saturating_add(
            inputs
                .saturating_mul(layer.units)
                .saturating_add(layer.units),
        );
        inputs = layer.units;
    }
    let [c, h, w] = config.input_shape;
    df_io::memory::ensure_fits(df_io::memory::bytes_of([values], 4), || {
        format!("the dense head of `{model}` on a {c}×{h}×{w} feature map ({values} weights)")
    })
    .map_err(|e| Error::InvalidConfig {
        model: model.into(),
        option: "input_size",
        reason: format!("{e}; use a smaller input or a pooled head"),
    })
}

/// Checks a model's input size against the smallest one it accepts.
pub(crate) fn check_input_size(model: &str, size: [i64; 2], min: i64) -> Result<()> {
    if size.iter().any(|&s| s < min) {
        return Err(Error::InvalidConfig {
            model: model.into(),
            option: "input_size",
            reason: format!("must be at least {min}×{min}, got {}×{}", size[0], size[1]),
        });
    }
    Ok(())
}
