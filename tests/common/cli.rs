//! What the command-line tests (`tests/cli_*.rs`) share: running a program, reading what
//! it wrote.
#![allow(dead_code)] // not every test binary uses every helper

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::example;

pub fn run(name: &str, args: &[&str]) -> Output {
    let output = Command::new(example(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running example {name}: {e}"));
    output
}

pub fn ok(name: &str, args: &[&str]) -> (String, String) {
    let out = run(name, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "example {name} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

pub fn json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temporary path")
}

/// `train` on meso4 for one epoch with half the data held out, writing to `out`: its
/// options, then `extra` (`--input-size` and `--device` are 32 and cpu unless given).
pub fn train_meso4(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--model",
        "meso4",
        "--data",
        s(data),
        "--val-split",
        "0.5",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        s(out),
    ];
    for (flag, default) in [("--input-size", "32"), ("--device", "cpu")] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend_from_slice(extra);
    run("train", &args)
}

/// The name of the first `.png` or `.jpg` file in `dir`, in path order.
pub fn first_file(dir: &Path) -> PathBuf {
    let first = super::sorted_images(dir).into_iter().next();
    PathBuf::from(
        first
            .and_then(|p| p.file_name().map(|n| n.to_owned()))
            .expect("an image"),
    )
}

/// The epochs a run's `last.safetensors` says are done.
pub fn epochs_done(last: &Path) -> Option<u64> {
    let file = deepfake::train::run_files::read_safetensors(last).ok()?;
    let state: serde_json::Value = serde_json::from_str(file.metadata.get("train_state")?).ok()?;
    state["epochs_done"].as_u64()
}
