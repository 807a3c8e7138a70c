//! Keras Applications parity through weight import: `scripts/fixtures/keras_apps.py` builds
//! each Keras 3 model (torch backend, `weights=None`, every weight randomised with a fixed
//! seed), saves it with `save_weights` and records its output on a random input; here the
//! file is imported with `df_models::load_keras` (top and input size read from
//! the file) and the outputs must match within 1e-4 on probabilities (softmax of the
//! ImageNet logits, or the binary head's sigmoid).

use std::path::{Path, PathBuf};

use df_models::keras::{KerasFormat, KerasImportOptions};
use df_models::load::{load_keras, KerasLoadOptions, LoadedModel};
use df_models::{Polarity, Top};
use tch::{Device, Kind, Tensor};

mod common;

fn fixture(name: &str) -> PathBuf {
    common::fixture("keras_apps", name)
}

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("manifest.json")).expect("read manifest");
    serde_json::from_str(&text).expect("parse manifest")
}

/// A little-endian float32 C-order `.npy` file.
fn read_npy(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).expect("read .npy");
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).expect("header");
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let dims = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape");
    let shape: Vec<i64> = dims
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse().expect("dim"))
        .collect();
    let values: Vec<f32> = bytes[start + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::from_slice(&values).reshape(shape.as_slice())
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

struct Case {
    loaded: LoadedModel,
    input: Tensor,
    expected: Tensor,
    kind: String,
}

fn load_case(case: &str, polarity: Polarity) -> Case {
    let m = manifest();
    let entry = &m[case];
    assert!(entry.is_object(), "no case `{case}` in the manifest");
    let model = entry["model"].as_str().expect("model");
    let size = entry["input_size"].as_i64().expect("input_size");
    let options = KerasLoadOptions {
        import: KerasImportOptions::default().with_polarity(polarity),
        top: None,
        input_size: Some([size, size]),
    };
    let weights = fixture(entry["weights"].as_str().expect("weights"));
    let loaded = load_keras(model, &weights, Device::Cpu, &options)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    Case {
        loaded,
        input: read_npy(&fixture(entry["input"].as_str().expect("input"))),
        expected: read_npy(&fixture(entry["output"].as_str().expect("output"))),
        kind: entry["kind"].as_str().expect("kind").to_string(),
    }
}

fn outputs(case: &Case) -> Tensor {
    tch::no_grad(|| case.loaded.model.forward_t(&case.input, false))
}

/// Imports `case` and compares with Keras: probabilities within 1e-4, and (for logits)
/// the logits themselves within 1e-4 of their scale, so that a saturated softmax cannot
/// hide a difference.
fn check(case_name: &str) {
    let case = load_case(case_name, Polarity::Fake);
    let y = outputs(&case);
    assert_eq!(y.size(), case.expected.size(), "{case_name}: output shape");
    match case.kind.as_str() {
        "logits" => {
            let p = y.softmax(-1, Kind::Float);
            let q = case.expected.softmax(-1, Kind::Float);
            let dp = max_abs_diff(&p, &q);
            let scale = case.expected.abs().max().double_value(&[]).max(1.0);
            let dl = max_abs_diff(&y, &case.expected);
            eprintln!(
                "{case_name}: max |Δp| = {dp:.2e}, max |Δlogit| = {dl:.2e} (logit scale {scale:.1})"
            );
            assert!(dp < 1e-4, "{case_name}: probabilities differ by {dp:e}");
            assert!(
                dl < 1e-4 * scale,
                "{case_name}: logits differ by {dl:e} at scale {scale}"
            );
            let spread = q.max().double_value(&[]) - q.min().double_value(&[]);
            assert!(
                spread > 1e-3,
                "{case_name}: the reference softmax is flat ({spread:e}): the test would be vacuous"
            );
        }
        "sigmoid" => {
            let p = y.sigmoid();
            let dp = max_abs_diff(&p, &case.expected);
            eprintln!("{case_name}: max |Δp| = {dp:.2e}");
            assert!(dp < 1e-4, "{case_name}: probabilities differ by {dp:e}");
        }
        other => panic!("{case_name}: unknown output kind {other}"),
    }
}

/// The models with a test of their own below.
const NAMED: [&str; 12] = [
    "vgg16",
    "resnet50",
    "inception_resnet_v2",
    "xception",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
];

/// Every registered model with a `keras.applications` constructor has its case in the
/// manifest (the fixture script iterates the registry) or is among the cases the script
/// skips, with its reason; a case of a model without a test of its own is checked here.
#[test]
fn every_registered_keras_application_has_its_case() {
    let m = manifest();
    let skipped = m["_skipped"].as_object().unwrap_or_else(|| {
        panic!("the manifest lists no skipped models (made before keras_apps.py iterated the registry: `make fixtures`)")
    });
    for info in df_models::registry() {
        if info.keras_application.is_none() {
            continue;
        }
        if let Some(reason) = skipped.get(info.name) {
            assert!(
                m[info.name].is_null() && reason.as_str().is_some_and(|r| !r.is_empty()),
                "{}: skipped without a reason, or with a case",
                info.name
            );
            continue;
        }
        assert_eq!(
            m[info.name]["model"].as_str(),
            Some(info.name),
            "{}: no case in keras_apps' manifest",
            info.name
        );
        if !NAMED.contains(&info.name) {
            check(info.name);
        }
    }
}

#[test]
fn vgg16() {
    check("vgg16");
}

#[test]
fn resnet50() {
    check("resnet50");
}

#[test]
fn inception_resnet_v2() {
    check("inception_resnet_v2");
}

#[test]
fn xception() {
    check("xception");
}

#[test]
fn efficientnet_b0() {
    check("efficientnet_b0");
    let case = load_case("efficientnet_b0", Polarity::Fake);
    let report = case.loaded.keras.as_ref().expect("report");
    assert_eq!(report.format, KerasFormat::Keras3 { named: true });
    assert!(report.by_order.is_empty(), "{:?}", report.by_order);
    let norm = report
        .normalization
        .as_ref()
        .expect("EfficientNet's Normalization");
    assert!(norm.is_identity(), "{norm:?}");
    assert!(!report.polarity_flipped, "an ImageNet top is never flipped");
}

#[test]
fn efficientnet_b1() {
    check("efficientnet_b1");
}

#[test]
fn efficientnet_b2() {
    check("efficientnet_b2");
}

#[test]
fn efficientnet_b3() {
    check("efficientnet_b3");
}

#[test]
fn efficientnet_b4() {
    check("efficientnet_b4");
}

#[test]
fn efficientnet_b5() {
    check("efficientnet_b5");
}

#[test]
fn efficientnet_b6() {
    check("efficientnet_b6");
}

#[test]
fn efficientnet_b7() {
    check("efficientnet_b7");
}

#[test]
fn legacy_keras2_layout() {
    check("legacy_b0");
    let case = load_case("legacy_b0", Polarity::Fake);
    let report = case.loaded.keras.as_ref().expect("report");
    assert!(
        matches!(report.format, KerasFormat::Legacy { .. }),
        "{:?}",
        report.format
    );
}

/// The study's trained-model form: the head's sizes come from the file, its auto-named
/// layers (`dense_2` ... `dense_4`) pair with the model's `dense` ... `dense_2` in
/// creation order, and the first one's rows are permuted from NHWC.
#[test]
fn study_head_flat_and_nested() {
    for case_name in ["study_b0_flat", "study_b0_nested"] {
        check(case_name);
        let case = load_case(case_name, Polarity::Fake);
        assert_eq!(
            case.loaded.model.config_json().expect("config")["top"],
            serde_json::to_value(Top::study([32, 16], 0.5, 0.0)).expect("json"),
            "{case_name}: top read from the file"
        );
        let report = case.loaded.keras.as_ref().expect("report");
        let mut pairs = report.by_order.clone();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                ("dense_2".to_string(), "dense".to_string()),
                ("dense_3".to_string(), "dense_1".to_string()),
                ("dense_4".to_string(), "dense_2".to_string()),
            ],
            "{case_name}"
        );
    }
}

/// With the default polarity (`Real`: Keras' alphabetical `fake`/`real` classes), the
/// imported model reports 1 − Keras' sigmoid.
#[test]
fn study_head_default_polarity_flips() {
    let case = load_case("study_b0_flat", KerasImportOptions::default().polarity);
    let report = case.loaded.keras.as_ref().expect("report");
    assert!(report.polarity_flipped);
    let p_fake = outputs(&case).sigmoid();
    let d = max_abs_diff(&p_fake, &(1.0 - &case.expected));
    assert!(d < 1e-4, "1 - p(real) differs by {d:e}");
}

/// `--backbone-weights`: a `keras.applications`-layout `_notop` file (legacy HDF5, made by
/// `scripts/fixtures/keras_init.py` with `weights=None` and non-trivial batch-norm
/// statistics) loads into the backbone of a model with the study's head, whose feature map
/// then equals Keras' within 1e-4 of its scale; the head keeps its initial values.
#[test]
fn notop_backbone_files_load_under_a_study_head() {
    let path = common::fixture("keras_init", "notop.json");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("parse");
    for (case, entry) in manifest.as_object().expect("cases") {
        let name = entry["model"].as_str().expect("model");
        let size = entry["input_size"].as_i64().expect("input_size");
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let options = df_models::BuildOptions::default()
            .with_input_size(size, size)
            .with_top(Top::study([16, 8], 0.5, 0.0));
        let model = df_models::build(name, &vs.root(), &options).expect("build");
        let head_before: Vec<Tensor> = model
            .head()
            .expect("head")
            .layers
            .iter()
            .map(|l| l.weight.copy())
            .collect();
        let file = common::fixture("keras_init", entry["weights"].as_str().expect("weights"));
        let weights = df_models::keras::KerasWeights::read(&file).expect("read");
        assert!(
            matches!(weights.format, KerasFormat::Legacy { .. }),
            "{case}: the downloads' layout"
        );
        let report = df_models::keras::import_keras_backbone(&vs, model.as_ref(), &weights)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(report.tensors > 100, "{case}: {report:?}");
        let input = read_npy(&common::fixture(
            "keras_init",
            &format!("notop_{case}.input.npy"),
        ));
        let expected = read_npy(&common::fixture(
            "keras_init",
            &format!("notop_{case}.features.npy"),
        ));
        let got = tch::no_grad(|| model.forward_features(&input, false));
        let scale = expected.abs().max().double_value(&[]).max(1.0);
        let d = max_abs_diff(&got, &expected);
        eprintln!("{case}: max |Δfeature| = {d:.2e} at scale {scale:.2}");
        assert!(d < 1e-4 * scale, "{case}: features differ by {d:e}");
        for (layer, before) in model.head().expect("head").layers.iter().zip(&head_before) {
            assert_eq!(&layer.weight, before, "{case}: the head is not touched");
        }
    }
}

/// A file with the ImageNet top loads as a backbone too: its dense layers are ignored, and
/// the features equal those of the whole file imported into the ImageNet model.
#[test]
fn a_file_with_the_imagenet_top_loads_as_a_backbone() {
    let case = load_case("resnet50", Polarity::Fake);
    let size = case.input.size()[2];
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let options = df_models::BuildOptions::default()
        .with_input_size(size, size)
        .with_top(Top::study([16, 8], 0.5, 0.0));
    let model = df_models::build("resnet50", &vs.root(), &options).expect("build");
    let weights =
        df_models::keras::KerasWeights::read(fixture("resnet50.weights.h5")).expect("read");
    df_models::keras::import_keras_backbone(&vs, model.as_ref(), &weights).expect("import");
    let (got, want) = tch::no_grad(|| {
        (
            model.forward_features(&case.input, false),
            case.loaded.model.forward_features(&case.input, false),
        )
    });
    assert_eq!(max_abs_diff(&got, &want), 0.0);
}
