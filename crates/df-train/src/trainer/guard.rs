//! The guard of a training epoch: the finite checks of the training loss (every batch, or
//! every [`super::TrainerBuilder::nan_check_interval`] batches with a snapshot of the last
//! good state to roll back to), and the divergence check of an epoch's end.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use super::epoch::Mean;
use super::Trainer;
use crate::error::{torch, Error, Result};
use crate::logits::hits;
use crate::progress::Progress;

/// The training loss and correct predictions of the batches since the last check, summed
/// on the device (one read per check).
#[derive(Default)]
struct Pending {
    loss_sum: Option<Tensor>,
    correct: Option<Tensor>,
    n: i64,
    batches: usize,
}

impl Pending {
    fn add(&mut self, loss: &Tensor, logits: &Tensor, ys: &Tensor) {
        let n = ys.size().first().copied().unwrap_or(0);
        let loss = loss.detach().to_kind(Kind::Double) * n as f64;
        let hits = hits(logits, ys).to_kind(Kind::Double);
        self.loss_sum = Some(match self.loss_sum.take() {
            Some(sum) => sum + loss,
            None => loss,
        });
        self.correct = Some(match self.correct.take() {
            Some(sum) => sum + hits,
            None => hits,
        });
        self.n += n;
        self.batches += 1;
    }

    /// (loss sum, correct, images, batches) since the last take, read in one transfer.
    fn take(&mut self) -> Result<(f64, i64, i64, usize)> {
        let (n, batches) = (self.n, self.batches);
        let sums = match (self.loss_sum.take(), self.correct.take()) {
            (Some(l), Some(c)) => Tensor::stack(&[l, c], 0),
            _ => return Ok((0.0, 0, 0, 0)),
        };
        let v = Vec::<f64>::try_from(&sums.to_device(Device::Cpu))
            .map_err(torch("reading the loss"))?;
        *self = Pending::default();
        Ok((v[0], v[1].round() as i64, n, batches))
    }
}

/// Copies of the variables, the optimizer's and the loss scaler's state, kept on their
/// device, to roll back to.
struct Snapshot {
    variables: Vec<(Tensor, Tensor)>,
    optimizer: HashMap<String, Tensor>,
    scaler: HashMap<String, Tensor>,
}

/// One epoch's guard: with an interval of one batch, each loss is read and checked before
/// its step; with a longer one, the losses add up on the device ([`Pending`]) and are
/// checked every `interval` batches, against a [`Snapshot`] of the last good check.
pub(super) struct Guard {
    interval: usize,
    pending: Pending,
    snapshot: Option<Snapshot>,
}

impl Trainer {
    /// The guard of a new epoch (a first snapshot when the loss is checked in intervals).
    pub(super) fn guard(&self) -> Guard {
        let interval = self.nan_check_interval;
        Guard {
            interval,
            pending: Pending::default(),
            snapshot: (interval > 1).then(|| self.snapshot()),
        }
    }

    /// Whether `finite` holds on every rank: every rank takes the decision together (one
    /// stopping alone would leave the others waiting in the next collective).
    fn all_finite(&self, finite: bool) -> Result<bool> {
        match &self.group {
            Some(group) => Ok(group.all_agree(finite)?),
            None => Ok(finite),
        }
    }

    /// The loss of a batch (`total`) before its step: with an interval of one, read and
    /// checked now (the value returned; a non-finite loss on any rank fails with
    /// [`Error::NonFiniteLoss`], nothing stepped); else added to the pending sums (`None`).
    pub(super) fn check_loss(
        &self,
        guard: &mut Guard,
        total: &Tensor,
        logits: &Tensor,
        ys: &Tensor,
        progress: &Progress,
        (epoch, batch): (usize, usize),
    ) -> Result<Option<f64>> {
        if guard.interval > 1 {
            guard.pending.add(total, logits, ys);
            return Ok(None);
        }
        let value = f64::try_from(total).map_err(torch("reading the loss"))?;
        if !self.all_finite(value.is_finite())? {
            progress.finish();
            return Err(Error::NonFiniteLoss {
                epoch: epoch + 1,
                batch,
                value,
                last_checkpoint: self.last_checkpoint.clone(),
            });
        }
        Ok(Some(value))
    }

    /// After a step whose loss is pending: checks the pending sums when `interval` batches
    /// have added up ([`Trainer::check_pending`]).
    pub(super) fn check_interval(
        &mut self,
        guard: &mut Guard,
        mean: &mut Mean,
        progress: &Progress,
        at: (usize, usize),
    ) -> Result<()> {
        if guard.pending.batches == guard.interval {
            self.check_pending(guard, mean, progress, at)?;
        }
        Ok(())
    }

    /// Reads the pending sums; on a non-finite loss (on any rank) restores the snapshot and
    /// fails, else adds them to `mean`, moves the progress bar and takes a new snapshot.
    pub(super) fn check_pending(
        &mut self,
        guard: &mut Guard,
        mean: &mut Mean,
        progress: &Progress,
        (epoch, batch): (usize, usize),
    ) -> Result<()> {
        let (loss_sum, correct, n, batches) = guard.pending.take()?;
        if batches == 0 {
            return Ok(());
        }
        if !self.all_finite(loss_sum.is_finite())? {
            if let Some(good) = guard.snapshot.as_ref() {
                self.restore(good)?;
            }
            progress.finish();
            return Err(Error::NonFiniteLoss {
                epoch: epoch + 1,
                batch,
                value: loss_sum / n.max(1) as f64,
                last_checkpoint: self.last_checkpoint.clone(),
            });
        }
        mean.loss_sum += loss_sum;
        mean.correct += correct;
        mean.n += n;
        progress.batches(batches, mean.loss(), mean.accuracy());
        guard.snapshot = Some(self.snapshot());
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        let variables = tch::no_grad(|| {
            self.vs
                .variables()
                .into_values()
                .map(|t| {
                    let copy = t.detach().copy();
                    (t, copy)
                })
                .collect()
        });
        Snapshot {
            variables,
            optimizer: self.optimizer.state_tensors().into_iter().collect(),
            scaler: self
                .scaler
                .as_ref()
                .map(|s| s.state_tensors().into_iter().collect())
                .unwrap_or_default(),
        }
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            for (var, saved) in &snapshot.variables {
                var.shallow_clone()
                    .f_copy_(saved)
                    .map_err(torch("restoring the last good variables"))?;
            }
            Ok(())
        })?;
        self.optimizer.load_state_tensors(&snapshot.optimizer)?;
        if let Some(scaler) = &mut self.scaler {
            scaler.load_state_tensors(&snapshot.scaler)?;
        }
        Ok(())
    }

    /// Why the epoch that produced `logs` diverged, if it did: a validation loss or a
    /// variable (weights, batch-norm statistics) that is NaN or infinite. The training
    /// loss is checked at every step already.
    pub(super) fn divergence(&self, logs: &crate::Logs) -> Result<Option<String>> {
        if let Some(v) = logs.get("val_loss").filter(|v| !v.is_finite()) {
            return Ok(Some(format!("the validation loss is {v}")));
        }
        let mut bad = Vec::new();
        for (name, t) in self.vs.variables() {
            let finite = tch::no_grad(|| t.isfinite().all());
            if !bool::try_from(&finite).map_err(torch("checking the variables"))? {
                bad.push(name);
            }
        }
        if bad.is_empty() {
            return Ok(None);
        }
        bad.sort();
        let shown: Vec<&str> = bad.iter().take(5).map(String::as_str).collect();
        Ok(Some(format!(
            "{} variable(s) hold NaN or infinite values ({}{})",
            bad.len(),
            shown.join(", "),
            if bad.len() > shown.len() { ", ..." } else { "" }
        )))
    }
}
