//! The L2 term (Keras `kernel_regularizer`: loss += λ·Σw² over the marked kernels) and
//! the frozen backbone.

use df_train::{OptimizerConfig, TensorBatches, Trainer, Verbosity};
use tch::{Device, Kind, Tensor};

use crate::common::{tiny, toy_data, values};

fn head_kernels(vs: &tch::nn::VarStore) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = vs
        .variables()
        .into_iter()
        .filter(|(n, _)| n.starts_with("head.") && n.ends_with(".weight"))
        .map(|(n, t)| (n, values(&t)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn penalty_is_lambda_times_sum_of_squared_kernels() {
    let lambda = 0.01;
    let (model, vs) = tiny(3, lambda, 0.0);
    let kernels = head_kernels(&vs);
    assert_eq!(kernels.len(), 2, "two dense kernels");
    let want: f64 = kernels
        .iter()
        .flat_map(|(_, w)| w.iter())
        .map(|w| lambda * w * w)
        .sum();
    let got = f64::try_from(&model.l2_penalty()).expect("scalar");
    assert!((got - want).abs() <= 1e-6 * want, "{got} vs {want}");
    // Biases and the convolution carry no penalty: zeroing the kernels zeroes it.
    tch::no_grad(|| {
        for (n, mut t) in vs.variables() {
            if n.starts_with("head.") && n.ends_with(".weight") {
                let _ = t.zero_();
            }
        }
    });
    assert_eq!(f64::try_from(&model.l2_penalty()).expect("scalar"), 0.0);
}

#[test]
fn trainer_adds_the_penalty_to_loss_and_gradient() {
    // All-zero images: every feature entering the head is 0, so the data term gives the
    // kernels no gradient and one SGD step must shrink them by exactly (1 − 2·lr·λ);
    // the logits are 0, so the logged loss is ln 2 + λ·Σw².
    let (lambda, lr) = (0.05, 0.1);
    let (model, vs) = tiny(5, lambda, 0.0);
    let before = head_kernels(&vs);
    let penalty: f64 = before
        .iter()
        .flat_map(|(_, w)| w.iter())
        .map(|w| lambda * w * w)
        .sum();
    let x = Tensor::zeros([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[1.0f32, 0.0, 1.0, 0.0]);
    let data = TensorBatches::new(x, y, 4).expect("batches");
    let mut trainer = Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::sgd(lr, 0.0))
        .epochs(1)
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    let history = trainer.fit(&data, None).expect("fit");
    let loss = history.epochs[0].metrics["loss"];
    let want = std::f64::consts::LN_2 + penalty;
    assert!(
        (loss - want).abs() < 1e-6,
        "loss {loss}, want ln2 + λΣw² = {want}"
    );
    let after = head_kernels(trainer.var_store());
    for ((name, w0), (_, w1)) in before.iter().zip(&after) {
        for (a, b) in w0.iter().zip(w1) {
            let want = a * (1.0 - 2.0 * lr * lambda);
            assert!((b - want).abs() < 1e-7, "{name}: {b} vs {want}");
        }
    }
}

#[test]
fn frozen_backbone_keeps_every_backbone_value() {
    let (model, vs) = tiny(7, 0.0, 0.0);
    let snapshot = |vs: &tch::nn::VarStore| {
        let mut v: Vec<(String, Vec<f64>)> = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, values(&t)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let before = snapshot(&vs);
    let (x, y) = toy_data(32, 1);
    let data = TensorBatches::new(x, y, 8).expect("batches").shuffled(1);
    let mut trainer = Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::adam(1e-2))
        .epochs(2)
        .freeze_backbone(true)
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    trainer.fit(&data, None).expect("fit");
    let after = snapshot(trainer.var_store());
    let names: Vec<&str> = trainer.optimizer().param_names().collect();
    assert_eq!(
        names,
        [
            "head.dense.bias",
            "head.dense.weight",
            "head.dense_1.bias",
            "head.dense_1.weight"
        ]
    );
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        if name.starts_with("head.") {
            assert_ne!(a, b, "{name} should train");
        } else {
            assert_eq!(
                a, b,
                "{name} should stay frozen (weights and BN statistics)"
            );
        }
    }
}

/// Keras' `trainable = False` backbone runs in inference mode: its batch norms normalise
/// with the moving statistics. The first batch's loss (logged before the step) is the one
/// of the eval-mode backbone, and differs from the train-mode one.
#[test]
fn frozen_backbone_normalises_with_the_moving_statistics() {
    let (model, vs) = tiny(11, 0.0, 0.0);
    let set_statistics = || {
        tch::no_grad(|| {
            for (name, t) in vs.variables() {
                if name == "bn.running_mean" {
                    let _ = t.shallow_clone().fill_(0.7);
                } else if name == "bn.running_var" {
                    let _ = t.shallow_clone().fill_(3.0);
                }
            }
        })
    };
    let (x, y) = toy_data(8, 2);
    let loss = df_train::Loss::BinaryCrossEntropy;
    let loss_of = |train_bn: bool| {
        tch::no_grad(|| {
            let f = model.forward_features(&x, train_bn);
            let logits = model.forward_head(&f, false).view([-1]);
            f64::try_from(loss.compute(&logits, &y)).expect("scalar")
        })
    };
    // A train-mode forward moves the moving statistics: set them after it.
    let train_loss = loss_of(true);
    set_statistics();
    let eval_loss = loss_of(false);
    assert!(
        (eval_loss - train_loss).abs() > 1e-3,
        "the statistics must matter for this test: {eval_loss} vs {train_loss}"
    );
    let data = TensorBatches::new(x, y, 8).expect("batches");
    let mut trainer = Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::adam(1e-2))
        .epochs(1)
        .freeze_backbone(true)
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    let logged = trainer.fit(&data, None).expect("fit").values("loss")[0];
    assert!(
        (logged - eval_loss).abs() < 1e-5,
        "logged loss {logged}: eval-mode backbone {eval_loss}, train-mode {train_loss}"
    );
}
