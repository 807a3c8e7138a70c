//! Keras' kernel initialisers, with fans computed on Keras' own kernel layouts.
//!
//! Keras draws a kernel from `VarianceScaling(scale, mode, distribution)` (its
//! `glorot_uniform` default is `VarianceScaling(1, "fan_avg", "uniform")`), with fans from
//! `compute_fans` on the Keras shape: a `Conv2D` kernel `(kh, kw, in / groups, out)` has
//! `fan_in = kh·kw·in/groups`, `fan_out = kh·kw·out`; a `DepthwiseConv2D` kernel
//! `(kh, kw, C, multiplier)` has `fan_in = kh·kw·C`, `fan_out = kh·kw·multiplier`; a
//! `Dense` kernel `(in, out)` has `fan_in = in`, `fan_out = out`. The truncated normal is
//! drawn exactly, by the inverse CDF of uniforms on `[Φ(-2), Φ(2)]`, with Keras'
//! correction of the standard deviation (`/ 0.8796…`, the std of a standard normal cut at
//! ±2), so that the variance is `scale / fan`.

use tch::nn::{self, Init};
use tch::{Kind, Tensor};

/// Which fan divides the scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FanMode {
    /// `fan_in`.
    FanIn,
    /// `fan_out`.
    FanOut,
    /// `(fan_in + fan_out) / 2`.
    FanAvg,
}

/// The distribution values are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Normal cut at two standard deviations (of the uncut normal), variance
    /// `scale / fan`.
    TruncatedNormal,
    /// Normal with variance `scale / fan`.
    UntruncatedNormal,
    /// Uniform on `±sqrt(3·scale / fan)`.
    Uniform,
}

/// A kernel initialiser, as Keras defines it.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Initializer {
    /// Keras' default `glorot_uniform`: uniform on `±sqrt(6 / (fan_in + fan_out))`.
    #[default]
    GlorotUniform,
    /// Keras `VarianceScaling`.
    VarianceScaling {
        /// Multiplies the variance.
        scale: f64,
        /// Which fan divides it.
        mode: FanMode,
        /// The distribution.
        distribution: Distribution,
    },
}

/// The standard deviation of a standard normal truncated at ±2 (Keras' constant).
const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// Keras EfficientNet's `CONV_KERNEL_INITIALIZER`: `VarianceScaling(2.0, "fan_out",
    /// "truncated_normal")`, for every convolution and depthwise kernel of the backbone.
    pub const EFFICIENTNET_CONV: Initializer = Initializer::VarianceScaling {
        scale: 2.0,
        mode: FanMode::FanOut,
        distribution: Distribution::TruncatedNormal,
    };

    /// Keras EfficientNet's `DENSE_KERNEL_INITIALIZER`: `VarianceScaling(1/3, "fan_out",
    /// "uniform")`, for its ImageNet `predictions` layer.
    pub const EFFICIENTNET_DENSE: Initializer = Initializer::VarianceScaling {
        scale: 1.0 / 3.0,
        mode: FanMode::FanOut,
        distribution: Distribution::Uniform,
    };

    /// `(scale, mode, distribution)` of the equivalent `VarianceScaling`.
    fn parts(self) -> (f64, FanMode, Distribution) {
        match self {
            Initializer::GlorotUniform => (1.0, FanMode::FanAvg, Distribution::Uniform),
            Initializer::VarianceScaling {
                scale,
                mode,
                distribution,
            } => (scale, mode, distribution),
        }
    }

    /// The variance `scale / fan` for Keras fans `(fan_in, fan_out)` (each at least 1, as
    /// Keras clamps them).
    pub fn variance(self, fan_in: i64, fan_out: i64) -> f64 {
        let (scale, mode, _) = self.parts();
        let (fan_in, fan_out) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
        let fan = match mode {
            FanMode::FanIn => fan_in,
            FanMode::FanOut => fan_out,
            FanMode::FanAvg => (fan_in + fan_out) / 2.0,
        };
        scale / fan.max(1.0)
    }

    /// Creates the variable `name` of shape `dims` under `p`, drawn from libtorch's
    /// generator (so `tch::manual_seed` makes it reproducible), for Keras fans
    /// `(fan_in, fan_out)`.
    pub fn variable(self, p: &nn::Path<'_>, name: &str, dims: &[i64], fans: (i64, i64)) -> Tensor {
        let variance = self.variance(fans.0, fans.1);
        match self.parts().2 {
            Distribution::Uniform => {
                let limit = (3.0 * variance).sqrt();
                p.var(
                    name,
                    dims,
                    Init::Uniform {
                        lo: -limit,
                        up: limit,
                    },
                )
            }
            Distribution::UntruncatedNormal => p.var(
                name,
                dims,
                Init::Randn {
                    mean: 0.0,
                    stdev: variance.sqrt(),
                },
            ),
            Distribution::TruncatedNormal => {
                let var = p.var(name, dims, Init::Const(0.0));
                let sample = truncated_normal(dims, variance.sqrt() / TRUNCATED_STD);
                tch::no_grad(|| {
                    let sample = sample.to_device(var.device()).to_kind(var.kind());
                    var.shallow_clone().copy_(&sample);
                });
                var
            }
        }
    }
}

/// `N(0, std²)` cut at `±2·std`, by the inverse CDF: `x = std·√2·erfinv(2u − 1)` for `u`
/// uniform on `[Φ(−2), Φ(2)]`, computed in f64.
fn truncated_normal(dims: &[i64], std: f64) -> Tensor {
    // Φ(2) = (1 + erf(√2)) / 2.
    let upper = 0.5 * (1.0 + erf_sqrt2());
    let u = Tensor::empty(dims, (Kind::Double, tch::Device::Cpu)).uniform_(1.0 - upper, upper);
    (u * 2.0 - 1.0).erfinv() * (std * std::f64::consts::SQRT_2)
}

/// erf(√2), to double precision.
fn erf_sqrt2() -> f64 {
    0.954_499_736_103_641_6
}

/// Keras' `(fan_in, fan_out)` of a convolution kernel of libtorch shape
/// `[out, in / groups, kh, kw]`: a `DepthwiseConv2D` when `groups` is the number of input
/// channels (more than one), a `Conv2D` otherwise.
pub fn conv_fans(dims: [i64; 4], groups: i64) -> (i64, i64) {
    let [out, in_per_group, kh, kw] = dims;
    let receptive = kh * kw;
    if groups > 1 && in_per_group == 1 {
        let channels = groups;
        (channels * receptive, (out / groups) * receptive)
    } else {
        (in_per_group * receptive, out * receptive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_normal_bounds_and_moments() {
        tch::manual_seed(3);
        let x = truncated_normal(&[200_000], 1.0);
        let max = f64::try_from(x.abs().max()).expect("scalar max");
        assert!(max <= 2.0 + 1e-12, "cut at 2 std, got {max}");
        let std = f64::try_from(x.std(true)).expect("scalar std");
        assert!((std - TRUNCATED_STD).abs() < 0.005, "std {std}");
        let mean = f64::try_from(x.mean(Kind::Double)).expect("scalar mean");
        assert!(mean.abs() < 0.01, "mean {mean}");
        // Φ(2) − Φ(−2) is erf(√2).
        assert!((erf_sqrt2() - 0.9544997361036416).abs() < 1e-15);
    }

    #[test]
    fn keras_fans_of_conv_and_depthwise_kernels() {
        // Conv2D 3×3 from 16 to 32: Keras (3, 3, 16, 32).
        assert_eq!(conv_fans([32, 16, 3, 3], 1), (144, 288));
        // DepthwiseConv2D 5×5 over 40 channels: Keras (5, 5, 40, 1).
        assert_eq!(conv_fans([40, 1, 5, 5], 40), (1000, 25));
    }
}
