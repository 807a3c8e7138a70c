//! The gradient all-reduce of data-parallel training, per step, over loopback Gloo:
//! `df_dist::ddp::GradientAverager` on the trainable parameters of real models of the
//! registry (the pooled binary top), `RANKS` processes (default 2) on this machine.
//! Rank 0 prints one JSON line per model: its parameter count, the bucket sizes (so that
//! the peer, `benches/peers/torch_allreduce.py`, reduces exactly the same buckets with
//! `torch.distributed`) and the milliseconds per averaging (median and range over
//! `REPS` repetitions after two warm-ups). `benches/allreduce.sh` runs both sides.
//!
//! `cargo bench --bench allreduce` (`MODELS=resnet50,efficientnet_b7 RANKS=2 REPS=10`).

use std::time::Instant;

use deepfake::dist::ddp::{GradientAverager, DEFAULT_BUCKET_BYTES};
use deepfake::dist::{DistConfig, ProcessGroup};
use deepfake::models::registry::{build, BuildOptions};
use deepfake::models::TopKind;
use deepfake::tch::{nn::VarStore, Device, Kind, Tensor};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn bucket_sizes(vs: &VarStore) -> Vec<i64> {
    // The averager's own layout: variables sorted by name, consecutive runs of one kind
    // up to the byte limit (all float32 here).
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let limit = (DEFAULT_BUCKET_BYTES / 4) as i64;
    let mut sizes: Vec<i64> = Vec::new();
    let mut current = 0;
    for (_, t) in &vars {
        let n = t.numel() as i64;
        if current > 0 && current + n > limit {
            sizes.push(current);
            current = 0;
        }
        current += n;
    }
    if current > 0 {
        sizes.push(current);
    }
    sizes
}

fn rank_main(config: DistConfig) -> Result<(), Box<dyn std::error::Error>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    deepfake::tch::set_num_threads((cores / config.local_world_size).max(1) as i32);
    let group = ProcessGroup::new(&config)?;
    let reps: usize = env_or("REPS", "10").parse()?;
    for name in env_or("MODELS", "resnet50,efficientnet_b7").split(',') {
        let vs = VarStore::new(Device::Cpu);
        let info = deepfake::models::registry::info(name)?;
        let options = BuildOptions {
            top: Some(info.top_for(Some(TopKind::Pooled), None)?),
            input_size: Some([64, 64]),
            ..BuildOptions::default()
        };
        let _model = build(name, &vs.root(), &options)?;
        // Every gradient defined (ones), as after a backward pass.
        let total = vs
            .trainable_variables()
            .iter()
            .map(|t| t.sum(Kind::Float))
            .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b);
        total.backward();
        let averager = GradientAverager::new(&vs, DEFAULT_BUCKET_BYTES)?;
        let mut times = Vec::with_capacity(reps);
        for i in 0..reps + 2 {
            group.barrier()?;
            let t0 = Instant::now();
            averager.average(&group)?;
            if i >= 2 {
                times.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        if group.is_main() {
            let sizes = bucket_sizes(&vs);
            let params: i64 = sizes.iter().sum();
            println!(
                "{{\"model\":\"{name}\",\"ranks\":{},\"params\":{params},\"buckets\":{sizes:?},\"ms_median\":{:.3},\"ms_min\":{:.3},\"ms_max\":{:.3}}}",
                group.world_size(),
                times[times.len() / 2],
                times[0],
                times[times.len() - 1]
            );
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match DistConfig::from_env()? {
        Some(config) => rank_main(config),
        None => {
            let ranks: usize = env_or("RANKS", "2").parse()?;
            let program = std::env::current_exe()?;
            // `cargo bench` passes `--bench`; the ranks need no arguments.
            deepfake::dist::launch_local(ranks, &program, &[])?;
            Ok(())
        }
    }
}
