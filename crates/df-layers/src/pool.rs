//! Max pooling with Keras' padding semantics.
//!
//! Keras' `MaxPooling2D(pool_size, strides, padding="same")` pads like its convolutions
//! (TensorFlow's split, more after than before) but the padded cells never win the max;
//! here they are `-inf`, which is what TensorFlow does and what Keras' torch backend's
//! edge replication amounts to.

use tch::nn::Module;
use tch::Tensor;

use crate::conv::Padding;
use crate::error::{invalid, Result};

/// Configuration of a [`MaxPool2d`] (Keras `MaxPooling2D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaxPool2dConfig {
    /// Window size (square).
    pub pool: i64,
    /// Stride (both dimensions); Keras defaults it to `pool`.
    pub stride: i64,
    /// Keras padding mode.
    pub padding: Padding,
}

impl Default for MaxPool2dConfig {
    /// Keras' default `MaxPooling2D()`: 2×2, stride 2, `"valid"`.
    fn default() -> Self {
        Self::new(2, Padding::Valid)
    }
}

impl MaxPool2dConfig {
    /// A `pool`×`pool` window with stride `pool` (Keras' default stride).
    pub fn new(pool: i64, padding: Padding) -> Self {
        Self {
            pool,
            stride: pool,
            padding,
        }
    }

    /// Sets the stride.
    pub fn with_stride(mut self, stride: i64) -> Self {
        self.stride = stride;
        self
    }
}

/// Keras `MaxPooling2D` over NCHW tensors.
///
/// # Shapes
/// `[N, C, H, W]` → `[N, C, H', W']` with `H' = ceil(H / stride)` for `"same"` and
/// `H' = floor((H - pool) / stride) + 1` for `"valid"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPool2d {
    config: MaxPool2dConfig,
}

impl MaxPool2d {
    /// A pooling layer; it has no variables.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a non-positive window or stride.
    pub fn new(config: &MaxPool2dConfig) -> Result<Self> {
        for (option, value) in [("pool", config.pool), ("stride", config.stride)] {
            if value <= 0 {
                return Err(invalid(
                    "MaxPool2d",
                    option,
                    format!("must be positive, got {value}"),
                ));
            }
        }
        Ok(Self { config: *config })
    }

    /// The configuration.
    pub fn config(&self) -> &MaxPool2dConfig {
        &self.config
    }

    /// The output size along a dimension of size `size`.
    pub fn output_size(&self, size: i64) -> i64 {
        let c = &self.config;
        match c.padding {
            Padding::Same => (size + c.stride - 1) / c.stride,
            Padding::Valid => (size - c.pool).div_euclid(c.stride) + 1,
        }
    }
}

impl Module for MaxPool2d {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let c = &self.config;
        // 2×2 windows, stride 2, nothing to pad (`"valid"`, or `"same"` on even sizes), on
        // a contiguous NCHW f32/bf16 CPU tensor: df-sys's kernel, the same values and
        // gradients as libtorch's generic NCHW one, faster (what follows a batch norm of
        // few channels, computed NCHW: `BatchNorm`; the block bench `bn_pool_11`).
        let even = xs
            .size()
            .get(2..)
            .is_some_and(|hw| hw.iter().all(|s| s % 2 == 0));
        // Not inside `kernels::standard_ops` (an export's trace, which cannot see it).
        if c.pool == 2
            && crate::kernels::custom_allowed()
            && c.stride == 2
            && (c.padding == Padding::Valid || even)
            && df_sys::pool::supports(xs)
        {
            if let Ok(ys) = df_sys::pool::max_pool_2x2(xs) {
                return ys;
            }
        }
        let (k, s) = ([c.pool; 2], [c.stride; 2]);
        // "same" pads at most `pool - 1` in total, so the symmetric part left to the
        // operator never exceeds the `pool / 2` libtorch accepts.
        let (xs, pad) = c.padding.apply(xs, k, s, [1, 1], f64::NEG_INFINITY);
        xs.max_pool2d(k, s, pad, [1, 1], false)
    }
}
