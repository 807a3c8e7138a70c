//! The trait every streaming metric implements.

use crate::input::Label;
use crate::Result;

/// A metric accumulated over batches: `update` with each batch, `compute` the value at any
/// time, `reset` to start again (the shape of burn's metrics).
///
/// `update` validates the whole batch before it changes any state, so a rejected batch
/// leaves the metric as it was. Feeding the data in one batch or in many gives the same
/// result, bit for bit: sums are accumulated in `f64` in input order either way.
///
/// ```
/// # mod deepfake { pub mod metrics { pub use df_metrics::*; } }
/// use deepfake::metrics::{LogLoss, Metric};
///
/// # fn main() -> deepfake::metrics::Result<()> {
/// let mut loss = LogLoss::new();
/// loss.update(&[0.9, 0.2], &[1u8, 0])?;
/// loss.update(&[0.6], &[true])?;
/// let streamed = loss.compute()?;
/// assert_eq!(streamed, deepfake::metrics::log_loss(&[0.9, 0.2, 0.6], &[1u8, 0, 1])?);
/// # Ok(()) }
/// ```
pub trait Metric {
    /// What [`Metric::compute`] returns.
    type Output;

    /// Adds a batch of scores (probabilities of "fake") and their labels.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::NonFiniteScore`], [`Error::InvalidLabel`], and
    /// [`Error::ScoreOutOfRange`] for metrics that need probabilities. An empty batch is
    /// accepted and changes nothing.
    ///
    /// [`Error::LengthMismatch`]: crate::Error::LengthMismatch
    /// [`Error::NonFiniteScore`]: crate::Error::NonFiniteScore
    /// [`Error::InvalidLabel`]: crate::Error::InvalidLabel
    /// [`Error::ScoreOutOfRange`]: crate::Error::ScoreOutOfRange
    fn update<L: Label>(&mut self, scores: &[f32], labels: &[L]) -> Result<()>;

    /// The metric over every sample added since creation or the last [`Metric::reset`].
    ///
    /// # Errors
    /// [`Error::Empty`] when no sample was added; metric-specific errors (for example
    /// [`Error::SingleClass`] for ranking metrics).
    ///
    /// [`Error::Empty`]: crate::Error::Empty
    /// [`Error::SingleClass`]: crate::Error::SingleClass
    fn compute(&self) -> Result<Self::Output>;

    /// Forgets every sample added.
    fn reset(&mut self);

    /// Number of samples added since creation or the last [`Metric::reset`].
    fn count(&self) -> u64;
}
