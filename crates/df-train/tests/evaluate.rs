//! Evaluation through df-metrics: the streamed report equals the metrics of the
//! predictions computed in one go.

use df_metrics::{EvaluatorConfig, Metric};
use df_train::{evaluate, predict, TensorBatches};
use tch::Device;

use crate::common::{tiny, toy_data, values};

#[test]
fn streamed_report_matches_predictions() {
    let (model, _vs) = tiny(4, 0.0, 0.0);
    let (x, y) = toy_data(50, 8);
    let data = TensorBatches::new(x.shallow_clone(), y.shallow_clone(), 7).expect("data");
    let eval = evaluate(
        model.as_ref(),
        &data,
        Device::Cpu,
        EvaluatorConfig::default(),
    )
    .expect("eval");
    let preds = predict(model.as_ref(), &data, Device::Cpu).expect("predict");
    assert_eq!(preds.scores.len(), 50);
    let labels: Vec<u8> = values(&y).into_iter().map(|v| v as u8).collect();
    assert_eq!(preds.labels, labels);
    // Scores computed directly, in one batch.
    let direct: Vec<f64> = values(&tch::no_grad(|| model.forward_t(&x, false)).sigmoid());
    for (a, b) in preds.scores.iter().zip(&direct) {
        assert!((*a as f64 - b).abs() < 1e-6);
    }
    let mut one = df_metrics::BinaryEvaluator::new(EvaluatorConfig::default()).expect("evaluator");
    one.update(&preds.scores, &preds.labels).expect("update");
    assert_eq!(eval.report, one.compute().expect("report"));
    assert_eq!(eval.report.n, 50);
}
