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
//!
//! Each model's recipe is part of its catalogue row in df-models
//! ([`df_models::ModelInfo::study_recipe`], declared in the model's family file); this
//! module reads it from the registry and applies it to an [`ExperimentConfig`].

use std::sync::LazyLock;

use crate::callbacks::{EarlyStoppingConfig, ReduceLrOnPlateauConfig};
use crate::experiment::ExperimentConfig;
use crate::optim::OptimizerConfig;

/// The models of the study, in the order of its comparison: MesoNet (Meso4),
/// MesoInception4, VGG16 configuration C, ResNet50, EfficientNet B0/B3/B5/B7 and
/// InceptionResNetV2. Read from the registry: the models whose catalogue row's recipe
/// says [`df_models::Recipe::in_comparison`], in registry order.
pub static STUDY_MODELS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    df_models::registry()
        .iter()
        .filter(|m| m.study_recipe.is_some_and(|r| r.in_comparison))
        .map(|m| m.name)
        .collect()
});

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

impl From<df_models::Recipe> for StudyRecipe {
    fn from(r: df_models::Recipe) -> Self {
        StudyRecipe {
            early_stop: r.early_stop,
            reduce_lr: r.reduce_lr,
            lr: r.lr,
        }
    }
}

impl StudyRecipe {
    /// The recipe of the registered model `name` (its catalogue row's
    /// [`df_models::ModelInfo::study_recipe`]), or `None` for an unknown model or one
    /// outside the study's recipes (EfficientNet B1/B2/B4/B6 take the B-series recipe).
    pub fn of(name: &str) -> Option<StudyRecipe> {
        df_models::registry::info(name)
            .ok()?
            .study_recipe
            .map(StudyRecipe::from)
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

    /// The recipes as `StudyRecipe::of` hard-coded them before they moved into the
    /// catalogue rows (and as docs/study.md's table gives them): `(model, early stop,
    /// ReduceLROnPlateau, lr)`, `None` where the study has no recipe.
    /// Early stopping's metric, `ReduceLROnPlateau`'s, Adam's rate.
    type Former = (&'static str, &'static str, f64);

    const BEFORE: [(&str, Option<Former>); 17] = [
        ("meso4", Some(("val_loss", "val_accuracy", 1e-3))),
        ("meso_inception4", Some(("loss", "accuracy", 1e-3))),
        ("vgg16", Some(("loss", "val_accuracy", 1e-4))),
        ("vgg16_c", Some(("loss", "val_accuracy", 1e-4))),
        ("resnet50", Some(("loss", "val_accuracy", 2e-4))),
        ("resnet101", None),
        ("resnet152", None),
        ("efficientnet_b0", Some(("loss", "val_accuracy", 1e-4))),
        ("efficientnet_b1", Some(("loss", "val_accuracy", 1e-4))),
        ("efficientnet_b2", Some(("loss", "val_accuracy", 1e-4))),
        ("efficientnet_b3", Some(("loss", "val_accuracy", 1e-4))),
        ("efficientnet_b4", Some(("loss", "val_accuracy", 1e-4))),
        ("efficientnet_b5", Some(("loss", "val_accuracy", 1e-4))),
        ("efficientnet_b6", Some(("loss", "val_accuracy", 1e-4))),
        ("efficientnet_b7", Some(("loss", "val_accuracy", 1e-4))),
        ("inception_resnet_v2", Some(("loss", "val_accuracy", 1e-4))),
        ("xception", None),
    ];

    #[test]
    fn study_recipes_from_the_registry_equal_the_former_table() {
        for (name, expected) in BEFORE {
            let got = StudyRecipe::of(name).map(|r| (r.early_stop, r.reduce_lr, r.lr));
            assert_eq!(got, expected, "{name}");
        }
        // Every registered model is in the table above (a new one states its recipe).
        for name in df_models::names() {
            assert!(
                BEFORE.iter().any(|(n, _)| *n == name),
                "{name}: not in the table"
            );
        }
        assert_eq!(StudyRecipe::of("no_such_model"), None);
    }

    #[test]
    fn study_models_are_the_nine_of_the_comparison_in_its_order() {
        assert_eq!(
            *STUDY_MODELS,
            [
                "meso4",
                "meso_inception4",
                "vgg16_c",
                "resnet50",
                "efficientnet_b0",
                "efficientnet_b3",
                "efficientnet_b5",
                "efficientnet_b7",
                "inception_resnet_v2",
            ]
        );
        for name in STUDY_MODELS.iter() {
            assert!(StudyRecipe::of(name).is_some_and(|r| r.lr > 0.0), "{name}");
        }
    }
}
