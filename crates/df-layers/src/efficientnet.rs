//! EfficientNet's building blocks: squeeze-and-excitation and the inverted residual
//! ("MBConv"), as Keras 3 builds them (`keras/src/applications/efficientnet.py`, `block`).
//!
//! Reference: Tan & Le, *EfficientNet: Rethinking Model Scaling for Convolutional Neural
//! Networks*, ICML 2019; Sandler et al., *MobileNetV2*, CVPR 2018 (the inverted residual);
//! Hu et al., *Squeeze-and-Excitation Networks*, CVPR 2018.
//!
//! Keras pads the input of its stride-2 convolutions itself (`ZeroPadding2D` with
//! `imagenet_utils.correct_pad`, then a `"valid"` convolution) instead of using `"same"`
//! padding; [`CorrectPad`] reproduces both of its behaviours exactly.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::activation::{add_owned, Activation};
use crate::conv::{path_name, BatchNormConfig, ConvBnAct, ConvBnActConfig, Padding};
use crate::error::{invalid, Result};
use crate::head::DropPath;
use crate::init::Initializer;
use crate::trace;

/// How Keras' EfficientNet pads before a stride-2 convolution: `ZeroPadding2D(
/// correct_pad(x, k))` followed by a `"valid"` convolution.
///
/// `correct_pad` reads the input size from the *graph* Keras builds, so the padding depends
/// on whether the Keras model was built for a known input size or not:
///
/// | Keras model | padding `(before, after)` per dimension of size `n` |
/// | --- | --- |
/// | known size (`input_shape=(224, 224, 3)`; always with the ImageNet top or a `Flatten`) | `(k/2 - 1, k/2)` for even `n`, `(k/2, k/2)` for odd `n` |
/// | unknown size (`include_top=False` without `input_shape`, i.e. `(None, None, 3)`) | `(k/2 - 1, k/2)` whatever `n` |
///
/// For odd kernels the known-size variant equals TensorFlow's `"same"` and gives
/// `ceil(n / 2)` outputs; the unknown-size variant gives `floor(n / 2)`, so on odd sizes
/// it drops the last row and column and samples another grid (Keras' own behaviour: an
/// EfficientNet built without an input shape maps 65×65 to 2×2, built for 65×65 to 3×3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectPad {
    /// As Keras built for the size of the actual input (the usual case).
    #[default]
    KnownSize,
    /// As Keras built with an unknown input size (`(None, None, 3)`).
    UnknownSize,
}

impl CorrectPad {
    /// The `(before, after)` zero padding along a dimension of `size` for a `kernel`-tap
    /// stride-2 convolution.
    pub fn amounts(self, size: i64, kernel: i64) -> (i64, i64) {
        let adjust = match self {
            CorrectPad::KnownSize => 1 - size.rem_euclid(2),
            CorrectPad::UnknownSize => 1,
        };
        let correct = kernel / 2;
        ((correct - adjust).max(0), correct)
    }

    /// Output size along a dimension of `size` of a stride-2 `kernel`-tap convolution
    /// after this padding.
    pub fn output_size(self, size: i64, kernel: i64) -> i64 {
        let (before, after) = self.amounts(size, kernel);
        (size + before + after - kernel).div_euclid(2) + 1
    }

    /// Zero-pads the last two dimensions of `xs` for a `kernel`×`kernel` stride-2
    /// convolution.
    ///
    /// # Shapes
    /// `[N, C, H, W]` → `[N, C, H + pad_h, W + pad_w]`.
    pub fn pad(self, xs: &Tensor, kernel: i64) -> Tensor {
        let size = xs.size();
        let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
        let (top, bottom) = self.amounts(h, kernel);
        let (left, right) = self.amounts(w, kernel);
        xs.constant_pad_nd([left, right, top, bottom])
    }
}

/// Configuration of a [`SqueezeExcite`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SqueezeExciteConfig {
    /// Channels of the feature map it recalibrates.
    pub channels: i64,
    /// Channels of the bottleneck (EfficientNet: `max(1, floor(filters_in * se_ratio))`).
    pub squeeze_channels: i64,
    /// Activation of the reducing convolution (EfficientNet: swish).
    pub activation: Activation,
    /// Prefix of the Keras layer names (`block1a_`): variables `{prefix}se_reduce` and
    /// `{prefix}se_expand`.
    pub prefix: String,
}

impl Default for SqueezeExciteConfig {
    fn default() -> Self {
        Self::new(32, 8)
    }
}

impl SqueezeExciteConfig {
    /// A block over `channels` with a `squeeze_channels` bottleneck, swish, no prefix.
    pub fn new(channels: i64, squeeze_channels: i64) -> Self {
        Self {
            channels,
            squeeze_channels,
            activation: Activation::Swish,
            prefix: String::new(),
        }
    }
    /// Sets the layer-name prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Sets the activation of the reducing convolution.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
}

/// Squeeze-and-excitation as in Keras' EfficientNet: global average pooling
/// (`{prefix}se_squeeze`), a 1×1 convolution with bias and swish (`{prefix}se_reduce`), a
/// 1×1 convolution with bias and sigmoid (`{prefix}se_expand`), and the product with the
/// input (`{prefix}se_excite`).
///
/// # Shapes
/// `[N, channels, H, W]` → `[N, channels, H, W]`.
#[derive(Debug)]
pub struct SqueezeExcite {
    /// `{prefix}se_reduce`: `channels` → `squeeze_channels`.
    pub reduce: ConvBnAct,
    /// `{prefix}se_expand`: `squeeze_channels` → `channels`.
    pub expand: ConvBnAct,
    config: SqueezeExciteConfig,
}

impl SqueezeExcite {
    /// Creates the two convolutions under `p`.
    ///
    /// # Errors
    /// Non-positive channel counts.
    pub fn new(p: &nn::Path<'_>, config: &SqueezeExciteConfig) -> Result<Self> {
        let c = config;
        let reduce = ConvBnActConfig::new(c.channels, c.squeeze_channels, 1)
            .with_activation(c.activation)
            .with_kernel_init(Initializer::EFFICIENTNET_CONV)
            .with_names(format!("{}se_reduce", c.prefix), "");
        let expand = ConvBnActConfig::new(c.squeeze_channels, c.channels, 1)
            .with_activation(Activation::Sigmoid)
            .with_kernel_init(Initializer::EFFICIENTNET_CONV)
            .with_names(format!("{}se_expand", c.prefix), "");
        Ok(Self {
            reduce: ConvBnAct::new(p, &reduce)?,
            expand: ConvBnAct::new(p, &expand)?,
            config: config.clone(),
        })
    }

    /// The configuration the block was built with.
    pub fn config(&self) -> &SqueezeExciteConfig {
        &self.config
    }
}

impl ModuleT for SqueezeExcite {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let prefix = &self.config.prefix;
        let squeezed = xs.mean_dim(&[-2i64, -1][..], true, xs.kind()); // [N, C, 1, 1]

        // Keras pools to [N, C], then reshapes to [N, 1, 1, C].
        trace::record_shape(
            || format!("{prefix}se_squeeze"),
            "GlobalAveragePooling2D",
            || squeezed.size()[..2].to_vec(),
        );
        trace::record(|| format!("{prefix}se_reshape"), "Reshape", &squeezed);
        let gate = self
            .expand
            .forward_t(&self.reduce.forward_t(&squeezed, train), train);
        let ys = xs * gate;
        trace::record(|| format!("{prefix}se_excite"), "Multiply", &ys);
        ys
    }
}

/// Configuration of an [`MbConv`], with the arguments of Keras' `efficientnet.block`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MbConvConfig {
    /// Input channels (Keras `filters_in`).
    pub in_channels: i64,
    /// Output channels (Keras `filters_out`).
    pub out_channels: i64,
    /// Depthwise kernel size.
    pub kernel: i64,
    /// Depthwise stride; 2 pads with [`CorrectPad`] and convolves `"valid"`, any other
    /// stride uses `"same"`, as Keras does.
    pub stride: i64,
    /// Expansion ratio: the block works on `in_channels * expand_ratio` channels; 1 means no
    /// expansion convolution.
    pub expand_ratio: i64,
    /// Squeeze-and-excitation bottleneck as a fraction of the *input* channels
    /// (`max(1, floor(in_channels * se_ratio))`); SE is present when `0 < se_ratio <= 1`.
    pub se_ratio: f64,
    /// Keras `id_skip`: allow the residual connection (taken only when `stride == 1` and
    /// `in_channels == out_channels`).
    pub id_skip: bool,
    /// Drop-path ("drop-connect") rate on the residual branch, in train mode only.
    pub drop_rate: f64,
    /// Activation (EfficientNet: swish).
    pub activation: Activation,
    /// Batch normalisation options (Keras defaults).
    pub batch_norm: BatchNormConfig,
    /// Padding of a stride-2 depthwise convolution.
    pub padding: CorrectPad,
    /// Prefix of the Keras layer names, e.g. `block1a_`.
    pub prefix: String,
}

impl Default for MbConvConfig {
    fn default() -> Self {
        Self::new(32, 16, 3, 1, 1)
    }
}

impl MbConvConfig {
    /// A block as EfficientNet builds it (SE ratio 0.25, swish, Keras batch norm, no
    /// drop-path, no prefix).
    pub fn new(
        in_channels: i64,
        out_channels: i64,
        kernel: i64,
        stride: i64,
        expand_ratio: i64,
    ) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride,
            expand_ratio,
            se_ratio: 0.25,
            id_skip: true,
            drop_rate: 0.0,
            activation: Activation::Swish,
            batch_norm: BatchNormConfig::default(),
            padding: CorrectPad::KnownSize,
            prefix: String::new(),
        }
    }
    /// Sets the layer-name prefix (`block2a_`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Sets the squeeze-and-excitation ratio (0 removes SE).
    pub fn with_se_ratio(mut self, se_ratio: f64) -> Self {
        self.se_ratio = se_ratio;
        self
    }
    /// Sets the drop-path rate.
    pub fn with_drop_rate(mut self, drop_rate: f64) -> Self {
        self.drop_rate = drop_rate;
        self
    }
    /// Sets the stride-2 padding behaviour.
    pub fn with_padding(mut self, padding: CorrectPad) -> Self {
        self.padding = padding;
        self
    }
    /// Sets Keras `id_skip`.
    pub fn with_id_skip(mut self, id_skip: bool) -> Self {
        self.id_skip = id_skip;
        self
    }

    /// Channels after expansion.
    pub fn expanded_channels(&self) -> i64 {
        self.in_channels * self.expand_ratio
    }

    /// Squeeze-and-excitation channels, `None` without SE.
    pub fn squeeze_channels(&self) -> Option<i64> {
        (self.se_ratio > 0.0 && self.se_ratio <= 1.0)
            // Keras: max(1, int(filters_in * se_ratio)).
            .then(|| ((self.in_channels as f64 * self.se_ratio) as i64).max(1))
    }

    /// Whether the block adds its input to its output.
    pub fn has_skip(&self) -> bool {
        self.id_skip && self.stride == 1 && self.in_channels == self.out_channels
    }

    fn validate(&self, block: &str) -> Result<()> {
        let positive = [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("expand_ratio", self.expand_ratio),
        ];
        for (option, value) in positive {
            if value <= 0 {
                return Err(invalid(
                    block,
                    option,
                    format!("must be positive, got {value}"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.se_ratio) {
            return Err(invalid(
                block,
                "se_ratio",
                format!("must be in [0, 1], got {}", self.se_ratio),
            ));
        }
        if !(0.0..1.0).contains(&self.drop_rate) {
            return Err(invalid(
                block,
                "drop_rate",
                format!("must be in [0, 1), got {}", self.drop_rate),
            ));
        }
        Ok(())
    }
}

/// EfficientNet's inverted residual block (MBConv) as Keras builds it.
///
/// 1×1 expansion conv + BN + activation (`{prefix}expand_conv`, `{prefix}expand_bn`; absent
/// when `expand_ratio == 1`) → depthwise k×k conv with stride + BN + activation
/// (`{prefix}dwconv`, `{prefix}bn`) → [`SqueezeExcite`] (`{prefix}se_reduce`,
/// `{prefix}se_expand`) → 1×1 projection conv + BN, no activation (`{prefix}project_conv`,
/// `{prefix}project_bn`) → with a skip ([`MbConvConfig::has_skip`]), drop-path (train mode
/// only; Keras `Dropout(noise_shape=(None, 1, 1, 1))`, `{prefix}drop`) and the input added.
///
/// # Shapes
/// `[N, in_channels, H, W]` → `[N, out_channels, H', W']`, `H' = ceil(H / stride)`
/// except for stride 2 with [`CorrectPad::UnknownSize`] (see [`MbConv::output_size`]).
#[derive(Debug)]
pub struct MbConv {
    /// Expansion, when `expand_ratio != 1`.
    pub expand: Option<ConvBnAct>,
    /// Depthwise convolution with its batch norm and activation.
    pub depthwise: ConvBnAct,
    /// Squeeze-and-excitation, when `0 < se_ratio <= 1`.
    pub se: Option<SqueezeExcite>,
    /// Projection with its batch norm.
    pub project: ConvBnAct,
    drop: Option<DropPath>,
    config: MbConvConfig,
}

impl MbConv {
    /// Creates the block's variables under `p`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for non-positive sizes, an SE ratio outside `[0, 1]`
    /// or a drop rate outside `[0, 1)`.
    pub fn new(p: &nn::Path<'_>, config: &MbConvConfig) -> Result<Self> {
        let c = config;
        c.validate(&format!("{}/{}", path_name(p), c.prefix))?;
        let filters = c.expanded_channels();
        let prefix = c.prefix.as_str();
        let expand = if c.expand_ratio != 1 {
            let cfg = ConvBnActConfig::new(c.in_channels, filters, 1)
                .with_batch_norm(c.batch_norm)
                .with_activation(c.activation)
                .with_kernel_init(Initializer::EFFICIENTNET_CONV)
                .with_names(format!("{prefix}expand_conv"), format!("{prefix}expand_bn"));
            Some(ConvBnAct::new(p, &cfg)?)
        } else {
            None
        };
        let dw_padding = if c.stride == 2 {
            Padding::Valid
        } else {
            Padding::Same
        };
        let depthwise = ConvBnActConfig::depthwise(filters, c.kernel)
            .with_stride(c.stride)
            .with_padding(dw_padding)
            .with_batch_norm(c.batch_norm)
            .with_activation(c.activation)
            .with_kernel_init(Initializer::EFFICIENTNET_CONV)
            .with_names(format!("{prefix}dwconv"), format!("{prefix}bn"));
        let se = match c.squeeze_channels() {
            Some(squeeze) => Some(SqueezeExcite::new(
                p,
                &SqueezeExciteConfig::new(filters, squeeze)
                    .with_activation(c.activation)
                    .with_prefix(prefix),
            )?),
            None => None,
        };
        let project = ConvBnActConfig::new(filters, c.out_channels, 1)
            .with_batch_norm(c.batch_norm)
            .with_kernel_init(Initializer::EFFICIENTNET_CONV)
            .with_names(
                format!("{prefix}project_conv"),
                format!("{prefix}project_bn"),
            );
        let drop = if c.has_skip() && c.drop_rate > 0.0 {
            Some(DropPath::new(c.drop_rate)?)
        } else {
            None
        };
        Ok(Self {
            expand,
            depthwise: ConvBnAct::new(p, &depthwise)?,
            se,
            project: ConvBnAct::new(p, &project)?,
            drop,
            config: config.clone(),
        })
    }

    /// Output height (or width) for an input of `size`.
    pub fn output_size(&self, size: i64) -> i64 {
        let c = &self.config;
        match c.stride {
            2 => c.padding.output_size(size, c.kernel),
            s => (size + s - 1) / s,
        }
    }

    /// The configuration the block was built with.
    pub fn config(&self) -> &MbConvConfig {
        &self.config
    }
}

impl ModuleT for MbConv {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let c = &self.config;
        let prefix = &c.prefix;
        let ys = match &self.expand {
            Some(expand) => {
                let ys = expand.forward_t(xs, train); // [N, in * ratio, H, W]
                trace::record(|| format!("{prefix}expand_activation"), "Activation", &ys);
                ys
            }
            None => xs.shallow_clone(),
        };
        let ys = if c.stride == 2 {
            let ys = c.padding.pad(&ys, c.kernel);
            trace::record(|| format!("{prefix}dwconv_pad"), "ZeroPadding2D", &ys);
            ys
        } else {
            ys
        };
        let ys = self.depthwise.forward_t(&ys, train); // [N, in * ratio, H / s, W / s]
        trace::record(|| format!("{prefix}activation"), "Activation", &ys);
        let ys = match &self.se {
            Some(se) => se.forward_t(&ys, train),
            None => ys,
        };
        let ys = self.project.forward_t(&ys, train); // [N, out, H / s, W / s]
        if !c.has_skip() {
            return ys;
        }
        let ys = match &self.drop {
            Some(drop) => {
                let ys = drop.forward_t(&ys, train);
                trace::record(|| format!("{prefix}drop"), "Dropout", &ys);
                ys
            }
            None => ys,
        };
        let ys = add_owned(ys, xs);
        trace::record(|| format!("{prefix}add"), "Add", &ys);
        ys
    }
}
