//! `evaluate` and `predict` on the CPU keep freed memory for the next batch, as `train`
//! does (`deepfake::train::allocator`): the tensors of each forward pass are then not
//! page-faulted in anew. Each program runs twice over the same images, once as it is and
//! once with `GLIBC_TUNABLES` naming a malloc tunable at glibc's default value (the
//! user's settings, which the programs leave alone: glibc's own policy then applies), and
//! the page faults of each run are compared.
//!
//! One test in its own binary: the faults are read from `/proc/self/stat`'s count for
//! waited-for children, which another test's child would add to.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::process::Command;

use deepfake::data::synthetic;

mod common;
use common::example;

/// Minor page faults of this process's waited-for children (`cminflt`, field 11 of
/// `/proc/self/stat`).
fn children_minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) is in parentheses and may hold spaces; count after it.
    let rest = &stat[stat.rfind(')').expect("stat's command name") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field 11 is at index 8.
    fields[8].parse().expect("cminflt")
}

/// Runs `name` with `args`, with or without a malloc tunable set, and returns its page
/// faults.
fn faults(name: &str, args: &[&str], user_tunables: bool) -> u64 {
    let mut command = Command::new(example(name));
    command.args(args).env_remove("GLIBC_TUNABLES");
    if user_tunables {
        // glibc's default value: the run keeps glibc's own policy for freed memory.
        command.env("GLIBC_TUNABLES", "glibc.malloc.perturb=0");
    }
    let before = children_minor_faults();
    let out = command.output().expect("running the example");
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    children_minor_faults() - before
}

#[test]
fn evaluate_and_predict_keep_freed_memory_on_the_cpu() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    // 256 images of 128 px: eight batches of 32 for `evaluate`, 256 passes for `predict`.
    synthetic::generate(&data, 128, 128, 3).expect("synthetic set");
    let weights = tmp.path().join("meso_inception4.safetensors");
    {
        use deepfake::models::{self, BuildOptions};
        let vs = deepfake::tch::nn::VarStore::new(deepfake::tch::Device::Cpu);
        let options = BuildOptions::default().with_input_size(128, 128);
        let model = models::build("meso_inception4", &vs.root(), &options).expect("model");
        models::checkpoint::save_checkpoint(&vs, model.as_ref(), &weights).expect("save");
    }
    let weights = weights.to_str().expect("utf-8 path");
    let data = data.to_str().expect("utf-8 path");
    let out = tmp.path().join("evaluate");
    let evaluate = [
        "--weights",
        weights,
        "--data",
        data,
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    let predict = ["--weights", weights, "--cpu", data];
    for (name, args) in [("evaluate", &evaluate[..]), ("predict", &predict[..])] {
        let glibc = faults(name, args, true);
        let retained = faults(name, args, false);
        eprintln!("{name}: {retained} page faults, {glibc} with glibc's own policy");
        // Measured here (256 images): evaluate 2.1x fewer faults, predict 3.5x; starting
        // the program (loading libtorch) is most of what remains.
        assert!(
            glibc as f64 > 1.5 * retained as f64,
            "{name}: {retained} page faults as it runs, {glibc} with glibc's own policy: \
             freed memory is not kept"
        );
    }
}
