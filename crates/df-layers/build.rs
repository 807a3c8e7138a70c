//! Lets `cargo test` (doc tests included) and `cargo run` find libtorch at run time.
//!
//! Cargo puts a build script's `rustc-link-search` directories on the dynamic-library path
//! of the programs it runs, but only those inside the target directory. Linking libtorch's
//! `lib/` into OUT_DIR makes doc tests (which have no rpath) start without any variable
//! exported by hand. Binaries started directly get libtorch through the rpath set in
//! `.cargo/config.toml`.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Some(libtorch) = std::env::var_os("LIBTORCH") else {
        return;
    };
    let lib = PathBuf::from(libtorch).join("lib");
    let Ok(lib) = lib.canonicalize() else { return };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("libtorch-lib");
    let _ = std::fs::remove_file(&out);
    #[cfg(unix)]
    if std::os::unix::fs::symlink(&lib, &out).is_ok() {
        println!("cargo:rustc-link-search=native={}", out.display());
    }
}
