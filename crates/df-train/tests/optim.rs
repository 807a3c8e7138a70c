//! Optimizer steps against PyTorch's torch.optim and Keras' optimizers on a fixed problem
//! (fixture `scripts/fixtures/torch_optim.py`).

use df_train::{AdamConfig, EpsilonMode, Optimizer, OptimizerConfig, SgdConfig};
use tch::{Kind, Tensor};

use crate::common::{f64s, fixture, values};

fn config_of(case: &serde_json::Value) -> OptimizerConfig {
    let c = &case["config"];
    let num = |k: &str| c[k].as_f64().unwrap_or_else(|| panic!("config.{k}"));
    let mode = if case["name"].as_str().expect("name").starts_with("keras") {
        EpsilonMode::Keras
    } else {
        EpsilonMode::Torch
    };
    let adam = || {
        AdamConfig::new(num("lr"))
            .with_betas(num("beta1"), num("beta2"))
            .with_epsilon(num("epsilon"), mode)
    };
    match case["optimizer"].as_str().expect("optimizer") {
        "adam" => OptimizerConfig::Adam(adam()),
        "adamw" => OptimizerConfig::AdamW {
            adam: adam(),
            weight_decay: num("weight_decay"),
        },
        "sgd" => OptimizerConfig::Sgd(SgdConfig {
            lr: num("lr"),
            momentum: num("momentum"),
            nesterov: c["nesterov"].as_bool().expect("nesterov"),
            weight_decay: num("weight_decay"),
        }),
        other => panic!("unknown optimizer {other}"),
    }
}

#[test]
fn steps_match_pytorch_and_keras() {
    let doc = fixture("torch_optim", "cases.json");
    let shapes: Vec<Vec<i64>> = doc["shapes"]
        .as_array()
        .expect("shapes")
        .iter()
        .map(|s| f64s(s).into_iter().map(|d| d as i64).collect())
        .collect();
    let init: Vec<Vec<f64>> = doc["init"]
        .as_array()
        .expect("init")
        .iter()
        .map(f64s)
        .collect();
    let grads: Vec<Vec<Vec<f64>>> = doc["grads"]
        .as_array()
        .expect("grads")
        .iter()
        .map(|step| step.as_array().expect("step").iter().map(f64s).collect())
        .collect();
    let lr_scale_at = doc["lr_scale_at"].as_u64().expect("lr_scale_at") as usize;
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 8, "the fixture has every optimizer");
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let cfg = config_of(case);
        let params: Vec<(String, Tensor)> = init
            .iter()
            .zip(&shapes)
            .enumerate()
            .map(|(i, (v, s))| {
                let t = Tensor::from_slice(v)
                    .to_kind(Kind::Float)
                    .view(s.as_slice());
                (format!("p{i}"), t.set_requires_grad(true))
            })
            .collect();
        let handles: Vec<Tensor> = params.iter().map(|(_, t)| t.shallow_clone()).collect();
        let mut opt = Optimizer::new(cfg, params).expect("optimizer");
        let expected = case["params"].as_array().expect("params");
        for (step, g) in grads.iter().enumerate() {
            if step == lr_scale_at {
                let lr = opt.learning_rate();
                opt.set_learning_rate(lr * 0.1);
            }
            opt.zero_grad();
            // d/dp Σ p·g = g: the gradient is exactly the fixture's.
            let loss = handles
                .iter()
                .zip(g)
                .map(|(p, gi)| {
                    (p * Tensor::from_slice(gi)
                        .to_kind(Kind::Float)
                        .view(p.size().as_slice()))
                    .sum(Kind::Float)
                })
                .fold(
                    Tensor::zeros([], (Kind::Float, tch::Device::Cpu)),
                    |a, b| a + b,
                );
            loss.backward();
            opt.step().expect("step");
            let want = expected[step].as_array().expect("step params");
            for (i, p) in handles.iter().enumerate() {
                let got = values(p);
                let want = f64s(&want[i]);
                for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= 2e-6 + 2e-5 * b.abs(),
                        "{name}: step {step}, param {i}[{k}]: got {a}, reference {b}"
                    );
                }
            }
        }
        assert_eq!(opt.steps(), grads.len() as i64, "{name}");
    }
}

#[test]
fn state_round_trips_and_continues_identically() {
    // Two optimizers on identical parameters; one is rebuilt half-way from the other's
    // exported state, and both must end bit-identical.
    for cfg in [
        OptimizerConfig::adam(1e-2),
        OptimizerConfig::adamw(1e-2, 0.05),
        OptimizerConfig::Sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-3,
        }),
    ] {
        let make = || {
            let p = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.25]).set_requires_grad(true);
            (
                p.shallow_clone(),
                Optimizer::new(cfg, vec![("w".into(), p)]).expect("opt"),
            )
        };
        let (pa, mut a) = make();
        let (pb, mut b) = make();
        let target = Tensor::from_slice(&[1.0f32, 1.0, -1.0, 0.0]);
        let step = |p: &Tensor, o: &mut Optimizer| {
            o.zero_grad();
            (p - &target).square().sum(Kind::Float).backward();
            o.step().expect("step");
        };
        for _ in 0..3 {
            step(&pa, &mut a);
            step(&pb, &mut b);
        }
        let state: std::collections::HashMap<String, Tensor> =
            b.state_tensors().into_iter().collect();
        let pc = pb.detach().copy().set_requires_grad(true);
        let mut c = Optimizer::new(cfg, vec![("w".into(), pc.shallow_clone())]).expect("opt");
        c.load_state_tensors(&state).expect("load");
        for _ in 0..4 {
            step(&pa, &mut a);
            step(&pc, &mut c);
        }
        assert_eq!(values(&pa), values(&pc), "{}", cfg.name());
    }
}

#[test]
fn invalid_configs_are_errors() {
    assert!(OptimizerConfig::adam(0.0).validate().is_err());
    assert!(OptimizerConfig::adam(f64::NAN).validate().is_err());
    assert!(
        OptimizerConfig::Adam(AdamConfig::new(1e-3).with_betas(1.0, 0.999))
            .validate()
            .is_err()
    );
    assert!(OptimizerConfig::adamw(1e-3, -0.1).validate().is_err());
    assert!(OptimizerConfig::Sgd(SgdConfig {
        lr: 0.1,
        momentum: 0.0,
        nesterov: true,
        weight_decay: 0.0
    })
    .validate()
    .is_err());
    let frozen = Tensor::zeros([2], (Kind::Float, tch::Device::Cpu));
    assert!(Optimizer::new(OptimizerConfig::default(), vec![("w".into(), frozen)]).is_err());
}
