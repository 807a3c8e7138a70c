//! Inception-ResNet-v2 as Keras 3 builds it (`keras.applications.InceptionResNetV2`).
//!
//! Reference: Szegedy et al., *Inception-v4, Inception-ResNet and the Impact of Residual
//! Connections on Learning*, AAAI 2017; the Keras implementation
//! `keras/src/applications/inception_resnet_v2.py`.
//!
//! Input: 299×299 (at least 75×75) RGB scaled to `[-1, 1]` ([`Preprocessing::tf`]).
//!
//! # Variable names and Keras import
//!
//! Layers Keras names keep their names: `block35_1_conv` … `block8_10_conv` (the residual
//! 1×1 convolutions with bias), `conv_7b`, `conv_7b_bn`, `predictions`. The other 203
//! `conv2d_bn` units have Keras auto-generated names (`conv2d_12`,
//! `batch_normalization_12`); here they are named by position (`stem_0`,
//! `mixed_5b_branch1_1`, `block17_4_branch1_2`, `mixed_7a_branch2_0` …, batch norms with
//! `_bn`; see [`df_layers::Stem`]) and created in Keras' creation order,
//! which [`InceptionResNetV2::auto_named_convs`] lists: an importer pairs the `k`-th of
//! them with the file's `k`-th auto-named `Conv2D` and `BatchNormalization` (sorted by the
//! number in their names), checked by shape.

use df_layers::trace::record;
use df_layers::{
    inception_resnet_batch_norm, Activation, BatchNormConfig, ConvBnAct, ConvBnActConfig,
    DenseHead, DenseHeadConfig, DenseLayerConfig, HeadInput, InceptionResnetA, InceptionResnetB,
    InceptionResnetBlockConfig, InceptionResnetC, Padding, ReductionA, ReductionB, ReductionConfig,
    Stem, StemConfig,
};
use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::spec::{InputSpec, Model, Preprocessing, Top};
use crate::top_head::{
    builtin_family, check_input_size, config_builders, in_memory_format, TopLayer,
};

/// Configuration of an [`InceptionResNetV2`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InceptionResNetV2Config {
    /// Model name (`inception_resnet_v2`).
    pub name: String,
    /// Input `[height, width]` (at least 75 each, as Keras requires).
    pub input_size: [i64; 2],
    /// Number of block35, block17 and block8 blocks (Keras: 10, 20, 10; the last block8
    /// has scale 1 and no activation).
    pub repeats: [usize; 3],
    /// Residual scales of block35, block17 and block8 (Keras: 0.17, 0.1, 0.2).
    pub scales: [f64; 3],
    /// Batch normalisation (Keras: epsilon 1e-3, no scale).
    pub batch_norm: BatchNormConfig,
    /// What sits on top of `conv_7b`.
    pub top: Top,
    /// The memory format the model computes in on the CPU; the input is converted once,
    /// before the first layer (default channels-last; see [`df_layers::MemoryFormat`]).
    #[serde(default = "crate::top_head::default_memory_format")]
    pub memory_format: df_layers::MemoryFormat,
}

impl Default for InceptionResNetV2Config {
    /// Keras' `InceptionResNetV2()`: 299×299, ImageNet top with 1000 classes.
    fn default() -> Self {
        Self {
            name: "inception_resnet_v2".into(),
            input_size: [299, 299],
            repeats: [10, 20, 10],
            scales: [0.17, 0.1, 0.2],
            batch_norm: inception_resnet_batch_norm(),
            top: Top::ImageNet { classes: 1000 },
            memory_format: crate::top_head::default_memory_format(),
        }
    }
}

config_builders!(InceptionResNetV2Config);

builtin_family!(
    /// The Inception-ResNet-v2 family ([`InceptionResNetV2`]).
    InceptionResNetV2Family,
    "inception_resnet_v2",
    InceptionResNetV2Config,
    InceptionResNetV2::new
);

impl InceptionResNetV2Config {
    /// Channels of `conv_7b`.
    pub const FEATURE_CHANNELS: i64 = 1536;

    /// The input the model expects: `input_size`, Keras' preprocessing for the family
    /// ([`Preprocessing::tf`]).
    pub fn input_spec(&self) -> InputSpec {
        InputSpec {
            height: self.input_size[0],
            width: self.input_size[1],
            preprocessing: Preprocessing::tf(),
        }
    }

    /// The `[C, H, W]` feature map of `conv_7b` for the configured input size.
    pub fn feature_shape(&self) -> [i64; 3] {
        let valid_s2 = |n: i64| (n - 3).div_euclid(2) + 1;
        let side = |n: i64| {
            let n = valid_s2(n) - 2; // stem 3×3/2 valid, 3×3 valid
            let n = valid_s2(n); // max-pool
            let n = valid_s2(n - 2); // 3×3 valid, max-pool
            valid_s2(valid_s2(n)) // mixed_6a, mixed_7a
        };
        [
            Self::FEATURE_CHANNELS,
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
        check_input_size(&self.name, self.input_size, 75)?;
        if self.repeats[2] == 0 {
            return fail("repeats", "needs at least one block8".into());
        }
        Ok(())
    }
}

/// Builds an [`InceptionResNetV2`] (the house constructor shape; same as
/// [`InceptionResNetV2::new`]).
///
/// # Errors
/// As [`InceptionResNetV2::new`].
pub fn inception_resnet_v2(
    p: &nn::Path<'_>,
    cfg: &InceptionResNetV2Config,
) -> Result<InceptionResNetV2> {
    InceptionResNetV2::new(p, cfg)
}

/// Inception-ResNet-v2, Keras-exact: [`Stem`] (to `mixed_5b`), block35 ×10
/// ([`InceptionResnetA`]), `mixed_6a` ([`ReductionA`]), block17 ×20
/// ([`InceptionResnetB`]), `mixed_7a` ([`ReductionB`]), block8 ×10 ([`InceptionResnetC`],
/// the last with scale 1 and no activation), `conv_7b` (1×1, 1536, BN, ReLU), then the
/// configured [`Top`].
///
/// # Shapes
/// Input: preprocessed images `[N, 3, H, W]`, `H, W >= 75`. Output: [`Top::Binary`]
/// `[N, 1]` logits of "fake"; [`Top::ImageNet`] `[N, classes]` logits; [`Top::Backbone`]
/// `[N, 1536, 8, 8]` at 299×299 ([`InceptionResNetV2Config::feature_shape`]) or, pooled,
/// `[N, 1536]`.
#[derive(Debug)]
pub struct InceptionResNetV2 {
    /// Stem and `mixed_5b`.
    pub stem: Stem,
    /// `block35_1` …
    pub blocks_a: Vec<InceptionResnetA>,
    /// `mixed_6a`.
    pub reduction_a: ReductionA,
    /// `block17_1` …
    pub blocks_b: Vec<InceptionResnetB>,
    /// `mixed_7a`.
    pub reduction_b: ReductionB,
    /// `block8_1` …
    pub blocks_c: Vec<InceptionResnetC>,
    /// `conv_7b` + `conv_7b_bn` + ReLU.
    pub conv_7b: ConvBnAct,
    top: TopLayer,
    config: InceptionResNetV2Config,
}

impl InceptionResNetV2 {
    /// Builds the model's variables under `p`, in Keras' creation order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an input under 75×75 or no block8; the blocks' and
    /// head's own configuration errors.
    pub fn new(p: &nn::Path<'_>, cfg: &InceptionResNetV2Config) -> Result<Self> {
        cfg.validate()?;
        let bn = cfg.batch_norm;
        let stem = Stem::new(
            p,
            &StemConfig {
                batch_norm: bn,
                ..StemConfig::default()
            },
        )?;
        let block = |base: InceptionResnetBlockConfig, channels, scale| {
            let mut c = base.with_in_channels(channels).with_scale(scale);
            c.batch_norm = bn;
            c
        };
        let mut channels = Stem::OUT_CHANNELS;
        let blocks_a = (1..=cfg.repeats[0])
            .map(|i| {
                let c = block(
                    InceptionResnetBlockConfig::block35(i),
                    channels,
                    cfg.scales[0],
                );
                InceptionResnetA::new(p, &c)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let reduction_a = ReductionA::new(
            p,
            &ReductionConfig {
                batch_norm: bn,
                ..ReductionConfig::mixed_6a().with_in_channels(channels)
            },
        )?;
        channels = reduction_a.out_channels();
        let blocks_b = (1..=cfg.repeats[1])
            .map(|i| {
                let c = block(
                    InceptionResnetBlockConfig::block17(i),
                    channels,
                    cfg.scales[1],
                );
                InceptionResnetB::new(p, &c)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let reduction_b = ReductionB::new(
            p,
            &ReductionConfig {
                batch_norm: bn,
                ..ReductionConfig::mixed_7a().with_in_channels(channels)
            },
        )?;
        channels = reduction_b.out_channels();
        let last = cfg.repeats[2];
        let blocks_c = (1..=last)
            .map(|i| {
                let c = InceptionResnetBlockConfig::block8(i);
                let c = if i == last {
                    block(c, channels, 1.0).with_activation(Activation::Linear)
                } else {
                    block(c, channels, cfg.scales[2])
                };
                InceptionResnetC::new(p, &c)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let conv_7b = ConvBnActConfig::new(channels, InceptionResNetV2Config::FEATURE_CHANNELS, 1)
            .with_padding(Padding::Same)
            .with_batch_norm(bn)
            .with_activation(Activation::Relu)
            .with_names("conv_7b", "conv_7b_bn");
        let conv_7b = ConvBnAct::new(p, &conv_7b)?;
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
            blocks_a,
            reduction_a,
            blocks_b,
            reduction_b,
            blocks_c,
            conv_7b,
            top,
            config: cfg.clone(),
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &InceptionResNetV2Config {
        &self.config
    }

    /// Names of the `conv2d_bn` convolutions Keras leaves unnamed, in Keras' creation
    /// order (batch norms are `{name}_bn`): the `k`-th is Keras' `k`-th auto-named
    /// `Conv2D`, its batch norm the `k`-th auto-named `BatchNormalization`.
    pub fn auto_named_convs(&self) -> Vec<String> {
        let mut names = self.stem.auto_named_convs();
        names.extend(self.blocks_a.iter().flat_map(|b| b.auto_named_convs()));
        names.extend(self.reduction_a.auto_named_convs());
        names.extend(self.blocks_b.iter().flat_map(|b| b.auto_named_convs()));
        names.extend(self.reduction_b.auto_named_convs());
        names.extend(self.blocks_c.iter().flat_map(|b| b.auto_named_convs()));
        names
    }

    /// The `conv_7b` feature map, before the top.
    ///
    /// # Shapes
    /// `[N, 3, H, W]` → `[N, 1536, H', W']` ([`InceptionResNetV2Config::feature_shape`]).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let xs = in_memory_format(xs, self.config.memory_format);
        let mut ys = self.stem.forward_t(&xs, train); // [N, 320, 35, 35]
        for b in &self.blocks_a {
            ys = b.forward_t(&ys, train);
        }
        ys = self.reduction_a.forward_t(&ys, train); // [N, 1088, 17, 17]
        for b in &self.blocks_b {
            ys = b.forward_t(&ys, train);
        }
        ys = self.reduction_b.forward_t(&ys, train); // [N, 2080, 8, 8]
        for b in &self.blocks_c {
            ys = b.forward_t(&ys, train);
        }
        let ys = self.conv_7b.forward_t(&ys, train); // [N, 1536, 8, 8]
        record(|| "conv_7b_ac".into(), "Activation", &ys);
        ys
    }
}

impl ModuleT for InceptionResNetV2 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for InceptionResNetV2 {
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
        <InceptionResNetV2Family as crate::family::Family>::NAME
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

/// This file's catalogue rows and families (gathered by [`crate::registry`]).
pub(crate) const CATALOGUE: Catalogue = Catalogue {
    models: &[ModelInfo {
        name: "inception_resnet_v2",
        family: InceptionResNetV2Family::NAME,
        description: "Inception-ResNet-v2 (Keras InceptionResNetV2)",
        input_size: [299, 299],
        min_input_size: 75,
        preprocessing: Preprocessing::tf(),
        keras_params: Some(KerasParams {
            with_top: count(55_873_736, 55_813_192),
            without_top: Some(count(54_336_736, 54_276_192)),
        }),
        keras_application: Some("InceptionResNetV2"),
        // The study lists it with the B-series recipe, untested.
        study_recipe: Some(Recipe::loss_val_accuracy(1e-4, true)),
        gradcam_layer: "conv_7b_ac",
        default_top: imagenet_top,
        config: |o| configured::<InceptionResNetV2Family>(InceptionResNetV2Config::default(), o),
    }],
    families: &[entry::<InceptionResNetV2Family>],
};
