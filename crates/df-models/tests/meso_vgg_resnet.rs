//! Meso4, MesoInception4, ResNet50 and VGG16 (configurations C and D): parameter counts
//! against Keras, outputs against Keras with the same weights (MesoNet), CPU shapes,
//! gradients, configuration handling.
//!
//! The Keras references come from `scripts/fixtures/keras_blocks_a.py` (`make fixtures`).

use std::collections::BTreeMap;

use df_layers::util::{param_count, params_without_finite_grad, ParamCount};
use df_layers::HeadInput;
use df_models::{
    ChannelOrder, Meso4, MesoConfig, MesoInception4, Model, ResNet, ResNetConfig, Top, Vgg16,
    VggConfig, VggVariant,
};
use serde::Deserialize;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

// Keras 3.15 `keras.applications` with `weights=None`, as recorded in
// `../shared/reference/keras_applications_params.json` (copied here because the default
// test command runs without ../shared).
const VGG16_WITH_TOP: ParamCount = ParamCount {
    total: 138_357_544,
    trainable: 138_357_544,
};
const VGG16_NO_TOP: ParamCount = ParamCount {
    total: 14_714_688,
    trainable: 14_714_688,
};
const RESNET50_WITH_TOP: ParamCount = ParamCount {
    total: 25_636_712,
    trainable: 25_583_592,
};
const RESNET50_NO_TOP: ParamCount = ParamCount {
    total: 23_587_712,
    trainable: 23_534_592,
};
// The MesoNet paper's models as Keras counts them (../shared/data/README.md).
const MESO4_256: ParamCount = ParamCount {
    total: 28_073,
    trainable: 27_977,
};
const MESO_INCEPTION4_256: ParamCount = ParamCount {
    total: 28_725,
    trainable: 28_615,
};

mod common;

fn fixture<T: serde::de::DeserializeOwned>(file: &str) -> T {
    common::fixture_json("keras_blocks_a", file)
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

#[path = "../../../fixtures/keras_json.rs"]
mod keras_json;
use keras_json::{load_exact, JsonTensor};

#[derive(Deserialize)]
struct Parity {
    input: JsonTensor,
    weights: BTreeMap<String, JsonTensor>,
    output_eval: JsonTensor,
}

fn randn(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

fn assert_all_grads_finite(vs: &VarStore, model: &dyn ModuleT, x: &Tensor) {
    let loss = model.forward_t(x, true).square().mean(Kind::Float);
    let bad = params_without_finite_grad(vs, &loss);
    assert!(bad.is_empty(), "no finite gradient for {bad:?}");
}

/// Loads the Keras model's weights (the names must match exactly) and compares
/// p = sigmoid(logit) with Keras' sigmoid output in inference mode.
fn check_meso_parity(case: &str, vs: &VarStore, model: &dyn ModuleT) {
    let p: Parity = fixture(&format!("parity_{case}.json"));
    load_exact(vs, &p.weights, case);
    let probs = tch::no_grad(|| model.forward_t(&p.input.tensor(), false)).sigmoid();
    let keras = p.output_eval.tensor();
    assert_eq!(probs.size(), keras.size());
    let diff = f64::try_from((&probs - &keras).abs().max()).expect("scalar");
    assert!(diff < 1e-5, "{case}: max |ours - keras| = {diff:e}");
}

// ---- MesoNet ---------------------------------------------------------------------------

#[test]
fn meso_param_counts_match_keras_and_the_paper() {
    for size in [256, 64] {
        let cfg = MesoConfig::paper().with_input_size(size, size);
        let vs = VarStore::new(Device::Cpu);
        Meso4::new(&vs.root(), &cfg).expect("valid config");
        assert_eq!(param_count(&vs), keras_count(&format!("meso4_{size}")));
        let vs2 = VarStore::new(Device::Cpu);
        MesoInception4::new(&vs2.root(), &cfg).expect("valid config");
        assert_eq!(
            param_count(&vs2),
            keras_count(&format!("meso_inception4_{size}"))
        );
        if size == 256 {
            assert_eq!(param_count(&vs), MESO4_256);
            assert_eq!(param_count(&vs2), MESO_INCEPTION4_256);
        }
    }
}

#[test]
fn meso_models_match_the_authors_keras_architecture() {
    let cfg = MesoConfig::paper().with_input_size(64, 64);
    let vs = VarStore::new(Device::Cpu);
    let meso4 = Meso4::new(&vs.root(), &cfg).expect("valid config");
    check_meso_parity("meso4_64", &vs, &meso4);
    let vs = VarStore::new(Device::Cpu);
    let inception = MesoInception4::new(&vs.root(), &cfg).expect("valid config");
    check_meso_parity("meso_inception4_64", &vs, &inception);
}

#[test]
fn meso_models_shapes_gradients_and_metadata() {
    // 37×45: odd sizes exercise the asymmetric "same" pooling: 37 → 19 → 10 → 5 → 2.
    let cfg = MesoConfig::paper().with_input_size(37, 45);
    assert_eq!(cfg.feature_shape(), [16, 2, 2]);
    assert_eq!(MesoConfig::paper().feature_shape(), [16, 8, 8]);
    let x = randn(&[2, 3, 37, 45]);

    let vs = VarStore::new(Device::Cpu);
    let m = Meso4::new(&vs.root(), &cfg).expect("valid config");
    assert_eq!(m.forward_t(&x, false).size(), [2, 1]);
    assert_all_grads_finite(&vs, &m, &x);
    assert_eq!(m.name(), "meso4");
    assert_eq!(m.head().and_then(|h| h.flatten_shape()), Some([16, 2, 2]));

    let vs = VarStore::new(Device::Cpu);
    let m = MesoInception4::new(&vs.root(), &cfg).expect("valid config");
    assert_eq!(m.forward_t(&x, false).size(), [2, 1]);
    assert_all_grads_finite(&vs, &m, &x);
    assert_eq!(m.name(), "meso_inception4");
    let spec = m.input_spec();
    assert_eq!((spec.height, spec.width), (37, 45));
    assert_eq!(spec.preprocessing.scale, 1.0 / 255.0);
    assert_eq!(spec.preprocessing.channel_order, ChannelOrder::Rgb);
    let json = m.config_json().expect("config");
    let back: MesoConfig = serde_json::from_value(json).expect("config round trip");
    assert_eq!(&back, m.config());
}

#[test]
fn meso_dropout_acts_only_in_train_mode() {
    let cfg = MesoConfig::paper().with_input_size(32, 32);
    let vs = VarStore::new(Device::Cpu);
    let m = Meso4::new(&vs.root(), &cfg).expect("valid config");
    let x = randn(&[4, 3, 32, 32]);
    // Eval twice: identical. Train mode (batch statistics, dropout): different.
    let a = m.forward_t(&x, false);
    let b = m.forward_t(&x, false);
    assert_eq!(f64::try_from((&a - &b).abs().max()).expect("scalar"), 0.0);
    tch::manual_seed(1);
    let t1 = m.forward_t(&x, true);
    tch::manual_seed(2);
    let t2 = m.forward_t(&x, true);
    assert!(f64::try_from((&t1 - &t2).abs().max()).expect("scalar") > 0.0);
}

#[test]
fn meso_backbone_and_configs() {
    let vs = VarStore::new(Device::Cpu);
    let pooled = MesoConfig::paper()
        .with_input_size(32, 32)
        .with_top(Top::Backbone {
            pooling: HeadInput::GlobalAvgPool,
        });
    let m = Meso4::new(&vs.root(), &pooled).expect("valid config");
    assert!(m.head().is_none());
    assert_eq!(m.forward_t(&randn(&[2, 3, 32, 32]), false).size(), [2, 16]);
    let map = pooled.clone().with_top(Top::Backbone {
        pooling: HeadInput::Flatten,
    });
    let vs = VarStore::new(Device::Cpu);
    let m = MesoInception4::new(&vs.root(), &map).expect("valid config");
    assert_eq!(
        m.forward_t(&randn(&[2, 3, 32, 32]), false).size(),
        [2, 16, 1, 1]
    );

    // with_dropout / with_l2 reach the head.
    let cfg = MesoConfig::paper().with_dropout(0.25).with_l2(1e-3);
    let vs = VarStore::new(Device::Cpu);
    let m = Meso4::new(&vs.root(), &cfg).expect("valid config");
    let head = m.head().expect("binary head");
    for layer in &head.layers {
        assert_eq!(layer.config().dropout_before, 0.25);
        assert_eq!(layer.config().l2, 1e-3);
    }
    let penalty = f64::try_from(m.l2_penalty()).expect("scalar");
    let expected: f64 = head
        .layers
        .iter()
        .map(|l| 1e-3 * f64::try_from(l.weight.square().sum(Kind::Float)).expect("scalar"))
        .sum();
    assert!((penalty - expected).abs() < 1e-6 * expected.max(1.0));

    // Errors, not panics.
    let vs = VarStore::new(Device::Cpu);
    let imagenet = MesoConfig::paper().with_top(Top::ImageNet { classes: 1000 });
    let err = Meso4::new(&vs.root(), &imagenet).expect_err("no ImageNet top");
    assert!(err.to_string().contains("top"), "{err}");
    let err = MesoInception4::new(&vs.root(), &MesoConfig::paper().with_input_size(0, 256))
        .expect_err("zero size");
    assert!(err.to_string().contains("input_size"), "{err}");
    assert!(Meso4::new(&vs.root(), &MesoConfig::paper().with_dropout(1.0)).is_err());
}

// ---- ResNet50 --------------------------------------------------------------------------

#[test]
fn resnet50_param_counts_match_keras_applications() {
    let vs = VarStore::new(Device::Cpu);
    let m = ResNet::new(&vs.root(), &ResNetConfig::imagenet()).expect("valid config");
    assert_eq!(param_count(&vs), RESNET50_WITH_TOP);
    let names = vs.variables();
    for name in [
        "conv1_conv.weight",
        "conv1_conv.bias",
        "conv1_bn.running_var",
        "conv2_block1_0_conv.weight",
        "conv2_block3_3_bn.weight",
        "conv4_block6_2_conv.weight",
        "conv5_block3_3_bn.running_mean",
        "predictions.weight",
    ] {
        assert!(names.contains_key(name), "missing {name}");
    }
    assert_eq!(names["conv3_block1_0_conv.weight"].size(), [512, 256, 1, 1]);
    assert_eq!(m.head().map(|h| h.flatten_shape()), Some(None));
    drop(m);

    let vs = VarStore::new(Device::Cpu);
    ResNet::new(&vs.root(), &ResNetConfig::backbone(HeadInput::Flatten)).expect("valid");
    assert_eq!(param_count(&vs), RESNET50_NO_TOP);
}

#[test]
fn resnet50_shapes_and_gradients_on_small_inputs() {
    // 64×64: the stem and the three stride-2 stages give ceil(64 / 32) = 2.
    let cfg = ResNetConfig::backbone(HeadInput::Flatten).with_input_size(64, 64);
    assert_eq!(cfg.feature_shape(), [2048, 2, 2]);
    let vs = VarStore::new(Device::Cpu);
    let m = ResNet::new(&vs.root(), &cfg).expect("valid config");
    let x = randn(&[1, 3, 64, 64]);
    assert_eq!(
        tch::no_grad(|| m.forward_t(&x, false)).size(),
        [1, 2048, 2, 2]
    );
    assert_eq!(ResNetConfig::imagenet().feature_shape(), [2048, 7, 7]);
    // Odd size: 35 → 18 → 9 → 9 → 5 → 3 → 2.
    let odd = cfg.clone().with_input_size(35, 35);
    assert_eq!(odd.feature_shape(), [2048, 2, 2]);
    assert_eq!(
        tch::no_grad(|| m.forward_t(&randn(&[1, 3, 35, 35]), false)).size(),
        [1, 2048, 2, 2]
    );

    // Binary study head on 32×32 (feature map 1×1), backward through everything.
    let cfg = ResNetConfig::imagenet()
        .with_input_size(32, 32)
        .with_top(Top::study([8, 4], 0.5, 1e-4));
    let vs = VarStore::new(Device::Cpu);
    let m = ResNet::new(&vs.root(), &cfg).expect("valid config");
    let x = randn(&[2, 3, 32, 32]);
    assert_eq!(m.forward_t(&x, false).size(), [2, 1]);
    assert_all_grads_finite(&vs, &m, &x);
    assert_eq!(m.name(), "resnet50");
    let spec = m.input_spec();
    assert_eq!(spec.preprocessing.channel_order, ChannelOrder::Bgr);
    assert_eq!(m.head().and_then(|h| h.flatten_shape()), Some([2048, 1, 1]));
    let back: ResNetConfig =
        serde_json::from_value(m.config_json().expect("config")).expect("round trip");
    assert_eq!(&back, m.config());

    let err = ResNet::new(
        &vs.root(),
        &ResNetConfig::imagenet().with_input_size(31, 224),
    )
    .expect_err("too small");
    assert!(err.to_string().contains("input_size"), "{err}");
}

// ---- VGG16 -----------------------------------------------------------------------------

#[test]
fn vgg16_d_param_counts_match_keras_applications() {
    let vs = VarStore::new(Device::Cpu);
    let m = Vgg16::new(&vs.root(), &VggConfig::d()).expect("valid config");
    assert_eq!(param_count(&vs), VGG16_WITH_TOP);
    assert_eq!(m.name(), "vgg16");
    // Keras flattens NHWC: the importer needs fc1's input shape to permute its rows.
    assert_eq!(m.head().and_then(|h| h.flatten_shape()), Some([512, 7, 7]));
    let names = vs.variables();
    for name in [
        "block1_conv1.weight",
        "block5_conv3.bias",
        "fc1.weight",
        "fc2.bias",
    ] {
        assert!(names.contains_key(name), "missing {name}");
    }
    assert_eq!(names["predictions.weight"].size(), [1000, 4096]);
    drop(m);

    let vs = VarStore::new(Device::Cpu);
    let cfg = VggConfig::d().with_top(Top::Backbone {
        pooling: HeadInput::GlobalMaxPool,
    });
    Vgg16::new(&vs.root(), &cfg).expect("valid config");
    assert_eq!(param_count(&vs), VGG16_NO_TOP);
}

#[test]
fn vgg16_c_param_counts_match_keras() {
    let vs = VarStore::new(Device::Cpu);
    let m = Vgg16::new(&vs.root(), &VggConfig::c()).expect("valid config");
    assert_eq!(param_count(&vs), keras_count("vgg16_c_224"));
    assert_eq!(m.name(), "vgg16_c");
    assert_eq!(
        vs.variables()["block4_conv3.weight"].size(),
        [512, 512, 1, 1]
    );
    assert!(!vs.variables().contains_key("block1_conv3.weight"));
    drop(m);

    let vs = VarStore::new(Device::Cpu);
    let cfg = VggConfig::c().with_top(Top::Backbone {
        pooling: HeadInput::Flatten,
    });
    Vgg16::new(&vs.root(), &cfg).expect("valid config");
    assert_eq!(param_count(&vs), keras_count("vgg16_c_notop"));
}

#[test]
fn vgg16_shapes_and_gradients_on_small_inputs() {
    let backbone = Top::Backbone {
        pooling: HeadInput::Flatten,
    };
    // 64×64 backbone, configuration D: 64 / 32 = 2.
    let cfg = VggConfig::d().with_input_size(64, 64).with_top(backbone);
    assert_eq!(cfg.feature_shape(), [512, 2, 2]);
    let vs = VarStore::new(Device::Cpu);
    let m = Vgg16::new(&vs.root(), &cfg).expect("valid config");
    let x = randn(&[1, 3, 64, 64]);
    assert_eq!(
        tch::no_grad(|| m.forward_t(&x, false)).size(),
        [1, 512, 2, 2]
    );
    // Odd size: valid pools floor, 63 → 1.
    assert_eq!(
        tch::no_grad(|| m.forward_t(&randn(&[1, 3, 63, 63]), false)).size(),
        [1, 512, 1, 1]
    );

    // Configuration C with the study's head at 32×32, backward through everything.
    let cfg = VggConfig::c()
        .with_input_size(32, 32)
        .with_dropout(0.3)
        .with_l2(1e-4);
    assert_eq!(cfg.variant, VggVariant::C);
    let vs = VarStore::new(Device::Cpu);
    let m = Vgg16::new(&vs.root(), &cfg).expect("valid config");
    let x = randn(&[2, 3, 32, 32]);
    assert_eq!(m.forward_t(&x, false).size(), [2, 1]);
    assert_all_grads_finite(&vs, &m, &x);
    let head = m.head().expect("binary head");
    assert_eq!(head.flatten_shape(), Some([512, 1, 1]));
    assert_eq!(head.layers[1].config().dropout_before, 0.3);
    assert!(head.layers.iter().all(|l| l.config().l2 == 1e-4));
    let spec = m.input_spec();
    assert_eq!(spec.preprocessing.mean, df_models::spec::CAFFE_BGR_MEAN);
    let back: VggConfig =
        serde_json::from_value(m.config_json().expect("config")).expect("round trip");
    assert_eq!(&back, m.config());

    // ImageNet top with another class count and input size, built from the feature map.
    let cfg = VggConfig::d()
        .with_input_size(32, 32)
        .with_top(Top::ImageNet { classes: 3 });
    let vs = VarStore::new(Device::Cpu);
    let m = Vgg16::new(&vs.root(), &cfg).expect("valid config");
    assert_eq!(
        tch::no_grad(|| m.forward_t(&randn(&[1, 3, 32, 32]), false)).size(),
        [1, 3]
    );
    assert_eq!(vs.variables()["fc1.weight"].size(), [4096, 512]);

    let err =
        Vgg16::new(&vs.root(), &VggConfig::c().with_input_size(16, 16)).expect_err("too small");
    assert!(err.to_string().contains("vgg16_c"), "{err}");
    let bad = VggConfig::d()
        .with_input_size(32, 32)
        .with_top(Top::ImageNet { classes: 0 });
    let vs = VarStore::new(Device::Cpu);
    assert!(Vgg16::new(&vs.root(), &bad).is_err());
}
