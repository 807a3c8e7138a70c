//! Prints a model's layers and parameter counts, like Keras' `model.summary()`.
//!
//! ```text
//! cargo run --release --example summary -- meso4
//! cargo run --release --example summary -- efficientnet_b0 --top study --json
//! cargo run --release --example summary -- --list
//! cargo run --release --example summary -- --list --json > models.json
//! ```
//!
//! `--list --json` prints the registry: one object per model, in registry order, with its
//! name, family, description, `keras_application` (the `keras.applications` constructor,
//! `null` for MesoNet and VGG16-C), `input_size`, `min_input_size`, `preprocessing`,
//! `keras_params` (Keras' counts with and without the top), `default_top`,
//! `study_recipe` (early stopping and `ReduceLROnPlateau` metrics, Adam's rate, whether
//! the study compares it) and `gradcam_layer`. The fixture and FLOPs scripts, the torch
//! peer bench and `scripts/device/models.sh` read their model lists from it.
//!
//! The work is [`deepfake::models::summary`]'s: one forward pass of a zero image (batch 1,
//! eval mode, no gradients) runs inside [`deepfake::layers::trace::capture`], which
//! records the layers in execution order; each becomes a row: Keras layer name, Keras
//! class, output shape and parameter count, then the totals (total, trainable,
//! non-trainable) next to Keras' reference counts when the registry has them.
//!
//! Output shapes are this crate's NCHW shapes with `None` for the batch axis
//! (`(None, 16, 8, 8)` is Keras' `(None, 8, 8, 16)`). The parameters of a row are those of
//! the variables named after that layer. Every layer with weights is listed; one that the
//! forward pass did not reach (none in the registered models) comes last with output shape
//! `?`, so the rows always add up to the totals. Layers without weights are listed where
//! the blocks record them under Keras' name (pooling, padding, flatten, reshape, add,
//! multiply, concatenate, and activations Keras names, such as `conv1_relu` or
//! `block1a_activation`); not listed are layers Keras names automatically inside blocks
//! (Inception-ResNet's `activation_12` ...), activations that Keras fuses into a
//! convolution or dense layer, dropout inside dense heads, and Keras' input preprocessing
//! layers (`Rescaling`, `Normalization`), which are the model's `InputSpec` here. See
//! [`deepfake::layers::trace`] for the full list.
//!
//! With `--json` the same rows are printed as JSON, each with its variables' libtorch
//! shapes and `output_shape` with the batch axis (1), `null` when not traced.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use deepfake::models::registry;
use deepfake::models::{summary, Top};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TopArg {
    /// The model's default (ImageNet classifier; MesoNet's head; the study head for vgg16_c).
    Default,
    /// Keras' ImageNet classifier (1000 classes).
    Imagenet,
    /// No top: the last feature map.
    Backbone,
    /// The study's head: Flatten → Dense(256) → Dropout → Dense(128) → Dense(1).
    Study,
    /// Global average pooling → Dense(1).
    Pooled,
}

/// Prints a model's layers and parameter counts.
#[derive(Debug, Parser)]
#[command(name = "summary")]
struct Args {
    /// Registry name (`meso4`, `efficientnet_b7` ...).
    #[arg(required_unless_present = "list")]
    model: Option<String>,
    /// The top to build.
    #[arg(long, value_enum, default_value = "default")]
    top: TopArg,
    /// Square input size (default: the model's).
    #[arg(long)]
    input_size: Option<i64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// List the registered models (with `--json`: the whole registry as JSON).
    #[arg(long)]
    list: bool,
}

fn main() -> std::process::ExitCode {
    deepfake::exit_code(run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.list {
        if args.json {
            let text = serde_json::to_string_pretty(registry::registry())? + "\n";
            return write_stdout(&text);
        }
        for m in registry::registry() {
            println!(
                "{:<20} {}×{}  {}",
                m.name, m.input_size[0], m.input_size[1], m.description
            );
        }
        return Ok(());
    }
    let name = args.model.context("a model name is required")?;
    let info = registry::info(&name)?;
    let top = match args.top {
        TopArg::Default => None,
        TopArg::Imagenet => Some(Top::ImageNet { classes: 1000 }),
        TopArg::Backbone => Some(Top::Backbone {
            pooling: deepfake::layers::HeadInput::Flatten,
        }),
        TopArg::Study => Some(Top::study([256, 128], 0.5, 0.0)),
        TopArg::Pooled => Some(Top::binary_pooled()),
    };
    let summary = summary::summarize(info, top, args.input_size)?;
    let text = if args.json {
        serde_json::to_string_pretty(&summary)? + "\n"
    } else {
        summary.table()
    };
    write_stdout(&text)
}

/// Writes `text` to standard output; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
