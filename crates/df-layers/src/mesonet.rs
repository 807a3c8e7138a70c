//! The inception layer of MesoInception-4.
//!
//! Reference: D. Afchar, V. Nozick, J. Yamagishi, I. Echizen, "MesoNet: a Compact Facial
//! Video Forgery Detection Network", WIFS 2018, and the authors' Keras code
//! (`classifiers.py` of DariusAf/MesoNet, `MesoInception4.InceptionLayer`).

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::activation::Activation;
use crate::conv::{path_name, ConvBnAct, ConvBnActConfig, Padding};
use crate::error::{invalid, Result};

/// The name Keras gives the `index`-th layer of a kind in a fresh session: `base` for the
/// first (`index` 0), then `base_1`, `base_2` ... (`conv2d`, `conv2d_1`, `dense_2`).
pub fn keras_auto_name(base: &str, index: usize) -> String {
    if index == 0 {
        base.to_owned()
    } else {
        format!("{base}_{index}")
    }
}

/// Configuration of a [`MesoInception`] layer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MesoInceptionConfig {
    /// Input channels.
    pub in_channels: i64,
    /// Filters of the 1×1 branch.
    pub a: i64,
    /// Filters of the 1×1 → 3×3 branch.
    pub b: i64,
    /// Filters of the 1×1 → 3×3 dilation 2 branch.
    pub c: i64,
    /// Filters of the 1×1 → 3×3 dilation 3 branch.
    pub d: i64,
    /// Variable names of the seven convolutions, in the order the authors' code creates
    /// them: `a` 1×1; `b` 1×1, `b` 3×3; `c` 1×1, `c` 3×3; `d` 1×1, `d` 3×3.
    pub conv_names: [String; 7],
}

impl Default for MesoInceptionConfig {
    /// MesoInception-4's first layer: 3 input channels, `(a, b, c, d) = (1, 4, 4, 2)`,
    /// convolutions named `conv2d` ... `conv2d_6`.
    fn default() -> Self {
        Self::new(3, [1, 4, 4, 2])
    }
}

impl MesoInceptionConfig {
    /// A layer over `in_channels` with branch widths `[a, b, c, d]`, convolutions named
    /// `conv2d` ... `conv2d_6`.
    pub fn new(in_channels: i64, [a, b, c, d]: [i64; 4]) -> Self {
        Self {
            in_channels,
            a,
            b,
            c,
            d,
            conv_names: std::array::from_fn(|i| keras_auto_name("conv2d", i)),
        }
    }

    /// Names the convolutions as Keras does when `first` `Conv2D` layers were created
    /// before this one in the session: `conv2d_{first}` ... `conv2d_{first + 6}`.
    pub fn with_keras_names(mut self, first: usize) -> Self {
        self.conv_names = std::array::from_fn(|i| keras_auto_name("conv2d", first + i));
        self
    }

    /// Output channels, `a + b + c + d`.
    pub fn out_channels(&self) -> i64 {
        self.a + self.b + self.c + self.d
    }
}

/// One branch: a 1×1 convolution, optionally followed by a 3×3 one (both ReLU).
#[derive(Debug)]
struct Branch {
    reduce: ConvBnAct,
    spatial: Option<ConvBnAct>,
}

impl Branch {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = self.reduce.forward_t(xs, train);
        match &self.spatial {
            Some(conv) => conv.forward_t(&ys, train),
            None => ys,
        }
    }
}

/// MesoInception-4's inception layer: four parallel branches over the same input,
/// concatenated along the channels in the order `a, b, c, d`:
///
/// - `a`: 1×1 conv;
/// - `b`: 1×1 conv → 3×3 conv;
/// - `c`: 1×1 conv → 3×3 conv with dilation 2;
/// - `d`: 1×1 conv → 3×3 conv with dilation 3.
///
/// Every convolution has a bias, `"same"` padding, stride 1 and ReLU, as in the authors'
/// Keras code; the batch normalisation that follows the layer in MesoInception-4 is not
/// part of it.
///
/// Variables: `{conv_names[i]}.weight`, `{conv_names[i]}.bias` under the layer's path.
///
/// # Shapes
/// `[N, in_channels, H, W]` → `[N, a + b + c + d, H, W]`.
#[derive(Debug)]
pub struct MesoInception {
    branches: [Branch; 4],
    config: MesoInceptionConfig,
}

impl MesoInception {
    /// Creates the seven convolutions under `p`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a non-positive channel count or branch width,
    /// or duplicate convolution names.
    pub fn new(p: &nn::Path<'_>, config: &MesoInceptionConfig) -> Result<Self> {
        let block = path_name(p);
        let c = config;
        for (option, value) in [
            ("in_channels", c.in_channels),
            ("a", c.a),
            ("b", c.b),
            ("c", c.c),
            ("d", c.d),
        ] {
            if value <= 0 {
                return Err(invalid(
                    &block,
                    option,
                    format!("must be positive, got {value}"),
                ));
            }
        }
        for (i, name) in c.conv_names.iter().enumerate() {
            if c.conv_names[..i].contains(name) {
                return Err(invalid(
                    &block,
                    "conv_names",
                    format!("`{name}` is used twice"),
                ));
            }
        }
        let conv = |index: usize, in_channels: i64, out: i64, k: i64, dilation: i64| {
            let cfg = ConvBnActConfig::new(in_channels, out, k)
                .with_dilation(dilation)
                .with_padding(Padding::Same)
                .with_activation(Activation::Relu)
                .with_names(c.conv_names[index].clone(), "");
            ConvBnAct::new(p, &cfg)
        };
        let branches = [
            Branch {
                reduce: conv(0, c.in_channels, c.a, 1, 1)?,
                spatial: None,
            },
            Branch {
                reduce: conv(1, c.in_channels, c.b, 1, 1)?,
                spatial: Some(conv(2, c.b, c.b, 3, 1)?),
            },
            Branch {
                reduce: conv(3, c.in_channels, c.c, 1, 1)?,
                spatial: Some(conv(4, c.c, c.c, 3, 2)?),
            },
            Branch {
                reduce: conv(5, c.in_channels, c.d, 1, 1)?,
                spatial: Some(conv(6, c.d, c.d, 3, 3)?),
            },
        ];
        Ok(Self {
            branches,
            config: config.clone(),
        })
    }

    /// The configuration the layer was built with.
    pub fn config(&self) -> &MesoInceptionConfig {
        &self.config
    }
}

impl ModuleT for MesoInception {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys: Vec<Tensor> = self
            .branches
            .iter()
            .map(|b| b.forward_t(xs, train))
            .collect();
        Tensor::cat(&ys, 1)
    }
}
