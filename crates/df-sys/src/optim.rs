//! Multi-tensor ("foreach") updates: one call into libtorch for a whole optimizer step or
//! loss-scaler check, where a loop over the parameters would launch about ten kernels per
//! parameter (what makes a per-parameter optimizer slow on CUDA). The same operators
//! `torch.optim.Adam(foreach=True)` and `torch.amp.GradScaler` run.

use tch::Tensor;

use crate::{check, Error, Result};

mod ffi {
    use std::ffi::c_char;

    extern "C" {
        pub fn df_adam_foreach(
            params: *const *const torch_sys::C_tensor,
            grads: *const *const torch_sys::C_tensor,
            exp_avgs: *const *const torch_sys::C_tensor,
            exp_avg_sqs: *const *const torch_sys::C_tensor,
            n: usize,
            decay: f64,
            beta1: f64,
            beta2: f64,
            eps: f64,
            denom_div: f64,
            step: f64,
        ) -> *mut c_char;
        pub fn df_amp_unscale_foreach(
            grads: *const *const torch_sys::C_tensor,
            n: usize,
            found_inf: *const torch_sys::C_tensor,
            inv_scale: *const torch_sys::C_tensor,
        ) -> *mut c_char;
        pub fn df_zero_foreach(grads: *const *const torch_sys::C_tensor, n: usize) -> *mut c_char;
    }
}

/// The scalars of one Adam step ([`adam_step`]); the caller folds the bias corrections in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamScalars {
    /// Parameters are first multiplied by this (decoupled weight decay, `1 − lr·wd`; `1.0`
    /// for none).
    pub decay: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// `√v` is divided by this before ε is added (`√(1 − β₂ᵗ)` for PyTorch's ε, `1.0` for
    /// Keras').
    pub denom_div: f64,
    /// The update `step · m / denom` is added to the parameters (negative: a descent).
    pub step: f64,
}

fn pointers(tensors: &[Tensor]) -> Vec<*const torch_sys::C_tensor> {
    tensors.iter().map(Tensor::as_ptr).collect()
}

fn same_length(what: &'static str, n: usize, got: usize) -> Result<()> {
    if n == got {
        Ok(())
    } else {
        Err(Error::Invalid {
            option: what,
            reason: format!("{got} tensors for {n} parameters"),
        })
    }
}

/// One Adam step over every parameter at once, in place:
/// `p ← p·decay; m ← m + (1−β₁)(g − m); v ← β₂v + (1−β₂)g²; p ← p + step·m/(√v/denom_div + ε)`,
/// under no-grad. The tensors of each list share one device and dtype.
///
/// # Errors
/// [`Error::Invalid`] for lists of different lengths; [`Error::Torch`] for what libtorch
/// refuses (shapes, devices).
pub fn adam_step(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    s: &AdamScalars,
) -> Result<()> {
    let n = params.len();
    same_length("grads", n, grads.len())?;
    same_length("exp_avgs", n, exp_avgs.len())?;
    same_length("exp_avg_sqs", n, exp_avg_sqs.len())?;
    if n == 0 {
        return Ok(());
    }
    let (p, g, m, v) = (
        pointers(params),
        pointers(grads),
        pointers(exp_avgs),
        pointers(exp_avg_sqs),
    );
    // SAFETY: the four arrays hold `n` pointers each to live `at::Tensor`s (tch tensors
    // borrowed for the call); the shim copies the handles, updates the tensors' storage in
    // place, and returns null or an owned message, which `check` frees.
    let message = unsafe {
        ffi::df_adam_foreach(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            n,
            s.decay,
            s.beta1,
            s.beta2,
            s.eps,
            s.denom_div,
            s.step,
        )
    };
    check(|| format!("adam step over {n} parameters"), message)
}

/// Multiplies the gradients by `inv_scale` in place and sets `found_inf` (one float on
/// their device) to 1 when any of them holds an inf or NaN: libtorch's
/// `_amp_foreach_non_finite_check_and_unscale_`.
///
/// # Errors
/// [`Error::Torch`] for what libtorch refuses (devices, dtypes).
pub fn unscale_gradients(grads: &[Tensor], found_inf: &Tensor, inv_scale: &Tensor) -> Result<()> {
    if grads.is_empty() {
        return Ok(());
    }
    let g = pointers(grads);
    // SAFETY: `g` holds `grads.len()` pointers to live tensors and the two others point
    // to live tensors, all borrowed for the call; the shim updates their storage in place
    // and returns null or an owned message, which `check` frees.
    let message = unsafe {
        ffi::df_amp_unscale_foreach(g.as_ptr(), g.len(), found_inf.as_ptr(), inv_scale.as_ptr())
    };
    check(|| format!("unscaling {} gradients", grads.len()), message)
}

/// Zeroes the tensors (gradients) in place, detached from any graph, in one multi-tensor
/// call.
///
/// # Errors
/// [`Error::Torch`] for what libtorch refuses.
pub fn zero(tensors: &[Tensor]) -> Result<()> {
    if tensors.is_empty() {
        return Ok(());
    }
    let t = pointers(tensors);
    // SAFETY: `t` holds `tensors.len()` pointers to live tensors borrowed for the call;
    // the shim zeroes their storage in place and returns null or an owned message, which
    // `check` frees.
    let message = unsafe { ffi::df_zero_foreach(t.as_ptr(), t.len()) };
    check(|| format!("zeroing {} gradients", tensors.len()), message)
}
