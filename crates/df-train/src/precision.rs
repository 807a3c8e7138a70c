//! Mixed precision: the compute dtype of a run ([`Precision`]) and dynamic loss scaling
//! for `f16` ([`GradScaler`], PyTorch's `torch.amp.GradScaler` semantics).
//!
//! Under `bf16` or `f16`, the forward pass runs inside libtorch's autocast for the device
//! (through `df-sys`): convolutions and matrix products in the low-precision dtype, the
//! rest as libtorch's policy says; the parameters, the optimizer's state, batch-norm
//! statistics, the loss and the metrics stay `f32`, and the logits are returned as `f32`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use df_sys::autocast::Autocast;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{config, shim, torch, Error, Result};

/// The compute precision of training, evaluation and prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in `f32` (the default).
    #[default]
    F32,
    /// Autocast to bfloat16 (CPU and CUDA): the range of f32, so no loss scaling.
    Bf16,
    /// Autocast to float16 (meant for CUDA; the CPU runs it too, slowly where the CPU
    /// has no f16 arithmetic), with dynamic loss scaling ([`GradScaler`]) in training.
    F16,
}

impl Precision {
    /// Every precision, in order.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::F16];

    /// The name (`f32`, `bf16`, `f16`) as options and files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// Reads a precision: `f32`/`fp32`/`float32`, `bf16`/`bfloat16`, `f16`/`fp16`/
    /// `float16`/`half` (any case).
    ///
    /// # Errors
    /// [`Error::Config`] (`precision`) listing the accepted names.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" | "float" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            _ => Err(config(
                "precision",
                format!("`{s}` is not a precision: use f32, bf16 or f16"),
            )),
        }
    }

    /// The dtype autocast computes in, `None` for full precision.
    pub fn autocast_kind(self) -> Option<Kind> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(Kind::BFloat16),
            Precision::F16 => Some(Kind::Half),
        }
    }

    /// Whether training in this precision scales the loss (f16's narrow range).
    pub fn scales_loss(self) -> bool {
        self == Precision::F16
    }

    /// Checks that `device` can run this precision, before any work starts.
    ///
    /// # Errors
    /// [`Error::Config`] (`precision`) when libtorch has no autocast for the device.
    pub fn check(self, device: Device) -> Result<()> {
        if self == Precision::F32 {
            return Ok(());
        }
        match df_sys::autocast::is_available(device) {
            Ok(true) => Ok(()),
            Ok(false) => Err(config(
                "precision",
                format!("{self} needs autocast, which libtorch lacks for {device:?}"),
            )),
            Err(e) => Err(config("precision", e.to_string())),
        }
    }

    /// The autocast scope of this precision on `device` (`None` for `f32`): the forward
    /// passes run while it lives. Per thread.
    ///
    /// # Errors
    /// [`Error::Config`] (`precision`) when autocast cannot start on the device.
    pub fn scope(self, device: Device) -> Result<Option<Autocast>> {
        Autocast::maybe(device, self.autocast_kind())
            .map_err(|e| config("precision", format!("{self} on {device:?}: {e}")))
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// The variable that overrides the detection of bf16 hardware, for tests: `1` says the
/// device computes bf16 natively, `0` that it does not.
pub const BF16_HARDWARE_VAR: &str = "DF_BF16_HARDWARE";

/// Whether `device` computes bf16 natively, and why: on the CPU its `avx512_bf16` or
/// `amx_bf16` instructions (without them bf16 autocast is emulated and 5–6× slower than
/// f32, on both libtorch and PyTorch: `docs/reliability.md`); on CUDA a compute
/// capability of 8.0 or more. [`BF16_HARDWARE_VAR`] overrides the answer.
pub fn bf16_hardware(device: Device) -> (bool, String) {
    match std::env::var(BF16_HARDWARE_VAR).as_deref() {
        Ok("1") => return (true, format!("{BF16_HARDWARE_VAR}=1 says so")),
        Ok("0") => return (false, format!("{BF16_HARDWARE_VAR}=0 says so")),
        _ => {}
    }
    match device {
        Device::Cuda(i) => match df_sys::device::cuda_compute_capability(i) {
            Some((major, minor)) if major >= 8 => (
                true,
                format!("cuda:{i} has compute capability {major}.{minor}"),
            ),
            Some((major, minor)) => (
                false,
                format!("cuda:{i} has compute capability {major}.{minor}, under 8.0"),
            ),
            None => (
                true,
                format!("the compute capability of cuda:{i} is unknown"),
            ),
        },
        _ => {
            let flags = df_sys::device::cpu_bf16_flags();
            if flags.is_empty() {
                (
                    false,
                    "this CPU has no bf16 instructions (neither avx512_bf16 nor amx_bf16)".into(),
                )
            } else {
                (true, format!("this CPU has {}", flags.join(" and ")))
            }
        }
    }
}

/// A precision as a program's `--precision` takes it: one of [`Precision`], or `auto`
/// (bf16 where the device computes it natively, else f32; [`bf16_hardware`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrecisionChoice {
    /// This precision.
    Fixed(Precision),
    /// bf16 where the hardware has it, else f32.
    Auto,
}

impl PrecisionChoice {
    /// Reads `auto` or a [`Precision`] name.
    ///
    /// # Errors
    /// As [`Precision::parse`], naming `auto` too.
    pub fn parse(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        Precision::parse(s).map(Self::Fixed).map_err(|_| {
            config(
                "precision",
                format!("`{s}` is not a precision: use auto, f32, bf16 or f16"),
            )
        })
    }

    /// The precision to run on `device`, and what the program should say on stderr before
    /// the work starts: what `auto` chose and why, or a warning that bf16 is asked for on
    /// hardware that emulates it (with the way back, `--precision f32`).
    pub fn resolve(self, device: Device) -> (Precision, Option<String>) {
        match self {
            Self::Auto => {
                let (native, why) = bf16_hardware(device);
                let chosen = if native {
                    Precision::Bf16
                } else {
                    Precision::F32
                };
                (
                    chosen,
                    Some(format!("note: --precision auto chose {chosen}: {why}")),
                )
            }
            Self::Fixed(Precision::Bf16) => match bf16_hardware(device) {
                (true, _) => (Precision::Bf16, None),
                (false, why) => (
                    Precision::Bf16,
                    Some(format!(
                        "warning: --precision bf16: {why}, so bf16 is emulated and runs \
                         several times slower than f32 (5-6x measured on an AVX2-only \
                         EPYC); use --precision f32 (or auto)"
                    )),
                ),
            },
            Self::Fixed(p) => (p, None),
        }
    }
}

impl FromStr for PrecisionChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// The settings of dynamic loss scaling, with `torch.amp.GradScaler`'s defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradScalerConfig {
    /// The first scale (2^16).
    pub init_scale: f64,
    /// The factor the scale grows by after `growth_interval` steps without inf/NaN (2).
    pub growth_factor: f64,
    /// The factor the scale shrinks by on a step with inf/NaN gradients (0.5).
    pub backoff_factor: f64,
    /// Good steps before the scale grows (2000).
    pub growth_interval: u32,
}

impl Default for GradScalerConfig {
    fn default() -> Self {
        Self {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

impl GradScalerConfig {
    /// Checks the settings as PyTorch does (`growth_factor > 1`, `0 < backoff_factor < 1`)
    /// plus a finite positive `init_scale` and a non-zero interval.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            return Err(config(
                "grad_scaler.init_scale",
                format!("{} is not a finite positive scale", self.init_scale),
            ));
        }
        if !(self.growth_factor.is_finite() && self.growth_factor > 1.0) {
            return Err(config(
                "grad_scaler.growth_factor",
                format!("{} must be above 1", self.growth_factor),
            ));
        }
        if !(self.backoff_factor > 0.0 && self.backoff_factor < 1.0) {
            return Err(config(
                "grad_scaler.backoff_factor",
                format!("{} must be between 0 and 1", self.backoff_factor),
            ));
        }
        if self.growth_interval == 0 {
            return Err(config("grad_scaler.growth_interval", "must be at least 1"));
        }
        Ok(())
    }
}

/// Dynamic loss scaling, as `torch.amp.GradScaler`: the loss is multiplied by the scale
/// before `backward` so that small f16 gradients do not flush to zero; the gradients are
/// divided by it again ([`GradScaler::unscale`]) before anything reads them; a step whose
/// gradients hold an inf or NaN is skipped and the scale backs off; after
/// `growth_interval` good steps in a row it grows. The update is libtorch's own kernel
/// (`_amp_update_scale_`). Device-agnostic: the state lives on the parameters' device.
#[derive(Debug)]
pub struct GradScaler {
    config: GradScalerConfig,
    /// `[1]` f32.
    scale: Tensor,
    /// `[1]` i32: good steps since the last change of scale.
    growth_tracker: Tensor,
    /// Steps skipped since the scaler was made (or restored).
    skipped: u64,
}

impl GradScaler {
    /// A scaler at `config.init_scale` on `device`.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn new(config: GradScalerConfig, device: Device) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            scale: Tensor::from_slice(&[config.init_scale as f32]).to_device(device),
            growth_tracker: Tensor::zeros([1], (Kind::Int, device)),
            skipped: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GradScalerConfig {
        &self.config
    }

    /// The current scale (a read from the device).
    ///
    /// # Errors
    /// A libtorch error reading it.
    pub fn scale(&self) -> Result<f64> {
        self.scale
            .f_double_value(&[0])
            .map_err(torch("reading the loss scale"))
    }

    /// Steps skipped for inf/NaN gradients.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// `loss × scale`, to call `backward` on.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * self.scale.to_kind(loss.kind())
    }

    /// Divides the gradients of `params` (those that have one) by the scale in place and
    /// says whether any of them holds an inf or NaN, as
    /// `_amp_foreach_non_finite_check_and_unscale_` does: one multi-tensor call through
    /// df-sys, one read from the device.
    ///
    /// # Errors
    /// A libtorch error.
    pub fn unscale(&self, params: &[Tensor]) -> Result<bool> {
        let inv = self
            .scale
            .to_kind(Kind::Double)
            .reciprocal()
            .to_kind(Kind::Float);
        let grads: Vec<Tensor> = params
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
            .collect();
        let found = Tensor::zeros([1], (Kind::Float, self.scale.device()));
        df_sys::optim::unscale_gradients(&grads, &found, &inv)
            .map_err(shim("unscaling the gradients"))?;
        let found = found
            .f_double_value(&[0])
            .map_err(torch("checking the gradients for inf/NaN"))?;
        Ok(found != 0.0)
    }

    /// Updates the scale after a step: backs off (and counts a skipped step) when
    /// `found_inf`, grows after `growth_interval` good steps in a row.
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.skipped += 1;
        }
        let found = Tensor::from_slice(&[if found_inf { 1.0f32 } else { 0.0 }])
            .to_device(self.scale.device());
        tch::no_grad(|| {
            let _ = self.scale.internal_amp_update_scale_(
                &self.growth_tracker,
                &found,
                self.config.growth_factor,
                self.config.backoff_factor,
                i64::from(self.config.growth_interval),
            );
        });
    }

    /// The state as named tensors (`scale`, `growth_tracker`), for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        vec![
            ("scale".into(), self.scale.copy()),
            ("growth_tracker".into(), self.growth_tracker.copy()),
        ]
    }

    /// Restores [`GradScaler::state_tensors`].
    ///
    /// # Errors
    /// [`Error::Config`] (`grad_scaler`) when a tensor is missing or has another shape or
    /// dtype.
    pub fn load_state_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        for (name, target, kind) in [
            ("scale", &mut self.scale, Kind::Float),
            ("growth_tracker", &mut self.growth_tracker, Kind::Int),
        ] {
            let t = tensors.get(name).ok_or_else(|| {
                config(
                    "grad_scaler",
                    format!("the checkpoint has no `scaler/{name}`"),
                )
            })?;
            if t.size() != [1] || t.kind() != kind {
                return Err(config(
                    "grad_scaler",
                    format!(
                        "`scaler/{name}` is {:?} {:?}, not [1] {kind:?}",
                        t.kind(),
                        t.size()
                    ),
                ));
            }
            *target = t.to_device(target.device());
        }
        Ok(())
    }
}
