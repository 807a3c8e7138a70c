//! What every model shares: its input description (size, preprocessing), its top, the
//! polarity of imported weights, and the [`Model`] trait.
//!
//! `df-data` does not depend on this crate: it takes [`InputSpec`] as plain data (the
//! fields map one to one onto its transform config), and `df-train` or an example
//! connects the two.

use df_layers::{Activation, DenseHead, DenseHeadConfig, DenseLayerConfig, HeadInput};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// Keras' ImageNet BGR means of the "caffe" preprocessing (VGG16, ResNet50).
pub const CAFFE_BGR_MEAN: [f64; 3] = [103.939, 116.779, 123.68];
/// ImageNet RGB mean of [0, 1] pixels (EfficientNet's `Normalization` layer).
pub const IMAGENET_RGB_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet RGB standard deviation of [0, 1] pixels.
pub const IMAGENET_RGB_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// Order of the colour channels the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelOrder {
    /// Red, green, blue.
    #[default]
    Rgb,
    /// Blue, green, red (Keras "caffe" mode).
    Bgr,
}

/// How raw pixels (RGB, `0..=255` as f32) become the model's input:
/// `out[c] = (pixel[order[c]] * scale - mean[c]) / std[c]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Preprocessing {
    /// Channel order after conversion.
    pub channel_order: ChannelOrder,
    /// Multiplies the pixel values first.
    pub scale: f64,
    /// Subtracted per channel (in the output channel order) after scaling.
    pub mean: [f64; 3],
    /// Divides per channel after the mean is subtracted.
    pub std: [f64; 3],
}

impl Preprocessing {
    /// MesoNet: `pixels / 255`.
    pub const fn unit() -> Self {
        Self {
            channel_order: ChannelOrder::Rgb,
            scale: 1.0 / 255.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }

    /// Keras `"tf"` mode (InceptionResNetV2): `pixels / 127.5 - 1`, in [-1, 1].
    pub const fn tf() -> Self {
        Self {
            channel_order: ChannelOrder::Rgb,
            scale: 1.0 / 127.5,
            mean: [1.0; 3],
            std: [1.0; 3],
        }
    }

    /// Keras `"caffe"` mode (VGG16, ResNet50): RGB → BGR, ImageNet BGR mean subtracted,
    /// no scaling.
    pub const fn caffe() -> Self {
        Self {
            channel_order: ChannelOrder::Bgr,
            scale: 1.0,
            mean: CAFFE_BGR_MEAN,
            std: [1.0; 3],
        }
    }

    /// EfficientNet with ImageNet weights: Keras' `Rescaling(1/255)` then its
    /// `Normalization` layer with the ImageNet RGB mean and variance.
    pub const fn imagenet() -> Self {
        Self {
            channel_order: ChannelOrder::Rgb,
            scale: 1.0 / 255.0,
            mean: IMAGENET_RGB_MEAN,
            std: IMAGENET_RGB_STD,
        }
    }

    /// Applies the preprocessing to RGB pixels in `0..=255`.
    ///
    /// # Shapes
    /// `[N, 3, H, W]` → `[N, 3, H, W]`.
    pub fn apply(&self, pixels: &Tensor) -> Tensor {
        let (kind, device) = (Kind::Float, pixels.device());
        let xs = match self.channel_order {
            ChannelOrder::Rgb => pixels.shallow_clone(),
            ChannelOrder::Bgr => pixels.flip([1]),
        };
        let mean = Tensor::from_slice(&self.mean)
            .to_kind(kind)
            .to_device(device)
            .view([1, 3, 1, 1]);
        let std = Tensor::from_slice(&self.std)
            .to_kind(kind)
            .to_device(device)
            .view([1, 3, 1, 1]);
        (xs.to_kind(kind) * self.scale - mean) / std
    }
}

/// The input a model expects.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputSpec {
    /// Height in pixels.
    pub height: i64,
    /// Width in pixels.
    pub width: i64,
    /// How pixels become inputs.
    pub preprocessing: Preprocessing,
}

/// The resampling filter that brings an image to the model's input size (df-data's
/// `ResizeFilter`, by name: this crate does not depend on df-data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMethod {
    /// Nearest neighbour (Keras' `flow_from_directory` default).
    #[default]
    Nearest,
    /// Pillow's antialiased bilinear filter.
    Bilinear,
    /// Area averaging (Pillow's `BOX`).
    Area,
}

impl std::fmt::Display for ResizeMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Nearest => "nearest",
            Self::Bilinear => "bilinear",
            Self::Area => "area",
        })
    }
}

/// How a photo becomes an image of the model's input size, before its [`Preprocessing`]:
/// what a detector was trained with. Native checkpoints record it (format 3), and the
/// `evaluate` and `predict` programs and `df_train::prepared_transform` apply it unless told
/// otherwise, so that a model trained on central crops is not scored on whole photos. The
/// default (nearest, whole image) is what files without the record are read with.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ImagePreparation {
    /// The resize filter.
    pub resize: ResizeMethod,
    /// The central fraction of each image side kept before resizing; `None`: the whole
    /// image.
    pub center_crop: Option<f32>,
    /// The images were face crops (the `prepare_faces` example's folders, whose
    /// `prepare-faces.json` the trainer reads): scoring detects faces and crops them the
    /// same way. `None`: whole images (or already cropped ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faces: Option<FaceCropRecord>,
}

/// How training faces were cropped (df-face's `CropConfig`, as plain data).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FaceCropRecord {
    /// Side of the crops in pixels.
    pub size: u32,
    /// Growth of the face's box, as a fraction of its side.
    pub margin: f32,
    /// Squared about the box's centre.
    pub square: bool,
    /// Turned so that the eyes are level.
    pub align: bool,
}

impl ImagePreparation {
    /// Checks the values (a centre crop is a fraction in (0, 1]).
    ///
    /// # Errors
    /// A message naming the field at fault.
    pub fn check(&self) -> std::result::Result<(), String> {
        match self.center_crop {
            Some(f) if !(f > 0.0 && f <= 1.0) => {
                return Err(format!("center_crop must be a fraction in (0, 1], got {f}"))
            }
            // 8 px of a 65535 px side (df-data's MIN_CENTER_CROP): no image is large
            // enough for less.
            Some(f) if f < 8.0 / 65535.0 => {
                return Err(format!(
                    "center_crop {f} keeps under 8 px of any image up to 65535 px on a side"
                ))
            }
            _ => {}
        }
        match self.faces {
            Some(f) if f.size == 0 || f.size > 4096 => {
                Err(format!("faces.size must be 1 to 4096 px, got {}", f.size))
            }
            Some(f) if !(f.margin.is_finite() && (0.0..=4.0).contains(&f.margin)) => {
                Err(format!("faces.margin must be 0 to 4, got {}", f.margin))
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for ImagePreparation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(faces) = self.faces {
            write!(
                f,
                "face crops ({} px, margin {}{}{}), ",
                faces.size,
                faces.margin,
                if faces.square { ", square" } else { "" },
                if faces.align { ", aligned" } else { "" }
            )?;
        }
        match self.center_crop {
            Some(c) => write!(f, "centre crop {c}, {} resize", self.resize),
            None => write!(f, "whole image, {} resize", self.resize),
        }
    }
}

/// What the raw output of a set of weights scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// The output is the score of "fake" (this workspace's convention).
    #[default]
    Fake,
    /// The output is the score of "real" (the MesoNet authors' files; Keras'
    /// alphabetical classes for folders `fake`/`real`): the logit's sign is flipped on import.
    Real,
}

/// What sits on top of a model's convolutional backbone.
///
/// # Which head to choose
///
/// A detector needs a binary top ([`Top::Binary`], one logit of "fake"). Choose it by
/// what you train:
///
/// - **the study's models and recipes** (the comparison, the final EfficientNet-B7):
///   [`Top::study`] — Flatten → Dense → Dropout → Dense → Dense(1), the head the study
///   reports; `Top::study([256, 128], 0.5, 1e-4)` is its final model's;
/// - **transfer learning from ImageNet weights**, above all with a frozen backbone or little
///   data: [`Top::pooled`] — global average pooling, then as few parameters as you give it
///   (`Top::pooled(&[], 0.2)` is one dense layer, Keras EfficientNet's own top);
///   [`Top::binary_pooled`] is the same without dropout;
/// - **MesoNet** (`meso4`, `meso_inception4`): [`Top::mesonet`], the authors' head, which
///   their published weights need;
/// - **from a command-line option** (`--top study|pooled --head 256,128`):
///   [`Top::of_kind`] with a [`TopKind`].
///
/// [`Top::ImageNet`] and [`Top::Backbone`] are not detectors: for inspecting a network,
/// importing Keras' ImageNet weights, or features for a head of your own.
///
/// ```
/// # mod deepfake { pub mod models { pub use df_models::*; } pub use tch; }
/// use deepfake::models::{self, BuildOptions, Top, TopKind};
/// use deepfake::tch::{nn::VarStore, Device};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vs = VarStore::new(Device::Cpu);
/// let light = Top::pooled(&[], 0.2);
/// let options = BuildOptions::default().with_input_size(64, 64).with_top(light.clone());
/// let model = models::build("meso4", &vs.root(), &options)?;
/// assert!(light.is_binary() && model.head().is_some());
/// // `--top pooled` with no `--head` is the same head.
/// assert_eq!(Top::of_kind(TopKind::Pooled, None)?, light);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Top {
    /// The backbone alone: the last feature map `[N, C, H, W]`, or `[N, C]` when pooled.
    Backbone {
        /// Keras `pooling="avg"`/`"max"` ([`HeadInput::Flatten`] keeps the feature map).
        pooling: HeadInput,
    },
    /// Keras Applications' ImageNet top (`include_top=True`), `classes` logits (softmax
    /// left to the caller).
    ImageNet {
        /// Number of classes (1000 for ImageNet weights).
        classes: i64,
    },
    /// A binary detector head giving one logit of "fake".
    Binary {
        /// How the feature map enters the head.
        input: HeadInput,
        /// The dense layers; the last has one unit and a linear activation.
        layers: Vec<DenseLayerConfig>,
    },
}

impl Top {
    /// The study's custom top: Flatten → Dense(`units[0]`, relu) → Dropout(`dropout`) →
    /// Dense(`units[1]`, relu) → Dense(1), with L2 `l2` on the kernels.
    pub fn study(units: [i64; 2], dropout: f64, l2: f64) -> Self {
        let cfg = DenseHeadConfig::study([1, 1, 1], units, dropout, l2);
        Top::Binary {
            input: cfg.input,
            layers: cfg.layers,
        }
    }

    /// The MesoNet authors' head (see [`DenseHeadConfig::mesonet`]).
    pub fn mesonet() -> Self {
        let cfg = DenseHeadConfig::mesonet([1, 1, 1]);
        Top::Binary {
            input: cfg.input,
            layers: cfg.layers,
        }
    }

    /// A binary head from global average pooling straight to one logit (Keras name
    /// `predictions`), the light head for transfer learning: [`Top::pooled`] with no
    /// hidden layer and no dropout (which to choose: [`Top`]).
    pub fn binary_pooled() -> Self {
        Top::Binary {
            input: HeadInput::GlobalAvgPool,
            layers: vec![DenseLayerConfig::new("predictions", 1, Activation::Linear)],
        }
    }

    /// Global average pooling → a ReLU dense layer per entry of `hidden` (Keras names
    /// `dense`, `dense_1` ...) → Dropout(`dropout`) → Dense(1) logit (`predictions`).
    pub fn pooled(hidden: &[i64], dropout: f64) -> Self {
        let mut layers: Vec<DenseLayerConfig> = hidden
            .iter()
            .enumerate()
            .map(|(i, &u)| {
                DenseLayerConfig::new(df_layers::keras_auto_name("dense", i), u, Activation::Relu)
            })
            .collect();
        layers.push(
            DenseLayerConfig::new("predictions", 1, Activation::Linear)
                .with_dropout_before(dropout),
        );
        Top::Binary {
            input: HeadInput::GlobalAvgPool,
            layers,
        }
    }

    /// The top of `kind` with hidden units `head` (`None`: the kind's own; the study's
    /// head takes exactly two, a pooled head any number), default dropout and no L2.
    ///
    /// # Errors
    /// A message naming `--head` when the units do not fit the kind or are not positive.
    pub fn of_kind(kind: TopKind, head: Option<&[i64]>) -> std::result::Result<Self, String> {
        if let Some(units) = head {
            if let Some(bad) = units.iter().find(|&&u| u <= 0) {
                return Err(format!("head units must be positive, got {bad}"));
            }
        }
        match (kind, head) {
            (TopKind::Study, None) => Ok(Top::study(STUDY_HEAD_UNITS, STUDY_HEAD_DROPOUT, 0.0)),
            (TopKind::Study, Some(&[a, b])) => Ok(Top::study([a, b], STUDY_HEAD_DROPOUT, 0.0)),
            (TopKind::Study, Some(units)) => Err(format!(
                "the study head has two hidden dense layers (e.g. 256,128), got {} units",
                units.len()
            )),
            (TopKind::Pooled, units) => Ok(Top::pooled(units.unwrap_or(&[]), POOLED_HEAD_DROPOUT)),
            (TopKind::ImageNet, None) => Ok(Top::ImageNet { classes: 1000 }),
            (TopKind::ImageNet, Some(_)) => Err(
                "the ImageNet top has Keras' fixed layers; hidden units apply to the study \
                     and pooled heads"
                    .into(),
            ),
        }
    }

    /// Whether the top gives one logit of "fake" per image (a detector).
    pub fn is_binary(&self) -> bool {
        matches!(self, Top::Binary { layers, .. } if layers.last().is_some_and(|l| l.units == 1))
    }

    /// The head configuration of a binary top over a `[C, H, W]` feature map, or `None`
    /// for the other tops.
    pub fn binary_head_config(&self, feature_shape: [i64; 3]) -> Option<DenseHeadConfig> {
        match self {
            Top::Binary { input, layers } => Some(DenseHeadConfig {
                input_shape: feature_shape,
                input: *input,
                layers: layers.clone(),
            }),
            _ => None,
        }
    }
}

/// The detector tops by name, as the examples' `--top` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopKind {
    /// The study's head ([`Top::study`]): Flatten → Dense → Dropout → Dense → Dense(1).
    Study,
    /// Global average pooling → optional hidden dense layers → Dropout → Dense(1)
    /// ([`Top::pooled`]), the light transfer-learning head.
    Pooled,
    /// Keras' ImageNet classifier (1000 logits): not a detector; for inspection and
    /// Keras imports.
    ImageNet,
}

impl TopKind {
    /// Every kind, in the order the help lists them.
    pub const ALL: [TopKind; 3] = [TopKind::Study, TopKind::Pooled, TopKind::ImageNet];

    /// The name `--top` takes.
    pub fn name(self) -> &'static str {
        match self {
            TopKind::Study => "study",
            TopKind::Pooled => "pooled",
            TopKind::ImageNet => "imagenet",
        }
    }
}

impl std::fmt::Display for TopKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TopKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        TopKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = TopKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown top `{s}`; expected one of {}", names.join(", "))
            })
    }
}

/// The study head's hidden units when none are given (the study's EfficientNet head).
pub const STUDY_HEAD_UNITS: [i64; 2] = [256, 128];
/// The study head's dropout rate.
pub const STUDY_HEAD_DROPOUT: f64 = 0.5;
/// The dropout before a pooled head's last layer (Keras EfficientNet's `top_dropout`
/// for B0).
pub const POOLED_HEAD_DROPOUT: f64 = 0.2;

/// Everything a model built from this crate offers beyond `forward_t`.
///
/// `forward_t` takes preprocessed inputs `[N, 3, H, W]` (see [`Model::input_spec`]) and
/// returns, for a [`Top::Binary`] model, logits of "fake" `[N, 1]`
/// (`p(fake) = sigmoid(logit)`); for [`Top::ImageNet`] `[N, classes]` logits; for
/// [`Top::Backbone`] the feature map or pooled features.
///
/// A model comes from [`crate::build`] (by name), from a family's constructor
/// ([`crate::meso4`] ...), or reopened from a file ([`crate::load_checkpoint`]); a network
/// of your own implements this trait and [`crate::Family`] (see [`crate::family`]).
///
/// ```
/// # mod deepfake { pub mod models { pub use df_models::*; } pub use tch; }
/// use deepfake::models::{self, BuildOptions, Model};
/// use deepfake::tch::{nn::VarStore, Device, Kind, Tensor};
///
/// /// The probability of "fake" of each picture of a preprocessed batch.
/// fn p_fake(model: &dyn Model, batch: &Tensor) -> Tensor {
///     deepfake::tch::no_grad(|| model.forward_t(batch, false)).sigmoid()
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vs = VarStore::new(Device::Cpu);
/// let model = models::build("meso4", &vs.root(), &BuildOptions::default())?;
/// let spec = model.input_spec(); // 256×256, pixels scaled to [0, 1]
/// let batch = Tensor::rand([1, 3, spec.height, spec.width], (Kind::Float, Device::Cpu));
/// let p = p_fake(model.as_ref(), &batch);
/// assert_eq!(p.size(), [1, 1]);
/// # Ok(()) }
/// ```
pub trait Model: ModuleT + Send + std::fmt::Debug {
    /// The registry name (`meso4`, `efficientnet_b7` ...).
    fn name(&self) -> &str;
    /// The input it expects.
    fn input_spec(&self) -> InputSpec;
    /// The family that builds it ([`crate::family::Family::NAME`]), stored in checkpoints
    /// with [`Model::config_json`] so that they reopen through
    /// [`crate::registry::build_from_config`].
    fn family(&self) -> &str;
    /// Its configuration as JSON (stored in checkpoints so they reopen without it): the
    /// family's [`crate::family::Family::Config`] (see [`crate::family::config_to_json`]).
    ///
    /// # Errors
    /// A configuration that does not serialise.
    fn config_json(&self) -> crate::Result<serde_json::Value>;
    /// The backbone: preprocessed inputs `[N, 3, H, W]` to the feature map `[N, C, H', W']`
    /// that enters the top (timm's `forward_features`). `forward_t` is
    /// `forward_head(forward_features(x))`.
    fn forward_features(&self, xs: &Tensor, train: bool) -> Tensor;
    /// The top on a feature map from [`Model::forward_features`]: pooling or flattening and
    /// the dense layers (timm's `forward_head`).
    fn forward_head(&self, features: &Tensor, train: bool) -> Tensor;
    /// The dense layers of the top, the same in every family: the binary head of a
    /// [`Top::Binary`], Keras' classifier of a [`Top::ImageNet`] (VGG16's `fc1`, `fc2`,
    /// `predictions`; the others' `predictions`); `None` for a [`Top::Backbone`]. Its
    /// layers know their variable paths ([`DenseHead::variable_names`]): what a frozen
    /// backbone leaves trainable and what a backbone import skips.
    fn head(&self) -> Option<&DenseHead>;
    /// Grad-CAM's first half: preprocessed inputs `[N, 3, H, W]` to the activation of the
    /// layer a Grad-CAM explains ([`Model::cam_layer`]), `[N, C, H', W']`. The default is
    /// [`Model::forward_features`], right where the feature map is that layer; a family
    /// whose named layer comes earlier (MesoNet's and VGG's, a pooling follows) overrides
    /// it and [`Model::forward_cam_head`] so that
    /// `forward_cam_head(forward_cam_features(x))` is `forward_t(x)`.
    fn forward_cam_features(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_features(xs, train)
    }
    /// Grad-CAM's second half: the activation from [`Model::forward_cam_features`] to the
    /// output (the default: [`Model::forward_head`]).
    fn forward_cam_head(&self, activation: &Tensor, train: bool) -> Tensor {
        self.forward_head(activation, train)
    }
    /// The Keras name of the layer [`Model::forward_cam_features`] ends at: the catalogue
    /// row's `gradcam_layer` for a registered model, `"features"` (the output of
    /// [`Model::forward_features`]) for one the registry does not know.
    fn cam_layer(&self) -> String {
        crate::registry::info(self.name())
            .map(|info| info.gradcam_layer.to_string())
            .unwrap_or_else(|_| "features".to_string())
    }
    /// `Σ λ·Σw²` over the head's kernels marked with L2 (a zero scalar when none).
    fn l2_penalty(&self) -> Tensor {
        match self.head() {
            Some(head) => head.l2_penalty(),
            None => Tensor::zeros([], (Kind::Float, Device::Cpu)),
        }
    }
}
