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
//! One forward pass of a zero image (batch 1, eval mode, no gradients) runs inside
//! [`deepfake::layers::trace::capture`], which records the layers in execution order;
//! each becomes a row: Keras layer name, Keras class, output shape and parameter count,
//! then the totals (total, trainable, non-trainable) next to Keras' reference counts when
//! the registry has them.
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

use std::collections::HashMap;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use deepfake::layers::trace;
use deepfake::layers::util::{param_count, variables_by_layer};
use deepfake::models::keras::KerasLayerKind;
use deepfake::models::registry::{self, BuildOptions};
use deepfake::models::Top;
use deepfake::tch::nn::VarStore;
use deepfake::tch::{Device, Kind, Tensor};
use serde::Serialize;

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

#[derive(Debug, Serialize)]
struct Variable {
    name: String,
    shape: Vec<i64>,
    trainable: bool,
}

/// The variables of one layer (those named `{layer}.{variable}`).
#[derive(Debug)]
struct Layer {
    name: String,
    class: &'static str,
    variables: Vec<Variable>,
    params: i64,
}

/// One row of the table.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    class: &'static str,
    /// With the batch axis; `None` for a layer with weights the forward pass did not reach.
    output_shape: Option<Vec<i64>>,
    params: i64,
    variables: Vec<Variable>,
}

#[derive(Debug, Serialize)]
struct KerasCounts {
    total: i64,
    trainable: i64,
    matches: bool,
    note: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Summary {
    model: String,
    input_shape: Vec<i64>,
    output_shape: Vec<i64>,
    layers: Vec<Row>,
    total: i64,
    trainable: i64,
    non_trainable: i64,
    /// Keras' reference counts for this top, when the registry has them.
    keras: Option<KerasCounts>,
}

/// Variables grouped by layer (path without its last component), in creation order.
fn layers(vs: &VarStore) -> Vec<Layer> {
    variables_by_layer(vs)
        .into_iter()
        .map(|(name, vars)| {
            let class = KerasLayerKind::of_variables(&vars).map_or("?", KerasLayerKind::class_name);
            // Keras' order: kernel (gamma), bias (beta), moving mean, moving variance.
            let rank = |n: &str| match n {
                "weight" => 0,
                "bias" => 1,
                "running_mean" => 2,
                "running_var" => 3,
                _ => 4,
            };
            let mut sorted: Vec<(&String, &Tensor)> = vars.iter().collect();
            sorted.sort_by_key(|(n, _)| (rank(n), n.to_string()));
            let variables: Vec<Variable> = sorted
                .into_iter()
                .map(|(n, t)| Variable {
                    name: n.clone(),
                    shape: t.size(),
                    trainable: t.requires_grad(),
                })
                .collect();
            let params = vars.values().map(|t| t.numel() as i64).sum();
            Layer {
                name,
                class,
                variables,
                params,
            }
        })
        .collect()
}

fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Keras' way of writing a shape: the batch axis as `None`, `?` when unknown.
fn keras_shape(shape: Option<&[i64]>) -> String {
    match shape {
        Some([_, rest @ ..]) => {
            let dims: Vec<String> = rest.iter().map(i64::to_string).collect();
            format!("(None, {})", dims.join(", "))
        }
        _ => "?".into(),
    }
}

/// The table as text (written at once, so that a closed pipe, as with `| head`, ends
/// the program quietly instead of panicking in `println!`).
fn table(s: &Summary) -> Result<String, std::fmt::Error> {
    use std::fmt::Write;
    let mut out = String::new();
    let label = |r: &Row| format!("{} ({})", r.name, r.class);
    let shape = |r: &Row| keras_shape(r.output_shape.as_deref());
    let w0 = s
        .layers
        .iter()
        .map(|r| label(r).len())
        .max()
        .unwrap_or(0)
        .max(20);
    let w1 = s
        .layers
        .iter()
        .map(|r| shape(r).len())
        .max()
        .unwrap_or(0)
        .max(20);
    writeln!(
        out,
        "Model: \"{}\"   input {} → output {} (NCHW)",
        s.model,
        keras_shape(Some(&s.input_shape)),
        keras_shape(Some(&s.output_shape))
    )?;
    let rule = "━".repeat(w0 + w1 + 16);
    writeln!(out, "{rule}")?;
    writeln!(
        out,
        "{:<w0$}  {:<w1$}  {:>12}",
        "Layer (type)", "Output Shape (NCHW)", "Param #"
    )?;
    writeln!(out, "{rule}")?;
    for r in &s.layers {
        writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:>12}",
            label(r),
            shape(r),
            thousands(r.params)
        )?;
    }
    writeln!(out, "{rule}")?;
    writeln!(out, " Total params: {}", thousands(s.total))?;
    writeln!(out, " Trainable params: {}", thousands(s.trainable))?;
    writeln!(out, " Non-trainable params: {}", thousands(s.non_trainable))?;
    match &s.keras {
        Some(k) => {
            writeln!(
                out,
                " Keras reference: {} total, {} trainable ({})",
                thousands(k.total),
                thousands(k.trainable),
                if k.matches { "equal" } else { "DIFFERENT" }
            )?;
            if let Some(note) = k.note {
                writeln!(out, "   ({note})")?;
            }
        }
        None => writeln!(out, " Keras reference: none for this model and top")?,
    }
    let untraced = s.layers.iter().filter(|r| r.output_shape.is_none()).count();
    writeln!(
        out,
        " ({} rows in execution order{}; weightless layers Keras names automatically, fused \
         activations, dropout and input preprocessing are not listed)",
        s.layers.len(),
        if untraced > 0 {
            format!(", then {untraced} layers with weights not reached by the forward pass")
        } else {
            String::new()
        }
    )?;
    Ok(out)
}

/// The traced layers in execution order, each with the variables of its name (on its
/// first appearance), then the layers with variables that the trace never reached, in
/// creation order.
fn rows(records: Vec<trace::LayerRecord>, layers: Vec<Layer>) -> Vec<Row> {
    let index: HashMap<String, usize> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.name.clone(), i))
        .collect();
    let mut layers: Vec<Option<Layer>> = layers.into_iter().map(Some).collect();
    let mut out: Vec<Row> = records
        .into_iter()
        .map(|r| {
            let layer = index.get(&r.name).and_then(|&i| layers[i].take());
            Row {
                name: r.name,
                class: r.class,
                output_shape: Some(r.output_shape),
                params: layer.as_ref().map_or(0, |l| l.params),
                variables: layer.map_or_else(Vec::new, |l| l.variables),
            }
        })
        .collect();
    out.extend(layers.into_iter().flatten().map(|l| Row {
        name: l.name,
        class: l.class,
        output_shape: None,
        params: l.params,
        variables: l.variables,
    }));
    out
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
    let mut options = BuildOptions {
        top: top.clone(),
        ..BuildOptions::default()
    };
    if let Some(s) = args.input_size {
        options = options.with_input_size(s, s);
    }
    let vs = VarStore::new(Device::Cpu);
    let model = info.build(&vs.root(), &options)?;
    let spec = model.input_spec();
    let input_shape = vec![1, 3, spec.height, spec.width];
    let x = Tensor::zeros(input_shape.as_slice(), (Kind::Float, Device::Cpu));
    let (y, records) = deepfake::tch::no_grad(|| trace::capture(|| model.forward_t(&x, false)));
    let counts = param_count(&vs);
    let default_top =
        matches!(args.top, TopArg::Default) || top.as_ref() == Some(&info.default_top());
    let reference = info.keras_params.and_then(|k| {
        if default_top && args.input_size.is_none() {
            Some(k.with_top)
        } else if matches!(args.top, TopArg::Backbone) {
            k.without_top
        } else {
            None
        }
    });
    let summary = Summary {
        model: name,
        input_shape,
        output_shape: y.size(),
        layers: rows(records, layers(&vs)),
        total: counts.total,
        trainable: counts.trainable,
        non_trainable: counts.non_trainable(),
        keras: reference.map(|r| {
            // Keras' EfficientNet counts the 7 values (mean, variance, count) of its input
            // Normalization layer, which is input preprocessing here (`InputSpec`).
            let normalization = if info.name.starts_with("efficientnet") {
                7
            } else {
                0
            };
            KerasCounts {
                total: r.total,
                trainable: r.trainable,
                matches: r.trainable == counts.trainable && r.total - normalization == counts.total,
                note: (normalization > 0).then_some(
                    "Keras' total includes the 7 values of EfficientNet's Normalization \
                     layer, which is input preprocessing here",
                ),
            }
        }),
    };
    let text = if args.json {
        serde_json::to_string_pretty(&summary)? + "\n"
    } else {
        table(&summary)?
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
