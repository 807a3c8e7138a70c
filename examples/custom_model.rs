//! A network of your own, trained and reopened like the built-in ones: df-layers blocks →
//! a model (`impl Model`) → its family (`impl Family`, registered once) → `Trainer` →
//! checkpoint → `load_checkpoint` → metrics.
//!
//! ```text
//! cargo run --release --example custom_model -- --out runs/custom
//! ```
//!
//! The data are generated in memory (real: smooth noise; fake: the same with a faint
//! checkerboard, the kind of high-frequency trace an upsampler leaves), so the example
//! needs no files; `train` and `compare` show the folder-based pipeline.
//!
//! What a custom model needs, beyond `forward_features`/`forward_head`:
//! - a configuration that is `serde::Serialize + Deserialize` (add `serde` with the
//!   `derive` feature to your crate; `serde_json` is re-exported as
//!   `deepfake::models::serde_json`);
//! - `family()` and `config_json()` on the model, and an `impl Family` whose `build`
//!   rebuilds the model from the configuration;
//! - `register_family::<YourFamily>()` before `load_checkpoint` reopens its checkpoints
//!   (without it: "unknown model family ... known families: ...").

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use clap::Parser;
use deepfake::layers::{
    Activation, BatchNormConfig, ConvBnAct, ConvBnActConfig, DenseHead, DenseHeadConfig,
    DenseLayerConfig, MaxPool2d, MaxPool2dConfig, Padding,
};
use deepfake::models::family::{config_to_json, Family};
use deepfake::models::{self as models, BuildOptions, InputSpec, Model, Preprocessing};
use deepfake::tch::nn::{self, Module, ModuleT};
use deepfake::tch::{Device, Kind, Tensor};
use deepfake::train::{
    evaluate_report, save_model, OptimizerConfig, TensorBatches, Trainer, Verbosity,
};

/// Trains a small custom CNN on generated data, saves it, reopens it and scores it.
#[derive(Debug, Parser)]
#[command(name = "custom_model")]
struct Args {
    /// Output directory (the run's history, checkpoints and `model.safetensors`).
    #[arg(long, default_value = "runs/custom")]
    out: PathBuf,
    /// Epochs.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Images per class, for training (validation gets a quarter as many).
    #[arg(long, default_value_t = 256)]
    per_class: i64,
    /// Seed of the data and the weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Everything that determines the network: stored in its checkpoints.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct TinyConfig {
    /// Input side in pixels.
    size: i64,
    /// Channels of the two convolutions.
    width: i64,
}

/// Two conv → batch norm → ReLU → max-pool stages and a dense head on global pooling.
#[derive(Debug)]
struct TinyDetector {
    stages: Vec<(ConvBnAct, MaxPool2d)>,
    head: DenseHead,
    config: TinyConfig,
}

impl TinyDetector {
    fn new(p: &nn::Path<'_>, config: &TinyConfig) -> models::Result<Self> {
        let mut stages = Vec::new();
        for (i, in_channels) in [3, config.width].into_iter().enumerate() {
            let conv = ConvBnActConfig::new(in_channels, config.width, 3)
                .with_padding(Padding::Same)
                .with_batch_norm(BatchNormConfig::default())
                .with_activation(Activation::Relu)
                .with_names(format!("conv{i}"), format!("bn{i}"));
            let pool = MaxPool2d::new(&MaxPool2dConfig::new(2, Padding::Same))?;
            stages.push((ConvBnAct::new(p, &conv)?, pool));
        }
        // On global pooling only the channels matter: no feature-map size to compute.
        let head = DenseHead::new(
            p,
            &DenseHeadConfig::global_avg_pool(
                config.width,
                vec![
                    DenseLayerConfig::new("dense", 16, Activation::Relu),
                    DenseLayerConfig::new("logit", 1, Activation::Linear),
                ],
            ),
        )?;
        Ok(Self {
            stages,
            head,
            config: config.clone(),
        })
    }
}

impl ModuleT for TinyDetector {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(xs, train), train)
    }
}

impl Model for TinyDetector {
    fn name(&self) -> &str {
        "tiny_detector"
    }
    fn family(&self) -> &str {
        TinyFamily::NAME
    }
    fn input_spec(&self) -> InputSpec {
        TinyFamily::input_spec(&self.config)
    }
    fn config_json(&self) -> models::Result<models::serde_json::Value> {
        config_to_json(self.name(), &self.config)
    }
    fn forward_features(&self, xs: &Tensor, train: bool) -> Tensor {
        self.stages
            .iter()
            .fold(xs.shallow_clone(), |ys, (conv, pool)| {
                pool.forward(&conv.forward_t(&ys, train))
            })
    }
    fn forward_head(&self, features: &Tensor, train: bool) -> Tensor {
        self.head.forward_t(features, train)
    }
    fn head(&self) -> Option<&DenseHead> {
        Some(&self.head)
    }
}

/// The family: how a stored configuration becomes the model again.
struct TinyFamily;

impl Family for TinyFamily {
    const NAME: &'static str = "tiny_detector";
    type Config = TinyConfig;

    fn build(p: &nn::Path<'_>, config: &TinyConfig) -> models::Result<Box<dyn Model>> {
        Ok(Box::new(TinyDetector::new(p, config)?))
    }
    fn input_spec(config: &TinyConfig) -> InputSpec {
        InputSpec {
            height: config.size,
            width: config.size,
            preprocessing: Preprocessing::unit(),
        }
    }
    fn feature_shape(config: &TinyConfig) -> [i64; 3] {
        let side = (config.size + 3) / 4;
        [config.width, side, side]
    }
    fn apply_options(mut config: TinyConfig, options: &BuildOptions) -> models::Result<TinyConfig> {
        if let Some([h, _]) = options.input_size {
            config.size = h;
        }
        Ok(config)
    }
}

/// `n` real and `n` fake preprocessed images (`[2n, 3, size, size]` in [0, 1]) and their
/// labels (1 = fake).
fn generated(n: i64, size: i64) -> (Tensor, Tensor) {
    let opts = (Kind::Float, Device::Cpu);
    // Smooth noise: random 4×4 colours upsampled.
    let coarse = Tensor::rand([2 * n, 3, 4, 4], opts);
    let smooth = coarse.upsample_bilinear2d([size, size], false, None, None);
    let rows = Tensor::arange(size, opts).view([size, 1]);
    let cols = Tensor::arange(size, opts).view([1, size]);
    let checker = ((rows + cols).fmod(2.0) - 0.5) * 0.12;
    let labels = Tensor::cat(&[Tensor::zeros([n], opts), Tensor::ones([n], opts)], 0);
    let images =
        (smooth + checker.view([1, 1, size, size]) * labels.view([-1, 1, 1, 1])).clamp(0.0, 1.0);
    (images, labels)
}

fn run() -> Result<()> {
    let args = Args::parse();
    ensure!(args.per_class >= 8, "--per-class must be at least 8");
    models::register_family::<TinyFamily>()?;
    deepfake::tch::manual_seed(args.seed as i64);
    let config = TinyConfig { size: 32, width: 8 };
    let (train_x, train_y) = generated(args.per_class, config.size);
    let (val_x, val_y) = generated(args.per_class / 4, config.size);
    let train = TensorBatches::new(train_x, train_y, 32)?.shuffled(args.seed);
    let val = TensorBatches::new(val_x, val_y, 64)?;

    let vs = nn::VarStore::new(Device::Cpu);
    let model = TinyFamily::build(&vs.root(), &config)?;
    let mut trainer = Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::adam(3e-3))
        .epochs(args.epochs)
        .seed(args.seed)
        .out_dir(&args.out)
        .verbosity(Verbosity::EpochLines)
        .build()?;
    trainer.fit(&train, Some(&val))?;
    let (model, vs) = trainer.into_parts();
    let path = args.out.join("tiny_detector.safetensors");
    save_model(&path, model.as_ref(), &vs)?;

    // Reopened from the file alone: the family is looked up by the name it stores.
    let reopened = models::load_checkpoint(&path, Device::Cpu)
        .with_context(|| format!("reopening {}", path.display()))?;
    let probe = Tensor::rand([4, 3, config.size, config.size], (Kind::Float, Device::Cpu));
    let same = deepfake::tch::no_grad(|| {
        model
            .forward_t(&probe, false)
            .equal(&reopened.forward_t(&probe, false))
    });
    ensure!(same, "the reopened model scores differently");
    let report = evaluate_report(reopened.as_ref(), &val, Device::Cpu)?;
    println!(
        "{}: reopened `{}` (family `{}`), identical logits; validation accuracy {:.4}, AUC {:.4}",
        path.display(),
        reopened.name(),
        reopened.family(),
        report.accuracy,
        report.auc.unwrap_or(f64::NAN)
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run())
}
