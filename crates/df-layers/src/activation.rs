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

    /// Applies the activation to a tensor that a df-layers block has just made, in place
    /// whenever that is exact: always when autograd records nothing for it (as
    /// [`Activation::apply_owned`]), and for ReLU also when it does: ReLU's backward reads
    /// its own output, not its input, so autograd records `relu_` as it records `relu`
    /// (this is what `nn.ReLU(inplace=True)` does in PyTorch). Swish and sigmoid under
    /// autograd, and leaky ReLU always, make a new tensor.
    ///
    /// The caller guarantees what autograd cannot check before backward runs: `x` is owned,
    /// read by no one else, and made by an operator whose backward does not read its output
    /// (a convolution, batch norm, an addition or a concatenation).
    pub(crate) fn apply_fresh(&self, mut x: Tensor) -> Tensor {
        if *self == Activation::Relu {
            let _ = x.relu_();
            return x;
        }
        self.apply_owned(x)
    }
}

/// `a + b`, written into `a`: an addition's backward reads neither operand, so this is
/// exact under autograd too (PyTorch's `out += identity` in torchvision's ResNet). `a`
/// must be a tensor the caller owns, that no one else reads, made by an operator whose
/// backward does not read its output (see [`Activation::apply_fresh`]).
pub(crate) fn add_owned(mut a: Tensor, b: &Tensor) -> Tensor {
    let _ = a.g_add_(b);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// Under autograd, `apply_fresh` writes ReLU and additions into the tensor it is given
    /// (the point of it) and still gives the gradients of the out-of-place formulas; other
    /// activations make a new tensor.
    #[test]
    fn relu_and_add_are_in_place_under_autograd() {
        let values = [-2.0f64, -0.5, 0.25, 3.0];
        let leaf = Tensor::from_slice(&values).set_requires_grad(true);
        let other = Tensor::from_slice(&[1.0f64, 1.0, -1.0, 0.5]);

        let fresh = &leaf * 2.0;
        let ptr = fresh.data_ptr();
        let summed = add_owned(fresh, &other);
        let out = Activation::Relu.apply_fresh(summed);
        assert_eq!(
            out.data_ptr(),
            ptr,
            "add and ReLU under autograd are in place"
        );
        out.sum(Kind::Double).backward();
        // d/dx relu(2x + o) = 2 where 2x + o > 0: here the last element only.
        let grad = Vec::<f64>::try_from(&leaf.grad()).expect("gradient");
        assert_eq!(grad, vec![0.0, 0.0, 0.0, 2.0]);
        let got = Vec::<f64>::try_from(&out.detach()).expect("values");
        assert_eq!(got, vec![0.0, 0.0, 0.0, 6.5]);

        let fresh = &leaf * 2.0;
        let ptr = fresh.data_ptr();
        let out = Activation::Swish.apply_fresh(fresh);
        assert_ne!(
            out.data_ptr(),
            ptr,
            "swish under autograd makes a new tensor"
        );
    }
}
