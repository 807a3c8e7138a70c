//! Meso-4 and MesoInception-4, the compact forgery detectors of MesoNet.
//!
//! Reference: D. Afchar, V. Nozick, J. Yamagishi, I. Echizen, "MesoNet: a Compact Facial
//! Video Forgery Detection Network", WIFS 2018, and the authors' Keras code
//! (`classifiers.py` of DariusAf/MesoNet), which this follows layer for layer: 256×256×3
//! input in [0, 1]; convolutions with bias, `"same"` padding and ReLU *before* batch
//! normalisation (Keras defaults, epsilon 1e-3); max pooling with `"same"` padding; the
//! head Flatten → Dropout(0.5) → Dense(16) → LeakyReLU(0.1) → Dropout(0.5) → Dense(1).
//!
//! Variables carry the names Keras gives the layers in a fresh session (`conv2d`,
//! `conv2d_1`, ..., `batch_normalization`, ..., `dense`, `dense_1`), so that files with
//! other automatic names (the authors' `conv2d_5` ...) import by order of creation.
//!
//! The authors' final activation is a sigmoid scoring "real"; these models return one
//! logit of "fake" (see [`crate::Polarity`] for how their weights are converted).

use df_layers::trace::record;
use df_layers::{
    keras_auto_name, Activation, BatchNorm, BatchNormConfig, ConvBnAct, ConvBnActConfig, DenseHead,
    MaxPool2d, MaxPool2dConfig, MesoInception, MesoInceptionConfig, Padding,
};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use crate::error::Result;
use crate::spec::{InputSpec, Model, Preprocessing, Top};
use crate::top_head::{
    builtin_family, check_input_size, config_builders, in_memory_format, TopLayer,
};

/// Pool sizes (and strides) of the four stages of both MesoNet models.
const POOLS: [i64; 4] = [2, 2, 2, 4];
/// Channels of the last feature map.
const FEATURES: i64 = 16;

/// Configuration shared by [`Meso4`] and [`MesoInception4`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MesoConfig {
    /// Input `[height, width]` (256×256 in the paper).
    pub input_size: [i64; 2],
    /// The top; [`Top::mesonet`] for the authors' head. [`Top::ImageNet`] is rejected.
    pub top: Top,
    /// The memory format the model computes in on the CPU; the input is converted once,
    /// before the first layer (default channels-last; see [`df_layers::MemoryFormat`]).
    #[serde(default = "crate::top_head::default_memory_format")]
    pub memory_format: df_layers::MemoryFormat,
}

impl Default for MesoConfig {
    fn default() -> Self {
        Self::paper()
    }
}

config_builders!(MesoConfig);

builtin_family!(
    /// The Meso-4 family ([`Meso4`]).
    Meso4Family,
    "meso4",
    MesoConfig,
    Meso4::new,
    keras_binary_top: mesonet_keras_top
);
builtin_family!(
    /// The MesoInception-4 family ([`MesoInception4`]).
    MesoInception4Family,
    "meso_inception4",
    MesoConfig,
    MesoInception4::new,
    keras_binary_top: mesonet_keras_top
);

/// The authors' Keras files end in `Flatten → Dense(16) → Dense(1)`: their head
/// ([`Top::mesonet`], LeakyReLU 0.1, which the weights alone cannot tell).
fn mesonet_keras_top(units: &[i64], input: df_layers::HeadInput) -> Option<Top> {
    (units == [16, 1] && input == df_layers::HeadInput::Flatten).then(Top::mesonet)
}

impl MesoConfig {
    /// The paper's models: 256×256 input, the authors' head.
    pub fn paper() -> Self {
        Self {
            input_size: [256, 256],
            top: Top::mesonet(),
            memory_format: crate::top_head::default_memory_format(),
        }
    }

    /// The last feature map, `[16, H', W']`, after the four `"same"` poolings (2, 2, 2, 4):
    /// `[16, 8, 8]` at 256×256.
    pub fn feature_shape(&self) -> [i64; 3] {
        let reduce = |n: i64| POOLS.iter().fold(n, |n, &p| (n + p - 1) / p);
        [
            FEATURES,
            reduce(self.input_size[0]),
            reduce(self.input_size[1]),
        ]
    }

    /// The input the models expect: `input_size`, pixels / 255.
    pub fn input_spec(&self) -> InputSpec {
        InputSpec {
            height: self.input_size[0],
            width: self.input_size[1],
            preprocessing: Preprocessing::unit(),
        }
    }

    fn validate(&self, model: &str) -> Result<()> {
        check_input_size(model, self.input_size, 1)
    }

    /// [`crate::family::Family::validate`].
    pub(crate) fn check(&self, family: &str) -> Result<()> {
        self.validate(family)
    }
}

/// One convolution stage of the MesoNet models: conv (bias, ReLU) → batch norm → max pool.
#[derive(Debug)]
struct ConvStage {
    conv: ConvBnAct,
    bn: BatchNorm,
    pool: MaxPool2d,
}

impl ConvStage {
    fn new(
        p: &nn::Path<'_>,
        [in_channels, out_channels, kernel]: [i64; 3],
        pool: i64,
        [conv_index, bn_index]: [usize; 2],
    ) -> Result<Self> {
        let cfg = ConvBnActConfig::new(in_channels, out_channels, kernel)
            .with_padding(Padding::Same)
            .with_activation(Activation::Relu)
            .with_names(keras_auto_name("conv2d", conv_index), "");
        Ok(Self {
            conv: ConvBnAct::new(p, &cfg)?,
            bn: BatchNorm::new(
                &(p / keras_auto_name("batch_normalization", bn_index)),
                out_channels,
                &BatchNormConfig::default(),
            )?,
            pool: MaxPool2d::new(&MaxPool2dConfig::new(pool, Padding::Same))?,
        })
    }
}

impl ConvStage {
    /// Conv → batch norm, before the pool (the last stage's is the Grad-CAM layer,
    /// `batch_normalization_3`).
    fn forward_unpooled(&self, xs: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&self.conv.forward_t(xs, train), train)
    }
}

impl ModuleT for ConvStage {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.pool.forward(&self.forward_unpooled(xs, train))
    }
}

/// Meso-4: four convolution stages (8 3×3, 8 5×5, 16 5×5, 16 5×5 filters; each conv →
/// batch norm → max pool 2, 2, 2, 4) and the MesoNet head.
///
/// Variables: `conv2d` ... `conv2d_3`, `batch_normalization` ... `batch_normalization_3`,
/// and the head's (`dense`, `dense_1` for [`Top::mesonet`]). 28,073 parameters (27,977
/// trainable) at 256×256, as Keras counts.
///
/// # Shapes
/// `[N, 3, H, W]` (pixels / 255) → `[N, 1]` logits of "fake" for a binary top;
/// `[N, 16, H', W']` or `[N, 16]` for a backbone (see [`MesoConfig::feature_shape`]).
#[derive(Debug)]
pub struct Meso4 {
    stages: Vec<ConvStage>,
    top: TopLayer,
    config: MesoConfig,
}

/// Builds a [`Meso4`]; the same as [`Meso4::new`].
///
/// # Errors
/// See [`Meso4::new`].
pub fn meso4(p: &nn::Path<'_>, cfg: &MesoConfig) -> Result<Meso4> {
    Meso4::new(p, cfg)
}

impl Meso4 {
    /// Creates the model's variables under `p`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a non-positive input size or an ImageNet top;
    /// [`crate::Error::Layers`] for an invalid head.
    pub fn new(p: &nn::Path<'_>, cfg: &MesoConfig) -> Result<Self> {
        cfg.validate("meso4")?;
        let specs = [[3, 8, 3], [8, 8, 5], [8, 16, 5], [16, 16, 5]];
        let stages = specs
            .into_iter()
            .zip(POOLS)
            .enumerate()
            .map(|(i, (spec, pool))| ConvStage::new(p, spec, pool, [i, i]))
            .collect::<Result<Vec<_>>>()?;
        let top = TopLayer::new(p, "meso4", &cfg.top, cfg.feature_shape(), None)?;
        Ok(Self {
            stages,
            top,
            config: cfg.clone(),
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &MesoConfig {
        &self.config
    }
}

impl ModuleT for Meso4 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for Meso4 {
    fn forward_features(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut ys = in_memory_format(xs, self.config.memory_format); // [N, 3, 256, 256]
        for (i, stage) in self.stages.iter().enumerate() {
            ys = stage.forward_t(&ys, train);
            record(|| keras_auto_name("max_pooling2d", i), "MaxPooling2D", &ys);
        } // [N, 16, 8, 8]
        ys
    }

    fn forward_head(&self, features: &Tensor, train: bool) -> Tensor {
        self.top.forward_t(features, train)
    }

    /// Up to `batch_normalization_3`, before the last pool: `[N, 16, 32, 32]` at 256×256.
    fn forward_cam_features(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut ys = in_memory_format(xs, self.config.memory_format);
        let last = self.stages.len().saturating_sub(1);
        for (i, stage) in self.stages.iter().enumerate() {
            ys = if i == last {
                stage.forward_unpooled(&ys, train)
            } else {
                stage.forward_t(&ys, train)
            };
        }
        ys
    }

    fn forward_cam_head(&self, activation: &Tensor, train: bool) -> Tensor {
        match self.stages.last() {
            Some(last) => self.forward_head(&last.pool.forward(activation), train),
            None => self.forward_head(activation, train),
        }
    }

    fn name(&self) -> &str {
        "meso4"
    }
    fn input_spec(&self) -> InputSpec {
        self.config.input_spec()
    }
    fn family(&self) -> &str {
        <Meso4Family as crate::family::Family>::NAME
    }
    fn config_json(&self) -> Result<serde_json::Value> {
        crate::family::config_to_json(self.name(), &self.config)
    }
    fn head(&self) -> Option<&DenseHead> {
        self.top.head()
    }
}

/// MesoInception-4: two [`MesoInception`] layers ((a, b, c, d) = (1, 4, 4, 2) then
/// (2, 4, 4, 2)), each followed by batch norm and a 2×2 max pool, then two 16-filter 5×5
/// convolution stages (max pool 2 and 4) and the MesoNet head.
///
/// Variables: `conv2d` ... `conv2d_6` (first inception layer), `conv2d_7` ... `conv2d_13`
/// (second), `conv2d_14`, `conv2d_15`, `batch_normalization` ... `batch_normalization_3`,
/// and the head's. 28,725 parameters (28,615 trainable) at 256×256, as Keras counts.
///
/// # Shapes
/// `[N, 3, H, W]` (pixels / 255) → `[N, 1]` logits of "fake" for a binary top;
/// `[N, 16, H', W']` or `[N, 16]` for a backbone.
#[derive(Debug)]
pub struct MesoInception4 {
    inceptions: Vec<(MesoInception, BatchNorm, MaxPool2d)>,
    stages: Vec<ConvStage>,
    top: TopLayer,
    config: MesoConfig,
}

/// Builds a [`MesoInception4`]; the same as [`MesoInception4::new`].
///
/// # Errors
/// See [`MesoInception4::new`].
pub fn meso_inception4(p: &nn::Path<'_>, cfg: &MesoConfig) -> Result<MesoInception4> {
    MesoInception4::new(p, cfg)
}

impl MesoInception4 {
    /// Creates the model's variables under `p`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a non-positive input size or an ImageNet top;
    /// [`crate::Error::Layers`] for an invalid head.
    pub fn new(p: &nn::Path<'_>, cfg: &MesoConfig) -> Result<Self> {
        let name = "meso_inception4";
        cfg.validate(name)?;
        let layer1 = MesoInceptionConfig::new(3, [1, 4, 4, 2]).with_keras_names(0);
        let layer2 =
            MesoInceptionConfig::new(layer1.out_channels(), [2, 4, 4, 2]).with_keras_names(7);
        let mut inceptions = Vec::with_capacity(2);
        for (i, layer) in [layer1, layer2].iter().enumerate() {
            inceptions.push((
                MesoInception::new(p, layer)?,
                BatchNorm::new(
                    &(p / keras_auto_name("batch_normalization", i)),
                    layer.out_channels(),
                    &BatchNormConfig::default(),
                )?,
                MaxPool2d::new(&MaxPool2dConfig::new(POOLS[i], Padding::Same))?,
            ));
        }
        // Conv2D layers 14 and 15, batch norms 2 and 3 in Keras' order of creation.
        let in_channels = inceptions[1].0.config().out_channels();
        let stages = vec![
            ConvStage::new(p, [in_channels, FEATURES, 5], POOLS[2], [14, 2])?,
            ConvStage::new(p, [FEATURES, FEATURES, 5], POOLS[3], [15, 3])?,
        ];
        let top = TopLayer::new(p, name, &cfg.top, cfg.feature_shape(), None)?;
        Ok(Self {
            inceptions,
            stages,
            top,
            config: cfg.clone(),
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &MesoConfig {
        &self.config
    }
}

impl ModuleT for MesoInception4 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for MesoInception4 {
    fn forward_features(&self, xs: &Tensor, train: bool) -> Tensor {
        // Keras' automatic names in a fresh session: `concatenate`, `concatenate_1`, then
        // `max_pooling2d` ... `max_pooling2d_3` in order.
        let mut ys = in_memory_format(xs, self.config.memory_format); // [N, 3, 256, 256]
        let format = self.config.memory_format;
        for (i, (inception, bn, pool)) in self.inceptions.iter().enumerate() {
            // Once per block, not in each of its four branches: the batch norm before
            // may have left its output NCHW (df-layers' BatchNorm, few channels).
            let zs = inception.forward_t(&in_memory_format(&ys, format), train);
            record(|| keras_auto_name("concatenate", i), "Concatenate", &zs);
            ys = pool.forward(&bn.forward_t(&zs, train));
            record(|| keras_auto_name("max_pooling2d", i), "MaxPooling2D", &ys);
        } // [N, 12, 64, 64]
        let pools = self.inceptions.len();
        for (i, stage) in self.stages.iter().enumerate() {
            ys = stage.forward_t(&in_memory_format(&ys, format), train);
            let name = || keras_auto_name("max_pooling2d", pools + i);
            record(name, "MaxPooling2D", &ys);
        } // [N, 16, 8, 8]
        ys
    }

    fn forward_head(&self, features: &Tensor, train: bool) -> Tensor {
        self.top.forward_t(features, train)
    }

    /// Up to `batch_normalization_3`, before the last pool: `[N, 16, 32, 32]` at 256×256.
    fn forward_cam_features(&self, xs: &Tensor, train: bool) -> Tensor {
        let format = self.config.memory_format;
        let mut ys = in_memory_format(xs, format);
        for (inception, bn, pool) in &self.inceptions {
            let zs = inception.forward_t(&in_memory_format(&ys, format), train);
            ys = pool.forward(&bn.forward_t(&zs, train));
        }
        let last = self.stages.len().saturating_sub(1);
        for (i, stage) in self.stages.iter().enumerate() {
            let xs = in_memory_format(&ys, format);
            ys = if i == last {
                stage.forward_unpooled(&xs, train)
            } else {
                stage.forward_t(&xs, train)
            };
        }
        ys
    }

    fn forward_cam_head(&self, activation: &Tensor, train: bool) -> Tensor {
        match self.stages.last() {
            Some(last) => self.forward_head(&last.pool.forward(activation), train),
            None => self.forward_head(activation, train),
        }
    }

    fn name(&self) -> &str {
        "meso_inception4"
    }
    fn input_spec(&self) -> InputSpec {
        self.config.input_spec()
    }
    fn family(&self) -> &str {
        <MesoInception4Family as crate::family::Family>::NAME
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
use crate::registry::{count, entry, Catalogue, KerasParams, ModelInfo, Recipe};

/// This file's catalogue rows and families (gathered by [`crate::registry`]).
pub(crate) const CATALOGUE: Catalogue = Catalogue {
    models: &[
        ModelInfo {
            name: "meso4",
            family: Meso4Family::NAME,
            description: "Meso-4 (MesoNet, Afchar et al. 2018)",
            input_size: [256, 256],
            min_input_size: 1,
            preprocessing: Preprocessing::unit(),
            keras_params: Some(KerasParams {
                with_top: count(28_073, 27_977),
                without_top: None,
            }),
            keras_application: None,
            study_recipe: Some(Recipe {
                early_stop: "val_loss",
                reduce_lr: "val_accuracy",
                lr: 1e-3,
                in_comparison: true,
            }),
            gradcam_layer: "batch_normalization_3",
            default_top: Top::mesonet,
            config: |o| configured::<Meso4Family>(MesoConfig::paper(), o),
        },
        ModelInfo {
            name: "meso_inception4",
            family: MesoInception4Family::NAME,
            description: "MesoInception-4 (MesoNet, Afchar et al. 2018)",
            input_size: [256, 256],
            min_input_size: 1,
            preprocessing: Preprocessing::unit(),
            keras_params: Some(KerasParams {
                with_top: count(28_725, 28_615),
                without_top: None,
            }),
            keras_application: None,
            study_recipe: Some(Recipe {
                early_stop: "loss",
                reduce_lr: "accuracy",
                lr: 1e-3,
                in_comparison: true,
            }),
            gradcam_layer: "batch_normalization_3",
            default_top: Top::mesonet,
            config: |o| configured::<MesoInception4Family>(MesoConfig::paper(), o),
        },
    ],
    families: &[entry::<Meso4Family>, entry::<MesoInception4Family>],
};
