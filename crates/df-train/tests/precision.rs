//! Mixed precision: `Precision` names, dynamic loss scaling against
//! `torch.amp.GradScaler` (fixtures/reference/torch_grad_scaler), and training and
//! evaluating under bf16/f16 autocast through the trainer.

use df_metrics::EvaluatorConfig;
use df_train::{
    evaluate_in, predict, predict_in, GradScaler, GradScalerConfig, Optimizer, OptimizerConfig,
    Precision, TensorBatches, Trainer, Verbosity,
};
use tch::{Device, Kind, Tensor};

use crate::common::{f64s, fixture, tiny, values};

#[test]
fn precisions_read_their_names_and_refuse_others() {
    for (text, p) in [
        ("f32", Precision::F32),
        ("FP32", Precision::F32),
        ("bf16", Precision::Bf16),
        ("bfloat16", Precision::Bf16),
        ("fp16", Precision::F16),
        ("half", Precision::F16),
    ] {
        assert_eq!(Precision::parse(text).expect(text), p);
    }
    for p in Precision::ALL {
        assert_eq!(p.as_str().parse::<Precision>().expect("round trip"), p);
        let json = serde_json::to_string(&p).expect("json");
        assert_eq!(json, format!("\"{p}\""));
    }
    let err = Precision::parse("int8").expect_err("int8").to_string();
    assert!(err.contains("precision") && err.contains("int8"), "{err}");
}

/// The coefficient values of the fixture, with "inf"/"nan" strings as floats.
fn coefficients(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v.as_array()
        .expect("steps")
        .iter()
        .map(|step| {
            step.as_array()
                .expect("values")
                .iter()
                .map(|x| match x {
                    serde_json::Value::String(s) => s.parse::<f32>().expect("inf/nan"),
                    other => other.as_f64().expect("number") as f32,
                })
                .collect()
        })
        .collect()
}

#[test]
fn grad_scaler_follows_torch_amp_grad_scaler() {
    let case = fixture("torch_grad_scaler", "cases.json");
    let cfg: GradScalerConfig =
        serde_json::from_value(case["config"].clone()).expect("scaler config");
    let lr = case["lr"].as_f64().expect("lr");
    let init: Vec<f32> = f64s(&case["init"]).into_iter().map(|v| v as f32).collect();
    let p = Tensor::from_slice(&init).set_requires_grad(true);
    let mut opt = Optimizer::new(
        OptimizerConfig::sgd(lr, 0.0),
        vec![("p".to_string(), p.shallow_clone())],
    )
    .expect("sgd");
    let mut scaler = GradScaler::new(cfg, Device::Cpu).expect("scaler");
    let skipped: Vec<usize> = case["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|v| v.as_u64().expect("index") as usize)
        .collect();
    for (t, c) in coefficients(&case["coefficients"]).iter().enumerate() {
        opt.zero_grad();
        let loss = (&p * Tensor::from_slice(c)).sum(Kind::Float);
        scaler.scale_loss(&loss).backward();
        let found_inf = scaler.unscale(&opt.parameters()).expect("unscale");
        assert_eq!(found_inf, skipped.contains(&t), "step {t}: inf/NaN found");
        if !found_inf {
            opt.step().expect("step");
        }
        scaler.update(found_inf);
        let want = f64s(&case["params"][t]);
        for (g, w) in values(&p).iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "step {t}: {g} vs {w}"
            );
        }
        let scale = scaler.scale().expect("scale");
        assert_eq!(
            scale,
            case["scales"][t].as_f64().expect("scale"),
            "scale after step {t}"
        );
    }
    assert_eq!(scaler.skipped_steps(), skipped.len() as u64);
}

#[test]
fn grad_scaler_state_round_trips_and_bad_settings_are_named() {
    let cfg = GradScalerConfig {
        init_scale: 8.0,
        growth_interval: 1,
        ..GradScalerConfig::default()
    };
    let mut a = GradScaler::new(cfg, Device::Cpu).expect("scaler");
    a.update(false);
    a.update(true);
    a.update(false);
    let state: std::collections::HashMap<String, Tensor> = a.state_tensors().into_iter().collect();
    let mut b = GradScaler::new(cfg, Device::Cpu).expect("scaler");
    b.load_state_tensors(&state).expect("load");
    assert_eq!(b.scale().expect("b"), a.scale().expect("a"));
    assert_eq!(a.scale().expect("a"), 16.0); // 8 -> 16 -> 8 -> 16
    let missing: std::collections::HashMap<String, Tensor> = a
        .state_tensors()
        .into_iter()
        .filter(|(n, _)| n != "growth_tracker")
        .collect();
    let err = b
        .load_state_tensors(&missing)
        .expect_err("missing")
        .to_string();
    assert!(err.contains("scaler/growth_tracker"), "{err}");
    for (bad, option) in [
        (
            GradScalerConfig {
                init_scale: 0.0,
                ..cfg
            },
            "init_scale",
        ),
        (
            GradScalerConfig {
                growth_factor: 1.0,
                ..cfg
            },
            "growth_factor",
        ),
        (
            GradScalerConfig {
                backoff_factor: 1.5,
                ..cfg
            },
            "backoff_factor",
        ),
        (
            GradScalerConfig {
                growth_interval: 0,
                ..cfg
            },
            "growth_interval",
        ),
    ] {
        let err = GradScaler::new(bad, Device::Cpu)
            .expect_err(option)
            .to_string();
        assert!(err.contains(option), "{err}");
    }
}

/// Values that depend on nothing but `n` and `phase` (other tests reseed libtorch's
/// global generator concurrently, so runs compared with each other do not draw from it).
fn wave(n: i64, phase: f64) -> Tensor {
    (Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.618 + phase).sin()
}

fn train(precision: Precision, epochs: usize, dir: Option<&std::path::Path>) -> Trainer {
    tch::set_num_threads(1);
    let (model, vs) = tiny(5, 0.0, 0.0);
    tch::no_grad(|| {
        let mut vars: Vec<_> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (name, mut t)) in vars.into_iter().enumerate() {
            if !name.ends_with("running_var") {
                let v = wave(t.numel() as i64, i as f64).reshape(t.size()) * 0.4;
                t.copy_(&v);
            }
        }
    });
    let x = wave(96 * 3 * 8 * 8, 0.5).reshape([96, 3, 8, 8]);
    let y = (x.select(1, 0).mean_dim(&[1i64, 2][..], false, Kind::Float)
        - x.select(1, 1).mean_dim(&[1i64, 2][..], false, Kind::Float))
    .gt(0.0)
    .to_kind(Kind::Float);
    let data = TensorBatches::new(x, y, 16).expect("batches").shuffled(3);
    let mut builder = Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::adam(1e-2))
        .epochs(epochs)
        .seed(9)
        .precision(precision)
        .grad_scaler(GradScalerConfig {
            init_scale: 256.0,
            growth_interval: 4,
            ..GradScalerConfig::default()
        })
        .verbosity(Verbosity::Quiet);
    if let Some(d) = dir {
        builder = builder.out_dir(d).resume(true);
    }
    let mut trainer = builder.build().expect("trainer");
    trainer.fit(&data, None).expect("fit");
    trainer
}

#[test]
fn training_in_bf16_and_f16_decreases_the_loss() {
    for precision in [Precision::Bf16, Precision::F16] {
        let trainer = train(precision, 6, None);
        let loss = trainer.history().values("loss");
        assert!(
            loss.last().expect("last") < &(0.8 * loss[0]),
            "{precision}: {loss:?}"
        );
        assert_eq!(trainer.config().precision, precision);
        // Parameters and their optimizer state stay f32.
        for (name, t) in trainer.var_store().variables() {
            assert_eq!(t.kind(), Kind::Float, "{precision}: {name}");
        }
        let scales = trainer.history().values("loss_scale");
        if precision == Precision::F16 {
            // 6 batches an epoch, growth every 4 good steps: 256 · 2^(6·e / 4).
            assert_eq!(scales.len(), 6);
            assert_eq!(scales[0], 256.0 * 2.0, "{scales:?}");
            assert!(scales.windows(2).all(|w| w[1] >= w[0]), "{scales:?}");
        } else {
            assert!(scales.is_empty(), "no loss scale without f16: {scales:?}");
        }
    }
}

#[test]
fn an_f16_run_resumes_with_its_loss_scale() {
    let dir = tempfile::tempdir().expect("dir");
    let whole = train(Precision::F16, 4, None);
    let _ = train(Precision::F16, 2, Some(dir.path()));
    let resumed = train(Precision::F16, 4, Some(dir.path()));
    assert_eq!(
        resumed.history().values("loss_scale"),
        whole.history().values("loss_scale")
    );
    assert_eq!(
        resumed.history().values("loss"),
        whole.history().values("loss")
    );
    let stored: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("config.json")).expect("config.json"),
    )
    .expect("json");
    assert_eq!(stored["precision"], "f16");
    assert_eq!(stored["grad_scaler"]["init_scale"], 256.0);
}

#[test]
fn evaluation_in_bf16_scores_close_to_f32() {
    let trainer = train(Precision::F32, 3, None);
    let x = wave(64 * 3 * 8 * 8, 2.0).reshape([64, 3, 8, 8]);
    let y = wave(64, 1.0).gt(0.0).to_kind(Kind::Float);
    let data = TensorBatches::new(x, y, 16).expect("batches");
    let f32_scores = predict(trainer.model(), &data, Device::Cpu)
        .expect("f32")
        .scores;
    let bf16 = predict_in(trainer.model(), &data, Device::Cpu, Precision::Bf16).expect("bf16");
    let diff = f32_scores
        .iter()
        .zip(&bf16.scores)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff > 0.0, "bf16 must compute differently");
    assert!(diff < 0.02, "largest score difference {diff}");
    let eval = evaluate_in(
        trainer.model(),
        &data,
        Device::Cpu,
        EvaluatorConfig::default(),
        Precision::Bf16,
    )
    .expect("evaluate");
    assert_eq!(eval.report.n, 64);
}
