//! The epoch loop of [`Trainer::fit`]: each epoch seeds dropout, trains over the batches
//! ([`super::step`], checked by [`super::guard`]), validates, runs the callbacks, records
//! the history and writes the run's files ([`crate::run_files`]).

use std::time::Instant;

use df_dist::ddp::GradientAverager;
use df_metrics::{EpochRecord, History};
use tch::{Device, Tensor};

use super::{Trainer, SECONDS};
use crate::callbacks::Logs;
use crate::error::{torch, Error, Result};
use crate::logits::correct_count;
use crate::model_io::save_model_with;
use crate::progress::Progress;
use crate::run_files::{self, files};
use crate::source::{epoch_seed, BatchSource};

/// The parts of a training epoch that [`super::TrainerBuilder::profile`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Data,
    Forward,
    Backward,
    Step,
    Validation,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::Data,
        Phase::Forward,
        Phase::Backward,
        Phase::Step,
        Phase::Validation,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Data => "data",
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::Step => "step",
            Phase::Validation => "validation",
        }
    }
}

/// Wall time per [`Phase`]: each lap charges the time since the previous one.
pub(super) struct PhaseClock {
    mark: Instant,
    totals: [f64; 5],
}

impl PhaseClock {
    fn new() -> Self {
        Self {
            mark: Instant::now(),
            totals: [0.0; 5],
        }
    }

    pub(super) fn lap(&mut self, phase: Phase) {
        let now = Instant::now();
        self.totals[phase as usize] += (now - self.mark).as_secs_f64();
        self.mark = now;
    }

    fn totals(&self) -> impl Iterator<Item = (Phase, f64)> + '_ {
        Phase::ALL.into_iter().zip(self.totals)
    }
}

/// Sums for a mean loss and accuracy over batches, weighted by batch size.
#[derive(Default)]
pub(super) struct Mean {
    pub(super) loss_sum: f64,
    pub(super) correct: i64,
    pub(super) n: i64,
}

impl Mean {
    /// The sums over every rank of `group`.
    pub(super) fn across(&self, group: &df_dist::ProcessGroup) -> Result<Mean> {
        let mut t = Tensor::from_slice(&[self.loss_sum, self.correct as f64, self.n as f64])
            .to_device(group.device());
        group.all_reduce(&mut t, df_dist::Reduce::Sum)?;
        let v = Vec::<f64>::try_from(&t.to_device(Device::Cpu))
            .map_err(torch("reading the ranks' metrics"))?;
        Ok(Mean {
            loss_sum: v[0],
            correct: v[1].round() as i64,
            n: v[2].round() as i64,
        })
    }

    pub(super) fn add(&mut self, loss: f64, n: i64, correct: i64) {
        self.loss_sum += loss * n as f64;
        self.correct += correct;
        self.n += n;
    }
    pub(super) fn loss(&self) -> f64 {
        self.loss_sum / self.n.max(1) as f64
    }
    pub(super) fn accuracy(&self) -> f64 {
        self.correct as f64 / self.n.max(1) as f64
    }
}

impl Trainer {
    /// The epochs of [`Trainer::fit`], once resumed and set up.
    pub(super) fn fit_epochs(
        &mut self,
        train: &dyn BatchSource,
        val: Option<&dyn BatchSource>,
        extra: &[(&str, &dyn BatchSource)],
        averager: Option<&GradientAverager>,
        progress: &Progress,
    ) -> Result<&History> {
        while self.epochs_done < self.config.epochs && !self.stop_requested {
            let epoch = self.epochs_done;
            let started = Instant::now();
            self.seed_dropout(epoch);
            let mut clock = PhaseClock::new();
            let mean = self.train_epoch(train, epoch, averager, progress, &mut clock)?;
            let logs = self.epoch_logs(&mean, val, extra, &mut clock)?;
            let stop = self.end_epoch(epoch, &logs, progress)?;
            self.record_epoch(epoch, logs, started, stop, progress)?;
        }
        self.end_training(progress)?;
        Ok(&self.history)
    }

    /// Seeds libtorch's generator (dropout) from the run's seed, the epoch and the rank,
    /// so that the ranks of a distributed run draw their own masks (rank 0: as one
    /// process).
    fn seed_dropout(&self, epoch: usize) {
        let stream = (epoch_seed(self.config.seed, epoch) >> 1)
            .wrapping_add((self.config.rank as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        tch::manual_seed((stream & (i64::MAX as u64)) as i64);
    }

    /// One pass over the training batches: a step each, the loss checked by the guard;
    /// the mean loss and accuracy over every rank's batches. Batch-norm statistics (and
    /// any other buffer) are made rank 0's at the end, so the ranks stay identical.
    fn train_epoch(
        &mut self,
        train: &dyn BatchSource,
        epoch: usize,
        averager: Option<&GradientAverager>,
        progress: &Progress,
        clock: &mut PhaseClock,
    ) -> Result<Mean> {
        progress.start_epoch(epoch, self.config.epochs, train.num_batches());
        let mut mean = Mean::default();
        let mut guard = self.guard();
        let mut batches_seen = 0;
        for (b, batch) in train.epoch_batches(epoch)?.enumerate() {
            batches_seen = b + 1;
            let batch = batch?;
            let step = self.forward(&batch, clock)?;
            let at = (epoch, b + 1);
            let value = self.check_loss(
                &mut guard,
                &step.total,
                &step.logits,
                &step.ys,
                progress,
                at,
            )?;
            clock.lap(Phase::Forward);
            self.backward_and_step(&step.total, averager, clock)?;
            match value {
                Some(value) => {
                    let correct = correct_count(&step.logits, &step.ys)?;
                    mean.add(value, step.ys.size()[0], correct);
                    progress.batch(mean.loss(), mean.accuracy());
                }
                None => self.check_interval(&mut guard, &mut mean, progress, at)?,
            }
            clock.lap(Phase::Step);
        }
        self.check_pending(&mut guard, &mut mean, progress, (epoch, batches_seen))?;
        drop(guard);
        if let Some(group) = &self.group {
            mean = mean.across(group)?;
            df_dist::ddp::broadcast_variables(
                group,
                &self.vs,
                df_dist::ddp::Variables::Buffers,
                0,
            )?;
        }
        Ok(mean)
    }

    /// What the epoch logs (Keras' names): the training means, the validation's metrics,
    /// the profile's times, the learning rate and the loss scale.
    fn epoch_logs(
        &self,
        mean: &Mean,
        val: Option<&dyn BatchSource>,
        extra: &[(&str, &dyn BatchSource)],
        clock: &mut PhaseClock,
    ) -> Result<Logs> {
        let mut logs = Logs::new();
        logs.insert("loss".into(), mean.loss());
        logs.insert("accuracy".into(), mean.accuracy());
        if let Some(val) = val {
            let v = self.validate(val)?;
            logs.insert("val_loss".into(), v.loss);
            logs.insert("val_accuracy".into(), v.accuracy);
            if let Some(auc) = v.auc {
                logs.insert("val_auc".into(), auc);
            }
            clock.lap(Phase::Validation);
        }
        for (name, source) in extra {
            let v = self.validate(*source)?;
            logs.insert(format!("val_{name}_loss"), v.loss);
            logs.insert(format!("val_{name}_accuracy"), v.accuracy);
            if let Some(auc) = v.auc {
                logs.insert(format!("val_{name}_auc"), auc);
            }
            clock.lap(Phase::Validation);
        }
        if self.profile {
            for (phase, seconds) in clock.totals() {
                logs.insert(format!("time_{}", phase.name()), seconds);
            }
        }
        logs.insert("learning_rate".into(), self.optimizer.learning_rate());
        if let Some(scaler) = &self.scaler {
            logs.insert("loss_scale".into(), scaler.scale()?);
        }
        Ok(logs)
    }

    /// Runs the callbacks on the epoch's logs and refuses a diverged epoch
    /// ([`Error::Diverged`], nothing saved); whether a callback asked to stop.
    fn end_epoch(&mut self, epoch: usize, logs: &Logs, progress: &Progress) -> Result<bool> {
        let mut stop = false;
        self.each_callback(&mut stop, |cb, ctx| cb.on_epoch_end(epoch, logs, ctx))?;
        if let Some(reason) = self.divergence(logs)? {
            progress.finish();
            return Err(Error::Diverged {
                epoch: epoch + 1,
                reason,
                last_checkpoint: self.last_checkpoint.clone(),
            });
        }
        Ok(stop)
    }

    /// Adds the epoch to the history, then (rank 0, with an output directory) writes the
    /// resumable `last.safetensors` and the history files.
    fn record_epoch(
        &mut self,
        epoch: usize,
        logs: Logs,
        started: Instant,
        stop: bool,
        progress: &Progress,
    ) -> Result<()> {
        let seconds = started.elapsed().as_secs_f64();
        progress.end_epoch(epoch, self.config.epochs, &logs, seconds);
        let mut record = EpochRecord::new(epoch + 1);
        record.metrics = logs;
        record.insert(SECONDS, seconds);
        self.history.push(record)?;
        self.epochs_done = epoch + 1;
        self.stop_requested = stop;
        if let (true, Some(dir)) = (self.is_main(), self.out_dir.clone()) {
            let path = dir.join(files::LAST);
            self.write_checkpoint(&path)?;
            self.last_checkpoint = Some(path);
            run_files::write_history(&dir, &self.history)?;
        }
        Ok(())
    }

    /// The callbacks' end of training, then (rank 0) the final model.
    fn end_training(&mut self, progress: &Progress) -> Result<()> {
        progress.finish();
        let mut stop = self.stop_requested;
        self.each_callback(&mut stop, |cb, ctx| cb.on_train_end(ctx))?;
        if let (true, Some(dir)) = (self.is_main(), &self.out_dir) {
            save_model_with(
                &dir.join(files::FINAL),
                self.model.as_ref(),
                &self.vs,
                self.preparation.as_ref(),
            )?;
        }
        Ok(())
    }
}
