//! Reading Keras weight files (HDF5) into plain tensors, in pure Rust.
//!
//! Two layouts exist:
//!
//! - **Legacy** (Keras 1/2 `model.save_weights("x.h5")`, also inside full-model `.h5`
//!   saves under `model_weights`): the root attribute `layer_names` lists the layers in
//!   `model.layers` order; each layer group has an attribute `weight_names`
//!   (`conv2d_5/kernel:0` ...) naming its datasets, which live at
//!   `<layer>/<weight name>`. Weights of a nested model carry their own layer's name as the
//!   component before the last.
//! - **Keras 3** (`model.save_weights("x.weights.h5")`): `layers/<class>[_<k>]/vars/<i>`,
//!   where `<class>` is the layer's class in snake case and `<k>` counts the layers of that
//!   class in `model.layers` order; the variables are numbered in creation order (a
//!   `BatchNormalization` holds `gamma`, `beta`, `moving_mean`, `moving_variance`, fewer
//!   without scale or center). Keras 3.x since early 2025 also writes the layer's name as
//!   the attribute `name` of its `vars` group; nested models appear as
//!   `layers/functional/layers/...`.

use std::path::{Path, PathBuf};

use hdf5_reader::dataset::Dataset;
use hdf5_reader::group::Group;
use hdf5_reader::{Datatype, Hdf5File};

use crate::error::{Error, Result};
use crate::layout::KerasRole;

/// Which of the two Keras weight layouts a file uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KerasFormat {
    /// Keras 1/2 `save_weights` to `.h5` (root attribute `layer_names`).
    Legacy {
        /// The `keras_version` attribute, when present (`2.1.5` for the MesoNet authors').
        keras_version: Option<String>,
    },
    /// Keras 3 `.weights.h5` (`layers/<class>/vars/<i>`).
    Keras3 {
        /// Whether the file names its layers (`name` attributes); without names, layers are
        /// matched in the file's order, which needs the model's layers to be created in
        /// Keras' `model.layers` order.
        named: bool,
    },
}

/// The Keras layer classes this importer reads weights of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KerasLayerKind {
    /// `Conv2D`.
    Conv2d,
    /// `DepthwiseConv2D`.
    DepthwiseConv2d,
    /// `SeparableConv2D` (depthwise then pointwise kernel, in one layer).
    SeparableConv2d,
    /// `Dense`.
    Dense,
    /// `BatchNormalization`.
    BatchNormalization,
    /// `Normalization` (EfficientNet's input normalisation: statistics, no model variable).
    Normalization,
}

impl KerasLayerKind {
    /// The Keras 3 path name of the class (`conv2d`, `batch_normalization` ...), which is
    /// also the base of Keras' auto-generated layer names.
    pub fn keras_base_name(self) -> &'static str {
        match self {
            Self::Conv2d => "conv2d",
            Self::DepthwiseConv2d => "depthwise_conv2d",
            Self::SeparableConv2d => "separable_conv2d",
            Self::Dense => "dense",
            Self::BatchNormalization => "batch_normalization",
            Self::Normalization => "normalization",
        }
    }

    /// The Keras class name (`Conv2D`, `DepthwiseConv2D`, `SeparableConv2D`, `Dense`,
    /// `BatchNormalization`, `Normalization`).
    pub fn class_name(self) -> &'static str {
        match self {
            Self::Conv2d => "Conv2D",
            Self::DepthwiseConv2d => "DepthwiseConv2D",
            Self::SeparableConv2d => "SeparableConv2D",
            Self::Dense => "Dense",
            Self::BatchNormalization => "BatchNormalization",
            Self::Normalization => "Normalization",
        }
    }

    /// The class of one of our layers, read from its variables (by last path component):
    /// `running_mean` → batch norm, `depthwise_weight` and `pointwise_weight` → separable
    /// convolution, a 4-D `weight` → convolution, depthwise when it is `[C, 1, kh, kw]`
    /// with `C > 1` (no model here has an ordinary convolution over a single input
    /// channel), a 2-D `weight` → dense.
    pub fn of_variables(vars: &std::collections::BTreeMap<String, tch::Tensor>) -> Option<Self> {
        if vars.contains_key("running_mean") {
            return Some(Self::BatchNormalization);
        }
        if vars.contains_key("depthwise_weight") && vars.contains_key("pointwise_weight") {
            return Some(Self::SeparableConv2d);
        }
        let w = vars.get("weight")?.size();
        match w.as_slice() {
            [o, 1, _, _] if *o > 1 => Some(Self::DepthwiseConv2d),
            [_, _, _, _] => Some(Self::Conv2d),
            [_, _] => Some(Self::Dense),
            _ => None,
        }
    }

    /// The libtorch variable that holds a tensor of `role` in a layer of this class:
    /// [`KerasRole::torch_name`], except a `SeparableConv2D`'s depthwise kernel, which is
    /// `depthwise_weight` beside its `pointwise_weight` (df-layers' `SeparableConv2d`).
    pub fn torch_name(self, role: KerasRole) -> Option<&'static str> {
        match (self, role) {
            (Self::SeparableConv2d, KerasRole::DepthwiseKernel) => Some("depthwise_weight"),
            _ => role.torch_name(),
        }
    }

    fn from_keras_base_name(base: &str) -> Option<Self> {
        Some(match base {
            "conv2d" => Self::Conv2d,
            "depthwise_conv2d" => Self::DepthwiseConv2d,
            "separable_conv2d" => Self::SeparableConv2d,
            "dense" => Self::Dense,
            "batch_normalization" => Self::BatchNormalization,
            "normalization" => Self::Normalization,
            _ => return None,
        })
    }
}

/// One tensor of a Keras layer, values in Keras' layout and row-major order.
#[derive(Debug, Clone)]
pub struct KerasTensor {
    /// Its path in the file (`conv2d_5/conv2d_5/kernel:0`, `layers/conv2d/vars/0`).
    pub path: String,
    /// What it is.
    pub role: KerasRole,
    /// Keras shape.
    pub shape: Vec<i64>,
    /// The values, converted to `f32`.
    pub values: Vec<f32>,
}

/// A Keras layer that holds weights.
#[derive(Debug, Clone)]
pub struct KerasLayer {
    /// The Keras layer name (`conv2d_5`, `block1a_dwconv`); for a Keras 3 file without
    /// names, its path name (`conv2d_3`).
    pub name: String,
    /// Whether `name` is the layer's own name (false: a Keras 3 path name).
    pub named: bool,
    /// Its class.
    pub kind: KerasLayerKind,
    /// Position in the file: `model.layers` order for legacy files, the per-class counter
    /// for Keras 3 files.
    pub position: usize,
    /// Its tensors, in the file's order.
    pub tensors: Vec<KerasTensor>,
}

impl KerasLayer {
    /// The tensor of `role`, if any.
    pub fn tensor(&self, role: KerasRole) -> Option<&KerasTensor> {
        self.tensors.iter().find(|t| t.role == role)
    }
}

/// The weights of a Keras HDF5 file, read fully into memory.
#[derive(Debug, Clone)]
pub struct KerasWeights {
    /// The file.
    pub path: PathBuf,
    /// Its layout.
    pub format: KerasFormat,
    /// The layers holding weights, in the file's order.
    pub layers: Vec<KerasLayer>,
}

impl KerasWeights {
    /// Reads a legacy `.h5` or Keras 3 `.weights.h5` file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read or is not a regular file (a FIFO, a
    /// device: refused unread), [`Error::Hdf5`] when it is not HDF5 or is
    /// truncated or corrupt (naming the object being read), [`Error::NotKerasWeights`] when
    /// it is HDF5 without Keras' structure or holds a layer class or datatype this
    /// importer does not know (naming it).
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        // A regular file only: a FIFO or a link to `/dev/zero` is refused unread.
        let bytes = df_io::read_regular(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_bytes(path, bytes)
    }

    /// Reads a Keras weights file held in memory; `path` names it in errors (see
    /// [`KerasWeights::read`]).
    ///
    /// # Errors
    /// As [`KerasWeights::read`], without [`Error::Io`].
    pub fn from_bytes(path: impl AsRef<Path>, bytes: Vec<u8>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = Hdf5File::from_vec(bytes).map_err(|e| hdf5_error(&path, "", e))?;
        let reader = Reader { path: &path };
        let root = file.root_group().map_err(|e| hdf5_error(&path, "/", e))?;
        if has_attribute(&root, "layer_names") {
            return reader.legacy(&root);
        }
        let (groups, _) = reader.member_names(&root, "/")?;
        if groups.iter().any(|g| g == "model_weights") {
            let weights = reader.group(&root, "model_weights", "/")?;
            if has_attribute(&weights, "layer_names") {
                return reader.legacy(&weights);
            }
        }
        if groups.iter().any(|g| g == "layers") {
            return reader.keras3(&root);
        }
        Err(Error::NotKerasWeights {
            path,
            reason: "no `layer_names` attribute (Keras 2 `.h5`) and no `layers` group \
                     (Keras 3 `.weights.h5`) at the root"
                .into(),
        })
    }

    /// The layers of `kind`, in file order.
    pub fn layers_of(&self, kind: KerasLayerKind) -> impl Iterator<Item = &KerasLayer> {
        self.layers.iter().filter(move |l| l.kind == kind)
    }

    /// Number of values over every tensor except `Normalization` statistics.
    pub fn value_count(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| l.kind != KerasLayerKind::Normalization)
            .flat_map(|l| &l.tensors)
            .map(|t| t.values.len())
            .sum()
    }
}

/// `Some((base, k))` when `name` has the form Keras gives auto-named layers,
/// `base` or `base_k` with `base` a class this importer knows (`conv2d_5` →
/// `("conv2d", 5)`, `batch_normalization` → `("batch_normalization", 0)`).
pub fn auto_name_parts(name: &str) -> Option<(KerasLayerKind, usize)> {
    if let Some(kind) = KerasLayerKind::from_keras_base_name(name) {
        return Some((kind, 0));
    }
    let (base, k) = name.rsplit_once('_')?;
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = KerasLayerKind::from_keras_base_name(base)?;
    Some((kind, k.parse().ok()?))
}

fn hdf5_error(path: &Path, object: &str, e: hdf5_reader::error::Error) -> Error {
    let reason = match e {
        hdf5_reader::error::Error::InvalidMagic => {
            "no HDF5 signature (not an HDF5 file)".to_string()
        }
        other if object.is_empty() => other.to_string(),
        other => format!("reading `{object}`: {other}"),
    };
    Error::Hdf5 {
        path: path.to_path_buf(),
        reason,
    }
}

fn has_attribute(group: &Group, name: &str) -> bool {
    group.attribute(name).is_ok()
}

struct Reader<'a> {
    path: &'a Path,
}

impl Reader<'_> {
    fn err(&self, object: &str, e: hdf5_reader::error::Error) -> Error {
        hdf5_error(self.path, object, e)
    }

    fn not_keras(&self, reason: String) -> Error {
        Error::NotKerasWeights {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    fn member_names(&self, group: &Group, at: &str) -> Result<(Vec<String>, Vec<String>)> {
        group.member_names().map_err(|e| self.err(at, e))
    }

    fn group(&self, parent: &Group, name: &str, at: &str) -> Result<Group> {
        parent.group(name).map_err(|e| self.err(&join(at, name), e))
    }

    /// Strings of an attribute; an empty attribute (Keras writes `weight_names` of a
    /// weightless layer as an empty float array) gives an empty list.
    fn strings(&self, group: &Group, attr: &str, at: &str) -> Result<Vec<String>> {
        let object = format!("{at}@{attr}");
        let a = group.attribute(attr).map_err(|e| self.err(&object, e))?;
        if a.num_elements().map_err(|e| self.err(&object, e))? == 0 {
            return Ok(Vec::new());
        }
        a.read_strings().map_err(|e| self.err(&object, e))
    }

    fn legacy(&self, root: &Group) -> Result<KerasWeights> {
        let keras_version = root
            .attribute("keras_version")
            .ok()
            .and_then(|a| a.read_string().ok());
        let layer_names = self.strings(root, "layer_names", "/")?;
        // Owners in first-seen order, each with its tensors.
        let mut owners: Vec<(String, Vec<KerasTensor>)> = Vec::new();
        for layer_name in &layer_names {
            let group = self.group(root, layer_name, "/")?;
            let weight_names = self.strings(&group, "weight_names", layer_name)?;
            for weight_name in weight_names {
                let at = format!("{layer_name}/{weight_name}");
                let role = KerasRole::from_weight_name(&weight_name).ok_or_else(|| {
                    self.not_keras(format!(
                        "weight `{at}`: unknown weight name (this importer reads kernel, \
                         depthwise_kernel, pointwise_kernel, bias, gamma, beta, moving_mean, \
                         moving_variance)"
                    ))
                })?;
                let parts: Vec<&str> = weight_name.split('/').collect();
                let owner = if parts.len() >= 2 {
                    parts[parts.len() - 2].to_string()
                } else {
                    layer_name.clone()
                };
                let dataset = self.dataset_at(&group, &parts, &at)?;
                let tensor = self.tensor(&dataset, role, at)?;
                match owners.iter_mut().find(|(name, _)| *name == owner) {
                    Some((_, tensors)) => tensors.push(tensor),
                    None => owners.push((owner, vec![tensor])),
                }
            }
        }
        let mut layers = Vec::with_capacity(owners.len());
        for (position, (name, tensors)) in owners.into_iter().enumerate() {
            let kind = self.kind_from_roles(&name, &tensors)?;
            layers.push(KerasLayer {
                name,
                named: true,
                kind,
                position,
                tensors,
            });
        }
        Ok(KerasWeights {
            path: self.path.to_path_buf(),
            format: KerasFormat::Legacy { keras_version },
            layers,
        })
    }

    fn dataset_at(&self, group: &Group, parts: &[&str], at: &str) -> Result<Dataset> {
        let (last, dirs) = parts
            .split_last()
            .ok_or_else(|| self.not_keras(format!("empty weight name in `{at}`")))?;
        let mut current = group.clone();
        for dir in dirs {
            current = current.group(dir).map_err(|e| self.err(at, e))?;
        }
        current.dataset(last).map_err(|e| self.err(at, e))
    }

    fn kind_from_roles(&self, layer: &str, tensors: &[KerasTensor]) -> Result<KerasLayerKind> {
        let has = |role| tensors.iter().any(|t| t.role == role);
        let kernel_dims = tensors
            .iter()
            .find(|t| t.role == KerasRole::Kernel)
            .map(|t| t.shape.len());
        // Keras 3's legacy writer names a DepthwiseConv2D kernel `kernel`, like a
        // Conv2D's: an auto-generated name still tells them apart (and the matcher treats
        // a 4-D `kernel` paired with a depthwise model layer as a depthwise kernel).
        let auto_depthwise = matches!(
            auto_name_parts(layer),
            Some((KerasLayerKind::DepthwiseConv2d, _))
        );
        Ok(if has(KerasRole::PointwiseKernel) {
            KerasLayerKind::SeparableConv2d
        } else if has(KerasRole::DepthwiseKernel) || (auto_depthwise && kernel_dims == Some(4)) {
            KerasLayerKind::DepthwiseConv2d
        } else if has(KerasRole::MovingMean) {
            KerasLayerKind::BatchNormalization
        } else if has(KerasRole::NormalizationMean) {
            KerasLayerKind::Normalization
        } else {
            match kernel_dims {
                Some(4) => KerasLayerKind::Conv2d,
                Some(2) => KerasLayerKind::Dense,
                _ => {
                    return Err(self.not_keras(format!(
                        "layer `{layer}`: its weights ({}) are not those of a Conv2D, \
                         DepthwiseConv2D, SeparableConv2D, Dense or BatchNormalization layer",
                        tensors
                            .iter()
                            .map(|t| format!("{} {:?}", t.path, t.shape))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        })
    }

    fn keras3(&self, root: &Group) -> Result<KerasWeights> {
        let mut layers = Vec::new();
        let mut named = true;
        let layers_group = self.group(root, "layers", "/")?;
        self.keras3_container(&layers_group, "layers", &mut layers, &mut named)?;
        Ok(KerasWeights {
            path: self.path.to_path_buf(),
            format: KerasFormat::Keras3 { named },
            layers,
        })
    }

    fn keras3_container(
        &self,
        container: &Group,
        at: &str,
        layers: &mut Vec<KerasLayer>,
        named: &mut bool,
    ) -> Result<()> {
        let (mut children, _) = self.member_names(container, at)?;
        // Keras numbers each class's layers in `model.layers` order: `conv2d`, `conv2d_1`,
        // ..., `conv2d_10`; HDF5 lists them alphabetically.
        children.sort_by_key(|c| path_sort_key(c));
        for child in children {
            let child_at = join(at, &child);
            let group = self.group(container, &child, at)?;
            let (sub, _) = self.member_names(&group, &child_at)?;
            if sub.iter().any(|s| s == "layers") {
                let nested = self.group(&group, "layers", &child_at)?;
                self.keras3_container(&nested, &join(&child_at, "layers"), layers, named)?;
            }
            if !sub.iter().any(|s| s == "vars") {
                continue;
            }
            let vars_at = join(&child_at, "vars");
            let vars = self.group(&group, "vars", &child_at)?;
            let (_, mut datasets) = self.member_names(&vars, &vars_at)?;
            if datasets.is_empty() {
                continue;
            }
            datasets.sort_by_key(|d| d.parse::<usize>().unwrap_or(usize::MAX));
            let (base, position) = split_path_name(&child);
            let kind = KerasLayerKind::from_keras_base_name(base).ok_or_else(|| {
                self.not_keras(format!(
                    "`{child_at}` holds {} variables of a layer class this importer does not \
                     know (it reads conv2d, depthwise_conv2d, separable_conv2d, dense, \
                     batch_normalization, normalization)",
                    datasets.len()
                ))
            })?;
            let roles = self.keras3_roles(kind, datasets.len(), &vars_at)?;
            let own_name = match vars.attribute("name") {
                Ok(a) => Some(
                    a.read_string()
                        .map_err(|e| self.err(&format!("{vars_at}@name"), e))?,
                ),
                Err(_) => None,
            };
            *named &= own_name.is_some();
            let mut tensors = Vec::with_capacity(datasets.len());
            for (d, role) in datasets.iter().zip(roles) {
                let ds_at = join(&vars_at, d);
                let dataset = vars.dataset(d).map_err(|e| self.err(&ds_at, e))?;
                tensors.push(self.tensor(&dataset, role, ds_at)?);
            }
            layers.push(KerasLayer {
                named: own_name.is_some(),
                name: own_name.unwrap_or(child),
                kind,
                position,
                tensors,
            });
        }
        Ok(())
    }

    /// Roles of a Keras 3 layer's `vars/0..n`. A `BatchNormalization` with three variables
    /// is read as `beta, moving_mean, moving_variance` (`scale=False`, as in
    /// InceptionResNetV2); the matcher turns `beta` into `gamma` when the model's layer
    /// has a scale and no offset.
    fn keras3_roles(&self, kind: KerasLayerKind, n: usize, at: &str) -> Result<Vec<KerasRole>> {
        use KerasRole::*;
        let roles: &[KerasRole] = match (kind, n) {
            (KerasLayerKind::Conv2d | KerasLayerKind::Dense, 1) => &[Kernel],
            (KerasLayerKind::Conv2d | KerasLayerKind::Dense, 2) => &[Kernel, Bias],
            (KerasLayerKind::DepthwiseConv2d, 1) => &[DepthwiseKernel],
            (KerasLayerKind::DepthwiseConv2d, 2) => &[DepthwiseKernel, Bias],
            (KerasLayerKind::SeparableConv2d, 2) => &[DepthwiseKernel, PointwiseKernel],
            (KerasLayerKind::SeparableConv2d, 3) => &[DepthwiseKernel, PointwiseKernel, Bias],
            (KerasLayerKind::BatchNormalization, 4) => &[Gamma, Beta, MovingMean, MovingVariance],
            (KerasLayerKind::BatchNormalization, 3) => &[Beta, MovingMean, MovingVariance],
            (KerasLayerKind::BatchNormalization, 2) => &[MovingMean, MovingVariance],
            (KerasLayerKind::Normalization, 3) => {
                &[NormalizationMean, NormalizationVariance, NormalizationCount]
            }
            _ => {
                return Err(self.not_keras(format!(
                    "`{at}`: a {} layer with {n} variables is not supported",
                    kind.keras_base_name()
                )))
            }
        };
        Ok(roles.to_vec())
    }

    fn tensor(&self, dataset: &Dataset, role: KerasRole, path: String) -> Result<KerasTensor> {
        let shape: Vec<i64> = dataset.shape().iter().map(|&d| d as i64).collect();
        let values = self.values(dataset, &path)?;
        let numel: i64 = shape.iter().product();
        if values.len() as i64 != numel {
            return Err(Error::Hdf5 {
                path: self.path.to_path_buf(),
                reason: format!(
                    "`{path}`: shape {shape:?} but {} values were read",
                    values.len()
                ),
            });
        }
        Ok(KerasTensor {
            path,
            role,
            shape,
            values,
        })
    }

    fn values(&self, dataset: &Dataset, at: &str) -> Result<Vec<f32>> {
        self.check_declared_size(dataset, at)?;
        let map = |e| self.err(at, e);
        match dataset.dtype() {
            Datatype::FloatingPoint { size: 4, .. } => Ok(dataset
                .read_array::<f32>()
                .map_err(map)?
                .into_iter()
                .collect()),
            Datatype::FloatingPoint { size: 8, .. } => Ok(dataset
                .read_array::<f64>()
                .map_err(map)?
                .into_iter()
                .map(|v| v as f32)
                .collect()),
            Datatype::FixedPoint { size: 8, .. } => Ok(dataset
                .read_array::<i64>()
                .map_err(map)?
                .into_iter()
                .map(|v| v as f32)
                .collect()),
            Datatype::FixedPoint { size: 4, .. } => Ok(dataset
                .read_array::<i32>()
                .map_err(map)?
                .into_iter()
                .map(|v| v as f32)
                .collect()),
            other => Err(self.not_keras(format!(
                "`{at}`: datatype {other:?} is not supported (float32, float64, int32, int64)"
            ))),
        }
    }
}

impl Reader<'_> {
    /// Refuses a dataset whose declared shape cannot be real weights before reading it:
    /// more than a thousand times the file's own size (an unallocated dataset with a fill
    /// value: reading it would materialise gigabytes), or more than the memory available
    /// (read as its type and converted to f32).
    fn check_declared_size(&self, dataset: &Dataset, at: &str) -> Result<()> {
        let shape: Vec<i64> = dataset
            .shape()
            .iter()
            .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
            .collect();
        let declared = df_io::memory::bytes_of(shape.iter().copied(), 4);
        let file_size = std::fs::metadata(self.path).map(|m| m.len()).unwrap_or(0);
        if declared > file_size.saturating_mul(1000) {
            return Err(self.not_keras(format!(
                "`{at}` declares shape {shape:?} ({}) in a file of {}: not weights this file \
                 holds (an unallocated dataset?)",
                df_io::memory::human(declared),
                df_io::memory::human(file_size)
            )));
        }
        df_io::memory::ensure_fits(declared.saturating_mul(3), || {
            format!("reading `{at}` (shape {shape:?})")
        })
        .map_err(|e| self.not_keras(e.to_string()))
    }
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() || at == "/" {
        name.to_string()
    } else {
        format!("{at}/{name}")
    }
}

/// `conv2d_12` → `("conv2d", 12)`, `conv2d` → `("conv2d", 0)`.
fn split_path_name(name: &str) -> (&str, usize) {
    if let Some((base, k)) = name.rsplit_once('_') {
        if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(k) = k.parse() {
                return (base, k);
            }
        }
    }
    (name, 0)
}

fn path_sort_key(name: &str) -> (String, usize) {
    let (base, k) = split_path_name(name);
    (base.to_string(), k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_names() {
        assert_eq!(
            auto_name_parts("conv2d_5"),
            Some((KerasLayerKind::Conv2d, 5))
        );
        assert_eq!(auto_name_parts("dense"), Some((KerasLayerKind::Dense, 0)));
        assert_eq!(
            auto_name_parts("batch_normalization_12"),
            Some((KerasLayerKind::BatchNormalization, 12))
        );
        assert_eq!(
            auto_name_parts("separable_conv2d_3"),
            Some((KerasLayerKind::SeparableConv2d, 3))
        );
        assert_eq!(auto_name_parts("block1a_dwconv"), None);
        assert_eq!(auto_name_parts("conv2d_block"), None);
        assert_eq!(auto_name_parts("fc1"), None);
    }

    #[test]
    fn path_names_sort_numerically() {
        let mut v = vec!["conv2d_10", "conv2d", "conv2d_2", "batch_normalization_1"];
        v.sort_by_key(|c| path_sort_key(c));
        assert_eq!(
            v,
            ["batch_normalization_1", "conv2d", "conv2d_2", "conv2d_10"]
        );
    }
}
