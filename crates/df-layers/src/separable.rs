//! Keras' `SeparableConv2D`: a depthwise convolution followed by a pointwise (1×1) one.
//!
//! Keras (and TensorFlow's `separable_conv2d`) apply the stride, the dilation and the
//! padding to the depthwise step; the pointwise step is a plain 1×1 convolution with the
//! bias. `"same"` padding follows TensorFlow's split ([`Padding`]), asymmetric for even or
//! strided cases.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::activation::Activation;
use crate::conv::{path_name, Padding};
use crate::error::{invalid, Result};
use crate::init::{conv_fans, Initializer};
use crate::trace;

/// Configuration of a [`SeparableConv2d`] (Keras `SeparableConv2D`).
///
/// The defaults are Keras' own: stride 1, dilation 1, depth multiplier 1, `"valid"`
/// padding, a bias, no activation, `glorot_uniform` kernels.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeparableConv2dConfig {
    /// Input channels `C`.
    pub in_channels: i64,
    /// Output channels (Keras `filters`).
    pub out_channels: i64,
    /// Depthwise kernel `[height, width]` (Keras `kernel_size`).
    pub kernel: [i64; 2],
    /// Stride of the depthwise step (both dimensions).
    pub stride: i64,
    /// Dilation rate of the depthwise step (both dimensions).
    pub dilation: i64,
    /// Depthwise channels per input channel `M` (Keras `depth_multiplier`): the pointwise
    /// step sees `C·M` channels.
    pub depth_multiplier: i64,
    /// Learn a bias, added after the pointwise step (Keras `use_bias`).
    pub bias: bool,
    /// Keras padding mode of the depthwise step.
    pub padding: Padding,
    /// Activation after the bias (Keras `activation`).
    pub activation: Activation,
    /// Variable name of the layer under the block's path (its Keras layer name,
    /// `block2_sepconv1`).
    pub name: String,
    /// How the depthwise kernel is initialised (Keras `depthwise_initializer`).
    #[serde(default)]
    pub depthwise_init: Initializer,
    /// How the pointwise kernel is initialised (Keras `pointwise_initializer`).
    #[serde(default)]
    pub pointwise_init: Initializer,
}

impl Default for SeparableConv2dConfig {
    fn default() -> Self {
        Self {
            in_channels: 3,
            out_channels: 8,
            kernel: [3, 3],
            stride: 1,
            dilation: 1,
            depth_multiplier: 1,
            bias: true,
            padding: Padding::Valid,
            activation: Activation::Linear,
            name: "separable_conv2d".into(),
            depthwise_init: Initializer::GlorotUniform,
            pointwise_init: Initializer::GlorotUniform,
        }
    }
}

impl SeparableConv2dConfig {
    /// A `k`×`k` separable convolution from `in_channels` to `out_channels` named `name`,
    /// Keras' defaults otherwise (stride 1, depth multiplier 1, `"valid"`, bias, linear).
    pub fn new(in_channels: i64, out_channels: i64, k: i64, name: impl Into<String>) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel: [k, k],
            name: name.into(),
            ..Default::default()
        }
    }

    /// Sets the kernel `[height, width]`.
    pub fn with_kernel(mut self, kernel: [i64; 2]) -> Self {
        self.kernel = kernel;
        self
    }
    /// Sets the stride.
    pub fn with_stride(mut self, stride: i64) -> Self {
        self.stride = stride;
        self
    }
    /// Sets the dilation rate.
    pub fn with_dilation(mut self, dilation: i64) -> Self {
        self.dilation = dilation;
        self
    }
    /// Sets the depth multiplier.
    pub fn with_depth_multiplier(mut self, depth_multiplier: i64) -> Self {
        self.depth_multiplier = depth_multiplier;
        self
    }
    /// Turns the bias on or off.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    /// Sets the padding mode.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    /// Sets the activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
    /// Sets both kernel initialisers.
    pub fn with_init(mut self, depthwise: Initializer, pointwise: Initializer) -> Self {
        self.depthwise_init = depthwise;
        self.pointwise_init = pointwise;
        self
    }

    /// Channels between the two steps, `in_channels · depth_multiplier`.
    pub fn depthwise_channels(&self) -> i64 {
        self.in_channels.saturating_mul(self.depth_multiplier)
    }

    /// Values of the layer's variables, as Keras' `count_params()` counts them:
    /// `kh·kw·C·M + C·M·out (+ out with a bias)`.
    pub fn param_count(&self) -> i64 {
        let mid = self.depthwise_channels();
        mid * self.kernel[0] * self.kernel[1]
            + mid * self.out_channels
            + if self.bias { self.out_channels } else { 0 }
    }

    fn validate(&self, block: &str) -> Result<()> {
        let positive = [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("kernel", self.kernel[0].min(self.kernel[1])),
            ("stride", self.stride),
            ("dilation", self.dilation),
            ("depth_multiplier", self.depth_multiplier),
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
        if self
            .in_channels
            .checked_mul(self.depth_multiplier)
            .is_none()
        {
            return Err(invalid(
                block,
                "depth_multiplier",
                format!(
                    "{} input channels times {} overflow",
                    self.in_channels, self.depth_multiplier
                ),
            ));
        }
        if self.name.is_empty() {
            return Err(invalid(block, "name", "must not be empty"));
        }
        Ok(())
    }
}

/// Keras `SeparableConv2D`: depthwise convolution (stride, dilation, padding, depth
/// multiplier) → pointwise 1×1 convolution → bias → activation.
///
/// Variables, under `{name}` (the Keras layer name), so that Keras files import by name:
/// `depthwise_weight` `[C·M, 1, kh, kw]` (Keras `depthwise_kernel` `(kh, kw, C, M)`,
/// output channel `c·M + m`), `pointwise_weight` `[out, C·M, 1, 1]` (Keras
/// `pointwise_kernel` `(1, 1, C·M, out)`) and `bias` `[out]` when `bias`.
///
/// # Shapes
/// `[N, C, H, W]` → `[N, out, H', W']` with `H' = ceil(H / stride)` for `"same"` and
/// `H' = floor((H - dilation · (kh - 1) - 1) / stride) + 1` for `"valid"`.
///
/// ```
/// # mod deepfake { pub mod layers { pub use df_layers::*; } }
/// use deepfake::layers::{Padding, SeparableConv2d, SeparableConv2dConfig};
/// use tch::{nn, nn::ModuleT, Device, Kind, Tensor};
///
/// # fn main() -> deepfake::layers::Result<()> {
/// let vs = nn::VarStore::new(Device::Cpu);
/// let cfg = SeparableConv2dConfig::new(64, 128, 3, "block2_sepconv1")
///     .with_padding(Padding::Same)
///     .with_bias(false);
/// let sep = SeparableConv2d::new(&vs.root(), &cfg)?;
/// let y = sep.forward_t(&Tensor::zeros([1, 64, 10, 10], (Kind::Float, Device::Cpu)), false);
/// assert_eq!(y.size(), [1, 128, 10, 10]);
/// assert_eq!(cfg.param_count(), 64 * 9 + 64 * 128); // Keras' count_params()
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SeparableConv2d {
    /// The depthwise kernel `[C·M, 1, kh, kw]`.
    pub depthwise_weight: Tensor,
    /// The pointwise kernel `[out, C·M, 1, 1]`.
    pub pointwise_weight: Tensor,
    /// The bias `[out]`.
    pub bias: Option<Tensor>,
    config: SeparableConv2dConfig,
}

impl SeparableConv2d {
    /// Creates the layer's variables under `p / config.name`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the field for non-positive sizes, strides,
    /// dilations or depth multipliers, or an empty name; [`crate::Error::DuplicateName`]
    /// when a layer of that name exists on `p` already.
    pub fn new(p: &nn::Path<'_>, config: &SeparableConv2dConfig) -> Result<Self> {
        let block = format!("{}/{}", path_name(p), config.name);
        config.validate(&block)?;
        let c = config;
        let mid = c.depthwise_channels();
        let q = p / c.name.as_str();
        crate::error::claim(&q, &["depthwise_weight", "pointwise_weight", "bias"])?;
        let dw_dims = [mid, 1, c.kernel[0], c.kernel[1]];
        let depthwise_weight = c.depthwise_init.variable(
            &q,
            "depthwise_weight",
            &dw_dims,
            conv_fans(dw_dims, c.in_channels),
        );
        let pw_dims = [c.out_channels, mid, 1, 1];
        let pointwise_weight =
            c.pointwise_init
                .variable(&q, "pointwise_weight", &pw_dims, conv_fans(pw_dims, 1));
        let bias = c.bias.then(|| q.zeros("bias", &[c.out_channels]));
        Ok(Self {
            depthwise_weight,
            pointwise_weight,
            bias,
            config: config.clone(),
        })
    }

    /// The configuration the layer was built with.
    pub fn config(&self) -> &SeparableConv2dConfig {
        &self.config
    }

    /// The depthwise step alone: `[N, C, H, W]` → `[N, C·M, H', W']`.
    pub fn depthwise(&self, xs: &Tensor) -> Tensor {
        let c = &self.config;
        let (s, d) = ([c.stride; 2], [c.dilation; 2]);
        let (xs, pad) = c.padding.apply(xs, c.kernel, s, d, 0.0);
        xs.conv2d(
            &self.depthwise_weight,
            None::<&Tensor>,
            s,
            pad,
            d,
            c.in_channels,
        )
    }
}

impl ModuleT for SeparableConv2d {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let ys = self.depthwise(xs).conv2d(
            &self.pointwise_weight,
            self.bias.as_ref(),
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        );
        trace::record(|| self.config.name.clone(), "SeparableConv2D", &ys);
        self.config.activation.apply_fresh(ys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn invalid_configs_name_the_field() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cases = [
            (
                SeparableConv2dConfig::new(3, 8, 3, "s").with_depth_multiplier(0),
                "depth_multiplier",
            ),
            (SeparableConv2dConfig::new(0, 8, 3, "s"), "in_channels"),
            (SeparableConv2dConfig::new(3, -1, 3, "s"), "out_channels"),
            (
                SeparableConv2dConfig::new(3, 8, 3, "s").with_stride(0),
                "stride",
            ),
            (
                SeparableConv2dConfig::new(3, 8, 3, "s").with_kernel([3, 0]),
                "kernel",
            ),
            (
                SeparableConv2dConfig::new(3, 8, 3, "s").with_dilation(0),
                "dilation",
            ),
            (
                SeparableConv2dConfig::new(i64::MAX / 2, 8, 3, "s").with_depth_multiplier(3),
                "depth_multiplier",
            ),
            (SeparableConv2dConfig::new(3, 8, 3, ""), "name"),
        ];
        for (config, field) in cases {
            let err = SeparableConv2d::new(&vs.root(), &config).expect_err("invalid");
            match &err {
                crate::Error::InvalidConfig { option, .. } => {
                    assert_eq!(*option, field, "{err}")
                }
                other => panic!("{field}: {other}"),
            }
        }
        assert!(vs.variables().is_empty(), "nothing created");
        SeparableConv2d::new(&vs.root(), &SeparableConv2dConfig::default()).expect("default");
        let err = SeparableConv2d::new(&vs.root(), &SeparableConv2dConfig::default())
            .expect_err("same name twice");
        assert!(matches!(err, crate::Error::DuplicateName { .. }), "{err}");
    }

    /// Keras' fans: depthwise `(kh, kw, C, M)` → `fan_in = kh·kw·C`, `fan_out = kh·kw·M`;
    /// pointwise `(1, 1, C·M, out)` → `(C·M, out)`. The glorot-uniform limits follow.
    #[test]
    fn kernels_are_drawn_with_keras_fans() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SeparableConv2dConfig::new(16, 32, 3, "sep").with_depth_multiplier(2);
        let sep = SeparableConv2d::new(&vs.root(), &cfg).expect("valid");
        let dw_limit = (6.0f64 / (9.0 * 16.0 + 9.0 * 2.0)).sqrt();
        let pw_limit = (6.0f64 / (32.0 + 32.0)).sqrt();
        for (t, limit) in [
            (&sep.depthwise_weight, dw_limit),
            (&sep.pointwise_weight, pw_limit),
        ] {
            let max = t.abs().max().double_value(&[]);
            assert!(max <= limit && max > 0.9 * limit, "{max} vs {limit}");
        }
        assert!(sep
            .bias
            .as_ref()
            .expect("bias")
            .equal(&Tensor::zeros([32], (Kind::Float, Device::Cpu))));
        assert_eq!(
            crate::util::param_count(&vs).total,
            cfg.param_count(),
            "the config's count"
        );
    }
}
