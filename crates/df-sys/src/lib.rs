//! df-sys: the workspace's one binding to libtorch's C++ beyond what `tch` exposes.
//!
//! A small C shim (`shim/*.cpp`), compiled by this crate's `build.rs` with the `cc` crate
//! against the libtorch that `torch-sys` found (the same 2.11.0 headers and libraries
//! `tch` links, with the wheel's C++ ABI), and safe Rust on top of it. It is the only
//! crate of the workspace that may use `unsafe`; each block says why it is sound.
//!
//! It holds libtorch's device-typed autocast ([`autocast`]: `tch::autocast` drives only
//! the old CUDA-only switch, so mixed precision on the CPU needs this) and its c10d
//! distributed engine on the Gloo backend ([`c10d`]: the `TCPStore` rendezvous and
//! `ProcessGroupGloo` that `torch.distributed` runs on), which `df-dist` builds on; the
//! multi-tensor optimizer steps ([`optim`]), a 2×2 max-pooling kernel with its own autograd
//! node ([`pool`]), the C library allocator's policy for freed memory ([`memory`]) and the
//! process controls a launcher of ranks needs ([`process`]: signals, death with the parent),
//! and TorchScript archives with extra files ([`jit`]: what a self-describing export needs).
//!
//! ```
//! use df_sys::autocast::Autocast;
//! use tch::{Device, Kind, Tensor};
//!
//! # fn main() -> Result<(), df_sys::Error> {
//! let x = Tensor::ones([2, 8], (Kind::Float, Device::Cpu));
//! let w = Tensor::ones([4, 8], (Kind::Float, Device::Cpu));
//! let y = {
//!     let _bf16 = Autocast::enter(Device::Cpu, Kind::BFloat16)?;
//!     x.linear::<Tensor>(&w, None)
//! };
//! assert_eq!(y.kind(), Kind::BFloat16); // computed in bf16
//! assert_eq!(x.linear::<Tensor>(&w, None).kind(), Kind::Float); // autocast ended
//! # Ok(())
//! # }
//! ```

use std::ffi::{c_char, c_int, CStr};

// tch and this shim must resolve to the same libtorch: torch-sys is linked once.
use torch_sys as _;

pub mod autocast;
pub mod c10d;
pub mod device;
pub mod jit;
pub mod memory;
pub mod optim;
pub mod pool;
pub mod process;

/// What can go wrong in a call into libtorch's C++.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// libtorch raised a C++ exception; its message.
    #[error("libtorch: {operation}: {message}")]
    Torch {
        /// The operation (`autocast.set_enabled(cpu)` ...).
        operation: String,
        /// libtorch's message.
        message: String,
    },
    /// An option this crate refuses before calling libtorch.
    #[error("{option}: {reason}")]
    Invalid {
        /// The option or argument at fault.
        option: &'static str,
        /// Why.
        reason: String,
    },
}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

mod ffi {
    use std::ffi::{c_char, c_int};

    extern "C" {
        pub fn df_shim_free(message: *mut c_char);
        pub fn df_autocast_is_available(device_type: c_int, available: *mut c_int) -> *mut c_char;
        pub fn df_autocast_is_enabled(device_type: c_int, enabled: *mut c_int) -> *mut c_char;
        pub fn df_autocast_set_enabled(device_type: c_int, enabled: c_int) -> *mut c_char;
        pub fn df_autocast_get_dtype(device_type: c_int, scalar_type: *mut c_int) -> *mut c_char;
        pub fn df_autocast_set_dtype(device_type: c_int, scalar_type: c_int) -> *mut c_char;
        pub fn df_autocast_increment_nesting(depth: *mut c_int) -> *mut c_char;
        pub fn df_autocast_decrement_nesting(depth: *mut c_int) -> *mut c_char;
        pub fn df_autocast_clear_cache() -> *mut c_char;
    }
}

/// Turns the shim's returned message (null: success) into a result, freeing it.
fn check(operation: impl FnOnce() -> String, message: *mut c_char) -> Result<()> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null return of a shim function is a NUL-terminated string it
    // allocated with malloc (copy_message) and that nothing else references; it is read
    // once here and freed once, by the shim's own free.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: as above; `message` is not used after this.
    unsafe { ffi::df_shim_free(message) };
    Err(Error::Torch {
        operation: operation(),
        message: text,
    })
}

/// libtorch's `c10::DeviceType` code of `device`.
fn device_type(device: tch::Device) -> c_int {
    match device {
        tch::Device::Cpu => 0,
        tch::Device::Cuda(_) => 1,
        tch::Device::Mps => 13,
        tch::Device::Vulkan => 10,
    }
}

/// libtorch's `c10::ScalarType` code of the floating kinds autocast can use.
fn scalar_type(kind: tch::Kind) -> Option<c_int> {
    match kind {
        tch::Kind::Half => Some(5),
        tch::Kind::Float => Some(6),
        tch::Kind::BFloat16 => Some(15),
        _ => None,
    }
}

fn kind_of(code: c_int) -> Option<tch::Kind> {
    [tch::Kind::Half, tch::Kind::Float, tch::Kind::BFloat16]
        .into_iter()
        .find(|k| scalar_type(*k) == Some(code))
}
