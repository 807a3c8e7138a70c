//! Prints a model's layers and parameter counts, like Keras' `model.summary()`.
//!
//! ```text
//! cargo run --release --example summary -- meso4
//! cargo run --release --example summary -- efficientnet_b0 --top study --json
//! cargo run --release --example summary -- --list
//! ```
//!
//! One row per layer that holds weights (Keras layer name, Keras class, the libtorch
//! shapes of its variables, parameter count), in the order the model creates them, then
//! the totals (total, trainable, non-trainable) next to Keras' reference counts when the
//! registry has them. The model's input and output shapes come from one forward pass on a
//! zero image.
//!
//! What this does not show, unlike Keras: per-layer output shapes, and layers without
//! weights (activations, pooling, dropout, flatten). libtorch modules have no forward
//! hooks in `tch`, so the table is built from the model's variables, which are named after
//! Keras' layers; the class is read from the variables (`running_mean` → batch norm,
//! a 4-D kernel → convolution, depthwise when it has one input channel per group, a 2-D
//! kernel → dense).

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use deepfake::layers::util::param_count;
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
    /// List the registered models.
    #[arg(long)]
    list: bool,
}

#[derive(Debug, Serialize)]
struct Variable {
    name: String,
    shape: Vec<i64>,
    trainable: bool,
}

#[derive(Debug, Serialize)]
struct Layer {
    name: String,
    class: &'static str,
    variables: Vec<Variable>,
    params: i64,
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
    layers: Vec<Layer>,
    total: i64,
    trainable: i64,
    non_trainable: i64,
    /// Keras' reference counts for this top, when the registry has them.
    keras: Option<KerasCounts>,
}

fn class_of(vars: &BTreeMap<String, Tensor>) -> &'static str {
    if vars.contains_key("running_mean") {
        return "BatchNormalization";
    }
    match vars.get("weight").map(|w| w.size()) {
        Some(s) if s.len() == 4 && s[1] == 1 && s[0] > 1 => "DepthwiseConv2D",
        Some(s) if s.len() == 4 => "Conv2D",
        Some(s) if s.len() == 2 => "Dense",
        _ => "?",
    }
}

/// Variables grouped by layer (path without its last component), in creation order.
fn layers(vs: &VarStore) -> Vec<Layer> {
    let order: HashMap<usize, usize> = vs
        .trainable_variables()
        .iter()
        .enumerate()
        .map(|(i, t)| (t.data_ptr() as usize, i))
        .collect();
    let mut groups: BTreeMap<String, BTreeMap<String, Tensor>> = BTreeMap::new();
    for (name, t) in vs.variables() {
        let (layer, var) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
        groups
            .entry(layer.to_string())
            .or_default()
            .insert(var.to_string(), t);
    }
    let mut rows: Vec<(usize, Layer)> = groups
        .into_iter()
        .map(|(name, vars)| {
            let first = vars
                .values()
                .filter_map(|t| order.get(&(t.data_ptr() as usize)).copied())
                .min()
                .unwrap_or(usize::MAX);
            let class = class_of(&vars);
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
            (
                first,
                Layer {
                    name,
                    class,
                    variables,
                    params,
                },
            )
        })
        .collect();
    rows.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    rows.into_iter().map(|(_, l)| l).collect()
}

fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
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

fn print_table(s: &Summary) {
    let shapes = |l: &Layer| {
        l.variables
            .iter()
            .map(|v| format!("{}{:?}", v.name, v.shape))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let w0 = s
        .layers
        .iter()
        .map(|l| l.name.len() + l.class.len() + 3)
        .max()
        .unwrap_or(10)
        .max(20);
    let w1 = s
        .layers
        .iter()
        .map(|l| shapes(l).len())
        .max()
        .unwrap_or(10)
        .max(16);
    println!(
        "Model: \"{}\"   input {:?} → output {:?}",
        s.model, s.input_shape, s.output_shape
    );
    let rule = "━".repeat(w0 + w1 + 16);
    println!("{rule}");
    println!(
        "{:<w0$}  {:<w1$}  {:>12}",
        "Layer (type)", "Weights (libtorch shapes)", "Param #"
    );
    println!("{rule}");
    for l in &s.layers {
        println!(
            "{:<w0$}  {:<w1$}  {:>12}",
            format!("{} ({})", l.name, l.class),
            shapes(l),
            thousands(l.params)
        );
    }
    println!("{rule}");
    println!(" Total params: {}", thousands(s.total));
    println!(" Trainable params: {}", thousands(s.trainable));
    println!(" Non-trainable params: {}", thousands(s.non_trainable));
    match &s.keras {
        Some(k) => {
            println!(
                " Keras reference: {} total, {} trainable ({})",
                thousands(k.total),
                thousands(k.trainable),
                if k.matches { "equal" } else { "DIFFERENT" }
            );
            if let Some(note) = k.note {
                println!("   ({note})");
            }
        }
        None => println!(" Keras reference: none for this model and top"),
    }
    println!(
        " ({} layers with weights; layers without weights are not listed)",
        s.layers.len()
    );
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.list {
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
    let y = deepfake::tch::no_grad(|| {
        model.forward_t(
            &Tensor::zeros(input_shape.as_slice(), (Kind::Float, Device::Cpu)),
            false,
        )
    });
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
        layers: layers(&vs),
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
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_table(&summary);
    }
    Ok(())
}
