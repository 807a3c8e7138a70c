//! The validation of an epoch's end, through the loop evaluation uses
//! ([`crate::evaluate::for_each_scored_batch`]): the same pass, precision and logits as
//! [`crate::evaluate_in`], and accuracy counted where the training steps count it
//! ([`crate::logits::correct_count`]).

use df_metrics::{BinaryEvaluator, EvaluatorConfig, Metric};
use tch::{Device, Kind, Tensor};

use super::epoch::Mean;
use super::Trainer;
use crate::error::{torch, Result};
use crate::evaluate::for_each_scored_batch;
use crate::logits::{correct_count, to_vec_f32};
use crate::source::BatchSource;

/// An epoch's validation metrics.
pub(super) struct Validation {
    /// The mean loss with the L2 penalty (as Keras' `val_loss`).
    pub loss: f64,
    /// The share of correct predictions at logit 0.
    pub accuracy: f64,
    /// The ROC AUC; `None` with one class, or when a score is not finite.
    pub auc: Option<f64>,
}

impl Trainer {
    /// Loss (with the L2 penalty), accuracy and AUC of the model on `source`, in eval
    /// mode. In a distributed run every rank's share of the validation set counts: one set
    /// of metrics, the same on every rank (early stopping and the learning-rate schedule
    /// agree).
    pub(super) fn validate(&self, source: &dyn BatchSource) -> Result<Validation> {
        let device = self.vs.device();
        let mut mean = Mean::default();
        let (mut all_probs, mut all_labels) = (Vec::new(), Vec::new());
        let precision = self.config.precision;
        for_each_scored_batch(
            self.model.as_ref(),
            source,
            device,
            precision,
            |b, logits| {
                let ys = b.labels.to_device(device).to_kind(Kind::Float);
                let loss = self.loss.compute(logits, &ys);
                let value = f64::try_from(&loss).map_err(torch("reading the validation loss"))?;
                mean.add(value, ys.size()[0], correct_count(logits, &ys)?);
                all_probs.extend(to_vec_f32(&logits.sigmoid())?);
                all_labels.extend(to_vec_f32(&ys)?);
                Ok(())
            },
        )?;
        if let Some(group) = &self.group {
            mean = mean.across(group)?;
            let gather = |v: &[f32]| -> Result<Vec<f32>> {
                let all =
                    group.all_gather_uneven(&Tensor::from_slice(v).to_device(group.device()))?;
                Vec::<f32>::try_from(&all.to_device(Device::Cpu))
                    .map_err(torch("reading the gathered scores"))
            };
            all_probs = gather(&all_probs)?;
            all_labels = gather(&all_labels)?;
        }
        let mut evaluator = BinaryEvaluator::new(EvaluatorConfig::default())?;
        if !all_probs.is_empty() && all_probs.iter().all(|p| p.is_finite()) {
            evaluator.update(&all_probs, &all_labels)?;
        }
        let l2 =
            f64::try_from(&self.model.l2_penalty()).map_err(torch("reading the L2 penalty"))?;
        // Non-finite scores were left out of the evaluator (the loss already says NaN);
        // the AUC is reported only when every sample was scored. `auc` is `None` when
        // the validation set holds one class.
        let auc = if mean.n > 0 && evaluator.count() == mean.n as u64 {
            evaluator.compute()?.auc
        } else {
            None
        };
        Ok(Validation {
            loss: mean.loss() + l2,
            accuracy: mean.accuracy(),
            auc,
        })
    }
}
