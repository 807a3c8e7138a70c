//! VGG16, configurations D (Keras Applications' `VGG16`) and C (the study's variant).
//!
//! Reference: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for
//! Large-Scale Image Recognition", ICLR 2015, Table 1; Keras 3
//! `keras/src/applications/vgg16.py` for configuration D's layer names (`block1_conv1` ...
//! `block5_pool`, `fc1`, `fc2`, `predictions`) and options (3×3 convs with bias, ReLU,
//! `"same"`; 2×2 max pools with stride 2, `"valid"`).

use df_layers::{
    Activation, DenseHead, DenseHeadConfig, DenseLayerConfig, HeadInput, VggStage, VggStageConfig,
};
use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::error::Result;
use crate::spec::{InputSpec, Model, Preprocessing, Top};
use crate::top_head::{
    builtin_family, check_input_size, config_builders, in_memory_format, TopLayer,
};

/// Keras' smallest input for VGG16.
const MIN_SIZE: i64 = 32;
/// Channels of the last feature map.
const FEATURES: i64 = 512;

/// The convolution layout of a VGG16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VggVariant {
    /// Configuration D (Keras `VGG16`): 2, 2, 3, 3, 3 3×3 convolutions of 64, 128, 256,
    /// 512, 512 filters; 14,714,688 parameters without the top.
    #[default]
    D,
    /// Configuration C: as D, but stages 3–5 have two 3×3 convolutions closed by a 1×1
    /// convolution (`block{3,4,5}_conv3` is the 1×1); 9,996,096 parameters without the top.
    C,
}

impl VggVariant {
    /// The five stages (index, channels, 3×3 convolutions, closing 1×1).
    pub fn stages(self) -> [VggStageConfig; 5] {
        let widths = [64, 128, 256, 512, 512];
        std::array::from_fn(|i| {
            let in_channels = if i == 0 { 3 } else { widths[i - 1] };
            let (convs, pointwise) = match (self, i) {
                (_, 0 | 1) => (2, false),
                (VggVariant::D, _) => (3, false),
                (VggVariant::C, _) => (2, true),
            };
            VggStageConfig::new(i + 1, in_channels, widths[i], convs).with_pointwise(pointwise)
        })
    }

    /// The registry name: `vgg16` (D) or `vgg16_c` (C).
    pub fn model_name(self) -> &'static str {
        match self {
            VggVariant::D => "vgg16",
            VggVariant::C => "vgg16_c",
        }
    }
}

/// Configuration of a [`Vgg16`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VggConfig {
    /// Configuration C or D.
    pub variant: VggVariant,
    /// Input `[height, width]`, at least 32×32 (224×224 for ImageNet weights).
    pub input_size: [i64; 2],
    /// The top: Keras' ImageNet classifier (Flatten → `fc1` 4096 → `fc2` 4096 →
    /// `predictions`), a backbone, or a binary head.
    pub top: Top,
    /// The memory format the model computes in on the CPU; the input is converted once,
    /// before the first layer (default channels-last; see [`df_layers::MemoryFormat`]).
    #[serde(default = "crate::top_head::default_memory_format")]
    pub memory_format: df_layers::MemoryFormat,
}

impl Default for VggConfig {
    fn default() -> Self {
        Self::d()
    }
}

config_builders!(VggConfig);

builtin_family!(
    /// The VGG16 family ([`Vgg16`], configurations C and D).
    VggFamily,
    "vgg16",
    VggConfig,
    Vgg16::new
);

impl VggConfig {
    /// Keras' `VGG16()`: configuration D, 224×224, ImageNet top (138,357,544 parameters;
    /// 14,714,688 without the top).
    pub fn d() -> Self {
        Self {
            variant: VggVariant::D,
            input_size: [224, 224],
            top: Top::ImageNet { classes: 1000 },
            memory_format: crate::top_head::default_memory_format(),
        }
    }

    /// The study's configuration C: the C convolutions (1×1 convolutions closing stages
    /// 3–5) and the study's binary top Flatten → Dense(1024, ReLU) → Dropout(0.5) →
    /// Dense(2048, ReLU) → Dense(1), Keras names `dense`, `dense_1`, `dense_2`, no L2.
    /// At 224×224: 9,996,096 backbone parameters + 25,691,136 + 2,099,200 + 2,049 in the
    /// head = 37,788,481, as Keras counts the same layers.
    pub fn c() -> Self {
        Self {
            variant: VggVariant::C,
            input_size: [224, 224],
            top: Top::study([1024, 2048], 0.5, 0.0),
            memory_format: crate::top_head::default_memory_format(),
        }
    }

    /// The last feature map, `[512, H', W']`: five `"valid"` 2×2 pools, each `floor(n / 2)`
    /// (224 → 7).
    /// [`crate::family::Family::validate`].
    pub(crate) fn check(&self, _family: &str) -> Result<()> {
        check_input_size(self.variant.model_name(), self.input_size, MIN_SIZE)
    }

    /// The `[C, H, W]` feature map that reaches the top.
    pub fn feature_shape(&self) -> [i64; 3] {
        let reduce = |n: i64| (0..5).fold(n, |n, _| n / 2);
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

    /// Keras VGG16's ImageNet classifier over this configuration's feature map.
    fn imagenet_head(&self, classes: i64) -> DenseHeadConfig {
        DenseHeadConfig {
            input_shape: self.feature_shape(),
            input: HeadInput::Flatten,
            layers: vec![
                DenseLayerConfig::new("fc1", 4096, Activation::Relu),
                DenseLayerConfig::new("fc2", 4096, Activation::Relu),
                DenseLayerConfig::new("predictions", classes, Activation::Linear),
            ],
        }
    }
}

/// VGG16 in configuration D or C: five [`VggStage`]s, then the top.
///
/// # Shapes
/// `[N, 3, H, W]` (caffe-preprocessed) → `[N, classes]` ImageNet logits, `[N, 1]` logits
/// of "fake" for a binary top, or `[N, 512, H', W']` / `[N, 512]` for a backbone
/// (`H' = floor(H / 32)`).
#[derive(Debug)]
pub struct Vgg16 {
    stages: Vec<VggStage>,
    top: TopLayer,
    config: VggConfig,
}

/// Builds a [`Vgg16`]; the same as [`Vgg16::new`].
///
/// # Errors
/// See [`Vgg16::new`].
pub fn vgg16(p: &nn::Path<'_>, cfg: &VggConfig) -> Result<Vgg16> {
    Vgg16::new(p, cfg)
}

impl Vgg16 {
    /// Creates the model's variables under `p`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for an input smaller than 32×32;
    /// [`crate::Error::Layers`] for an invalid top (no classes, dropout out of range ...).
    pub fn new(p: &nn::Path<'_>, cfg: &VggConfig) -> Result<Self> {
        let name = cfg.variant.model_name();
        check_input_size(name, cfg.input_size, MIN_SIZE)?;
        let stages = cfg
            .variant
            .stages()
            .iter()
            .map(|s| VggStage::new(p, s))
            .collect::<Result<Vec<_>, _>>()?;
        let imagenet = |classes: i64| cfg.imagenet_head(classes);
        let top = TopLayer::new(p, name, &cfg.top, cfg.feature_shape(), Some(&imagenet))?;
        Ok(Self {
            stages,
            top,
            config: cfg.clone(),
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &VggConfig {
        &self.config
    }
}

impl ModuleT for Vgg16 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for Vgg16 {
    fn forward_features(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut ys = in_memory_format(xs, self.config.memory_format); // [N, 3, 224, 224]
        for stage in &self.stages {
            ys = stage.forward_t(&ys, train);
        } // [N, 512, 7, 7]
        ys
    }

    fn forward_head(&self, features: &Tensor, train: bool) -> Tensor {
        self.top.forward_t(features, train)
    }

    /// Up to `block5_conv3`, before `block5_pool`: `[N, 512, 14, 14]` at 224×224.
    fn forward_cam_features(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut ys = in_memory_format(xs, self.config.memory_format);
        let last = self.stages.len().saturating_sub(1);
        for (i, stage) in self.stages.iter().enumerate() {
            ys = if i == last {
                stage.forward_convs(&ys, train)
            } else {
                stage.forward_t(&ys, train)
            };
        }
        ys
    }

    fn forward_cam_head(&self, activation: &Tensor, train: bool) -> Tensor {
        match self.stages.last() {
            Some(last) => self.forward_head(&last.pool(activation), train),
            None => self.forward_head(activation, train),
        }
    }

    fn name(&self) -> &str {
        self.config.variant.model_name()
    }
    fn input_spec(&self) -> InputSpec {
        self.config.input_spec()
    }
    fn family(&self) -> &str {
        <VggFamily as crate::family::Family>::NAME
    }
    fn config_json(&self) -> Result<serde_json::Value> {
        crate::family::config_to_json(self.name(), &self.config)
    }
    /// The dense layers of the top: the binary head, or the ImageNet classifier (`fc1`
    /// after a Flatten, whose rows import permuted from NHWC order).
    fn head(&self) -> Option<&DenseHead> {
        self.top.head()
    }
}

// ---- Catalogue ---------------------------------------------------------------------

use crate::family::{configured, Family};
use crate::registry::{count, entry, imagenet_top, Catalogue, KerasParams, ModelInfo, Recipe};

/// This file's catalogue rows and families (gathered by [`crate::registry`]).
pub(crate) const CATALOGUE: Catalogue = Catalogue {
    models: &[
        ModelInfo {
            name: "vgg16",
            family: VggFamily::NAME,
            description: "VGG16, configuration D (Keras VGG16)",
            input_size: [224, 224],
            min_input_size: 32,
            preprocessing: Preprocessing::caffe(),
            keras_params: Some(KerasParams {
                with_top: count(138_357_544, 138_357_544),
                without_top: Some(count(14_714_688, 14_714_688)),
            }),
            keras_application: Some("VGG16"),
            // The study's VGG recipe; only configuration C is among its compared models.
            study_recipe: Some(Recipe::loss_val_accuracy(1e-4, false)),
            gradcam_layer: "block5_conv3",
            default_top: imagenet_top,
            config: |o| configured::<VggFamily>(VggConfig::d(), o),
        },
        ModelInfo {
            name: "vgg16_c",
            family: VggFamily::NAME,
            description:
                "VGG16, configuration C with the study's head (1×1 convs closing stages 3-5)",
            input_size: [224, 224],
            min_input_size: 32,
            preprocessing: Preprocessing::caffe(),
            keras_params: None,
            keras_application: None,
            study_recipe: Some(Recipe::loss_val_accuracy(1e-4, true)),
            gradcam_layer: "block5_conv3",
            default_top: || Top::study([1024, 2048], 0.5, 0.0),
            config: |o| configured::<VggFamily>(VggConfig::c(), o),
        },
    ],
    families: &[entry::<VggFamily>],
};
