//! EfficientNet-B0 … B7 as Keras 3 builds them (`keras.applications.EfficientNetB0..B7`).
//!
//! Reference: Tan & Le, *EfficientNet: Rethinking Model Scaling for Convolutional Neural
//! Networks*, ICML 2019; the Keras implementation `keras/src/applications/efficientnet.py`.
//!
//! The eight variants differ only by one row of [`EFFICIENTNET_SCALING`] (width and depth
//! coefficients, input resolution, top dropout) applied to the B0 block table
//! [`EFFICIENTNET_B0_STAGES`] with Keras' `round_filters` and `round_repeats`.
//!
//! # Input preprocessing
//!
//! Keras' model starts with `Rescaling(1/255)` and a `Normalization` layer (plus, with
//! ImageNet weights, a `Rescaling(1/sqrt(std))` that undoes a quirk of the original
//! weights). Here the model starts at the stem: that normalisation belongs to the data
//! pipeline, described by [`Model::input_spec`] ([`Preprocessing::imagenet`]: `(x / 255 -
//! mean) / std` with ImageNet's RGB statistics, which is what Keras computes with ImageNet
//! weights). This is also why Keras' total parameter counts are 7 higher than this
//! model's (the `Normalization` layer's mean, variance and count, none trainable); the
//! trainable counts are equal.
//!
//! # Padding
//!
//! Keras pads its stride-2 convolutions with `correct_pad`, whose result depends on whether
//! the Keras model was built for a known input size; [`EfficientNetConfig::padding`]
//! chooses ([`CorrectPad`]). The default, [`CorrectPad::KnownSize`], is Keras with an input
//! shape, as with the ImageNet top or any flattening head (the study's models).

use df_layers::trace::record;
use df_layers::{
    Activation, BatchNormConfig, ConvBnAct, ConvBnActConfig, CorrectPad, DenseHead,
    DenseHeadConfig, DenseLayerConfig, HeadInput, Initializer, MbConv, MbConvConfig, Padding,
};
use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::spec::{InputSpec, Model, Preprocessing, Top};
use crate::top_head::{
    builtin_family, check_input_size, config_builders, in_memory_format, TopLayer,
};

/// One row of EfficientNet's block table (Keras' `DEFAULT_BLOCKS_ARGS`): a stage of
/// `repeats` MBConv blocks, the first of which changes the width and applies the stride.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EfficientNetStage {
    /// Depthwise kernel size.
    pub kernel: i64,
    /// Blocks in the stage before depth scaling.
    pub repeats: i64,
    /// Input channels before width scaling.
    pub in_channels: i64,
    /// Output channels before width scaling.
    pub out_channels: i64,
    /// Expansion ratio.
    pub expand_ratio: i64,
    /// Stride of the stage's first block.
    pub stride: i64,
    /// Squeeze-and-excitation ratio (of the block's input channels).
    pub se_ratio: f64,
}

const fn stage(
    kernel: i64,
    repeats: i64,
    in_channels: i64,
    out_channels: i64,
    expand_ratio: i64,
    stride: i64,
) -> EfficientNetStage {
    EfficientNetStage {
        kernel,
        repeats,
        in_channels,
        out_channels,
        expand_ratio,
        stride,
        se_ratio: 0.25,
    }
}

/// EfficientNet-B0's seven stages, as Keras' `DEFAULT_BLOCKS_ARGS`.
pub const EFFICIENTNET_B0_STAGES: [EfficientNetStage; 7] = [
    stage(3, 1, 32, 16, 1, 1),
    stage(3, 2, 16, 24, 6, 2),
    stage(5, 2, 24, 40, 6, 2),
    stage(3, 3, 40, 80, 6, 2),
    stage(5, 3, 80, 112, 6, 1),
    stage(5, 4, 112, 192, 6, 2),
    stage(3, 1, 192, 320, 6, 1),
];

/// One row of the compound-scaling table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EfficientNetScaling {
    /// Registry name (`efficientnet_b0` …).
    pub name: &'static str,
    /// Width coefficient (channels).
    pub width: f64,
    /// Depth coefficient (blocks per stage).
    pub depth: f64,
    /// Default input resolution (square).
    pub resolution: i64,
    /// Dropout before the ImageNet classifier.
    pub dropout: f64,
}

const fn scaling(
    name: &'static str,
    width: f64,
    depth: f64,
    resolution: i64,
    dropout: f64,
) -> EfficientNetScaling {
    EfficientNetScaling {
        name,
        width,
        depth,
        resolution,
        dropout,
    }
}

/// B0 … B7, as Keras' `EfficientNetB0` … `EfficientNetB7` call `EfficientNet(...)`.
pub const EFFICIENTNET_SCALING: [EfficientNetScaling; 8] = [
    scaling("efficientnet_b0", 1.0, 1.0, 224, 0.2),
    scaling("efficientnet_b1", 1.0, 1.1, 240, 0.2),
    scaling("efficientnet_b2", 1.1, 1.2, 260, 0.3),
    scaling("efficientnet_b3", 1.2, 1.4, 300, 0.3),
    scaling("efficientnet_b4", 1.4, 1.8, 380, 0.4),
    scaling("efficientnet_b5", 1.6, 2.2, 456, 0.4),
    scaling("efficientnet_b6", 1.8, 2.6, 528, 0.5),
    scaling("efficientnet_b7", 2.0, 3.1, 600, 0.5),
];

/// Configuration of an [`EfficientNet`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EfficientNetConfig {
    /// Model name (the registry name for the presets).
    pub name: String,
    /// Width coefficient.
    pub width_coefficient: f64,
    /// Depth coefficient.
    pub depth_coefficient: f64,
    /// Input `[height, width]` (at least 32 each, as Keras requires).
    pub input_size: [i64; 2],
    /// Dropout before the ImageNet classifier (`top_dropout`); unused by other tops.
    pub dropout_rate: f64,
    /// Drop-path rate of the last block; block `b` of `n` gets `rate * b / n`.
    pub drop_connect_rate: f64,
    /// Channels are rounded to multiples of this (Keras `depth_divisor`).
    pub depth_divisor: i64,
    /// The unscaled block table.
    pub stages: Vec<EfficientNetStage>,
    /// Batch normalisation options (Keras defaults).
    pub batch_norm: BatchNormConfig,
    /// Padding of the stride-2 convolutions (see the module docs).
    pub padding: CorrectPad,
    /// What sits on top of `top_activation`.
    pub top: Top,
    /// The memory format the model computes in on the CPU; the input is converted once,
    /// before the first layer (default channels-last; see [`df_layers::MemoryFormat`]).
    #[serde(default = "crate::top_head::default_memory_format")]
    pub memory_format: df_layers::MemoryFormat,
}

impl Default for EfficientNetConfig {
    /// EfficientNet-B0 with the ImageNet top (Keras' `EfficientNetB0()` defaults).
    fn default() -> Self {
        Self::b0()
    }
}

config_builders!(EfficientNetConfig; dropout also sets dropout_rate);

builtin_family!(
    /// The EfficientNet family ([`EfficientNet`], B0 to B7).
    EfficientNetFamily,
    "efficientnet",
    EfficientNetConfig,
    EfficientNet::new
);

impl EfficientNetConfig {
    /// The preset `index` (0 for B0 … 7 for B7) from [`EFFICIENTNET_SCALING`], with
    /// Keras' defaults: ImageNet top with 1000 classes, drop-connect 0.2, divisor 8.
    ///
    /// # Errors
    /// `index > 7`.
    pub fn preset(index: usize) -> Result<Self> {
        let s = EFFICIENTNET_SCALING
            .get(index)
            .ok_or_else(|| Error::InvalidConfig {
                model: "efficientnet".into(),
                option: "preset",
                reason: format!("no EfficientNet-B{index}: presets are B0 to B7"),
            })?;
        Ok(Self::from_scaling(s))
    }

    fn from_scaling(s: &EfficientNetScaling) -> Self {
        Self {
            name: s.name.into(),
            width_coefficient: s.width,
            depth_coefficient: s.depth,
            input_size: [s.resolution; 2],
            dropout_rate: s.dropout,
            drop_connect_rate: 0.2,
            depth_divisor: 8,
            stages: EFFICIENTNET_B0_STAGES.to_vec(),
            batch_norm: BatchNormConfig::default(),
            padding: CorrectPad::KnownSize,
            top: Top::ImageNet { classes: 1000 },
            memory_format: crate::top_head::default_memory_format(),
        }
    }

    /// EfficientNet-B0 (224×224).
    pub fn b0() -> Self {
        Self::from_scaling(&EFFICIENTNET_SCALING[0])
    }
    /// EfficientNet-B1 (240×240).
    pub fn b1() -> Self {
        Self::from_scaling(&EFFICIENTNET_SCALING[1])
    }
    /// EfficientNet-B2 (260×260).
    pub fn b2() -> Self {
        Self::from_scaling(&EFFICIENTNET_SCALING[2])
    }
    /// EfficientNet-B3 (300×300).
    pub fn b3() -> Self {
        Self::from_scaling(&EFFICIENTNET_SCALING[3])
    }
    /// EfficientNet-B4 (380×380).
    pub fn b4() -> Self {
        Self::from_scaling(&EFFICIENTNET_SCALING[4])
    }
    /// EfficientNet-B5 (456×456).
    pub fn b5() -> Self {
        Self::from_scaling(&EFFICIENTNET_SCALING[5])
    }
    /// EfficientNet-B6 (528×528).
    pub fn b6() -> Self {
        Self::from_scaling(&EFFICIENTNET_SCALING[6])
    }
    /// EfficientNet-B7 (600×600), the study's final model.
    pub fn b7() -> Self {
        Self::from_scaling(&EFFICIENTNET_SCALING[7])
    }

    /// Sets the drop-connect (drop-path) rate.
    pub fn with_drop_connect(mut self, rate: f64) -> Self {
        self.drop_connect_rate = rate;
        self
    }
    /// Sets the stride-2 padding behaviour.
    pub fn with_padding(mut self, padding: CorrectPad) -> Self {
        self.padding = padding;
        self
    }

    /// Keras' `round_filters`: `filters * width` to the nearest multiple of the divisor
    /// (at least the divisor), one divisor more when that lost over 10%.
    pub fn round_filters(&self, filters: i64) -> i64 {
        let divisor = self.depth_divisor;
        let scaled = filters as f64 * self.width_coefficient;
        let mut rounded =
            divisor.max(((scaled + divisor as f64 / 2.0) as i64).div_euclid(divisor) * divisor);
        if (rounded as f64) < 0.9 * scaled {
            rounded += divisor;
        }
        rounded
    }

    /// Keras' `round_repeats`: `ceil(depth * repeats)`.
    pub fn round_repeats(&self, repeats: i64) -> i64 {
        (self.depth_coefficient * repeats as f64).ceil() as i64
    }

    /// Channels of the stem (`round_filters(32)`).
    pub fn stem_channels(&self) -> i64 {
        self.round_filters(32)
    }

    /// Channels of `top_conv` (`round_filters(1280)`).
    pub fn top_channels(&self) -> i64 {
        self.round_filters(1280)
    }

    /// Every MBConv block, in order, as Keras builds them: names `block{stage}{letter}_`,
    /// scaled widths and repeats, stride and width change on a stage's first block, and
    /// drop-path rate `drop_connect_rate * b / blocks` for the `b`-th of `blocks` blocks.
    pub fn block_configs(&self) -> Vec<MbConvConfig> {
        let total: i64 = self
            .stages
            .iter()
            .map(|s| self.round_repeats(s.repeats))
            .sum();
        let mut blocks = Vec::with_capacity(total.max(0) as usize);
        let mut b = 0;
        for (i, s) in self.stages.iter().enumerate() {
            let out = self.round_filters(s.out_channels);
            for j in 0..self.round_repeats(s.repeats) {
                let (in_channels, stride) = if j == 0 {
                    (self.round_filters(s.in_channels), s.stride)
                } else {
                    (out, 1)
                };
                let letter = char::from_u32('a' as u32 + j as u32).unwrap_or('?');
                let mut cfg = MbConvConfig::new(in_channels, out, s.kernel, stride, s.expand_ratio)
                    .with_se_ratio(s.se_ratio)
                    .with_drop_rate(self.drop_connect_rate * b as f64 / total as f64)
                    .with_padding(self.padding)
                    .with_prefix(format!("block{}{letter}_", i + 1));
                cfg.batch_norm = self.batch_norm;
                blocks.push(cfg);
                b += 1;
            }
        }
        blocks
    }

    /// The input the model expects: `input_size`, Keras' preprocessing for the family
    /// ([`Preprocessing::imagenet`]).
    pub fn input_spec(&self) -> InputSpec {
        InputSpec {
            height: self.input_size[0],
            width: self.input_size[1],
            preprocessing: Preprocessing::imagenet(),
        }
    }

    /// The `[C, H, W]` feature map of `top_activation` for the configured input size.
    pub fn feature_shape(&self) -> [i64; 3] {
        let side = |n: i64| {
            let mut n = self.padding.output_size(n, 3);
            for s in &self.stages {
                n = match s.stride {
                    1 => n,
                    2 => self.padding.output_size(n, s.kernel),
                    stride => (n + stride - 1) / stride,
                };
            }
            n
        };
        [
            self.top_channels(),
            side(self.input_size[0]),
            side(self.input_size[1]),
        ]
    }

    /// [`crate::family::Family::validate`].
    pub(crate) fn check(&self, _family: &str) -> Result<()> {
        self.validate()
    }

    fn validate(&self) -> Result<()> {
        let fail = |option, reason: String| {
            Err(Error::InvalidConfig {
                model: self.name.clone(),
                option,
                reason,
            })
        };
        for (option, v) in [
            ("width_coefficient", self.width_coefficient),
            ("depth_coefficient", self.depth_coefficient),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return fail(option, format!("must be positive and finite, got {v}"));
            }
        }
        check_input_size(&self.name, self.input_size, 32)?;
        if self.depth_divisor <= 0 {
            return fail(
                "depth_divisor",
                format!("must be positive, got {}", self.depth_divisor),
            );
        }
        for (option, v) in [
            ("dropout_rate", self.dropout_rate),
            ("drop_connect_rate", self.drop_connect_rate),
        ] {
            if !(0.0..1.0).contains(&v) {
                return fail(option, format!("must be in [0, 1), got {v}"));
            }
        }
        if self.stages.is_empty() {
            return fail("stages", "needs at least one stage".into());
        }
        if let Some(s) = self.stages.iter().find(|s| s.repeats <= 0) {
            return fail(
                "stages",
                format!("repeats must be positive, got {}", s.repeats),
            );
        }
        for (i, s) in self.stages.iter().enumerate() {
            for (what, v) in [
                ("stride", s.stride),
                ("kernel", s.kernel),
                ("in_channels", s.in_channels),
                ("out_channels", s.out_channels),
                ("expand_ratio", s.expand_ratio),
            ] {
                if v <= 0 {
                    return fail(
                        "stages",
                        format!("stage {}: {what} must be positive, got {v}", i + 1),
                    );
                }
            }
            if !(0.0..=1.0).contains(&s.se_ratio) {
                return fail(
                    "stages",
                    format!(
                        "stage {}: se_ratio must be in [0, 1], got {}",
                        i + 1,
                        s.se_ratio
                    ),
                );
            }
        }
        Ok(())
    }
}

/// Keras' EfficientNet classifier: `avg_pool` → `top_dropout` → `predictions`.
fn imagenet_head(feature_shape: [i64; 3], classes: i64, dropout: f64) -> DenseHeadConfig {
    DenseHeadConfig {
        input_shape: feature_shape,
        input: HeadInput::GlobalAvgPool,
        layers: vec![
            DenseLayerConfig::new("predictions", classes, Activation::Linear)
                .with_dropout_before(dropout)
                .with_kernel_init(Initializer::EFFICIENTNET_DENSE),
        ],
    }
}

/// Builds an [`EfficientNet`] (the house constructor shape; same as [`EfficientNet::new`]).
///
/// # Errors
/// As [`EfficientNet::new`].
pub fn efficientnet(p: &nn::Path<'_>, cfg: &EfficientNetConfig) -> Result<EfficientNet> {
    EfficientNet::new(p, cfg)
}

/// EfficientNet, Keras-exact: `stem_conv` (3×3/2) + `stem_bn` + swish, the MBConv blocks
/// of [`EfficientNetConfig::block_configs`], `top_conv` (1×1) + `top_bn` + swish, and the
/// configured [`Top`]. Variables carry Keras' layer names (`stem_conv`, `block1a_dwconv`,
/// `block6d_se_reduce`, `top_bn`, `predictions` …).
///
/// # Shapes
/// Input: preprocessed images `[N, 3, H, W]` ([`Model::input_spec`]). Output:
/// [`Top::Binary`] `[N, 1]` logits of "fake"; [`Top::ImageNet`] `[N, classes]` logits;
/// [`Top::Backbone`] the feature map `[N, C, H/32, W/32]` (rounded up;
/// [`EfficientNetConfig::feature_shape`]) or, pooled, `[N, C]`.
#[derive(Debug)]
pub struct EfficientNet {
    /// `stem_conv` + `stem_bn` + swish.
    pub stem: ConvBnAct,
    /// The MBConv blocks, in order.
    pub blocks: Vec<MbConv>,
    /// `top_conv` + `top_bn` + swish.
    pub top_conv: ConvBnAct,
    top: TopLayer,
    config: EfficientNetConfig,
}

impl EfficientNet {
    /// Builds the model's variables under `p`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for invalid coefficients, sizes or rates; the blocks' and
    /// head's own configuration errors.
    pub fn new(p: &nn::Path<'_>, cfg: &EfficientNetConfig) -> Result<Self> {
        cfg.validate()?;
        let stem = ConvBnActConfig::new(3, cfg.stem_channels(), 3)
            .with_stride(2)
            .with_padding(Padding::Valid)
            .with_batch_norm(cfg.batch_norm)
            .with_activation(Activation::Swish)
            .with_kernel_init(Initializer::EFFICIENTNET_CONV)
            .with_names("stem_conv", "stem_bn");
        let stem = ConvBnAct::new(p, &stem)?;
        let blocks = cfg
            .block_configs()
            .iter()
            .map(|b| MbConv::new(p, b))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let last = blocks
            .last()
            .map_or(cfg.stem_channels(), |b| b.config().out_channels);
        let top_conv = ConvBnActConfig::new(last, cfg.top_channels(), 1)
            .with_batch_norm(cfg.batch_norm)
            .with_activation(Activation::Swish)
            .with_kernel_init(Initializer::EFFICIENTNET_CONV)
            .with_names("top_conv", "top_bn");
        let top_conv = ConvBnAct::new(p, &top_conv)?;
        let features = cfg.feature_shape();
        let imagenet = |classes| imagenet_head(features, classes, cfg.dropout_rate);
        let top = TopLayer::new(p, &cfg.name, &cfg.top, features, Some(&imagenet))?;
        Ok(Self {
            stem,
            blocks,
            top_conv,
            top,
            config: cfg.clone(),
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &EfficientNetConfig {
        &self.config
    }

    /// The `top_activation` feature map, before the top.
    ///
    /// # Shapes
    /// `[N, 3, H, W]` → `[N, C, H', W']` ([`EfficientNetConfig::feature_shape`]).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let xs = in_memory_format(xs, self.config.memory_format);
        let xs = self.config.padding.pad(&xs, 3);
        record(|| "stem_conv_pad".into(), "ZeroPadding2D", &xs);
        let mut ys = self.stem.forward_t(&xs, train); // [N, 32·w, H/2, W/2]
        record(|| "stem_activation".into(), "Activation", &ys);
        for block in &self.blocks {
            ys = block.forward_t(&ys, train);
        }
        let ys = self.top_conv.forward_t(&ys, train); // [N, 1280·w, H/32, W/32]
        record(|| "top_activation".into(), "Activation", &ys);
        ys
    }
}

impl ModuleT for EfficientNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for EfficientNet {
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
        <EfficientNetFamily as crate::family::Family>::NAME
    }
    fn config_json(&self) -> Result<serde_json::Value> {
        crate::family::config_to_json(self.name(), &self.config)
    }

    fn head(&self) -> Option<&DenseHead> {
        self.top.head()
    }
}

// ---- Catalogue ---------------------------------------------------------------------

use crate::family::{configured, Family};
use crate::registry::{count, entry, imagenet_top, Catalogue, KerasParams, ModelInfo, Recipe};

macro_rules! efficientnet_entry {
    ($index:literal, $name:literal, $size:literal, $compared:literal, $with:expr, $without:expr) => {
        ModelInfo {
            name: $name,
            family: EfficientNetFamily::NAME,
            description: concat!(
                "EfficientNet-B",
                $index,
                " (Keras EfficientNetB",
                $index,
                ")"
            ),
            input_size: [$size, $size],
            min_input_size: 32,
            preprocessing: Preprocessing::imagenet(),
            keras_params: Some(KerasParams {
                with_top: $with,
                without_top: Some($without),
            }),
            keras_application: Some(concat!("EfficientNetB", $index)),
            // The study's B-series recipe; B0/B3/B5/B7 are among its compared models.
            study_recipe: Some(Recipe::loss_val_accuracy(1e-4, $compared)),
            gradcam_layer: "top_activation",
            default_top: imagenet_top,
            config: |o| configured::<EfficientNetFamily>(EfficientNetConfig::preset($index)?, o),
        }
    };
}

/// This file's catalogue rows and families (gathered by [`crate::registry`]).
pub(crate) const CATALOGUE: Catalogue = Catalogue {
    models: &[
        efficientnet_entry!(
            0,
            "efficientnet_b0",
            224,
            true,
            count(5_330_571, 5_288_548),
            count(4_049_571, 4_007_548)
        ),
        efficientnet_entry!(
            1,
            "efficientnet_b1",
            240,
            false,
            count(7_856_239, 7_794_184),
            count(6_575_239, 6_513_184)
        ),
        efficientnet_entry!(
            2,
            "efficientnet_b2",
            260,
            false,
            count(9_177_569, 9_109_994),
            count(7_768_569, 7_700_994)
        ),
        efficientnet_entry!(
            3,
            "efficientnet_b3",
            300,
            true,
            count(12_320_535, 12_233_232),
            count(10_783_535, 10_696_232)
        ),
        efficientnet_entry!(
            4,
            "efficientnet_b4",
            380,
            false,
            count(19_466_823, 19_341_616),
            count(17_673_823, 17_548_616)
        ),
        efficientnet_entry!(
            5,
            "efficientnet_b5",
            456,
            true,
            count(30_562_527, 30_389_784),
            count(28_513_527, 28_340_784)
        ),
        efficientnet_entry!(
            6,
            "efficientnet_b6",
            528,
            false,
            count(43_265_143, 43_040_704),
            count(40_960_143, 40_735_704)
        ),
        efficientnet_entry!(
            7,
            "efficientnet_b7",
            600,
            true,
            count(66_658_687, 66_347_960),
            count(64_097_687, 63_786_960)
        ),
    ],
    families: &[entry::<EfficientNetFamily>],
};
