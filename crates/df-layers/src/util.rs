//! Helpers shared by blocks, models and their tests: parameter counts as Keras reports
//! them and gradient checks.

use tch::nn::VarStore;
use tch::Tensor;

/// Parameter counts as Keras' `model.summary()` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ParamCount {
    /// Every value, trainable or not (Keras "Total params").
    pub total: i64,
    /// Values an optimizer updates (Keras "Trainable params").
    pub trainable: i64,
}

impl ParamCount {
    /// Values no optimizer updates (batch-norm moving statistics).
    pub fn non_trainable(&self) -> i64 {
        self.total - self.trainable
    }
}

/// Counts the values of every variable in `vs`.
pub fn param_count(vs: &VarStore) -> ParamCount {
    let mut count = ParamCount::default();
    for (_, t) in vs.variables() {
        let n = t.numel() as i64;
        count.total += n;
        if t.requires_grad() {
            count.trainable += n;
        }
    }
    count
}

/// Names of the trainable variables whose gradient after `loss.backward()` is missing or
/// not finite; empty when every parameter got a finite gradient.
///
/// Runs `loss.backward()` itself after zeroing existing gradients.
pub fn params_without_finite_grad(vs: &VarStore, loss: &Tensor) -> Vec<String> {
    for mut t in vs.trainable_variables() {
        t.zero_grad();
    }
    loss.backward();
    let mut bad: Vec<String> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .filter(|(_, t)| {
            let g = t.grad();
            !g.defined() || !bool::try_from(g.isfinite().all()).unwrap_or(false)
        })
        .map(|(name, _)| name)
        .collect();
    bad.sort();
    bad
}
