//! The one place a detector's output becomes logits of "fake": the trainer's steps, its
//! validation, [`crate::evaluate`] and [`crate::predict`] all go through
//! [`detector_logits`], so they cannot disagree on the mode, the frozen backbone or the
//! shape check.

use df_models::Model;
use tch::{Device, Kind, Tensor};

use crate::error::{torch, Error, Result};
use crate::precision::Precision;

/// How a batch goes through the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Inference: dropout off, batch norm on its moving statistics.
    Eval,
    /// A training step: every layer in training mode.
    Train,
    /// A training step with a frozen backbone (Keras `trainable=False`): the backbone in
    /// inference mode without gradients, the head in training mode.
    TrainHead,
}

/// Logits of "fake" `[N]` for preprocessed inputs `[N, 3, H, W]`.
///
/// # Errors
/// [`Error::Shape`] naming the model when its output is not `[N, 1]` (an ImageNet top or
/// a backbone is not a detector).
pub fn detector_logits(model: &dyn Model, xs: &Tensor, pass: Pass) -> Result<Tensor> {
    detector_logits_in(model, xs, pass, Precision::F32)
}

/// [`detector_logits`] with the forward pass in `precision` (under libtorch's autocast
/// for `bf16` and `f16`); the logits come back as `f32` in every precision.
///
/// # Errors
/// As [`detector_logits`]; [`Error::Config`] (`precision`) when autocast cannot start on
/// the input's device.
pub fn detector_logits_in(
    model: &dyn Model,
    xs: &Tensor,
    pass: Pass,
    precision: Precision,
) -> Result<Tensor> {
    let scope = precision.scope(xs.device())?;
    let out = match pass {
        Pass::Eval => model.forward_t(xs, false),
        Pass::Train => model.forward_t(xs, true),
        Pass::TrainHead => {
            let features = tch::no_grad(|| model.forward_features(xs, false));
            model.forward_head(&features, true)
        }
    };
    drop(scope);
    let out = out.to_kind(Kind::Float);
    let n = xs.size().first().copied().unwrap_or(0);
    if out.size() != [n, 1] {
        return Err(Error::Shape {
            what: format!("output of model `{}`", model.name()),
            expected: format!("[{n}, 1] (one logit of \"fake\" per image)"),
            got: out.size(),
        });
    }
    Ok(out.view([n]))
}

/// The one place accuracy is counted, Keras' `binary_accuracy` on logits:
/// `sigmoid(z) > 0.5` ⇔ `z > 0`, against `y > 0.5`; the number of hits, an `Int64`
/// scalar left on the device (the training steps add them up there between checks).
pub(crate) fn hits(logits: &Tensor, ys: &Tensor) -> Tensor {
    logits.gt(0.0).eq_tensor(&ys.gt(0.5)).sum(Kind::Int64)
}

/// [`hits`], read back.
pub(crate) fn correct_count(logits: &Tensor, ys: &Tensor) -> Result<i64> {
    i64::try_from(&hits(logits, ys)).map_err(torch("counting correct predictions"))
}

/// A tensor's values as `f32` on the host.
pub(crate) fn to_vec_f32(t: &Tensor) -> Result<Vec<f32>> {
    let t = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .view([-1]);
    Vec::<f32>::try_from(&t).map_err(torch("copying values to the host"))
}
