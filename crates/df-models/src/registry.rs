//! Every model of the crate by name, with its defaults, Keras' parameter counts and
//! constructors; building models by name and loading them from weight files.
//!
//! ```no_run
//! use df_models::registry::{self, BuildOptions};
//! use df_models::Top;
//! use tch::{nn, Device};
//!
//! # fn main() -> df_models::Result<()> {
//! for info in registry::registry() {
//!     println!("{} {}×{}", info.name, info.input_size[0], info.input_size[1]);
//! }
//! let vs = nn::VarStore::new(Device::Cpu);
//! let options = BuildOptions::default().with_top(Top::study([256, 128], 0.5, 1e-4));
//! let model = registry::build("efficientnet_b0", &vs.root(), &options)?;
//! assert_eq!(model.name(), "efficientnet_b0");
//! # Ok(()) }
//! ```

use std::path::Path;

use df_layers::util::ParamCount;
use df_layers::{Activation, DenseLayerConfig, HeadInput};
use tch::nn::{self, VarStore};
use tch::Device;

use crate::efficientnet::{efficientnet, EfficientNetConfig};
use crate::error::{Error, Result};
use crate::inception_resnet_v2::{inception_resnet_v2, InceptionResNetV2Config};
use crate::keras::{
    import_keras_weights, KerasImport, KerasImportOptions, KerasLayerKind, KerasWeights,
};
use crate::meso::{meso4, meso_inception4, MesoConfig};
use crate::resnet::{resnet50, ResNetConfig};
use crate::spec::{InputSpec, Model, Polarity, Preprocessing, Top, TopKind};
use crate::vgg::{vgg16, VggConfig};

/// Keras' parameter counts of a model (`model.summary()`), as reference values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KerasParams {
    /// With the model's default top (the ImageNet classifier; the authors' head for
    /// MesoNet).
    pub with_top: ParamCount,
    /// Without a top (`include_top=False`), where Keras reports it.
    pub without_top: Option<ParamCount>,
}

const fn count(total: i64, trainable: i64) -> ParamCount {
    ParamCount { total, trainable }
}

/// A registered model.
#[derive(Clone, Copy)]
pub struct ModelInfo {
    /// Registry name (`meso4`, `efficientnet_b7` ...).
    pub name: &'static str,
    /// What it is, in a few words.
    pub description: &'static str,
    /// Default input `[height, width]`.
    pub input_size: [i64; 2],
    /// Smallest input side the architecture accepts.
    pub min_input_size: i64,
    /// Input preprocessing.
    pub preprocessing: Preprocessing,
    /// Keras' parameter counts, where an independent Keras reference exists (the MesoNet
    /// data README; `keras_applications_params.json`). `None` for the study's VGG16
    /// configuration C, which Keras does not ship.
    pub keras_params: Option<KerasParams>,
    default_top: fn() -> Top,
    config: fn(&BuildOptions) -> Result<ModelConfig>,
}

impl std::fmt::Debug for ModelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelInfo")
            .field("name", &self.name)
            .field("input_size", &self.input_size)
            .field("preprocessing", &self.preprocessing)
            .field("keras_params", &self.keras_params)
            .finish()
    }
}

impl ModelInfo {
    /// The top the model gets when [`BuildOptions::top`] is `None`: Keras' ImageNet
    /// classifier for the Keras Applications models, the authors' head for MesoNet, the
    /// study's head for `vgg16_c`.
    pub fn default_top(&self) -> Top {
        (self.default_top)()
    }

    /// The top the model gets when it is trained as a detector and no top is given: its
    /// default top when that is a binary head (MesoNet's, `vgg16_c`'s study head), else the
    /// study's head ([`Top::study`] with [`crate::spec::STUDY_HEAD_UNITS`], dropout 0.5, no
    /// L2) on the backbone.
    pub fn detector_top(&self) -> Top {
        let top = self.default_top();
        if top.is_binary() {
            top
        } else {
            Top::study(
                crate::spec::STUDY_HEAD_UNITS,
                crate::spec::STUDY_HEAD_DROPOUT,
                0.0,
            )
        }
    }

    /// The detector top asked for by name: `kind` with hidden units `head`
    /// ([`Top::of_kind`]); without a kind, [`ModelInfo::detector_top`], with its hidden
    /// units replaced by `head` when it is a study head.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (option `head`) when the units do not fit the top.
    pub fn top_for(&self, kind: Option<TopKind>, head: Option<&[i64]>) -> Result<Top> {
        let bad = |reason: String| Error::InvalidConfig {
            model: self.name.to_string(),
            option: "head",
            reason,
        };
        match (kind, head) {
            (Some(kind), head) => Top::of_kind(kind, head).map_err(bad),
            (None, None) => Ok(self.detector_top()),
            (None, Some(units)) => {
                let top = self.detector_top();
                let is_study = matches!(&top, Top::Binary { input: HeadInput::Flatten, layers }
                    if layers.len() == 3 && layers[1].dropout_before > 0.0);
                if !is_study {
                    return Err(bad(format!(
                        "`{}` has the MesoNet authors' head; hidden units apply to a study or \
                         pooled head (give the top too)",
                        self.name
                    )));
                }
                Top::of_kind(TopKind::Study, Some(units)).map_err(bad)
            }
        }
    }

    /// The default [`InputSpec`].
    pub fn input_spec(&self) -> InputSpec {
        InputSpec {
            height: self.input_size[0],
            width: self.input_size[1],
            preprocessing: self.preprocessing,
        }
    }

    /// The `[C, H, W]` feature map that reaches the top for `options`.
    ///
    /// # Errors
    /// As [`build`] for invalid options.
    pub fn feature_shape(&self, options: &BuildOptions) -> Result<[i64; 3]> {
        Ok((self.config)(options)?.feature_shape())
    }

    /// Builds the model under `p`.
    ///
    /// # Errors
    /// The model's configuration errors (input too small, invalid top ...).
    pub fn build(&self, p: &nn::Path<'_>, options: &BuildOptions) -> Result<Box<dyn Model>> {
        (self.config)(options)?.build(p)
    }
}

/// How [`build`] departs from a model's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOptions {
    /// The top; `None` for [`ModelInfo::default_top`].
    pub top: Option<Top>,
    /// Input `[height, width]`; `None` for the default.
    pub input_size: Option<[i64; 2]>,
    /// Dropout rate of the top's dropout layers (EfficientNet: also its ImageNet
    /// `top_dropout`); `None` keeps the top's own.
    pub dropout: Option<f64>,
    /// L2 coefficient of the binary head's kernels; `None` keeps the top's own.
    pub l2: Option<f64>,
    /// The memory format the model computes in on the CPU; `None` for the default,
    /// channels-last (see [`df_layers::MemoryFormat`]).
    pub memory_format: Option<df_layers::MemoryFormat>,
}

impl BuildOptions {
    /// Sets the top.
    pub fn with_top(mut self, top: Top) -> Self {
        self.top = Some(top);
        self
    }
    /// Sets the input size.
    pub fn with_input_size(mut self, height: i64, width: i64) -> Self {
        self.input_size = Some([height, width]);
        self
    }
    /// Sets the dropout rate of the top.
    pub fn with_dropout(mut self, rate: f64) -> Self {
        self.dropout = Some(rate);
        self
    }
    /// Sets the L2 coefficient of the binary head.
    pub fn with_l2(mut self, l2: f64) -> Self {
        self.l2 = Some(l2);
        self
    }
    /// Sets the memory format the model computes in on the CPU.
    pub fn with_memory_format(mut self, format: df_layers::MemoryFormat) -> Self {
        self.memory_format = Some(format);
        self
    }
}

/// A family configuration, before building.
enum ModelConfig {
    Meso4(MesoConfig),
    MesoInception4(MesoConfig),
    Vgg(VggConfig),
    ResNet(ResNetConfig),
    EfficientNet(EfficientNetConfig),
    InceptionResNetV2(InceptionResNetV2Config),
}

impl ModelConfig {
    fn feature_shape(&self) -> [i64; 3] {
        match self {
            ModelConfig::Meso4(c) | ModelConfig::MesoInception4(c) => c.feature_shape(),
            ModelConfig::Vgg(c) => c.feature_shape(),
            ModelConfig::ResNet(c) => c.feature_shape(),
            ModelConfig::EfficientNet(c) => c.feature_shape(),
            ModelConfig::InceptionResNetV2(c) => c.feature_shape(),
        }
    }

    fn build(self, p: &nn::Path<'_>) -> Result<Box<dyn Model>> {
        Ok(match self {
            ModelConfig::Meso4(c) => Box::new(meso4(p, &c)?),
            ModelConfig::MesoInception4(c) => Box::new(meso_inception4(p, &c)?),
            ModelConfig::Vgg(c) => Box::new(vgg16(p, &c)?),
            ModelConfig::ResNet(c) => Box::new(resnet50(p, &c)?),
            ModelConfig::EfficientNet(c) => Box::new(efficientnet(p, &c)?),
            ModelConfig::InceptionResNetV2(c) => Box::new(inception_resnet_v2(p, &c)?),
        })
    }
}

/// Applies the options common to every family through its own setters.
macro_rules! apply_options {
    ($cfg:expr, $o:expr) => {{
        let mut cfg = $cfg;
        if let Some(top) = &$o.top {
            cfg = cfg.with_top(top.clone());
        }
        if let Some([h, w]) = $o.input_size {
            cfg = cfg.with_input_size(h, w);
        }
        if let Some(rate) = $o.dropout {
            cfg = cfg.with_dropout(rate);
        }
        if let Some(l2) = $o.l2 {
            cfg = cfg.with_l2(l2);
        }
        if let Some(format) = $o.memory_format {
            cfg = cfg.with_memory_format(format);
        }
        cfg
    }};
}

fn efficientnet_config(index: usize, o: &BuildOptions) -> Result<ModelConfig> {
    Ok(ModelConfig::EfficientNet(apply_options!(
        EfficientNetConfig::preset(index)?,
        o
    )))
}

fn imagenet_top() -> Top {
    Top::ImageNet { classes: 1000 }
}

macro_rules! efficientnet_entry {
    ($index:literal, $name:literal, $size:literal, $with:expr, $without:expr) => {
        ModelInfo {
            name: $name,
            description: concat!(
                "EfficientNet-B",
                $index,
                " (Keras EfficientNetB",
                $index,
                ")"
            ),
            input_size: [$size, $size],
            min_input_size: 32,
            preprocessing: IMAGENET,
            keras_params: Some(KerasParams {
                with_top: $with,
                without_top: Some($without),
            }),
            default_top: imagenet_top,
            config: |o| efficientnet_config($index, o),
        }
    };
}

const IMAGENET: Preprocessing = Preprocessing {
    channel_order: crate::spec::ChannelOrder::Rgb,
    scale: 1.0 / 255.0,
    mean: crate::spec::IMAGENET_RGB_MEAN,
    std: crate::spec::IMAGENET_RGB_STD,
};
const UNIT: Preprocessing = Preprocessing {
    channel_order: crate::spec::ChannelOrder::Rgb,
    scale: 1.0 / 255.0,
    mean: [0.0; 3],
    std: [1.0; 3],
};
const CAFFE: Preprocessing = Preprocessing {
    channel_order: crate::spec::ChannelOrder::Bgr,
    scale: 1.0,
    mean: crate::spec::CAFFE_BGR_MEAN,
    std: [1.0; 3],
};
const TF: Preprocessing = Preprocessing {
    channel_order: crate::spec::ChannelOrder::Rgb,
    scale: 1.0 / 127.5,
    mean: [1.0; 3],
    std: [1.0; 3],
};

/// Every registered model, in a fixed order. Parameter counts: MesoNet from
/// `../shared/data/mesonet/README` (the authors' architecture in Keras 3.15); the others
/// from Keras 3.15 `keras.applications` with `weights=None`
/// (`../shared/reference/keras_applications_params.json`).
static REGISTRY: [ModelInfo; 14] = [
    ModelInfo {
        name: "meso4",
        description: "Meso-4 (MesoNet, Afchar et al. 2018)",
        input_size: [256, 256],
        min_input_size: 1,
        preprocessing: UNIT,
        keras_params: Some(KerasParams {
            with_top: count(28_073, 27_977),
            without_top: None,
        }),
        default_top: Top::mesonet,
        config: |o| Ok(ModelConfig::Meso4(apply_options!(MesoConfig::paper(), o))),
    },
    ModelInfo {
        name: "meso_inception4",
        description: "MesoInception-4 (MesoNet, Afchar et al. 2018)",
        input_size: [256, 256],
        min_input_size: 1,
        preprocessing: UNIT,
        keras_params: Some(KerasParams {
            with_top: count(28_725, 28_615),
            without_top: None,
        }),
        default_top: Top::mesonet,
        config: |o| {
            Ok(ModelConfig::MesoInception4(apply_options!(
                MesoConfig::paper(),
                o
            )))
        },
    },
    ModelInfo {
        name: "vgg16",
        description: "VGG16, configuration D (Keras VGG16)",
        input_size: [224, 224],
        min_input_size: 32,
        preprocessing: CAFFE,
        keras_params: Some(KerasParams {
            with_top: count(138_357_544, 138_357_544),
            without_top: Some(count(14_714_688, 14_714_688)),
        }),
        default_top: imagenet_top,
        config: |o| Ok(ModelConfig::Vgg(apply_options!(VggConfig::d(), o))),
    },
    ModelInfo {
        name: "vgg16_c",
        description: "VGG16, configuration C with the study's head (1×1 convs closing stages 3-5)",
        input_size: [224, 224],
        min_input_size: 32,
        preprocessing: CAFFE,
        keras_params: None,
        default_top: || Top::study([1024, 2048], 0.5, 0.0),
        config: |o| Ok(ModelConfig::Vgg(apply_options!(VggConfig::c(), o))),
    },
    ModelInfo {
        name: "resnet50",
        description: "ResNet50 v1 (Keras ResNet50)",
        input_size: [224, 224],
        min_input_size: 32,
        preprocessing: CAFFE,
        keras_params: Some(KerasParams {
            with_top: count(25_636_712, 25_583_592),
            without_top: Some(count(23_587_712, 23_534_592)),
        }),
        default_top: imagenet_top,
        config: |o| {
            Ok(ModelConfig::ResNet(apply_options!(
                ResNetConfig::imagenet(),
                o
            )))
        },
    },
    efficientnet_entry!(
        0,
        "efficientnet_b0",
        224,
        count(5_330_571, 5_288_548),
        count(4_049_571, 4_007_548)
    ),
    efficientnet_entry!(
        1,
        "efficientnet_b1",
        240,
        count(7_856_239, 7_794_184),
        count(6_575_239, 6_513_184)
    ),
    efficientnet_entry!(
        2,
        "efficientnet_b2",
        260,
        count(9_177_569, 9_109_994),
        count(7_768_569, 7_700_994)
    ),
    efficientnet_entry!(
        3,
        "efficientnet_b3",
        300,
        count(12_320_535, 12_233_232),
        count(10_783_535, 10_696_232)
    ),
    efficientnet_entry!(
        4,
        "efficientnet_b4",
        380,
        count(19_466_823, 19_341_616),
        count(17_673_823, 17_548_616)
    ),
    efficientnet_entry!(
        5,
        "efficientnet_b5",
        456,
        count(30_562_527, 30_389_784),
        count(28_513_527, 28_340_784)
    ),
    efficientnet_entry!(
        6,
        "efficientnet_b6",
        528,
        count(43_265_143, 43_040_704),
        count(40_960_143, 40_735_704)
    ),
    efficientnet_entry!(
        7,
        "efficientnet_b7",
        600,
        count(66_658_687, 66_347_960),
        count(64_097_687, 63_786_960)
    ),
    ModelInfo {
        name: "inception_resnet_v2",
        description: "Inception-ResNet-v2 (Keras InceptionResNetV2)",
        input_size: [299, 299],
        min_input_size: 75,
        preprocessing: TF,
        keras_params: Some(KerasParams {
            with_top: count(55_873_736, 55_813_192),
            without_top: Some(count(54_336_736, 54_276_192)),
        }),
        default_top: imagenet_top,
        config: |o| {
            Ok(ModelConfig::InceptionResNetV2(apply_options!(
                InceptionResNetV2Config::default(),
                o
            )))
        },
    },
];

/// Every registered model.
pub fn registry() -> &'static [ModelInfo] {
    &REGISTRY
}

/// The registry names, in registry order.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|m| m.name).collect()
}

/// The model registered as `name`.
///
/// # Errors
/// [`Error::UnknownModel`] listing the known names.
pub fn info(name: &str) -> Result<&'static ModelInfo> {
    REGISTRY
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| Error::UnknownModel {
            name: name.to_string(),
            known: names().into_iter().map(String::from).collect(),
        })
}

/// Builds the model registered as `name` under `p`.
///
/// # Errors
/// [`Error::UnknownModel`] listing the known names; the model's configuration errors.
pub fn build(name: &str, p: &nn::Path<'_>, options: &BuildOptions) -> Result<Box<dyn Model>> {
    info(name)?.build(p, options)
}

fn from_json<T: serde::de::DeserializeOwned>(name: &str, config: &serde_json::Value) -> Result<T> {
    serde_json::from_value(config.clone()).map_err(|e| Error::InvalidConfig {
        model: name.to_string(),
        option: "config",
        reason: format!("the stored configuration does not parse: {e}"),
    })
}

/// Builds the model registered as `name` from its configuration as [`Model::config_json`]
/// wrote it (how checkpoints reopen).
///
/// # Errors
/// [`Error::UnknownModel`]; [`Error::InvalidConfig`] when the JSON is not that model's
/// configuration; the model's configuration errors.
pub fn build_from_config(
    name: &str,
    p: &nn::Path<'_>,
    config: &serde_json::Value,
) -> Result<Box<dyn Model>> {
    info(name)?;
    let model_config = match name {
        "meso4" => ModelConfig::Meso4(from_json(name, config)?),
        "meso_inception4" => ModelConfig::MesoInception4(from_json(name, config)?),
        "vgg16" | "vgg16_c" => ModelConfig::Vgg(from_json(name, config)?),
        "resnet50" => ModelConfig::ResNet(from_json(name, config)?),
        "inception_resnet_v2" => ModelConfig::InceptionResNetV2(from_json(name, config)?),
        _ => ModelConfig::EfficientNet(from_json(name, config)?),
    };
    let model = model_config.build(p)?;
    if model.name() != name {
        return Err(Error::InvalidConfig {
            model: name.to_string(),
            option: "config",
            reason: format!("the stored configuration builds `{}`", model.name()),
        });
    }
    Ok(model)
}

/// A model built and loaded from a weight file, with its variables.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model's variables (to train further or save).
    pub var_store: VarStore,
    /// The model.
    pub model: Box<dyn Model>,
    /// For a Keras import: what was imported.
    pub keras: Option<KerasImport>,
}

impl LoadedModel {
    /// The input the loaded weights expect: the model's [`InputSpec`], with the
    /// preprocessing of a Keras file's `Normalization` layer when it has one (see
    /// [`crate::keras::KerasNormalization::preprocessing`]).
    pub fn input_spec(&self) -> InputSpec {
        let mut spec = self.model.input_spec();
        if let Some(p) = self
            .keras
            .as_ref()
            .and_then(|k| k.normalization.as_ref())
            .and_then(|n| n.preprocessing())
        {
            spec.preprocessing = p;
        }
        spec
    }
}

/// Options of [`load_keras`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KerasLoadOptions {
    /// Import options (polarity).
    pub import: KerasImportOptions,
    /// The top; `None` to infer it from the file (see [`infer_top`]).
    pub top: Option<Top>,
    /// Input size; `None` for the model's default, or the size a Flatten head's weights
    /// imply.
    pub input_size: Option<[i64; 2]>,
}

impl KerasLoadOptions {
    /// Sets the polarity of the file's output.
    pub fn with_polarity(mut self, polarity: Polarity) -> Self {
        self.import.polarity = polarity;
        self
    }
}

/// The top a Keras file's dense layers describe, with the input size it implies.
///
/// - no `Dense` layer: a backbone (feature map out);
/// - last `Dense` with one unit: a binary head. A `Dense(16) → Dense(1)` pair on a MesoNet
///   model is the authors' head ([`Top::mesonet`]); three layers are the study's head
///   ([`Top::study`], dropout 0.5); otherwise ReLU hidden layers. Hidden activations cannot
///   be read from weights: they are assumed to be the study's (ReLU) and the authors'
///   (LeakyReLU 0.1) — pass [`KerasLoadOptions::top`] for another head. Dropout and L2
///   do not change predictions.
/// - otherwise Keras' ImageNet classifier with that many classes.
///
/// The first dense layer's input rows tell flatten from global average pooling: `C`
/// rows (the backbone's channels) is pooling, `C·H·W` a Flatten of an `H×W` map; when that
/// map is not the default input's, the input size is searched (multiples of 32 first) for
/// one that gives it.
///
/// # Errors
/// [`Error::UnknownModel`]; [`Error::KerasTop`] when the dense layers fit no input size of
/// the model.
pub fn infer_top(
    name: &str,
    weights: &KerasWeights,
    input_size: Option<[i64; 2]>,
) -> Result<(Top, [i64; 2])> {
    let info = info(name)?;
    let size = input_size.unwrap_or(info.input_size);
    let dense: Vec<(&str, i64, i64)> = weights
        .layers_of(KerasLayerKind::Dense)
        .filter_map(|l| {
            let k = l.tensor(crate::layout::KerasRole::Kernel)?;
            Some((l.name.as_str(), k.shape[0], k.shape[1]))
        })
        .collect();
    let Some(&(_, rows, _)) = dense.first() else {
        return Ok((
            Top::Backbone {
                pooling: HeadInput::Flatten,
            },
            size,
        ));
    };
    let &(_, _, last_units) = dense.last().unwrap_or(&dense[0]);
    let options = |s: [i64; 2]| BuildOptions {
        input_size: Some(s),
        ..BuildOptions::default()
    };
    let [c, h, w] = info.feature_shape(&options(size))?;
    let (input, size) = if rows == c && c * h * w != c {
        (HeadInput::GlobalAvgPool, size)
    } else if rows == c * h * w {
        (HeadInput::Flatten, size)
    } else if input_size.is_none() {
        match find_flatten_size(info, rows)? {
            Some(s) => (HeadInput::Flatten, s),
            None => {
                return Err(no_fit(weights, name, rows, [c, h, w], size));
            }
        }
    } else {
        return Err(no_fit(weights, name, rows, [c, h, w], size));
    };
    if last_units != 1 {
        return Ok((
            Top::ImageNet {
                classes: last_units,
            },
            size,
        ));
    }
    let units: Vec<i64> = dense.iter().map(|&(_, _, u)| u).collect();
    let is_meso = matches!(name, "meso4" | "meso_inception4");
    let top = match (units.as_slice(), input) {
        ([16, 1], HeadInput::Flatten) if is_meso => Top::mesonet(),
        ([u0, u1, 1], HeadInput::Flatten) => Top::study([*u0, *u1], 0.5, 0.0),
        _ => {
            let n = units.len();
            let layers = units
                .iter()
                .enumerate()
                .map(|(i, &u)| {
                    let name = df_layers::keras_auto_name("dense", i);
                    let act = if i + 1 == n {
                        Activation::Linear
                    } else {
                        Activation::Relu
                    };
                    DenseLayerConfig::new(name, u, act)
                })
                .collect();
            Top::Binary { input, layers }
        }
    };
    Ok((top, size))
}

fn no_fit(
    weights: &KerasWeights,
    name: &str,
    rows: i64,
    [c, h, w]: [i64; 3],
    size: [i64; 2],
) -> Error {
    Error::KerasTop {
        path: weights.path.clone(),
        model: name.to_string(),
        reason: format!(
            "its first dense layer takes {rows} inputs, but `{name}` gives {c} channels, \
             {c}×{h}×{w} = {} when flattened at {}×{}; is it a `{name}` file? If so, give \
             the input size it was trained at",
            c * h * w,
            size[0],
            size[1]
        ),
    }
}

/// The input size whose feature map, flattened, has `rows` values: multiples of 32 first
/// (the usual training sizes), then every size.
fn find_flatten_size(info: &ModelInfo, rows: i64) -> Result<Option<[i64; 2]>> {
    let candidates = (1..=64)
        .map(|k| 32 * k)
        .chain(info.min_input_size..=2048)
        .filter(|&s| s >= info.min_input_size);
    for s in candidates {
        let [c, h, w] = info.feature_shape(&BuildOptions {
            input_size: Some([s, s]),
            ..BuildOptions::default()
        })?;
        if c * h * w == rows {
            return Ok(Some([s, s]));
        }
    }
    Ok(None)
}

/// Builds the model `name` for a Keras weight file and imports it: the top and input size
/// come from the file ([`infer_top`]) unless `options` gives them.
///
/// # Errors
/// Those of [`KerasWeights::read`], [`infer_top`], [`build`] and
/// [`crate::keras::import_keras`].
pub fn load_keras(
    name: &str,
    path: impl AsRef<Path>,
    device: Device,
    options: &KerasLoadOptions,
) -> Result<LoadedModel> {
    let weights = KerasWeights::read(path)?;
    let (top, size) = match &options.top {
        Some(top) => (
            top.clone(),
            options.input_size.unwrap_or(info(name)?.input_size),
        ),
        None => infer_top(name, &weights, options.input_size)?,
    };
    let var_store = VarStore::new(device);
    let build_options = BuildOptions {
        top: Some(top),
        input_size: Some(size),
        ..BuildOptions::default()
    };
    let model = build(name, &var_store.root(), &build_options)?;
    let report = import_keras_weights(&var_store, model.as_ref(), &weights, &options.import)?;
    Ok(LoadedModel {
        var_store,
        model,
        keras: Some(report),
    })
}

/// Loads weights for prediction: a native checkpoint (`.safetensors`, whose metadata names
/// the model: `name`, when given, must agree) or a Keras file (`.h5`, `name` required).
///
/// # Errors
/// [`Error::InvalidConfig`] for a missing or disagreeing name or an unknown extension;
/// those of [`crate::checkpoint::open_checkpoint`] and [`load_keras`].
pub fn load_weights(
    name: Option<&str>,
    path: impl AsRef<Path>,
    device: Device,
    options: &KerasLoadOptions,
) -> Result<LoadedModel> {
    let path = path.as_ref();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let bad = |reason: String| Error::InvalidConfig {
        model: name.unwrap_or("?").to_string(),
        option: "weights",
        reason,
    };
    match ext.as_str() {
        "safetensors" => {
            let loaded = crate::checkpoint::open_checkpoint(path, device)?;
            if let Some(name) = name {
                if loaded.model.name() != name {
                    return Err(bad(format!(
                        "{} is a checkpoint of `{}`",
                        path.display(),
                        loaded.model.name()
                    )));
                }
            }
            Ok(loaded)
        }
        "h5" | "hdf5" => {
            let name = name.ok_or_else(|| {
                bad(format!(
                    "{}: a Keras file does not say which model it holds; name it",
                    path.display()
                ))
            })?;
            load_keras(name, path, device, options)
        }
        _ => Err(bad(format!(
            "{}: expected a `.safetensors` checkpoint or a Keras `.h5` file",
            path.display()
        ))),
    }
}
