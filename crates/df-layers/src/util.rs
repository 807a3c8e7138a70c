//! Helpers shared by blocks, models and their tests: parameter counts as Keras reports
//! them and gradient checks.

use std::collections::{BTreeMap, HashMap};

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

/// The variables of `vs` grouped by layer (the variable path without its last component,
/// `conv2_block1_1_conv` for `conv2_block1_1_conv.weight`), each layer's variables by
/// their last component, the layers in the order their first trainable variable was
/// created (layers with none last), ties by path. Since the model builders name variables
/// after Keras layers, this is Keras' layer list in creation order.
pub fn variables_by_layer(vs: &VarStore) -> Vec<(String, BTreeMap<String, Tensor>)> {
    let ptr = |t: &Tensor| t.data_ptr() as usize;
    let creation: HashMap<usize, usize> = vs
        .trainable_variables()
        .iter()
        .enumerate()
        .map(|(i, t)| (ptr(t), i))
        .collect();
    let mut groups: BTreeMap<String, BTreeMap<String, Tensor>> = BTreeMap::new();
    for (name, t) in vs.variables() {
        let (layer, var) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
        groups
            .entry(layer.to_string())
            .or_default()
            .insert(var.to_string(), t);
    }
    let mut layers: Vec<(usize, String, BTreeMap<String, Tensor>)> = groups
        .into_iter()
        .map(|(path, vars)| {
            let first = vars
                .values()
                .filter_map(|t| creation.get(&ptr(t)).copied())
                .min()
                .unwrap_or(usize::MAX);
            (first, path, vars)
        })
        .collect();
    layers.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    layers
        .into_iter()
        .map(|(_, path, vars)| (path, vars))
        .collect()
}
