//! ResNet v1 bottleneck blocks as Keras Applications builds them.
//!
//! Reference: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
//! Recognition", CVPR 2016; Keras 3 `keras/src/applications/resnet.py`
//! (`residual_block_v1`, `stack_residual_blocks_v1`). As there, every convolution has a
//! bias *and* is followed by batch normalisation with epsilon `1.001e-5`, and the stride
//! of a down-sampling block sits on its first 1×1 convolution (v1), not on the 3×3.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::activation::{add_owned, Activation};
use crate::conv::{path_name, BatchNormConfig, ConvBnAct, ConvBnActConfig, Padding};
use crate::error::{invalid, Result};
use crate::trace;

/// Keras ResNet's batch-norm epsilon.
pub const RESNET_BN_EPS: f64 = 1.001e-5;

/// Keras ResNet's batch normalisation: epsilon `1.001e-5`, momentum 0.99.
pub fn resnet_batch_norm() -> BatchNormConfig {
    BatchNormConfig::default().with_eps(RESNET_BN_EPS)
}

/// Configuration of an [`IdentityBlock`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdentityBlockConfig {
    /// Bottleneck width; the block's input and output have `4 * filters` channels.
    pub filters: i64,
    /// Kernel of the middle convolution (3 in ResNet50).
    pub kernel: i64,
    /// Batch normalisation after each convolution.
    pub batch_norm: BatchNormConfig,
    /// Keras name prefix (`conv2_block2`): layers are `{name}_1_conv`, `{name}_1_bn`, ...
    pub name: String,
}

impl Default for IdentityBlockConfig {
    /// `conv2_block2` of ResNet50: 64 filters (256 channels in and out), 3×3.
    fn default() -> Self {
        Self::new(64, "conv2_block2")
    }
}

impl IdentityBlockConfig {
    /// A block of bottleneck width `filters` named `name`, Keras ResNet defaults otherwise.
    pub fn new(filters: i64, name: impl Into<String>) -> Self {
        Self {
            filters,
            kernel: 3,
            batch_norm: resnet_batch_norm(),
            name: name.into(),
        }
    }

    /// Channels in and out, `4 * filters`.
    pub fn channels(&self) -> i64 {
        4 * self.filters
    }
}

/// Configuration of a [`ConvBlock`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvBlockConfig {
    /// Input channels.
    pub in_channels: i64,
    /// Bottleneck width; the output has `4 * filters` channels.
    pub filters: i64,
    /// Kernel of the middle convolution (3 in ResNet50).
    pub kernel: i64,
    /// Stride of the first 1×1 convolution and of the shortcut (2, or 1 for `conv2`).
    pub stride: i64,
    /// Batch normalisation after each convolution.
    pub batch_norm: BatchNormConfig,
    /// Keras name prefix (`conv3_block1`): layers are `{name}_0_conv` (shortcut),
    /// `{name}_1_conv`, `{name}_1_bn`, ...
    pub name: String,
}

impl Default for ConvBlockConfig {
    /// `conv3_block1` of ResNet50: 256 → 512 channels, bottleneck 128, stride 2.
    fn default() -> Self {
        Self::new(256, 128, 2, "conv3_block1")
    }
}

impl ConvBlockConfig {
    /// A block from `in_channels` with bottleneck width `filters` and `stride`, named
    /// `name`, Keras ResNet defaults otherwise.
    pub fn new(in_channels: i64, filters: i64, stride: i64, name: impl Into<String>) -> Self {
        Self {
            in_channels,
            filters,
            kernel: 3,
            stride,
            batch_norm: resnet_batch_norm(),
            name: name.into(),
        }
    }

    /// Output channels, `4 * filters`.
    pub fn out_channels(&self) -> i64 {
        4 * self.filters
    }
}

/// The residual branch shared by both blocks: 1×1 (stride `s`) → BN → ReLU →
/// k×k "same" → BN → ReLU → 1×1 → BN.
#[derive(Debug)]
struct Bottleneck {
    convs: [ConvBnAct; 3],
}

impl Bottleneck {
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: &nn::Path<'_>,
        block: &str,
        name: &str,
        in_channels: i64,
        filters: i64,
        kernel: i64,
        stride: i64,
        bn: &BatchNormConfig,
    ) -> Result<Self> {
        for (option, value) in [
            ("filters", filters),
            ("kernel", kernel),
            ("stride", stride),
            ("in_channels", in_channels),
        ] {
            if value <= 0 {
                return Err(invalid(
                    block,
                    option,
                    format!("must be positive, got {value}"),
                ));
            }
        }
        if name.is_empty() {
            return Err(invalid(block, "name", "must not be empty"));
        }
        let conv = |i: usize, cin: i64, cout: i64, k: i64, s: i64, pad, act| {
            // Keras builds these with `use_bias=True` *and* batch norm.
            let cfg = ConvBnActConfig::new(cin, cout, k)
                .with_stride(s)
                .with_padding(pad)
                .with_batch_norm(*bn)
                .with_bias(true)
                .with_activation(act)
                .with_names(format!("{name}_{i}_conv"), format!("{name}_{i}_bn"));
            ConvBnAct::new(p, &cfg)
        };
        Ok(Self {
            convs: [
                conv(
                    1,
                    in_channels,
                    filters,
                    1,
                    stride,
                    Padding::Valid,
                    Activation::Relu,
                )?,
                conv(
                    2,
                    filters,
                    filters,
                    kernel,
                    1,
                    Padding::Same,
                    Activation::Relu,
                )?,
                conv(
                    3,
                    filters,
                    4 * filters,
                    1,
                    1,
                    Padding::Valid,
                    Activation::Linear,
                )?,
            ],
        })
    }

    /// The branch of block `name` (its Keras name prefix, for the trace).
    fn forward_t(&self, xs: &Tensor, train: bool, name: &str) -> Tensor {
        let ys = self.convs[0].forward_t(xs, train);
        trace::record(|| format!("{name}_1_relu"), "Activation", &ys);
        let ys = self.convs[1].forward_t(&ys, train);
        trace::record(|| format!("{name}_2_relu"), "Activation", &ys);
        self.convs[2].forward_t(&ys, train)
    }
}

/// ResNet v1 bottleneck with an identity shortcut (Keras `residual_block_v1` with
/// `conv_shortcut=False`): `relu(x + bn(conv1x1(relu(bn(convkxk(relu(bn(conv1x1(x)))))))))`.
///
/// Variables: `{name}_{1,2,3}_conv.{weight,bias}` and `{name}_{1,2,3}_bn.*`.
///
/// # Shapes
/// `[N, 4·filters, H, W]` → `[N, 4·filters, H, W]`.
#[derive(Debug)]
pub struct IdentityBlock {
    residual: Bottleneck,
    config: IdentityBlockConfig,
}

impl IdentityBlock {
    /// Creates the block's variables under `p`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for non-positive sizes, an empty name or an invalid
    /// batch-norm configuration.
    pub fn new(p: &nn::Path<'_>, config: &IdentityBlockConfig) -> Result<Self> {
        let block = format!("{}/{}", path_name(p), config.name);
        let c = config;
        let residual = Bottleneck::new(
            p,
            &block,
            &c.name,
            c.channels(),
            c.filters,
            c.kernel,
            1,
            &c.batch_norm,
        )?;
        Ok(Self {
            residual,
            config: config.clone(),
        })
    }

    /// The configuration the block was built with.
    pub fn config(&self) -> &IdentityBlockConfig {
        &self.config
    }
}

impl ModuleT for IdentityBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let name = &self.config.name;
        let ys = add_owned(self.residual.forward_t(xs, train, name), xs);
        trace::record(|| format!("{name}_add"), "Add", &ys);
        let ys = Activation::Relu.apply_fresh(ys);
        trace::record(|| format!("{name}_out"), "Activation", &ys);
        ys
    }
}

/// ResNet v1 bottleneck with a projection shortcut (Keras `residual_block_v1` with
/// `conv_shortcut=True`): the shortcut is a 1×1 conv with the block's stride and BN
/// (`{name}_0_conv`, `{name}_0_bn`), the residual branch strides its first 1×1.
///
/// Variables: `{name}_{0,1,2,3}_conv.{weight,bias}` and `{name}_{0,1,2,3}_bn.*`.
///
/// # Shapes
/// `[N, in_channels, H, W]` → `[N, 4·filters, ceil(H / stride), ceil(W / stride)]`.
#[derive(Debug)]
pub struct ConvBlock {
    shortcut: ConvBnAct,
    residual: Bottleneck,
    config: ConvBlockConfig,
}

impl ConvBlock {
    /// Creates the block's variables under `p`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for non-positive sizes, an empty name or an invalid
    /// batch-norm configuration.
    pub fn new(p: &nn::Path<'_>, config: &ConvBlockConfig) -> Result<Self> {
        let block = format!("{}/{}", path_name(p), config.name);
        let c = config;
        let residual = Bottleneck::new(
            p,
            &block,
            &c.name,
            c.in_channels,
            c.filters,
            c.kernel,
            c.stride,
            &c.batch_norm,
        )?;
        let shortcut = ConvBnAct::new(
            p,
            &ConvBnActConfig::new(c.in_channels, c.out_channels(), 1)
                .with_stride(c.stride)
                .with_padding(Padding::Valid)
                .with_batch_norm(c.batch_norm)
                .with_bias(true)
                .with_names(format!("{}_0_conv", c.name), format!("{}_0_bn", c.name)),
        )?;
        Ok(Self {
            shortcut,
            residual,
            config: config.clone(),
        })
    }

    /// The configuration the block was built with.
    pub fn config(&self) -> &ConvBlockConfig {
        &self.config
    }
}

impl ModuleT for ConvBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let name = &self.config.name;
        let shortcut = self.shortcut.forward_t(xs, train);
        let ys = add_owned(self.residual.forward_t(xs, train, name), &shortcut);
        trace::record(|| format!("{name}_add"), "Add", &ys);
        let ys = Activation::Relu.apply_fresh(ys);
        trace::record(|| format!("{name}_out"), "Activation", &ys);
        ys
    }
}
