//! What the tests that run the example programs share.

pub mod cli;

use std::path::{Path, PathBuf};

/// `target/<profile>/examples/<name>`, next to this test's `deps/` directory.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: `cargo test` (and `make test-shared` for the shared-data suite) \
         builds the examples before the tests",
        path.display()
    );
    path
}

/// A small meso4 checkpoint (32×32 input) written through the library, each variable
/// passed through `fill` first (`|_| ()` keeps the initial weights).
#[allow(dead_code)] // not every test binary that includes this module writes one
pub fn meso4_checkpoint(path: &Path, fill: impl Fn(&deepfake::tch::Tensor)) {
    use deepfake::models::{self, BuildOptions};
    let vs = deepfake::tch::nn::VarStore::new(deepfake::tch::Device::Cpu);
    let model = models::build(
        "meso4",
        &vs.root(),
        &BuildOptions::default().with_input_size(32, 32),
    )
    .expect("meso4");
    deepfake::tch::no_grad(|| {
        for (_, t) in vs.variables() {
            fill(&t);
        }
    });
    models::checkpoint::save_checkpoint(&vs, model.as_ref(), path).expect("save");
}

/// The `.png` and `.jpg` files in `dir` (not recursive), sorted by path.
pub fn sorted_images(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    files.sort();
    files
}
