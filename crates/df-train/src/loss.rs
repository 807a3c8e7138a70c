//! Training losses on the models' logits of "fake".

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

/// The data term of the training loss (the trainer adds the model's L2 penalty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Binary cross-entropy on logits, `mean(softplus(z) − y·z)` (Keras
    /// `binary_crossentropy(from_logits=True)`, numerically stable).
    #[default]
    BinaryCrossEntropy,
    /// Mean squared error of `sigmoid(z)` against the label (the MesoNet authors' choice).
    MeanSquaredError,
}

impl Loss {
    /// The batch mean of the loss.
    ///
    /// # Shapes
    /// `logits`: `[N]`, `labels`: `[N]` (0 = real, 1 = fake, float) → scalar.
    pub fn compute(&self, logits: &Tensor, labels: &Tensor) -> Tensor {
        let labels = labels.to_kind(logits.kind());
        match self {
            Loss::BinaryCrossEntropy => logits.binary_cross_entropy_with_logits::<Tensor>(
                &labels,
                None,
                None,
                Reduction::Mean,
            ),
            Loss::MeanSquaredError => (logits.sigmoid() - labels).square().mean(Kind::Float),
        }
    }

    /// The loss weighted per sample, `mean(wᵢ·lᵢ)` (Keras' `sample_weight` with the
    /// default `sum_over_batch_size` reduction); `weights = None` is [`Loss::compute`].
    ///
    /// # Shapes
    /// `logits`, `labels`, `weights`: `[N]` → scalar.
    pub fn compute_weighted(
        &self,
        logits: &Tensor,
        labels: &Tensor,
        weights: Option<&Tensor>,
    ) -> Tensor {
        let Some(w) = weights else {
            return self.compute(logits, labels);
        };
        let labels = labels.to_kind(logits.kind());
        let per_sample = match self {
            Loss::BinaryCrossEntropy => logits.binary_cross_entropy_with_logits::<Tensor>(
                &labels,
                None,
                None,
                Reduction::None,
            ),
            Loss::MeanSquaredError => (logits.sigmoid() - labels).square(),
        };
        (per_sample * w.to_kind(logits.kind())).mean(Kind::Float)
    }

    /// The short name (`binary_crossentropy`, `mse`), as Keras writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::BinaryCrossEntropy => "binary_crossentropy",
            Loss::MeanSquaredError => "mse",
        }
    }
}
