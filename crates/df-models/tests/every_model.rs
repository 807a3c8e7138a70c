//! Every registered model, built through the registry with the study's binary head at a
//! small input: forward gives one logit per image, and one backward pass gives every
//! trainable parameter a finite gradient (timm's "every model forward and backward" test).

use df_layers::util::params_without_finite_grad;
use df_layers::MemoryFormat;
use df_models::registry::{registry, BuildOptions};
use df_models::Top;
use tch::{nn, Device, Kind, Tensor};

/// The tests draw from libtorch's one global random generator (initialisation, drop-connect
/// masks); one at a time, so that a test that seeds it sees its own sequence.
static SEQUENTIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SEQUENTIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn every_registered_model_runs_forward_and_backward_with_finite_gradients() {
    let _guard = one_at_a_time();
    tch::manual_seed(0);
    let mut failures = Vec::new();
    for info in registry() {
        // The smallest input the architecture takes (at least 32), to keep CPU time low.
        let side = info.min_input_size.max(32);
        let vs = nn::VarStore::new(Device::Cpu);
        let options = BuildOptions::default()
            .with_top(Top::study([16, 8], 0.2, 1e-4))
            .with_input_size(side, side);
        let model = match df_models::build(info.name, &vs.root(), &options) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: build failed: {e}", info.name));
                continue;
            }
        };
        let x = Tensor::randn([2, 3, side, side], (Kind::Float, Device::Cpu));
        let logits = model.forward_t(&x, true);
        if logits.size() != [2, 1] {
            failures.push(format!(
                "{}: logits shape {:?}, expected [2, 1]",
                info.name,
                logits.size()
            ));
            continue;
        }
        let target = Tensor::from_slice(&[1.0f32, 0.0]).view([2, 1]);
        let loss = logits.binary_cross_entropy_with_logits::<Tensor>(
            &target,
            None,
            None,
            tch::Reduction::Mean,
        ) + model.l2_penalty();
        let bad = params_without_finite_grad(&vs, &loss);
        if !bad.is_empty() {
            failures.push(format!(
                "{}: no finite gradient for {} parameters, e.g. {:?}",
                info.name,
                bad.len(),
                &bad[..bad.len().min(3)]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every registered model computes the same logits in both memory formats (the default,
/// channels-last, and NCHW-contiguous): in eval mode in f32; in train mode in f64 and with
/// a batch of 8 (batch norm over a batch of two 1×1 maps blows even f64 rounding up to the
/// size of the logits). The format is part of the stored configuration, read as channels-last where a
/// configuration predates it.
#[test]
fn every_registered_model_gives_the_same_logits_in_both_memory_formats() {
    let _guard = one_at_a_time();
    tch::manual_seed(0);
    let mut failures = Vec::new();
    for info in registry() {
        let side = info.min_input_size.max(32);
        let options = BuildOptions::default()
            .with_top(Top::study([16, 8], 0.0, 0.0))
            .with_input_size(side, side);
        let mut nhwc_vs = nn::VarStore::new(Device::Cpu);
        let nhwc = df_models::build(info.name, &nhwc_vs.root(), &options).expect("build");
        let mut nchw_vs = nn::VarStore::new(Device::Cpu);
        let nchw = df_models::build(
            info.name,
            &nchw_vs.root(),
            &options.clone().with_memory_format(MemoryFormat::Contiguous),
        )
        .expect("build");
        nchw_vs.copy(&nhwc_vs).expect("same variables");
        assert_eq!(
            nhwc.config_json().expect("config")["memory_format"],
            "channels_last"
        );
        assert_eq!(
            nchw.config_json().expect("config")["memory_format"],
            "contiguous"
        );
        for (train, kind, tolerance) in [(false, Kind::Float, 1e-4), (true, Kind::Double, 1e-9)] {
            nhwc_vs.set_kind(kind);
            nchw_vs.set_kind(kind);
            let x = Tensor::randn([8, 3, side, side], (kind, Device::Cpu));
            // The same drop-connect masks on both sides.
            tch::manual_seed(1);
            let a = tch::no_grad(|| nhwc.forward_t(&x, train));
            tch::manual_seed(1);
            let b = tch::no_grad(|| nchw.forward_t(&x, train));
            let err = (&a - &b).abs().max().double_value(&[]);
            let scale = b.abs().max().double_value(&[]);
            if err.is_nan() || err > tolerance * (1.0 + scale) {
                failures.push(format!(
                    "{} (train {train}, {kind:?}): logits differ by {err} between formats (up to {scale})",
                    info.name
                ));
            }
        }
        let mut stored = nhwc.config_json().expect("config");
        stored
            .as_object_mut()
            .expect("a JSON object")
            .remove("memory_format");
        let vs = nn::VarStore::new(Device::Cpu);
        let reopened =
            df_models::registry::build_from_config(info.family, info.name, &vs.root(), &stored)
                .expect("a configuration without memory_format");
        assert_eq!(
            reopened.config_json().expect("config")["memory_format"],
            "channels_last"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The default runs the network channels-last on the CPU: EfficientNet's feature map comes
/// out in that format from an NCHW batch; with `Contiguous` it stays NCHW.
#[test]
fn models_convert_the_batch_once_on_the_cpu() {
    // 64×64: a 2×2 feature map (a 1×1 map of one image is in both formats at once).
    let x = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu));
    for format in [MemoryFormat::ChannelsLast, MemoryFormat::Contiguous] {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = df_models::EfficientNetConfig::preset(0)
            .expect("b0")
            .with_input_size(64, 64)
            .with_memory_format(format);
        let model = df_models::efficientnet(&vs.root(), &config).expect("build");
        let features = tch::no_grad(|| model.features_t(&x, false));
        assert!(
            format.is_format_of(&features) && features.size()[2..] == [2, 2],
            "{format}: feature map strides {:?}",
            features.stride()
        );
    }
}
