//! Every registered model starts as Keras initialises it: `scripts/fixtures/keras_init.py`
//! builds each model in Keras 3 (`weights=None`, Keras' default top) and records every
//! weight's distribution; here the same model is built by the registry and each variable
//! is compared with its Keras counterpart: the same count; constants (biases, batch-norm
//! scales, offsets and statistics) exactly; random kernels by mean and standard deviation
//! within six standard errors of their sample sizes, and by a two-sample
//! Kolmogorov–Smirnov statistic against Keras' quantiles (critical value of α = 1e-6).

use std::collections::BTreeMap;

use df_layers::util::variables_by_layer;
use df_models::keras::{auto_name_parts, KerasLayerKind};
use df_models::registry::{self, BuildOptions};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

mod common;

/// `c(α)` of the two-sample KS test for α = 1e-6: `sqrt(-ln(α / 2) / 2)`.
const KS_C: f64 = 2.69;

fn keras_reference() -> serde_json::Value {
    let path = common::fixture("keras_init", "init.json");
    let text = std::fs::read_to_string(&path).expect("read init.json");
    serde_json::from_str(&text).expect("parse init.json")
}

/// The libtorch variable name of a Keras weight.
fn torch_var(var: &str) -> &'static str {
    match var {
        "kernel" | "depthwise_kernel" | "gamma" => "weight",
        "bias" | "beta" => "bias",
        "moving_mean" => "running_mean",
        "moving_variance" => "running_var",
        other => panic!("unexpected Keras variable `{other}`"),
    }
}

type KerasLayer<'a> = (&'a str, BTreeMap<&'a str, &'a serde_json::Value>);

/// Pairs Keras layers with model layers as the Keras importer does: by name, then the
/// auto-named ones (`conv2d_5` ...) per class in creation order.
fn pair<'a>(
    keras: Vec<KerasLayer<'a>>,
    model: Vec<(String, BTreeMap<String, Tensor>)>,
    failures: &mut Vec<String>,
    name: &str,
) -> Vec<(KerasLayer<'a>, BTreeMap<String, Tensor>)> {
    let mut model: Vec<Option<(String, BTreeMap<String, Tensor>)>> =
        model.into_iter().map(Some).collect();
    let last = |path: &str| path.rsplit('.').next().unwrap_or(path).to_string();
    let mut pairs = Vec::new();
    let mut auto: BTreeMap<KerasLayerKind, Vec<(usize, KerasLayer<'a>)>> = BTreeMap::new();
    for layer in keras {
        let found = model
            .iter()
            .position(|m| m.as_ref().is_some_and(|(p, _)| last(p) == layer.0));
        match (found, auto_name_parts(layer.0)) {
            (Some(i), _) => pairs.push((layer, model[i].take().expect("unpaired").1)),
            (None, Some((kind, k))) => auto.entry(kind).or_default().push((k, layer)),
            (None, None) => failures.push(format!("{name}: no model layer `{}`", layer.0)),
        }
    }
    for (kind, mut layers) in auto {
        layers.sort_by_key(|(k, _)| *k);
        let pool: Vec<usize> = (0..model.len())
            .filter(|&i| {
                model[i]
                    .as_ref()
                    .is_some_and(|(_, v)| KerasLayerKind::of_variables(v) == Some(kind))
            })
            .collect();
        if pool.len() != layers.len() {
            failures.push(format!(
                "{name}: {} auto-named {kind:?} layers in Keras, {} unpaired in the model",
                layers.len(),
                pool.len()
            ));
            continue;
        }
        for ((_, layer), i) in layers.into_iter().zip(pool) {
            pairs.push((layer, model[i].take().expect("unpaired").1));
        }
    }
    for (path, _) in model.into_iter().flatten() {
        failures.push(format!("{name}: model layer `{path}` has no Keras layer"));
    }
    pairs
}

fn sorted_values(t: &Tensor) -> Vec<f64> {
    let flat = t.detach().to_kind(Kind::Double).flatten(0, -1);
    let (sorted, _) = flat.sort(0, false);
    Vec::<f64>::try_from(&sorted).expect("values")
}

/// Compares one variable with Keras' record; returns the reason when it does not match.
fn compare(ours: &Tensor, keras: &serde_json::Value) -> Option<String> {
    let count = keras["count"].as_i64().expect("count");
    if ours.numel() as i64 != count {
        return Some(format!("{} values, Keras {count}", ours.numel()));
    }
    let v = sorted_values(ours);
    if let Some(c) = keras["constant"].as_f64() {
        let bad = v.iter().find(|&&x| x != c);
        return bad.map(|x| format!("Keras' constant {c}, found {x}"));
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let (k_mean, k_std) = (
        keras["mean"].as_f64().expect("mean"),
        keras["std"].as_f64().expect("std"),
    );
    let mean_bound = 6.0 * ((k_std * k_std + std * std) / n).sqrt() + 1e-9;
    if (mean - k_mean).abs() > mean_bound {
        return Some(format!(
            "mean {mean:.4e}, Keras {k_mean:.4e} (bound {mean_bound:.1e})"
        ));
    }
    let std_bound = 6.0 * k_std / n.sqrt();
    if (std - k_std).abs() > std_bound {
        return Some(format!(
            "std {std:.4e}, Keras {k_std:.4e} (bound {std_bound:.1e})"
        ));
    }
    let quantiles: Vec<f64> = keras["quantiles"]
        .as_array()
        .expect("quantiles")
        .iter()
        .map(|q| q.as_f64().expect("quantile"))
        .collect();
    let last = (quantiles.len() - 1) as f64;
    // Our empirical CDF at Keras' quantiles against their levels.
    let ks = quantiles
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let below = v.partition_point(|&x| x <= q) as f64 / n;
            (below - i as f64 / last).abs()
        })
        .fold(0.0, f64::max);
    let ks_bound = KS_C * (2.0 / n).sqrt() + 1.0 / n;
    (ks > ks_bound).then(|| format!("KS statistic {ks:.4} > {ks_bound:.4}"))
}

#[test]
fn every_model_starts_as_keras_initialises_it() {
    let reference = keras_reference();
    let models = reference["models"].as_object().expect("models");
    let names: Vec<&str> = registry::names();
    assert_eq!(
        models.keys().map(String::as_str).collect::<Vec<_>>().len(),
        names.len(),
        "the fixture covers every registered model"
    );
    let mut failures = Vec::new();
    for name in names {
        let entry = &models[name];
        let size = entry["input_size"].as_i64().expect("input_size");
        tch::manual_seed(7);
        let vs = VarStore::new(Device::Cpu);
        let options = BuildOptions::default().with_input_size(size, size);
        registry::build(name, &vs.root(), &options).expect(name);
        let counts = df_layers::util::param_count(&vs);
        let params = &entry["params"];
        // Keras counts the statistics of EfficientNet's Normalization layer, which are the
        // preprocessing here (InputSpec), not variables.
        let normalization = params["normalization"].as_i64().unwrap_or(0);
        let keras_counts = (
            params["total"].as_i64().map(|t| t - normalization),
            params["trainable"].as_i64(),
        );
        if keras_counts != (Some(counts.total), Some(counts.trainable)) {
            failures.push(format!(
                "{name}: {counts:?} parameters at {size}×{size}, Keras {keras_counts:?}"
            ));
        }
        // With a pooled ImageNet top the count does not depend on the input size: the
        // catalogue's reference counts must be Keras' too.
        let keras_top_pools = !matches!(name, "vgg16" | "vgg16_c" | "meso4" | "meso_inception4");
        if let Some(k) = registry::info(name).expect(name).keras_params {
            if keras_top_pools && Some(k.with_top.total) != params["total"].as_i64() {
                failures.push(format!(
                    "{name}: catalogue says {:?}, Keras {params}",
                    k.with_top
                ));
            }
        }
        let mut keras: BTreeMap<&str, BTreeMap<&str, &serde_json::Value>> = BTreeMap::new();
        for (key, stats) in entry["weights"].as_object().expect("weights") {
            let (layer, var) = key.rsplit_once('/').expect("layer/variable");
            keras.entry(layer).or_default().insert(var, stats);
        }
        let model_layers = variables_by_layer(&vs);
        for ((layer, vars), mut ours) in pair(
            keras.into_iter().collect(),
            model_layers,
            &mut failures,
            name,
        ) {
            for (var, stats) in vars {
                // A separable convolution's kernels (a depthwise convolution's
                // `depthwise_kernel` is its `weight`).
                let torch = match var {
                    "depthwise_kernel" if ours.contains_key("depthwise_weight") => {
                        "depthwise_weight"
                    }
                    "pointwise_kernel" => "pointwise_weight",
                    var => torch_var(var),
                };
                match ours.remove(torch) {
                    None => {
                        failures.push(format!("{name}: `{layer}` has no `{torch}` for `{var}`"))
                    }
                    Some(t) => {
                        if let Some(why) = compare(&t, stats) {
                            failures.push(format!("{name}: `{layer}/{var}`: {why}"));
                        }
                    }
                }
            }
            for left in ours.keys() {
                failures.push(format!("{name}: `{layer}.{left}` has no Keras weight"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
