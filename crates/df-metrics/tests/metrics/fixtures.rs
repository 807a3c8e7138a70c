//! The scikit-learn reference cases written by `scripts/fixtures/sklearn_metrics.py`.

use serde::Deserialize;

/// The cases the script writes; a missing one fails the tests.
pub const CASE_NAMES: [&str; 7] = [
    "random",
    "heavy_ties",
    "separated",
    "imbalanced",
    "inverted",
    "all_tied",
    "tiny",
];

#[derive(Debug, Deserialize)]
pub struct Case {
    pub name: String,
    #[allow(dead_code)] // kept in the files for whoever reads them
    pub sklearn_version: String,
    pub threshold: f32,
    pub scores: Vec<f32>,
    pub labels: Vec<u8>,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub confusion_matrix: [[u64; 2]; 2],
    pub log_loss: f64,
    pub log_loss_sklearn_f32: f64,
    pub brier: f64,
    pub ece: Vec<EceRef>,
    pub roc: Option<RocRef>,
    pub roc_full: Option<RocRef>,
    pub auc: Option<f64>,
    pub pr: Option<PrRef>,
    pub pr_dropped: Option<PrRef>,
    pub average_precision: Option<f64>,
    pub eer: Option<f64>,
    pub eer_threshold: Option<f64>,
    pub tpr_at_fpr: Option<Vec<TprRef>>,
}

#[derive(Debug, Deserialize)]
pub struct EceRef {
    pub n_bins: usize,
    pub value: f64,
    pub bins: Vec<BinRef>,
}

#[derive(Debug, Deserialize)]
pub struct BinRef {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    pub mean_score: Option<f64>,
    pub fraction_positive: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct RocRef {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    /// `None` stands for +inf (JSON has no infinity).
    pub thresholds: Vec<Option<f64>>,
}

#[derive(Debug, Deserialize)]
pub struct PrRef {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub thresholds: Vec<f64>,
}

#[derive(Debug, Deserialize)]
pub struct TprRef {
    pub target: f64,
    pub tpr: f64,
    pub fpr: f64,
    pub threshold: Option<f64>,
}

impl Case {
    /// Whether both classes are present (the ranking references exist).
    pub fn has_both_classes(&self) -> bool {
        self.auc.is_some()
    }
}

#[path = "../../../../fixtures/lookup.rs"]
mod lookup;

/// Every reference case; panics (never skips) when the fixtures are missing.
pub fn cases() -> Vec<Case> {
    CASE_NAMES
        .iter()
        .map(|name| {
            let case: Case = lookup::json("sklearn_metrics", &format!("{name}.json"));
            assert_eq!(case.name, *name);
            assert_eq!(case.scores.len(), case.labels.len());
            case
        })
        .collect()
}

/// A reference threshold (`None` = +inf) as the f32 the crate returns.
pub fn threshold(value: Option<f64>) -> f32 {
    value.map_or(f32::INFINITY, |v| v as f32)
}
