//! A NaN or infinite loss stops the run with an error naming the epoch and batch, and
//! the last good checkpoint stays on disk.

use std::sync::atomic::{AtomicUsize, Ordering};

use df_layers::DenseHead;
use df_models::{InputSpec, Model};
use df_train::run_files::read_safetensors;
use df_train::{files, Error, OptimizerConfig, TensorBatches, Trainer, Verbosity};
use tch::nn::ModuleT;
use tch::Tensor;

use crate::common::{tiny, toy_data, values};

/// Wraps a model and multiplies its output by NaN on the passes `poison(train, n)`
/// selects (`n` counts that kind of pass from 1).
#[derive(Debug)]
struct NanAt {
    inner: Box<dyn Model>,
    calls: [AtomicUsize; 2],
    poison: fn(bool, usize) -> bool,
}

impl NanAt {
    fn new(inner: Box<dyn Model>, poison: fn(bool, usize) -> bool) -> Self {
        Self {
            inner,
            calls: [AtomicUsize::new(0), AtomicUsize::new(0)],
            poison,
        }
    }
}

impl ModuleT for NanAt {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let out = self.inner.forward_t(xs, train);
        let n = self.calls[usize::from(train)].fetch_add(1, Ordering::SeqCst) + 1;
        if (self.poison)(train, n) {
            out * f64::NAN
        } else {
            out
        }
    }
}

impl Model for NanAt {
    fn forward_features(&self, xs: &Tensor, train: bool) -> Tensor {
        self.inner.forward_features(xs, train)
    }
    fn forward_head(&self, features: &Tensor, train: bool) -> Tensor {
        self.inner.forward_head(features, train)
    }
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn input_spec(&self) -> InputSpec {
        self.inner.input_spec()
    }
    fn family(&self) -> &str {
        self.inner.family()
    }
    fn config_json(&self) -> df_models::Result<serde_json::Value> {
        self.inner.config_json()
    }
    fn head(&self) -> Option<&DenseHead> {
        self.inner.head()
    }
}

#[test]
fn injected_nan_names_epoch_and_batch_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (inner, vs) = tiny(2, 1e-3, 0.0);
    // 4 batches per epoch: the 7th training forward is epoch 2, batch 3.
    let model = NanAt::new(inner, |train, n| train && n == 7);
    let (x, y) = toy_data(32, 6);
    let (vx, vy) = toy_data(16, 7);
    let train = TensorBatches::new(x, y, 8).expect("train").shuffled(1);
    let val = TensorBatches::new(vx, vy, 8).expect("val");
    let mut trainer = Trainer::builder(Box::new(model), vs)
        .epochs(3)
        .out_dir(dir.path())
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    let err = trainer
        .fit(&train, Some(&val))
        .expect_err("NaN must stop the run");
    let last = dir.path().join(files::LAST);
    match &err {
        Error::NonFiniteLoss {
            epoch,
            batch,
            value,
            last_checkpoint,
        } => {
            assert_eq!((*epoch, *batch), (2, 3));
            assert!(value.is_nan());
            assert_eq!(last_checkpoint.as_deref(), Some(last.as_path()));
        }
        other => panic!("expected NonFiniteLoss, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("epoch 2") && msg.contains("batch 3") && msg.contains("last.safetensors"),
        "{msg}"
    );
    let file = read_safetensors(&last).expect("the last good checkpoint is readable");
    let state: serde_json::Value =
        serde_json::from_str(&file.metadata["train_state"]).expect("state");
    assert_eq!(state["epochs_done"], 1);
    for (name, t) in &file.tensors {
        assert!(
            values(t).iter().all(|v| v.is_finite()),
            "{name} not finite in the checkpoint"
        );
    }
    // The weights in memory are those before the poisoned batch: still finite.
    for (name, t) in trainer.var_store().variables() {
        assert!(
            values(&t).iter().all(|v| v.is_finite()),
            "{name} not finite in memory"
        );
    }
    assert!(!dir.path().join(files::FINAL).exists());
}

#[test]
fn diverging_learning_rate_stops_with_an_error() {
    let (model, vs) = tiny(2, 1e-2, 0.0);
    let (x, y) = toy_data(64, 6);
    let train = TensorBatches::new(x, y, 8).expect("train").shuffled(1);
    let mut trainer = Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::sgd(1e30, 0.9))
        .epochs(5)
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    match trainer.fit(&train, None) {
        Err(Error::NonFiniteLoss {
            epoch,
            batch,
            value,
            last_checkpoint,
        }) => {
            assert!(!value.is_finite());
            assert!(epoch >= 1 && batch >= 1);
            assert!(last_checkpoint.is_none());
        }
        Err(other) => panic!("expected NonFiniteLoss, got {other}"),
        Ok(h) => panic!("lr 1e30 should diverge, got {:?}", h.epochs.last()),
    }
}

/// A callback that writes infinity into one weight at the end of epoch `at` (0-based).
struct PoisonWeights {
    at: usize,
}

impl df_train::Callback for PoisonWeights {
    fn name(&self) -> String {
        "poison_weights".into()
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        _logs: &df_train::Logs,
        ctx: &mut df_train::CallbackContext<'_>,
    ) -> df_train::Result<()> {
        if epoch == self.at {
            let mut snapshot = ctx.snapshot_weights();
            let (_, t) = &mut snapshot.tensors[0];
            *t = t.fill(f64::INFINITY);
            ctx.restore_weights(&snapshot)?;
        }
        Ok(())
    }
}

/// Divergence that the training loss does not show (a NaN validation loss, weights gone
/// infinite) stops the run at that epoch, saves nothing of it, and names the last good
/// checkpoint (issue 12, point 4).
#[test]
fn a_non_finite_validation_loss_or_weight_is_divergence() {
    let (x, y) = toy_data(32, 6);
    let (vx, vy) = toy_data(16, 7);
    let train = TensorBatches::new(x, y, 8).expect("train").shuffled(1);
    let val = TensorBatches::new(vx, vy, 8).expect("val");
    for case in ["validation loss", "weights"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (inner, vs) = tiny(2, 1e-3, 0.0);
        // Two validation batches per epoch: the 3rd evaluation pass is epoch 2's.
        let model: Box<dyn Model> = if case == "validation loss" {
            Box::new(NanAt::new(inner, |train, n| !train && n >= 3))
        } else {
            inner
        };
        let mut builder = Trainer::builder(model, vs)
            .epochs(4)
            .out_dir(dir.path())
            .verbosity(Verbosity::Quiet);
        if case == "weights" {
            builder = builder.callback(Box::new(PoisonWeights { at: 1 }));
        }
        let mut trainer = builder.build().expect("trainer");
        let err = trainer.fit(&train, Some(&val)).expect_err(case);
        let last = dir.path().join(files::LAST);
        match &err {
            Error::Diverged {
                epoch,
                reason,
                last_checkpoint,
            } => {
                assert_eq!(*epoch, 2, "{case}: {err}");
                assert!(
                    reason.contains(if case == "weights" {
                        "variable"
                    } else {
                        "validation loss is NaN"
                    }),
                    "{case}: {reason}"
                );
                assert_eq!(last_checkpoint.as_deref(), Some(last.as_path()));
            }
            other => panic!("{case}: expected Diverged, got {other}"),
        }
        let file = read_safetensors(&last).expect("the last good checkpoint");
        let state: serde_json::Value =
            serde_json::from_str(&file.metadata["train_state"]).expect("state");
        assert_eq!(state["epochs_done"], 1, "{case}: the bad epoch was saved");
        for (name, t) in &file.tensors {
            assert!(values(t).iter().all(|v| v.is_finite()), "{case}: {name}");
        }
    }
}

/// A trainer over `model` (initial weights copied from `init`), sequential batches of 8,
/// Adam, the loss checked every `interval` batches.
fn interval_trainer(
    model: Box<dyn Model>,
    mut vs: tch::nn::VarStore,
    init: &tch::nn::VarStore,
    epochs: usize,
    interval: usize,
) -> Trainer {
    vs.copy(init).expect("same variables");
    Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::adam(1e-2))
        .epochs(epochs)
        .nan_check_interval(interval)
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer")
}

fn same_weights(a: &Trainer, b: &Trainer) {
    let b_vars = b.var_store().variables();
    for (name, t) in a.var_store().variables() {
        assert_eq!(values(&t), values(&b_vars[&name]), "{name}");
    }
}

/// On a GPU the loss is read every few batches (issue 13): the training is the same, the
/// metrics the same sums.
#[test]
fn a_loss_checked_every_few_batches_trains_exactly_as_every_batch() {
    let (_, init) = tiny(4, 0.0, 0.0);
    let (x, y) = toy_data(64, 6);
    let data = TensorBatches::new(x, y, 8).expect("batches");
    let mut runs = Vec::new();
    for interval in [1, 3] {
        let (model, vs) = tiny(4, 0.0, 0.0);
        let mut trainer = interval_trainer(model, vs, &init, 2, interval);
        assert_eq!(trainer.nan_check_interval(), interval);
        trainer.fit(&data, None).expect("fit");
        runs.push(trainer);
    }
    same_weights(&runs[0], &runs[1]);
    for metric in ["loss", "accuracy"] {
        let (a, b) = (
            runs[0].history().values(metric),
            runs[1].history().values(metric),
        );
        assert_eq!(a.len(), 2);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-12, "{metric}: {a:?} vs {b:?}");
        }
    }
    let (model, vs) = tiny(4, 0.0, 0.0);
    let refused = Trainer::builder(model, vs).nan_check_interval(0).build();
    assert!(
        matches!(&refused, Err(Error::Config { option, .. }) if option == "nan_check_interval"),
        "{:?}",
        refused.err()
    );
}

/// A NaN found at a check rolls the weights back to the last good check.
#[test]
fn a_nan_found_at_a_check_rolls_back_to_the_last_good_check() {
    let (_, init) = tiny(5, 0.0, 0.0);
    let (x, y) = toy_data(64, 6);
    let data = TensorBatches::new(x.shallow_clone(), y.shallow_clone(), 8).expect("batches");
    // Checks after batches 3 and 6: the NaN of batch 5 is found at the second.
    let (inner, vs) = tiny(5, 0.0, 0.0);
    let model = NanAt::new(inner, |train, n| train && n == 5);
    let mut trainer = interval_trainer(Box::new(model), vs, &init, 2, 3);
    match trainer.fit(&data, None) {
        Err(Error::NonFiniteLoss {
            epoch,
            batch,
            value,
            ..
        }) => {
            assert_eq!((epoch, batch), (1, 6));
            assert!(value.is_nan());
        }
        Err(other) => panic!("expected NonFiniteLoss, got {other}"),
        Ok(_) => panic!("the NaN went unnoticed"),
    }
    // The same first three batches alone, checked every batch.
    let first = TensorBatches::new(x.narrow(0, 0, 24), y.narrow(0, 0, 24), 8).expect("batches");
    let (model, vs) = tiny(5, 0.0, 0.0);
    let mut reference = interval_trainer(model, vs, &init, 1, 1);
    reference.fit(&first, None).expect("fit");
    same_weights(&trainer, &reference);
    assert_eq!(
        trainer.optimizer().steps(),
        reference.optimizer().steps(),
        "the optimizer's state rolled back too"
    );
}
