//! Per-layer output shapes and parameter counts against Keras' own layer table.
//!
//! `scripts/fixtures/keras_layer_shapes.py` builds each model in Keras 3 (torch backend,
//! `weights=None`, default input size; the MesoNet models from the authors' architecture)
//! and writes every layer's name, class, output shape and parameter count. Here the same
//! model is built from the registry with the same top (Keras' ImageNet classifier; the
//! MesoNet head), one zero image of the default size is run through it inside
//! [`df_layers::trace::capture`], and:
//!
//! - every Keras layer with weights appears in the trace exactly once, under its Keras name
//!   (Inception-ResNet-v2's auto-named `conv2d_bn` units through
//!   [`InceptionResNetV2::auto_named_convs`], as the importer pairs them), with the same
//!   class and output shape (Keras NHWC `(H, W, C)` against our `[C, H, W]`), and its
//!   variables hold as many values as Keras' layer; no other layer holds variables;
//! - every layer the trace records exists in Keras under that name, with the same class
//!   and output shape.
//!
//! The one Keras layer with weights that is not a layer here is EfficientNet's input
//! `Normalization` (7 values), which is input preprocessing ([`df_models::InputSpec`]).

use std::collections::{BTreeMap, HashMap};

use df_layers::trace::{self, LayerRecord};
use df_models::registry::{self, BuildOptions};
use df_models::{inception_resnet_v2, InceptionResNetV2, InceptionResNetV2Config, Model};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

mod common;

/// Keras layers with weights that have no counterpart layer here, with the reason.
const NOT_LAYERS_HERE: [(&str, &str); 1] = [(
    "normalization",
    "EfficientNet's input Normalization is input preprocessing (InputSpec)",
)];

#[derive(Debug, serde::Deserialize)]
struct KerasLayer {
    name: String,
    class: String,
    output_shape: Vec<i64>,
    params: i64,
}

#[derive(Debug, serde::Deserialize)]
struct KerasModel {
    registry: String,
    input_size: [i64; 2],
    layers: Vec<KerasLayer>,
}

fn keras_model(case: &str) -> KerasModel {
    let mut all: serde_json::Value =
        common::fixture_json("keras_layer_shapes", "layer_shapes.json");
    let model = all["models"][case].take();
    assert!(model.is_object(), "no model `{case}` in layer_shapes.json");
    serde_json::from_value(model).expect("layer_shapes.json entry")
}

/// Keras' shape without the batch axis, in our layout with a batch of 1:
/// `(H, W, C)` → `[1, C, H, W]`, `(units)` → `[1, units]`.
fn keras_to_nchw(shape: &[i64]) -> Vec<i64> {
    match *shape {
        [h, w, c] => vec![1, c, h, w],
        _ => std::iter::once(1).chain(shape.iter().copied()).collect(),
    }
}

/// The number at the end of a Keras automatic name (`conv2d` → 0, `conv2d_12` → 12), if
/// `name` is one for `base`.
fn auto_index(name: &str, base: &str) -> Option<usize> {
    let rest = name.strip_prefix(base)?;
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix('_')?.parse().ok()
}

/// Keras name → our name for Inception-ResNet-v2's auto-named units: the `k`-th
/// `conv2d*` (and `batch_normalization*`) by number is our `k`-th auto-named convolution
/// (and its `_bn`).
fn auto_name_map(keras: &KerasModel, ours: &[String]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (base, class, suffix) in [
        ("conv2d", "Conv2D", ""),
        ("batch_normalization", "BatchNormalization", "_bn"),
    ] {
        let mut auto: Vec<(usize, &str)> = keras
            .layers
            .iter()
            .filter(|l| l.class == class)
            .filter_map(|l| auto_index(&l.name, base).map(|i| (i, l.name.as_str())))
            .collect();
        auto.sort();
        assert_eq!(
            auto.len(),
            ours.len(),
            "Keras has {} auto-named {class} layers, the model lists {}",
            auto.len(),
            ours.len()
        );
        for ((_, keras_name), our_name) in auto.into_iter().zip(ours) {
            map.insert(keras_name.to_owned(), format!("{our_name}{suffix}"));
        }
    }
    map
}

/// Runs one zero image through `model` inside a capture: the trace and the parameter count
/// of every layer (variables grouped by the path without their last component).
fn trace_model(
    model: &dyn Model,
    vs: &VarStore,
    size: [i64; 2],
) -> (Vec<LayerRecord>, BTreeMap<String, i64>) {
    let x = Tensor::zeros([1, 3, size[0], size[1]], (Kind::Float, Device::Cpu));
    let (_, records) = tch::no_grad(|| trace::capture(|| model.forward_t(&x, false)));
    let mut params = BTreeMap::new();
    for (name, t) in vs.variables() {
        let layer = name.rsplit_once('.').map_or(name.as_str(), |(l, _)| l);
        *params.entry(layer.to_owned()).or_insert(0) += t.numel() as i64;
    }
    (records, params)
}

/// Compares a traced model with Keras' layer table; `to_ours` renames Keras layers.
fn check(
    case: &str,
    keras: &KerasModel,
    records: &[LayerRecord],
    params: &BTreeMap<String, i64>,
    to_ours: &HashMap<String, String>,
) {
    let ours_name = |keras_name: &str| {
        to_ours
            .get(keras_name)
            .cloned()
            .unwrap_or_else(|| keras_name.to_owned())
    };
    let by_our_name: HashMap<String, &KerasLayer> = keras
        .layers
        .iter()
        .map(|l| (ours_name(&l.name), l))
        .collect();
    let mut failures = Vec::new();

    let mut weighted = 0;
    for layer in keras.layers.iter().filter(|l| l.params > 0) {
        if let Some((_, why)) = NOT_LAYERS_HERE.iter().find(|(n, _)| *n == layer.name) {
            assert!(
                !params.contains_key(&layer.name),
                "{case}: `{}` has variables here, but is exempt ({why})",
                layer.name
            );
            continue;
        }
        weighted += 1;
        let name = ours_name(&layer.name);
        let found: Vec<&LayerRecord> = records.iter().filter(|r| r.name == name).collect();
        match found.as_slice() {
            [] => failures.push(format!("{} (`{name}`): not in the trace", layer.name)),
            [r] => {
                if r.class != layer.class {
                    failures.push(format!(
                        "{} (`{name}`): class {} here, {} in Keras",
                        layer.name, r.class, layer.class
                    ));
                }
                let expected = keras_to_nchw(&layer.output_shape);
                if r.output_shape != expected {
                    failures.push(format!(
                        "{} (`{name}`): output {:?} here, Keras {:?} as NCHW",
                        layer.name, r.output_shape, expected
                    ));
                }
            }
            _ => failures.push(format!("{name}: recorded {} times", found.len())),
        }
        match params.get(&name) {
            Some(&n) if n == layer.params => {}
            Some(&n) => failures.push(format!(
                "{} (`{name}`): {n} parameters here, {} in Keras",
                layer.name, layer.params
            )),
            None => failures.push(format!("{} (`{name}`): no variables here", layer.name)),
        }
    }
    for name in params.keys() {
        if by_our_name.get(name).is_none_or(|l| l.params == 0) {
            failures.push(format!(
                "`{name}` holds variables but is no Keras layer with weights"
            ));
        }
    }

    let mut traced_weightless = 0;
    for r in records {
        let Some(layer) = by_our_name.get(&r.name) else {
            failures.push(format!(
                "`{}` ({}) is recorded but Keras has no such layer",
                r.name, r.class
            ));
            continue;
        };
        if layer.params > 0 {
            continue;
        }
        traced_weightless += 1;
        if records.iter().filter(|o| o.name == r.name).count() > 1 {
            failures.push(format!("`{}` recorded more than once", r.name));
        }
        let expected = keras_to_nchw(&layer.output_shape);
        if r.class != layer.class || r.output_shape != expected {
            failures.push(format!(
                "{} ({}): {:?} here, Keras {} {:?} as NCHW",
                r.name, r.class, r.output_shape, layer.class, expected
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{case}: {} differences from Keras' layer table:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    assert!(weighted > 0, "{case}: no Keras layer with weights");
    let weightless = keras.layers.iter().filter(|l| l.params == 0).count();
    eprintln!(
        "{case}: {weighted} layers with weights match; {traced_weightless} of Keras' \
         {weightless} weightless layers traced and match"
    );
}

/// Keras' table for `case` and the registry entry it names, whose default input size
/// must be Keras' own.
fn keras_and_registry(case: &str) -> (KerasModel, &'static registry::ModelInfo) {
    let keras = keras_model(case);
    let info = registry::info(&keras.registry).expect("registered");
    assert_eq!(
        info.input_size, keras.input_size,
        "{case}: default input size"
    );
    (keras, info)
}

/// Builds `case` from the registry with its default top (Keras' ImageNet classifier, the
/// MesoNet head) and checks it.
fn check_registry_model(case: &str) {
    let (keras, info) = keras_and_registry(case);
    let vs = VarStore::new(Device::Cpu);
    let model = info
        .build(&vs.root(), &BuildOptions::default())
        .expect("build");
    let (records, params) = trace_model(model.as_ref(), &vs, keras.input_size);
    check(case, &keras, &records, &params, &HashMap::new());
}

#[test]
fn meso4_layers_match_keras() {
    check_registry_model("meso4");
}

#[test]
fn meso_inception4_layers_match_keras() {
    check_registry_model("meso_inception4");
}

#[test]
fn vgg16_layers_match_keras() {
    check_registry_model("vgg16");
}

#[test]
fn resnet50_layers_match_keras() {
    check_registry_model("resnet50");
}

#[test]
fn efficientnet_b0_layers_match_keras() {
    check_registry_model("efficientnet_b0");
}

#[test]
fn inception_resnet_v2_layers_match_keras() {
    let case = "inception_resnet_v2";
    let (keras, _) = keras_and_registry(case);
    let vs = VarStore::new(Device::Cpu);
    let cfg = InceptionResNetV2Config::default();
    assert_eq!(cfg.input_size, keras.input_size);
    let model: InceptionResNetV2 = inception_resnet_v2(&vs.root(), &cfg).expect("build");
    let to_ours = auto_name_map(&keras, &model.auto_named_convs());
    let (records, params) = trace_model(&model, &vs, keras.input_size);
    check(case, &keras, &records, &params, &to_ours);
}
