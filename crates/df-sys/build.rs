//! Compiles `shim/*.cpp` against the libtorch that torch-sys found (the same headers and
//! libraries tch links), with the C++ ABI of the PyTorch wheel.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=shim");
    println!("cargo:rerun-if-changed=vendor");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::env::var_os("DEP_TCH_LIBTORCH_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "DEP_TCH_LIBTORCH_LIB is not set: torch-sys (a direct dependency) did not \
             report its libtorch directory; run scripts/setup.sh (it links .libtorch)"
            )
        });
    let root = lib
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| lib.clone());
    let include = root.join("include");
    if !include.join("ATen/autocast_mode.h").is_file() {
        panic!(
            "{}: no ATen/autocast_mode.h: libtorch's headers are missing there",
            include.display()
        );
    }
    if !include
        .join("torch/csrc/distributed/c10d/ProcessGroupGloo.hpp")
        .is_file()
    {
        panic!(
            "{}: no torch/csrc/distributed/c10d/ProcessGroupGloo.hpp: this libtorch has no \
             c10d headers",
            include.display()
        );
    }
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("shim/autocast.cpp")
        .file("shim/c10d.cpp")
        .file("shim/jit.cpp")
        .file("shim/optim.cpp")
        .file("shim/pool.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        // gloo's headers, which the wheel does not ship (vendor/README.md: origin, commit).
        .include("vendor")
        // Without it ProcessGroupGloo.hpp declares nothing.
        .define("USE_C10D_GLOO", None)
        // The wheel's ABI (torch.compiled_with_cxx11_abi() is True for 2.11.0).
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .compile("df_shim");
    if std::env::var_os("CARGO_FEATURE_NCCL").is_some() {
        build_nccl(&root, &include);
    }
    // torch_cpu and c10 come from torch-sys's own link lines (this crate depends on it).
    // Cargo puts only search directories inside the target directory on the library path
    // of what it runs; libtorch's lib/ linked into OUT_DIR lets doc tests (no rpath) start,
    // as df-layers' build script does.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("libtorch-lib");
    let _ = std::fs::remove_file(&out);
    #[cfg(unix)]
    if std::os::unix::fs::symlink(&lib, &out).is_ok() {
        println!("cargo:rustc-link-search=native={}", out.display());
    }
}

/// The `nccl` feature: shim/nccl.cpp against the wheel's nccl.h and the CUDA headers of
/// the PyPI packages nvidia-cuda-crt and nvidia-cuda-cccl (`scripts/setup.sh --nccl`),
/// linked to libtorch_cuda. It compiles on a machine without a GPU.
fn build_nccl(torch: &std::path::Path, include: &std::path::Path) {
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_NCCL");
    // The wheel's torch/ directory (`.libtorch` is a link to it) sits in site-packages,
    // beside nvidia/.
    let torch = torch.canonicalize().unwrap_or_else(|_| torch.to_path_buf());
    let nvidia = torch
        .parent()
        .map(|site| site.join("nvidia"))
        .unwrap_or_else(|| PathBuf::from("nvidia"));
    let cuda = nvidia.join("cu13/include");
    let nccl = nvidia.join("nccl/include");
    for (what, path) in [
        (
            "the CUDA runtime headers (cuda_runtime.h)",
            cuda.join("cuda_runtime.h"),
        ),
        (
            "the CUDA compiler headers (crt/host_config.h)",
            cuda.join("crt/host_config.h"),
        ),
        (
            "CCCL's headers (cccl/cuda/std/version)",
            cuda.join("cccl/cuda/std/version"),
        ),
        ("the wheel's nccl.h", nccl.join("nccl.h")),
    ] {
        if !path.is_file() {
            panic!(
                "the `nccl` feature needs {what}: {} is missing; run `scripts/setup.sh --nccl` \
                 (it installs nvidia-cuda-crt and nvidia-cuda-cccl beside the torch wheel)",
                path.display()
            );
        }
    }
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("shim/nccl.cpp")
        .include(include)
        .include(include.join("torch/csrc/api/include"))
        .include(&cuda)
        .include(cuda.join("cccl"))
        .include(&nccl)
        .define("USE_C10D_NCCL", None)
        .define("USE_CUDA", None)
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .flag_if_supported("-Wno-interference-size")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .compile("df_shim_nccl");
    println!("cargo:rustc-link-lib=dylib=torch_cuda");
    println!("cargo:rustc-link-lib=dylib=c10_cuda");
}
