//! Running a trained model over a data source and scoring it with `df-metrics`.

use df_metrics::{BinaryEvaluator, Evaluation, EvaluatorConfig, Metric, Report};
use df_models::Model;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::logits::{detector_logits_in, to_vec_f32, Pass};
use crate::precision::Precision;
use crate::source::{Batch, BatchSource};

/// Probabilities of "fake" and labels, as the model scored a data source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    /// `sigmoid(logit)` per sample, in the source's order.
    pub scores: Vec<f32>,
    /// The labels (1 = fake, 0 = real).
    pub labels: Vec<u8>,
}

/// One pass over `source` (its epoch 0) in eval mode, without gradients: `each` gets
/// every batch with its logits of "fake" `[N]`. The one loop of evaluation, prediction and
/// the trainer's validation, so that they score a batch the same way.
pub(crate) fn for_each_scored_batch(
    model: &dyn Model,
    source: &dyn BatchSource,
    device: Device,
    precision: Precision,
    mut each: impl FnMut(&Batch, &Tensor) -> Result<()>,
) -> Result<()> {
    tch::no_grad(|| -> Result<()> {
        for batch in source.epoch_batches(0)? {
            let batch = batch?;
            let xs = batch.inputs.to_device(device).to_kind(Kind::Float);
            let logits = detector_logits_in(model, &xs, Pass::Eval, precision)?;
            each(&batch, &logits)?;
        }
        Ok(())
    })
}

/// [`for_each_scored_batch`] with the scores (`sigmoid(logit)`) and labels on the host;
/// a non-finite score is an error naming the sample.
fn run(
    model: &dyn Model,
    source: &dyn BatchSource,
    device: Device,
    precision: Precision,
    mut each: impl FnMut(&[f32], &[u8]) -> Result<()>,
) -> Result<()> {
    for_each_scored_batch(model, source, device, precision, |batch, logits| {
        let scores = to_vec_f32(&logits.sigmoid())?;
        if let Some(i) = scores.iter().position(|p| !p.is_finite()) {
            let sample = match batch.paths.get(i) {
                Some(path) => path.display().to_string(),
                None => format!("sample {} of its batch", i + 1),
            };
            return Err(Error::NonFiniteScore {
                sample,
                value: f64::from(scores[i]),
                model: model.name().to_string(),
            });
        }
        let labels: Vec<u8> = to_vec_f32(&batch.labels)?
            .into_iter()
            .map(|l| u8::from(l > 0.5))
            .collect();
        each(&scores, &labels)
    })
}

/// Scores every sample of `source` (one pass of its epoch 0, in eval mode, without
/// gradients) with a streaming [`BinaryEvaluator`], and returns the report with its ROC,
/// PR and calibration curves. Memory grows by 4 bytes per sample (the exact ranking
/// metrics keep every score), not with the images.
///
/// # Errors
/// A data error, a model output that is not `[N, 1]`, a non-finite score, or an empty
/// source.
pub fn evaluate(
    model: &dyn Model,
    source: &dyn BatchSource,
    device: Device,
    config: EvaluatorConfig,
) -> Result<Evaluation> {
    evaluate_in(model, source, device, config, Precision::F32)
}

/// [`evaluate`] with the forward passes in `precision` (autocast for `bf16`/`f16`; the
/// scores and metrics stay `f32`).
///
/// # Errors
/// As [`evaluate`]; a precision the device cannot run.
pub fn evaluate_in(
    model: &dyn Model,
    source: &dyn BatchSource,
    device: Device,
    config: EvaluatorConfig,
    precision: Precision,
) -> Result<Evaluation> {
    precision.check(device)?;
    let mut evaluator = BinaryEvaluator::new(config)?;
    run(model, source, device, precision, |s, l| {
        Ok(evaluator.update(s, l)?)
    })?;
    Ok(evaluator.into_evaluation()?)
}

/// [`evaluate`]'s report alone, at the default threshold 0.5.
///
/// # Errors
/// See [`evaluate`].
pub fn evaluate_report(
    model: &dyn Model,
    source: &dyn BatchSource,
    device: Device,
) -> Result<Report> {
    Ok(evaluate(model, source, device, EvaluatorConfig::default())?.report)
}

/// The scores and labels of every sample of `source`, in order.
///
/// # Errors
/// See [`evaluate`].
pub fn predict(model: &dyn Model, source: &dyn BatchSource, device: Device) -> Result<Predictions> {
    predict_in(model, source, device, Precision::F32)
}

/// [`predict`] with the forward passes in `precision`.
///
/// # Errors
/// As [`predict`]; a precision the device cannot run.
pub fn predict_in(
    model: &dyn Model,
    source: &dyn BatchSource,
    device: Device,
    precision: Precision,
) -> Result<Predictions> {
    precision.check(device)?;
    let mut out = Predictions::default();
    run(model, source, device, precision, |s, l| {
        out.scores.extend_from_slice(s);
        out.labels.extend_from_slice(l);
        Ok(())
    })?;
    Ok(out)
}
