//! Data parallelism on libtorch's c10d (Gloo, loopback), ranks as threads of this process:
//! two ranks on equal shards train exactly like one process on the same global batches
//! (the reference: plain libtorch, one process), and stay bit-identical to each other;
//! without the gradient averaging they do not (the check can fail); with batch norm the
//! broadcast buffers keep the ranks identical; gathers of uneven lengths and `from_env`.

use std::time::Duration;

use df_dist::ddp::{broadcast_variables, GradientAverager, Variables, DEFAULT_BUCKET_BYTES};
use df_dist::{DistConfig, ProcessGroup, Reduce};
use tch::nn::{self, Module, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs `body(group)` on `world` ranks, one thread each; their results in rank order.
fn on_ranks<T: Send + 'static>(
    world: usize,
    body: impl Fn(ProcessGroup) -> T + Send + Sync + Clone + 'static,
) -> Vec<T> {
    let port = free_port();
    let handles: Vec<_> = (0..world)
        .map(|rank| {
            let body = body.clone();
            std::thread::spawn(move || {
                let config =
                    DistConfig::local(rank, world, port).with_timeout(Duration::from_secs(60));
                let group = ProcessGroup::new(&config).unwrap_or_else(|e| panic!("{e}"));
                body(group)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a rank panicked"))
        .collect()
}

/// libtorch has one global generator: one initialisation at a time, so that a seed gives
/// the same weights in a rank's thread as in the single process.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A small network without batch norm, initialised from `seed`.
fn mlp(vs: &nn::VarStore, seed: i64) -> nn::Sequential {
    let _one = INIT.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    let p = vs.root();
    nn::seq()
        .add(nn::linear(&p / "l1", 6, 16, Default::default()))
        .add_fn(|x| x.tanh())
        .add(nn::linear(&p / "l2", 16, 8, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&p / "l3", 8, 1, Default::default()))
}

/// The global batches: 5 steps of 8 examples, fixed.
fn global_batches() -> Vec<(Tensor, Tensor)> {
    let gen = |step: i64| {
        let x = (Tensor::arange(8 * 6, (Kind::Float, Device::Cpu)).view([8, 6]) * 0.37
            + step as f64)
            .sin();
        let y = (x.sum_dim_intlist([1].as_slice(), false, Kind::Float) * (step + 1) as f64)
            .gt(0.0)
            .to_kind(Kind::Float);
        (x, y)
    };
    (0..5).map(gen).collect()
}

fn snapshot(vs: &nn::VarStore) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| {
            (
                n,
                Vec::<f32>::try_from(t.detach().reshape([-1])).expect("f32"),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Trains the MLP with Adam on `batches` (each rank its half), averaging gradients when
/// `sync`; the variables after the last step.
fn train(group: Option<&ProcessGroup>, sync: bool, seed: i64) -> Vec<(String, Vec<f32>)> {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = mlp(&vs, seed);
    let mut opt = nn::Adam::default().build(&vs, 1e-2).expect("adam");
    let averager = GradientAverager::new(&vs, 64).expect("averager"); // small buckets: several
    if let Some(g) = group {
        broadcast_variables(g, &vs, Variables::All, 0).expect("broadcast");
        assert!(averager.bucket_count() > 1);
    }
    for (x, y) in global_batches() {
        let (x, y) = match group {
            Some(g) => {
                let half = 8 / g.world_size() as i64;
                let at = half * g.rank() as i64;
                (x.narrow(0, at, half), y.narrow(0, at, half))
            }
            None => (x, y),
        };
        opt.zero_grad();
        let loss = net
            .forward(&x)
            .view([-1])
            .binary_cross_entropy_with_logits::<Tensor>(&y, None, None, tch::Reduction::Mean);
        loss.backward();
        if let (Some(g), true) = (group, sync) {
            averager.average(g).expect("average");
        }
        opt.step();
    }
    snapshot(&vs)
}

fn max_difference(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|((na, va), (nb, vb))| {
            assert_eq!(na, nb);
            va.iter().zip(vb).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn two_ranks_train_like_one_process_on_the_same_global_batches() {
    let single = train(None, true, 1);
    // Rank 1 initialises from another seed: the broadcast makes it start from rank 0's.
    let synced = on_ranks(2, |g| {
        let seed = 1 + 100 * g.rank() as i64;
        train(Some(&g), true, seed)
    });
    assert_eq!(synced[0], synced[1], "the ranks end bit-identical");
    let diff = max_difference(&synced[0], &single);
    assert!(diff < 1e-5, "2 ranks vs 1 process: {diff}");

    // Without the averaging each rank follows its own half: the same check fails.
    let unsynced = on_ranks(2, |g| train(Some(&g), false, 1));
    let apart = max_difference(&unsynced[0], &single);
    assert!(
        apart > 1e-3,
        "without synchronisation: only {apart} from 1 process"
    );
    assert!(max_difference(&unsynced[0], &unsynced[1]) > 1e-3);
}

#[test]
fn batch_norm_models_stay_identical_across_ranks() {
    let results = on_ranks(2, |g| {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let (conv, bn) = {
            // Draws from the global generator only under the lock (see `INIT`).
            let _one = INIT.lock().unwrap_or_else(|e| e.into_inner());
            tch::manual_seed(3 + g.rank() as i64);
            (
                nn::conv2d(&p / "conv", 3, 4, 3, Default::default()),
                nn::batch_norm2d(&p / "bn", 4, Default::default()),
            )
        };
        let mut opt = nn::Sgd::default().build(&vs, 0.1).expect("sgd");
        broadcast_variables(&g, &vs, Variables::All, 0).expect("broadcast");
        let averager = GradientAverager::new(&vs, DEFAULT_BUCKET_BYTES).expect("averager");
        assert_eq!(averager.bucket_count(), 1);
        for step in 0..3 {
            // Each rank its own batch: different batch statistics.
            let x = (Tensor::arange(4 * 3 * 6 * 6, (Kind::Float, Device::Cpu)).view([4, 3, 6, 6])
                * (0.1 + 0.05 * g.rank() as f64)
                + step as f64)
                .sin();
            opt.zero_grad();
            let loss = bn
                .forward_t(&conv.forward(&x), true)
                .square()
                .mean(Kind::Float);
            loss.backward();
            averager.average(&g).expect("average");
            opt.step();
        }
        let before = snapshot(&vs);
        broadcast_variables(&g, &vs, Variables::Buffers, 0).expect("buffers");
        (before, snapshot(&vs))
    });
    let ((before0, after0), (before1, after1)) = (&results[0], &results[1]);
    let running = |s: &[(String, Vec<f32>)]| -> Vec<(String, Vec<f32>)> {
        s.iter()
            .filter(|(n, _)| n.contains("running"))
            .cloned()
            .collect()
    };
    assert_ne!(
        running(before0),
        running(before1),
        "each rank's statistics follow its own batches"
    );
    assert_eq!(
        after0, after1,
        "parameters and buffers identical after the broadcast"
    );
}

#[test]
fn reductions_gathers_and_agreement() {
    let results = on_ranks(2, |g| {
        let r = g.rank() as f64;
        let mut mean = Tensor::from_slice(&[r, 2.0 * r + 1.0]);
        g.all_reduce(&mut mean, Reduce::Mean).expect("mean");
        // A non-contiguous tensor goes through a copy.
        let mut strided = Tensor::full([3, 2], r + 1.0, (Kind::Float, Device::Cpu)).transpose(0, 1);
        g.all_reduce(&mut strided, Reduce::Sum).expect("sum");
        // Rank 0 has 3 scores, rank 1 has 1.
        let scores = if g.rank() == 0 {
            Tensor::from_slice(&[0.1f32, 0.2, 0.3])
        } else {
            Tensor::from_slice(&[0.9f32])
        };
        let all = g.all_gather_uneven(&scores).expect("gather");
        let agree = g.all_agree(true).expect("agree");
        let disagree = g.all_agree(g.rank() == 0).expect("agree");
        (
            Vec::<f64>::try_from(mean).expect("f64"),
            Vec::<f32>::try_from(strided.reshape([-1])).expect("f32"),
            Vec::<f32>::try_from(all).expect("f32"),
            agree,
            disagree,
        )
    });
    for (mean, strided, all, agree, disagree) in results {
        assert_eq!(mean, [0.5, 2.0]);
        assert_eq!(strided, [3.0; 6]);
        assert_eq!(all, [0.1, 0.2, 0.3, 0.9]);
        assert!(agree && !disagree);
    }
}

#[test]
fn the_launcher_variables_are_read_and_checked_by_name() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(DistConfig::from_vars(vars(&[])).expect("no launch"), None);
    let config = DistConfig::from_vars(vars(&[
        ("WORLD_SIZE", "4"),
        ("RANK", "3"),
        ("LOCAL_RANK", "1"),
        ("LOCAL_WORLD_SIZE", "2"),
        ("MASTER_ADDR", "node0"),
        ("MASTER_PORT", "29500"),
        ("GLOO_SOCKET_IFNAME", "eth0"),
    ]))
    .expect("valid")
    .expect("a launch");
    assert_eq!(
        (
            config.rank,
            config.world_size,
            config.local_rank,
            config.local_world_size
        ),
        (3, 4, 1, 2)
    );
    assert_eq!(
        (config.master_addr.as_str(), config.master_port),
        ("node0", 29500)
    );
    assert_eq!(config.interface.as_deref(), Some("eth0"));
    for (pairs, named) in [
        (&[("WORLD_SIZE", "2")][..], "RANK"),
        (&[("WORLD_SIZE", "two"), ("RANK", "0")][..], "WORLD_SIZE"),
        (
            &[
                ("WORLD_SIZE", "2"),
                ("RANK", "2"),
                ("MASTER_ADDR", "a"),
                ("MASTER_PORT", "1"),
            ][..],
            "rank",
        ),
        (
            &[
                ("WORLD_SIZE", "2"),
                ("RANK", "0"),
                ("MASTER_ADDR", "a"),
                ("MASTER_PORT", "70000"),
            ][..],
            "MASTER_PORT",
        ),
        (
            &[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_PORT", "1")][..],
            "MASTER_ADDR",
        ),
        (
            // Overflowed libtorch's millisecond count into an instant "timed out".
            &[
                ("WORLD_SIZE", "2"),
                ("RANK", "0"),
                ("MASTER_ADDR", "a"),
                ("MASTER_PORT", "1"),
                ("DF_DIST_TIMEOUT", "9223372036854"),
            ][..],
            "DF_DIST_TIMEOUT",
        ),
    ] {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let err = DistConfig::from_vars(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .expect_err("invalid");
        assert!(err.to_string().starts_with(named), "{named}: {err}");
    }
}

#[test]
fn unused_and_frozen_parameters_are_handled_and_a_one_sided_gradient_is_named() {
    let results = on_ranks(2, |g| {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let used = p.var("used", &[3], nn::Init::Const(1.0));
        let _unused = p.var("unused", &[2], nn::Init::Const(1.0));
        let mut frozen = p.var("frozen", &[2], nn::Init::Const(1.0));
        let _ = frozen.requires_grad_(false);
        let sometimes = p.var("sometimes", &[2], nn::Init::Const(1.0));
        let averager = GradientAverager::new(&vs, DEFAULT_BUCKET_BYTES).expect("averager");
        assert_eq!(
            averager.parameter_count(),
            3,
            "the frozen variable takes no part"
        );
        // Step 1: `unused` gets no gradient on any rank: it keeps none, no error.
        let r = g.rank() as f64 + 1.0;
        (&used * r).sum(Kind::Float).backward();
        averager.average(&g).expect("average");
        let mean = Vec::<f32>::try_from(used.grad()).expect("f32");
        let unused_grad = vs.variables()["unused"].grad().defined();
        // Step 2: `sometimes` has a gradient on rank 1 only: an error naming it.
        let loss = if g.rank() == 1 {
            (&used + &sometimes.sum(Kind::Float)).sum(Kind::Float)
        } else {
            used.sum(Kind::Float)
        };
        loss.backward();
        let err = averager.average(&g).expect_err("one-sided").to_string();
        (mean, unused_grad, err)
    });
    for (mean, unused_grad, err) in results {
        assert_eq!(mean, [1.5; 3], "(1 + 2) / 2");
        assert!(!unused_grad);
        assert!(
            err.starts_with("sometimes: has a gradient on 1 of 2 ranks"),
            "{err}"
        );
    }
}
