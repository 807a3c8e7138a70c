//! Optimizers written on tensors, so that their state (moments, momentum buffers, step
//! counts) can be saved in a checkpoint and a run resumed exactly.
//!
//! `tch::nn::Optimizer` wraps libtorch's C++ optimizers, whose state is not reachable from
//! Rust; these are the same algorithms done with `no_grad` tensor updates:
//!
//! - [`AdamConfig`]: Adam (Kingma & Ba). [`EpsilonMode::Keras`] (the default, the study's
//!   Keras) adds ε to `sqrt(v)` (the paper's "ε hat"); [`EpsilonMode::Torch`] adds it to
//!   the bias-corrected `sqrt(v̂)` as `torch.optim.Adam` does. Both give the same steps up
//!   to ε's scale.
//! - AdamW: Adam with decoupled weight decay (`p ← p·(1 − lr·wd)` before the Adam step),
//!   as `torch.optim.AdamW` and `keras.optimizers.AdamW`.
//! - [`SgdConfig`]: SGD with momentum, Nesterov and L2-coupled weight decay, as
//!   `torch.optim.SGD` (dampening 0): the momentum buffer holds gradients, not steps, so a
//!   learning-rate change applies at once.
//!
//! Tested step by step against PyTorch and Keras on a fixed problem
//! (`scripts/fixtures/torch_optim.py`).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Tensor};

use crate::error::{config, shim, Error, Result};

/// Where Adam adds its ε.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpsilonMode {
    /// `p −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε)` (Keras; the paper's "ε hat").
    #[default]
    Keras,
    /// `p −= lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)` (`torch.optim.Adam`).
    Torch,
}

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate (Keras and PyTorch default 1e-3).
    pub lr: f64,
    /// Decay of the first moment (0.9).
    pub beta1: f64,
    /// Decay of the second moment (0.999).
    pub beta2: f64,
    /// Numerical-stability constant (Keras' 1e-7).
    pub epsilon: f64,
    /// Where ε is added.
    #[serde(default)]
    pub epsilon_mode: EpsilonMode,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            epsilon_mode: EpsilonMode::Keras,
        }
    }
}

impl AdamConfig {
    /// Adam with learning rate `lr` and Keras' other defaults.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            ..Self::default()
        }
    }
    /// Sets ε and where it is added.
    pub fn with_epsilon(mut self, epsilon: f64, mode: EpsilonMode) -> Self {
        self.epsilon = epsilon;
        self.epsilon_mode = mode;
        self
    }
    /// Sets β₁ and β₂.
    pub fn with_betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }
}

/// SGD's hyper-parameters (`torch.optim.SGD` semantics, dampening 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 for plain SGD).
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 weight decay added to the gradient (`g += wd·p`).
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// Which optimizer, with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Adam.
    Adam(AdamConfig),
    /// Adam with decoupled weight decay.
    #[serde(rename = "adamw")]
    AdamW {
        /// The Adam part.
        #[serde(flatten)]
        adam: AdamConfig,
        /// Decoupled weight decay (`p ← p·(1 − lr·wd)` each step).
        weight_decay: f64,
    },
    /// Stochastic gradient descent with momentum.
    Sgd(SgdConfig),
}

impl Default for OptimizerConfig {
    /// Adam, learning rate 1e-3, ε 1e-7 (Keras' defaults).
    fn default() -> Self {
        OptimizerConfig::Adam(AdamConfig::default())
    }
}

impl OptimizerConfig {
    /// Adam with Keras' defaults and learning rate `lr`.
    pub fn adam(lr: f64) -> Self {
        OptimizerConfig::Adam(AdamConfig::new(lr))
    }
    /// AdamW with Keras' Adam defaults, learning rate `lr` and decoupled weight decay `wd`.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        OptimizerConfig::AdamW {
            adam: AdamConfig::new(lr),
            weight_decay,
        }
    }
    /// SGD with learning rate `lr` and momentum `momentum`.
    pub fn sgd(lr: f64, momentum: f64) -> Self {
        OptimizerConfig::Sgd(SgdConfig {
            lr,
            momentum,
            ..SgdConfig::default()
        })
    }

    /// The initial learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Adam(a) | OptimizerConfig::AdamW { adam: a, .. } => a.lr,
            OptimizerConfig::Sgd(s) => s.lr,
        }
    }

    /// The same configuration with another initial learning rate.
    pub fn with_lr(mut self, lr: f64) -> Self {
        match &mut self {
            OptimizerConfig::Adam(a) | OptimizerConfig::AdamW { adam: a, .. } => a.lr = lr,
            OptimizerConfig::Sgd(s) => s.lr = lr,
        }
        self
    }

    /// The optimizer's short name (`adam`, `adamw`, `sgd`).
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::AdamW { .. } => "adamw",
            OptimizerConfig::Sgd(_) => "sgd",
        }
    }

    /// Checks the ranges of the hyper-parameters.
    ///
    /// # Errors
    /// A non-finite or non-positive learning rate, β outside `[0, 1)`, a negative ε,
    /// weight decay or momentum, or Nesterov without momentum.
    pub fn validate(&self) -> Result<()> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(config("optimizer.lr", format!("must be > 0, got {lr}")));
        }
        let check_adam = |a: &AdamConfig| -> Result<()> {
            for (name, b) in [("optimizer.beta1", a.beta1), ("optimizer.beta2", a.beta2)] {
                if !(0.0..1.0).contains(&b) {
                    return Err(config(name, format!("must be in [0, 1), got {b}")));
                }
            }
            if !(a.epsilon.is_finite() && a.epsilon >= 0.0) {
                return Err(config(
                    "optimizer.epsilon",
                    format!("must be >= 0, got {}", a.epsilon),
                ));
            }
            Ok(())
        };
        match self {
            OptimizerConfig::Adam(a) => check_adam(a),
            OptimizerConfig::AdamW { adam, weight_decay } => {
                check_adam(adam)?;
                non_negative("optimizer.weight_decay", *weight_decay)
            }
            OptimizerConfig::Sgd(s) => {
                non_negative("optimizer.momentum", s.momentum)?;
                non_negative("optimizer.weight_decay", s.weight_decay)?;
                if s.nesterov && s.momentum <= 0.0 {
                    return Err(config(
                        "optimizer.nesterov",
                        "Nesterov momentum needs momentum > 0",
                    ));
                }
                Ok(())
            }
        }
    }
}

fn non_negative(option: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(config(option, format!("must be >= 0, got {v}")))
    }
}

/// Per-parameter state.
#[derive(Debug, Default)]
struct ParamState {
    /// Steps taken by this parameter (PyTorch counts per parameter).
    step: i64,
    /// Adam's first moment, or SGD's momentum buffer.
    first: Option<Tensor>,
    /// Adam's second moment.
    second: Option<Tensor>,
}

/// An optimizer over named parameters, with a learning rate that callbacks change and a
/// state that [`Optimizer::state_tensors`] exports.
#[derive(Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    lr: f64,
    params: Vec<(String, Tensor)>,
    state: Vec<ParamState>,
}

impl Optimizer {
    /// An optimizer over `params` (name, tensor requiring grad).
    ///
    /// # Errors
    /// An invalid configuration, duplicate names, or a parameter that does not require
    /// gradients.
    pub fn new(cfg: OptimizerConfig, params: Vec<(String, Tensor)>) -> Result<Self> {
        cfg.validate()?;
        let mut seen = std::collections::HashSet::new();
        for (name, t) in &params {
            if !seen.insert(name.as_str()) {
                return Err(config_err_dup(name));
            }
            if !t.requires_grad() {
                return Err(config(
                    "optimizer.params",
                    format!("parameter `{name}` does not require gradients"),
                ));
            }
        }
        let state = params.iter().map(|_| ParamState::default()).collect();
        Ok(Self {
            lr: cfg.lr(),
            config: cfg,
            params,
            state,
        })
    }

    /// An optimizer over the variables of `vs` that require gradients, ordered by name.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn for_var_store(config: OptimizerConfig, vs: &VarStore) -> Result<Self> {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Self::new(config, params)
    }

    /// The configuration it was built with (its `lr` is the initial learning rate).
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// The current learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate used by the next steps.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// The names of the parameters it updates, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|(n, _)| n.as_str())
    }

    /// The number of steps taken (the largest per-parameter count).
    pub fn steps(&self) -> i64 {
        self.state.iter().map(|s| s.step).max().unwrap_or(0)
    }

    /// The parameters it updates (shallow clones sharing storage and gradients), in
    /// [`Optimizer::param_names`]' order.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.params.iter().map(|(_, p)| p.shallow_clone()).collect()
    }

    /// Zeroes the gradients of every parameter.
    pub fn zero_grad(&mut self) {
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(Tensor::defined)
            .collect();
        if df_sys::optim::zero(&grads).is_err() {
            // Tensors libtorch's multi-tensor zeroing refuses: one at a time.
            for (_, p) in &mut self.params {
                p.zero_grad();
            }
        }
    }

    /// Applies one update to every parameter that has a gradient (parameters without one
    /// are skipped and their step count does not advance, as in PyTorch).
    ///
    /// # Errors
    /// A gradient whose shape differs from its parameter's.
    pub fn step(&mut self) -> Result<()> {
        let lr = self.lr;
        let cfg = self.config;
        tch::no_grad(|| -> Result<()> {
            // Adam's parameters by step count: each group is one multi-tensor update.
            let mut adam: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for (i, ((name, p), st)) in self.params.iter().zip(self.state.iter_mut()).enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                if g.size() != p.size() {
                    return Err(Error::Shape {
                        what: format!("gradient of `{name}`"),
                        expected: format!("{:?}", p.size()),
                        got: g.size(),
                    });
                }
                st.step += 1;
                match cfg {
                    OptimizerConfig::Adam(_) | OptimizerConfig::AdamW { .. } => {
                        st.first.get_or_insert_with(|| g.zeros_like());
                        st.second.get_or_insert_with(|| g.zeros_like());
                        adam.entry(st.step).or_default().push(i);
                    }
                    OptimizerConfig::Sgd(s) => sgd_step(&mut p.shallow_clone(), &g, st, &s, lr),
                }
            }
            let (a, weight_decay) = match cfg {
                OptimizerConfig::Adam(a) => (a, 0.0),
                OptimizerConfig::AdamW { adam, weight_decay } => (adam, weight_decay),
                OptimizerConfig::Sgd(_) => return Ok(()),
            };
            for (step, members) in adam {
                self.adam_group(&members, &adam_scalars(&a, lr, weight_decay, step))?;
            }
            Ok(())
        })
    }

    /// One multi-tensor Adam update of the parameters `members` (moments initialised).
    fn adam_group(&self, members: &[usize], s: &df_sys::optim::AdamScalars) -> Result<()> {
        let pick = |f: &dyn Fn(usize) -> Tensor| members.iter().map(|&i| f(i)).collect::<Vec<_>>();
        let moment = |t: &Option<Tensor>| t.as_ref().map(Tensor::shallow_clone);
        let params = pick(&|i| self.params[i].1.shallow_clone());
        let grads = pick(&|i| self.params[i].1.grad());
        let (Some(m), Some(v)) = (
            members
                .iter()
                .map(|&i| moment(&self.state[i].first))
                .collect::<Option<Vec<_>>>(),
            members
                .iter()
                .map(|&i| moment(&self.state[i].second))
                .collect::<Option<Vec<_>>>(),
        ) else {
            return Err(config("optimizer", "Adam's moments were not initialised"));
        };
        df_sys::optim::adam_step(&params, &grads, &m, &v, s)
            .map_err(shim(format!("Adam step over {} parameters", members.len())))
    }

    /// The state as named tensors (`{kind}/{param}`: `step`, `exp_avg`, `exp_avg_sq`,
    /// `momentum_buffer`), to be saved in a checkpoint. Copies, on the parameters' device.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let (first, second) = self.state_names();
        let mut out = Vec::new();
        for ((name, _), st) in self.params.iter().zip(&self.state) {
            out.push((format!("step/{name}"), Tensor::from(st.step)));
            if let Some(t) = &st.first {
                out.push((format!("{first}/{name}"), t.copy()));
            }
            if let (Some(t), Some(second)) = (&st.second, second) {
                out.push((format!("{second}/{name}"), t.copy()));
            }
        }
        out
    }

    /// Restores the state exported by [`Self::state_tensors`] (tensors are moved to each
    /// parameter's device).
    ///
    /// # Errors
    /// A missing step count, or a moment whose shape differs from its parameter's.
    pub fn load_state_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let (first, second) = self.state_names();
        let mut new_state = Vec::with_capacity(self.params.len());
        for (name, p) in &self.params {
            let step_name = format!("step/{name}");
            let step = tensors
                .get(&step_name)
                .ok_or_else(|| config("optimizer state", format!("`{step_name}` is missing")))?;
            let step = i64::try_from(step).map_err(crate::error::torch(step_name))?;
            let take = |kind: &str| -> Result<Option<Tensor>> {
                let key = format!("{kind}/{name}");
                match tensors.get(&key) {
                    None => Ok(None),
                    Some(t) if t.size() == p.size() => Ok(Some(
                        t.to_device(p.device()).to_kind(p.kind()).detach().copy(),
                    )),
                    Some(t) => Err(Error::Shape {
                        what: format!("optimizer state `{key}`"),
                        expected: format!("{:?}", p.size()),
                        got: t.size(),
                    }),
                }
            };
            let first_t = take(first)?;
            let second_t = match second {
                Some(s) => take(s)?,
                None => None,
            };
            new_state.push(ParamState {
                step,
                first: first_t,
                second: second_t,
            });
        }
        self.state = new_state;
        Ok(())
    }

    fn state_names(&self) -> (&'static str, Option<&'static str>) {
        match self.config {
            OptimizerConfig::Sgd(_) => ("momentum_buffer", None),
            _ => ("exp_avg", Some("exp_avg_sq")),
        }
    }
}

fn config_err_dup(name: &str) -> Error {
    config(
        "optimizer.params",
        format!("parameter `{name}` is given twice"),
    )
}

/// Adam's step `t` as one multi-tensor update: the bias corrections folded into the
/// step size and, for PyTorch's ε, the denominator.
fn adam_scalars(a: &AdamConfig, lr: f64, weight_decay: f64, t: i64) -> df_sys::optim::AdamScalars {
    let t = t.min(i64::from(i32::MAX)) as i32;
    let bias1 = 1.0 - a.beta1.powi(t);
    let bias2 = 1.0 - a.beta2.powi(t);
    let (denom_div, step) = match a.epsilon_mode {
        // p −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε)
        EpsilonMode::Keras => (1.0, -lr * bias2.sqrt() / bias1),
        // p −= lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)
        EpsilonMode::Torch => (bias2.sqrt(), -lr / bias1),
    };
    df_sys::optim::AdamScalars {
        decay: if weight_decay > 0.0 {
            1.0 - lr * weight_decay
        } else {
            1.0
        },
        beta1: a.beta1,
        beta2: a.beta2,
        eps: a.epsilon,
        denom_div,
        step,
    }
}

fn sgd_step(p: &mut Tensor, g: &Tensor, st: &mut ParamState, s: &SgdConfig, lr: f64) {
    let mut d = if s.weight_decay > 0.0 {
        g + &*p * s.weight_decay
    } else {
        g.shallow_clone()
    };
    if s.momentum > 0.0 {
        let buf = match st.first.take() {
            None => d.detach().copy(),
            Some(mut buf) => {
                buf *= s.momentum;
                buf += &d;
                buf
            }
        };
        d = if s.nesterov {
            d + &buf * s.momentum
        } else {
            buf.shallow_clone()
        };
        st.first = Some(buf);
    }
    *p -= d * lr;
}
