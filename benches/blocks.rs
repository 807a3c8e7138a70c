//! Throughput of the df-layers blocks: forward in eval mode and forward + backward in
//! train mode, batch 1 and 32, on the CPU and (when present) CUDA, in images per second.
//!
//! Bench ids are `{device}/{block}/b{batch}x{size}/{mode}`, e.g. `cpu/mbconv_40_80/b32x28/eval`,
//! the same as those of the PyTorch-eager peer `benches/peers/blocks_torch.py`, which
//! builds the same blocks with the same configuration; `benches/run-peers.sh` runs both
//! and tabulates the ratios.
//!
//! - `eval`: `forward_t(x, false)` under `tch::no_grad`.
//! - `train`: gradients reset (set to none, as `optimizer.zero_grad()` does), then
//!   `forward_t(x, true).sum().backward()` (batch norm updates its moving statistics).
//!
//! `DF_BENCH_LAYOUT=channels_last` (default `contiguous`) gives every block its input in that
//! [`MemoryFormat`], as it gets it inside a network that converted its batch once before
//! the first block (the blocks keep the format); the peer's `--layout` does the same.
//!
//! CUDA work is synchronised before the timer stops. The intra-op thread count is
//! `$DF_BENCH_THREADS`, else the number of cores this process may run on (the peer uses
//! the same rule). `DF_BENCH_CLOCK=cpu` times process CPU time instead of wall time (the
//! peer's `--clock cpu`), for comparisons on a busy machine with one thread.
//!
//! ```text
//! cargo bench --bench blocks                      # everything
//! cargo bench --bench blocks -- cpu/mbconv        # a regex over the ids
//! ```

use std::time::Duration;

use criterion::{criterion_group, Bencher, Criterion, SamplingMode, Throughput};

#[path = "common/clock.rs"]
mod clock;
use clock::Clock;
use df_layers::{
    Activation, BatchNorm, BatchNormConfig, ConvBlock, ConvBlockConfig, ConvBnAct, ConvBnActConfig,
    IdentityBlock, IdentityBlockConfig, InceptionResnetA, InceptionResnetBlockConfig, MaxPool2d,
    MaxPool2dConfig, MbConv, MbConvConfig, MemoryFormat, MesoInception, MesoInceptionConfig,
    Padding, VggStage, VggStageConfig,
};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

type Block = Box<dyn ModuleT>;

/// One benchmarked block: its id, how to build it, and its input `[channels, size, size]`.
struct Case {
    name: &'static str,
    channels: i64,
    size: i64,
    build: fn(&nn::Path<'_>) -> df_layers::Result<Block>,
}

fn boxed<M: ModuleT + 'static>(block: df_layers::Result<M>) -> df_layers::Result<Block> {
    block.map(|b| Box::new(b) as Block)
}

/// A batch norm, then max pooling.
#[derive(Debug)]
struct BnPool {
    bn: BatchNorm,
    pool: MaxPool2d,
}

impl ModuleT for BnPool {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        nn::Module::forward(&self.pool, &self.bn.forward_t(xs, train))
    }
}

/// Keep in step with `CASES` in `benches/peers/blocks_torch.py`.
const CASES: &[Case] = &[
    Case {
        // EfficientNet's stem: 3×3/2 "same" (asymmetric at 224), BN, swish.
        name: "conv_bn_act_3_32_s2",
        channels: 3,
        size: 224,
        build: |p| {
            let cfg = ConvBnActConfig::new(3, 32, 3)
                .with_stride(2)
                .with_batch_norm(BatchNormConfig::default())
                .with_activation(Activation::Swish);
            boxed(ConvBnAct::new(p, &cfg))
        },
    },
    Case {
        // MesoInception-4's first layer.
        name: "meso_inception_3",
        channels: 3,
        size: 256,
        build: |p| {
            boxed(MesoInception::new(
                p,
                &MesoInceptionConfig::new(3, [1, 4, 4, 2]),
            ))
        },
    },
    Case {
        // MesoInception-4's first batch norm (11 channels, computed NCHW by df-layers) and
        // its 2×2 max pooling, at the lfw recipe's 128 px.
        name: "bn_pool_11",
        channels: 11,
        size: 128,
        build: |p| {
            let bn = BatchNorm::new(&(p / "bn"), 11, &BatchNormConfig::default())?;
            let pool = MaxPool2d::new(&MaxPool2dConfig::new(2, Padding::Same))?;
            Ok(Box::new(BnPool { bn, pool }) as Block)
        },
    },
    Case {
        // ResNet50 conv2_block2: 256 → (64, 64, 256).
        name: "identity_block_256",
        channels: 256,
        size: 56,
        build: |p| {
            boxed(IdentityBlock::new(
                p,
                &IdentityBlockConfig::new(64, "conv2_block2"),
            ))
        },
    },
    Case {
        // ResNet50 conv3_block1: 256 → (128, 128, 512), stride 2, projection shortcut.
        name: "conv_block_256_512",
        channels: 256,
        size: 56,
        build: |p| {
            let cfg = ConvBlockConfig::new(256, 128, 2, "conv3_block1");
            boxed(ConvBlock::new(p, &cfg))
        },
    },
    Case {
        // EfficientNet-B0 block3a: 40 → 80, 3×3 stride 2, expand 6, SE 0.25.
        name: "mbconv_40_80",
        channels: 40,
        size: 28,
        build: |p| {
            let cfg = MbConvConfig::new(40, 80, 3, 2, 6).with_prefix("block3a_");
            boxed(MbConv::new(p, &cfg))
        },
    },
    Case {
        // Inception-ResNet-v2 block35: 320 channels, scale 0.17, ReLU.
        name: "inception_resnet_a_320",
        channels: 320,
        size: 35,
        build: |p| {
            let cfg = InceptionResnetBlockConfig::block35(1);
            boxed(InceptionResnetA::new(p, &cfg))
        },
    },
    Case {
        // VGG configuration C, stage 3: 128 → 256, 3×3, 3×3, 1×1, max-pool.
        name: "vgg_stage_c3",
        channels: 128,
        size: 56,
        build: |p| {
            let cfg = VggStageConfig::new(3, 128, 256, 2).with_pointwise(true);
            boxed(VggStage::new(p, &cfg))
        },
    },
];

const BATCHES: [i64; 2] = [1, 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Eval,
    Train,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Eval => "eval",
            Mode::Train => "train",
        }
    }
}

/// A built block with its input, ready to be timed.
struct Workload {
    // Owns the block's variables; the optimizer only serves to reset gradients.
    _vs: nn::VarStore,
    block: Block,
    optimizer: Option<nn::Optimizer>,
    input: Tensor,
    device: Device,
}

impl Workload {
    fn new(case: &Case, batch: i64, mode: Mode, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let block = (case.build)(&vs.root())
            .unwrap_or_else(|e| panic!("bench case {} is misconfigured: {e}", case.name));
        let optimizer = (mode == Mode::Train).then(|| {
            nn::Sgd::default()
                .build(&vs, 0.0)
                .unwrap_or_else(|e| panic!("optimizer for {}: {e}", case.name))
        });
        let input = Tensor::randn(
            [batch, case.channels, case.size, case.size],
            (Kind::Float, device),
        );
        let input = bench_layout()
            .apply(&input)
            .unwrap_or_else(|e| panic!("bench input: {e}"));
        Self {
            _vs: vs,
            block,
            optimizer,
            input,
            device,
        }
    }

    fn step(&mut self) {
        match &mut self.optimizer {
            None => {
                tch::no_grad(|| drop(self.block.forward_t(&self.input, false)));
            }
            Some(optimizer) => {
                // libtorch's `Optimizer::zero_grad` sets gradients to none by default,
                // like PyTorch's, so backward allocates them fresh on both sides.
                optimizer.zero_grad();
                self.block
                    .forward_t(&self.input, true)
                    .sum(Kind::Float)
                    .backward();
            }
        }
    }

    fn sync(&self) {
        if let Device::Cuda(index) = self.device {
            tch::Cuda::synchronize(index as i64);
        }
    }

    fn time(&mut self, iters: u64, clock: Clock) -> Duration {
        self.sync();
        let start = clock.now();
        for _ in 0..iters {
            self.step();
        }
        self.sync();
        clock.now().saturating_sub(start)
    }
}

/// A case's bench id, `{device}/{block}` (criterion's group) and `b{batch}x{size}/{mode}`
/// (its function): the ids the peer prints too.
fn bench_id(device: Device, case: &Case, batch: i64, mode: Mode) -> (String, String) {
    (
        format!("{}/{}", device_name(device), case.name),
        format!("b{batch}x{}/{}", case.size, mode.name()),
    )
}

fn device_name(device: Device) -> &'static str {
    match device {
        Device::Cuda(_) => "cuda",
        _ => "cpu",
    }
}

/// `$DF_BENCH_THREADS`, else the cores this process may run on.
fn bench_threads() -> i32 {
    match std::env::var("DF_BENCH_THREADS") {
        Ok(value) => value.trim().parse().unwrap_or_else(|_| {
            panic!("DF_BENCH_THREADS must be a positive integer, got {value:?}")
        }),
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get() as i32),
    }
}

/// `$DF_BENCH_LAYOUT` (`contiguous`, the default, or `channels_last`).
fn bench_layout() -> MemoryFormat {
    match std::env::var("DF_BENCH_LAYOUT") {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("DF_BENCH_LAYOUT: {e}")),
        Err(_) => MemoryFormat::Contiguous,
    }
}

/// Puts glibc's allocator in the regime a long-running process reaches anyway, the same in
/// both benches (the peer does the same first thing).
///
/// glibc serves large allocations with `mmap` until a freed one raises its dynamic
/// threshold to that size (and the heap-trim threshold to twice that). A fresh process
/// whose largest tensors are a few MB then trims the heap after nearly every step and
/// page-faults the memory back in on the next: at batch 1 that cost more than the maths
/// (conv_bn_act_3_32_s2 b1 eval: 3.3 ms vs 1.0 ms, 1M vs 19k minor faults), and how much
/// of it a process pays depends on what it happened to free before. Freeing one 31 MiB
/// block (just under glibc's 32 MiB cap for the dynamic threshold) sets the thresholds
/// to 31 and 62 MiB for the rest of the run.
fn settle_allocator() {
    let floats = 31 << 18; // 31 MiB of f32; `empty` touches no page.
    drop(Tensor::empty([floats], (Kind::Float, Device::Cpu)));
}

/// Settles the allocator, sets the thread count and the seed; the devices to run on (the
/// CPU, and CUDA where present).
fn prepare() -> Vec<Device> {
    settle_allocator();
    tch::set_num_threads(bench_threads());
    tch::manual_seed(0);
    let mut devices = vec![Device::Cpu];
    if tch::Cuda::is_available() {
        devices.push(Device::Cuda(0));
    }
    devices
}

fn blocks(c: &mut Criterion) {
    let clock = Clock::from_env();
    for device in prepare() {
        for case in CASES {
            let mut group = c.benchmark_group(bench_id(device, case, 1, Mode::Eval).0);
            // Every sample runs the same number of iterations, so the 10 samples of a heavy
            // case (batch-32 train steps take seconds on a small CPU) need 10 iterations,
            // not the 55 of linear sampling.
            group.sampling_mode(SamplingMode::Flat);
            for batch in BATCHES {
                group.throughput(Throughput::Elements(batch as u64));
                for mode in [Mode::Eval, Mode::Train] {
                    let id = bench_id(device, case, batch, mode).1;
                    // Built on first use, so that filtered-out cases cost nothing.
                    let mut workload: Option<Workload> = None;
                    group.bench_function(id, |b: &mut Bencher<'_>| {
                        let w = workload
                            .get_or_insert_with(|| Workload::new(case, batch, mode, device));
                        b.iter_custom(|iters| w.time(iters, clock));
                    });
                }
            }
            group.finish();
        }
    }
}

// A private module: `criterion_group!` generates an undocumented `pub fn`.
mod suite {
    use super::{blocks, criterion_group, Criterion, Duration};

    criterion_group! {
        name = benches;
        // Short runs: 28 cases per device on a 2-core machine. Command-line options
        // (`--sample-size`, `--warm-up-time`, `--measurement-time`) override these.
        config = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        targets = blocks
    }
}
/// `DF_BENCH_STEPS=N`: instead of criterion, every case whose id contains FILTER (the first
/// argument that is not a flag; all cases without one) runs two warm-up steps, then N
/// steps, and the process exits. For tools that count the work of a whole process
/// (`benches/instructions.sh` runs it under callgrind with two values of N and takes the
/// difference), where criterion's own sampling would add work of its own.
fn run_steps(steps: &str) {
    let steps: u64 = steps
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("DF_BENCH_STEPS must be a whole number, got {steps:?}"));
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    for device in prepare() {
        for case in CASES {
            for batch in BATCHES {
                for mode in [Mode::Eval, Mode::Train] {
                    let (group, function) = bench_id(device, case, batch, mode);
                    let id = format!("{group}/{function}");
                    if !id.contains(&filter) {
                        continue;
                    }
                    let mut w = Workload::new(case, batch, mode, device);
                    let clock = Clock::Wall(std::time::Instant::now());
                    w.time(2, clock);
                    let took = w.time(steps, clock);
                    println!("{id}: {steps} steps in {:.3} s", took.as_secs_f64());
                }
            }
        }
    }
}

/// What `--help` prints before criterion's own options.
const USAGE: &str = "\
Throughput of the df-layers blocks (eval and train, batch 1 and 32, CPU and CUDA).

  cargo bench --bench blocks                  # everything
  cargo bench --bench blocks -- cpu/mbconv    # a regex over the ids {device}/{block}/b{batch}x{size}/{mode}

Environment: DF_BENCH_LAYOUT=channels_last|contiguous (the blocks' input format),
DF_BENCH_THREADS=N (intra-op threads), DF_BENCH_CLOCK=cpu (process CPU time),
DF_BENCH_STEPS=N (time N steps of each case without criterion).

Criterion's options follow.
";

fn main() {
    // Help before any work (preparing the cases builds every block).
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        let _ = Criterion::default().configure_from_args(); // prints its options and exits
        return;
    }
    if let Ok(steps) = std::env::var("DF_BENCH_STEPS") {
        return run_steps(&steps);
    }
    // What `criterion_main!` would write.
    suite::benches();
    Criterion::default().configure_from_args().final_summary();
}
