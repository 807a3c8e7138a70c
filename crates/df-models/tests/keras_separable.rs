//! Keras `SeparableConv2D` weights through the importer: a two-layer Keras 3 model saved by
//! `scripts/fixtures/keras_separable.py` as `.weights.h5` (Keras 3 layout), by Keras'
//! legacy HDF5 writer (`.h5`, named layers) and with auto-generated names in a session that
//! had built a layer before (`separable_conv2d_1`, `separable_conv2d_2`), imported into a
//! tiny model built from df-layers' `SeparableConv2d`: the outputs must equal Keras' (within
//! 1e-5 of their scale, the block tests' tolerance), and a file that does not fit loads
//! nothing.

use std::path::PathBuf;

use df_layers::{DenseHead, Padding, SeparableConv2d, SeparableConv2dConfig};
use df_models::keras::{
    import_keras, KerasFormat, KerasImport, KerasImportOptions, KerasLayerKind, KerasWeights,
};
use df_models::{Error, InputSpec, Model, Polarity, Preprocessing};
use tch::nn::{ModuleT, Path, VarStore};
use tch::{Device, Tensor};

mod common;

#[path = "../../../fixtures/keras_json.rs"]
mod keras_json;
use keras_json::JsonTensor;

/// The fixture script's model: `block2_sepconv1` (3 → 8, 3×3, stride 2, "same", depth
/// multiplier 2, bias) then `block2_sepconv2` (8 → 6, 3×3, "valid", no bias).
#[derive(Debug)]
struct TwoSeparable {
    first: SeparableConv2d,
    second: SeparableConv2d,
}

/// Variations of [`TwoSeparable`] for the mismatch test.
struct Variant {
    names: [&'static str; 2],
    depth_multiplier: i64,
    second_bias: bool,
}

const KERAS: Variant = Variant {
    names: ["block2_sepconv1", "block2_sepconv2"],
    depth_multiplier: 2,
    second_bias: false,
};

impl TwoSeparable {
    fn new(p: &Path<'_>, v: &Variant) -> Self {
        let first = SeparableConv2dConfig::new(3, 8, 3, v.names[0])
            .with_stride(2)
            .with_padding(Padding::Same)
            .with_depth_multiplier(v.depth_multiplier);
        let second = SeparableConv2dConfig::new(8, 6, 3, v.names[1]).with_bias(v.second_bias);
        Self {
            first: SeparableConv2d::new(p, &first).expect("first layer"),
            second: SeparableConv2d::new(p, &second).expect("second layer"),
        }
    }
}

impl ModuleT for TwoSeparable {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for TwoSeparable {
    fn forward_features(&self, xs: &Tensor, train: bool) -> Tensor {
        self.second
            .forward_t(&self.first.forward_t(xs, train), train)
    }
    fn forward_head(&self, features: &Tensor, _train: bool) -> Tensor {
        features.shallow_clone()
    }
    fn name(&self) -> &str {
        "two_separable"
    }
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            height: 9,
            width: 9,
            preprocessing: Preprocessing::unit(),
        }
    }
    fn family(&self) -> &str {
        "two_separable"
    }
    fn config_json(&self) -> df_models::Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    fn head(&self) -> Option<&DenseHead> {
        None
    }
}

#[derive(serde::Deserialize)]
struct FileCase {
    layers: Vec<String>,
    output: JsonTensor,
}

#[derive(serde::Deserialize)]
struct Imports {
    input: JsonTensor,
    files: std::collections::BTreeMap<String, FileCase>,
}

fn fixture(name: &str) -> PathBuf {
    common::fixture("keras_separable", name)
}

fn imports() -> Imports {
    common::fixture_json("keras_separable", "import.json")
}

fn options() -> KerasImportOptions {
    KerasImportOptions::default().with_polarity(Polarity::Fake)
}

/// Imports `file` into a fresh model with layer names `names` and checks the output
/// against Keras'.
fn import_and_compare(file: &str, names: [&'static str; 2]) -> KerasImport {
    let cases = imports();
    let case = &cases.files[file];
    let vs = VarStore::new(Device::Cpu);
    let model = TwoSeparable::new(&vs.root(), &Variant { names, ..KERAS });
    let weights = KerasWeights::read(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let names: Vec<&str> = weights.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, case.layers, "{file}: the file's layers");
    for layer in &weights.layers {
        assert_eq!(layer.kind, KerasLayerKind::SeparableConv2d, "{file}");
    }
    let report = import_keras(&vs, &model, fixture(file), &options())
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(report.tensors, 5, "{file}: {report:?}");
    // 3·3·3·2 + 6·8 + 8 and 3·3·8·1 + 8·6: Keras' count_params() of the model.
    assert_eq!(report.values, 230, "{file}: {report:?}");
    let y = tch::no_grad(|| model.forward_t(&cases.input.tensor(), false));
    let keras = case.output.tensor();
    assert_eq!(y.size(), keras.size(), "{file}: output shape");
    let scale = keras.abs().max().double_value(&[]).max(1.0);
    let diff = (&y - &keras).abs().max().double_value(&[]);
    eprintln!("{file}: max |ours - keras| = {diff:.1e} (scale {scale:.1})");
    assert!(
        diff <= 1e-5 * scale,
        "{file}: max |ours - keras| = {diff:e} (scale {scale})"
    );
    report
}

#[test]
fn keras3_weights_file_imports_by_name() {
    let report = import_and_compare("import.weights.h5", KERAS.names);
    assert_eq!(report.format, KerasFormat::Keras3 { named: true });
    assert_eq!(report.by_name, 2, "{report:?}");
    assert!(report.by_order.is_empty(), "{report:?}");
}

#[test]
fn legacy_h5_file_imports_by_name() {
    let report = import_and_compare("import.h5", KERAS.names);
    assert!(
        matches!(report.format, KerasFormat::Legacy { .. }),
        "{:?}",
        report.format
    );
    assert_eq!(report.by_name, 2, "{report:?}");
    assert!(report.by_order.is_empty(), "{report:?}");
}

/// `separable_conv2d_1`, `separable_conv2d_2` (a session that had built a separable layer
/// before) pair in creation order with a model's `separable_conv2d`, `separable_conv2d_1`.
#[test]
fn auto_named_separable_layers_pair_in_creation_order() {
    let report = import_and_compare("import_auto.h5", ["separable_conv2d", "separable_conv2d_1"]);
    assert_eq!(report.by_name, 0, "{report:?}");
    assert_eq!(
        report.by_order,
        [
            (
                "separable_conv2d_1".to_string(),
                "separable_conv2d".to_string()
            ),
            (
                "separable_conv2d_2".to_string(),
                "separable_conv2d_1".to_string()
            ),
        ]
    );
}

/// A model whose first layer has another depth multiplier and whose second has a bias the
/// file lacks: an error naming both, and nothing loaded.
#[test]
fn separable_file_that_does_not_fit_loads_nothing() {
    let vs = VarStore::new(Device::Cpu);
    let model = TwoSeparable::new(
        &vs.root(),
        &Variant {
            depth_multiplier: 1,
            second_bias: true,
            ..KERAS
        },
    );
    let before: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    let err = import_keras(&vs, &model, fixture("import.weights.h5"), &options())
        .expect_err("does not fit");
    let Error::WeightMismatch(report) = &err else {
        panic!("{err}");
    };
    assert_eq!(report.missing, ["`block2_sepconv2.bias` [6]"], "{err}");
    assert_eq!(report.mis_shaped.len(), 2, "{err}");
    assert!(
        report.mis_shaped[0].starts_with("`block2_sepconv1.depthwise_weight`: model [3, 1, 3, 3]"),
        "{err}"
    );
    assert!(
        report.mis_shaped[1].starts_with("`block2_sepconv1.pointwise_weight`: model [8, 3, 1, 1]"),
        "{err}"
    );
    for (name, t) in before {
        assert!(t.equal(&vs.variables()[&name]), "{name} changed");
    }
}
