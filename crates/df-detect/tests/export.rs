//! Export to TorchScript and ONNX, checked by independent readers: the set-up's Python
//! (`torch.jit.load`, `onnxruntime`) through `scripts/check_export.py`, against the Rust
//! model's logits. Fails (does not skip) without `.venv-tools` (`scripts/setup.sh
//! --python-tools`, which `make test` runs).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use df_detect::export::{
    self, export_weights, ExportFormat, ExportMetadata, ExportOptions, METADATA_KEY,
};
use df_layers::trace;
use df_models::checkpoint::save_checkpoint_with;
use df_models::{
    BuildOptions, FaceCropRecord, ImagePreparation, InputSpec, Model, Preprocessing, ResizeMethod,
    Top,
};
use tch::nn::{self, ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let p = root().join(".venv-tools/bin/python");
    assert!(
        p.is_file(),
        "{}: missing; run scripts/setup.sh --python-tools (torch, onnx, onnxruntime)",
        p.display()
    );
    p
}

fn write_f32(path: &Path, t: &Tensor) {
    let v = Vec::<f32>::try_from(t.flatten(0, -1)).expect("f32 tensor");
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write");
}

/// The smallest input side of each family's first model in the registry, as the test
/// builds it.
fn small_size(min: i64) -> i64 {
    min.max(32)
}

#[test]
fn every_family_exports_to_torchscript_and_onnx_that_python_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = python();
    let mut families = BTreeSet::new();
    let mut cases = Vec::new();
    let mut expected_meta = Vec::new();
    for info in df_models::registry() {
        if !families.insert(info.family) {
            continue;
        }
        // DF_EXPORT_ONLY=name runs one model (when investigating; the families check
        // below then fails on purpose).
        if std::env::var("DF_EXPORT_ONLY").is_ok_and(|only| only != info.name) {
            continue;
        }
        let side = small_size(info.min_input_size);
        let vs = VarStore::new(Device::Cpu);
        let options = BuildOptions::default()
            .with_input_size(side, side)
            .with_top(if info.family == "meso" {
                Top::mesonet()
            } else {
                Top::binary_pooled()
            });
        let model = df_models::build(info.name, &vs.root(), &options).expect("build");
        // The deep families with fewer repeated blocks (every kind of block still there):
        // a fraction of the weights to trace, save, load and convert.
        let (vs, model) = match info.family {
            "inception_resnet_v2" | "xception" => {
                let mut config = model.config_json().expect("config");
                if info.family == "xception" {
                    config["middle_blocks"] = serde_json::json!(1);
                } else {
                    config["repeats"] = serde_json::json!([1, 1, 1]);
                }
                let small = VarStore::new(Device::Cpu);
                let model = df_models::registry::build_from_config(
                    info.family,
                    info.name,
                    &small.root(),
                    &config,
                )
                .expect("build a shallower model");
                (small, model)
            }
            _ => (vs, model),
        };
        // MesoNet's checkpoint records a face preparation; the others a centre crop or none.
        let preparation = match info.family {
            "meso" => Some(ImagePreparation {
                resize: ResizeMethod::Bilinear,
                center_crop: None,
                faces: Some(FaceCropRecord {
                    size: 160,
                    margin: 0.25,
                    square: true,
                    align: false,
                }),
            }),
            "vgg" => Some(ImagePreparation {
                resize: ResizeMethod::Area,
                center_crop: Some(0.5),
                faces: None,
            }),
            _ => None,
        };
        let ckpt = dir.path().join(format!("{}.safetensors", info.name));
        save_checkpoint_with(&vs, model.as_ref(), preparation.as_ref(), &ckpt).expect("save");
        let ts = dir.path().join(format!("{}.pt", info.name));
        let onnx = dir.path().join(format!("{}.onnx", info.name));
        let report = export_weights(
            None,
            &ckpt,
            &ExportOptions::new(ExportFormat::TorchScript),
            &ts,
        )
        .unwrap_or_else(|e| panic!("{}: torchscript: {e}", info.name));
        assert_eq!(
            report.bytes as u64,
            std::fs::metadata(&ts).expect("ts").len()
        );
        // ONNX from that archive (the library's second step); the whole command once, on
        // the smallest model.
        let started = std::time::Instant::now();
        if info.family == "meso" {
            let mut onnx_options = ExportOptions::new(ExportFormat::Onnx);
            onnx_options.python = Some(python.clone());
            export_weights(None, &ckpt, &onnx_options, &onnx)
                .unwrap_or_else(|e| panic!("{}: onnx: {e}", info.name));
        } else {
            let archive = std::fs::read(&ts).expect("read");
            let bytes = export::onnx(&archive, &python)
                .unwrap_or_else(|e| panic!("{}: onnx: {e}", info.name));
            std::fs::write(&onnx, bytes).expect("write");
        }
        eprintln!(
            "{} at {side}: torchscript {:.1} s, onnx {:.1} s",
            info.name,
            report.seconds,
            started.elapsed().as_secs_f64()
        );
        let mut inputs = Vec::new();
        for n in [1i64, 5] {
            tch::manual_seed(n);
            let x = Tensor::rand([n, 3, side, side], (Kind::Float, Device::Cpu)) * 4.0 - 2.0;
            let y = tch::no_grad(|| model.forward_t(&x, false));
            let (xi, yi) = (
                dir.path().join(format!("{}-{n}.in", info.name)),
                dir.path().join(format!("{}-{n}.out", info.name)),
            );
            write_f32(&xi, &x);
            write_f32(&yi, &y);
            let scale = f64::max(1.0, y.abs().max().double_value(&[]));
            inputs.push((
                serde_json::json!({"shape": [n, 3, side, side], "input": xi, "expected": yi}),
                scale,
            ));
        }
        expected_meta.push((
            info.name,
            info.family,
            side,
            model.input_spec().preprocessing,
            preparation,
            inputs.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        ));
        cases.push(serde_json::json!({
            "name": info.name,
            "torchscript": ts,
            "onnx": onnx,
            "inputs": inputs.into_iter().map(|(j, _)| j).collect::<Vec<_>>(),
        }));
    }
    let expected_families: BTreeSet<&str> =
        df_models::registry().iter().map(|i| i.family).collect();
    assert_eq!(families, expected_families);
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, serde_json::json!({ "cases": cases }).to_string()).expect("write");
    let out = std::process::Command::new(&python)
        .arg(root().join("scripts/check_export.py"))
        .arg(&manifest)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "check_export.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let results = result["cases"].as_array().expect("cases");
    assert_eq!(results.len(), expected_meta.len());
    for (r, (name, family, side, preprocessing, preparation, scales)) in
        results.iter().zip(&expected_meta)
    {
        assert_eq!(r["name"], *name);
        for (k, scale) in scales.iter().enumerate() {
            let ts = r["torchscript_diff"][k].as_f64();
            let ox = r["onnx_diff"][k].as_f64();
            assert!(
                ts.is_some_and(|d| d <= 1e-5 * scale),
                "{name}: torch.jit.load differs from Rust at input {k}: {ts:?} (scale {scale})"
            );
            assert!(
                ox.is_some_and(|d| d <= 1e-4 * scale),
                "{name}: onnxruntime differs from Rust at input {k}: {ox:?} (scale {scale})"
            );
        }
        assert_eq!(r["onnx_opset"], export::ONNX_OPSET, "{name}");
        assert_eq!(
            r["onnx_batch_dim"], "batch",
            "{name}: the batch axis is not dynamic"
        );
        // The metadata, read back by Python from both files, against what the checkpoint
        // was saved with.
        let ts_meta = r["torchscript_metadata"].as_str().expect("extra file");
        let onnx_meta = r["onnx_metadata"][METADATA_KEY]
            .as_str()
            .expect("metadata_props");
        for text in [ts_meta, onnx_meta] {
            let meta: ExportMetadata = serde_json::from_str(text).expect("metadata JSON");
            assert_eq!(meta.model, *name);
            assert_eq!(meta.family, *family);
            assert_eq!((meta.input.height, meta.input.width), (*side, *side));
            assert_eq!(meta.input.normalization, *preprocessing);
            assert_eq!(meta.preparation, preparation.unwrap_or_default(), "{name}");
            assert_eq!(meta.preparation_recorded, preparation.is_some());
            assert_eq!(meta.polarity, df_models::Polarity::Fake);
        }
        assert_eq!(r["onnx_metadata"]["model"], *name);
        if *family == "meso" {
            let v: serde_json::Value = serde_json::from_str(ts_meta).expect("json");
            assert_eq!(v["preparation"]["faces"]["size"], 160, "{ts_meta}");
            assert_eq!(v["preparation"]["faces"]["margin"], 0.25, "{ts_meta}");
            assert_eq!(v["preparation"]["resize"], "bilinear", "{ts_meta}");
        }
    }
}

/// A model whose forward divides by its input's largest |value|, read in Rust: the tracer
/// records that number as a constant, so the graph is right only for the traced input.
#[derive(Debug)]
struct ReadsAValue {
    conv: nn::Conv2D,
    dense: nn::Linear,
}

impl ModuleT for ReadsAValue {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for ReadsAValue {
    fn name(&self) -> &str {
        "reads_a_value"
    }
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            height: 8,
            width: 8,
            preprocessing: Preprocessing::unit(),
        }
    }
    fn family(&self) -> &str {
        "test"
    }
    fn config_json(&self) -> df_models::Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    fn forward_features(&self, xs: &Tensor, _train: bool) -> Tensor {
        let y = xs.apply(&self.conv);
        trace::record(|| "conv".into(), "Conv2D", &y);
        let peak = y.abs().max().double_value(&[]);
        let y = if peak > 0.0 { &y / peak } else { y };
        trace::record(|| "scale_by_peak".into(), "Lambda", &y);
        y
    }
    fn forward_head(&self, features: &Tensor, _train: bool) -> Tensor {
        let y = features
            .mean_dim(&[2i64, 3][..], false, Kind::Float)
            .apply(&self.dense);
        trace::record(|| "logit".into(), "Dense", &y);
        y
    }
    fn head(&self) -> Option<&df_layers::DenseHead> {
        None
    }
}

#[test]
fn a_model_the_tracer_cannot_follow_fails_naming_the_layer_and_writes_nothing() {
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let model = ReadsAValue {
        conv: nn::conv2d(&root / "conv", 3, 4, 3, Default::default()),
        dense: nn::linear(&root / "dense", 4, 1, Default::default()),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("model.pt");
    let meta = ExportMetadata::new(&model, model.input_spec(), None, Path::new("x"));
    let err = export::export(
        &vs,
        &model,
        &meta,
        &ExportOptions::new(ExportFormat::TorchScript),
        &out,
    )
    .expect_err("a graph that reads a value in Rust exported");
    let text = err.to_string();
    eprintln!("the export's message: {text}");
    assert!(
        text.contains("layer `scale_by_peak` (Lambda) is the first that differs"),
        "{text}"
    );
    assert!(!out.exists(), "the file was written");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "something was left"
    );
    // The thread can trace again after the failure, and the variables still train.
    assert!(!df_sys::jit::is_tracing().expect("is_tracing"));
    assert!(vs.variables().values().all(Tensor::requires_grad));
}

#[test]
fn options_are_checked_before_anything_is_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no/such/folder/model.pt");
    let err = export_weights(
        None,
        Path::new("does-not-exist.safetensors"),
        &ExportOptions::new(ExportFormat::TorchScript),
        &missing,
    )
    .expect_err("exported into a missing folder");
    assert!(
        err.to_string().contains("the folder does not exist"),
        "{err}"
    );
    let mut options = ExportOptions::new(ExportFormat::Onnx);
    options.python = Some(dir.path().join("no-python"));
    let err = export_weights(
        None,
        Path::new("does-not-exist.safetensors"),
        &options,
        &dir.path().join("m.onnx"),
    )
    .expect_err("a missing Python");
    assert!(err.to_string().contains("--python: no such file"), "{err}");
    let err = "tflite".parse::<ExportFormat>().expect_err("tflite");
    assert!(err.contains("torchscript or onnx"), "{err}");
}
