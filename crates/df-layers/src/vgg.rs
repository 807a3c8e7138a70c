//! VGG stages.
//!
//! Reference: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for
//! Large-Scale Image Recognition", ICLR 2015 (configurations C and D, Table 1), and Keras 3
//! `keras/src/applications/vgg16.py` for the layer names and options.

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use crate::activation::Activation;
use crate::conv::{path_name, ConvBnAct, ConvBnActConfig, Padding};
use crate::error::{invalid, Result};
use crate::pool::{MaxPool2d, MaxPool2dConfig};
use crate::trace;

/// Configuration of a [`VggStage`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VggStageConfig {
    /// The stage's number `i` in the network (1-based), used in the names
    /// `block{i}_conv{j}` and `block{i}_pool`.
    pub index: usize,
    /// Input channels.
    pub in_channels: i64,
    /// Output channels of every convolution of the stage.
    pub out_channels: i64,
    /// Number of 3×3 convolutions.
    pub convs: usize,
    /// Close the stage with a 1×1 convolution (VGG configuration C).
    pub pointwise: bool,
}

impl Default for VggStageConfig {
    /// VGG16's first stage: two 3×3 convolutions 3 → 64.
    fn default() -> Self {
        Self::new(1, 3, 64, 2)
    }
}

impl VggStageConfig {
    /// Stage `index` with `convs` 3×3 convolutions from `in_channels` to `out_channels`.
    pub fn new(index: usize, in_channels: i64, out_channels: i64, convs: usize) -> Self {
        Self {
            index,
            in_channels,
            out_channels,
            convs,
            pointwise: false,
        }
    }

    /// Adds (or removes) the closing 1×1 convolution of configuration C.
    pub fn with_pointwise(mut self, pointwise: bool) -> Self {
        self.pointwise = pointwise;
        self
    }

    /// Keras name of the `j`-th (1-based) convolution, `block{i}_conv{j}`.
    pub fn conv_name(&self, j: usize) -> String {
        format!("block{}_conv{j}", self.index)
    }

    /// Keras name of the pooling layer, `block{i}_pool`.
    pub fn pool_name(&self) -> String {
        format!("block{}_pool", self.index)
    }
}

/// A VGG stage: `convs` 3×3 convolutions (bias, ReLU, `"same"`), optionally a 1×1
/// convolution (bias, ReLU) as in configuration C, then a 2×2 max-pool with stride 2
/// (`"valid"`, so odd sizes lose their last row and column, as in Keras).
///
/// Variables: `block{i}_conv{j}.weight` and `.bias` for `j = 1..=convs` (`+ 1` for the
/// 1×1 convolution, which is named like the others).
///
/// # Shapes
/// `[N, in_channels, H, W]` → `[N, out_channels, floor(H / 2), floor(W / 2)]`.
#[derive(Debug)]
pub struct VggStage {
    convs: Vec<ConvBnAct>,
    pool: MaxPool2d,
    config: VggStageConfig,
}

impl VggStage {
    /// Creates the stage's convolutions under `p`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for non-positive channels, an index of 0, or a
    /// stage without any convolution.
    pub fn new(p: &nn::Path<'_>, config: &VggStageConfig) -> Result<Self> {
        let c = config;
        let block = format!("{}/block{}", path_name(p), c.index);
        if c.index == 0 {
            return Err(invalid(&block, "index", "stages are numbered from 1"));
        }
        if c.convs == 0 && !c.pointwise {
            return Err(invalid(&block, "convs", "a stage needs a convolution"));
        }
        for (option, value) in [
            ("in_channels", c.in_channels),
            ("out_channels", c.out_channels),
        ] {
            if value <= 0 {
                return Err(invalid(
                    &block,
                    option,
                    format!("must be positive, got {value}"),
                ));
            }
        }
        let kernels = std::iter::repeat_n(3, c.convs).chain(c.pointwise.then_some(1));
        let mut convs = Vec::with_capacity(c.convs + 1);
        let mut in_channels = c.in_channels;
        for (j, k) in kernels.enumerate() {
            let cfg = ConvBnActConfig::new(in_channels, c.out_channels, k)
                .with_padding(Padding::Same)
                .with_activation(Activation::Relu)
                .with_names(c.conv_name(j + 1), "");
            convs.push(ConvBnAct::new(p, &cfg)?);
            in_channels = c.out_channels;
        }
        let pool = MaxPool2d::new(&MaxPool2dConfig::new(2, Padding::Valid))?;
        Ok(Self {
            convs,
            pool,
            config: config.clone(),
        })
    }

    /// The configuration the stage was built with.
    pub fn config(&self) -> &VggStageConfig {
        &self.config
    }

    /// The stage's convolutions without its pool: the output of `block{i}_conv{last}`
    /// (what a Grad-CAM of the last stage explains). `forward_t` is
    /// [`VggStage::pool`] of it.
    pub fn forward_convs(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut ys = xs.shallow_clone();
        for conv in &self.convs {
            ys = conv.forward_t(&ys, train);
        }
        ys
    }

    /// The stage's closing 2×2 max pool (`block{i}_pool`) on the output of
    /// [`VggStage::forward_convs`].
    pub fn pool(&self, ys: &Tensor) -> Tensor {
        let ys = self.pool.forward(ys);
        trace::record(|| self.config.pool_name(), "MaxPooling2D", &ys);
        ys
    }
}

impl ModuleT for VggStage {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.pool(&self.forward_convs(xs, train))
    }
}
