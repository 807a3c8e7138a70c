//! libtorch's autocast by device type: what `torch.autocast(device_type, dtype)` does.
//!
//! Inside an [`Autocast`] scope, libtorch runs the operations of its lower-precision list
//! (convolutions, matrix products, linear layers ...) in the scope's dtype and keeps the
//! others (losses, reductions, batch-norm statistics in mixed-dtype kernels) in `f32`,
//! casting inputs as each operation needs: the policy is libtorch's own, per device.
//! The state is per thread, as in PyTorch, so a scope is neither `Send` nor `Sync`.

use std::ffi::c_int;
use std::marker::PhantomData;

use tch::{Device, Kind};

use crate::{check, device_type, ffi, kind_of, scalar_type, Error, Result};

fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
    }
}

/// Whether libtorch has autocast for `device`'s type (CPU and CUDA do).
///
/// # Errors
/// [`Error::Torch`] when libtorch raises.
pub fn is_available(device: Device) -> Result<bool> {
    let mut out: c_int = 0;
    // SAFETY: the shim writes one int through the valid pointer it is given and
    // returns null or an owned message, which `check` frees.
    let message = unsafe { ffi::df_autocast_is_available(device_type(device), &mut out) };
    check(
        || format!("autocast.is_available({})", device_name(device)),
        message,
    )?;
    Ok(out != 0)
}

/// Whether autocast is on for `device`'s type in this thread.
///
/// # Errors
/// [`Error::Torch`] for a device type without autocast.
pub fn is_enabled(device: Device) -> Result<bool> {
    let mut out: c_int = 0;
    // SAFETY: as in `is_available`: one int written through a valid pointer.
    let message = unsafe { ffi::df_autocast_is_enabled(device_type(device), &mut out) };
    check(
        || format!("autocast.is_enabled({})", device_name(device)),
        message,
    )?;
    Ok(out != 0)
}

/// The dtype autocast uses for `device`'s type in this thread (libtorch's defaults:
/// `BFloat16` on the CPU, `Half` on CUDA).
///
/// # Errors
/// [`Error::Torch`] for a device type without autocast.
pub fn dtype(device: Device) -> Result<Kind> {
    let mut out: c_int = 0;
    // SAFETY: as in `is_available`: one int written through a valid pointer.
    let message = unsafe { ffi::df_autocast_get_dtype(device_type(device), &mut out) };
    check(
        || format!("autocast.get_dtype({})", device_name(device)),
        message,
    )?;
    kind_of(out).ok_or_else(|| Error::Torch {
        operation: format!("autocast.get_dtype({})", device_name(device)),
        message: format!("scalar type code {out}, not half, float or bfloat16"),
    })
}

fn set_enabled(device: Device, enabled: bool) -> Result<()> {
    // SAFETY: plain values in; null or an owned message out, freed by `check`.
    let message =
        unsafe { ffi::df_autocast_set_enabled(device_type(device), c_int::from(enabled)) };
    check(
        || format!("autocast.set_enabled({}, {enabled})", device_name(device)),
        message,
    )
}

fn set_dtype(device: Device, kind: Kind) -> Result<()> {
    let code = scalar_type(kind).ok_or_else(|| Error::Invalid {
        option: "autocast dtype",
        reason: format!("{kind:?} is not a floating type autocast can use (Half, BFloat16)"),
    })?;
    // SAFETY: plain values in; null or an owned message out, freed by `check`.
    let message = unsafe { ffi::df_autocast_set_dtype(device_type(device), code) };
    check(
        || format!("autocast.set_dtype({}, {kind:?})", device_name(device)),
        message,
    )
}

fn nesting(increment: bool) -> Result<i32> {
    let mut depth: c_int = 0;
    // SAFETY: one int written through a valid pointer; null or an owned message out.
    let message = unsafe {
        if increment {
            ffi::df_autocast_increment_nesting(&mut depth)
        } else {
            ffi::df_autocast_decrement_nesting(&mut depth)
        }
    };
    check(|| "autocast nesting".to_string(), message)?;
    Ok(depth)
}

/// Empties autocast's cache of cast weights (done when the outermost scope ends).
///
/// # Errors
/// [`Error::Torch`] when libtorch raises.
pub fn clear_cache() -> Result<()> {
    // SAFETY: no arguments; null or an owned message out, freed by `check`.
    let message = unsafe { ffi::df_autocast_clear_cache() };
    check(|| "autocast.clear_cache".to_string(), message)
}

/// An autocast scope: from [`Autocast::enter`] until it is dropped, operations on
/// `device`'s type run under libtorch's autocast in `kind` (as `with
/// torch.autocast(device_type, dtype):`). Scopes nest; leaving one restores the state
/// that was before it, and leaving the outermost clears the cache of cast weights.
#[derive(Debug)]
#[must_use = "autocast ends when the scope is dropped"]
pub struct Autocast {
    device: Device,
    was_enabled: bool,
    was_kind: Kind,
    /// The state is per thread: the scope must end on the thread that began it.
    _not_send: PhantomData<*const ()>,
}

impl Autocast {
    /// Begins autocast in `kind` (`Kind::BFloat16`, or `Kind::Half`) for `device`'s type.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a device without autocast or a kind that is not Half or
    /// BFloat16; [`Error::Torch`] when libtorch raises.
    pub fn enter(device: Device, kind: Kind) -> Result<Self> {
        if !matches!(kind, Kind::Half | Kind::BFloat16) {
            return Err(Error::Invalid {
                option: "autocast dtype",
                reason: format!("{kind:?}: autocast runs in Half or BFloat16"),
            });
        }
        if !is_available(device)? {
            return Err(Error::Invalid {
                option: "autocast device",
                reason: format!("libtorch has no autocast for {}", device_name(device)),
            });
        }
        let was_enabled = is_enabled(device)?;
        let was_kind = dtype(device)?;
        set_dtype(device, kind)?;
        if let Err(e) = set_enabled(device, true) {
            let _ = set_dtype(device, was_kind);
            return Err(e);
        }
        nesting(true)?;
        Ok(Self {
            device,
            was_enabled,
            was_kind,
            _not_send: PhantomData,
        })
    }

    /// A scope that does nothing when `kind` is `None` or `Kind::Float` (full precision),
    /// and [`Autocast::enter`] otherwise.
    ///
    /// # Errors
    /// As [`Autocast::enter`].
    pub fn maybe(device: Device, kind: Option<Kind>) -> Result<Option<Self>> {
        match kind {
            None | Some(Kind::Float) => Ok(None),
            Some(k) => Self::enter(device, k).map(Some),
        }
    }

    /// The device whose autocast this scope drives.
    pub fn device(&self) -> Device {
        self.device
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // As torch.autocast.__exit__: the outermost exit clears the cache, then the
        // previous state comes back. These calls only raise for a device type without
        // autocast, which `enter` ruled out.
        if matches!(nesting(false), Ok(0)) {
            let _ = clear_cache();
        }
        let _ = set_enabled(self.device, self.was_enabled);
        let _ = set_dtype(self.device, self.was_kind);
    }
}
