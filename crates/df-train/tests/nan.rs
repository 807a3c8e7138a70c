//! A NaN or infinite loss stops the run with an error naming the epoch and batch, and
//! the last good checkpoint stays on disk.

use std::sync::atomic::{AtomicUsize, Ordering};

use df_layers::DenseHead;
use df_models::{InputSpec, Model};
use df_train::checkpoint::read_safetensors;
use df_train::{files, Error, OptimizerConfig, TensorBatches, Trainer, Verbosity};
use tch::nn::ModuleT;
use tch::Tensor;

use crate::common::{tiny, toy_data, values};

/// Wraps a model and poisons its `at`-th training forward pass with NaN.
#[derive(Debug)]
struct NanAt {
    inner: Box<dyn Model>,
    calls: AtomicUsize,
    at: usize,
}

impl ModuleT for NanAt {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let out = self.inner.forward_t(xs, train);
        if train && self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
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
    let model = NanAt {
        inner,
        calls: AtomicUsize::new(0),
        at: 7,
    };
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
