//! Throughput of every registered model, whole: the eval forward pass (batch 1 and a
//! training batch) and the training step (forward, binary cross-entropy, backward, Adam),
//! in each precision, in images per second.
//!
//! Each case prints one JSON line (and appends it to `--out` as soon as it is measured, so a
//! run cut short keeps what it finished); the peer `benches/peers/models_torch.py` prints
//! the same ids for the same models defined in Keras 3 (torch backend) and as a PyTorch
//! user would pick them (timm, torchvision), and `benches/peers/models_report.py` tabulates
//! the ratios. `benches/models.sh` runs both sides.
//!
//! Ids: `{device}/{model}/b{batch}x{size}/{eval|train}/{precision}`.
//!
//! - Models carry the pooled binary top (global average pooling, dropout 0.5, one logit),
//!   except Meso4 and MesoInception4, which keep the authors' head (part of the design).
//! - `eval`: `detector_logits_in(.., Pass::Eval, precision)` under `no_grad`, as
//!   `evaluate`/`predict` run it.
//! - `train`: gradients zeroed, `detector_logits_in(.., Pass::Train, precision)`, binary
//!   cross-entropy on the logits (f32), backward, `df_train::Optimizer` Adam (lr 1e-3); in
//!   `f16` through `df_train::GradScaler` (scale, unscale, skip on inf, update), as `train`
//!   does. The loss is not read back during the timed steps.
//! - Sizes: `--size cpu` (default on the CPU) is 128 px for every model, `--size study` each
//!   model's own input size (Meso 256, B7 600 ...; the default on CUDA), a number that size.
//! - Each case runs `--warm-up` steps, then steps until `--min-time` seconds have passed
//!   (at least `--min-steps`), CUDA synchronised before the clock stops.
//!
//! ```text
//! cargo bench --bench models -- --device cpu --filter efficientnet_b0 --precision f32,bf16
//! cargo bench --bench models -- --list
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use df_layers::MemoryFormat;
use df_models::registry::{self, BuildOptions, ModelInfo};
use df_models::{Model, TopKind};
use df_train::{
    detector_logits_in, GradScaler, GradScalerConfig, Loss, Optimizer, OptimizerConfig, Pass,
    Precision,
};
use tch::{nn, Device, Kind, Tensor};

#[derive(Parser, Debug)]
#[command(about = "Throughput of every registered model (eval and train step, per precision)")]
struct Args {
    /// `cpu` or `cuda` (CUDA device 0).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Only ids containing one of these texts, comma-separated (e.g. `efficientnet_b0/`,
    /// `meso4/,/train/`).
    #[arg(long, default_value = "", value_delimiter = ',')]
    filter: Vec<String>,
    /// The modes, comma-separated: `eval1` (eval at batch 1), `eval` (eval at the training
    /// batch), `train`.
    #[arg(long, default_value = "eval1,eval,train", value_delimiter = ',')]
    modes: Vec<String>,
    /// Precisions, comma-separated: f32, bf16, f16 (autocast), and for eval `bf16-cast`
    /// (weights and input cast to bf16 once, no autocast).
    #[arg(long, default_value = "f32,bf16", value_delimiter = ',')]
    precision: Vec<String>,
    /// `cpu` (128 px for every model), `study` (each model's own size) or a side in pixels;
    /// default `cpu` on the CPU, `study` on CUDA.
    #[arg(long)]
    size: Option<String>,
    /// The training batch (also the second eval batch); default 8 on the CPU, 32 on CUDA
    /// (16 for the models whose study size is above 400 px).
    #[arg(long)]
    batch: Option<i64>,
    /// Untimed steps before each case (cuDNN's autotuning, the allocator's first sizes).
    #[arg(long, default_value_t = 2)]
    warm_up: u32,
    /// Seconds each case is timed for, at least.
    #[arg(long, default_value_t = 2.0)]
    min_time: f64,
    /// Timed steps, at least.
    #[arg(long, default_value_t = 3)]
    min_steps: u32,
    /// The memory format of the input batch (`contiguous` or `channels_last`). On the CPU
    /// the models convert it to their own format once; on CUDA they compute in it.
    #[arg(long, default_value = "contiguous")]
    layout: String,
    /// The memory format the models compute in on the CPU (`contiguous` or
    /// `channels_last`); default: each model's own (channels-last).
    #[arg(long)]
    memory_format: Option<String>,
    /// cuDNN's benchmark mode (autotuned convolution algorithms) on CUDA.
    #[arg(long)]
    cudnn_benchmark: bool,
    /// Intra-op threads; default `$DF_BENCH_THREADS`, else the cores this process may use.
    #[arg(long)]
    threads: Option<i32>,
    /// Append each result line to this file as it is measured.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the ids and exit.
    #[arg(long)]
    list: bool,
    /// What `cargo bench` passes; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Eval,
    Train,
}

/// One measured configuration.
struct Case {
    info: &'static ModelInfo,
    size: i64,
    batch: i64,
    mode: Mode,
    precision: Precision,
    /// bf16 by casting the weights and the input once (eval only), not by autocast.
    cast: bool,
}

impl Case {
    fn id(&self, device: Device) -> String {
        format!(
            "{}/{}/b{}x{}/{}/{}",
            device_name(device),
            self.info.name,
            self.batch,
            self.size,
            match self.mode {
                Mode::Eval => "eval",
                Mode::Train => "train",
            },
            if self.cast {
                "bf16-cast".to_string()
            } else {
                self.precision.to_string()
            }
        )
    }
}

fn device_name(device: Device) -> &'static str {
    match device {
        Device::Cuda(_) => "cuda",
        _ => "cpu",
    }
}

/// The top every bench model gets: MesoNet keeps the authors' head, the others the pooled
/// binary head (GAP, dropout 0.5, Dense(1)).
fn bench_options(
    info: &ModelInfo,
    size: i64,
    format: Option<MemoryFormat>,
) -> Result<BuildOptions, String> {
    let mut options = BuildOptions::default().with_input_size(size, size);
    if let Some(format) = format {
        options = options.with_memory_format(format);
    }
    if info.family.starts_with("meso") {
        return Ok(options.with_top(info.detector_top()));
    }
    let top = info
        .top_for(Some(TopKind::Pooled), None)
        .map_err(|e| e.to_string())?;
    Ok(options.with_top(top))
}

/// A model, its optimizer and a batch, ready to be stepped.
struct Workload {
    vs: nn::VarStore,
    model: Box<dyn Model>,
    optimizer: Optimizer,
    scaler: Option<GradScaler>,
    xs: Tensor,
    ys: Tensor,
    mode: Mode,
    precision: Precision,
}

impl Workload {
    fn new(
        case: &Case,
        device: Device,
        layout: MemoryFormat,
        format: Option<MemoryFormat>,
    ) -> Result<Self, String> {
        let options = bench_options(case.info, case.size, format)?;
        let mut vs = nn::VarStore::new(device);
        let model = case
            .info
            .build(&vs.root(), &options)
            .map_err(|e| e.to_string())?;
        if case.cast {
            vs.bfloat16();
        }
        let optimizer = Optimizer::for_var_store(OptimizerConfig::adam(1e-3), &vs)
            .map_err(|e| e.to_string())?;
        let scaler = if case.mode == Mode::Train && case.precision.scales_loss() {
            Some(GradScaler::new(GradScalerConfig::default(), device).map_err(|e| e.to_string())?)
        } else {
            None
        };
        // Raw pixels in [0, 255], as the models' own preprocessing expects them.
        let xs = Tensor::rand([case.batch, 3, case.size, case.size], (Kind::Float, device)) * 255.0;
        let xs = layout.apply(&xs).map_err(|e| e.to_string())?;
        let xs = if case.cast {
            xs.to_kind(Kind::BFloat16)
        } else {
            xs
        };
        let ys = Tensor::randint(2, [case.batch], (Kind::Float, device));
        Ok(Self {
            vs,
            model,
            optimizer,
            scaler,
            xs,
            ys,
            mode: case.mode,
            precision: case.precision,
        })
    }

    fn step(&mut self) -> Result<(), String> {
        let err = |e: df_train::Error| e.to_string();
        match self.mode {
            Mode::Eval => tch::no_grad(|| {
                detector_logits_in(self.model.as_ref(), &self.xs, Pass::Eval, self.precision)
                    .map(drop)
                    .map_err(err)
            }),
            Mode::Train => {
                self.optimizer.zero_grad();
                let logits =
                    detector_logits_in(self.model.as_ref(), &self.xs, Pass::Train, self.precision)
                        .map_err(err)?;
                let loss = Loss::BinaryCrossEntropy.compute(&logits, &self.ys);
                match &mut self.scaler {
                    None => {
                        loss.backward();
                        self.optimizer.step().map_err(err)
                    }
                    Some(scaler) => {
                        scaler.scale_loss(&loss).backward();
                        let found_inf =
                            scaler.unscale(&self.optimizer.parameters()).map_err(err)?;
                        if !found_inf {
                            self.optimizer.step().map_err(err)?;
                        }
                        scaler.update(found_inf);
                        Ok(())
                    }
                }
            }
        }
    }

    fn sync(&self) {
        if let Device::Cuda(index) = self.vs.device() {
            tch::Cuda::synchronize(index as i64);
        }
    }
}

/// Runs `warm_up` steps, then steps until `min_time` has passed and `min_steps` were
/// taken: (steps, seconds).
fn measure(w: &mut Workload, args: &Args) -> Result<(u32, f64), String> {
    for _ in 0..args.warm_up {
        w.step()?;
    }
    w.sync();
    let start = Instant::now();
    let min_time = Duration::from_secs_f64(args.min_time);
    let mut steps = 0;
    while steps < args.min_steps || start.elapsed() < min_time {
        w.step()?;
        steps += 1;
        if steps >= args.min_steps {
            // The clock only means something once the device has caught up.
            w.sync();
        }
    }
    w.sync();
    Ok((steps, start.elapsed().as_secs_f64()))
}

fn threads(args: &Args) -> i32 {
    args.threads
        .unwrap_or_else(|| match std::env::var("DF_BENCH_THREADS") {
            Ok(v) => v.trim().parse().unwrap_or_else(|_| {
                panic!("DF_BENCH_THREADS must be a positive integer, got {v:?}")
            }),
            Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get() as i32),
        })
}

fn cases(args: &Args, device: Device) -> Result<Vec<Case>, String> {
    let cuda = device.is_cuda();
    if let Some(bad) = args
        .modes
        .iter()
        .find(|m| !["eval1", "eval", "train"].contains(&m.as_str()))
    {
        return Err(format!("--modes: `{bad}` is not eval1, eval or train"));
    }
    let precisions = args
        .precision
        .iter()
        .map(|p| match p.as_str() {
            "bf16-cast" => Ok((Precision::F32, true)),
            p => Precision::parse(p)
                .map(|p| (p, false))
                .map_err(|e| e.to_string()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let size_rule = args
        .size
        .clone()
        .unwrap_or_else(|| if cuda { "study" } else { "cpu" }.to_string());
    let mut out = Vec::new();
    for info in registry::registry() {
        let size = match size_rule.as_str() {
            "cpu" => 128.max(info.min_input_size),
            "study" => info.input_size[0],
            n => n
                .parse()
                .map_err(|_| format!("--size must be cpu, study or a number, got {n:?}"))?,
        };
        let batch = args.batch.unwrap_or(match (cuda, size > 400) {
            (false, _) => 8,
            (true, false) => 32,
            (true, true) => 16,
        });
        for &(precision, cast) in &precisions {
            for (name, mode, batch) in [
                ("eval1", Mode::Eval, 1),
                ("eval", Mode::Eval, batch),
                ("train", Mode::Train, batch),
            ] {
                if !args.modes.iter().any(|m| m == name) || (cast && mode == Mode::Train) {
                    continue;
                }
                let case = Case {
                    info,
                    size,
                    batch,
                    mode,
                    precision,
                    cast,
                };
                let id = case.id(device);
                if args.filter.iter().any(|f| id.contains(f.as_str())) {
                    out.push(case);
                }
            }
        }
    }
    Ok(out)
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let device = match args.device.as_str() {
        "cpu" => Device::Cpu,
        "cuda" if tch::Cuda::is_available() => Device::Cuda(0),
        "cuda" => return Err("--device cuda: libtorch sees no CUDA device".into()),
        d => return Err(format!("--device must be cpu or cuda, got {d:?}")),
    };
    let layout: MemoryFormat = args.layout.parse().map_err(|e| format!("--layout: {e}"))?;
    let format: Option<MemoryFormat> = match &args.memory_format {
        Some(f) => Some(f.parse().map_err(|e| format!("--memory-format: {e}"))?),
        None => None,
    };
    let cases = cases(&args, device)?;
    if args.list {
        for case in &cases {
            println!("{}", case.id(device));
        }
        return Ok(());
    }
    for case in &cases {
        case.precision.check(device).map_err(|e| e.to_string())?;
    }
    tch::set_num_threads(threads(&args));
    tch::manual_seed(0);
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(args.cudnn_benchmark);
    }
    // glibc's allocator in its long-running regime (see benches/blocks.rs).
    drop(Tensor::empty([31 << 18], (Kind::Float, Device::Cpu)));
    let mut out = match &args.out {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("--out {}: {e}", path.display()))?,
        ),
        None => None,
    };
    for case in &cases {
        let id = case.id(device);
        let line = match Workload::new(case, device, layout, format)
            .and_then(|mut w| measure(&mut w, &args))
        {
            Ok((steps, seconds)) => serde_json::json!({
                "id": id,
                "impl": "rust",
                "model": case.info.name,
                "layout": args.layout,
                "memory_format": args.memory_format.as_deref().unwrap_or("model"),
                "threads": threads(&args),
                "steps": steps,
                "seconds_per_step": seconds / f64::from(steps),
                "images_per_second": (case.batch as f64) * f64::from(steps) / seconds,
            }),
            Err(e) => serde_json::json!({"id": id, "impl": "rust", "error": e}),
        };
        println!("{line}");
        if let Some(file) = &mut out {
            writeln!(file, "{line}").map_err(|e| format!("--out: {e}"))?;
        }
    }
    Ok(())
}
