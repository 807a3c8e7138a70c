//! MesoNet inception, ResNet bottlenecks, VGG stages, max pooling, "same" padding and
//! the dense heads, checked against Keras 3 (torch backend): parameter counts, outputs
//! with the same weights, output shapes, gradients and train/eval behaviour.
//!
//! The references come from `scripts/fixtures/keras_blocks_a.py` (`make fixtures`).

use std::collections::BTreeMap;

use df_layers::util::{param_count, params_without_finite_grad, ParamCount};
use df_layers::{
    Activation, ConvBlock, ConvBlockConfig, ConvBnAct, ConvBnActConfig, DenseHead, DenseHeadConfig,
    DenseLayerConfig, HeadInput, IdentityBlock, IdentityBlockConfig, MaxPool2d, MaxPool2dConfig,
    MesoInception, MesoInceptionConfig, Padding, VggStage, VggStageConfig,
};
use serde::Deserialize;
use tch::nn::{Module, ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

mod common;

fn fixture<T: serde::de::DeserializeOwned>(file: &str) -> T {
    common::fixture_json("keras_blocks_a", file)
}

#[path = "../../../fixtures/keras_json.rs"]
mod keras_json;
use keras_json::{load_exact, JsonTensor};

#[derive(Deserialize)]
struct Parity {
    input: JsonTensor,
    weights: BTreeMap<String, JsonTensor>,
    output_eval: JsonTensor,
    output_train: Option<JsonTensor>,
}

#[derive(Deserialize)]
struct Count {
    total: i64,
    trainable: i64,
}

fn keras_count(case: &str) -> ParamCount {
    let counts: BTreeMap<String, Count> = fixture("params.json");
    let c = counts
        .get(case)
        .unwrap_or_else(|| panic!("no case `{case}` in params.json; run `make fixtures`"));
    ParamCount {
        total: c.total,
        trainable: c.trainable,
    }
}

/// Copies Keras' weights into `vs`, checking that both name exactly the same variables.
fn load(vs: &VarStore, weights: &BTreeMap<String, JsonTensor>) {
    load_exact(vs, weights, "block");
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    f64::try_from((a - b).abs().max()).expect("scalar")
}

fn assert_close(ours: &Tensor, keras: &Tensor, tol: f64, what: &str) {
    let scale = f64::try_from(keras.abs().max()).expect("scalar").max(1.0);
    let diff = max_abs_diff(ours, keras);
    assert!(
        diff <= tol * scale,
        "{what}: max |ours - keras| = {diff:e} (scale {scale})"
    );
}

/// Loads the Keras weights of `case`, then compares the outputs in inference mode and,
/// where Keras recorded it, in training mode.
fn check_parity(case: &str, vs: &VarStore, block: &dyn ModuleT) {
    let p: Parity = fixture(&format!("parity_{case}.json"));
    load(vs, &p.weights);
    let x = p.input.tensor();
    let y = tch::no_grad(|| block.forward_t(&x, false));
    assert_close(&y, &p.output_eval.tensor(), 1e-5, &format!("{case} (eval)"));
    if let Some(train) = &p.output_train {
        let y = tch::no_grad(|| block.forward_t(&x, true));
        assert_close(&y, &train.tensor(), 1e-5, &format!("{case} (train)"));
    }
}

fn randn(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

fn assert_all_grads_finite(vs: &VarStore, block: &dyn ModuleT, x: &Tensor) {
    let loss = block.forward_t(x, true).square().mean(Kind::Float);
    let bad = params_without_finite_grad(vs, &loss);
    assert!(bad.is_empty(), "no finite gradient for {bad:?}");
}

// ---- ConvBnAct and MaxPool2d: "same" padding against Keras ---------------------------

#[derive(Deserialize)]
struct ConvCase {
    size: i64,
    kernel: i64,
    stride: i64,
    dilation: i64,
    input: JsonTensor,
    weight: JsonTensor,
    bias: JsonTensor,
    output: JsonTensor,
    output_shape: Vec<i64>,
}

#[derive(Deserialize)]
struct PoolCase {
    size: i64,
    pool: i64,
    stride: i64,
    padding: String,
    input: JsonTensor,
    output: JsonTensor,
    output_shape: Vec<i64>,
}

#[derive(Deserialize)]
struct SamePadding {
    conv: Vec<ConvCase>,
    max_pool: Vec<PoolCase>,
}

#[test]
fn conv_same_padding_matches_keras_on_odd_and_even_inputs() {
    let cases: SamePadding = fixture("same_padding.json");
    assert!(cases.conv.len() >= 2);
    for c in &cases.conv {
        let what = format!(
            "conv {}x{} k{} s{} d{}",
            c.size, c.size, c.kernel, c.stride, c.dilation
        );
        let vs = VarStore::new(Device::Cpu);
        let cfg = ConvBnActConfig::new(2, 3, c.kernel)
            .with_stride(c.stride)
            .with_dilation(c.dilation)
            .with_padding(Padding::Same);
        let conv = ConvBnAct::new(&vs.root(), &cfg).expect("valid config");
        tch::no_grad(|| {
            conv.weight.shallow_clone().copy_(&c.weight.tensor());
            conv.bias
                .as_ref()
                .expect("bias")
                .shallow_clone()
                .copy_(&c.bias.tensor());
        });
        let y = tch::no_grad(|| conv.forward_t(&c.input.tensor(), false));
        assert_eq!(y.size(), c.output_shape, "{what}: shape");
        // ceil(n / s), as Keras documents for "same".
        let expected = (c.size + c.stride - 1) / c.stride;
        assert_eq!(y.size()[2..], [expected, expected], "{what}: size");
        assert_close(&y, &c.output.tensor(), 1e-5, &what);
    }
}

#[test]
fn max_pool_matches_keras_same_and_valid() {
    let cases: SamePadding = fixture("same_padding.json");
    assert!(cases.max_pool.len() >= 2);
    for c in &cases.max_pool {
        let padding = match c.padding.as_str() {
            "same" => Padding::Same,
            "valid" => Padding::Valid,
            other => panic!("unknown padding {other}"),
        };
        let what = format!(
            "max pool {}x{} pool {} stride {} {}",
            c.size, c.size, c.pool, c.stride, c.padding
        );
        let pool = MaxPool2d::new(&MaxPool2dConfig::new(c.pool, padding).with_stride(c.stride))
            .expect("valid config");
        let y = pool.forward(&c.input.tensor());
        assert_eq!(y.size(), c.output_shape, "{what}: shape");
        assert_eq!(pool.output_size(c.size), c.output_shape[2], "{what}");
        assert_close(&y, &c.output.tensor(), 0.0, &what);
    }
}

#[test]
fn max_pool_rejects_zero_window() {
    assert!(MaxPool2d::new(&MaxPool2dConfig::new(0, Padding::Same)).is_err());
    assert!(MaxPool2d::new(&MaxPool2dConfig::new(2, Padding::Same).with_stride(0)).is_err());
}

// ---- MesoInception -------------------------------------------------------------------

fn meso_inception(in_channels: i64, widths: [i64; 4]) -> (VarStore, MesoInception) {
    let vs = VarStore::new(Device::Cpu);
    let cfg = MesoInceptionConfig::new(in_channels, widths);
    let block = MesoInception::new(&vs.root(), &cfg).expect("valid config");
    (vs, block)
}

#[test]
fn meso_inception_matches_keras() {
    for (case, cin, widths) in [
        ("meso_inception_3_1442", 3, [1, 4, 4, 2]),
        ("meso_inception_11_2442", 11, [2, 4, 4, 2]),
    ] {
        let (vs, block) = meso_inception(cin, widths);
        assert_eq!(param_count(&vs), keras_count(case), "{case}");
        check_parity(case, &vs, &block);
    }
}

#[test]
fn meso_inception_shape_gradients_and_modes() {
    let (vs, block) = meso_inception(3, [1, 4, 4, 2]);
    let x = randn(&[2, 3, 9, 10]);
    let y = block.forward_t(&x, false);
    assert_eq!(y.size(), [2, 11, 9, 10]); // [batch, a+b+c+d, H, W]
    assert!(
        bool::try_from(y.ge(0.0).all()).expect("bool"),
        "ReLU output"
    );
    // No batch norm or dropout inside: train and eval agree.
    assert_eq!(max_abs_diff(&y, &block.forward_t(&x, true)), 0.0);
    assert_all_grads_finite(&vs, &block, &x);
}

#[test]
fn meso_inception_names_and_invalid_configs() {
    let cfg = MesoInceptionConfig::new(11, [2, 4, 4, 2]).with_keras_names(7);
    assert_eq!(cfg.conv_names[0], "conv2d_7");
    assert_eq!(cfg.conv_names[6], "conv2d_13");
    assert_eq!(cfg.out_channels(), 12);
    let vs = VarStore::new(Device::Cpu);
    MesoInception::new(&vs.root(), &cfg).expect("valid config");
    assert!(vs.variables().contains_key("conv2d_13.weight"));

    let vs = VarStore::new(Device::Cpu);
    let zero = MesoInceptionConfig::new(3, [0, 4, 4, 2]);
    let err = MesoInception::new(&vs.root(), &zero).expect_err("a = 0");
    assert!(err.to_string().contains("`a`"), "{err}");
    let mut dup = MesoInceptionConfig::default();
    dup.conv_names[3] = dup.conv_names[1].clone();
    assert!(MesoInception::new(&vs.root(), &dup).is_err());
}

/// Two blocks in sequence.
#[derive(Debug)]
struct Chain(ConvBlock, IdentityBlock);

impl ModuleT for Chain {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.1.forward_t(&self.0.forward_t(xs, train), train)
    }
}

// ---- ResNet bottlenecks --------------------------------------------------------------

#[test]
fn identity_block_param_counts_match_keras() {
    for (case, filters, name) in [
        ("identity_block_16_4", 4, "conv2_block2"),
        ("identity_block_256_64", 64, "conv2_block2"),
        ("identity_block_2048_512", 512, "conv5_block2"),
    ] {
        let vs = VarStore::new(Device::Cpu);
        IdentityBlock::new(&vs.root(), &IdentityBlockConfig::new(filters, name))
            .expect("valid config");
        assert_eq!(param_count(&vs), keras_count(case), "{case}");
    }
}

#[test]
fn conv_block_param_counts_match_keras() {
    for (case, cin, filters, stride, name) in [
        ("conv_block_8_4_s2", 8, 4, 2, "conv3_block1"),
        ("conv_block_8_4_s1", 8, 4, 1, "conv2_block1"),
        ("conv_block_64_64_s1", 64, 64, 1, "conv2_block1"),
        ("conv_block_256_128_s2", 256, 128, 2, "conv3_block1"),
    ] {
        let vs = VarStore::new(Device::Cpu);
        ConvBlock::new(
            &vs.root(),
            &ConvBlockConfig::new(cin, filters, stride, name),
        )
        .expect("valid config");
        assert_eq!(param_count(&vs), keras_count(case), "{case}");
    }
}

#[test]
fn identity_block_matches_keras_in_eval_and_train() {
    let vs = VarStore::new(Device::Cpu);
    let block = IdentityBlock::new(&vs.root(), &IdentityBlockConfig::new(4, "conv2_block2"))
        .expect("valid config");
    check_parity("identity_block_16_4", &vs, &block);
}

#[test]
fn conv_block_matches_keras_in_eval_and_train() {
    for (case, stride, name) in [
        ("conv_block_8_4_s2", 2, "conv3_block1"),
        ("conv_block_8_4_s1", 1, "conv2_block1"),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let block = ConvBlock::new(&vs.root(), &ConvBlockConfig::new(8, 4, stride, name))
            .expect("valid config");
        check_parity(case, &vs, &block);
    }
}

#[test]
fn resnet_blocks_shapes_gradients_and_batch_norm_modes() {
    let vs = VarStore::new(Device::Cpu);
    let conv = ConvBlock::new(&vs.root(), &ConvBlockConfig::new(8, 4, 2, "conv3_block1"))
        .expect("valid config");
    let ident = IdentityBlock::new(&vs.root(), &IdentityBlockConfig::new(4, "conv3_block2"))
        .expect("valid config");
    let x = randn(&[3, 8, 7, 6]);
    let y = conv.forward_t(&x, false);
    assert_eq!(y.size(), [3, 16, 4, 3]); // [batch, 4·filters, ceil(7/2), ceil(6/2)]
    assert_eq!(ident.forward_t(&y, false).size(), [3, 16, 4, 3]);

    let net = Chain(conv, ident);
    assert_all_grads_finite(&vs, &net, &x);

    // Batch norm: batch statistics in train mode, moving ones in eval mode; only train
    // mode moves the moving mean (by Keras' momentum 0.99).
    let mean = vs.variables()["conv3_block1_1_bn.running_mean"].copy();
    let eval = tch::no_grad(|| net.forward_t(&x, false));
    let moved = vs.variables()["conv3_block1_1_bn.running_mean"].copy();
    assert_eq!(max_abs_diff(&mean, &moved), 0.0, "eval must not update");
    let train = tch::no_grad(|| net.forward_t(&x, true));
    assert!(max_abs_diff(&eval, &train) > 1e-3, "train and eval agree");
    let moved = vs.variables()["conv3_block1_1_bn.running_mean"].copy();
    assert!(max_abs_diff(&mean, &moved) > 0.0, "train must update");
}

#[test]
fn resnet_blocks_reject_invalid_configs() {
    let vs = VarStore::new(Device::Cpu);
    let err = IdentityBlock::new(&vs.root(), &IdentityBlockConfig::new(0, "b"))
        .expect_err("zero filters");
    assert!(err.to_string().contains("filters"), "{err}");
    let err =
        ConvBlock::new(&vs.root(), &ConvBlockConfig::new(8, 4, 0, "c")).expect_err("zero stride");
    assert!(err.to_string().contains("stride"), "{err}");
    assert!(IdentityBlock::new(&vs.root(), &IdentityBlockConfig::new(4, "")).is_err());
    let mut bad_bn = IdentityBlockConfig::new(4, "d");
    bad_bn.batch_norm.eps = 0.0;
    assert!(IdentityBlock::new(&vs.root(), &bad_bn).is_err());
}

// ---- VGG stages ----------------------------------------------------------------------

#[test]
fn vgg_stage_param_counts_match_keras() {
    for (case, cfg) in [
        ("vgg_stage_4_8_2", VggStageConfig::new(1, 4, 8, 2)),
        (
            "vgg_stage_4_8_2_pw",
            VggStageConfig::new(3, 4, 8, 2).with_pointwise(true),
        ),
        ("vgg_stage_3_64_2", VggStageConfig::new(1, 3, 64, 2)),
        ("vgg_stage_128_256_3", VggStageConfig::new(3, 128, 256, 3)),
        (
            "vgg_stage_128_256_2_pw",
            VggStageConfig::new(3, 128, 256, 2).with_pointwise(true),
        ),
        (
            "vgg_stage_512_512_2_pw",
            VggStageConfig::new(5, 512, 512, 2).with_pointwise(true),
        ),
    ] {
        let vs = VarStore::new(Device::Cpu);
        VggStage::new(&vs.root(), &cfg).expect("valid config");
        assert_eq!(param_count(&vs), keras_count(case), "{case}");
    }
}

#[test]
fn vgg_stage_matches_keras() {
    for (case, cfg) in [
        ("vgg_stage_4_8_2", VggStageConfig::new(1, 4, 8, 2)),
        (
            "vgg_stage_4_8_2_pw",
            VggStageConfig::new(3, 4, 8, 2).with_pointwise(true),
        ),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let stage = VggStage::new(&vs.root(), &cfg).expect("valid config");
        check_parity(case, &vs, &stage);
    }
}

#[test]
fn vgg_stage_shape_gradients_and_modes() {
    let vs = VarStore::new(Device::Cpu);
    let cfg = VggStageConfig::new(3, 4, 8, 2).with_pointwise(true);
    assert_eq!(cfg.conv_name(3), "block3_conv3");
    assert_eq!(cfg.pool_name(), "block3_pool");
    let stage = VggStage::new(&vs.root(), &cfg).expect("valid config");
    assert_eq!(vs.variables()["block3_conv3.weight"].size(), [8, 8, 1, 1]);
    let x = randn(&[2, 4, 9, 8]);
    let y = stage.forward_t(&x, false);
    assert_eq!(y.size(), [2, 8, 4, 4]); // valid 2×2 pooling floors odd sizes
    assert_eq!(max_abs_diff(&y, &stage.forward_t(&x, true)), 0.0);
    assert_all_grads_finite(&vs, &stage, &x);

    assert!(VggStage::new(&vs.root(), &VggStageConfig::new(0, 4, 8, 2)).is_err());
    assert!(VggStage::new(&vs.root(), &VggStageConfig::new(6, 4, 8, 0)).is_err());
    assert!(VggStage::new(&vs.root(), &VggStageConfig::new(6, 4, 0, 2)).is_err());
}

// ---- dense heads ---------------------------------------------------------------------

#[test]
fn dense_head_param_counts_match_keras() {
    let pooled = DenseHeadConfig {
        input_shape: [2048, 4, 4],
        input: HeadInput::GlobalAvgPool,
        layers: vec![DenseLayerConfig::new("predictions", 1, Activation::Linear)],
    };
    for (case, cfg) in [
        ("head_mesonet_16x8x8", DenseHeadConfig::mesonet([16, 8, 8])),
        (
            "head_study_512x2x2_1024_2048",
            DenseHeadConfig::study([512, 2, 2], [1024, 2048], 0.5, 1e-4),
        ),
        (
            "head_study_16x3x3_8_4",
            DenseHeadConfig::study([16, 3, 3], [8, 4], 0.3, 0.0),
        ),
        ("head_pooled_2048", pooled),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let head = DenseHead::new(&vs.root(), &cfg).expect("valid config");
        assert_eq!(param_count(&vs), keras_count(case), "{case}");
        let [c, h, w] = cfg.input_shape;
        let y = head.forward_t(&randn(&[2, c, h, w]), false);
        assert_eq!(y.size(), [2, 1], "{case}");
    }
}

/// Inference writes activations in place; with autograd recording it must not, so that
/// the tensors autograd saved stay intact. Reference: the textbook formulas, computed on
/// copies.
#[test]
fn in_place_activations_equal_the_formulas_and_respect_autograd() {
    let x = Tensor::from_slice(&[-2.0f32, -0.5, 0.0, 0.5, 3.0]);
    let relu: Vec<f32> = vec![0.0, 0.0, 0.0, 0.5, 3.0];
    let swish: Vec<f32> = Vec::<f32>::try_from(&x)
        .expect("values")
        .iter()
        .map(|v| v / (1.0 + (-v).exp()))
        .collect();
    for (act, want) in [(Activation::Relu, &relu), (Activation::Swish, &swish)] {
        // No gradient recorded: in place, same values.
        let owned = x.copy();
        let out = tch::no_grad(|| act.apply_owned(owned.shallow_clone()));
        let got = Vec::<f32>::try_from(&out).expect("values");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{act:?}: {got:?} vs {want:?}");
        }
        assert_eq!(
            out.data_ptr(),
            owned.data_ptr(),
            "{act:?} under no_grad is in place"
        );
        // Recording: a new tensor, the input untouched, gradients flow.
        let leaf = x.copy().set_requires_grad(true);
        let input = &leaf * 1.0;
        let out = act.apply_owned(input.shallow_clone());
        assert_ne!(
            out.data_ptr(),
            input.data_ptr(),
            "{act:?} with autograd is not in place"
        );
        assert_eq!(
            Vec::<f32>::try_from(&input.detach()).expect("values"),
            Vec::<f32>::try_from(&x).expect("values")
        );
        out.sum(Kind::Float).backward();
        assert!(leaf.grad().defined(), "{act:?}: gradient reaches the input");
    }
}

/// Two blocks with the same name on one path are an error naming the variable (libtorch's
/// store would silently rename the second `bn.bias__N`), whatever kind of block comes
/// second; the same names on different paths are fine.
#[test]
fn duplicate_block_names_are_an_error() {
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let dense = DenseLayerConfig::new("dense", 4, Activation::Relu);
    df_layers::Dense::new(&root, 8, &dense).expect("first dense");
    let err = df_layers::Dense::new(&root, 8, &dense).expect_err("same name twice");
    assert!(
        matches!(&err, df_layers::Error::DuplicateName { variable, .. } if variable == "dense.weight"),
        "{err}"
    );
    df_layers::Dense::new(&(&root / "other"), 8, &dense).expect("another path");

    let with_bn = |conv: &str| {
        ConvBnActConfig::new(3, 4, 3)
            .with_batch_norm(df_layers::BatchNormConfig::default())
            .with_names(conv, "bn")
    };
    let conv = with_bn("conv");
    ConvBnAct::new(&root, &conv).expect("first conv");
    let err = ConvBnAct::new(&root, &conv).expect_err("same conv twice");
    assert!(
        err.to_string().contains("`conv.weight` already exists"),
        "{err}"
    );
    let err = ConvBnAct::new(&root, &with_bn("conv2")).expect_err("same batch norm twice");
    assert!(
        err.to_string().contains("`bn.weight` already exists"),
        "{err}"
    );
    // Nothing was renamed behind the caller's back.
    assert!(
        vs.variables().keys().all(|k| !k.contains("__")),
        "{:?}",
        vs.variables().keys()
    );

    // A pooled head needs only the channels.
    let head = DenseHead::new(
        &(&root / "head"),
        &DenseHeadConfig::global_avg_pool(
            4,
            vec![DenseLayerConfig::new("out", 1, Activation::Linear)],
        ),
    )
    .expect("pooled head");
    assert_eq!(head.variable_names(), ["head.out.weight", "head.out.bias"]);
    let ys = head.forward_t(
        &Tensor::ones([2, 4, 5, 7], (Kind::Float, Device::Cpu)),
        false,
    );
    assert_eq!(ys.size(), [2, 1]);
}
