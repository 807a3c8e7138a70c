//! What the trainer reads batches from: the [`BatchSource`] trait, implemented for
//! `df-data`'s loader and for in-memory tensors ([`TensorBatches`]).

use tch::{Kind, Tensor};

use crate::error::{config, Error, Result};

/// One batch: preprocessed images and their labels.
#[derive(Debug)]
pub struct Batch {
    /// Model inputs, `[N, 3, H, W]` float, already preprocessed for the model.
    pub inputs: Tensor,
    /// Labels `[N]`: 1 = fake, 0 = real (any numeric kind).
    pub labels: Tensor,
    /// Per-sample loss weights `[N]` (class balancing), or `None` for equal weights.
    /// Used in training only; validation weighs every sample alike (as Keras does).
    pub weights: Option<Tensor>,
    /// The file of each sample, when the source reads files (empty for in-memory
    /// tensors): what errors about a sample name.
    pub paths: Vec<std::path::PathBuf>,
}

/// A source of batches, one pass per epoch.
///
/// The order of an epoch must depend only on the source's own seed and the epoch index
/// (not on how many epochs were read before): that is what lets a resumed run see the
/// same batches as an uninterrupted one.
pub trait BatchSource {
    /// Number of samples in one epoch.
    fn num_samples(&self) -> usize;
    /// Number of batches in one epoch.
    fn num_batches(&self) -> usize;
    /// The batches of epoch `epoch` (from 0).
    ///
    /// # Errors
    /// Whatever the source reports (a loader that cannot start, a bad batch).
    fn epoch_batches(&self, epoch: usize) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>>;
}

/// SplitMix64: the seed expander behind [`epoch_seed`] and the shuffles here.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of epoch `epoch` of a run seeded with `seed`: a pure function of both, so
/// epoch `k` draws the same random numbers (dropout masks, shuffles, augmentation)
/// whether the run got there directly or was resumed.
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    splitmix64(seed ^ splitmix64(epoch as u64 + 1))
}

/// A permutation of `0..n` drawn from `seed` (Fisher–Yates over SplitMix64).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        state = splitmix64(state);
        let j = (state % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    idx
}

/// Batches of in-memory tensors, reshuffled every epoch from `(seed, epoch)`.
#[derive(Debug)]
pub struct TensorBatches {
    inputs: Tensor,
    labels: Tensor,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
}

impl TensorBatches {
    /// Batches of `batch_size` rows of `inputs` (`[N, ...]`) and `labels` (`[N]`), in order.
    ///
    /// # Errors
    /// A zero batch size, or inputs and labels of different lengths.
    pub fn new(inputs: Tensor, labels: Tensor, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(config("batch_size", "must be > 0"));
        }
        let n = inputs.size().first().copied().unwrap_or(0);
        if labels.size() != [n] {
            return Err(Error::Shape {
                what: "labels".into(),
                expected: format!("[{n}] (one per input row)"),
                got: labels.size(),
            });
        }
        Ok(Self {
            inputs,
            labels: labels.to_kind(Kind::Float),
            batch_size,
            shuffle: false,
            seed: 0,
            drop_last: false,
        })
    }
    /// Shuffles every epoch with a permutation drawn from `epoch_seed(seed, epoch)`.
    pub fn shuffled(mut self, seed: u64) -> Self {
        self.shuffle = true;
        self.seed = seed;
        self
    }
    /// Drops the last batch when it is smaller than the batch size.
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }
}

impl BatchSource for TensorBatches {
    fn num_samples(&self) -> usize {
        let n = self.labels.size()[0] as usize;
        if self.drop_last {
            n / self.batch_size * self.batch_size
        } else {
            n
        }
    }
    fn num_batches(&self) -> usize {
        let n = self.labels.size()[0] as usize;
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }
    fn epoch_batches(&self, epoch: usize) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        let n = self.labels.size()[0] as usize;
        let order: Vec<i64> = if self.shuffle {
            permutation(n, epoch_seed(self.seed, epoch))
                .into_iter()
                .map(|i| i as i64)
                .collect()
        } else {
            (0..n as i64).collect()
        };
        let bs = self.batch_size;
        let batches = self.num_batches();
        Ok(Box::new((0..batches).map(move |b| {
            let end = ((b + 1) * bs).min(n);
            let idx = Tensor::from_slice(&order[b * bs..end]);
            Ok(Batch {
                inputs: self.inputs.index_select(0, &idx),
                labels: self.labels.index_select(0, &idx),
                weights: None,
                paths: Vec::new(),
            })
        })))
    }
}

/// `df-data`'s loader: epoch `k` is `loader.epoch(k)`, whose order and augmentation are
/// keyed by the loader's seed and `k` only; class weights
/// ([`df_data::Balance::ClassWeights`]) become the batch's loss weights.
impl BatchSource for df_data::Loader {
    fn num_samples(&self) -> usize {
        let n = self.samples_per_epoch();
        let b = self.config().batch_size.max(1);
        if self.config().drop_last {
            n / b * b
        } else {
            n
        }
    }
    fn num_batches(&self) -> usize {
        self.len()
    }
    fn epoch_batches(&self, epoch: usize) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        Ok(Box::new(self.epoch(epoch as u64).map(|b| {
            let b = b?;
            Ok(Batch {
                inputs: b.images,
                labels: b.labels,
                weights: b.weights,
                paths: b.paths,
            })
        })))
    }
}

/// Refuses an input size whose batches would not fit in memory, before any is decoded:
/// per image the decoded RGB bytes, the `f32` input and its memory-format copy (27 bytes a
/// pixel), times `batch`. The model's activations come on top, so this is a lower bound
/// that catches the impossible (`--input-size 100000`) rather than the tight.
///
/// # Errors
/// [`crate::Error::Config`] (`input_size`) saying how much the batch would need.
pub fn check_input_memory(spec: &df_models::InputSpec, batch: usize) -> crate::Result<()> {
    let batch = i64::try_from(batch).unwrap_or(i64::MAX);
    let needed = df_io::memory::bytes_of([batch, spec.height, spec.width], 27);
    df_io::memory::ensure_fits(needed, || {
        format!(
            "a batch of {batch} images of {}×{}",
            spec.height, spec.width
        )
    })
    .map_err(|e| crate::error::config("input_size", e.to_string()))
}

/// The `df-data` transform that produces a model's input: its size, and its
/// preprocessing `(pixel·scale − mean) / std` in its channel order, with `resize` as the
/// resize filter (Keras' `flow_from_directory` uses nearest, the MesoNet default).
///
/// ```
/// # mod deepfake { pub use df_data::{self as data, image}; pub use df_models as models; pub mod train { pub use df_train::*; } }
/// use deepfake::data::{rgb_to_tensor, ResizeFilter, Transform};
/// use deepfake::models::{self, BuildOptions};
/// use deepfake::train::transform_for;
/// use tch::{nn::VarStore, Device};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vs = VarStore::new(Device::Cpu);
/// let model = models::build("meso4", &vs.root(), &BuildOptions::default())?;
/// let transform: Transform = transform_for(&model.input_spec(), ResizeFilter::Bilinear);
/// assert_eq!((transform.width, transform.height), (256, 256));
/// let picture = deepfake::image::RgbImage::new(320, 240); // any size: resized to the model's
/// let input = rgb_to_tensor(&picture, &transform)?;
/// assert_eq!(input.size(), [1, 3, 256, 256]);
/// # Ok(()) }
/// ```
pub fn transform_for(
    spec: &df_models::InputSpec,
    resize: df_data::ResizeFilter,
) -> df_data::Transform {
    let p = &spec.preprocessing;
    let normalize = if p.std.iter().all(|&s| s == 1.0) {
        if p.mean.iter().all(|&m| m == 0.0) {
            df_data::Normalize::None
        } else {
            df_data::Normalize::Offset {
                offset: p.mean.map(|m| -m as f32),
            }
        }
    } else {
        df_data::Normalize::MeanStd {
            mean: p.mean.map(|m| m as f32),
            std: p.std.map(|s| s as f32),
        }
    };
    df_data::Transform {
        height: spec.height.max(0) as u32,
        width: spec.width.max(0) as u32,
        resize,
        scale: p.scale as f32,
        normalize,
        channel_order: match p.channel_order {
            df_models::ChannelOrder::Rgb => df_data::ChannelOrder::Rgb,
            df_models::ChannelOrder::Bgr => df_data::ChannelOrder::Bgr,
        },
        center_crop: None,
    }
}

/// df-data's resize filter as the name checkpoints record.
pub fn resize_method(filter: df_data::ResizeFilter) -> df_models::ResizeMethod {
    match filter {
        df_data::ResizeFilter::Nearest => df_models::ResizeMethod::Nearest,
        df_data::ResizeFilter::Bilinear => df_models::ResizeMethod::Bilinear,
        df_data::ResizeFilter::Area => df_models::ResizeMethod::Area,
    }
}

/// The df-data resize filter a checkpoint's [`df_models::ResizeMethod`] names.
pub fn resize_filter(method: df_models::ResizeMethod) -> df_data::ResizeFilter {
    match method {
        df_models::ResizeMethod::Nearest => df_data::ResizeFilter::Nearest,
        df_models::ResizeMethod::Bilinear => df_data::ResizeFilter::Bilinear,
        df_models::ResizeMethod::Area => df_data::ResizeFilter::Area,
    }
}

/// What a transform does to bring an image to the input size (its resize filter and centre
/// crop), as checkpoints record it.
pub fn preparation_of(transform: &df_data::Transform) -> df_models::ImagePreparation {
    df_models::ImagePreparation {
        resize: resize_method(transform.resize),
        center_crop: transform.center_crop,
        faces: None,
    }
}

/// The file the `prepare_faces` example writes in a folder of face crops.
pub const FACE_MANIFEST: &str = "prepare-faces.json";

/// How the face crops in `dir` were made, from its `prepare-faces.json` (the
/// `prepare_faces` example's manifest); `None` when the folder has none.
///
/// # Errors
/// [`Error::Config`] naming the file when it is there but unreadable or not such a
/// manifest.
pub fn face_crops_of(dir: &std::path::Path) -> Result<Option<df_models::FaceCropRecord>> {
    let path = dir.join(FACE_MANIFEST);
    // A regular file only: a FIFO at that name would block the read.
    let text = match df_io::read_regular_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(config(path.display().to_string(), e.to_string())),
    };
    let bad = |why: String| config(path.display().to_string(), why);
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let crop = &manifest["settings"]["crop"];
    let record = df_models::FaceCropRecord {
        size: crop["size"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| bad("settings.crop.size is missing".into()))?,
        margin: crop["margin"]
            .as_f64()
            .ok_or_else(|| bad("settings.crop.margin is missing".into()))? as f32,
        square: crop["square"]
            .as_bool()
            .ok_or_else(|| bad("settings.crop.square is missing".into()))?,
        align: crop["align"]
            .as_bool()
            .ok_or_else(|| bad("settings.crop.align is missing".into()))?,
    };
    let check = df_models::ImagePreparation {
        resize: df_models::ResizeMethod::default(),
        center_crop: None,
        faces: Some(record),
    };
    check.check().map_err(bad)?;
    Ok(Some(record))
}

/// The transform that scores images for `loaded` the way its images were prepared in
/// training, with what the caller asked for (`resize`, `center_crop`: `None` when not
/// given) taking precedence, and the notes a user should read: each request that
/// contradicts the checkpoint's record ("--center-crop 1 overrides the checkpoint's 0.512"),
/// or, for a native checkpoint that records nothing (written before format 3, or by
/// [`crate::save_model`] without a preparation), that the defaults were used (nearest
/// resize, the whole image). Keras files record nothing and get the same defaults
/// silently (Keras' `flow_from_directory` resizes whole images with nearest).
///
/// # Errors
/// An invalid `center_crop` (named as the `--center-crop` option).
pub fn prepared_transform(
    loaded: &df_models::LoadedModel,
    resize: Option<df_data::ResizeFilter>,
    center_crop: Option<f32>,
) -> Result<(df_data::Transform, Vec<String>)> {
    let recorded = loaded.preparation();
    let base = recorded.unwrap_or_default();
    let mut notes = Vec::new();
    match (&loaded.checkpoint, recorded) {
        (Some(meta), None) => notes.push(format!(
            "the checkpoint (format {}) does not record how its training images were \
             prepared: using {base} (give --resize and --center-crop if it was trained \
             otherwise)",
            meta.format_version
        )),
        (_, Some(recorded)) => {
            if let Some(r) = resize {
                if resize_method(r) != recorded.resize {
                    notes.push(format!(
                        "--resize {} overrides the checkpoint's {} (it was trained with {recorded})",
                        resize_method(r),
                        recorded.resize
                    ));
                }
            }
            if let Some(c) = center_crop {
                let theirs = recorded.center_crop.unwrap_or(1.0);
                if c != theirs {
                    notes.push(format!(
                        "--center-crop {c} overrides the checkpoint's {theirs} (it was \
                         trained with {recorded})"
                    ));
                }
            }
        }
        (None, None) => {}
    }
    let transform = transform_for(
        &loaded.input_spec(),
        resize.unwrap_or_else(|| resize_filter(base.resize)),
    )
    .with_center_crop(center_crop.or(base.center_crop));
    transform
        .validate()
        .map_err(|e| crate::error::config("--center-crop", e.to_string()))?;
    Ok((transform, notes))
}
