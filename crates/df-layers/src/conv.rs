//! Convolution, batch normalisation and their combination, with Keras semantics.
//!
//! Keras' `"same"` padding pads `total = max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`
//! pixels along a dimension of size `n`, `total / 2` before and the rest after (TensorFlow's
//! split). When `total` is odd (strided convolutions over even sizes) that is asymmetric,
//! which a symmetric `padding` argument of libtorch's convolution cannot express; [`Padding`]
//! computes the split from the input at run time and pads explicitly only when needed.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::activation::Activation;
use crate::error::{invalid, Result};
use crate::init::{conv_fans, Initializer};
use crate::layout::MemoryFormat;
use crate::trace;

/// Keras' padding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding (Keras `"valid"`).
    #[default]
    Valid,
    /// Output size `ceil(n / stride)`, padding split as TensorFlow does (Keras `"same"`).
    Same,
}

impl Padding {
    /// The `(before, after)` padding along one dimension of size `size` for a window of
    /// `kernel` taps with `stride` and `dilation`.
    pub fn amounts(self, size: i64, kernel: i64, stride: i64, dilation: i64) -> (i64, i64) {
        match self {
            Padding::Valid => (0, 0),
            Padding::Same => {
                let out = (size + stride - 1) / stride;
                let total = ((out - 1) * stride + (kernel - 1) * dilation + 1 - size).max(0);
                (total / 2, total - total / 2)
            }
        }
    }

    /// Pads an NCHW tensor for a `kernel` window, returning the (possibly) padded tensor
    /// and the symmetric padding still to give the operator itself.
    ///
    /// Symmetric amounts are left to the operator (cheaper: no copy); asymmetric ones are
    /// applied here with `pad_value`.
    pub fn apply(
        self,
        x: &Tensor,
        kernel: [i64; 2],
        stride: [i64; 2],
        dilation: [i64; 2],
        pad_value: f64,
    ) -> (Tensor, [i64; 2]) {
        let size = x.size();
        let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
        let (top, bottom) = self.amounts(h, kernel[0], stride[0], dilation[0]);
        let (left, right) = self.amounts(w, kernel[1], stride[1], dilation[1]);
        if top == bottom && left == right {
            (x.shallow_clone(), [top, left])
        } else {
            let padded = if pad_value == 0.0 {
                x.constant_pad_nd([left, right, top, bottom])
            } else {
                x.pad([left, right, top, bottom], "constant", Some(pad_value))
            };
            (padded, [0, 0])
        }
    }
}

/// Keras `BatchNormalization` options.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchNormConfig {
    /// Added to the variance (Keras default `1e-3`; Keras' ResNet50 uses `1.001e-5`).
    pub eps: f64,
    /// Keras momentum: `moving = moving * momentum + batch * (1 - momentum)` (default 0.99,
    /// which is libtorch's 0.01).
    pub momentum: f64,
    /// Learn a scale `gamma` (Keras `scale`; InceptionResNetV2 turns it off).
    pub scale: bool,
    /// Learn an offset `beta` (Keras `center`).
    pub center: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        Self {
            eps: 1e-3,
            momentum: 0.99,
            scale: true,
            center: true,
        }
    }
}

impl BatchNormConfig {
    /// Keras' defaults with another epsilon.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Keras' defaults without the learned scale.
    pub fn without_scale(mut self) -> Self {
        self.scale = false;
        self
    }
}

/// Batch normalisation over the channels of NCHW (or NC) tensors, as Keras computes it.
///
/// Variables: `weight` (gamma, when `scale`), `bias` (beta, when `center`), and the
/// non-trainable `running_mean` and `running_var`.
///
/// # Shapes
/// `[N, C, ...]` → `[N, C, ...]`.
#[derive(Debug)]
pub struct BatchNorm {
    /// gamma, when learned.
    pub weight: Option<Tensor>,
    /// beta, when learned.
    pub bias: Option<Tensor>,
    /// The moving mean.
    pub running_mean: Tensor,
    /// The moving variance.
    pub running_var: Tensor,
    config: BatchNormConfig,
    /// The Keras layer name (the last component of the variable path), for [`crate::trace`].
    name: String,
    /// Constant gamma = 1 and beta = 0 (not variables) standing in for an absent `weight`
    /// or `bias`: libtorch's CUDA batch-norm backward fails on an undefined weight
    /// ("tensor does not have a device"; Inception-ResNet's `scale=False` layers).
    unit: (Tensor, Tensor),
}

impl BatchNorm {
    /// Creates the variables under `p` for `channels` channels.
    ///
    /// # Errors
    /// Zero channels, a non-positive epsilon or a momentum outside `[0, 1]`.
    pub fn new(p: &nn::Path<'_>, channels: i64, config: &BatchNormConfig) -> Result<Self> {
        let name = path_name(p);
        if channels <= 0 {
            return Err(invalid(
                name,
                "channels",
                format!("must be positive, got {channels}"),
            ));
        }
        if config.eps.is_nan() || config.eps <= 0.0 {
            return Err(invalid(
                name,
                "eps",
                format!("must be positive, got {}", config.eps),
            ));
        }
        if !(0.0..=1.0).contains(&config.momentum) {
            return Err(invalid(
                name,
                "momentum",
                format!("must be in [0, 1], got {}", config.momentum),
            ));
        }
        crate::error::claim(p, &["weight", "bias", "running_mean", "running_var"])?;
        let weight = config.scale.then(|| p.ones("weight", &[channels]));
        let bias = config.center.then(|| p.zeros("bias", &[channels]));
        let options = (tch::Kind::Float, p.device());
        let unit = (
            Tensor::ones([channels], options),
            Tensor::zeros([channels], options),
        );
        Ok(Self {
            unit,
            weight,
            bias,
            running_mean: p.zeros_no_train("running_mean", &[channels]),
            running_var: p.ones_no_train("running_var", &[channels]),
            config: *config,
            name: p
                .components()
                .last()
                .unwrap_or("batch_normalization")
                .to_owned(),
        })
    }

    /// The per-channel affine map batch norm applies in inference, `x·scale + shift`, with
    /// `scale = gamma / sqrt(running_var + eps)` and `shift = beta − running_mean·scale`.
    pub fn inference_affine(&self) -> (Tensor, Tensor) {
        let scale = (&self.running_var + self.config.eps).rsqrt();
        let scale = match &self.weight {
            Some(gamma) => scale * gamma,
            None => scale,
        };
        let shift = -(&self.running_mean * &scale);
        let shift = match &self.bias {
            Some(beta) => shift + beta,
            None => shift,
        };
        (scale, shift)
    }
}

/// Whether batch norm over `channels` channels runs faster on the CPU through the NCHW
/// kernels than through libtorch's channels-last ones (measured:
/// `docs/runs/epoch-intel-xeon-78da11a.md`, "What closed the gap then").
pub(crate) fn needs_nchw_batch_norm(channels: i64) -> bool {
    channels > 0 && channels < 32 && channels % 8 != 0
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // The constants were made where and as the layer was built; should the variables
        // have moved to another device or kind since, make them anew like those.
        let like = &self.running_var;
        let constant = |t: &Tensor, value: f64| {
            if t.device() == like.device() && t.kind() == like.kind() {
                t.shallow_clone()
            } else {
                like.full_like(value)
            }
        };
        let weight = match &self.weight {
            Some(w) => w.shallow_clone(),
            None => constant(&self.unit.0, 1.0),
        };
        let bias = match &self.bias {
            Some(b) => b.shallow_clone(),
            None => constant(&self.unit.1, 0.0),
        };
        // libtorch's channels-last batch-norm kernels on the CPU vectorise over channels:
        // with fewer than 32 channels that are not a multiple of 8 (MesoInception4's 11
        // and 12) they run 5-20x slower than the NCHW kernels (measured in
        // docs/runs/epoch-intel-xeon-78da11a.md), far more than the copy into NCHW costs.
        // The output stays NCHW:
        // converting it back would send the gradient into batch norm's backward in
        // channels-last against an NCHW input, libtorch's slow generic path (3-11x); the
        // next layer converts once (MesoInception4 does at each block's entry).
        let detour = xs.device() == tch::Device::Cpu
            && needs_nchw_batch_norm(xs.size().get(1).copied().unwrap_or(0))
            && MemoryFormat::ChannelsLast.is_format_of(xs)
            && !MemoryFormat::Contiguous.is_format_of(xs);
        let input = if detour {
            xs.contiguous()
        } else {
            xs.shallow_clone()
        };
        let ys = Tensor::batch_norm(
            &input,
            Some(&weight),
            Some(&bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            1.0 - self.config.momentum,
            self.config.eps,
            true,
        );
        trace::record(|| self.name.clone(), "BatchNormalization", &ys);
        ys
    }
}

/// Configuration of a [`ConvBnAct`]: a Keras `Conv2D` (or `DepthwiseConv2D`), an optional
/// `BatchNormalization` and an activation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvBnActConfig {
    /// Input channels.
    pub in_channels: i64,
    /// Output channels (for a depthwise conv: `in_channels * depth_multiplier`).
    pub out_channels: i64,
    /// Kernel `[height, width]`.
    pub kernel: [i64; 2],
    /// Stride (both dimensions).
    pub stride: i64,
    /// Dilation rate (both dimensions).
    pub dilation: i64,
    /// Groups; `in_channels` for a depthwise convolution.
    pub groups: i64,
    /// Learn a bias (Keras `use_bias`).
    pub bias: bool,
    /// Keras padding mode.
    pub padding: Padding,
    /// Batch normalisation after the convolution, if any.
    pub batch_norm: Option<BatchNormConfig>,
    /// Activation after batch normalisation.
    pub activation: Activation,
    /// Variable name of the convolution under the block's path (a Keras layer name).
    pub conv_name: String,
    /// Variable name of the batch normalisation under the block's path.
    pub bn_name: String,
    /// How the kernel is initialised (Keras' `kernel_initializer`; default
    /// `glorot_uniform`).
    #[serde(default)]
    pub kernel_init: Initializer,
}

impl Default for ConvBnActConfig {
    fn default() -> Self {
        Self {
            in_channels: 3,
            out_channels: 8,
            kernel: [3, 3],
            stride: 1,
            dilation: 1,
            groups: 1,
            bias: true,
            padding: Padding::Same,
            batch_norm: None,
            activation: Activation::Linear,
            conv_name: "conv".into(),
            bn_name: "bn".into(),
            kernel_init: Initializer::GlorotUniform,
        }
    }
}

impl ConvBnActConfig {
    /// A square `k`×`k` convolution from `in_channels` to `out_channels`, Keras defaults
    /// otherwise (stride 1, `"same"`, bias, no batch norm, linear).
    pub fn new(in_channels: i64, out_channels: i64, k: i64) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel: [k, k],
            ..Default::default()
        }
    }

    /// A depthwise `k`×`k` convolution over `channels` (Keras `DepthwiseConv2D`).
    pub fn depthwise(channels: i64, k: i64) -> Self {
        Self {
            in_channels: channels,
            out_channels: channels,
            kernel: [k, k],
            groups: channels,
            ..Default::default()
        }
    }

    /// Sets the kernel initialiser.
    pub fn with_kernel_init(mut self, init: Initializer) -> Self {
        self.kernel_init = init;
        self
    }

    /// Sets the kernel `[height, width]` (for 1×7, 7×1 ... kernels).
    pub fn with_kernel(mut self, kernel: [i64; 2]) -> Self {
        self.kernel = kernel;
        self
    }
    /// Sets the stride.
    pub fn with_stride(mut self, stride: i64) -> Self {
        self.stride = stride;
        self
    }
    /// Sets the dilation rate.
    pub fn with_dilation(mut self, dilation: i64) -> Self {
        self.dilation = dilation;
        self
    }
    /// Sets the padding mode.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    /// Turns the convolution's bias on or off.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    /// Adds batch normalisation (and, as Keras models do when they normalise, no bias
    /// unless set again afterwards).
    pub fn with_batch_norm(mut self, bn: BatchNormConfig) -> Self {
        self.batch_norm = Some(bn);
        self.bias = false;
        self
    }
    /// Sets the activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
    /// Sets the variable names of the convolution and the batch normalisation.
    pub fn with_names(mut self, conv: impl Into<String>, bn: impl Into<String>) -> Self {
        self.conv_name = conv.into();
        self.bn_name = bn.into();
        self
    }

    fn validate(&self, block: &str) -> Result<()> {
        let positive = [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("kernel", self.kernel[0].min(self.kernel[1])),
            ("stride", self.stride),
            ("dilation", self.dilation),
            ("groups", self.groups),
        ];
        for (option, value) in positive {
            if value <= 0 {
                return Err(invalid(
                    block,
                    option,
                    format!("must be positive, got {value}"),
                ));
            }
        }
        if self.in_channels % self.groups != 0 || self.out_channels % self.groups != 0 {
            return Err(invalid(
                block,
                "groups",
                format!(
                    "{} groups must divide in_channels {} and out_channels {}",
                    self.groups, self.in_channels, self.out_channels
                ),
            ));
        }
        if self.conv_name.is_empty() {
            return Err(invalid(block, "conv_name", "must not be empty"));
        }
        if self.batch_norm.is_some() && self.bn_name.is_empty() {
            return Err(invalid(block, "bn_name", "must not be empty"));
        }
        Ok(())
    }
}

/// Convolution → optional batch norm → activation, with Keras padding.
///
/// Variables: `{conv_name}.weight` `[out, in / groups, kh, kw]`, `{conv_name}.bias`
/// `[out]` when `bias`, and those of [`BatchNorm`] under `{bn_name}`.
///
/// # Shapes
/// `[N, in_channels, H, W]` → `[N, out_channels, H', W']`, with `H' = ceil(H / stride)`
/// for `"same"` and `H' = floor((H - dilation * (kh - 1) - 1) / stride) + 1` for `"valid"`.
#[derive(Debug)]
pub struct ConvBnAct {
    /// The convolution kernel.
    pub weight: Tensor,
    /// The convolution bias.
    pub bias: Option<Tensor>,
    /// Batch normalisation.
    pub bn: Option<BatchNorm>,
    config: ConvBnActConfig,
}

impl ConvBnAct {
    /// Creates the block's variables under `p`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for non-positive sizes or groups that do not divide
    /// the channels.
    pub fn new(p: &nn::Path<'_>, config: &ConvBnActConfig) -> Result<Self> {
        let block = format!("{}/{}", path_name(p), config.conv_name);
        config.validate(&block)?;
        let c = config;
        let dims = [
            c.out_channels,
            c.in_channels / c.groups,
            c.kernel[0],
            c.kernel[1],
        ];
        let conv = p / c.conv_name.as_str();
        crate::error::claim(&conv, &["weight", "bias"])?;
        let weight = c
            .kernel_init
            .variable(&conv, "weight", &dims, conv_fans(dims, c.groups));
        let bias = c.bias.then(|| conv.zeros("bias", &[c.out_channels]));
        let bn = match &c.batch_norm {
            Some(bn) => Some(BatchNorm::new(
                &(p / c.bn_name.as_str()),
                c.out_channels,
                bn,
            )?),
            None => None,
        };
        Ok(Self {
            weight,
            bias,
            bn,
            config: config.clone(),
        })
    }

    /// The configuration the block was built with.
    pub fn config(&self) -> &ConvBnActConfig {
        &self.config
    }

    /// The convolution alone (no batch norm, no activation).
    pub fn conv(&self, xs: &Tensor) -> Tensor {
        let c = &self.config;
        let (s, d) = ([c.stride; 2], [c.dilation; 2]);
        let (xs, pad) = c.padding.apply(xs, c.kernel, s, d, 0.0);
        xs.conv2d(&self.weight, self.bias.as_ref(), s, pad, d, c.groups)
    }

    /// Inference on the CPU with the batch norm folded into the convolution: one conv with
    /// kernel `w·s` and bias `(b − mean)·s + beta`, where `s = gamma / sqrt(var + eps)`
    /// per output channel, instead of a conv and then a pass of batch norm over its output.
    /// The same function up to float rounding (within 1e-5 in the tests and Keras parity).
    ///
    /// `None` (the caller runs conv and batch norm) in training, without a batch norm, off
    /// the CPU (not measured there), or when autograd records the result: the fold is
    /// for inference under [`tch::no_grad`] (or with every tensor frozen).
    fn forward_folded(&self, xs: &Tensor, train: bool) -> Option<Tensor> {
        let bn = self.bn.as_ref()?;
        if train || xs.device() != tch::Device::Cpu || xs.requires_grad() {
            return None;
        }
        // The fold multiplies every kernel weight at each call (and the new kernel is
        // reordered for the convolution): worth it only when the batch-norm pass it saves
        // is larger, per output channel N·H'·W' output values against Cin/groups·kh·kw
        // weights. Deep layers on a small batch (ResNet50's last stage at batch 1) run
        // conv, then batch norm.
        let size = xs.size();
        let c = &self.config;
        if let [n, _, h, w] = size[..] {
            let stride = c.stride.max(1);
            let outputs = n * (h / stride).max(1) * (w / stride).max(1);
            let weights = c.in_channels / c.groups.max(1) * c.kernel[0] * c.kernel[1];
            if outputs < weights {
                return None;
            }
        }
        let (scale, shift) = bn.inference_affine();
        let weight = &self.weight * scale.view([-1, 1, 1, 1]);
        if weight.requires_grad() || shift.requires_grad() {
            return None;
        }
        let bias = match &self.bias {
            Some(b) => b * &scale + shift,
            None => shift,
        };
        let (s, d) = ([c.stride; 2], [c.dilation; 2]);
        let (xs, pad) = c.padding.apply(xs, c.kernel, s, d, 0.0);
        Some(xs.conv2d(&weight, Some(&bias), s, pad, d, c.groups))
    }
}

impl ModuleT for ConvBnAct {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let c = &self.config;
        let class = if c.groups > 1 && c.groups == c.in_channels {
            "DepthwiseConv2D"
        } else {
            "Conv2D"
        };
        let ys = match self.forward_folded(xs, train) {
            Some(ys) => {
                trace::record(|| c.conv_name.clone(), class, &ys);
                if let Some(bn) = &self.bn {
                    trace::record(|| bn.name.clone(), "BatchNormalization", &ys);
                }
                ys
            }
            None => {
                let ys = self.conv(xs);
                trace::record(|| c.conv_name.clone(), class, &ys);
                match &self.bn {
                    Some(bn) => bn.forward_t(&ys, train),
                    None => ys,
                }
            }
        };
        self.config.activation.apply_fresh(ys)
    }
}

/// The dotted name of a variable path, for error messages.
pub(crate) fn path_name(p: &nn::Path<'_>) -> String {
    let name = p.components().collect::<Vec<_>>().join(".");
    if name.is_empty() {
        "<root>".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Batch norm on a channels-last input with few channels goes through the NCHW
    /// kernels: the same outputs, input gradients and moving statistics as on the NCHW
    /// input, the output NCHW; with a multiple of 8 channels it stays channels-last.
    #[test]
    fn few_channel_batch_norm_takes_the_nchw_kernels_with_the_same_results() {
        for (channels, detour) in [(11, true), (12, true), (16, false)] {
            let run = |format: MemoryFormat| {
                let vs = nn::VarStore::new(Device::Cpu);
                let bn = BatchNorm::new(&vs.root(), channels, &BatchNormConfig::default())
                    .expect("batch norm");
                let x = Tensor::arange(4 * channels * 6 * 5, (Kind::Float, Device::Cpu))
                    .view([4, channels, 6, 5])
                    .sin();
                let x = format.apply(&x).expect("format").set_requires_grad(true);
                let y = bn.forward_t(&x, true);
                let w = Tensor::arange(y.numel() as i64, (Kind::Float, Device::Cpu))
                    .view(y.size().as_slice())
                    .cos();
                (&y * &w).sum(Kind::Float).backward();
                let layout = MemoryFormat::ChannelsLast.is_format_of(&y);
                (
                    y.detach(),
                    x.grad(),
                    bn.running_mean.copy(),
                    bn.running_var.copy(),
                    layout,
                )
            };
            let (y0, g0, m0, v0, _) = run(MemoryFormat::Contiguous);
            let (y1, g1, m1, v1, channels_last) = run(MemoryFormat::ChannelsLast);
            for (what, a, b) in [("output", &y0, &y1), ("input gradient", &g0, &g1)] {
                let err = (a - b).abs().max().double_value(&[]);
                assert!(err < 1e-5, "{channels} channels: {what} differs by {err}");
            }
            assert!(
                m0.allclose(&m1, 1e-6, 1e-7, false),
                "{channels}: moving mean"
            );
            assert!(
                v0.allclose(&v1, 1e-6, 1e-7, false),
                "{channels}: moving variance"
            );
            assert_eq!(channels_last, !detour, "{channels} channels: output layout");
            assert_eq!(needs_nchw_batch_norm(channels), detour);
        }
    }

    /// A conv + batch norm with random moving statistics, gamma and beta.
    fn block(vs: &nn::VarStore, config: ConvBnActConfig) -> ConvBnAct {
        let block = ConvBnAct::new(&vs.root(), &config).expect("valid config");
        tch::no_grad(|| {
            for (name, mut v) in vs.variables() {
                let fresh = if name.ends_with("running_var") {
                    v.rand_like() + 0.5
                } else {
                    v.randn_like() * 0.3
                };
                v.copy_(&fresh);
            }
        });
        block
    }

    /// The fold is taken exactly where it should be, and gives conv-then-BN's values.
    #[test]
    fn batch_norm_folds_into_the_conv_for_cpu_inference_only() {
        tch::manual_seed(5);
        let configs = [
            ConvBnActConfig::new(3, 8, 3).with_bias(true),
            ConvBnActConfig::new(3, 8, 3).with_stride(2),
            ConvBnActConfig::depthwise(8, 3),
            ConvBnActConfig::new(3, 8, 1)
                .with_batch_norm(BatchNormConfig::default().without_scale()),
        ];
        for config in configs {
            let vs = nn::VarStore::new(Device::Cpu);
            let bn_config = config.batch_norm.unwrap_or_default();
            let config = config
                .with_batch_norm(bn_config)
                .with_activation(Activation::Relu);
            let b = block(&vs, config.clone());
            let x = Tensor::randn([2, config.in_channels, 9, 9], (Kind::Float, Device::Cpu));

            let folded = tch::no_grad(|| b.forward_folded(&x, false)).expect("folded");
            let bn = b.bn.as_ref().expect("batch norm");
            let reference = tch::no_grad(|| bn.forward_t(&b.conv(&x), false));
            let diff = (&folded - &reference).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{config:?}: folded differs by {diff}");

            assert!(b.forward_folded(&x, true).is_none(), "never in training");
            assert!(
                b.forward_folded(&x, false).is_none(),
                "not while autograd records the trainable kernel"
            );
            let frozen = nn::VarStore::new(Device::Cpu);
            let b = block(&frozen, config.clone());
            let mut frozen = frozen;
            frozen.freeze();
            let leaf = x.copy().set_requires_grad(true);
            assert!(
                b.forward_folded(&leaf, false).is_none(),
                "not for an input that records gradients"
            );
            assert!(
                b.forward_folded(&x, false).is_some(),
                "with every tensor frozen, autograd records nothing: folded"
            );
        }
        // A deep layer on a small batch: more kernel weights (64·3·3 per output channel)
        // than output values (2·3·3): conv then batch norm, with the same values.
        let vs = nn::VarStore::new(Device::Cpu);
        let config = ConvBnActConfig::new(64, 16, 3)
            .with_batch_norm(BatchNormConfig::default())
            .with_activation(Activation::Relu);
        let b = block(&vs, config);
        let x = Tensor::randn([2, 64, 5, 5], (Kind::Float, Device::Cpu));
        assert!(
            tch::no_grad(|| b.forward_folded(&x, false)).is_none(),
            "not folded"
        );
        let bigger = Tensor::randn([2, 64, 48, 48], (Kind::Float, Device::Cpu));
        assert!(
            tch::no_grad(|| b.forward_folded(&bigger, false)).is_some(),
            "folded"
        );
    }
}
