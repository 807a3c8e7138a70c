//! The catalogue rows: complete and consistent (unique names, registered families, Keras
//! counts for every Keras application, a study recipe that names Keras metrics), the
//! Keras application names checked against the models Keras built for the fixtures
//! (`scripts/fixtures/keras_init.py`'s `init.json`: Keras' own model name and parameter
//! count), and each Grad-CAM layer against Keras' layer of that name (its output shape)
//! and the model's own trace (the last convolutional stage, before the top).

use std::collections::HashSet;

use df_layers::trace;
use df_layers::HeadInput;
use df_models::registry::{self, BuildOptions};
use df_models::Top;
use tch::{nn, Device, Kind, Tensor};

mod common;

/// The metrics Keras' callbacks monitor in the study.
const MONITORS: [&str; 4] = ["loss", "accuracy", "val_loss", "val_accuracy"];

#[test]
fn catalogue_rows_are_complete_and_consistent() {
    let rows = registry::registry();
    assert!(rows.len() >= 17, "{} rows", rows.len());
    let mut names = HashSet::new();
    for info in rows {
        let name = info.name;
        assert!(names.insert(name), "{name}: listed twice");
        assert!(!info.description.is_empty(), "{name}: no description");
        assert!(
            registry::family_names().contains(&info.family),
            "{name}: family `{}` is not registered",
            info.family
        );
        assert!(
            info.min_input_size >= 1
                && info.input_size[0] >= info.min_input_size
                && info.input_size[1] >= info.min_input_size,
            "{name}: input {:?} under its minimum {}",
            info.input_size,
            info.min_input_size
        );
        if let Some(app) = info.keras_application {
            assert!(
                app.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && app.chars().all(|c| c.is_ascii_alphanumeric()),
                "{name}: `{app}` is not a keras.applications constructor name"
            );
            let counts = info.keras_params.unwrap_or_else(|| {
                panic!("{name}: a Keras application without Keras' parameter counts")
            });
            assert!(
                counts.without_top.is_some(),
                "{name}: Keras application without its include_top=False count"
            );
        }
        if let Some(r) = info.study_recipe {
            assert!(MONITORS.contains(&r.early_stop), "{name}: {}", r.early_stop);
            assert!(MONITORS.contains(&r.reduce_lr), "{name}: {}", r.reduce_lr);
            assert!(r.lr > 0.0 && r.lr < 1.0, "{name}: lr {}", r.lr);
        }
        assert!(
            !info.gradcam_layer.is_empty()
                && info
                    .gradcam_layer
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{name}: Grad-CAM layer `{}`",
            info.gradcam_layer
        );
    }
    assert_eq!(
        registry::names(),
        df_models::names(),
        "the crate root's names() is the registry's"
    );
}

/// Keras' model name, normalised as Keras' constructors derive it from their name
/// (`InceptionResNetV2` → `inception_resnet_v2`, `EfficientNetB7` → `efficientnetb7`).
fn normalised(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn init_json() -> serde_json::Value {
    common::fixture_json("keras_init", "init.json")
}

fn fixture_model<'a>(init: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let model = &init["models"][name];
    assert!(
        model.is_object(),
        "{name}: not in keras_init/init.json (fixtures older than the registry: `make fixtures`)"
    );
    model
}

#[test]
fn keras_application_names_are_those_of_the_models_keras_built() {
    let init = init_json();
    let mut checked = 0;
    for info in registry::registry() {
        let model = fixture_model(&init, info.name);
        let built_by_keras = model["keras_model_name"].as_str().unwrap_or_else(|| {
            panic!(
                "{}: init.json has no keras_model_name (made before scripts/fixtures/\
                 keras_init.py recorded it: `make fixtures`)",
                info.name
            )
        });
        let Some(app) = info.keras_application else {
            continue;
        };
        assert_eq!(
            normalised(app),
            normalised(built_by_keras),
            "{}: the registry names keras.applications.{app}, Keras built `{built_by_keras}`",
            info.name
        );
        // The counts were taken from Keras' reference file by registry name, not from the
        // constructor name: a wrong constructor builds another model with other counts.
        // (VGG16's `fc1` takes the flattened map, so its count depends on the input size,
        // which is smaller in the fixture: its Keras name is checked above.)
        if info.family.starts_with("vgg") {
            checked += 1;
            continue;
        }
        let expected = info.keras_params.expect("counts").with_top.total;
        assert_eq!(
            model["params"]["total"].as_i64(),
            Some(expected),
            "{}: keras.applications.{app} has another parameter count",
            info.name
        );
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} Keras applications checked");
}

/// The traced layers of `name` built without a top (Flatten) at `side`, batch 1.
fn trace_of(name: &str, side: i64) -> Vec<trace::LayerRecord> {
    let vs = nn::VarStore::new(Device::Cpu);
    let options = BuildOptions::default()
        .with_top(Top::Backbone {
            pooling: HeadInput::Flatten,
        })
        .with_input_size(side, side);
    let model = df_models::build(name, &vs.root(), &options).expect(name);
    let x = Tensor::zeros([1, 3, side, side], (Kind::Float, Device::Cpu));
    tch::no_grad(|| trace::capture(|| model.forward_t(&x, false))).1
}

/// Layers that may follow the last convolutional stage: the top's.
const TOP_CLASSES: [&str; 6] = [
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Flatten",
    "Dropout",
];

#[test]
fn gradcam_layer_is_the_last_convolutional_stage_keras_names() {
    let init = init_json();
    let mut failures = Vec::new();
    for info in registry::registry() {
        let model = fixture_model(&init, info.name);
        let side = model["input_size"].as_i64().expect("input_size");
        let records = trace_of(info.name, side);
        let Some(at) = records.iter().position(|r| r.name == info.gradcam_layer) else {
            let tail: Vec<&str> = records
                .iter()
                .rev()
                .take(8)
                .map(|r| r.name.as_str())
                .collect();
            failures.push(format!(
                "{}: `{}` is not a traced layer (last ones, backwards: {tail:?})",
                info.name, info.gradcam_layer
            ));
            continue;
        };
        let ours = &records[at];
        // Only pooling, flattening and dropout after it: the last convolutional stage.
        let later: Vec<String> = records[at + 1..]
            .iter()
            .filter(|r| !TOP_CLASSES.contains(&r.class))
            .map(|r| format!("{} ({})", r.name, r.class))
            .collect();
        if !later.is_empty() || ours.output_shape.len() != 4 {
            failures.push(format!(
                "{}: `{}` {:?} is not the last convolutional stage (then {later:?})",
                info.name, info.gradcam_layer, ours.output_shape
            ));
        }
        // Keras' layer of that name, in the model Keras built, has the same output.
        let gradcam = &model["gradcam"];
        let Some(keras_shape) = gradcam["output_shape"].as_array() else {
            failures.push(format!(
                "{}: init.json has no Grad-CAM layer shape (`make fixtures`)",
                info.name
            ));
            continue;
        };
        let hwc: Vec<i64> = keras_shape.iter().filter_map(|v| v.as_i64()).collect();
        let keras_nchw = [1, hwc[2], hwc[0], hwc[1]];
        if gradcam["layer"].as_str() != Some(info.gradcam_layer) || ours.output_shape != keras_nchw
        {
            failures.push(format!(
                "{}: `{}` gives {:?} here, Keras' `{}` {keras_nchw:?}",
                info.name, info.gradcam_layer, ours.output_shape, gradcam["layer"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// docs/models.md's "At a glance" table cannot be generated from `summary --list --json`
/// alone (its GFLOPs come from `scripts/model_flops.py`, its parity column from the
/// parity tests), but every column the registry holds must agree with it: the models and
/// their order, the Keras constructor in the reference column, the default and smallest
/// input, and the parameter count with the default top (Keras' count, less the 7
/// statistics of EfficientNet's input `Normalization`, which are preprocessing here).
#[test]
fn docs_models_table_agrees_with_the_registry() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/models.md");
    let text = std::fs::read_to_string(&path).expect("docs/models.md");
    let table: Vec<Vec<&str>> = text
        .split("## At a glance")
        .nth(1)
        .expect("an `At a glance` section")
        .lines()
        .skip_while(|l| !l.starts_with("| `"))
        .take_while(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let names: Vec<&str> = table.iter().map(|r| r[0].trim_matches('`')).collect();
    assert_eq!(
        names,
        registry::names(),
        "the table's models, in registry order"
    );
    for (row, info) in table.iter().zip(registry::registry()) {
        let name = info.name;
        if let Some(app) = info.keras_application {
            assert!(
                row[1].contains(&format!("Keras `{app}`")),
                "{name}: reference `{}` is not Keras `{app}`",
                row[1]
            );
        }
        let [h, w] = info.input_size;
        assert_eq!(
            row[2],
            format!("{h}×{w} ({})", info.min_input_size),
            "{name}: input"
        );
        if let Some(k) = info.keras_params {
            let normalization = if info.family == "efficientnet" { 7 } else { 0 };
            let expected = (k.with_top.total - normalization).to_string();
            assert_eq!(row[4].replace(',', ""), expected, "{name}: parameters");
        }
    }
}
