//! EfficientNet-B0…B7 and Inception-ResNet-v2 against Keras 3: parameter counts,
//! EfficientNet-B0 outputs with Keras' weights, forward/backward on the CPU.
//!
//! Parameter counts are Keras 3.15's `keras.applications` figures from
//! `../shared/reference/keras_applications_params.json` (copied here: the default test
//! command runs without `../shared`). Outputs come from `scripts/fixtures/keras_blocks_b.py`
//! (run `make fixtures`).

use std::collections::HashMap;
use std::path::PathBuf;

use df_layers::util::{param_count, params_without_finite_grad, ParamCount};
use df_layers::{CorrectPad, HeadInput};
use df_models::efficientnet::EFFICIENTNET_SCALING;
use df_models::{
    EfficientNet, EfficientNetConfig, Error, InceptionResNetV2, InceptionResNetV2Config, Model,
    Preprocessing, Top,
};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Keras' `(total, trainable)` with the ImageNet top and without a top, B0…B7, from
/// `../shared/reference/keras_applications_params.json`. Keras' totals include the 7
/// non-trainable values of the input `Normalization` layer, which these models leave to
/// the data preprocessing.
const KERAS_EFFICIENTNET: [((i64, i64), (i64, i64)); 8] = [
    ((5_330_571, 5_288_548), (4_049_571, 4_007_548)),
    ((7_856_239, 7_794_184), (6_575_239, 6_513_184)),
    ((9_177_569, 9_109_994), (7_768_569, 7_700_994)),
    ((12_320_535, 12_233_232), (10_783_535, 10_696_232)),
    ((19_466_823, 19_341_616), (17_673_823, 17_548_616)),
    ((30_562_527, 30_389_784), (28_513_527, 28_340_784)),
    ((43_265_143, 43_040_704), (40_960_143, 40_735_704)),
    ((66_658_687, 66_347_960), (64_097_687, 63_786_960)),
];
/// The channels of Keras' no-top output, B0…B7 (same file).
const KERAS_EFFICIENTNET_CHANNELS: [i64; 8] = [1280, 1280, 1408, 1536, 1792, 2048, 2304, 2560];
/// Values of Keras' EfficientNet input `Normalization` layer (mean 3, variance 3, count 1).
const KERAS_NORMALIZATION_VALUES: i64 = 7;
/// InceptionResNetV2 `(total, trainable)` with and without the ImageNet top (same file).
const KERAS_INCEPTION_RESNET_V2: ((i64, i64), (i64, i64)) =
    ((55_873_736, 55_813_192), (54_336_736, 54_276_192));

fn count_of(p: &dyn Fn(&nn::Path<'_>)) -> ParamCount {
    let vs = nn::VarStore::new(Device::Cpu);
    p(&vs.root());
    param_count(&vs)
}

fn backbone() -> Top {
    Top::Backbone {
        pooling: HeadInput::Flatten,
    }
}

#[test]
fn efficientnet_param_counts_match_keras() {
    for (i, &((with_total, with_trainable), (no_total, no_trainable))) in
        KERAS_EFFICIENTNET.iter().enumerate()
    {
        let cfg = EfficientNetConfig::preset(i).expect("preset");
        assert_eq!(cfg.top_channels(), KERAS_EFFICIENTNET_CHANNELS[i], "B{i}");
        let with_top = count_of(&|p| {
            EfficientNet::new(p, &cfg).expect("builds");
        });
        assert_eq!(
            with_top,
            ParamCount {
                total: with_total - KERAS_NORMALIZATION_VALUES,
                trainable: with_trainable
            },
            "B{i} with the ImageNet top"
        );
        let no_top = count_of(&|p| {
            EfficientNet::new(p, &cfg.clone().with_top(backbone())).expect("builds");
        });
        assert_eq!(
            no_top,
            ParamCount {
                total: no_total - KERAS_NORMALIZATION_VALUES,
                trainable: no_trainable
            },
            "B{i} without top"
        );
    }
}

#[test]
fn inception_resnet_v2_param_counts_match_keras() {
    let ((with_total, with_trainable), (no_total, no_trainable)) = KERAS_INCEPTION_RESNET_V2;
    let cfg = InceptionResNetV2Config::default();
    let with_top = count_of(&|p| {
        InceptionResNetV2::new(p, &cfg).expect("builds");
    });
    assert_eq!(
        with_top,
        ParamCount {
            total: with_total,
            trainable: with_trainable
        }
    );
    let no_top = count_of(&|p| {
        InceptionResNetV2::new(p, &cfg.clone().with_top(backbone())).expect("builds");
    });
    assert_eq!(
        no_top,
        ParamCount {
            total: no_total,
            trainable: no_trainable
        }
    );
}

#[test]
fn efficientnet_presets_follow_keras_tables() {
    let sizes = [224, 240, 260, 300, 380, 456, 528, 600];
    let presets = [
        EfficientNetConfig::b0(),
        EfficientNetConfig::b1(),
        EfficientNetConfig::b2(),
        EfficientNetConfig::b3(),
        EfficientNetConfig::b4(),
        EfficientNetConfig::b5(),
        EfficientNetConfig::b6(),
        EfficientNetConfig::b7(),
    ];
    for (i, cfg) in presets.iter().enumerate() {
        assert_eq!(cfg.name, format!("efficientnet_b{i}"));
        assert_eq!(cfg.input_size, [sizes[i]; 2]);
        assert_eq!(cfg, &EfficientNetConfig::preset(i).expect("preset"));
        assert_eq!(EFFICIENTNET_SCALING[i].resolution, sizes[i]);
    }
    assert!(EfficientNetConfig::preset(8).is_err());
    assert_eq!(EfficientNetConfig::default(), EfficientNetConfig::b0());

    // B0: 16 blocks named as Keras names them, drop-connect 0.2 * b / 16.
    let blocks = EfficientNetConfig::b0().block_configs();
    let names: Vec<&str> = blocks.iter().map(|b| b.prefix.as_str()).collect();
    assert_eq!(
        names,
        [
            "block1a_", "block2a_", "block2b_", "block3a_", "block3b_", "block4a_", "block4b_",
            "block4c_", "block5a_", "block5b_", "block5c_", "block6a_", "block6b_", "block6c_",
            "block6d_", "block7a_"
        ]
    );
    for (b, block) in blocks.iter().enumerate() {
        assert!((block.drop_rate - 0.2 * b as f64 / 16.0).abs() < 1e-12);
    }
    // B7 (Keras: 55 blocks; round_filters(32) = 64, round_filters(1280) = 2560).
    let b7 = EfficientNetConfig::b7();
    assert_eq!(b7.block_configs().len(), 55);
    assert_eq!(b7.stem_channels(), 64);
    assert_eq!(b7.round_repeats(4), 13);
    // B2: 1.1 * 1280 = 1408; B4: 1.4 * 24 = 33.6 -> 32, B4 stage 2 width.
    assert_eq!(EfficientNetConfig::b4().round_filters(24), 32);
    assert_eq!(EfficientNetConfig::b3().round_filters(40), 48);
}

#[test]
fn feature_shapes() {
    assert_eq!(EfficientNetConfig::b0().feature_shape(), [1280, 7, 7]);
    assert_eq!(EfficientNetConfig::b7().feature_shape(), [2560, 19, 19]);
    let odd = EfficientNetConfig::b0().with_input_size(65, 65);
    assert_eq!(odd.feature_shape(), [1280, 3, 3]);
    assert_eq!(
        odd.with_padding(CorrectPad::UnknownSize).feature_shape(),
        [1280, 2, 2]
    );
    let irv2 = InceptionResNetV2Config::default();
    assert_eq!(irv2.feature_shape(), [1536, 8, 8]);
    assert_eq!(irv2.with_input_size(75, 107).feature_shape(), [1536, 1, 2]);
}

// ------------------------------------------------------------------- Keras outputs

mod common;

fn fixture(name: &str) -> PathBuf {
    common::fixture("keras_blocks_b", name)
}

/// The tensors of a parity case written by `keras_blocks_b.py`, by name.
fn load_case(case: &str) -> HashMap<String, Tensor> {
    let text = std::fs::read_to_string(fixture(&format!("{case}.json"))).expect("readable");
    let index: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let bytes = std::fs::read(fixture(&format!("{case}.bin"))).expect("readable");
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut tensors = HashMap::new();
    for entry in index["tensors"].as_array().expect("tensors") {
        let shape: Vec<i64> = entry["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_i64().expect("dim"))
            .collect();
        let offset = entry["offset"].as_u64().expect("offset") as usize;
        let numel = shape.iter().product::<i64>() as usize;
        let t = Tensor::from_slice(&values[offset..offset + numel]).view(shape.as_slice());
        tensors.insert(entry["name"].as_str().expect("name").to_owned(), t);
    }
    tensors
}

/// Copies every weight into `vs`, requiring an exact match of names and shapes.
fn load_weights(vs: &nn::VarStore, tensors: &HashMap<String, Tensor>) {
    let mut vars = vs.variables();
    let mut unused = Vec::new();
    for (name, src) in tensors.iter().filter(|(n, _)| !n.starts_with("__")) {
        match vars.remove(name) {
            Some(mut var) => {
                assert_eq!(var.size(), src.size(), "shape of {name}");
                tch::no_grad(|| var.copy_(src));
            }
            None => unused.push(name.clone()),
        }
    }
    let missing: Vec<_> = vars.into_keys().collect();
    assert!(
        unused.is_empty() && missing.is_empty(),
        "Keras weights without a variable: {unused:?}; variables without a Keras weight: {missing:?}"
    );
}

#[test]
fn efficientnet_b0_matches_keras() {
    // Keras EfficientNetB0(include_top=False) on 65×65 inputs, built for that size and for
    // an unknown size (the two `correct_pad` behaviours); inputs after Keras' own
    // Rescaling + Normalization.
    for (case, padding, side) in [
        ("efficientnet_b0_known_65", CorrectPad::KnownSize, 3),
        ("efficientnet_b0_unknown_65", CorrectPad::UnknownSize, 2),
    ] {
        let cfg = EfficientNetConfig::b0()
            .with_top(backbone())
            .with_input_size(65, 65)
            .with_padding(padding);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = EfficientNet::new(&vs.root(), &cfg).expect("builds");
        let tensors = load_case(case);
        load_weights(&vs, &tensors);
        let ys = model.forward_t(&tensors["__input__"], false);
        let want = &tensors["__output__"];
        assert_eq!(ys.size(), [2, 1280, side, side], "{case}");
        assert_eq!(want.size(), ys.size(), "{case}");
        let scale = f64::try_from(want.abs().max()).expect("scalar").max(1.0);
        let diff = f64::try_from((&ys - want).abs().max()).expect("scalar");
        assert!(
            diff <= 1e-4 * scale,
            "{case}: max |rust - keras| = {diff:e} (scale {scale})"
        );
    }
}

// ------------------------------------------------------------- forward and backward

fn study_top() -> Top {
    Top::study([32, 16], 0.3, 1e-3)
}

fn assert_forward_backward(vs: &nn::VarStore, model: &dyn Model, input: [i64; 4]) {
    let xs = Tensor::randn(input, (Kind::Float, Device::Cpu));
    let ys = model.forward_t(&xs, true);
    assert_eq!(
        ys.size(),
        [input[0], 1],
        "{}: one logit per image",
        model.name()
    );
    let loss = ys.binary_cross_entropy_with_logits::<Tensor>(
        &Tensor::ones([input[0], 1], (Kind::Float, Device::Cpu)),
        None,
        None,
        tch::Reduction::Mean,
    ) + model.l2_penalty();
    let bad = params_without_finite_grad(vs, &loss);
    assert!(
        bad.is_empty(),
        "{}: no finite gradient for {bad:?}",
        model.name()
    );
}

#[test]
fn efficientnet_b0_forward_backward() {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = EfficientNetConfig::b0()
        .with_input_size(64, 64)
        .with_top(study_top());
    let model = EfficientNet::new(&vs.root(), &cfg).expect("builds");
    assert_forward_backward(&vs, &model, [2, 3, 64, 64]);
    assert_eq!(
        model
            .features_t(
                &Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
                false
            )
            .size(),
        [1, 1280, 2, 2]
    );

    // The Model trait: metadata, head, L2, and a configuration that rebuilds the model.
    assert_eq!(model.name(), "efficientnet_b0");
    let spec = model.input_spec();
    assert_eq!((spec.height, spec.width), (64, 64));
    assert_eq!(spec.preprocessing, Preprocessing::imagenet());
    let head = model.head().expect("binary head");
    assert_eq!(head.flatten_shape(), Some([1280, 2, 2]));
    assert_eq!(head.l2_terms().len(), 3);
    assert!(f64::try_from(model.l2_penalty()).expect("scalar") > 0.0);
    let back: EfficientNetConfig =
        serde_json::from_value(model.config_json().expect("config")).expect("config round-trips");
    assert_eq!(&back, model.config());
}

#[test]
fn efficientnet_tops() {
    let xs = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    let cases = [
        (Top::ImageNet { classes: 1000 }, vec![2, 1000]),
        (backbone(), vec![2, 1280, 2, 2]),
        (
            Top::Backbone {
                pooling: HeadInput::GlobalAvgPool,
            },
            vec![2, 1280],
        ),
        (
            Top::Backbone {
                pooling: HeadInput::GlobalMaxPool,
            },
            vec![2, 1280],
        ),
        (Top::binary_pooled(), vec![2, 1]),
    ];
    for (top, shape) in cases {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = EfficientNetConfig::b0()
            .with_input_size(64, 64)
            .with_top(top.clone());
        let model = EfficientNet::new(&vs.root(), &cfg).expect("builds");
        assert_eq!(model.forward_t(&xs, false).size(), shape, "{top:?}");
        // One meaning in every family: the top's dense layers, none for a backbone.
        assert_eq!(model.head().is_some(), !matches!(top, Top::Backbone { .. }));
    }
    // Dropout and L2 reach the binary head; the ImageNet top's dropout is `dropout_rate`.
    let cfg = EfficientNetConfig::b3()
        .with_top(study_top())
        .with_dropout(0.45)
        .with_l2(0.01);
    assert_eq!(cfg.dropout_rate, 0.45);
    let Top::Binary { layers, .. } = &cfg.top else {
        panic!("binary top")
    };
    assert_eq!(layers[1].dropout_before, 0.45);
    assert!(layers.iter().all(|l| l.l2 == 0.01));
}

#[test]
fn efficientnet_drop_connect_only_in_train_mode() {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = EfficientNetConfig::b0()
        .with_input_size(32, 32)
        .with_top(backbone())
        .with_drop_connect(0.5);
    let model = EfficientNet::new(&vs.root(), &cfg).expect("builds");
    let xs = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let eval = model.forward_t(&xs, false);
    let diff = |a: &Tensor, b: &Tensor| f64::try_from((a - b).abs().max()).expect("scalar");
    assert_eq!(diff(&eval, &model.forward_t(&xs, false)), 0.0);
    tch::manual_seed(1);
    let train_a = model.forward_t(&xs, true);
    tch::manual_seed(2);
    let train_b = model.forward_t(&xs, true);
    assert!(diff(&train_a, &train_b) > 0.0, "drop-path draws differ");
}

#[test]
fn inception_resnet_v2_forward_backward() {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = InceptionResNetV2Config::default()
        .with_input_size(75, 75)
        .with_top(study_top());
    let model = InceptionResNetV2::new(&vs.root(), &cfg).expect("builds");
    assert_forward_backward(&vs, &model, [2, 3, 75, 75]);
    assert_eq!(model.name(), "inception_resnet_v2");
    let spec = model.input_spec();
    assert_eq!((spec.height, spec.width), (75, 75));
    assert_eq!(spec.preprocessing, Preprocessing::tf());
    assert_eq!(
        model.head().expect("binary head").flatten_shape(),
        Some([1536, 1, 1])
    );
    let back: InceptionResNetV2Config =
        serde_json::from_value(model.config_json().expect("config")).expect("config round-trips");
    assert_eq!(&back, model.config());

    // Keras' 203 auto-named conv2d_bn units, each a conv and a scale-free batch norm here.
    let names = model.auto_named_convs();
    assert_eq!(names.len(), 203);
    let vars = vs.variables();
    for name in &names {
        assert_eq!(vars[&format!("{name}.weight")].dim(), 4, "{name}");
        assert!(vars.contains_key(&format!("{name}_bn.bias")), "{name}");
        assert!(
            !vars.contains_key(&format!("{name}_bn.weight")),
            "{name}: BN scale=False"
        );
    }
    for named in [
        "block35_10_conv.bias",
        "block17_20_conv.bias",
        "block8_10_conv.bias",
        "conv_7b.weight",
        "conv_7b_bn.bias",
    ] {
        assert!(vars.contains_key(named), "{named}");
    }
}

#[test]
fn inception_resnet_v2_imagenet_top_shape() {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = InceptionResNetV2Config::default().with_input_size(75, 75);
    let model = InceptionResNetV2::new(&vs.root(), &cfg).expect("builds");
    let ys = tch::no_grad(|| {
        model.forward_t(
            &Tensor::randn([1, 3, 75, 75], (Kind::Float, Device::Cpu)),
            false,
        )
    });
    assert_eq!(ys.size(), [1, 1000]);
    // The ImageNet classifier is the head, as in every family.
    let head = model.head().expect("the classifier");
    assert_eq!(
        head.variable_names(),
        ["predictions.weight", "predictions.bias"]
    );
}

fn option_of<T: std::fmt::Debug>(r: Result<T, Error>) -> &'static str {
    match r {
        Err(Error::InvalidConfig { option, .. }) => option,
        other => panic!("expected an invalid configuration, got {other:?}"),
    }
}

#[test]
fn invalid_configs_are_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let p = vs.root();
    let b0 = EfficientNetConfig::b0();
    let cases = [
        (b0.clone().with_input_size(31, 64), "input_size"),
        (
            EfficientNetConfig {
                width_coefficient: 0.0,
                ..b0.clone()
            },
            "width_coefficient",
        ),
        (
            EfficientNetConfig {
                depth_coefficient: f64::NAN,
                ..b0.clone()
            },
            "depth_coefficient",
        ),
        (b0.clone().with_drop_connect(1.0), "drop_connect_rate"),
        (
            EfficientNetConfig {
                dropout_rate: -0.5,
                ..b0.clone()
            },
            "dropout_rate",
        ),
        (
            EfficientNetConfig {
                depth_divisor: 0,
                ..b0.clone()
            },
            "depth_divisor",
        ),
        (
            EfficientNetConfig {
                stages: vec![],
                ..b0.clone()
            },
            "stages",
        ),
    ];
    for (cfg, option) in cases {
        assert_eq!(option_of(EfficientNet::new(&p, &cfg)), option);
    }
    assert_eq!(option_of(EfficientNetConfig::preset(9)), "preset");
    let irv2 = InceptionResNetV2Config::default();
    assert_eq!(
        option_of(InceptionResNetV2::new(
            &p,
            &irv2.clone().with_input_size(74, 299)
        )),
        "input_size"
    );
    let no_block8 = InceptionResNetV2Config {
        repeats: [1, 1, 0],
        ..irv2
    };
    assert_eq!(option_of(InceptionResNetV2::new(&p, &no_block8)), "repeats");
    // A binary head with an invalid layer is the layer's error.
    let bad_head = b0.with_top(Top::study([0, 8], 0.5, 0.0));
    assert!(matches!(
        EfficientNet::new(&p, &bad_head),
        Err(Error::Layers(_))
    ));
}
