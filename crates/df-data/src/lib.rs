//! # df-data
//!
//! Data for deepfake detectors: image-folder datasets, decoding, Pillow-exact
//! resizing, seeded augmentation, a parallel batch loader with bounded prefetch, and a
//! synthetic forgery set.
//!
//! - [`ImageFolder`]: one sub-folder per class (Keras `flow_from_directory` layout) or
//!   a CSV manifest; the positive class ("fake") is chosen by name through
//!   [`ClassMapping`]; seeded stratified [`validation_split`](ImageFolder::validation_split);
//!   rank-aware [`shard`](ImageFolder::shard)ing for data-parallel training.
//! - [`decode_rgb`] / [`load_rgb`]: JPEG, PNG, BMP, WebP to 8-bit RGB (grayscale,
//!   alpha, palette, CMYK and 16-bit handled) as Keras' `load_img` does.
//! - [`resize_rgb`]: nearest, bilinear and area filters with the same pixels as
//!   Pillow's `Image.resize`, hence as the Keras input pipeline.
//! - [`Transform`]: a model's input description (size, filter, scale,
//!   offset or mean/std, channel order) as plain serialisable data; this crate does not
//!   depend on the model crate, a model's metadata converts into it.
//! - [`Augment`]: Keras `ImageDataGenerator` augmentations (flip, rotation, shift, zoom,
//!   shear, brightness) and forensic ones (random crop, blur, JPEG re-compression,
//!   noise), reproducible per sample from `(seed, epoch, index)`.
//! - [`Loader`]: NCHW `f32` [`Batch`]es shuffled per epoch, made by worker threads
//!   with a bounded prefetch window, identical whatever the number of workers;
//!   `drop_last`; class balancing ([`Balance`]).
//! - Bad files never stop a run: zero-byte, non-image, corrupt and truncated files are
//!   skipped and listed as [`SkipReport`]s (serialisable to JSON). A missing
//!   directory, an empty class or a dataset with a single class is an [`Error`] when
//!   the dataset is opened.
//! - [`synthetic`]: a deterministic set of face-like images and face-swapped forgeries,
//!   on disk or in memory.
//!
//! ## Example
//!
//! Generate a small synthetic set, split it, and read two epochs of augmented batches:
//!
//! ```
//! # mod deepfake { pub mod data { pub use df_data::*; } }
//! use deepfake::data::{synthetic, Augment, Loader, LoaderConfig, Transform};
//!
//! # fn main() -> deepfake::data::Result<()> {
//! let tmp = tempfile::tempdir().expect("a private temporary folder");
//! let dir = tmp.path().join("data");
//! let data = synthetic::generate(&dir, 8, 64, 42)?; // 8 real + 8 fake, 64×64
//! let (train, val) = data.validation_split(0.25, 42)?;
//! assert_eq!((train.len(), val.len()), (12, 4));
//!
//! let config = LoaderConfig::default()
//!     .with_batch_size(4)
//!     .with_workers(2)
//!     .with_transform(Transform::unit(32, 32))
//!     .with_augment(Augment::study())
//!     .with_seed(7);
//! let loader = Loader::new(train, config)?;
//! for epoch in 0..2 {
//!     for batch in loader.epoch(epoch) {
//!         let batch = batch?;
//!         assert_eq!(batch.images.size(), [4, 3, 32, 32]);
//!         assert_eq!(batch.labels.size(), [4]);
//!     }
//! }
//! assert!(loader.skipped().is_empty());
//! # Ok(()) }
//! ```

pub mod audit;
mod augment;
mod augment_spec;
mod dataset;
mod decode;
pub mod enhance;
mod error;
mod loader;
pub mod perturb;
mod pipeline;
pub mod pseudo;
mod resize;
pub mod sbi;
mod skip;
pub mod synthetic;
mod transform;
mod video;
pub mod walk;

pub use audit::{AuditOptions, AuditReport};
pub use augment::{
    add_gaussian_noise, gaussian_blur, jpeg_encode, jpeg_roundtrip, sample_rng, to_rgb32f, to_rgb8,
    warp_affine, Affine, AffineParams, Augment, AugmentParams, BlurAugment, ColorJitter,
    CropFraction, JpegAugment, NoiseAugment, RandomCrop, RescaleAugment,
};
pub use augment_spec::AUGMENT_SPEC_HELP;
pub use dataset::{
    ClassInfo, ClassMapping, FolderOptions, ImageFolder, ImageSource, Label, Sample,
};
pub use decode::{
    check_header, decode_rgb, has_image_extension, load_rgb, IMAGE_EXTENSIONS, MAX_PIXELS,
};
pub use error::{Error, Result};
/// The `image` crate (0.25) whose types this API takes and returns ([`load_rgb`] gives an
/// [`image::RgbImage`]): use it through here and the versions always match.
pub use image;
pub use loader::{Balance, Batch, EpochIter, Loader, LoaderConfig};
pub use pipeline::{image_to_tensor, prepare_image, prepare_with_params, rgb_to_tensor};
pub use pseudo::{PseudoFakeSource, PseudoFakes};
pub use resize::{resize_rgb, ResizeFilter};
pub use skip::{SkipReason, SkipReport, SkipSummary};
pub use transform::{ChannelOrder, Normalize, Transform, MIN_CENTER_CROP, MIN_CROP_SIDE};
pub use video::{
    cache_dir, ffmpeg_path, frame_args, has_video_extension, open_video, probe_video, video_frames,
    FrameSampling, VideoFrame, VideoFrames, VideoInfo, DECODER_THREADS, MAX_FRAME_SIDE,
    VIDEO_EXTENSIONS,
};
pub use walk::{Walked, Walker};

/// The entry point of the fuzz target `image_decode` (`fuzz/`), shared with the test that
/// replays its corpus on stable, so both exercise the same code.
#[doc(hidden)]
pub mod fuzz {
    use rand::SeedableRng;

    use crate::{prepare_image, Augment, ResizeFilter, Transform};

    /// Decodes `data` as an image file (the format from its content); when it decodes,
    /// runs it through the training pipeline at a small size with every resize filter,
    /// a centre crop, and no, the study's and the forensic augmentation: every value
    /// written must be finite. Every decoding error is acceptable, a panic is not.
    pub fn image_decode(data: &[u8]) {
        let Ok(img) = crate::decode_rgb(data) else {
            return;
        };
        let seed = data
            .iter()
            .fold(0u64, |h, &b| h.rotate_left(5) ^ u64::from(b));
        let filters = [
            ResizeFilter::Nearest,
            ResizeFilter::Bilinear,
            ResizeFilter::Area,
        ];
        let augments = [Augment::none(), Augment::study(), Augment::forensic()];
        for (i, filter) in filters.into_iter().enumerate() {
            let transform = Transform::unit(12, 16)
                .with_resize(filter)
                .with_center_crop((i == 1).then_some(0.5));
            let mut out = vec![f32::NAN; transform.numel()];
            for augment in &augments {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                if prepare_image(&img, &transform, augment, &mut rng, &mut out).is_ok() {
                    assert!(out.iter().all(|v| v.is_finite()), "a non-finite value");
                }
            }
        }
    }
}
