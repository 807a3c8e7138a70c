//! A tour of the df-layers blocks: each block's configuration, parameter count (as Keras
//! counts them), output shape for a representative input, and a quick forward time (batch
//! 1, eval mode) on the available device.
//!
//! ```text
//! cargo run --release --example blocks            # CUDA when available, else the CPU
//! cargo run --release --example blocks -- --cpu   # force the CPU
//! ```
//!
//! For careful timings (batch 32, train mode, against PyTorch eager), see
//! `benches/blocks.rs` and `benches/run-peers.sh`.

use std::time::{Duration, Instant};

use anyhow::Context;
use df_layers::util::{param_count, ParamCount};
use df_layers::{
    Activation, BatchNormConfig, ConvBlock, ConvBlockConfig, ConvBnAct, ConvBnActConfig, DenseHead,
    DenseHeadConfig, DropPath, IdentityBlock, IdentityBlockConfig, InceptionResnetA,
    InceptionResnetB, InceptionResnetBlockConfig, InceptionResnetC, MaxPool2d, MaxPool2dConfig,
    MbConv, MbConvConfig, MesoInception, MesoInceptionConfig, Padding, ReductionA, ReductionB,
    ReductionConfig, SqueezeExcite, SqueezeExciteConfig, Stem, StemConfig, VggStage,
    VggStageConfig,
};
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

/// What the tour reports about one block.
struct Row {
    name: &'static str,
    config: String,
    params: ParamCount,
    input: Vec<i64>,
    output: Vec<i64>,
    forward: Duration,
}

/// Forward passes for at least this long (after one warm-up pass) give the mean time.
const MIN_TIME: Duration = Duration::from_millis(200);
const MAX_RUNS: u32 = 50;

/// Builds a block from `config` in a fresh variable store, runs it on a random
/// `[1, c, h, w]` input and times it.
fn tour<C, M>(
    name: &'static str,
    config: &C,
    input: [i64; 3],
    device: Device,
    build: impl FnOnce(&nn::Path<'_>, &C) -> df_layers::Result<M>,
) -> anyhow::Result<Row>
where
    C: serde::Serialize,
    M: ModuleT,
{
    let vs = nn::VarStore::new(device);
    let block = build(&vs.root(), config).with_context(|| format!("building {name}"))?;
    let [c, h, w] = input;
    let xs = Tensor::randn([1, c, h, w], (Kind::Float, device));
    let forward = || tch::no_grad(|| block.forward_t(&xs, false));
    let output = forward().size(); // also the warm-up pass
    sync(device);
    let (mut runs, start) = (0, Instant::now());
    while runs < MAX_RUNS && (runs == 0 || start.elapsed() < MIN_TIME) {
        drop(forward());
        sync(device);
        runs += 1;
    }
    Ok(Row {
        name,
        config: serde_json::to_string(config)?,
        params: param_count(&vs),
        input: xs.size(),
        output,
        forward: start.elapsed() / runs,
    })
}

fn sync(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

/// Wraps blocks whose constructor takes no variable path, so that [`tour`] handles them
/// like the others.
#[derive(Debug)]
struct Stateless<M>(M);

impl<M: Module> ModuleT for Stateless<M> {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        self.0.forward(xs)
    }
}

/// [`DropPath`] has no config struct; this is what the tour prints for it.
#[derive(serde::Serialize)]
struct DropPathConfig {
    rate: f64,
}

fn rows(device: Device) -> anyhow::Result<Vec<Row>> {
    let stem_conv = ConvBnActConfig::new(3, 32, 3)
        .with_stride(2)
        .with_batch_norm(BatchNormConfig::default())
        .with_activation(Activation::Swish)
        .with_names("stem_conv", "stem_bn");
    let block35 = InceptionResnetBlockConfig::block35(1);
    let block17 = InceptionResnetBlockConfig::block17(1);
    let block8 = InceptionResnetBlockConfig::block8(1);
    Ok(vec![
        tour(
            "ConvBnAct",
            &stem_conv,
            [3, 224, 224],
            device,
            ConvBnAct::new,
        )?,
        tour(
            "MesoInception",
            &MesoInceptionConfig::new(3, [1, 4, 4, 2]),
            [3, 256, 256],
            device,
            MesoInception::new,
        )?,
        tour(
            "IdentityBlock",
            &IdentityBlockConfig::new(64, "conv2_block2"),
            [256, 56, 56],
            device,
            IdentityBlock::new,
        )?,
        tour(
            "ConvBlock",
            &ConvBlockConfig::new(256, 128, 2, "conv3_block1"),
            [256, 56, 56],
            device,
            ConvBlock::new,
        )?,
        tour(
            "SqueezeExcite",
            &SqueezeExciteConfig::new(240, 10).with_prefix("block3a_"),
            [240, 14, 14],
            device,
            SqueezeExcite::new,
        )?,
        tour(
            "MbConv",
            &MbConvConfig::new(40, 80, 3, 2, 6).with_prefix("block3a_"),
            [40, 28, 28],
            device,
            MbConv::new,
        )?,
        tour(
            "Stem",
            &StemConfig::default(),
            [3, 299, 299],
            device,
            Stem::new,
        )?,
        tour(
            "InceptionResnetA",
            &block35,
            [320, 35, 35],
            device,
            InceptionResnetA::new,
        )?,
        tour(
            "ReductionA",
            &ReductionConfig::mixed_6a(),
            [320, 35, 35],
            device,
            ReductionA::new,
        )?,
        tour(
            "InceptionResnetB",
            &block17,
            [1088, 17, 17],
            device,
            InceptionResnetB::new,
        )?,
        tour(
            "ReductionB",
            &ReductionConfig::mixed_7a(),
            [1088, 17, 17],
            device,
            ReductionB::new,
        )?,
        tour(
            "InceptionResnetC",
            &block8,
            [2080, 8, 8],
            device,
            InceptionResnetC::new,
        )?,
        tour(
            "VggStage",
            &VggStageConfig::new(3, 128, 256, 2).with_pointwise(true),
            [128, 56, 56],
            device,
            VggStage::new,
        )?,
        tour(
            "MaxPool2d",
            &MaxPool2dConfig::new(3, Padding::Same).with_stride(2),
            [64, 112, 112],
            device,
            |_, c| MaxPool2d::new(c).map(Stateless),
        )?,
        tour(
            "DenseHead",
            &DenseHeadConfig::mesonet([16, 8, 8]),
            [16, 8, 8],
            device,
            DenseHead::new,
        )?,
        tour(
            "DropPath",
            &DropPathConfig { rate: 0.2 },
            [80, 14, 14],
            device,
            |_, c| DropPath::new(c.rate),
        )?,
    ])
}

fn shape(dims: &[i64]) -> String {
    let dims: Vec<String> = dims.iter().map(i64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// Frees one 31 MiB block so that glibc raises its mmap and heap-trim thresholds to 31 and
/// 62 MiB: without it, a fresh process whose tensors are a few MB trims its heap after each
/// pass and page-faults it back on the next, which can cost more than the maths at batch 1
/// (see `settle_allocator` in benches/blocks.rs).
fn settle_allocator() {
    drop(Tensor::empty([31 << 18], (Kind::Float, Device::Cpu)));
}

fn run() -> anyhow::Result<()> {
    settle_allocator();
    let device = if std::env::args().any(|a| a == "--cpu") {
        Device::Cpu
    } else {
        Device::cuda_if_available()
    };
    tch::manual_seed(0);
    let device_name = match device {
        Device::Cuda(i) => format!("CUDA device {i}"),
        _ => format!("CPU, {} threads", tch::get_num_threads()),
    };
    println!("df-layers blocks on {device_name} (forward: batch 1, eval mode, mean time)\n");
    let rows = rows(device)?;
    let name_width = rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5);
    println!(
        "{:<name_width$}  {:>10}  {:>10}  {:>19}  {:>19}  {:>12}",
        "block", "params", "trainable", "input", "output", "forward (ms)"
    );
    println!(
        "{}",
        "-".repeat(name_width + 2 + 10 + 2 + 10 + 2 + 19 + 2 + 19 + 2 + 12)
    );
    for r in &rows {
        println!(
            "{:<name_width$}  {:>10}  {:>10}  {:>19}  {:>19}  {:>12.3}",
            r.name,
            r.params.total,
            r.params.trainable,
            shape(&r.input),
            shape(&r.output),
            r.forward.as_secs_f64() * 1e3,
        );
    }
    println!("\nConfigurations (JSON, as the configs serialise):");
    for r in &rows {
        println!("  {:<name_width$}  {}", r.name, r.config);
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run())
}
