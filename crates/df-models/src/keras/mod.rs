//! Keras weight import: legacy Keras 2 `.h5` and Keras 3 `.weights.h5` files into a model
//! built by this crate, in pure Rust (no Python, no libhdf5).
//!
//! # Matching
//!
//! The model's variables are grouped into layers by their path (`block1a_dwconv.weight` →
//! layer `block1a_dwconv`); variable names mirror Keras layer names. Each Keras layer that
//! holds weights is paired with one model layer:
//!
//! 1. **By name**, for layers with a name of their own (`block1a_dwconv`, `fc1`,
//!    `conv2_block1_0_bn`).
//! 2. **Auto-generated names** (`conv2d_5`, `batch_normalization_5`, `dense_3`: what Keras
//!    calls layers created without a name, numbered per class in creation order across the
//!    whole session) are paired by name when every such layer of a class finds a same-named
//!    model layer of the right shapes (a file written in a fresh session); otherwise **in
//!    order of creation**: the file's layers of that class sorted by their number, the
//!    model's sorted by the order its variables were created, checked by shape. This is
//!    what imports the MesoNet authors' files (`conv2d_5` ... in a session that had built
//!    another model first) and the study's heads (`dense_3` ...).
//! 3. A Keras 3 file without layer names (Keras 3 before the `name` attribute) is matched
//!    in its own order, per class: correct when the model creates its layers in Keras'
//!    `model.layers` order, which holds for the sequential models here but not for
//!    branched ones; prefer files written by a recent Keras.
//!
//! Then every tensor is converted with [`crate::layout`] and its shape checked. Anything
//! that does not fit — a model variable without a value, a file tensor without a variable,
//! a shape that differs — is an [`Error::WeightMismatch`] listing them all by name, and
//! **nothing is loaded**: there is no partial import.
//!
//! Keras' `Normalization` layer (EfficientNet's input normalisation) has no model variable:
//! its statistics are returned in [`KerasImport::normalization`], from which
//! [`KerasNormalization::preprocessing`] gives the input preprocessing the file was trained
//! with.
//!
//! # Polarity
//!
//! Every model of this crate outputs the logit of "fake". A Keras binary model outputs the
//! score of whatever class its labels numbered 1. [`KerasImportOptions::polarity`] says which:
//! with [`Polarity::Real`] (the default) the final dense layer's weight and bias are negated
//! on import, so that `sigmoid(logit)` becomes `1 - p(real) = p(fake)`.
//!
//! The default is `Real` because Keras' `flow_from_directory` and
//! `image_dataset_from_directory` number class folders alphabetically: folders `fake/` and
//! `real/` (or the MesoNet authors' `df/` and `real/`) give `fake` = 0, `real` = 1, so the
//! sigmoid scores "real". Pass [`Polarity::Fake`] for a model whose output already scores
//! "fake" (labels 1 = fake). Tops other than a one-unit binary head are never flipped.

mod file;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tch::nn::VarStore;
use tch::Tensor;

pub use file::{
    auto_name_parts, KerasFormat, KerasLayer, KerasLayerKind, KerasTensor, KerasWeights,
};

use crate::error::{Error, Result, WeightMismatchReport};
use crate::layout::{self, KerasRole};
use crate::spec::{ChannelOrder, Model, Polarity, Preprocessing};

/// Options of [`import_keras`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KerasImportOptions {
    /// What the file's binary output scores; [`Polarity::Real`] (the default, Keras'
    /// alphabetical class order for `fake`/`real` folders) flips the final logit so that
    /// the model reports p(fake). See the module docs.
    pub polarity: Polarity,
}

impl Default for KerasImportOptions {
    fn default() -> Self {
        Self {
            polarity: Polarity::Real,
        }
    }
}

impl KerasImportOptions {
    /// Sets the polarity of the file's output.
    pub fn with_polarity(mut self, polarity: Polarity) -> Self {
        self.polarity = polarity;
        self
    }

    /// The MesoNet authors' published files (`Meso4_DF.h5` ...): the sigmoid scores
    /// "real" (classes `df` = 0, `real` = 1).
    pub fn mesonet_authors() -> Self {
        Self {
            polarity: Polarity::Real,
        }
    }
}

/// The statistics of a Keras `Normalization` layer found in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasNormalization {
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel variance.
    pub variance: Vec<f32>,
}

impl KerasNormalization {
    /// Whether the layer is the identity (mean 0, variance 1: `weights=None`, never adapted).
    pub fn is_identity(&self) -> bool {
        self.mean.iter().all(|&m| m == 0.0) && self.variance.iter().all(|&v| v == 1.0)
    }

    /// The input preprocessing of Keras' EfficientNet with these statistics, from RGB
    /// pixels in `0..=255`: `Rescaling(1/255)` → `Normalization` → and, when the statistics
    /// are ImageNet's (a model built with `weights="imagenet"`), Keras' extra
    /// `Rescaling(1/sqrt(std))` (keras-team/keras issue tensorflow#49930): overall
    /// `(x/255 - mean) / (sqrt(var) · sqrt(std))`.
    ///
    /// `None` unless the layer has three channels.
    pub fn preprocessing(&self) -> Option<Preprocessing> {
        if self.mean.len() != 3 || self.variance.len() != 3 {
            return None;
        }
        let imagenet = self
            .mean
            .iter()
            .zip(crate::spec::IMAGENET_RGB_MEAN)
            .all(|(&m, r)| (f64::from(m) - r).abs() < 1e-4)
            && self
                .variance
                .iter()
                .zip(crate::spec::IMAGENET_RGB_STD)
                .all(|(&v, s)| (f64::from(v) - s * s).abs() < 1e-4);
        let mut mean = [0.0; 3];
        let mut std = [1.0; 3];
        for c in 0..3 {
            mean[c] = f64::from(self.mean[c]);
            // Keras' Normalization divides by max(sqrt(var), epsilon).
            let sd = f64::from(self.variance[c]).sqrt().max(1e-7);
            std[c] = if imagenet { sd * sd.sqrt() } else { sd };
        }
        Some(Preprocessing {
            channel_order: ChannelOrder::Rgb,
            scale: 1.0 / 255.0,
            mean,
            std,
        })
    }
}

/// What [`import_keras`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasImport {
    /// The file's layout.
    pub format: KerasFormat,
    /// Layers paired by name.
    pub by_name: usize,
    /// Layers paired in creation order: `(file layer, model layer)`.
    pub by_order: Vec<(String, String)>,
    /// Tensors copied.
    pub tensors: usize,
    /// Values copied.
    pub values: usize,
    /// Whether the final logit was negated ([`Polarity::Real`] on a one-unit head).
    pub polarity_flipped: bool,
    /// The file's `Normalization` statistics, if it has such a layer.
    pub normalization: Option<KerasNormalization>,
}

/// Reads a Keras weight file and loads it into `model`'s variables in `vs`.
///
/// `model` must have been built under `vs` (its variables are those of `vs`); it gives the
/// head (for the flatten permutation and the polarity flip).
///
/// # Errors
/// Those of [`KerasWeights::read`]; [`Error::WeightMismatch`] when the file does not fit
/// the model (nothing is loaded then); [`Error::Torch`] when a copy fails.
pub fn import_keras(
    vs: &VarStore,
    model: &dyn Model,
    path: impl AsRef<Path>,
    options: &KerasImportOptions,
) -> Result<KerasImport> {
    let weights = KerasWeights::read(path)?;
    import_keras_weights(vs, model, &weights, options)
}

/// [`import_keras`] for weights already read.
///
/// # Errors
/// As [`import_keras`].
pub fn import_keras_weights(
    vs: &VarStore,
    model: &dyn Model,
    weights: &KerasWeights,
    options: &KerasImportOptions,
) -> Result<KerasImport> {
    let flatten_at = flatten_inputs(model);
    let model_layers = model_layers(vs, &flatten_at);
    let mut report = copy_planned(model, weights, &model_layers)?;
    report.polarity_flipped = match options.polarity {
        Polarity::Fake => false,
        Polarity::Real => flip_final_logit(model)?,
    };
    Ok(report)
}

/// Loads the backbone of a Keras weight file into `model`, leaving its head as it is:
/// transfer learning from `keras.applications` ImageNet weights. The file may be a
/// `*_notop.h5` (`include_top=False`) or hold a top, whose dense layers are then ignored;
/// every variable of the model outside [`Model::head`] must find its value in the file and
/// every other layer of the file a variable, or nothing is loaded.
///
/// # Errors
/// As [`import_keras`].
pub fn import_keras_backbone(
    vs: &VarStore,
    model: &dyn Model,
    weights: &KerasWeights,
) -> Result<KerasImport> {
    let head: Vec<&str> = model
        .head()
        .map(|h| h.layers.iter().map(|l| l.path()).collect())
        .unwrap_or_default();
    let backbone: Vec<ModelLayer> = model_layers(vs, &HashMap::new())
        .into_iter()
        .filter(|l| !head.contains(&l.path.as_str()))
        .collect();
    let without_top = KerasWeights {
        layers: weights
            .layers
            .iter()
            .filter(|l| l.kind != KerasLayerKind::Dense)
            .cloned()
            .collect(),
        ..weights.clone()
    };
    copy_planned(model, &without_top, &backbone)
}

/// Pairs the file's layers with `model_layers`, and copies every tensor when all fit.
fn copy_planned(
    model: &dyn Model,
    weights: &KerasWeights,
    model_layers: &[ModelLayer],
) -> Result<KerasImport> {
    let plan = plan(weights, model_layers);
    if !plan.is_complete() {
        return Err(Error::WeightMismatch(Box::new(WeightMismatchReport {
            source_file: weights.path.clone(),
            model: model.name().to_string(),
            missing: plan.missing,
            unexpected: plan.unexpected,
            mis_shaped: plan.mis_shaped,
            notes: plan.notes,
        })));
    }
    let mut tensors = 0;
    let mut values = 0;
    for copy in &plan.copies {
        let layer = &weights.layers[copy.file_layer];
        let t = &layer.tensors[copy.tensor];
        let m = &model_layers[copy.model_layer];
        let dest = &m.vars[&copy.var];
        let src = layout::to_torch(copy.role, &t.values, &t.shape, m.flatten, &t.path)?;
        tch::no_grad(|| -> Result<()> {
            let src = src.to_device(dest.device()).to_kind(dest.kind());
            dest.shallow_clone().f_copy_(&src)?;
            Ok(())
        })?;
        tensors += 1;
        values += t.values.len();
    }
    let normalization = weights
        .layers_of(KerasLayerKind::Normalization)
        .next()
        .and_then(|l| {
            Some(KerasNormalization {
                mean: l.tensor(KerasRole::NormalizationMean)?.values.clone(),
                variance: l.tensor(KerasRole::NormalizationVariance)?.values.clone(),
            })
        });
    Ok(KerasImport {
        format: weights.format.clone(),
        by_name: plan.by_name,
        by_order: plan.by_order,
        tensors,
        values,
        polarity_flipped: false,
        normalization,
    })
}

/// Negates the weight and bias of the final dense layer of a one-unit binary head, turning
/// a logit of "real" into a logit of "fake" (or back). Returns whether there was such a
/// head.
///
/// # Errors
/// [`Error::Torch`] when the in-place negation fails.
pub fn flip_final_logit(model: &dyn Model) -> Result<bool> {
    let Some(last) = model.head().and_then(|h| h.layers.last()) else {
        return Ok(false);
    };
    if last.config().units != 1 {
        return Ok(false);
    }
    tch::no_grad(|| -> Result<()> {
        let _ = last.weight.shallow_clone().f_neg_()?;
        let _ = last.bias.shallow_clone().f_neg_()?;
        Ok(())
    })?;
    Ok(true)
}

/// A model layer: the variables under one path prefix.
struct ModelLayer {
    /// Path prefix (`block1a_dwconv`, maybe nested: `head.dense`).
    path: String,
    /// Last component of the path: the Keras layer name it mirrors.
    name: String,
    kind: Option<KerasLayerKind>,
    vars: BTreeMap<String, Tensor>,
    /// The `[C, H, W]` map a Flatten feeds into this (dense) layer.
    flatten: Option<[i64; 3]>,
}

/// Model layers fed by a Flatten, by path, with the flattened shape: the first layer of a
/// flattening head.
fn flatten_inputs(model: &dyn Model) -> HashMap<String, [i64; 3]> {
    let mut out = HashMap::new();
    if let Some(head) = model.head() {
        if let (Some(chw), Some(first)) = (head.flatten_shape(), head.layers.first()) {
            out.insert(first.path().to_string(), chw);
        }
    }
    out
}

/// The model's layers in creation order, with their class and Flatten input.
fn model_layers(vs: &VarStore, flatten_at: &HashMap<String, [i64; 3]>) -> Vec<ModelLayer> {
    df_layers::util::variables_by_layer(vs)
        .into_iter()
        .map(|(path, vars)| {
            let name = path.rsplit('.').next().unwrap_or(&path).to_string();
            ModelLayer {
                kind: KerasLayerKind::of_variables(&vars),
                flatten: flatten_at.get(&path).copied(),
                name,
                path,
                vars,
            }
        })
        .collect()
}

/// One tensor copy of an import plan.
struct TensorCopy {
    file_layer: usize,
    tensor: usize,
    model_layer: usize,
    var: String,
    role: KerasRole,
}

#[derive(Default)]
struct Plan {
    copies: Vec<TensorCopy>,
    by_name: usize,
    by_order: Vec<(String, String)>,
    missing: Vec<String>,
    unexpected: Vec<String>,
    mis_shaped: Vec<String>,
    notes: Vec<String>,
}

impl Plan {
    fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mis_shaped.is_empty()
    }
}

/// How one file layer's tensors go into one model layer.
#[derive(Default)]
struct Assignment {
    copies: Vec<(usize, String, KerasRole)>,
    missing: Vec<String>,
    unexpected: Vec<String>,
    mis_shaped: Vec<String>,
}

impl Assignment {
    fn fits(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mis_shaped.is_empty()
    }
}

fn shape_text(shape: &[i64]) -> String {
    format!("{shape:?}")
}

fn assign(f: &KerasLayer, m: &ModelLayer) -> Assignment {
    let mut a = Assignment::default();
    let mut used: Vec<&str> = Vec::new();
    for (i, t) in f.tensors.iter().enumerate() {
        let mut role = t.role;
        // A three-variable Keras 3 BatchNormalization was read as (beta, mean, var); a
        // model layer with a scale and no offset makes it (gamma, mean, var).
        if role == KerasRole::Beta
            && f.kind == KerasLayerKind::BatchNormalization
            && f.tensor(KerasRole::Gamma).is_none()
            && m.vars.contains_key("weight")
            && !m.vars.contains_key("bias")
        {
            role = KerasRole::Gamma;
        }
        // Keras 3's legacy writer calls a depthwise kernel `kernel`.
        if role == KerasRole::Kernel
            && t.shape.len() == 4
            && m.kind == Some(KerasLayerKind::DepthwiseConv2d)
        {
            role = KerasRole::DepthwiseKernel;
        }
        let Some(var) = m.kind.unwrap_or(f.kind).torch_name(role) else {
            a.unexpected.push(format!("`{}` ({role:?})", t.path));
            continue;
        };
        let Some(dest) = m.vars.get(var) else {
            a.unexpected.push(format!(
                "`{}` {} ({role:?}): model layer `{}` has no `{var}`",
                t.path,
                shape_text(&t.shape),
                m.path
            ));
            continue;
        };
        if used.contains(&var) {
            a.unexpected.push(format!(
                "`{}`: a second value for `{}.{var}`",
                t.path, m.path
            ));
            continue;
        }
        used.push(var);
        match layout::torch_shape(role, &t.shape, m.flatten, &t.path) {
            Ok(shape) if shape == dest.size() => a.copies.push((i, var.to_string(), role)),
            Ok(shape) => a.mis_shaped.push(format!(
                "`{}.{var}`: model {}, file `{}` {} (libtorch layout {})",
                m.path,
                shape_text(&dest.size()),
                t.path,
                shape_text(&t.shape),
                shape_text(&shape)
            )),
            Err(e) => a.mis_shaped.push(format!(
                "`{}.{var}`: model {}: {e}",
                m.path,
                shape_text(&dest.size())
            )),
        }
    }
    for (var, t) in &m.vars {
        if !used.contains(&var.as_str()) {
            a.missing
                .push(format!("`{}.{var}` {}", m.path, shape_text(&t.size())));
        }
    }
    a
}

fn is_auto(f: &KerasLayer) -> bool {
    !f.named || auto_name_parts(&f.name).is_some()
}

/// Pairs file layers with model layers and checks every tensor, without copying.
fn plan(weights: &KerasWeights, model: &[ModelLayer]) -> Plan {
    let file: Vec<(usize, &KerasLayer)> = weights
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.kind != KerasLayerKind::Normalization)
        .collect();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut file_taken: HashMap<usize, bool> = HashMap::new();
    let mut model_taken = vec![false; model.len()];
    let mut plan = Plan::default();

    // 1. Layers with names of their own, by name.
    for &(fi, f) in file.iter().filter(|(_, f)| !is_auto(f)) {
        let candidates: Vec<usize> = (0..model.len())
            .filter(|&mi| {
                !model_taken[mi] && (model[mi].name == f.name || model[mi].path == f.name)
            })
            .collect();
        if let [mi] = candidates[..] {
            pairs.push((fi, mi));
            model_taken[mi] = true;
            file_taken.insert(fi, true);
            plan.by_name += 1;
        } else if candidates.len() > 1 {
            plan.notes.push(format!(
                "file layer `{}` matches several model layers: {}",
                f.name,
                candidates
                    .iter()
                    .map(|&mi| format!("`{}`", model[mi].path))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }

    // 2. Auto-named layers, per class: by name when all of them fit, else in creation order.
    let mut kinds: Vec<KerasLayerKind> = file.iter().map(|(_, f)| f.kind).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let mut auto: Vec<(usize, &KerasLayer)> = file
            .iter()
            .filter(|(fi, f)| f.kind == kind && is_auto(f) && !file_taken.contains_key(fi))
            .copied()
            .collect();
        if auto.is_empty() {
            continue;
        }
        let by_name: Option<Vec<usize>> = auto
            .iter()
            .map(|(_, f)| {
                (0..model.len()).find(|&mi| {
                    !model_taken[mi]
                        && model[mi].kind == Some(kind)
                        && model[mi].name == f.name
                        && assign(f, &model[mi]).fits()
                })
            })
            .collect();
        if let Some(ms) = by_name {
            for (&(fi, _), mi) in auto.iter().zip(ms) {
                pairs.push((fi, mi));
                model_taken[mi] = true;
                file_taken.insert(fi, true);
                plan.by_name += 1;
            }
            continue;
        }
        // Keras' number is the creation order within the class; a Keras 3 path name's
        // number is the `model.layers` order.
        auto.sort_by_key(|(_, f)| {
            if f.named {
                auto_name_parts(&f.name).map_or(f.position, |(_, k)| k)
            } else {
                f.position
            }
        });
        let pool: Vec<usize> = (0..model.len())
            .filter(|&mi| !model_taken[mi] && model[mi].kind == Some(kind))
            .collect();
        if pool.len() != auto.len() {
            plan.notes.push(format!(
                "{} auto-named `{}` layers in the file ({}) cannot be paired in creation \
                 order with the {} unpaired ones of the model ({})",
                auto.len(),
                kind.keras_base_name(),
                list_names(auto.iter().map(|(_, f)| f.name.as_str())),
                pool.len(),
                list_names(pool.iter().map(|&mi| model[mi].path.as_str())),
            ));
            continue;
        }
        for (&(fi, f), mi) in auto.iter().zip(pool) {
            pairs.push((fi, mi));
            model_taken[mi] = true;
            file_taken.insert(fi, true);
            plan.by_order.push((f.name.clone(), model[mi].path.clone()));
        }
    }

    // 3. Check every pair; list what is left over.
    pairs.sort();
    for (fi, mi) in pairs {
        let a = assign(&weights.layers[fi], &model[mi]);
        if !a.fits() && plan.by_order.iter().any(|(_, m)| *m == model[mi].path) {
            plan.notes.push(format!(
                "file layer `{}` was paired in creation order with model layer `{}`",
                weights.layers[fi].name, model[mi].path
            ));
        }
        plan.missing.extend(a.missing);
        plan.unexpected.extend(a.unexpected);
        plan.mis_shaped.extend(a.mis_shaped);
        plan.copies
            .extend(a.copies.into_iter().map(|(tensor, var, role)| TensorCopy {
                file_layer: fi,
                tensor,
                model_layer: mi,
                var,
                role,
            }));
    }
    for &(fi, f) in &file {
        if !file_taken.contains_key(&fi) {
            for t in &f.tensors {
                plan.unexpected.push(format!(
                    "`{}` {} (layer `{}`: no model layer of that name)",
                    t.path,
                    shape_text(&t.shape),
                    f.name
                ));
            }
        }
    }
    for (mi, m) in model.iter().enumerate() {
        if !model_taken[mi] {
            for (var, t) in &m.vars {
                plan.missing
                    .push(format!("`{}.{var}` {}", m.path, shape_text(&t.size())));
            }
        }
    }
    plan
}

fn list_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let shown: Vec<String> = names.iter().take(8).map(|n| format!("`{n}`")).collect();
    if names.len() > 8 {
        format!("{} ...", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
