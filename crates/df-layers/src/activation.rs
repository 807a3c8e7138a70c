//! Activation functions with Keras names and semantics.

use tch::Tensor;

/// An activation, as Keras names it.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// No activation (Keras `"linear"`).
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `x * sigmoid(x)` (Keras `"swish"`, also called SiLU).
    Swish,
    /// `x` for `x > 0`, `alpha * x` otherwise (Keras `LeakyReLU(negative_slope=alpha)`).
    LeakyRelu(f64),
    /// `sigmoid(x)`.
    Sigmoid,
}

impl Activation {
    /// Applies the activation.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        match *self {
            Activation::Linear => x.shallow_clone(),
            Activation::Relu => x.relu(),
            Activation::Swish => x.silu(),
            // max(x, 0) + alpha * min(x, 0): exact for any alpha, one fused pass each.
            Activation::LeakyRelu(alpha) => x.relu() + x.clamp_max(0.0) * alpha,
            Activation::Sigmoid => x.sigmoid(),
        }
    }
}
