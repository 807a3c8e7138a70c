//! Links libtorch so that binaries start anywhere: `cargo run`, `cargo test` and the
//! binary run directly (no `LD_LIBRARY_PATH`), on the CPU and on CUDA.
//!
//! A project of your own that depends on these crates copies this file as its `build.rs`
//! (the README says so, and `downstream/` in this repository is such a project, checked by
//! `make test`). It reads `LIBTORCH` (libtorch's directory, as `tch` needs it to build)
//! and gives the linker:
//!
//! - an rpath to `$LIBTORCH/lib`, so the binary finds `libtorch_cpu.so` and friends when
//!   started directly;
//! - on a CUDA build of libtorch, `libtorch.so` again after `--no-as-needed`: nothing in
//!   tch references a symbol of `libtorch_cuda.so` directly, so with the linker's default
//!   `--as-needed` it would be dropped and `tch::Cuda::is_available()` would be false even
//!   on a GPU machine.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let Some(libtorch) = std::env::var_os("LIBTORCH") else {
        println!(
            "cargo:warning=LIBTORCH is not set: the binaries will need LD_LIBRARY_PATH to \
             find libtorch"
        );
        return;
    };
    let Ok(lib) = PathBuf::from(libtorch).join("lib").canonicalize() else {
        println!("cargo:warning=LIBTORCH has no lib/ directory");
        return;
    };
    if cfg!(target_os = "linux") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch");
    }
}
