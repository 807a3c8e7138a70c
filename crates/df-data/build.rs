//! Lets doc tests find libtorch at run time, as `crates/df-layers/build.rs` does.
//!
//! Cargo adds a build script's `rustc-link-search` directories inside the target
//! directory to the library path of the programs it runs; doc tests have no rpath, so a
//! link to libtorch's `lib/` in OUT_DIR is what lets them start.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Some(libtorch) = std::env::var_os("LIBTORCH") else {
        return;
    };
    let Ok(lib) = PathBuf::from(libtorch).join("lib").canonicalize() else {
        return;
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        return;
    };
    let link = PathBuf::from(out_dir).join("libtorch-lib");
    let _ = std::fs::remove_file(&link);
    #[cfg(unix)]
    if std::os::unix::fs::symlink(&lib, &link).is_ok() {
        println!("cargo:rustc-link-search=native={}", link.display());
    }
}
