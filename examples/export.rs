//! Exports a detector to TorchScript or ONNX, with its preparation stored in the file.
//!
//! ```text
//! cargo run --release --example export -- --weights runs/lfw/model.safetensors \
//!     --format torchscript --out lfw.pt
//! cargo run --release --example export -- --weights runs/lfw/model.safetensors \
//!     --format onnx --out lfw.onnx
//! ```
//!
//! `--weights` takes a native checkpoint (`.safetensors`) or a Keras file (`.h5`, with
//! `--model` and `--polarity` as `predict` takes them, and `--input-size` where its head does
//! not tell). TorchScript: the model traced at batch 2 (df-sys's custom kernels replaced by
//! standard operators), checked against the eager model at batches 1 and 5; a graph that
//! differs fails naming the first layer that differs, and nothing is written. ONNX: that
//! graph converted by the set-up's Python (`torch.onnx.export`, `dynamo=False`, opset 17,
//! dynamic batch axis) and checked with ONNX Runtime; `--python` names the Python (default:
//! `$DEEPFAKE_PYTHON`, else `.venv-tools/bin/python` here or above, else the set-up's cache).
//! The graph takes the preprocessed input `[N, 3, H, W]` and returns the logit of fake
//! `[N, 1]`; the file's metadata (TorchScript extra file `deepfake.json`, ONNX
//! `metadata_props` key `deepfake`) says how a picture becomes that input. One JSON line on
//! stdout reports the file, its size, the time and the check's largest |Δ|.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use deepfake::cli::PolarityArg;
use deepfake::detect::export::{export_weights, ExportFormat, ExportOptions};
use deepfake::exit_code;

/// Exports a detector to TorchScript or ONNX.
#[derive(Debug, Parser)]
#[command(name = "export")]
struct Args {
    /// Weights: a `.safetensors` checkpoint or a Keras `.h5` file.
    #[arg(long)]
    weights: PathBuf,
    /// Registry name of the model; required for a Keras file, optional for a checkpoint
    /// (which must then be of that model).
    #[arg(long)]
    model: Option<String>,
    /// What a Keras file's output scores (ignored for checkpoints).
    #[arg(long, value_enum, default_value = "real")]
    polarity: PolarityArg,
    /// Square input size a Keras file was trained at, when its head does not tell.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    input_size: Option<i64>,
    /// `torchscript` or `onnx`.
    #[arg(long)]
    format: ExportFormat,
    /// The file to write (atomically).
    #[arg(long)]
    out: PathBuf,
    /// The Python with torch, onnx and onnxruntime (ONNX only).
    #[arg(long)]
    python: Option<PathBuf>,
}

fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let mut options = ExportOptions::new(args.format);
    options.python = args.python;
    options.keras_polarity = args.polarity.into();
    options.input_size = args.input_size.map(|s| [s, s]);
    let report = export_weights(args.model.as_deref(), &args.weights, &options, &args.out)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn main() -> ExitCode {
    exit_code(run())
}
