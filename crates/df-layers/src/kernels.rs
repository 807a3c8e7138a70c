//! A thread-local switch from df-sys's custom kernels to libtorch's standard operators.
//!
//! Some blocks call a kernel of `df-sys` where it is faster ([`crate::MaxPool2d`]'s 2×2
//! pooling). A TorchScript tracer records only operators that go through libtorch's
//! dispatcher, so such a call would be missing from a traced graph (its output recorded as
//! whatever allocated it). Inside [`standard_ops`] every block on the calling thread uses
//! the standard operator instead — the same values — which is what an export traces.
//!
//! ```
//! # mod deepfake { pub mod layers { pub use df_layers::*; } }
//! use deepfake::layers::kernels;
//!
//! assert!(kernels::custom_allowed());
//! let inside = kernels::standard_ops(kernels::custom_allowed);
//! assert!(!inside);
//! assert!(kernels::custom_allowed());
//! ```

use std::cell::Cell;

thread_local! {
    static STANDARD: Cell<bool> = const { Cell::new(false) };
}

/// Restores the enclosing state, on return or panic.
struct Restore(bool);

impl Drop for Restore {
    fn drop(&mut self) {
        STANDARD.set(self.0);
    }
}

/// Runs `f` with df-sys's custom kernels replaced by libtorch's standard operators on this
/// thread (nests; the enclosing state comes back when `f` returns or panics).
pub fn standard_ops<T>(f: impl FnOnce() -> T) -> T {
    let _restore = Restore(STANDARD.replace(true));
    f()
}

/// Whether blocks on this thread may call df-sys's custom kernels (false inside
/// [`standard_ops`]).
pub fn custom_allowed() -> bool {
    !STANDARD.get()
}
