//! A model's layers and parameter counts, like Keras' `model.summary()`: what the
//! `summary` program prints.
//!
//! [`summarize`] builds a registered model, runs one forward pass of a zero image (batch 1,
//! eval mode, no gradients) inside [`df_layers::trace::capture`], which records the layers
//! in execution order, and gives each a [`Row`]: Keras layer name, Keras class, output
//! shape and parameter count; then the totals next to Keras' reference counts
//! ([`KerasCounts`]) when the registry has them for the top and size asked for.
//! [`Summary::table`] writes Keras' text table.
//!
//! Every layer with weights is listed; one the forward pass did not reach comes last with
//! output shape `None`, so the rows always add up to the totals.
//!
//! ```no_run
//! # mod deepfake { pub mod models { pub use df_models::*; } }
//! use deepfake::models::{registry, summary};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let s = summary::summarize(registry::info("meso4")?, None, None)?;
//! assert_eq!(s.keras.as_ref().map(|k| k.matches), Some(true));
//! print!("{}", s.table());
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use df_layers::trace;
use df_layers::util::{param_count, variables_by_layer};
use serde::Serialize;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::keras::KerasLayerKind;
use crate::registry::ModelInfo;
use crate::{BuildOptions, Result, Top};

/// One variable of a layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variable {
    /// Its name within the layer (`weight`, `bias`, `running_mean` ...).
    pub name: String,
    /// Its libtorch shape.
    pub shape: Vec<i64>,
    /// Whether an optimizer updates it.
    pub trainable: bool,
}

/// The variables of one layer (those named `{layer}.{variable}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// The layer's name.
    pub name: String,
    /// Its Keras class, told from its variables (`?` when they fit none).
    pub class: &'static str,
    /// Its variables in Keras' order: kernel (gamma), bias (beta), moving mean, moving
    /// variance, then any other by name.
    pub variables: Vec<Variable>,
    /// Their number of values.
    pub params: i64,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Keras layer name.
    pub name: String,
    /// Keras layer class.
    pub class: &'static str,
    /// With the batch axis; `None` for a layer with weights the forward pass did not reach.
    pub output_shape: Option<Vec<i64>>,
    /// The values of the variables named after this layer.
    pub params: i64,
    /// Those variables.
    pub variables: Vec<Variable>,
}

/// Keras' reference counts for the model and top summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KerasCounts {
    /// Keras' total.
    pub total: i64,
    /// Keras' trainable count.
    pub trainable: i64,
    /// Whether this crate's counts equal them (less what `note` explains).
    pub matches: bool,
    /// A known, explained difference.
    pub note: Option<&'static str>,
}

/// A model's layers and counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The registry name.
    pub model: String,
    /// NCHW, batch 1.
    pub input_shape: Vec<i64>,
    /// The output's shape, batch 1.
    pub output_shape: Vec<i64>,
    /// The rows in execution order, then the layers the forward pass did not reach.
    pub layers: Vec<Row>,
    /// Every value.
    pub total: i64,
    /// Values an optimizer updates.
    pub trainable: i64,
    /// The others (batch-norm statistics ...).
    pub non_trainable: i64,
    /// Keras' reference counts for this top, when the registry has them.
    pub keras: Option<KerasCounts>,
}

/// Summarises `info`'s model with `top` (`None`: its default) at `input_size` (square;
/// `None`: its default). Keras' counts are compared for the default top at the default
/// size, and for a backbone (`include_top=False`) where Keras reports one.
///
/// # Errors
/// Building the model (an input size below its minimum ...).
pub fn summarize(info: &ModelInfo, top: Option<Top>, input_size: Option<i64>) -> Result<Summary> {
    let mut options = BuildOptions {
        top: top.clone(),
        ..BuildOptions::default()
    };
    if let Some(s) = input_size {
        options = options.with_input_size(s, s);
    }
    let vs = VarStore::new(Device::Cpu);
    let model = info.build(&vs.root(), &options)?;
    let spec = model.input_spec();
    let input_shape = vec![1, 3, spec.height, spec.width];
    let x = Tensor::zeros(input_shape.as_slice(), (Kind::Float, Device::Cpu));
    let (y, records) = tch::no_grad(|| trace::capture(|| model.forward_t(&x, false)));
    let counts = param_count(&vs);
    let default_top = top.is_none() || top.as_ref() == Some(&info.default_top());
    let backbone = matches!(top, Some(Top::Backbone { .. }));
    let reference = info.keras_params.and_then(|k| {
        if default_top && input_size.is_none() {
            Some(k.with_top)
        } else if backbone {
            k.without_top
        } else {
            None
        }
    });
    Ok(Summary {
        model: info.name.to_string(),
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
    })
}

/// Variables grouped by layer (path without its last component), in creation order.
pub fn layers(vs: &VarStore) -> Vec<Layer> {
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

/// The traced layers in execution order, each with the variables of its name (on its
/// first appearance), then the layers with variables that the trace never reached, in
/// creation order.
pub fn rows(records: Vec<trace::LayerRecord>, layers: Vec<Layer>) -> Vec<Row> {
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

/// `n` with a comma between each group of three digits: `-1,234,567`.
pub fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::from(if n < 0 { "-" } else { "" });
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Keras' way of writing a shape: the batch axis as `None`, `?` when unknown.
pub fn keras_shape(shape: Option<&[i64]>) -> String {
    match shape {
        Some([_, rest @ ..]) => {
            let dims: Vec<String> = rest.iter().map(i64::to_string).collect();
            format!("(None, {})", dims.join(", "))
        }
        _ => "?".into(),
    }
}

impl Summary {
    /// Keras' text table: a row per layer (`name (class)`, output shape, parameters), the
    /// totals, and Keras' reference counts.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        let label = |r: &Row| format!("{} ({})", r.name, r.class);
        let shape = |r: &Row| keras_shape(r.output_shape.as_deref());
        let width = |f: &dyn Fn(&Row) -> String| {
            self.layers
                .iter()
                .map(|r| f(r).chars().count())
                .max()
                .unwrap_or(0)
                .max(20)
        };
        let (w0, w1) = (width(&label), width(&shape));
        line(format!(
            "Model: \"{}\"   input {} → output {} (NCHW)",
            self.model,
            keras_shape(Some(&self.input_shape)),
            keras_shape(Some(&self.output_shape))
        ));
        let rule = "━".repeat(w0 + w1 + 16);
        line(rule.clone());
        line(format!(
            "{:<w0$}  {:<w1$}  {:>12}",
            "Layer (type)", "Output Shape (NCHW)", "Param #"
        ));
        line(rule.clone());
        for r in &self.layers {
            line(format!(
                "{:<w0$}  {:<w1$}  {:>12}",
                label(r),
                shape(r),
                thousands(r.params)
            ));
        }
        line(rule);
        line(format!(" Total params: {}", thousands(self.total)));
        line(format!(" Trainable params: {}", thousands(self.trainable)));
        line(format!(
            " Non-trainable params: {}",
            thousands(self.non_trainable)
        ));
        match &self.keras {
            Some(k) => {
                line(format!(
                    " Keras reference: {} total, {} trainable ({})",
                    thousands(k.total),
                    thousands(k.trainable),
                    if k.matches { "equal" } else { "DIFFERENT" }
                ));
                if let Some(note) = k.note {
                    line(format!("   ({note})"));
                }
            }
            None => line(" Keras reference: none for this model and top".into()),
        }
        let untraced = self
            .layers
            .iter()
            .filter(|r| r.output_shape.is_none())
            .count();
        line(format!(
            " ({} rows in execution order{}; weightless layers Keras names automatically, fused \
             activations, dropout and input preprocessing are not listed)",
            self.layers.len(),
            if untraced > 0 {
                format!(", then {untraced} layers with weights not reached by the forward pass")
            } else {
                String::new()
            }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    #[test]
    fn meso4_rows_add_up_to_keras_counts() {
        let info = registry::info("meso4").expect("meso4");
        let s = summarize(info, None, None).expect("summary");
        let keras = info.keras_params.expect("Keras' counts").with_top;
        assert_eq!((s.total, s.trainable), (keras.total, keras.trainable));
        assert_eq!(s.keras.as_ref().map(|k| k.matches), Some(true));
        assert_eq!(s.layers.iter().map(|r| r.params).sum::<i64>(), s.total);
        assert_eq!(s.input_shape, [1, 3, 256, 256]);
        assert_eq!(s.output_shape, [1, 1]);
        // Execution order: the first convolution first, its output 8 channels at full size.
        let first = &s.layers[0];
        assert_eq!(
            (first.class, first.output_shape.as_deref()),
            ("Conv2D", Some(&[1, 8, 256, 256][..]))
        );
        assert!(s.layers.iter().all(|r| r.output_shape.is_some()));
        let table = s.table();
        assert!(
            table.contains(&format!(" Total params: {}\n", thousands(keras.total))),
            "{table}"
        );
        assert!(table.contains("(equal)"), "{table}");
    }

    #[test]
    fn another_size_or_top_has_no_keras_reference() {
        let info = registry::info("meso4").expect("meso4");
        let s = summarize(info, None, Some(128)).expect("summary");
        assert_eq!(s.keras, None);
        assert_eq!(s.input_shape, [1, 3, 128, 128]);
        assert!(s.table().contains("none for this model and top"));
        let s = summarize(info, Some(Top::binary_pooled()), None).expect("summary");
        assert_eq!(s.keras, None);
    }

    #[test]
    fn a_layer_the_forward_pass_did_not_reach_comes_last_without_a_shape() {
        let layer = |name: &str, params| Layer {
            name: name.into(),
            class: "Dense",
            variables: Vec::new(),
            params,
        };
        let record = |name: &str| trace::LayerRecord {
            name: name.into(),
            class: "Dense",
            output_shape: vec![1, 4],
        };
        let got = rows(
            vec![record("b"), record("relu"), record("a")],
            vec![layer("a", 3), layer("unused", 7), layer("b", 5)],
        );
        let got: Vec<(&str, i64, bool)> = got
            .iter()
            .map(|r| (r.name.as_str(), r.params, r.output_shape.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                ("b", 5, true),
                ("relu", 0, true),
                ("a", 3, true),
                ("unused", 7, false)
            ]
        );
    }

    #[test]
    fn shapes_and_counts_are_written_as_keras_writes_them() {
        assert_eq!(keras_shape(Some(&[1, 16, 8, 8])), "(None, 16, 8, 8)");
        assert_eq!(keras_shape(Some(&[1])), "(None, )");
        assert_eq!(keras_shape(None), "?");
        let got: Vec<String> = [0, 999, 1000, 1_234_567, -12_345]
            .into_iter()
            .map(thousands)
            .collect();
        assert_eq!(got, ["0", "999", "1,000", "1,234,567", "-12,345"]);
    }
}
