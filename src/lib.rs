//! # deepfake
//!
//! Deepfake detection on libtorch, as a set of reusable crates. This facade re-exports
//! them under one name, with their documentation inlined here; write `deepfake::…` paths
//! (the `df_*` crates are also usable alone, but a crate depending on `deepfake` sees only
//! these names):
//!
//! | module | crate | what |
//! | --- | --- | --- |
//! | [`Detector`], [`detect`] | `df-detect` | a trained detector ready to use: open a checkpoint (or a Keras file), score a picture, a photo or video file, or a folder as a stream; faces and videos handled as the checkpoint records |
//! | [`models`] | `df-models` | the study's architectures: model families, the catalogue by name, checkpoints, Keras weight import |
//! | [`data`] | `df-data` | image folders, decoding, Pillow-exact resizing, augmentation, the batch loader, videos, the synthetic forgery set |
//! | [`train`] | `df-train` | the training loop, optimizers, losses, callbacks, evaluation, whole experiments |
//! | [`metrics`] | `df-metrics` | accuracy, ROC/AUC, AP, EER, calibration, history analysis, plots |
//! | [`face`] | `df-face` | face detection (MTCNN as facenet-pytorch runs it) and face crops |
//! | [`layers`] | `df-layers` | building blocks with Keras semantics (conv-bn-act, MBConv, inception, residual, separable blocks, dense heads) |
//! | [`dist`] | `df-dist` | data-parallel training on libtorch's c10d (process groups, all-reduce, DDP's gradient averaging) |
//! | [`io`] | `df-io` | the one atomic file writer and the safetensors reader/writer |
//! | — | `df-sys` | the C++ shim beneath `train` and `dist` (autocast, c10d, fused optimizer steps); its one public policy is [`train::allocator`] |
//! | [`cli`] | — | the options the example programs share |
//! | [`image`], [`tch`] | `image` 0.25, `tch` 0.24 | re-exported: the picture types the API takes ([`image::RgbImage`]) and libtorch's tensors, devices and variable stores, in the versions the crates use |
//!
//! Where to look first:
//!
//! - scoring photos and videos with a trained model: [`Detector`];
//! - a model by name: [`models::build`] with [`models::BuildOptions`], its head chosen as
//!   [`models::Top`] says; every name, with Keras' parameter counts:
//!   [`models::registry()`];
//! - the input a model expects as the data pipeline's transform: [`train::transform_for`];
//!   a folder of images: [`data::ImageFolder`] (a smaller part to try things on:
//!   [`data::ImageFolder::subset`]) and [`data::Loader`];
//! - training: [`train::Trainer`] (the loop) or [`train::run_experiment`] (a whole run from
//!   one configuration, as the `train` program does);
//! - reopening a saved model: [`models::load_checkpoint`], a Keras file:
//!   [`models::load_keras`]; a network of your own that trains and reopens like the
//!   built-in ones: [`models::family`] and `examples/custom_model.rs`;
//! - faces: [`face::Mtcnn`] and [`face::crop_faces`].
//!
//! ```no_run
//! use deepfake::models::{self, BuildOptions, Top};
//! use deepfake::tch::{nn::VarStore, Device};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let vs = VarStore::new(Device::cuda_if_available());
//! let options = BuildOptions::default().with_top(Top::study([256, 128], 0.5, 1e-4));
//! let model = models::build("efficientnet_b7", &vs.root(), &options)?;
//! println!("{} parameters", deepfake::layers::util::param_count(&vs).total);
//! let spec = model.input_spec(); // size and preprocessing for the data pipeline
//! let _transform = deepfake::train::transform_for(&spec, deepfake::data::ResizeFilter::Bilinear);
//! # Ok(()) }
//! ```

pub mod cli;

/// The text of an error and its causes for a person to read, each cause once.
///
/// The crates' errors put their cause's text in their own message (`runs/x: No such file
/// or directory (os error 2)`) *and* report it as their `source()`, so printing the chain
/// as it is (anyhow's `Caused by:`, `{:#}`) says it twice; this appends a cause only when
/// the text so far does not already hold it. The examples print their errors with it.
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let e = deepfake::io::Error::Io { path: "x.json".into(), source: io };
/// assert_eq!(deepfake::error_text(&e), "x.json: no such file");
/// ```
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    df_io::error_text(error)
}

/// `text` made safe to print on a terminal: every control character (a newline in a file
/// name, an ANSI escape sequence) is written as Rust's `{:?}` writes it (`\n`, `\u{1b}`),
/// so that no name can forge a line of output or drive the terminal. A newline followed
/// by two spaces is kept: the library's multi-line messages indent their continuation
/// lines, and such a line cannot pass for a result line (`predict`'s JSON lines start at
/// the margin).
pub fn escape_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' && text_continues_indented(chars.clone()) {
            out.push(c);
        } else if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

fn text_continues_indented(mut rest: impl Iterator<Item = char>) -> bool {
    rest.next() == Some(' ') && rest.next() == Some(' ')
}

/// Prints `note: <text>` on stderr, escaped ([`escape_message`]).
pub fn note(text: &str) {
    eprintln!("note: {}", escape_message(text));
}

/// The exit status of an example's `run()`: success, or the error printed once to
/// stderr ([`error_text`], escaped by [`escape_message`]) and status 1.
/// `fn main() -> ExitCode { exit_code(run()) }`.
pub fn exit_code<E>(result: Result<(), E>) -> std::process::ExitCode
where
    E: AsRef<dyn std::error::Error + Send + Sync + 'static>,
{
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", escape_message(&error_text(e.as_ref())));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Data: image folders, decoding, resizing, augmentation, the batch loader, videos.
///
/// Start here: a folder with one sub-folder per class (`fake/`, `real/`), split, a part
/// of it to try things on, and batches of model inputs:
///
/// ```
/// use deepfake::data::{synthetic, ImageFolder, Loader, LoaderConfig, Transform};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let folder = tmp.path().join("photos");
/// # synthetic::generate(&folder, 10, 48, 1)?; // 10 real and 10 fake pictures
/// let data = ImageFolder::open(&folder)?; // skips (and lists) files that are not images
/// let (train, val) = data.validation_split(0.2, 42)?; // stratified, seeded
/// let few = train.subset(8, 7)?; // 8 of the 16, each class keeping its share
/// assert_eq!((few.len(), val.len()), (8, 4));
///
/// let config = LoaderConfig::default().with_batch_size(4).with_transform(Transform::unit(32, 32));
/// for batch in Loader::new(few, config)?.epoch(0) {
///     assert_eq!(batch?.images.size(), [4, 3, 32, 32]);
/// }
/// # Ok(()) }
/// ```
#[doc(inline)]
pub use df_data as data;
/// The `image` crate (0.25) whose types the API takes and returns
/// ([`image::RgbImage`]): through here its version always matches the crates'.
#[doc(no_inline)]
pub use df_data::image;
/// The detector ready to use ([`Detector`]) and its results, with the video evaluation
/// walk and the face-crop preparation that the `evaluate` and `prepare_faces` programs
/// run.
///
/// Start here: a checkpoint written by training scores photos, videos and folders:
///
/// ```no_run
/// use deepfake::detect::{DetectorOptions, FaceMode, Scored};
/// use deepfake::Detector;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let options = DetectorOptions::default()
///     .with_device(deepfake::tch::Device::cuda_if_available())
///     .with_faces(FaceMode::Auto); // crop faces if the checkpoint was trained on crops
/// let detector = Detector::open("runs/faces/model.safetensors", &options)?;
/// for item in detector.score_folder("photos")? {
///     match item {
///         Scored::Scored { path, verdict } => println!("{}: {}", path.display(), verdict.label().as_str()),
///         left_out => eprintln!("{}", serde_json::to_string(&left_out)?),
///     }
/// }
/// # Ok(()) }
/// ```
#[doc(inline)]
pub use df_detect as detect;
#[doc(inline)]
pub use df_detect::Detector;
/// A [`Detector`]'s Grad-CAM maps ([`Detector::explain_image`]).
#[doc(inline)]
pub use df_detect::{CamMap, ExplainedImage};
/// Data-parallel training on libtorch's own c10d (TCPStore, ProcessGroupGloo).
///
/// Start here: a process group of one (the `train` program's `--nproc N` starts N
/// processes, each with its rank; `torchrun`'s variables work too):
///
/// ```no_run
/// use deepfake::dist::{DistConfig, ProcessGroup};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let group = ProcessGroup::new(&DistConfig::local(0, 1, 29500))?; // rank 0 of 1, a local port
/// assert_eq!(group.world_size(), 1);
/// # Ok(()) }
/// ```
#[doc(inline)]
pub use df_dist as dist;
/// Faces: MTCNN as facenet-pytorch runs it, and face crops.
///
/// Start here: the faces of a photo, largest first, cropped for a detector (the weights
/// come from `scripts/setup.sh`):
///
/// ```no_run
/// use deepfake::face::{crop_faces, default_weights_path, CropConfig, Mtcnn, MtcnnConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mtcnn = Mtcnn::load(&default_weights_path()?, MtcnnConfig::default(), deepfake::tch::Device::Cpu)?;
/// let photo = deepfake::image::open("photo.jpg")?.to_rgb8();
/// let faces = mtcnn.detect(&photo)?;
/// let crops = crop_faces(&photo, &faces, &CropConfig::default())?;
/// println!("{} face(s); the largest at {:?}", faces.len(), crops.first().map(|c| c.face.bbox));
/// # Ok(()) }
/// ```
#[doc(inline)]
pub use df_face as face;
/// Files: the one atomic writer (temporary file, fsync, rename) and safetensors.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("metrics.json");
/// deepfake::io::write_json(&path, &[("auc", 0.98)])?; // whole or not at all
/// assert!(std::fs::read_to_string(&path)?.contains("0.98"));
/// # Ok(()) }
/// ```
#[doc(inline)]
pub use df_io as io;
/// Building blocks with Keras semantics, from which the models are made.
///
/// ```
/// use deepfake::layers::{util::param_count, ConvBnAct, ConvBnActConfig};
/// use deepfake::tch::{nn::VarStore, Device};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vs = VarStore::new(Device::Cpu);
/// let _block = ConvBnAct::new(&vs.root(), &ConvBnActConfig::new(3, 8, 3))?;
/// // Keras' Conv2D(8, 3) defaults: a 3×3×3×8 kernel and 8 biases.
/// assert_eq!(param_count(&vs).total, 3 * 3 * 3 * 8 + 8);
/// # Ok(()) }
/// ```
#[doc(inline)]
pub use df_layers as layers;
/// Metrics: accuracy, ROC/AUC, AP, EER, calibration, history analysis, plots.
///
/// ```
/// use deepfake::metrics::{accuracy, equal_error_rate, roc_auc};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let p_fake = [0.9f32, 0.8, 0.3, 0.2, 0.6];
/// let is_fake = [true, true, false, false, false];
/// assert_eq!(roc_auc(&p_fake, &is_fake)?, 1.0);
/// assert_eq!(accuracy(&p_fake, &is_fake, 0.5)?, 0.8);
/// assert_eq!(equal_error_rate(&p_fake, &is_fake)?.rate, 0.0);
/// # Ok(()) }
/// ```
#[doc(inline)]
pub use df_metrics as metrics;
/// Models: the study's architectures by name, checkpoints, Keras weight import.
///
/// Start here: build by name (the head chosen as [`models::Top`] says), save, reopen:
///
/// ```
/// use deepfake::models::{self, checkpoint::save_checkpoint, BuildOptions, Top};
/// use deepfake::tch::{nn::VarStore, Device};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("meso4.safetensors");
/// println!("{:?}", models::registry().iter().map(|m| m.name).collect::<Vec<_>>());
/// let vs = VarStore::new(Device::Cpu);
/// let options = BuildOptions::default().with_input_size(64, 64).with_top(Top::mesonet());
/// let model = models::build("meso4", &vs.root(), &options)?;
/// save_checkpoint(&vs, model.as_ref(), &path)?;
/// let again = models::load_checkpoint(&path, Device::Cpu)?;
/// assert_eq!(again.input_spec(), model.input_spec());
/// # Ok(()) }
/// ```
#[doc(inline)]
pub use df_models as models;
/// Training: the loop ([`train::Trainer`]), optimizers, losses, callbacks, evaluation,
/// and whole runs from one configuration ([`train::run_experiment`]).
///
/// Start here: an image folder, through the model's own input transform, into a trained
/// checkpoint that a [`Detector`] opens:
///
/// ```
/// use deepfake::data::{synthetic, ImageFolder, Loader, LoaderConfig, ResizeFilter};
/// use deepfake::models::{self, BuildOptions};
/// use deepfake::tch::{nn::VarStore, Device};
/// use deepfake::train::{preparation_of, transform_for, Trainer, Verbosity};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let (folder, run) = (tmp.path().join("photos"), tmp.path().join("run"));
/// # synthetic::generate(&folder, 6, 40, 1)?; // 6 real and 6 fake pictures
/// let (train_part, val_part) = ImageFolder::open(&folder)?.validation_split(0.25, 42)?;
/// let vs = VarStore::new(Device::Cpu);
/// let options = BuildOptions::default().with_input_size(32, 32);
/// let model = models::build("meso4", &vs.root(), &options)?;
/// let transform = transform_for(&model.input_spec(), ResizeFilter::Bilinear);
/// let config = LoaderConfig::default().with_batch_size(4).with_transform(transform);
/// let (train, val) = (Loader::new(train_part, config.clone())?, Loader::new(val_part, config)?);
///
/// let mut trainer = Trainer::builder(model, vs)
///     .epochs(2)
///     .image_preparation(preparation_of(&transform)) // a Detector prepares photos alike
///     .out_dir(&run)
///     .verbosity(Verbosity::Quiet)
///     .build()?;
/// trainer.fit(&train, Some(&val))?;
/// let detector = deepfake::Detector::open(run.join("model.safetensors"), &Default::default())?;
/// # let _ = detector;
/// # Ok(()) }
/// ```
#[doc(inline)]
pub use df_train as train;
pub use tch;
