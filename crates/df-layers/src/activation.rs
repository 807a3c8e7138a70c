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

    /// Applies the activation to a tensor the caller owns and no one else reads: in place
    /// when autograd records nothing for it (inference under [`tch::no_grad`], or every
    /// input frozen), which saves an allocation and a pass over memory; otherwise as
    /// [`Activation::apply`]. The values are the same either way.
    pub fn apply_owned(&self, mut x: Tensor) -> Tensor {
        if x.requires_grad() {
            return self.apply(&x);
        }
        match *self {
            Activation::Linear => x,
            Activation::Relu => {
                let _ = x.relu_();
                x
            }
            Activation::Swish => {
                let _ = x.silu_();
                x
            }
            Activation::Sigmoid => {
                let _ = x.sigmoid_();
                x
            }
            Activation::LeakyRelu(_) => self.apply(&x),
        }
    }
}

/// `a + b` written into `a` when autograd records nothing for either (`a` must be a tensor
/// the caller owns), else a new tensor.
pub(crate) fn add_owned(mut a: Tensor, b: &Tensor) -> Tensor {
    if a.requires_grad() || b.requires_grad() {
        a + b
    } else {
        let _ = a.g_add_(b);
        a
    }
}
