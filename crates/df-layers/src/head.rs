//! Dense classification heads and drop-path.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use crate::activation::Activation;
use crate::conv::path_name;
use crate::error::{invalid, Result};
use crate::init::Initializer;
use crate::trace;

/// How a head turns a feature map `[N, C, H, W]` into a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadInput {
    /// Keras `Flatten`: `C·H·W` features. Keras flattens NHWC, this flattens NCHW, so Keras
    /// weights of the first dense layer need their rows permuted on import (see
    /// [`DenseHead::flatten_shape`]).
    #[default]
    Flatten,
    /// Keras `GlobalAveragePooling2D`: `C` features.
    GlobalAvgPool,
    /// Keras `GlobalMaxPooling2D`: `C` features.
    GlobalMaxPool,
}

/// One dense layer of a [`DenseHead`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DenseLayerConfig {
    /// Keras layer name, used as the variable name (`dense`, `dense_1`, `fc1` ...).
    pub name: String,
    /// Output units.
    pub units: i64,
    /// Activation after the layer.
    pub activation: Activation,
    /// Dropout rate applied to the layer's *input* (train mode only); 0 for none.
    pub dropout_before: f64,
    /// Keras `kernel_regularizer=l2(λ)`: the trainer adds `λ·Σw²` of this layer's kernel.
    pub l2: f64,
    /// How the kernel is initialised (Keras' `kernel_initializer`; default
    /// `glorot_uniform`).
    #[serde(default)]
    pub kernel_init: Initializer,
}

impl DenseLayerConfig {
    /// A dense layer named `name` with `units` outputs and `activation`, no dropout, no L2.
    pub fn new(name: impl Into<String>, units: i64, activation: Activation) -> Self {
        Self {
            name: name.into(),
            units,
            activation,
            dropout_before: 0.0,
            l2: 0.0,
            kernel_init: Initializer::GlorotUniform,
        }
    }
    /// Sets the kernel initialiser.
    pub fn with_kernel_init(mut self, init: Initializer) -> Self {
        self.kernel_init = init;
        self
    }
    /// Sets the dropout rate on the layer's input.
    pub fn with_dropout_before(mut self, rate: f64) -> Self {
        self.dropout_before = rate;
        self
    }
    /// Sets the L2 coefficient of the kernel.
    pub fn with_l2(mut self, l2: f64) -> Self {
        self.l2 = l2;
        self
    }
}

/// Configuration of a [`DenseHead`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DenseHeadConfig {
    /// The feature map the head receives, `[C, H, W]`.
    pub input_shape: [i64; 3],
    /// How the feature map becomes a vector.
    pub input: HeadInput,
    /// The dense layers, in order; the last one gives the output (one logit for a binary
    /// detector, with [`Activation::Linear`]).
    pub layers: Vec<DenseLayerConfig>,
}

impl DenseHeadConfig {
    /// The study's custom top: Flatten → Dense(`units[0]`, relu) → Dropout(`dropout`) →
    /// Dense(`units[1]`, relu) → Dense(1) logit, with `l2` on every kernel. Keras names
    /// `dense`, `dense_1`, `dense_2`.
    pub fn study(input_shape: [i64; 3], units: [i64; 2], dropout: f64, l2: f64) -> Self {
        Self {
            input_shape,
            input: HeadInput::Flatten,
            layers: vec![
                DenseLayerConfig::new("dense", units[0], Activation::Relu).with_l2(l2),
                DenseLayerConfig::new("dense_1", units[1], Activation::Relu)
                    .with_dropout_before(dropout)
                    .with_l2(l2),
                DenseLayerConfig::new("dense_2", 1, Activation::Linear).with_l2(l2),
            ],
        }
    }

    /// The MesoNet head: Flatten → Dropout(0.5) → Dense(16) → LeakyReLU(0.1) → Dropout(0.5)
    /// → Dense(1) logit. Keras names `dense_1`, `dense_2` as in the authors' files are
    /// matched by order on import; here they are `dense` and `dense_1`.
    pub fn mesonet(input_shape: [i64; 3]) -> Self {
        Self {
            input_shape,
            input: HeadInput::Flatten,
            layers: vec![
                DenseLayerConfig::new("dense", 16, Activation::LeakyRelu(0.1))
                    .with_dropout_before(0.5),
                DenseLayerConfig::new("dense_1", 1, Activation::Linear).with_dropout_before(0.5),
            ],
        }
    }

    /// A head on global average pooling of a feature map with `channels` channels: only
    /// the channels count, whatever the map's height and width, so none are asked for.
    pub fn global_avg_pool(channels: i64, layers: Vec<DenseLayerConfig>) -> Self {
        Self {
            input_shape: [channels, 1, 1],
            input: HeadInput::GlobalAvgPool,
            layers,
        }
    }

    /// Number of features entering the first dense layer.
    pub fn in_features(&self) -> i64 {
        let [c, h, w] = self.input_shape;
        match self.input {
            HeadInput::Flatten => c * h * w,
            HeadInput::GlobalAvgPool | HeadInput::GlobalMaxPool => c,
        }
    }

    /// Sets the dropout of every layer that has one.
    pub fn with_dropout(mut self, rate: f64) -> Self {
        for l in self.layers.iter_mut().filter(|l| l.dropout_before > 0.0) {
            l.dropout_before = rate;
        }
        self
    }

    /// Sets the L2 coefficient of every kernel.
    pub fn with_l2(mut self, l2: f64) -> Self {
        for l in &mut self.layers {
            l.l2 = l2;
        }
        self
    }
}

/// A dense layer's variables: `{name}.weight` `[out, in]` and `{name}.bias` `[out]`.
#[derive(Debug)]
pub struct Dense {
    /// Kernel, `[out, in]` (Keras stores `(in, out)`).
    pub weight: Tensor,
    /// Bias.
    pub bias: Tensor,
    path: String,
    config: DenseLayerConfig,
}

impl Dense {
    /// Creates `{name}.weight` and `{name}.bias` under `p`.
    ///
    /// # Errors
    /// Non-positive sizes, an empty name, or dropout/L2 out of range.
    pub fn new(p: &nn::Path<'_>, in_features: i64, config: &DenseLayerConfig) -> Result<Self> {
        let block = format!("{}/{}", path_name(p), config.name);
        if config.name.is_empty() {
            return Err(invalid(block, "name", "must not be empty"));
        }
        if in_features <= 0 {
            return Err(invalid(
                block,
                "in_features",
                format!("must be positive, got {in_features}"),
            ));
        }
        if config.units <= 0 {
            return Err(invalid(
                block,
                "units",
                format!("must be positive, got {}", config.units),
            ));
        }
        if !(0.0..1.0).contains(&config.dropout_before) {
            return Err(invalid(
                block,
                "dropout_before",
                format!("must be in [0, 1), got {}", config.dropout_before),
            ));
        }
        if config.l2.is_nan() || config.l2 < 0.0 {
            return Err(invalid(
                block,
                "l2",
                format!("must be >= 0, got {}", config.l2),
            ));
        }
        let q = p / config.name.as_str();
        crate::error::claim(&q, &["weight", "bias"])?;
        Ok(Self {
            path: q.components().collect::<Vec<_>>().join("."),
            weight: config.kernel_init.variable(
                &q,
                "weight",
                &[config.units, in_features],
                (in_features, config.units),
            ),
            bias: q.zeros("bias", &[config.units]),
            config: config.clone(),
        })
    }

    /// The layer's configuration.
    pub fn config(&self) -> &DenseLayerConfig {
        &self.config
    }

    /// The layer's variable path (`dense_1`, or `head.dense_1` under a sub-path): its
    /// variables are `{path}.weight` and `{path}.bias`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The names of the layer's variables in its `VarStore`.
    pub fn variable_names(&self) -> [String; 2] {
        [
            format!("{}.weight", self.path),
            format!("{}.bias", self.path),
        ]
    }
}

impl ModuleT for Dense {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let xs = if self.config.dropout_before > 0.0 {
            xs.dropout(self.config.dropout_before, train)
        } else {
            xs.shallow_clone()
        };
        let ys = self
            .config
            .activation
            .apply(&xs.linear(&self.weight, Some(&self.bias)));
        trace::record(|| self.config.name.clone(), "Dense", &ys);
        ys
    }
}

/// Pooling or flattening followed by dense layers with dropout; one logit out for the
/// binary detectors.
///
/// # Shapes
/// `[N, C, H, W]` (its `input_shape`) → `[N, units of the last layer]`.
#[derive(Debug)]
pub struct DenseHead {
    /// The dense layers, in order.
    pub layers: Vec<Dense>,
    config: DenseHeadConfig,
}

impl DenseHead {
    /// Creates the layers under `p`.
    ///
    /// # Errors
    /// No layers, a non-positive input shape, or an invalid layer.
    pub fn new(p: &nn::Path<'_>, config: &DenseHeadConfig) -> Result<Self> {
        if config.layers.is_empty() {
            return Err(invalid(
                path_name(p),
                "layers",
                "a head needs at least one dense layer",
            ));
        }
        if config.input_shape.iter().any(|&d| d <= 0) {
            return Err(invalid(
                path_name(p),
                "input_shape",
                format!("must be positive, got {:?}", config.input_shape),
            ));
        }
        let mut in_features = config.in_features();
        let mut layers = Vec::with_capacity(config.layers.len());
        for layer in &config.layers {
            layers.push(Dense::new(p, in_features, layer)?);
            in_features = layer.units;
        }
        Ok(Self {
            layers,
            config: config.clone(),
        })
    }

    /// The head's configuration.
    pub fn config(&self) -> &DenseHeadConfig {
        &self.config
    }

    /// The names of every variable of the head in its `VarStore`, layer by layer: what a
    /// frozen backbone leaves trainable, and what a backbone import skips.
    pub fn variable_names(&self) -> Vec<String> {
        self.layers.iter().flat_map(Dense::variable_names).collect()
    }

    /// `Some([C, H, W])` when the head flattens a feature map (the first dense layer's rows
    /// are then in NCHW order), `None` after global pooling.
    pub fn flatten_shape(&self) -> Option<[i64; 3]> {
        (self.config.input == HeadInput::Flatten).then_some(self.config.input_shape)
    }

    /// The kernels that carry an L2 coefficient, with it: the trainer adds
    /// `Σ λ·Σw²` over these to the loss (Keras `kernel_regularizer` semantics).
    pub fn l2_terms(&self) -> Vec<(&Tensor, f64)> {
        self.layers
            .iter()
            .filter(|l| l.config.l2 > 0.0)
            .map(|l| (&l.weight, l.config.l2))
            .collect()
    }

    /// `Σ λ·Σw²` over [`Self::l2_terms`] (a scalar tensor, zero when no layer has L2).
    pub fn l2_penalty(&self) -> Tensor {
        let device = self.layers[0].weight.device();
        self.l2_terms()
            .into_iter()
            .fold(Tensor::zeros([], (Kind::Float, device)), |acc, (w, l2)| {
                acc + w.square().sum(Kind::Float) * l2
            })
    }
}

impl ModuleT for DenseHead {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // Keras' names: VGG16's and MesoNet's `flatten`, the applications' `avg_pool` and
        // `max_pool`.
        let (mut ys, name, class) = match self.config.input {
            HeadInput::Flatten => (xs.flatten(1, -1), "flatten", "Flatten"),
            HeadInput::GlobalAvgPool => (
                xs.mean_dim(&[-2i64, -1][..], false, None::<Kind>),
                "avg_pool",
                "GlobalAveragePooling2D",
            ),
            HeadInput::GlobalMaxPool => (
                xs.amax(&[-2i64, -1][..], false),
                "max_pool",
                "GlobalMaxPooling2D",
            ),
        };
        trace::record(|| name.into(), class, &ys);
        for layer in &self.layers {
            ys = layer.forward_t(&ys, train);
        }
        ys
    }
}

/// Stochastic depth ("drop path", EfficientNet's drop-connect): in train mode, zeroes a
/// whole sample's residual branch with probability `rate` and scales survivors by
/// `1 / (1 - rate)`; the identity in eval mode.
///
/// # Shapes
/// `[N, ...]` → `[N, ...]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropPath {
    rate: f64,
}

impl DropPath {
    /// A drop-path with drop probability `rate`.
    ///
    /// # Errors
    /// `rate` outside `[0, 1)`.
    pub fn new(rate: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&rate) {
            return Err(invalid(
                "DropPath",
                "rate",
                format!("must be in [0, 1), got {rate}"),
            ));
        }
        Ok(Self { rate })
    }

    /// The drop probability.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

impl ModuleT for DropPath {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if !train || self.rate == 0.0 {
            return xs.shallow_clone();
        }
        let keep = 1.0 - self.rate;
        let mut shape = vec![1i64; xs.dim()];
        shape[0] = xs.size()[0];
        // Keras' Dropout(noise_shape=(None, 1, 1, 1)): floor(keep + U[0, 1)) is 1 with
        // probability `keep`.
        let mask = (Tensor::rand(&shape, (xs.kind(), xs.device())) + keep).floor();
        xs * mask / keep
    }
}
