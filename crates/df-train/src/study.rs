//! The study's per-model training recipes: which metric early stopping and
//! `ReduceLROnPlateau` watch, and the Adam learning rate.
//!
//! | model | early stop on | ReduceLROnPlateau on | lr |
//! | --- | --- | --- | --- |
//! | Meso4 | `val_loss` | `val_accuracy` | 1e-3 |
//! | MesoInception4 | `loss` | `accuracy` | 1e-3 |
//! | VGG16-C | `loss` | `val_accuracy` | 1e-4 |
//! | EfficientNet B0–B7 | `loss` | `val_accuracy` | 1e-4 |
//! | ResNet50 | `loss` | `val_accuracy` | 2e-4 |
//! | InceptionResNetV2 (untested in the study) | `loss` | `val_accuracy` | 1e-4 |
//!
//! The study gives neither patience nor factor; these recipes use Keras' factor from its
//! `ReduceLROnPlateau` documentation example (0.2) and patiences sized for runs of a few
//! to a few tens of epochs ([`EARLY_STOP_PATIENCE`], [`REDUCE_LR_PATIENCE`]); early
//! stopping restores the best weights (Keras 3 restores them at the end of training
//! whether it stopped early or not).

use crate::callbacks::{EarlyStoppingConfig, ReduceLrOnPlateauConfig};
use crate::experiment::ExperimentConfig;
use crate::optim::OptimizerConfig;

/// The models of the study, in the order of its comparison: MesoNet (Meso4),
/// MesoInception4, VGG16 configuration C, ResNet50, EfficientNet B0/B3/B5/B7 and
/// InceptionResNetV2.
pub const STUDY_MODELS: [&str; 9] = [
    "meso4",
    "meso_inception4",
    "vgg16_c",
    "resnet50",
    "efficientnet_b0",
    "efficientnet_b3",
    "efficientnet_b5",
    "efficientnet_b7",
    "inception_resnet_v2",
];

/// Epochs without improvement before early stopping.
pub const EARLY_STOP_PATIENCE: usize = 5;
/// Epochs without improvement before the learning rate is reduced.
pub const REDUCE_LR_PATIENCE: usize = 2;
/// The factor of each reduction.
pub const REDUCE_LR_FACTOR: f64 = 0.2;

/// One model's recipe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StudyRecipe {
    /// The metric early stopping monitors.
    pub early_stop: &'static str,
    /// The metric `ReduceLROnPlateau` monitors.
    pub reduce_lr: &'static str,
    /// Adam's learning rate.
    pub lr: f64,
}

impl StudyRecipe {
    /// The recipe of the registered model `name`, or `None` for a model the study did not
    /// train (EfficientNet B1/B2/B4/B6 take the B-series recipe).
    pub fn of(name: &str) -> Option<StudyRecipe> {
        let (early_stop, reduce_lr, lr) = match name {
            "meso4" => ("val_loss", "val_accuracy", 1e-3),
            "meso_inception4" => ("loss", "accuracy", 1e-3),
            "vgg16" | "vgg16_c" => ("loss", "val_accuracy", 1e-4),
            "resnet50" => ("loss", "val_accuracy", 2e-4),
            "inception_resnet_v2" => ("loss", "val_accuracy", 1e-4),
            n if n.starts_with("efficientnet_b") => ("loss", "val_accuracy", 1e-4),
            _ => return None,
        };
        Some(StudyRecipe {
            early_stop,
            reduce_lr,
            lr,
        })
    }

    /// Sets `cfg`'s optimizer (Adam at the recipe's rate), early stopping (best weights
    /// restored) and `ReduceLROnPlateau`.
    pub fn apply(&self, cfg: &mut ExperimentConfig) {
        cfg.optimizer = OptimizerConfig::adam(self.lr);
        cfg.callbacks.early_stopping = Some(
            EarlyStoppingConfig::new(self.early_stop)
                .with_patience(EARLY_STOP_PATIENCE)
                .with_restore_best_weights(true),
        );
        cfg.callbacks.reduce_lr_on_plateau = Some(
            ReduceLrOnPlateauConfig::new(self.reduce_lr)
                .with_patience(REDUCE_LR_PATIENCE)
                .with_factor(REDUCE_LR_FACTOR),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_study_model_has_its_recipe() {
        for name in STUDY_MODELS {
            let r = StudyRecipe::of(name).expect(name);
            assert!(r.lr > 0.0);
        }
        assert_eq!(StudyRecipe::of("resnet50").map(|r| r.lr), Some(2e-4));
        assert_eq!(
            StudyRecipe::of("meso_inception4").map(|r| (r.early_stop, r.reduce_lr)),
            Some(("loss", "accuracy"))
        );
        assert_eq!(StudyRecipe::of("resnet101"), None);
    }
}
