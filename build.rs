//! Keeps libtorch's CUDA library linked into the facade's examples, benches and tests.
//!
//! Nothing in tch references a symbol of `libtorch_cuda.so` directly, so with the linker's
//! default `--as-needed` it is dropped from the binaries and `tch::Cuda::is_available()`
//! is false even on a GPU machine. Linking `libtorch.so` (which depends on it) again after
//! `--no-as-needed` keeps it. A project of your own that depends on these crates needs the
//! same lines in its build script (see the README).
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let Some(libtorch) = std::env::var_os("LIBTORCH") else {
        return;
    };
    let Ok(lib) = PathBuf::from(libtorch).join("lib").canonicalize() else {
        return;
    };
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch");
    }
}
