//! Xception as Keras 3 builds it (`keras.applications.Xception`), the FaceForensics++
//! baseline detector.
//!
//! Reference: Chollet, *Xception: Deep Learning with Depthwise Separable Convolutions*,
//! CVPR 2017; the Keras implementation `keras/src/applications/xception.py`.
//!
//! Input: 299×299 (at least 71×71) RGB scaled to `[-1, 1]` ([`Preprocessing::tf`]).
//!
//! # Variable names and Keras import
//!
//! Layers keep Keras' names: `block1_conv1`, `block1_conv1_bn` … `block14_sepconv2_bn`,
//! `predictions`. The four residual 1×1 convolutions and their batch norms, which Keras
//! leaves unnamed, are named as Keras names them in a fresh session (`conv2d` …
//! `conv2d_3`, `batch_normalization` … `batch_normalization_3`); in a file where they
//! carry other numbers the importer pairs them in creation order, checked by shape.

use df_layers::{
    Activation, BatchNorm, BatchNormConfig, ConvBnAct, ConvBnActConfig, DenseHead, DenseHeadConfig,
    DenseLayerConfig, HeadInput, MaxPool2d, MaxPool2dConfig, Padding, SeparableConv2d,
    SeparableConv2dConfig,
};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use crate::error::Result;
use crate::spec::{InputSpec, Model, Preprocessing, Top};
use crate::top_head::{
    builtin_family, check_input_size, config_builders, in_memory_format, TopLayer,
};

/// Configuration of an [`Xception`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct XceptionConfig {
    /// Model name (`xception`).
    pub name: String,
    /// Input `[height, width]` (at least 71 each, as Keras requires).
    pub input_size: [i64; 2],
    /// Number of middle-flow blocks (Keras: 8, `block5` … `block12`).
    pub middle_blocks: usize,
    /// Batch normalisation (Keras' defaults: epsilon 1e-3, momentum 0.99).
    pub batch_norm: BatchNormConfig,
    /// What sits on top of `block14_sepconv2_act`.
    pub top: Top,
    /// The memory format the model computes in on the CPU; the input is converted once,
    /// before the first layer (default channels-last; see [`df_layers::MemoryFormat`]).
    #[serde(default = "crate::top_head::default_memory_format")]
    pub memory_format: df_layers::MemoryFormat,
}

impl Default for XceptionConfig {
    /// Keras' `Xception()`: 299×299, ImageNet top with 1000 classes.
    fn default() -> Self {
        Self {
            name: "xception".into(),
            input_size: [299, 299],
            middle_blocks: 8,
            batch_norm: BatchNormConfig::default(),
            top: Top::ImageNet { classes: 1000 },
            memory_format: crate::top_head::default_memory_format(),
        }
    }
}

config_builders!(XceptionConfig);

builtin_family!(
    /// The Xception family ([`Xception`]).
    XceptionFamily,
    "xception",
    XceptionConfig,
    Xception::new
);

impl XceptionConfig {
    /// Channels of `block14_sepconv2`.
    pub const FEATURE_CHANNELS: i64 = 2048;

    /// Smallest input side Keras accepts.
    pub const MIN_INPUT_SIZE: i64 = 71;

    /// The input the model expects: `input_size`, Keras' preprocessing for the family
    /// ([`Preprocessing::tf`]).
    pub fn input_spec(&self) -> InputSpec {
        InputSpec {
            height: self.input_size[0],
            width: self.input_size[1],
            preprocessing: Preprocessing::tf(),
        }
    }

    /// The `[C, H, W]` feature map of `block14_sepconv2_act` for the configured input size.
    pub fn feature_shape(&self) -> [i64; 3] {
        let side = |n: i64| {
            let n = (n - 3).div_euclid(2) + 1 - 2; // block1: 3×3/2 valid, 3×3 valid
            (0..4).fold(n, |n, _| (n + 1) / 2) // block2, 3, 4, 13: "same" max-pool /2
        };
        [
            Self::FEATURE_CHANNELS,
            side(self.input_size[0]),
            side(self.input_size[1]),
        ]
    }

    /// [`crate::family::Family::validate`].
    pub(crate) fn check(&self, _family: &str) -> Result<()> {
        check_input_size(&self.name, self.input_size, Self::MIN_INPUT_SIZE)
    }
}

/// A separable convolution and its batch norm, with Keras' ReLU before (`{name}_act`,
/// the entry, middle and exit flows) or after (block 14).
#[derive(Debug)]
pub struct SepConvBn {
    /// ReLU before the convolution.
    pub relu_before: bool,
    /// The 3×3 separable convolution (`"same"`, no bias).
    pub conv: SeparableConv2d,
    /// Its batch norm (`{name}_bn`).
    pub bn: BatchNorm,
    /// ReLU after the batch norm.
    pub relu_after: bool,
}

impl SepConvBn {
    fn new(
        p: &nn::Path<'_>,
        name: &str,
        channels: [i64; 2],
        bn: &BatchNormConfig,
        relu: [bool; 2],
    ) -> Result<Self> {
        let cfg = SeparableConv2dConfig::new(channels[0], channels[1], 3, name)
            .with_padding(Padding::Same)
            .with_bias(false);
        Ok(Self {
            relu_before: relu[0],
            conv: SeparableConv2d::new(p, &cfg)?,
            bn: BatchNorm::new(&(p / format!("{name}_bn")), channels[1], bn)?,
            relu_after: relu[1],
        })
    }
}

impl ModuleT for SepConvBn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = if self.relu_before {
            self.conv.forward_t(&xs.relu(), train)
        } else {
            self.conv.forward_t(xs, train)
        };
        let ys = self.bn.forward_t(&ys, train);
        if self.relu_after {
            // Keras' `block14_sepconv{1,2}_act` (the second is the Grad-CAM layer).
            let ys = ys.relu();
            df_layers::trace::record(
                || format!("{}_act", self.conv.config().name),
                "Activation",
                &ys,
            );
            ys
        } else {
            ys
        }
    }
}

/// An Xception block: separable convolutions, then either a 3×3/2 `"same"` max-pool
/// added to a 1×1/2 convolution + batch norm of the block's input (blocks 2-4, 13), or
/// the block's input itself (the middle flow).
#[derive(Debug)]
pub struct XceptionBlock {
    /// The separable convolutions.
    pub convs: Vec<SepConvBn>,
    /// The pool and the strided 1×1 shortcut of a downsampling block.
    pub shortcut: Option<(MaxPool2d, ConvBnAct)>,
}

impl ModuleT for XceptionBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = self
            .convs
            .iter()
            .fold(xs.shallow_clone(), |ys, c| c.forward_t(&ys, train));
        match &self.shortcut {
            Some((pool, conv)) => pool.forward(&ys) + conv.forward_t(xs, train),
            None => ys + xs,
        }
    }
}

/// Builds an [`Xception`] (the house constructor shape; same as [`Xception::new`]).
///
/// # Errors
/// As [`Xception::new`].
pub fn xception(p: &nn::Path<'_>, cfg: &XceptionConfig) -> Result<Xception> {
    Xception::new(p, cfg)
}

/// Xception, Keras-exact: `block1` (3×3/2 conv 32 and 3×3 conv 64, `"valid"`, batch norm
/// and ReLU), the entry flow (`block2` … `block4`: separable convolutions to 128, 256,
/// 728 with strided 1×1 residual convolutions), the middle flow (8 blocks of three
/// ReLU → separable convolution 728 → batch norm, identity residuals), the exit flow
/// (`block13`: 728 → 1024 with a residual convolution; `block14`: separable convolutions
/// 1536 and 2048, each with batch norm and ReLU), then the configured [`Top`].
///
/// # Shapes
/// Input: preprocessed images `[N, 3, H, W]`, `H, W >= 71`. Output: [`Top::Binary`]
/// `[N, 1]` logits of "fake"; [`Top::ImageNet`] `[N, classes]` logits; [`Top::Backbone`]
/// `[N, 2048, 10, 10]` at 299×299 ([`XceptionConfig::feature_shape`]) or, pooled,
/// `[N, 2048]`.
#[derive(Debug)]
pub struct Xception {
    /// `block1_conv1`, `block1_conv2` with their batch norms and ReLUs.
    pub stem: [ConvBnAct; 2],
    /// `block2` … `block13`.
    pub blocks: Vec<XceptionBlock>,
    /// `block14_sepconv1`, `block14_sepconv2`.
    pub exit: [SepConvBn; 2],
    top: TopLayer,
    config: XceptionConfig,
}

impl Xception {
    /// Builds the model's variables under `p`, in Keras' creation order.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for an input under 71×71; the layers' and head's
    /// own configuration errors.
    pub fn new(p: &nn::Path<'_>, cfg: &XceptionConfig) -> Result<Self> {
        cfg.check("xception")?;
        let bn = cfg.batch_norm;
        let conv = |i: i64, o: i64, stride: i64, name: &str| {
            let c = ConvBnActConfig::new(i, o, 3)
                .with_stride(stride)
                .with_padding(Padding::Valid)
                .with_bias(false)
                .with_batch_norm(bn)
                .with_activation(Activation::Relu)
                .with_names(name, format!("{name}_bn"));
            ConvBnAct::new(p, &c)
        };
        let stem = [
            conv(3, 32, 2, "block1_conv1")?,
            conv(32, 64, 1, "block1_conv2")?,
        ];
        let mut blocks = Vec::new();
        let mut residuals = 0;
        let mut downsampling = |block: usize, channels: [i64; 3], first_relu: bool| {
            // Keras creates the shortcut (convolution and batch norm) first.
            let suffix = |k: usize| {
                if k == 0 {
                    String::new()
                } else {
                    format!("_{k}")
                }
            };
            let (conv_name, bn_name) = (
                format!("conv2d{}", suffix(residuals)),
                format!("batch_normalization{}", suffix(residuals)),
            );
            residuals += 1;
            let shortcut = ConvBnActConfig::new(channels[0], channels[2], 1)
                .with_stride(2)
                .with_padding(Padding::Same)
                .with_bias(false)
                .with_batch_norm(bn)
                .with_names(conv_name, bn_name);
            let shortcut = ConvBnAct::new(p, &shortcut)?;
            let convs = vec![
                SepConvBn::new(
                    p,
                    &format!("block{block}_sepconv1"),
                    [channels[0], channels[1]],
                    &bn,
                    [first_relu, false],
                )?,
                SepConvBn::new(
                    p,
                    &format!("block{block}_sepconv2"),
                    [channels[1], channels[2]],
                    &bn,
                    [true, false],
                )?,
            ];
            let pool = MaxPool2d::new(&MaxPool2dConfig::new(3, Padding::Same).with_stride(2))?;
            Ok::<_, crate::Error>(XceptionBlock {
                convs,
                shortcut: Some((pool, shortcut)),
            })
        };
        blocks.push(downsampling(2, [64, 128, 128], false)?);
        blocks.push(downsampling(3, [128, 256, 256], true)?);
        blocks.push(downsampling(4, [256, 728, 728], true)?);
        for i in 0..cfg.middle_blocks {
            let block = 5 + i;
            let convs = (1..=3)
                .map(|k| {
                    SepConvBn::new(
                        p,
                        &format!("block{block}_sepconv{k}"),
                        [728, 728],
                        &bn,
                        [true, false],
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            blocks.push(XceptionBlock {
                convs,
                shortcut: None,
            });
        }
        blocks.push(downsampling(13, [728, 728, 1024], true)?);
        let exit = [
            SepConvBn::new(p, "block14_sepconv1", [1024, 1536], &bn, [false, true])?,
            SepConvBn::new(
                p,
                "block14_sepconv2",
                [1536, XceptionConfig::FEATURE_CHANNELS],
                &bn,
                [false, true],
            )?,
        ];
        let features = cfg.feature_shape();
        // Keras' classifier: `avg_pool` → `predictions` (no dropout).
        let imagenet = |classes| DenseHeadConfig {
            input_shape: features,
            input: HeadInput::GlobalAvgPool,
            layers: vec![DenseLayerConfig::new(
                "predictions",
                classes,
                Activation::Linear,
            )],
        };
        let top = TopLayer::new(p, &cfg.name, &cfg.top, features, Some(&imagenet))?;
        Ok(Self {
            stem,
            blocks,
            exit,
            top,
            config: cfg.clone(),
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &XceptionConfig {
        &self.config
    }

    /// The `block14_sepconv2_act` feature map, before the top.
    ///
    /// # Shapes
    /// `[N, 3, H, W]` → `[N, 2048, H', W']` ([`XceptionConfig::feature_shape`]).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let xs = in_memory_format(xs, self.config.memory_format);
        let ys = self
            .stem
            .iter()
            .fold(xs, |ys, layer| layer.forward_t(&ys, train));
        let ys = self
            .blocks
            .iter()
            .fold(ys, |ys, block| block.forward_t(&ys, train));
        self.exit
            .iter()
            .fold(ys, |ys, layer| layer.forward_t(&ys, train))
    }
}

impl ModuleT for Xception {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for Xception {
    fn forward_features(&self, xs: &Tensor, train: bool) -> Tensor {
        self.features_t(xs, train)
    }

    fn forward_head(&self, features: &Tensor, train: bool) -> Tensor {
        self.top.forward_t(features, train)
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    fn input_spec(&self) -> InputSpec {
        self.config.input_spec()
    }

    fn family(&self) -> &str {
        <XceptionFamily as crate::family::Family>::NAME
    }

    fn config_json(&self) -> Result<serde_json::Value> {
        crate::family::config_to_json(self.name(), &self.config)
    }

    fn head(&self) -> Option<&DenseHead> {
        self.top.head()
    }
}

// ---- Catalogue ----------------------------------------------------------------------

use crate::family::{configured, Family};
use crate::registry::{count, entry, imagenet_top, Catalogue, KerasParams, ModelInfo};

/// This file's catalogue rows and families (gathered by [`crate::registry`]). Parameter
/// counts: Keras 3.15 `keras.applications.Xception(weights=None)`, checked against
/// `scripts/fixtures/keras_init.py`'s `params.json` by the tests.
pub(crate) const CATALOGUE: Catalogue = Catalogue {
    models: &[ModelInfo {
        name: "xception",
        family: XceptionFamily::NAME,
        description: "Xception (Chollet 2017; Keras Xception), the FaceForensics++ baseline",
        input_size: [299, 299],
        min_input_size: XceptionConfig::MIN_INPUT_SIZE,
        preprocessing: Preprocessing::tf(),
        keras_params: Some(KerasParams {
            with_top: count(22_910_480, 22_855_952),
            without_top: Some(count(20_861_480, 20_806_952)),
        }),
        keras_application: Some("Xception"),
        study_recipe: None,
        gradcam_layer: "block14_sepconv2_act",
        default_top: imagenet_top,
        config: |o| configured::<XceptionFamily>(XceptionConfig::default(), o),
    }],
    families: &[entry::<XceptionFamily>],
};
