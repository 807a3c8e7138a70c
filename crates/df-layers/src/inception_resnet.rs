//! Inception-ResNet-v2's building blocks as Keras 3 builds them
//! (`keras/src/applications/inception_resnet_v2.py`).
//!
//! Reference: Szegedy et al., *Inception-v4, Inception-ResNet and the Impact of Residual
//! Connections on Learning*, AAAI 2017.
//!
//! Every convolution is Keras' `conv2d_bn`: a bias-free convolution, batch normalisation
//! without a learned scale (`scale=False`, epsilon 1e-3) and ReLU. The residual blocks end
//! with a 1×1 "up" convolution *with* bias and no batch norm, scaled and added to the
//! input.
//!
//! Variable names: see [`Stem`] (`# Variable names`).

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::activation::{add_owned, Activation};
use crate::conv::{path_name, BatchNormConfig, ConvBnAct, ConvBnActConfig, Padding};
use crate::error::{invalid, Result};
use crate::trace;

/// Keras InceptionResNetV2's batch normalisation: epsilon 1e-3, momentum 0.99, no scale.
pub fn inception_resnet_batch_norm() -> BatchNormConfig {
    BatchNormConfig::default().without_scale()
}

/// One `conv2d_bn` of a branch: output channels, kernel `[h, w]`, stride, padding.
#[derive(Clone, Copy)]
struct Unit(i64, [i64; 2], i64, Padding);

const fn same(out: i64, k: [i64; 2]) -> Unit {
    Unit(out, k, 1, Padding::Same)
}
const fn valid(out: i64, k: [i64; 2], stride: i64) -> Unit {
    Unit(out, k, stride, Padding::Valid)
}

/// Branches of `conv2d_bn` units, each applied to the same input; built in Keras'
/// creation order (branch by branch, unit by unit).
#[derive(Debug)]
struct Branches {
    branches: Vec<Vec<ConvBnAct>>,
}

impl Branches {
    fn new(
        p: &nn::Path<'_>,
        name: &str,
        in_channels: i64,
        specs: &[&[Unit]],
        bn: &BatchNormConfig,
    ) -> Result<Self> {
        let mut branches = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let mut units = Vec::with_capacity(spec.len());
            let mut channels = in_channels;
            for (j, &Unit(out, kernel, stride, padding)) in spec.iter().enumerate() {
                let conv = format!("{name}_branch{i}_{j}");
                let cfg = ConvBnActConfig::new(channels, out, 1)
                    .with_kernel(kernel)
                    .with_stride(stride)
                    .with_padding(padding)
                    .with_batch_norm(*bn)
                    .with_activation(Activation::Relu)
                    .with_names(conv.clone(), format!("{conv}_bn"));
                units.push(ConvBnAct::new(p, &cfg)?);
                channels = out;
            }
            branches.push(units);
        }
        Ok(Self { branches })
    }

    fn out_channels(&self) -> i64 {
        self.branches
            .iter()
            .filter_map(|b| b.last())
            .map(|u| u.config().out_channels)
            .sum()
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        self.branches
            .iter()
            .map(|units| {
                units
                    .iter()
                    .fold(xs.shallow_clone(), |ys, u| u.forward_t(&ys, train))
            })
            .collect()
    }

    fn names(&self) -> Vec<String> {
        self.branches
            .iter()
            .flatten()
            .map(|u| u.config().conv_name.clone())
            .collect()
    }
}

fn check_name(block: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(block, "name", "must not be empty"));
    }
    Ok(())
}

fn check_channels(block: &str, in_channels: i64) -> Result<()> {
    if in_channels <= 0 {
        return Err(invalid(
            block,
            "in_channels",
            format!("must be positive, got {in_channels}"),
        ));
    }
    Ok(())
}

fn max_pool_3x3_s2(xs: &Tensor) -> Tensor {
    xs.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)
}

/// Configuration of the [`Stem`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StemConfig {
    /// Input channels (3 for RGB).
    pub in_channels: i64,
    /// Batch normalisation (Keras: [`inception_resnet_batch_norm`]).
    pub batch_norm: BatchNormConfig,
    /// Name prefix of the five stem convolutions (`stem` → `stem_0` … `stem_4`).
    pub name: String,
    /// Name of the Inception-A mixing block that closes the stem (`mixed_5b`).
    pub mixed_name: String,
}

impl Default for StemConfig {
    fn default() -> Self {
        Self {
            in_channels: 3,
            batch_norm: inception_resnet_batch_norm(),
            name: "stem".into(),
            mixed_name: "mixed_5b".into(),
        }
    }
}

/// Inception-ResNet-v2's stem as Keras builds it, up to and including `mixed_5b`:
/// 3×3/2 valid 32 → 3×3 valid 32 → 3×3 same 64 → max-pool 3×3/2 → 1×1 valid 80 → 3×3 valid
/// 192 → max-pool 3×3/2 → `mixed_5b` (1×1 96 | 1×1 48 → 5×5 64 | 1×1 64 → 3×3 96 → 3×3 96 |
/// avg-pool 3×3/1 same (padding not counted) → 1×1 64), concatenated.
///
/// # Shapes
/// `[N, in_channels, H, W]` → `[N, 320, H', W']` with 35×35 for 299×299; `H, W >= 75`.
///
/// # Variable names
///
/// Keras names only a few of these layers: the residual "up" convolution
/// (`block35_1_conv`, `block17_3_conv`, `block8_10_conv`...) and, in the model, `conv_7b`
/// with `conv_7b_bn`. Those keep their Keras names here. Every other `conv2d_bn` gets a
/// Keras *auto-generated* name (`conv2d_17`, `batch_normalization_17`) that depends on how
/// many layers the Keras session created before, so no fixed name could match it. Here such
/// a unit is named `{block}_branch{i}_{j}` (the `j`-th convolution of branch `i`, both from
/// 0) with its batch norm `{block}_branch{i}_{j}_bn`, e.g. `block35_1_branch2_1`,
/// `mixed_6a_branch1_2`, `stem_3`. Each block lists these names in the order Keras
/// creates the layers ([`Stem::auto_named_convs`] and the same method on every block):
/// the `k`-th entry of the model-wide list corresponds to the `k`-th auto-named `Conv2D`
/// and the `k`-th auto-named `BatchNormalization` of the Keras model (sorted by the number
/// in their names: `conv2d`, `conv2d_1`, …, `conv2d_10`), which is how an importer matches
/// them (checked by shape). Every block also creates its variables in Keras' creation
/// order (branch by branch, convolution before batch norm, the "up" convolution last).
#[derive(Debug)]
pub struct Stem {
    /// The five stem convolutions (`stem_0.. stem_4`).
    pub convs: Vec<ConvBnAct>,
    mixed: Branches,
    config: StemConfig,
}

impl Stem {
    /// Output channels (320).
    pub const OUT_CHANNELS: i64 = 320;

    /// Creates the stem's variables under `p`.
    ///
    /// # Errors
    /// Non-positive input channels or empty names.
    pub fn new(p: &nn::Path<'_>, config: &StemConfig) -> Result<Self> {
        let block = format!("{}/{}", path_name(p), config.name);
        check_name(&block, &config.name)?;
        check_name(&block, &config.mixed_name)?;
        check_channels(&block, config.in_channels)?;
        let stem = [
            valid(32, [3, 3], 2),
            valid(32, [3, 3], 1),
            same(64, [3, 3]),
            valid(80, [1, 1], 1),
            valid(192, [3, 3], 1),
        ];
        let mut convs = Vec::with_capacity(stem.len());
        let mut channels = config.in_channels;
        for (j, Unit(out, kernel, stride, padding)) in stem.into_iter().enumerate() {
            let conv = format!("{}_{j}", config.name);
            let cfg = ConvBnActConfig::new(channels, out, 1)
                .with_kernel(kernel)
                .with_stride(stride)
                .with_padding(padding)
                .with_batch_norm(config.batch_norm)
                .with_activation(Activation::Relu)
                .with_names(conv.clone(), format!("{conv}_bn"));
            convs.push(ConvBnAct::new(p, &cfg)?);
            channels = out;
        }
        let mixed = Branches::new(
            p,
            &config.mixed_name,
            channels,
            &[
                &[same(96, [1, 1])],
                &[same(48, [1, 1]), same(64, [5, 5])],
                &[same(64, [1, 1]), same(96, [3, 3]), same(96, [3, 3])],
                &[same(64, [1, 1])],
            ],
            &config.batch_norm,
        )?;
        Ok(Self {
            convs,
            mixed,
            config: config.clone(),
        })
    }

    /// The configuration the block was built with.
    pub fn config(&self) -> &StemConfig {
        &self.config
    }

    /// Names of the convolutions Keras leaves unnamed, in Keras' creation order (module
    /// docs); batch norms are `{name}_bn`.
    pub fn auto_named_convs(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .convs
            .iter()
            .map(|c| c.config().conv_name.clone())
            .collect();
        names.extend(self.mixed.names());
        names
    }
}

impl ModuleT for Stem {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let c = &self.convs;
        let ys = c[0].forward_t(xs, train); // [N, 32, 149, 149]
        let ys = c[1].forward_t(&ys, train); // [N, 32, 147, 147]
        let ys = c[2].forward_t(&ys, train); // [N, 64, 147, 147]
        let ys = max_pool_3x3_s2(&ys); // [N, 64, 73, 73]
        let ys = c[3].forward_t(&ys, train); // [N, 80, 73, 73]
        let ys = c[4].forward_t(&ys, train); // [N, 192, 71, 71]
        let ys = max_pool_3x3_s2(&ys); // [N, 192, 35, 35]
        let b = &self.mixed.branches;
        let pooled = ys.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>);
        let outs = [
            b[0][0].forward_t(&ys, train),
            b[1].iter()
                .fold(ys.shallow_clone(), |t, u| u.forward_t(&t, train)),
            b[2].iter()
                .fold(ys.shallow_clone(), |t, u| u.forward_t(&t, train)),
            b[3][0].forward_t(&pooled, train),
        ];
        let ys = Tensor::cat(&outs, 1); // [N, 320, 35, 35]
        trace::record(|| self.config.mixed_name.clone(), "Concatenate", &ys);
        ys
    }
}

/// Configuration of an Inception-ResNet residual block ([`InceptionResnetA`],
/// [`InceptionResnetB`], [`InceptionResnetC`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InceptionResnetBlockConfig {
    /// Input (and output) channels: Keras uses 320, 1088 and 2080 for A, B and C.
    pub in_channels: i64,
    /// Residual scale: `out = act(x + scale * up(branches(x)))`.
    pub scale: f64,
    /// Final activation (Keras: ReLU; the model's last block8 has none, [`Activation::Linear`]).
    pub activation: Activation,
    /// Block name (Keras `{block_type}_{block_idx}`, e.g. `block35_1`).
    pub name: String,
    /// Batch normalisation of the branch convolutions.
    pub batch_norm: BatchNormConfig,
}

impl InceptionResnetBlockConfig {
    fn keras(in_channels: i64, scale: f64, kind: &str, index: usize) -> Self {
        Self {
            in_channels,
            scale,
            activation: Activation::Relu,
            name: format!("{kind}_{index}"),
            batch_norm: inception_resnet_batch_norm(),
        }
    }
    /// Keras' `block35_{index}`: 320 channels, scale 0.17, ReLU.
    pub fn block35(index: usize) -> Self {
        Self::keras(320, 0.17, "block35", index)
    }
    /// Keras' `block17_{index}`: 1088 channels, scale 0.1, ReLU.
    pub fn block17(index: usize) -> Self {
        Self::keras(1088, 0.1, "block17", index)
    }
    /// Keras' `block8_{index}`: 2080 channels, scale 0.2, ReLU (the model's block8_10 uses
    /// scale 1.0 and no activation).
    pub fn block8(index: usize) -> Self {
        Self::keras(2080, 0.2, "block8", index)
    }
    /// Sets the input channels.
    pub fn with_in_channels(mut self, in_channels: i64) -> Self {
        self.in_channels = in_channels;
        self
    }
    /// Sets the residual scale.
    pub fn with_scale(mut self, scale: f64) -> Self {
        self.scale = scale;
        self
    }
    /// Sets the final activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
}

/// The shared body of the three residual blocks.
#[derive(Debug)]
struct Residual {
    branches: Branches,
    up: ConvBnAct,
    config: InceptionResnetBlockConfig,
}

impl Residual {
    fn new(
        p: &nn::Path<'_>,
        config: &InceptionResnetBlockConfig,
        specs: &[&[Unit]],
    ) -> Result<Self> {
        let block = format!("{}/{}", path_name(p), config.name);
        check_name(&block, &config.name)?;
        check_channels(&block, config.in_channels)?;
        if !config.scale.is_finite() {
            return Err(invalid(
                block,
                "scale",
                format!("must be finite, got {}", config.scale),
            ));
        }
        let branches = Branches::new(
            p,
            &config.name,
            config.in_channels,
            specs,
            &config.batch_norm,
        )?;
        let up = ConvBnActConfig::new(branches.out_channels(), config.in_channels, 1)
            .with_bias(true)
            .with_names(format!("{}_conv", config.name), "");
        Ok(Self {
            branches,
            up: ConvBnAct::new(p, &up)?,
            config: config.clone(),
        })
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let name = &self.config.name;
        let mixed = Tensor::cat(&self.branches.forward(xs, train), 1);
        trace::record(|| format!("{name}_mixed"), "Concatenate", &mixed);
        let up = self.up.forward_t(&mixed, train); // [N, in_channels, H, W]
        let scale = self.config.scale;
        // Scaled and added in the conv's own output: the same values, and exact under
        // autograd (the backward of a product with a constant and of a sum read no operand).
        let mut up = up;
        let _ = up.g_mul_scalar_(scale);
        let sum = add_owned(up, xs);
        let ys = self.config.activation.apply_fresh(sum);
        // Keras' scaled sum (`CustomScaleLayer`) is auto-named; its activation is not, and
        // the model's last block has none.
        if self.config.activation != Activation::Linear {
            trace::record(|| format!("{name}_ac"), "Activation", &ys);
        }
        ys
    }
}

macro_rules! residual_block {
    ($(#[$doc:meta])* $name:ident, $specs:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            inner: Residual,
        }

        impl $name {
            /// Creates the block's variables under `p`.
            ///
            /// # Errors
            /// Non-positive channels, a non-finite scale or an empty name.
            pub fn new(p: &nn::Path<'_>, config: &InceptionResnetBlockConfig) -> Result<Self> {
                Ok(Self {
                    inner: Residual::new(p, config, $specs)?,
                })
            }

            /// The configuration the block was built with.
            pub fn config(&self) -> &InceptionResnetBlockConfig {
                &self.inner.config
            }

            /// The residual 1×1 convolution with bias (Keras `{name}_conv`).
            pub fn up(&self) -> &ConvBnAct {
                &self.inner.up
            }

            /// Names of the convolutions Keras leaves unnamed, in Keras' creation order
            /// (module docs); batch norms are `{name}_bn`.
            pub fn auto_named_convs(&self) -> Vec<String> {
                self.inner.branches.names()
            }
        }

        impl ModuleT for $name {
            fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
                self.inner.forward(xs, train)
            }
        }
    };
}

residual_block!(
    /// Inception-ResNet-A, Keras' `block35`: branches 1×1 32 | 1×1 32 → 3×3 32 | 1×1 32 →
    /// 3×3 48 → 3×3 64, concatenated (128), a 1×1 convolution with bias back to
    /// `in_channels` (`{name}_conv`), `x + scale * up`, then the activation (`{name}_ac`).
    ///
    /// # Shapes
    /// `[N, in_channels, H, W]` → `[N, in_channels, H, W]` (35×35×320 in the model).
    ///
    /// Variable names: `{name}_conv` (Keras' own) and `{name}_branch{i}_{j}`, see [`Stem`].
    InceptionResnetA,
    &[
        &[same(32, [1, 1])],
        &[same(32, [1, 1]), same(32, [3, 3])],
        &[same(32, [1, 1]), same(48, [3, 3]), same(64, [3, 3])],
    ]
);

residual_block!(
    /// Inception-ResNet-B, Keras' `block17`: branches 1×1 192 | 1×1 128 → 1×7 160 → 7×1 192,
    /// concatenated (384), a 1×1 convolution with bias back to `in_channels`
    /// (`{name}_conv`), `x + scale * up`, then the activation.
    ///
    /// # Shapes
    /// `[N, in_channels, H, W]` → `[N, in_channels, H, W]` (17×17×1088 in the model).
    InceptionResnetB,
    &[
        &[same(192, [1, 1])],
        &[same(128, [1, 1]), same(160, [1, 7]), same(192, [7, 1])],
    ]
);

residual_block!(
    /// Inception-ResNet-C, Keras' `block8`: branches 1×1 192 | 1×1 192 → 1×3 224 → 3×1 256,
    /// concatenated (448), a 1×1 convolution with bias back to `in_channels`
    /// (`{name}_conv`), `x + scale * up`, then the activation (none in the model's last
    /// block).
    ///
    /// # Shapes
    /// `[N, in_channels, H, W]` → `[N, in_channels, H, W]` (8×8×2080 in the model).
    InceptionResnetC,
    &[
        &[same(192, [1, 1])],
        &[same(192, [1, 1]), same(224, [1, 3]), same(256, [3, 1])],
    ]
);

/// Configuration of [`ReductionA`] and [`ReductionB`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReductionConfig {
    /// Input channels (Keras: 320 for `mixed_6a`, 1088 for `mixed_7a`).
    pub in_channels: i64,
    /// Block name (`mixed_6a`, `mixed_7a`).
    pub name: String,
    /// Batch normalisation of the convolutions.
    pub batch_norm: BatchNormConfig,
}

impl ReductionConfig {
    /// Keras' `mixed_6a` (320 input channels).
    pub fn mixed_6a() -> Self {
        Self {
            in_channels: 320,
            name: "mixed_6a".into(),
            batch_norm: inception_resnet_batch_norm(),
        }
    }
    /// Keras' `mixed_7a` (1088 input channels).
    pub fn mixed_7a() -> Self {
        Self {
            in_channels: 1088,
            name: "mixed_7a".into(),
            batch_norm: inception_resnet_batch_norm(),
        }
    }
    /// Sets the input channels.
    pub fn with_in_channels(mut self, in_channels: i64) -> Self {
        self.in_channels = in_channels;
        self
    }
}

/// A reduction block: convolution branches and a 3×3/2 max-pool of the input,
/// concatenated.
#[derive(Debug)]
struct Reduction {
    branches: Branches,
    config: ReductionConfig,
}

impl Reduction {
    fn new(p: &nn::Path<'_>, config: &ReductionConfig, specs: &[&[Unit]]) -> Result<Self> {
        let block = format!("{}/{}", path_name(p), config.name);
        check_name(&block, &config.name)?;
        check_channels(&block, config.in_channels)?;
        let branches = Branches::new(
            p,
            &config.name,
            config.in_channels,
            specs,
            &config.batch_norm,
        )?;
        Ok(Self {
            branches,
            config: config.clone(),
        })
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut outs = self.branches.forward(xs, train);
        outs.push(max_pool_3x3_s2(xs));
        let ys = Tensor::cat(&outs, 1);
        trace::record(|| self.config.name.clone(), "Concatenate", &ys);
        ys
    }

    fn out_channels(&self) -> i64 {
        self.branches.out_channels() + self.config.in_channels
    }
}

macro_rules! reduction_block {
    ($(#[$doc:meta])* $name:ident, $specs:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            inner: Reduction,
        }

        impl $name {
            /// Creates the block's variables under `p`.
            ///
            /// # Errors
            /// Non-positive channels or an empty name.
            pub fn new(p: &nn::Path<'_>, config: &ReductionConfig) -> Result<Self> {
                Ok(Self {
                    inner: Reduction::new(p, config, $specs)?,
                })
            }

            /// The configuration the block was built with.
            pub fn config(&self) -> &ReductionConfig {
                &self.inner.config
            }

            /// Output channels.
            pub fn out_channels(&self) -> i64 {
                self.inner.out_channels()
            }

            /// Names of the convolutions Keras leaves unnamed, in Keras' creation order
            /// (module docs); batch norms are `{name}_bn`.
            pub fn auto_named_convs(&self) -> Vec<String> {
                self.inner.branches.names()
            }
        }

        impl ModuleT for $name {
            fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
                self.inner.forward(xs, train)
            }
        }
    };
}

reduction_block!(
    /// Reduction-A, Keras' `mixed_6a`: 3×3/2 valid 384 | 1×1 256 → 3×3 256 → 3×3/2 valid
    /// 384 | max-pool 3×3/2, concatenated.
    ///
    /// # Shapes
    /// `[N, C, H, W]` → `[N, C + 768, (H - 3) / 2 + 1, (W - 3) / 2 + 1]` (35×35×320 →
    /// 17×17×1088 in the model).
    ReductionA,
    &[
        &[valid(384, [3, 3], 2)],
        &[same(256, [1, 1]), same(256, [3, 3]), valid(384, [3, 3], 2)],
    ]
);

reduction_block!(
    /// Reduction-B, Keras' `mixed_7a`: 1×1 256 → 3×3/2 valid 384 | 1×1 256 → 3×3/2 valid
    /// 288 | 1×1 256 → 3×3 288 → 3×3/2 valid 320 | max-pool 3×3/2, concatenated.
    ///
    /// # Shapes
    /// `[N, C, H, W]` → `[N, C + 992, (H - 3) / 2 + 1, (W - 3) / 2 + 1]` (17×17×1088 →
    /// 8×8×2080 in the model).
    ReductionB,
    &[
        &[same(256, [1, 1]), valid(384, [3, 3], 2)],
        &[same(256, [1, 1]), valid(288, [3, 3], 2)],
        &[same(256, [1, 1]), same(288, [3, 3]), valid(320, [3, 3], 2)],
    ]
);
