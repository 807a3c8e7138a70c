//! Data-parallel training through the `Trainer` (df-dist's c10d on Gloo, loopback; two
//! ranks as threads): with the backbone frozen (run in eval mode, so nothing depends on
//! the batch's composition) and no dropout, two ranks on the halves of each global batch
//! end where one process on the whole batches does (parameters within 1e-5, the ranks
//! bit-identical), and every rank logs the single process's metrics, the validation ones
//! computed from scores gathered from uneven shares of the validation set.

use std::time::Duration;

use df_dist::{DistConfig, ProcessGroup};
use df_train::{OptimizerConfig, TensorBatches, Trainer, Verbosity};
use tch::{Kind, Tensor};

use crate::common::{tiny, toy_data, values};

/// The rows of each global batch of 8 that rank `rank` of 2 takes (4 each).
fn half_batches(x: &Tensor, y: &Tensor, rank: i64) -> (Tensor, Tensor) {
    let n = x.size()[0];
    let rows: Vec<i64> = (0..n).filter(|i| (i % 8) / 4 == rank).collect();
    let index = Tensor::from_slice(&rows);
    (x.index_select(0, &index), y.index_select(0, &index))
}

type Outcome = (Vec<(String, Vec<f64>)>, Vec<(String, f64)>);

/// A tensor as plain data, to hand to another thread.
#[derive(Clone)]
struct Plain(Vec<f32>, Vec<i64>);

impl Plain {
    fn of(t: &Tensor) -> Self {
        Plain(
            Vec::<f32>::try_from(t.to_kind(Kind::Float).reshape([-1])).expect("f32"),
            t.size(),
        )
    }
    fn tensor(&self) -> Tensor {
        Tensor::from_slice(&self.0).reshape(self.1.as_slice())
    }
}

/// Everything drawn from libtorch's global generator, drawn once on the test's thread
/// (other tests of this binary draw from it in parallel): the data and rank 0's initial
/// weights.
#[derive(Clone)]
struct Inputs {
    data: [Plain; 4],
    init: Vec<(String, Plain)>,
}

fn inputs() -> Inputs {
    let (x, y) = toy_data(32, 3);
    let (vx, vy) = toy_data(12, 9);
    let (_, vs) = tiny(1, 0.0, 0.0);
    let init = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, Plain::of(&t)))
        .collect();
    Inputs {
        data: [Plain::of(&x), Plain::of(&y), Plain::of(&vx), Plain::of(&vy)],
        init,
    }
}

fn train(group: Option<ProcessGroup>, inputs: &Inputs) -> Outcome {
    let [x, y, vx, vy] = inputs.data.clone().map(|p| p.tensor());
    let rank = group.as_ref().map(|g| g.rank() as i64);
    let (x, y, batch, vx, vy) = match rank {
        Some(r) => {
            let (hx, hy) = half_batches(&x, &y, r);
            // Uneven validation shares: 7 and 5.
            let (start, len) = if r == 0 { (0, 7) } else { (7, 5) };
            (
                hx,
                hy,
                4,
                vx.narrow(0, start, len),
                vy.narrow(0, start, len),
            )
        }
        None => (x, y, 8, vx, vy),
    };
    let (model, vs) = tiny(2, 0.0, 0.0);
    // Rank 0 (and the single process) start from the drawn weights; rank 1 keeps its
    // own, and the broadcast must replace them.
    if rank.unwrap_or(0) == 0 {
        let vars = vs.variables();
        tch::no_grad(|| {
            for (name, value) in &inputs.init {
                vars[name].shallow_clone().copy_(&value.tensor());
            }
        });
    }
    let mut builder = Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::adam(1e-2))
        .epochs(2)
        .freeze_backbone(true)
        .verbosity(Verbosity::Quiet);
    if let Some(g) = group {
        builder = builder.process_group(g);
    }
    let mut trainer = builder.build().expect("trainer");
    let train = TensorBatches::new(x, y, batch).expect("batches");
    let val = TensorBatches::new(vx, vy, 4).expect("batches");
    let history = trainer.fit(&train, Some(&val)).expect("fit").clone();
    let mut vars: Vec<(String, Vec<f64>)> = trainer
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| (n, values(&t.to_kind(Kind::Double))))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut metrics: Vec<(String, f64)> = history
        .epochs
        .iter()
        .flat_map(|e| {
            e.metrics
                .iter()
                .filter(|(k, _)| *k != "seconds")
                .map(move |(k, v)| (format!("{}/{k}", e.epoch), *v))
        })
        .collect();
    metrics.sort_by(|a, b| a.0.cmp(&b.0));
    (vars, metrics)
}

#[test]
fn two_ranks_train_and_validate_like_one_process() {
    let inputs = inputs();
    let (single_vars, single_metrics) = train(None, &inputs);
    let port = df_dist::free_port().expect("port");
    let ranks: Vec<Outcome> = (0..2)
        .map(|rank| {
            let inputs = inputs.clone();
            std::thread::spawn(move || {
                let config = DistConfig::local(rank, 2, port).with_timeout(Duration::from_secs(60));
                let group = ProcessGroup::new(&config).expect("group");
                train(Some(group), &inputs)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("rank"))
        .collect();
    assert_eq!(ranks[0].0, ranks[1].0, "the ranks end bit-identical");
    assert_eq!(ranks[0].1, ranks[1].1, "every rank logs the same metrics");
    for ((name, ours), (_, theirs)) in ranks[0].0.iter().zip(&single_vars) {
        let diff = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-5, "{name}: 2 ranks vs 1 process differ by {diff}");
    }
    assert_eq!(ranks[0].1.len(), single_metrics.len());
    for ((name, ours), (other, theirs)) in ranks[0].1.iter().zip(&single_metrics) {
        assert_eq!(name, other);
        assert!(
            (ours - theirs).abs() < 1e-5,
            "{name}: 2 ranks {ours} vs 1 process {theirs}"
        );
    }
    assert!(single_metrics.iter().any(|(n, _)| n == "2/val_auc"));
}
