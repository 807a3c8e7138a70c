//! `SeparableConv2d` against Keras 3's own `SeparableConv2D` (torch backend): outputs with
//! the same weights (stride 1 and 2, "same" and "valid", odd, even and mixed sizes, an even
//! kernel, dilation, depth multiplier 1 and 2, with and without bias, an activation),
//! output shapes and parameter counts, Xception's layer sizes included.
//!
//! The references come from `scripts/fixtures/keras_separable.py` (`make fixtures`), which
//! writes Keras' kernels in the libtorch layout under the Rust variable names.

use std::collections::BTreeMap;

use df_layers::util::{param_count, params_without_finite_grad, ParamCount};
use df_layers::{Activation, Padding, SeparableConv2d, SeparableConv2dConfig};
use serde::Deserialize;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

mod common;

#[path = "../../../fixtures/keras_json.rs"]
mod keras_json;
use keras_json::{load_exact, JsonTensor};

fn fixture<T: serde::de::DeserializeOwned>(file: &str) -> T {
    common::fixture_json("keras_separable", file)
}

#[derive(Deserialize)]
struct Case {
    case: String,
    name: String,
    in_channels: i64,
    out_channels: i64,
    kernel: i64,
    stride: i64,
    dilation: i64,
    depth_multiplier: i64,
    bias: bool,
    padding: String,
    activation: String,
    input: JsonTensor,
    weights: BTreeMap<String, JsonTensor>,
    output: JsonTensor,
    output_shape: Vec<i64>,
}

#[derive(Deserialize)]
struct Parity {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Count {
    total: i64,
    trainable: i64,
}

fn keras_counts() -> BTreeMap<String, Count> {
    fixture("params.json")
}

fn keras_count(counts: &BTreeMap<String, Count>, case: &str) -> ParamCount {
    let c = counts
        .get(case)
        .unwrap_or_else(|| panic!("no case `{case}` in params.json; run `make fixtures`"));
    ParamCount {
        total: c.total,
        trainable: c.trainable,
    }
}

fn config(c: &Case) -> SeparableConv2dConfig {
    let padding = match c.padding.as_str() {
        "same" => Padding::Same,
        "valid" => Padding::Valid,
        other => panic!("{}: padding {other}", c.case),
    };
    let activation = match c.activation.as_str() {
        "linear" => Activation::Linear,
        "relu" => Activation::Relu,
        other => panic!("{}: activation {other}", c.case),
    };
    SeparableConv2dConfig::new(c.in_channels, c.out_channels, c.kernel, c.name.as_str())
        .with_stride(c.stride)
        .with_dilation(c.dilation)
        .with_depth_multiplier(c.depth_multiplier)
        .with_bias(c.bias)
        .with_padding(padding)
        .with_activation(activation)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// Every case: Keras' weights load by name (exactly the same variables and shapes), the
/// output equals Keras' within 1e-5 of its scale (the tolerance of the other block
/// tests), and the parameter count is Keras' `count_params()`.
#[test]
fn separable_conv_matches_keras() {
    let parity: Parity = fixture("parity.json");
    let counts = keras_counts();
    assert!(parity.cases.len() >= 8, "{} cases", parity.cases.len());
    let mut seen = (false, false, false, false);
    for c in &parity.cases {
        let cfg = config(c);
        seen.0 |= c.stride == 2 && c.padding == "same" && c.input.shape[2] % 2 == 0;
        seen.1 |= c.depth_multiplier == 2 && !c.bias;
        seen.2 |= c.padding == "valid" && c.stride == 2;
        seen.3 |= c.dilation == 2;
        let vs = VarStore::new(Device::Cpu);
        let block = SeparableConv2d::new(&vs.root(), &cfg).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            param_count(&vs),
            keras_count(&counts, &c.case),
            "{}: parameters",
            c.case
        );
        assert_eq!(cfg.param_count(), keras_count(&counts, &c.case).total);
        load_exact(&vs, &c.weights, &c.case);
        let y = tch::no_grad(|| block.forward_t(&c.input.tensor(), false));
        assert_eq!(y.size(), c.output_shape, "{}: output shape", c.case);
        let keras = c.output.tensor();
        let scale = keras.abs().max().double_value(&[]).max(1.0);
        let diff = max_abs_diff(&y, &keras);
        eprintln!(
            "{}: max |ours - keras| = {diff:.1e} (scale {scale:.1})",
            c.case
        );
        assert!(
            diff <= 1e-5 * scale,
            "{}: max |ours - keras| = {diff:e} (scale {scale})",
            c.case
        );
        // Training mode computes the same function (no batch norm, no dropout).
        let y_train = tch::no_grad(|| block.forward_t(&c.input.tensor(), true));
        assert_eq!(max_abs_diff(&y_train, &y), 0.0, "{}: train", c.case);
    }
    assert!(
        seen.0 && seen.1 && seen.2 && seen.3,
        "the fixture lacks a kind of case: {seen:?}"
    );
}

/// Xception's separable layers (3×3, "same", no bias): Keras' counts, from the layer
/// alone, for every in/out size the architecture has.
#[test]
fn xception_separable_param_counts_match_keras() {
    let counts = keras_counts();
    let sizes = counts
        .keys()
        .filter_map(|k| k.strip_prefix("xception_"))
        .map(|k| {
            let (i, o) = k.split_once('_').expect("in_out");
            (
                k,
                i.parse::<i64>().expect("in"),
                o.parse::<i64>().expect("out"),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(sizes.len(), 8, "{sizes:?}");
    for (case, cin, cout) in sizes {
        let cfg = SeparableConv2dConfig::new(cin, cout, 3, "block_sepconv")
            .with_padding(Padding::Same)
            .with_bias(false);
        let vs = VarStore::new(Device::Cpu);
        SeparableConv2d::new(&vs.root(), &cfg).expect("valid");
        let keras = keras_count(&counts, &format!("xception_{case}"));
        assert_eq!(param_count(&vs), keras, "{case}");
        assert_eq!(cfg.param_count(), keras.total, "{case}");
    }
}

/// Every variable (the depthwise and pointwise kernels and the bias) gets a finite
/// gradient, and the input's gradient has the input's shape.
#[test]
fn separable_conv_trains() {
    tch::manual_seed(2);
    let vs = VarStore::new(Device::Cpu);
    let cfg = SeparableConv2dConfig::new(4, 6, 3, "sep")
        .with_stride(2)
        .with_depth_multiplier(2)
        .with_padding(Padding::Same)
        .with_activation(Activation::Relu);
    let block = SeparableConv2d::new(&vs.root(), &cfg).expect("valid");
    let x = Tensor::randn([2, 4, 8, 8], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let loss = block.forward_t(&x, true).square().mean(Kind::Float);
    let bad = params_without_finite_grad(&vs, &loss);
    assert!(bad.is_empty(), "no finite gradient for {bad:?}");
    assert_eq!(x.grad().size(), [2, 4, 8, 8]);
}
