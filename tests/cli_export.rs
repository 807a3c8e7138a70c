//! `export`: a checkpoint to a TorchScript archive that libtorch loads back with the same
//! logits as the model and that describes itself; ONNX through the set-up's Python; options
//! checked before anything is written. (Every family, read back by Python's torch and ONNX
//! Runtime: df-detect's `tests/export.rs`.)

mod common;

use common::cli::{ok, run, s};
use deepfake::detect::export::read_torchscript_metadata;
use deepfake::tch::{self, CModule, Device, Kind, Tensor};

#[test]
fn export_writes_a_torchscript_archive_that_loads_with_the_models_logits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = dir.path().join("meso4.safetensors");
    common::meso4_checkpoint(&ckpt, |_| ());
    let out = dir.path().join("meso4.pt");
    let (stdout, _) = ok(
        "export",
        &[
            "--weights",
            s(&ckpt),
            "--format",
            "torchscript",
            "--out",
            s(&out),
        ],
    );
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["path"], s(&out));
    let bytes = std::fs::read(&out).expect("the archive");
    assert_eq!(line["bytes"], bytes.len());
    // libtorch's loader against the model reopened from the checkpoint, at a batch the
    // trace did not see.
    let module = CModule::load_data(&mut bytes.as_slice()).expect("TorchScript");
    let model = deepfake::models::load_checkpoint(&ckpt, Device::Cpu).expect("checkpoint");
    tch::manual_seed(11);
    let x = Tensor::rand([3, 3, 32, 32], (Kind::Float, Device::Cpu));
    let want = tch::no_grad(|| model.forward_t(&x, false));
    let got = tch::no_grad(|| module.forward_ts(&[&x])).expect("forward");
    assert_eq!(got.size(), [3, 1]);
    let diff = (&got - &want).abs().max().double_value(&[]);
    assert!(diff <= 1e-5, "max |Δ| {diff}");
    let meta = read_torchscript_metadata(&bytes)
        .expect("metadata")
        .expect("deepfake.json");
    assert_eq!(meta.model, "meso4");
    assert_eq!((meta.input.height, meta.input.width), (32, 32));
    assert_eq!(meta.weights, "meso4.safetensors");
}

#[test]
fn export_checks_its_options_before_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = dir.path().join("meso4.safetensors");
    common::meso4_checkpoint(&ckpt, |_| ());
    let missing = dir.path().join("no-such-folder/m.pt");
    let out = run(
        "export",
        &[
            "--weights",
            s(&ckpt),
            "--format",
            "torchscript",
            "--out",
            s(&missing),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("the folder does not exist"), "{err}");
    let onnx = dir.path().join("m.onnx");
    let no_python = dir.path().join("no-python");
    let out = run(
        "export",
        &[
            "--weights",
            s(&ckpt),
            "--format",
            "onnx",
            "--out",
            s(&onnx),
            "--python",
            s(&no_python),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--python: no such file"), "{err}");
    let out = run(
        "export",
        &[
            "--weights",
            s(&ckpt),
            "--format",
            "tflite",
            "--out",
            s(&onnx),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("torchscript or onnx"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["meso4.safetensors"], "something was written");
}
