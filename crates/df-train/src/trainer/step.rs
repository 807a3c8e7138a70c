//! One training step: the forward pass and the loss of a batch, then the backward pass,
//! the gradients averaged across ranks, the loss scaler and the optimizer's step.

use df_dist::ddp::GradientAverager;
use tch::{Kind, Tensor};

use super::epoch::{Phase, PhaseClock};
use super::Trainer;
use crate::error::Result;
use crate::logits::Pass;
use crate::source::Batch;

/// A batch on the device, through the model: its labels, logits and total loss.
pub(super) struct Forward {
    /// The labels, `f32` `[N]`.
    pub ys: Tensor,
    /// The logits of "fake" `[N]`.
    pub logits: Tensor,
    /// The loss with the L2 penalty, the scalar the backward pass starts from.
    pub total: Tensor,
}

impl Trainer {
    /// Logits of "fake" `[N]` for preprocessed inputs `[N, 3, H, W]`, in training mode (the
    /// head alone with a frozen backbone) or in eval mode.
    pub(super) fn logits(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let pass = match (train, self.config.freeze_backbone) {
            (false, _) => Pass::Eval,
            (true, false) => Pass::Train,
            (true, true) => Pass::TrainHead,
        };
        crate::logits::detector_logits_in(self.model.as_ref(), xs, pass, self.config.precision)
    }

    /// Moves `batch` to the device (`Data`), then the forward pass and the loss (the data
    /// term, weighted by the batch's weights when it has them, plus the model's L2 penalty).
    pub(super) fn forward(&self, batch: &Batch, clock: &mut PhaseClock) -> Result<Forward> {
        let device = self.vs.device();
        let xs = batch.inputs.to_device(device).to_kind(Kind::Float);
        let ys = batch.labels.to_device(device).to_kind(Kind::Float);
        clock.lap(Phase::Data);
        let logits = self.logits(&xs, true)?;
        let weights = batch.weights.as_ref().map(|w| w.to_device(device));
        let total = self.loss.compute_weighted(&logits, &ys, weights.as_ref())
            + self.model.l2_penalty().to_device(device);
        Ok(Forward { ys, logits, total })
    }

    /// The backward pass from `total`, the gradients averaged across the ranks
    /// (`Backward`), and the optimizer's step. With a loss scaler (`f16`), as
    /// `torch.amp.GradScaler`: backward on the scaled loss, unscale, step only when every
    /// gradient is finite, then update the scale (averaged scaled gradients: every rank
    /// finds the same infs).
    pub(super) fn backward_and_step(
        &mut self,
        total: &Tensor,
        averager: Option<&GradientAverager>,
        clock: &mut PhaseClock,
    ) -> Result<()> {
        self.optimizer.zero_grad();
        match &self.scaler {
            None => total.backward(),
            Some(scaler) => scaler.scale_loss(total).backward(),
        }
        if let (Some(group), Some(averager)) = (&self.group, averager) {
            averager.average(group)?;
        }
        clock.lap(Phase::Backward);
        match &mut self.scaler {
            None => self.optimizer.step()?,
            Some(scaler) => {
                let found_inf = scaler.unscale(&self.optimizer.parameters())?;
                if !found_inf {
                    self.optimizer.step()?;
                }
                scaler.update(found_inf);
            }
        }
        Ok(())
    }
}
