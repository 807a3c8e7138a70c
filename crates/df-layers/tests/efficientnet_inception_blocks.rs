//! EfficientNet (`SqueezeExcite`, `MbConv`) and Inception-ResNet-v2 (`Stem`,
//! `InceptionResnetA/B/C`, `ReductionA/B`) blocks against Keras 3.
//!
//! The references come from `scripts/fixtures/keras_blocks_b.py` (run `make fixtures`):
//! Keras' parameter counts per block, and for the parity cases Keras' random weights
//! (already in this crate's layout and names), an input and Keras' inference output.

use std::collections::HashMap;
use std::path::PathBuf;

use df_layers::util::{param_count, params_without_finite_grad, ParamCount};
use df_layers::{
    CorrectPad, Error, InceptionResnetA, InceptionResnetB, InceptionResnetBlockConfig,
    InceptionResnetC, MbConv, MbConvConfig, ReductionA, ReductionB, ReductionConfig, SqueezeExcite,
    SqueezeExciteConfig, Stem, StemConfig,
};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

mod common;

fn fixture(name: &str) -> PathBuf {
    common::fixture("keras_blocks_b", name)
}

fn read_json(name: &str) -> serde_json::Value {
    common::fixture_json("keras_blocks_b", name)
}

/// Keras' parameter count of a case.
fn keras_params(case: &str) -> ParamCount {
    let all = read_json("params.json");
    let entry = &all[case];
    assert!(entry.is_object(), "no case {case} in params.json");
    ParamCount {
        total: entry["total"].as_i64().expect("total"),
        trainable: entry["trainable"].as_i64().expect("trainable"),
    }
}

/// A parity case: tensors by name, and the names of the auto-named conv2d_bn units.
struct Case {
    tensors: HashMap<String, Tensor>,
    auto_named_convs: Option<Vec<String>>,
}

fn load_case(case: &str) -> Case {
    let index = read_json(&format!("{case}.json"));
    let bytes = std::fs::read(fixture(&format!("{case}.bin"))).expect("fixture is readable");
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut tensors = HashMap::new();
    for entry in index["tensors"].as_array().expect("tensors") {
        let name = entry["name"].as_str().expect("name").to_owned();
        let shape: Vec<i64> = entry["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_i64().expect("dim"))
            .collect();
        let offset = entry["offset"].as_u64().expect("offset") as usize;
        let numel: i64 = shape.iter().product();
        let data = &values[offset..offset + numel as usize];
        tensors.insert(name, Tensor::from_slice(data).view(shape.as_slice()));
    }
    let auto_named_convs = index["auto_named_convs"].as_array().map(|names| {
        names
            .iter()
            .map(|n| n.as_str().expect("name").to_owned())
            .collect()
    });
    Case {
        tensors,
        auto_named_convs,
    }
}

/// Copies Keras' weights into `vs`; every variable must be matched, with its shape, and
/// every Keras weight used.
fn load_weights(vs: &nn::VarStore, case: &Case) {
    let mut vars = vs.variables();
    let mut keras: Vec<&String> = case
        .tensors
        .keys()
        .filter(|n| !n.starts_with("__"))
        .collect();
    keras.sort();
    let mut unused = Vec::new();
    for name in keras {
        match vars.remove(name) {
            Some(mut var) => {
                let src = &case.tensors[name];
                assert_eq!(var.size(), src.size(), "shape of {name}");
                tch::no_grad(|| var.copy_(src));
            }
            None => unused.push(name.clone()),
        }
    }
    let mut missing: Vec<_> = vars.keys().cloned().collect();
    missing.sort();
    assert!(
        unused.is_empty() && missing.is_empty(),
        "Keras weights without a variable: {unused:?}; variables without a Keras weight: {missing:?}"
    );
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.size(), want.size(), "{what}: shape");
    let scale = f64::try_from(want.abs().max()).expect("scalar").max(1.0);
    let diff = f64::try_from((got - want).abs().max()).expect("scalar");
    assert!(
        diff <= 1e-4 * scale,
        "{what}: max |rust - keras| = {diff:e} (output scale {scale})"
    );
}

/// Loads the case's weights into `vs`, checks the parameter count and that the eval-mode
/// output equals Keras'.
fn check_parity(case_name: &str, vs: &nn::VarStore, block: &dyn ModuleT) {
    assert_eq!(
        param_count(vs),
        keras_params(case_name),
        "{case_name}: params"
    );
    let case = load_case(case_name);
    load_weights(vs, &case);
    let ys = block.forward_t(&case.tensors["__input__"], false);
    assert_close(&ys, &case.tensors["__output__"], case_name);
}

fn rand_input(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

fn assert_finite_grads(vs: &nn::VarStore, block: &dyn ModuleT, input: &[i64], train: bool) {
    let ys = block.forward_t(&rand_input(input), train);
    let loss = (ys.square()).mean(Kind::Float);
    let bad = params_without_finite_grad(vs, &loss);
    assert!(
        bad.is_empty(),
        "parameters without a finite gradient: {bad:?}"
    );
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from((a - b).abs().max()).expect("scalar")
}

/// Eval mode is deterministic; train mode (batch statistics) differs from it.
fn assert_train_differs(block: &dyn ModuleT, input: &[i64]) {
    let xs = rand_input(input);
    let eval1 = block.forward_t(&xs, false);
    let eval2 = block.forward_t(&xs, false);
    assert_eq!(
        max_abs_diff(&eval1, &eval2),
        0.0,
        "eval mode is deterministic"
    );
    let train = block.forward_t(&xs, true);
    assert!(
        max_abs_diff(&eval1, &train) > 1e-3,
        "train differs from eval"
    );
}

// ------------------------------------------------------------------------ EfficientNet

fn mbconv(cfg: &MbConvConfig) -> (nn::VarStore, MbConv) {
    let vs = nn::VarStore::new(Device::Cpu);
    let block = MbConv::new(&vs.root(), cfg).expect("valid config");
    (vs, block)
}

/// The parity cases: (fixture case, block config) as `keras_blocks_b.py` builds them.
fn mbconv_cases() -> Vec<(&'static str, MbConvConfig)> {
    vec![
        (
            "mbconv_block1a",
            MbConvConfig::new(32, 16, 3, 1, 1).with_prefix("block1a_"),
        ),
        (
            "mbconv_block2a_even",
            MbConvConfig::new(16, 24, 3, 2, 6).with_prefix("block2a_"),
        ),
        (
            "mbconv_block2a_odd",
            MbConvConfig::new(16, 24, 3, 2, 6).with_prefix("block2a_"),
        ),
        (
            "mbconv_block3a_odd",
            MbConvConfig::new(24, 40, 5, 2, 6).with_prefix("block3a_"),
        ),
        (
            "mbconv_block3a_odd_unknown",
            MbConvConfig::new(24, 40, 5, 2, 6)
                .with_prefix("block3a_")
                .with_padding(CorrectPad::UnknownSize),
        ),
        (
            "mbconv_block2b_skip",
            MbConvConfig::new(24, 24, 3, 1, 6)
                .with_prefix("block2b_")
                .with_drop_rate(0.2),
        ),
        (
            "mbconv_no_se",
            MbConvConfig::new(24, 24, 3, 1, 4)
                .with_prefix("block_")
                .with_se_ratio(0.0),
        ),
    ]
}

#[test]
fn mbconv_matches_keras() {
    for (case, cfg) in mbconv_cases() {
        let (vs, block) = mbconv(&cfg);
        check_parity(case, &vs, &block);
    }
}

#[test]
fn mbconv_padding_modes() {
    // Keras' `correct_pad` with a known size is TF "same" (ceil(n / 2) outputs); with an
    // unknown size it pads (k/2 - 1, k/2) whatever n, so odd sizes give floor(n / 2) (the
    // parity cases `mbconv_block3a_odd` and `_unknown` pin both to Keras' outputs).
    assert_eq!(CorrectPad::KnownSize.amounts(10, 5), (1, 2));
    assert_eq!(CorrectPad::UnknownSize.amounts(10, 5), (1, 2));
    assert_eq!(CorrectPad::KnownSize.amounts(9, 5), (2, 2));
    assert_eq!(CorrectPad::UnknownSize.amounts(9, 5), (1, 2));
    assert_eq!(CorrectPad::KnownSize.amounts(9, 3), (1, 1));
    assert_eq!(CorrectPad::UnknownSize.amounts(9, 3), (0, 1));
    for (padding, odd_out) in [(CorrectPad::KnownSize, 5), (CorrectPad::UnknownSize, 4)] {
        let cfg = MbConvConfig::new(24, 40, 5, 2, 6).with_padding(padding);
        let (_vs, block) = mbconv(&cfg);
        let ys = block.forward_t(&rand_input(&[1, 24, 9, 10]), false);
        assert_eq!(ys.size(), [1, 40, odd_out, 5], "{padding:?}");
        assert_eq!(block.output_size(9), odd_out);
        assert_eq!(block.output_size(10), 5);
    }
}

#[test]
fn mbconv_b7_widest_block_param_count() {
    let (vs, _block) = mbconv(&MbConvConfig::new(384, 640, 3, 1, 6).with_prefix("b7_"));
    assert_eq!(param_count(&vs), keras_params("mbconv_b7_block7a"));
}

#[test]
fn squeeze_excite_matches_keras() {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = SqueezeExciteConfig::new(96, 4).with_prefix("block2a_");
    let se = SqueezeExcite::new(&vs.root(), &cfg).expect("valid config");
    check_parity("se_96_4", &vs, &se);
    assert_finite_grads(&vs, &se, &[2, 96, 5, 5], true);
}

#[test]
fn mbconv_shapes_and_gradients() {
    for (_, cfg) in mbconv_cases() {
        let (vs, block) = mbconv(&cfg);
        let ys = block.forward_t(&rand_input(&[2, cfg.in_channels, 11, 10]), true);
        let side = |n: i64| match (cfg.stride, cfg.padding) {
            (2, CorrectPad::UnknownSize) => n / 2,
            (s, _) => (n + s - 1) / s,
        };
        assert_eq!(ys.size(), [2, cfg.out_channels, side(11), side(10)]);
        assert_eq!(block.output_size(11), side(11));
        assert_finite_grads(&vs, &block, &[2, cfg.in_channels, 9, 9], true);
        assert_train_differs(&block, &[4, cfg.in_channels, 6, 6]);
    }
}

#[test]
fn mbconv_drop_path_only_in_train_mode() {
    tch::manual_seed(7);
    let cfg = MbConvConfig::new(8, 8, 3, 1, 2).with_drop_rate(0.5);
    assert!(cfg.has_skip());
    let (_vs, block) = mbconv(&cfg);
    let xs = rand_input(&[32, 8, 5, 5]);
    let is_input = |ys: &Tensor| -> Vec<bool> {
        (0..32)
            .map(|i| max_abs_diff(&ys.get(i), &xs.get(i)) == 0.0)
            .collect()
    };
    // Train: a dropped sample's residual branch is zero, so its output is its input.
    let train = is_input(&block.forward_t(&xs, true));
    let dropped = train.iter().filter(|&&d| d).count();
    assert!(
        (4..=28).contains(&dropped),
        "{dropped} of 32 samples dropped at rate 0.5"
    );
    // Eval: no sample is dropped, and two passes agree.
    let eval = block.forward_t(&xs, false);
    assert!(is_input(&eval).iter().all(|&d| !d));
    assert_eq!(max_abs_diff(&eval, &block.forward_t(&xs, false)), 0.0);
}

#[test]
fn mbconv_skip_rule() {
    assert!(MbConvConfig::new(16, 16, 3, 1, 6).has_skip());
    assert!(!MbConvConfig::new(16, 24, 3, 1, 6).has_skip());
    assert!(!MbConvConfig::new(16, 16, 3, 2, 6).has_skip());
    assert!(!MbConvConfig::new(16, 16, 3, 1, 6)
        .with_id_skip(false)
        .has_skip());
    // Keras: max(1, int(filters_in * se_ratio)).
    assert_eq!(
        MbConvConfig::new(16, 24, 3, 1, 6).squeeze_channels(),
        Some(4)
    );
    assert_eq!(
        MbConvConfig::new(3, 24, 3, 1, 6).squeeze_channels(),
        Some(1)
    );
    assert_eq!(
        MbConvConfig::new(16, 24, 3, 1, 6)
            .with_se_ratio(0.0)
            .squeeze_channels(),
        None
    );
}

fn invalid_option(result: Result<MbConv, Error>) -> &'static str {
    match result {
        Err(Error::InvalidConfig { option, .. }) => option,
        other => panic!("expected an invalid-config error, got {other:?}"),
    }
}

#[test]
fn mbconv_rejects_invalid_configs() {
    let vs = nn::VarStore::new(Device::Cpu);
    let base = MbConvConfig::new(16, 24, 3, 1, 6);
    let cases = [
        (
            MbConvConfig {
                in_channels: 0,
                ..base.clone()
            },
            "in_channels",
        ),
        (
            MbConvConfig {
                kernel: 0,
                ..base.clone()
            },
            "kernel",
        ),
        (
            MbConvConfig {
                expand_ratio: 0,
                ..base.clone()
            },
            "expand_ratio",
        ),
        (base.clone().with_se_ratio(1.5), "se_ratio"),
        (base.clone().with_drop_rate(1.0), "drop_rate"),
        (base.clone().with_drop_rate(-0.1), "drop_rate"),
    ];
    for (cfg, option) in cases {
        assert_eq!(invalid_option(MbConv::new(&vs.root(), &cfg)), option);
    }
    let se = SqueezeExcite::new(&vs.root(), &SqueezeExciteConfig::new(8, 0));
    assert!(matches!(se, Err(Error::InvalidConfig { .. })));
}

// ---------------------------------------------------------------- Inception-ResNet-v2

#[test]
fn stem_matches_keras() {
    let vs = nn::VarStore::new(Device::Cpu);
    let stem = Stem::new(&vs.root(), &StemConfig::default()).expect("valid config");
    assert_eq!(
        Some(stem.auto_named_convs()),
        load_case("stem").auto_named_convs
    );
    check_parity("stem", &vs, &stem);
    assert_eq!(param_count(&vs), keras_params("stem_params_299"));
    let ys = stem.forward_t(&rand_input(&[1, 3, 299, 299]), false);
    assert_eq!(ys.size(), [1, Stem::OUT_CHANNELS, 35, 35]);
}

#[test]
fn stem_gradients_and_modes() {
    let vs = nn::VarStore::new(Device::Cpu);
    let stem = Stem::new(&vs.root(), &StemConfig::default()).expect("valid config");
    assert_finite_grads(&vs, &stem, &[2, 3, 75, 75], true);
    assert_train_differs(&stem, &[2, 3, 75, 75]);
}

/// Builds a residual block of each kind with `cfg`.
fn residual(kind: &str, vs: &nn::VarStore, cfg: &InceptionResnetBlockConfig) -> Box<dyn Block> {
    let p = vs.root();
    match kind {
        "block35" => Box::new(InceptionResnetA::new(&p, cfg).expect("valid config")),
        "block17" => Box::new(InceptionResnetB::new(&p, cfg).expect("valid config")),
        _ => Box::new(InceptionResnetC::new(&p, cfg).expect("valid config")),
    }
}

/// What the tests use of a residual block.
trait Block: ModuleT {
    fn auto_named(&self) -> Vec<String>;
}
impl Block for InceptionResnetA {
    fn auto_named(&self) -> Vec<String> {
        self.auto_named_convs()
    }
}
impl Block for InceptionResnetB {
    fn auto_named(&self) -> Vec<String> {
        self.auto_named_convs()
    }
}
impl Block for InceptionResnetC {
    fn auto_named(&self) -> Vec<String> {
        self.auto_named_convs()
    }
}

fn keras_block_config(kind: &str, index: usize) -> InceptionResnetBlockConfig {
    match kind {
        "block35" => InceptionResnetBlockConfig::block35(index),
        "block17" => InceptionResnetBlockConfig::block17(index),
        _ => InceptionResnetBlockConfig::block8(index),
    }
}

#[test]
fn residual_blocks_match_keras() {
    for kind in ["block35", "block17", "block8"] {
        // Real widths: parameter counts.
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = keras_block_config(kind, 1);
        let block = residual(kind, &vs, &cfg);
        assert_eq!(
            param_count(&vs),
            keras_params(&format!("{kind}_params")),
            "{kind}"
        );
        let ys = block.forward_t(&rand_input(&[1, cfg.in_channels, 5, 5]), false);
        assert_eq!(ys.size(), [1, cfg.in_channels, 5, 5]);
        // Narrow input: outputs.
        let vs = nn::VarStore::new(Device::Cpu);
        let block = residual(kind, &vs, &keras_block_config(kind, 2).with_in_channels(40));
        let case = format!("{kind}_parity");
        assert_eq!(
            Some(block.auto_named()),
            load_case(&case).auto_named_convs,
            "{kind}"
        );
        check_parity(&case, &vs, block.as_ref());
    }
    // The model's last block: scale 1, no activation.
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = InceptionResnetBlockConfig::block8(10)
        .with_in_channels(24)
        .with_scale(1.0)
        .with_activation(df_layers::Activation::Linear);
    let block = residual("block8", &vs, &cfg);
    check_parity("block8_10_parity", &vs, block.as_ref());
}

#[test]
fn residual_blocks_gradients_and_modes() {
    for kind in ["block35", "block17", "block8"] {
        let vs = nn::VarStore::new(Device::Cpu);
        let block = residual(kind, &vs, &keras_block_config(kind, 1).with_in_channels(16));
        assert_finite_grads(&vs, block.as_ref(), &[2, 16, 6, 6], true);
        assert_train_differs(block.as_ref(), &[2, 16, 6, 6]);
    }
}

#[test]
fn reductions_match_keras() {
    let vs = nn::VarStore::new(Device::Cpu);
    let a = ReductionA::new(&vs.root(), &ReductionConfig::mixed_6a()).expect("valid config");
    assert_eq!(param_count(&vs), keras_params("mixed_6a_params"));
    assert_eq!(a.out_channels(), 1088);
    let ys = a.forward_t(&rand_input(&[1, 320, 35, 35]), false);
    assert_eq!(ys.size(), [1, 1088, 17, 17]);

    let vs = nn::VarStore::new(Device::Cpu);
    let b = ReductionB::new(&vs.root(), &ReductionConfig::mixed_7a()).expect("valid config");
    assert_eq!(param_count(&vs), keras_params("mixed_7a_params"));
    assert_eq!(b.out_channels(), 2080);
    let ys = b.forward_t(&rand_input(&[1, 1088, 17, 17]), false);
    assert_eq!(ys.size(), [1, 2080, 8, 8]);

    let vs = nn::VarStore::new(Device::Cpu);
    let a = ReductionA::new(
        &vs.root(),
        &ReductionConfig::mixed_6a().with_in_channels(16),
    )
    .expect("valid config");
    assert_eq!(
        Some(a.auto_named_convs()),
        load_case("mixed_6a_parity").auto_named_convs
    );
    check_parity("mixed_6a_parity", &vs, &a);
    assert_finite_grads(&vs, &a, &[2, 16, 7, 7], true);
    assert_train_differs(&a, &[2, 16, 7, 7]);

    let vs = nn::VarStore::new(Device::Cpu);
    let b = ReductionB::new(
        &vs.root(),
        &ReductionConfig::mixed_7a().with_in_channels(16),
    )
    .expect("valid config");
    assert_eq!(
        Some(b.auto_named_convs()),
        load_case("mixed_7a_parity").auto_named_convs
    );
    check_parity("mixed_7a_parity", &vs, &b);
    assert_finite_grads(&vs, &b, &[2, 16, 7, 7], true);
    assert_train_differs(&b, &[2, 16, 7, 7]);
}

#[test]
fn inception_resnet_rejects_invalid_configs() {
    let vs = nn::VarStore::new(Device::Cpu);
    let p = vs.root();
    let zero = InceptionResnetBlockConfig::block35(1).with_in_channels(0);
    assert!(matches!(
        InceptionResnetA::new(&p, &zero),
        Err(Error::InvalidConfig {
            option: "in_channels",
            ..
        })
    ));
    let nan = InceptionResnetBlockConfig::block17(1).with_scale(f64::NAN);
    assert!(matches!(
        InceptionResnetB::new(&p, &nan),
        Err(Error::InvalidConfig {
            option: "scale",
            ..
        })
    ));
    let unnamed = InceptionResnetBlockConfig {
        name: String::new(),
        ..InceptionResnetBlockConfig::block8(1)
    };
    assert!(matches!(
        InceptionResnetC::new(&p, &unnamed),
        Err(Error::InvalidConfig { option: "name", .. })
    ));
    let stem = StemConfig {
        in_channels: 0,
        ..StemConfig::default()
    };
    assert!(Stem::new(&p, &stem).is_err());
    let reduction = ReductionConfig::mixed_7a().with_in_channels(-1);
    assert!(ReductionB::new(&p, &reduction).is_err());
}
