//! ResNet v1 (ResNet50, ResNet101, ResNet152), as Keras Applications builds it.
//!
//! Reference: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
//! Recognition", CVPR 2016; Keras 3 `keras/src/applications/resnet.py` (`ResNet`,
//! `ResNet50`, `ResNet101`, `ResNet152`, `stack_residual_blocks_v1`), whose layer names
//! the variables carry: `conv1_conv`, `conv1_bn`, `conv2_block1_0_conv` ...
//! `conv5_block3_3_bn`, `predictions`. The three depths differ only in how many blocks
//! stages 3 and 4 have.
//! The stem is Keras' `ZeroPadding2D(3)` → 7×7 stride-2 `"valid"` conv (with bias) → BN
//! (epsilon 1.001e-5) → ReLU → `ZeroPadding2D(1)` → 3×3 stride-2 `"valid"` max pool; the
//! explicit padding is not the same as `"same"` padding for even inputs, so it is kept.

use df_layers::trace::record;
use df_layers::{
    resnet_batch_norm, Activation, ConvBlock, ConvBlockConfig, ConvBnAct, ConvBnActConfig,
    DenseHead, DenseHeadConfig, DenseLayerConfig, HeadInput, IdentityBlock, IdentityBlockConfig,
    MaxPool2d, MaxPool2dConfig, Padding,
};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use crate::error::Result;
use crate::spec::{InputSpec, Model, Preprocessing, Top};
use crate::top_head::{
    builtin_family, check_input_size, config_builders, in_memory_format, TopLayer,
};

/// The stages: Keras stack name, bottleneck width, stride of the first block.
const STAGES: [(&str, i64, i64); 4] = [
    ("conv2", 64, 1),
    ("conv3", 128, 2),
    ("conv4", 256, 2),
    ("conv5", 512, 2),
];
/// Blocks per stage for each depth Keras ships.
const DEPTHS: [(u32, [usize; 4]); 3] = [
    (50, [3, 4, 6, 3]),
    (101, [3, 4, 23, 3]),
    (152, [3, 8, 36, 3]),
];
/// Channels of the last feature map.
const FEATURES: i64 = 2048;
/// Keras' smallest input for the ResNets.
const MIN_SIZE: i64 = 32;

/// Configuration of a [`ResNet`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResNetConfig {
    /// 50, 101 or 152 (Keras `ResNet50`, `ResNet101`, `ResNet152`); configurations stored
    /// before the option existed are ResNet50.
    #[serde(default = "default_depth")]
    pub depth: u32,
    /// Input `[height, width]`, at least 32×32 (224×224 for ImageNet weights).
    pub input_size: [i64; 2],
    /// The top: Keras' ImageNet classifier (global average pooling → `predictions`), a
    /// backbone, or a binary head.
    pub top: Top,
    /// The memory format the model computes in on the CPU; the input is converted once,
    /// before the first layer (default channels-last; see [`df_layers::MemoryFormat`]).
    #[serde(default = "crate::top_head::default_memory_format")]
    pub memory_format: df_layers::MemoryFormat,
}

impl Default for ResNetConfig {
    fn default() -> Self {
        Self::imagenet()
    }
}

config_builders!(ResNetConfig);

fn default_depth() -> u32 {
    50
}

builtin_family!(
    /// The ResNet v1 family ([`ResNet`]: ResNet50, ResNet101, ResNet152).
    ResNetFamily,
    "resnet",
    ResNetConfig,
    ResNet::new
);

impl ResNetConfig {
    /// Keras' `ResNet50()`: 224×224 input, 1000-class ImageNet top (25,636,712
    /// parameters, 25,583,592 trainable).
    pub fn imagenet() -> Self {
        Self {
            depth: 50,
            input_size: [224, 224],
            top: Top::ImageNet { classes: 1000 },
            memory_format: crate::top_head::default_memory_format(),
        }
    }

    /// Keras' `ResNet50(include_top=False, pooling=...)` at 224×224 (23,587,712
    /// parameters, 23,534,592 trainable).
    pub fn backbone(pooling: HeadInput) -> Self {
        Self::imagenet().with_top(Top::Backbone { pooling })
    }

    /// Keras' `ResNet101()` (44,707,176 parameters with the ImageNet top).
    pub fn resnet101() -> Self {
        Self::imagenet().with_depth(101)
    }

    /// Keras' `ResNet152()` (60,419,944 parameters with the ImageNet top).
    pub fn resnet152() -> Self {
        Self::imagenet().with_depth(152)
    }

    /// Sets the depth (50, 101 or 152; [`ResNet::new`] refuses others).
    pub fn with_depth(mut self, depth: u32) -> Self {
        self.depth = depth;
        self
    }

    /// The registry name of the model: `resnet50`, `resnet101`, `resnet152`.
    pub fn model_name(&self) -> String {
        format!("resnet{}", self.depth)
    }

    /// Blocks per stage, or an error naming the depth.
    fn blocks_per_stage(&self) -> Result<[usize; 4]> {
        DEPTHS
            .iter()
            .find(|(d, _)| *d == self.depth)
            .map(|(_, blocks)| *blocks)
            .ok_or_else(|| crate::Error::InvalidConfig {
                model: self.model_name(),
                option: "depth",
                reason: format!("must be 50, 101 or 152, got {}", self.depth),
            })
    }

    /// The last feature map, `[2048, H', W']`: every one of the five stride-2 steps (stem
    /// conv, stem pool, stages 3–5) takes `n` to `ceil(n / 2)`, so 224 → 7.
    /// [`crate::family::Family::validate`].
    pub(crate) fn check(&self, _family: &str) -> Result<()> {
        self.blocks_per_stage()?;
        check_input_size(&self.model_name(), self.input_size, MIN_SIZE)
    }

    /// The `[C, H, W]` feature map that reaches the top.
    pub fn feature_shape(&self) -> [i64; 3] {
        let reduce = |n: i64| (0..5).fold(n, |n, _| (n + 1) / 2);
        [
            FEATURES,
            reduce(self.input_size[0]),
            reduce(self.input_size[1]),
        ]
    }

    /// The input the model expects: `input_size`, Keras' "caffe" preprocessing.
    pub fn input_spec(&self) -> InputSpec {
        InputSpec {
            height: self.input_size[0],
            width: self.input_size[1],
            preprocessing: Preprocessing::caffe(),
        }
    }
}

/// A block of a ResNet stage.
#[derive(Debug)]
enum Residual {
    // Boxed: the blocks are large and of different sizes.
    Conv(Box<ConvBlock>),
    Identity(Box<IdentityBlock>),
}

impl ModuleT for Residual {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Residual::Conv(b) => b.forward_t(xs, train),
            Residual::Identity(b) => b.forward_t(xs, train),
        }
    }
}

/// ResNet v1 (Keras Applications): stem, then four stages of bottleneck blocks of widths
/// 64, 128, 256, 512 (3, 4, 6, 3 blocks for ResNet50; 3, 4, 23, 3 for ResNet101; 3, 8,
/// 36, 3 for ResNet152; each stage opens with a [`ConvBlock`], stride 2 on its first 1×1
/// except in `conv2`, and continues with [`IdentityBlock`]s), then the top.
///
/// # Shapes
/// `[N, 3, H, W]` (caffe-preprocessed) → `[N, classes]` ImageNet logits, `[N, 1]` logits
/// of "fake" for a binary top, or `[N, 2048, H', W']` / `[N, 2048]` for a backbone
/// (`H' = 7` at 224).
#[derive(Debug)]
pub struct ResNet {
    name: String,
    stem: ConvBnAct,
    pool: MaxPool2d,
    blocks: Vec<Residual>,
    top: TopLayer,
    config: ResNetConfig,
}

/// Builds a [`ResNet`] of the configuration's depth (50, 101 or 152,
/// [`ResNetConfig::with_depth`]); the same as [`ResNet::new`].
///
/// # Errors
/// See [`ResNet::new`].
pub fn resnet(p: &nn::Path<'_>, cfg: &ResNetConfig) -> Result<ResNet> {
    ResNet::new(p, cfg)
}

impl ResNet {
    /// Creates the model's variables under `p`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for an input smaller than 32×32;
    /// [`crate::Error::Layers`] for an invalid top (no classes, dropout out of range ...).
    pub fn new(p: &nn::Path<'_>, cfg: &ResNetConfig) -> Result<Self> {
        let name = cfg.model_name();
        let blocks_per_stage = cfg.blocks_per_stage()?;
        check_input_size(&name, cfg.input_size, MIN_SIZE)?;
        let stem = ConvBnAct::new(
            p,
            &ConvBnActConfig::new(3, 64, 7)
                .with_stride(2)
                .with_padding(Padding::Valid)
                .with_batch_norm(resnet_batch_norm())
                .with_bias(true)
                .with_activation(Activation::Relu)
                .with_names("conv1_conv", "conv1_bn"),
        )?;
        let pool = MaxPool2d::new(&MaxPool2dConfig::new(3, Padding::Valid).with_stride(2))?;
        let mut blocks = Vec::new();
        let mut in_channels = 64;
        for ((stack, filters, stride), count) in STAGES.into_iter().zip(blocks_per_stage) {
            blocks.push(Residual::Conv(Box::new(ConvBlock::new(
                p,
                &ConvBlockConfig::new(in_channels, filters, stride, format!("{stack}_block1")),
            )?)));
            for i in 2..=count {
                blocks.push(Residual::Identity(Box::new(IdentityBlock::new(
                    p,
                    &IdentityBlockConfig::new(filters, format!("{stack}_block{i}")),
                )?)));
            }
            in_channels = 4 * filters;
        }
        let imagenet = |classes: i64| DenseHeadConfig {
            input_shape: cfg.feature_shape(),
            input: HeadInput::GlobalAvgPool,
            layers: vec![DenseLayerConfig::new(
                "predictions",
                classes,
                Activation::Linear,
            )],
        };
        let top = TopLayer::new(p, &name, &cfg.top, cfg.feature_shape(), Some(&imagenet))?;
        Ok(Self {
            name,
            stem,
            pool,
            blocks,
            top,
            config: cfg.clone(),
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for ResNet {
    fn forward_features(&self, xs: &Tensor, train: bool) -> Tensor {
        // [N, 3, 224, 224] → conv1_pad [N, 3, 230, 230] → [N, 64, 112, 112]
        let xs = in_memory_format(xs, self.config.memory_format);
        let padded = xs.constant_pad_nd([3, 3, 3, 3]);
        record(|| "conv1_pad".into(), "ZeroPadding2D", &padded);
        let ys = self.stem.forward_t(&padded, train);
        record(|| "conv1_relu".into(), "Activation", &ys);
        // pool1_pad: zeros, which never win the max after the ReLU → [N, 64, 56, 56]
        let padded = ys.constant_pad_nd([1, 1, 1, 1]);
        record(|| "pool1_pad".into(), "ZeroPadding2D", &padded);
        let mut ys = self.pool.forward(&padded);
        record(|| "pool1_pool".into(), "MaxPooling2D", &ys);
        for block in &self.blocks {
            ys = block.forward_t(&ys, train);
        } // [N, 2048, 7, 7]
        ys
    }

    fn forward_head(&self, features: &Tensor, train: bool) -> Tensor {
        self.top.forward_t(features, train)
    }

    fn name(&self) -> &str {
        &self.name
    }
    fn input_spec(&self) -> InputSpec {
        self.config.input_spec()
    }
    fn family(&self) -> &str {
        <ResNetFamily as crate::family::Family>::NAME
    }
    fn config_json(&self) -> Result<serde_json::Value> {
        crate::family::config_to_json(self.name(), &self.config)
    }
    /// The dense layers of the top: the binary head, or the ImageNet classifier
    /// (`predictions`, after global average pooling).
    fn head(&self) -> Option<&DenseHead> {
        self.top.head()
    }
}

// ---- Catalogue ---------------------------------------------------------------------

use crate::family::{configured, Family};
use crate::registry::{count, entry, imagenet_top, Catalogue, KerasParams, ModelInfo, Recipe};

macro_rules! resnet_entry {
    ($depth:literal, $name:literal, $recipe:expr, $with:expr, $without:expr) => {
        ModelInfo {
            name: $name,
            family: ResNetFamily::NAME,
            description: concat!("ResNet", $depth, " v1 (Keras ResNet", $depth, ")"),
            input_size: [224, 224],
            min_input_size: 32,
            preprocessing: Preprocessing::caffe(),
            keras_params: Some(KerasParams {
                with_top: $with,
                without_top: Some($without),
            }),
            keras_application: Some(concat!("ResNet", $depth)),
            study_recipe: $recipe,
            gradcam_layer: "conv5_block3_out",
            default_top: imagenet_top,
            config: |o| configured::<ResNetFamily>(ResNetConfig::imagenet().with_depth($depth), o),
        }
    };
}

/// This file's catalogue rows and families (gathered by [`crate::registry`]).
pub(crate) const CATALOGUE: Catalogue = Catalogue {
    models: &[
        resnet_entry!(
            50,
            "resnet50",
            Some(Recipe::loss_val_accuracy(2e-4, true)),
            count(25_636_712, 25_583_592),
            count(23_587_712, 23_534_592)
        ),
        resnet_entry!(
            101,
            "resnet101",
            None,
            count(44_707_176, 44_601_832),
            count(42_658_176, 42_552_832)
        ),
        resnet_entry!(
            152,
            "resnet152",
            None,
            count(60_419_944, 60_268_520),
            count(58_370_944, 58_219_520)
        ),
    ],
    families: &[entry::<ResNetFamily>],
};
