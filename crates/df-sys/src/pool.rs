//! Max pooling over 2×2 windows with stride 2 (no padding; an odd last row or column is
//! left out, as `max_pool2d` with floor rounding does) on contiguous NCHW CPU tensors of
//! `f32` or `bf16`: the same values, argmax and gradient as libtorch's `max_pool2d`, faster
//! than its generic NCHW kernel (`shim/pool.cpp` says how and why; the block bench
//! `bn_pool_11` and `docs/runs/epoch-amd-epyc-890e996.md`, "The training epoch", measure it). The result is recorded for autograd (its own node; no double backward).

use tch::{Device, Kind, Tensor};

use crate::{check, Result};

mod ffi {
    use std::ffi::c_char;

    extern "C" {
        pub fn df_max_pool_2x2(
            x: *const torch_sys::C_tensor,
            out: *mut *mut torch_sys::C_tensor,
        ) -> *mut c_char;
    }
}

/// Whether [`max_pool_2x2`] takes `x`: on the CPU, `[N, C, H, W]` contiguous (NCHW), `f32`
/// or `bf16`, `H` and `W` at least 2.
pub fn supports(x: &Tensor) -> bool {
    x.device() == Device::Cpu
        && matches!(x.kind(), Kind::Float | Kind::BFloat16)
        && x.dim() == 4
        && x.is_contiguous()
        && x.size()
            .get(2..)
            .is_some_and(|hw| hw.iter().all(|&s| s >= 2))
}

/// `x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)` for an `x` that [`supports`]
/// takes.
///
/// # Errors
/// [`crate::Error::Torch`] for an input [`supports`] refuses (naming what is wrong).
pub fn max_pool_2x2(x: &Tensor) -> Result<Tensor> {
    let mut out: *mut torch_sys::C_tensor = std::ptr::null_mut();
    // SAFETY: `x` points to a live tensor borrowed for the call, and `out` to a local the
    // shim sets to a tensor it allocated with `new` (left null when it returns an error);
    // the message it returns is null or owned and freed by `check`.
    let message = unsafe { ffi::df_max_pool_2x2(x.as_ptr(), &mut out) };
    check(
        || format!("max_pool_2x2 of {:?} {:?}", x.size(), x.kind()),
        message,
    )?;
    // SAFETY: on success `out` is a fresh `at::Tensor*` from the shim's `new`, owned by no
    // one else: tch takes it over and deletes it once.
    Ok(unsafe { Tensor::from_ptr(out) })
}
