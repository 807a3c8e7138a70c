//! [`Detector`]: one model with its preprocessing (and a face detector when faces are
//! scored), and the verdicts it gives.

use std::path::{Path, PathBuf};

use df_data::{image_to_tensor, rgb_to_tensor, FrameSampling, ResizeFilter, Transform};
use df_face::{crop_faces, CropConfig, FaceSelect, Mtcnn, MtcnnConfig};
use df_models::keras::KerasImportOptions;
use df_models::load::{load_weights, KerasLoadOptions, LoadedModel};
use df_models::Polarity;
use df_train::{detector_logits_in, prepared_transform, Pass, Precision};
use image::RgbImage;
use serde::Serialize;
use tch::{Device, Tensor};

use crate::{Error, Result};

/// Whether a [`Detector`] finds the faces of each picture and scores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaceMode {
    /// Faces when the checkpoint records that it was trained on face crops
    /// (`prepare_faces`), cropped as it records; whole pictures otherwise.
    #[default]
    Auto,
    /// Faces always: cropped as the checkpoint records, else with [`CropConfig`]'s defaults
    /// (a note says so).
    On,
    /// Whole pictures always, whatever the checkpoint records.
    Off,
}

/// How a [`Detector`] runs and prepares its inputs. Each `None` leaves the choice to the
/// weights (what a checkpoint records of its training, a Keras head's size) or the default.
#[derive(Debug, Clone)]
pub struct DetectorOptions {
    /// Where the model runs (default: the CPU).
    pub device: Device,
    /// Compute precision of the forward passes (default: f32). A `--precision auto` is
    /// resolved before, by `df_train::PrecisionChoice::resolve`.
    pub precision: Precision,
    /// Faces or whole pictures.
    pub faces: FaceMode,
    /// The resize filter (default: the checkpoint's, else nearest).
    pub resize: Option<ResizeFilter>,
    /// The centre crop, a fraction of each side (default: the checkpoint's, else none).
    pub center_crop: Option<f32>,
    /// The square size a Keras file was trained at, when its head does not tell.
    pub input_size: Option<[i64; 2]>,
    /// Which frames of a video are scored.
    pub video: FrameSampling,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            precision: Precision::F32,
            faces: FaceMode::Auto,
            resize: None,
            center_crop: None,
            input_size: None,
            video: FrameSampling::default(),
        }
    }
}

impl DetectorOptions {
    /// These options on `device`.
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// These options with faces `mode`.
    pub fn with_faces(mut self, mode: FaceMode) -> Self {
        self.faces = mode;
        self
    }
}

/// What a score says: `"fake"` at p(fake) ≥ 0.5, `"real"` below, `"no face"` when faces
/// were looked for and none was found (no score).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Label {
    /// p(fake) ≥ 0.5.
    #[serde(rename = "fake")]
    Fake,
    /// p(fake) < 0.5.
    #[serde(rename = "real")]
    Real,
    /// No face, so no score.
    #[serde(rename = "no face")]
    NoFace,
}

impl Label {
    /// The label of a score (`None`: no face).
    pub fn of(p_fake: Option<f64>) -> Self {
        match p_fake {
            None => Label::NoFace,
            Some(p) if p >= 0.5 => Label::Fake,
            Some(_) => Label::Real,
        }
    }

    /// `"fake"`, `"real"` or `"no face"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Fake => "fake",
            Label::Real => "real",
            Label::NoFace => "no face",
        }
    }
}

/// One face of a scored picture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Face {
    /// `[x1, y1, x2, y2]` in the picture's pixels (a video's own pixels for its frames).
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// The face detector's probability that it is a face.
    pub probability: f32,
    /// p(fake) of the face's crop.
    pub p_fake: f64,
}

/// A scored picture. With faces, its `p_fake` is its most suspicious face's (a picture is
/// fake if any face in it is), and `None` without a face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageVerdict {
    /// p(fake) = sigmoid(logit); `None` when faces were looked for and none was found.
    pub p_fake: Option<f64>,
    /// What `p_fake` says.
    pub label: Label,
    /// With faces: every face found, largest first; `None` when whole pictures are scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faces: Option<Vec<Face>>,
}

/// One sampled frame of a scored video.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameVerdict {
    /// The frame's number among those sampled, from 0.
    pub index: usize,
    /// Its p(fake): its most suspicious face's with faces (`None` without a face).
    pub p_fake: Option<f64>,
    /// With faces: its faces, largest first, boxes in the video's own pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faces: Option<Vec<Face>>,
}

/// A scored video: the mean p(fake) over the frames that have a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoVerdict {
    /// The mean p(fake) of the frames scored; `None` when none was (no face in any).
    pub p_fake: Option<f64>,
    /// What `p_fake` says.
    pub label: Label,
    /// Every sampled frame, in order.
    pub frames: Vec<FrameVerdict>,
    /// Whether faces were scored (each frame by its most suspicious face).
    pub faces: bool,
}

impl VideoVerdict {
    /// How many frames have a score (with faces: a face).
    pub fn frames_scored(&self) -> usize {
        self.frames.iter().filter(|f| f.p_fake.is_some()).count()
    }

    /// The video's line as `predict` prints it (and `evaluate` writes in `videos.json`):
    /// `path`, `p_fake`, `label`, `frames` and `frames_scored` (counts), and with
    /// `per_frame` each frame's score (`per_frame`) and, with faces, faces (`frame_faces`).
    pub fn report(&self, path: &Path, per_frame: bool) -> VideoReport {
        VideoReport {
            path: path.to_string_lossy().into_owned(),
            p_fake: self.p_fake,
            label: self.label,
            frames: self.frames.len(),
            frames_scored: self.frames_scored(),
            per_frame: per_frame.then(|| self.frames.iter().map(|f| f.p_fake).collect()),
            frame_faces: (per_frame && self.faces).then(|| {
                self.frames
                    .iter()
                    .map(|f| f.faces.clone().unwrap_or_default())
                    .collect()
            }),
        }
    }
}

/// A video's line as `predict` prints it ([`VideoVerdict::report`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoReport {
    /// The video file, lossily as UTF-8.
    pub path: String,
    /// The mean p(fake) of the frames scored.
    pub p_fake: Option<f64>,
    /// What `p_fake` says.
    pub label: Label,
    /// Frames sampled.
    pub frames: usize,
    /// Frames with a score.
    pub frames_scored: usize,
    /// Each sampled frame's score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_frame: Option<Vec<Option<f64>>>,
    /// With faces: each sampled frame's faces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_faces: Option<Vec<Vec<Face>>>,
}

/// A scored photo or video.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Verdict {
    /// A photo.
    Image(ImageVerdict),
    /// A video.
    Video(VideoVerdict),
}

impl Verdict {
    /// Its p(fake) (`None`: no face).
    pub fn p_fake(&self) -> Option<f64> {
        match self {
            Verdict::Image(v) => v.p_fake,
            Verdict::Video(v) => v.p_fake,
        }
    }

    /// Its label.
    pub fn label(&self) -> Label {
        match self {
            Verdict::Image(v) => v.label,
            Verdict::Video(v) => v.label,
        }
    }

    /// `predict`'s JSON line for the file at `path`: a photo's [`ImageVerdict::json`], a
    /// video's [`VideoVerdict::report`] (`per_frame`: with each frame's score).
    ///
    /// # Errors
    /// Serialising (a non-finite number).
    pub fn json(&self, path: &Path, per_frame: bool) -> serde_json::Result<serde_json::Value> {
        match self {
            Verdict::Video(v) => serde_json::to_value(v.report(path, per_frame)),
            Verdict::Image(v) => v.json(path),
        }
    }
}

impl ImageVerdict {
    /// `{"path": ..., "p_fake": ..., "label": ..., "faces": [...]}`: `path` first, then the
    /// verdict's fields.
    ///
    /// # Errors
    /// Serialising (a non-finite number).
    pub fn json(&self, path: &Path) -> serde_json::Result<serde_json::Value> {
        let mut value = serde_json::json!({ "path": path.to_string_lossy() });
        if let (Some(map), serde_json::Value::Object(fields)) =
            (value.as_object_mut(), serde_json::to_value(self)?)
        {
            map.extend(fields);
        }
        Ok(value)
    }
}

/// A model with its weights and the preparation its inputs need, scoring photos, videos
/// and folders as the `predict` program does.
///
/// ```no_run
/// # mod deepfake { pub mod detect { pub use df_detect::*; } pub use df_detect::Detector; pub use image; }
/// use deepfake::detect::{DetectorOptions, Scored, Verdict};
/// use deepfake::Detector;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Faces are found and cropped as the checkpoint records of its training.
/// let detector = Detector::open("runs/faces/model.safetensors", &DetectorOptions::default())?;
///
/// // A photo or a video file (by its extension).
/// match detector.score_path("clip.mp4")? {
///     Verdict::Video(v) => println!("{} frames, p_fake {:?}", v.frames_scored(), v.p_fake),
///     Verdict::Image(v) => println!("p_fake {:?}, faces {:?}", v.p_fake, v.faces),
/// }
/// // A picture already decoded.
/// let picture = deepfake::image::open("photo.jpg")?.to_rgb8();
/// println!("{}", detector.score_image(&picture)?.label.as_str()); // fake, real, no face
///
/// // A folder, as a stream: each photo and video, or why it was left out.
/// for item in detector.score_folder("photos")? {
///     if let Scored::Scored { path, verdict } = item {
///         println!("{}: {:?}", path.display(), verdict.p_fake());
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Detector {
    pub(crate) loaded: LoadedModel,
    pub(crate) transform: Transform,
    notes: Vec<String>,
    pub(crate) faces: Option<(Mtcnn, CropConfig)>,
    pub(crate) device: Device,
    precision: Precision,
    video: FrameSampling,
}

impl Detector {
    /// Opens a native checkpoint (`.safetensors`, which names its model and records how
    /// its training images were prepared).
    ///
    /// # Errors
    /// An unreadable or damaged checkpoint (the error names the file); a precision the
    /// device cannot run; the face detector's weights missing when faces are scored.
    pub fn open(checkpoint: impl AsRef<Path>, options: &DetectorOptions) -> Result<Self> {
        Self::open_weights(None, checkpoint.as_ref(), Polarity::default(), options)
    }

    /// Opens a Keras weights file (`.h5`: legacy Keras 2 or Keras 3 `.weights.h5`) for the
    /// registry's `model`, whose output scores `polarity`'s class.
    ///
    /// # Errors
    /// As [`Detector::open`]; an unknown model; weights that do not fit it.
    pub fn open_keras(
        weights: impl AsRef<Path>,
        model: &str,
        polarity: Polarity,
        options: &DetectorOptions,
    ) -> Result<Self> {
        Self::open_weights(Some(model), weights.as_ref(), polarity, options)
    }

    /// Opens either, by the file's extension (`.safetensors` or `.h5`), as the programs'
    /// `--weights` and `--model` do: `model` is optional for a checkpoint (and must agree
    /// with it), required for a Keras file; `polarity` applies to Keras files only.
    ///
    /// # Errors
    /// As [`Detector::open`] and [`Detector::open_keras`].
    pub fn open_weights(
        model: Option<&str>,
        weights: &Path,
        polarity: Polarity,
        options: &DetectorOptions,
    ) -> Result<Self> {
        let (device, precision) = (options.device, options.precision);
        precision.check(device)?;
        let keras = KerasLoadOptions {
            import: KerasImportOptions::default().with_polarity(polarity),
            top: None,
            input_size: options.input_size,
        };
        // The library's errors name the file and what is wrong with it.
        let loaded = load_weights(model, weights, device, &keras)?;
        df_train::check_input_memory(&loaded.input_spec(), 1).map_err(|e| Error::In {
            path: weights.to_path_buf(),
            source: Box::new(e.into()),
        })?;
        let (transform, mut notes) =
            prepared_transform(&loaded, options.resize, options.center_crop)?;
        let record = loaded.preparation().and_then(|p| p.faces);
        let wanted = match options.faces {
            FaceMode::Auto => record.is_some(),
            FaceMode::On => true,
            FaceMode::Off => false,
        };
        let faces = if wanted {
            Some((Self::face_detector(device)?, crop_for(record, &mut notes)))
        } else {
            None
        };
        Ok(Self {
            loaded,
            transform,
            notes,
            faces,
            device,
            precision,
            video: options.video,
        })
    }

    fn face_detector(device: Device) -> Result<Mtcnn> {
        let weights = df_face::default_weights_path()?;
        Ok(Mtcnn::load(&weights, MtcnnConfig::default(), device)?)
    }

    /// How faces are cropped before scoring (the checkpoint's record, else the crop's
    /// defaults), or `None` when the detector scores whole pictures. A program that finds
    /// faces itself (the service does, outside its inference thread) crops with this.
    pub fn face_crop(&self) -> Option<&CropConfig> {
        self.faces.as_ref().map(|(_, crop)| crop)
    }

    /// What a user should read about the preparation: an option overriding what the
    /// checkpoint records, a checkpoint that records none, faces cropped with defaults.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Whether faces are found and scored (else whole pictures).
    pub fn scores_faces(&self) -> bool {
        self.faces.is_some()
    }

    /// The model with its weights.
    pub fn model(&self) -> &LoadedModel {
        &self.loaded
    }

    /// The decoding, resizing and preprocessing of its inputs.
    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// Scores a decoded picture: whole, or by its faces.
    ///
    /// # Errors
    /// The model's score is not finite (damaged weights); the model has no binary top.
    pub fn score_image(&self, image: &RgbImage) -> Result<ImageVerdict> {
        if self.faces.is_some() {
            let faces = self.faces_of(image)?;
            let p_fake = faces.iter().map(|f| f.p_fake).reduce(f64::max);
            return Ok(ImageVerdict {
                p_fake,
                label: Label::of(p_fake),
                faces: Some(faces),
            });
        }
        let x = rgb_to_tensor(image, &self.transform)?.to_device(self.device);
        let p_fake = self.p_one(&x)?;
        finite(p_fake)?;
        Ok(whole(p_fake))
    }

    /// Scores a photo or a video file (by its extension, [`df_data::has_video_extension`]).
    ///
    /// # Errors
    /// The file cannot be read or decoded (the message names it and says why); a score
    /// that is not finite.
    pub fn score_path(&self, path: impl AsRef<Path>) -> Result<Verdict> {
        let path = path.as_ref();
        if df_data::has_video_extension(path) {
            return self.score_video(path).map(Verdict::Video);
        }
        if self.faces.is_some() {
            let image = df_data::load_rgb(path).map_err(|why| Error::File {
                path: path.to_path_buf(),
                message: why.to_string(),
            })?;
            return self
                .score_image(&image)
                .map_err(|e| e.in_file(path))
                .map(Verdict::Image);
        }
        let x = image_to_tensor(path, &self.transform)?.to_device(self.device);
        let p_fake = self.p_one(&x)?;
        if !p_fake.is_finite() {
            return Err(Error::File {
                path: path.to_path_buf(),
                message: format!(
                    "the model's score is {p_fake}: its weights hold NaN or infinite values \
                     (or a batch-norm variance below zero); the checkpoint is damaged or comes \
                     from a diverged run"
                ),
            });
        }
        Ok(Verdict::Image(whole(p_fake)))
    }

    /// Scores a video: its sampled frames ([`DetectorOptions::video`]), each by its most
    /// suspicious face (with faces) or whole; the video's `p_fake` is the mean over the
    /// frames that have a score. Frames are read one at a time as ffmpeg streams them
    /// (`df_data::open_video`), none kept; faces' boxes are in the video's own pixels.
    ///
    /// # Errors
    /// The video cannot be read (no ffmpeg, empty, damaged, no video stream: the message
    /// names it).
    pub fn score_video(&self, path: impl AsRef<Path>) -> Result<VideoVerdict> {
        let path = path.as_ref();
        let mut frames = Vec::new();
        for frame in df_data::open_video(path, &self.video)? {
            let frame = frame?;
            let verdict = if self.faces.is_some() {
                let mut faces = self.faces_of(&frame.image).map_err(|e| e.in_file(path))?;
                // Found in the frame as read (scaled down when larger than the cap).
                for face in &mut faces {
                    for v in &mut face.bbox {
                        *v = (f64::from(*v) * frame.scale) as f32;
                    }
                }
                FrameVerdict {
                    index: frames.len(),
                    p_fake: faces.iter().map(|f| f.p_fake).reduce(f64::max),
                    faces: Some(faces),
                }
            } else {
                let x = rgb_to_tensor(&frame.image, &self.transform)?.to_device(self.device);
                FrameVerdict {
                    index: frames.len(),
                    p_fake: Some(self.p_one(&x)?),
                    faces: None,
                }
            };
            frames.push(verdict);
        }
        let scored: Vec<f64> = frames.iter().filter_map(|f| f.p_fake).collect();
        let p_fake = (!scored.is_empty()).then(|| scored.iter().sum::<f64>() / scored.len() as f64);
        Ok(VideoVerdict {
            p_fake,
            label: Label::of(p_fake),
            frames,
            faces: self.faces.is_some(),
        })
    }

    /// Every face of a decoded picture, cropped as in training and scored.
    fn faces_of(&self, image: &RgbImage) -> Result<Vec<Face>> {
        let crops = self.face_crops(image)?;
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let x = self.crops_input(&crops)?;
        self.faces_scored(&crops, &x)
    }

    /// The faces of a decoded picture, cropped as in training (none without a face
    /// detector).
    pub(crate) fn face_crops(&self, image: &RgbImage) -> Result<Vec<df_face::FaceCrop>> {
        let Some((mtcnn, crop)) = &self.faces else {
            return Ok(Vec::new());
        };
        let found = mtcnn.detect(image).map_err(Error::Detecting)?;
        Ok(crop_faces(image, &found, crop)?)
    }

    /// The preprocessed input of some (at least one) face crops, on the device.
    pub(crate) fn crops_input(&self, crops: &[df_face::FaceCrop]) -> Result<Tensor> {
        Ok(Tensor::cat(
            &crops
                .iter()
                .map(|c| rgb_to_tensor(&c.image, &self.transform))
                .collect::<Result<Vec<_>, _>>()?,
            0,
        )
        .to_device(self.device))
    }

    /// The faces of `crops`, scored on their input `x`.
    pub(crate) fn faces_scored(
        &self,
        crops: &[df_face::FaceCrop],
        x: &Tensor,
    ) -> Result<Vec<Face>> {
        let mut faces = Vec::new();
        for (c, p_fake) in crops.iter().zip(self.p_fake(x)?) {
            finite(p_fake)?;
            faces.push(Face {
                bbox: c.face.bbox,
                probability: c.face.probability,
                p_fake,
            });
        }
        Ok(faces)
    }

    /// p(fake) of one preprocessed input `[1, 3, H, W]`.
    pub(crate) fn p_one(&self, x: &Tensor) -> Result<f64> {
        self.p_fake(x)?.first().copied().ok_or_else(|| {
            Error::Message("the model gave no score for the picture (an empty output)".into())
        })
    }

    /// p(fake) of a batch of preprocessed inputs `[N, 3, H, W]`.
    ///
    /// # Errors
    /// The model does not output one logit per image.
    pub fn p_fake(&self, x: &Tensor) -> Result<Vec<f64>> {
        // The library's one logits function: eval mode, one logit of "fake" per image.
        let logits = tch::no_grad(|| {
            detector_logits_in(self.loaded.model.as_ref(), x, Pass::Eval, self.precision)
        })
        .map_err(Error::NotBinary)?;
        let p = logits.sigmoid().to_device(Device::Cpu).view([-1]);
        Ok(Vec::<f32>::try_from(&p)?
            .into_iter()
            .map(f64::from)
            .collect())
    }
}

/// A whole picture's verdict.
pub(crate) fn whole(p_fake: f64) -> ImageVerdict {
    ImageVerdict {
        p_fake: Some(p_fake),
        label: Label::of(Some(p_fake)),
        faces: None,
    }
}

pub(crate) fn finite(p_fake: f64) -> Result<()> {
    if p_fake.is_finite() {
        Ok(())
    } else {
        Err(Error::Message(format!(
            "the model's score is {p_fake}: its weights hold NaN or infinite values"
        )))
    }
}

/// Every face is scored, cropped as the training faces were (the record), else with the
/// crop's defaults (said in a note).
fn crop_for(record: Option<df_models::FaceCropRecord>, notes: &mut Vec<String>) -> CropConfig {
    match record {
        Some(r) => CropConfig {
            size: r.size,
            margin: r.margin,
            square: r.square,
            align: r.align,
            min_face_size: 0.0,
            select: FaceSelect::All,
        },
        None => {
            notes.push(
                "--faces: the checkpoint records no face crop; faces are cropped with the \
                 defaults (256 px, margin 0.3, square)"
                    .into(),
            );
            CropConfig {
                select: FaceSelect::All,
                ..CropConfig::default()
            }
        }
    }
}

/// A file, with where it is, and its verdict or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Scored {
    /// Scored.
    Scored {
        /// The file.
        path: PathBuf,
        /// Its verdict.
        verdict: Verdict,
    },
    /// Left out without being opened (not a regular file, a link to nothing).
    Skipped {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: df_data::SkipReason,
    },
    /// Opened, and could not be scored.
    Failed {
        /// The file (or folder) at fault.
        path: PathBuf,
        /// Why, naming it.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use df_models::{BuildOptions, FaceCropRecord, ImagePreparation};

    /// A meso4 checkpoint (32×32 input) at `path`, each variable passed through `fill`,
    /// recording `preparation`.
    fn checkpoint(path: &Path, fill: impl Fn(&Tensor), preparation: Option<&ImagePreparation>) {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let options = BuildOptions::default().with_input_size(32, 32);
        let model = df_models::build("meso4", &vs.root(), &options).expect("meso4");
        tch::no_grad(|| {
            for (_, t) in vs.variables() {
                fill(&t);
            }
        });
        df_models::checkpoint::save_checkpoint_with(&vs, model.as_ref(), preparation, path)
            .expect("save");
    }

    fn picture(path: &Path, seed: u8) {
        let image = RgbImage::from_fn(40, 36, |x, y| {
            image::Rgb([(x * 6) as u8 ^ seed, (y * 7) as u8, seed.wrapping_mul(3)])
        });
        image.save(path).expect("png");
    }

    /// p(fake) of `path` computed without the detector: the checkpoint reopened, the
    /// image through the transform, the model's output through a sigmoid.
    fn reference(weights: &Path, path: &Path) -> f64 {
        let loaded = df_models::open_checkpoint(weights, Device::Cpu).expect("reopen");
        let spec = loaded.input_spec();
        let transform = df_train::transform_for(&spec, ResizeFilter::Nearest);
        let x = image_to_tensor(path, &transform).expect("decode");
        let y = tch::no_grad(|| loaded.model.forward_t(&x, false)).sigmoid();
        y.double_value(&[0, 0])
    }

    #[test]
    fn labels_split_at_one_half_and_say_no_face_without_a_score() {
        assert_eq!(Label::of(Some(0.5)), Label::Fake);
        assert_eq!(Label::of(Some(0.4999)), Label::Real);
        assert_eq!(Label::of(None), Label::NoFace);
        assert_eq!(
            serde_json::to_string(&[Label::Fake, Label::Real, Label::NoFace]).expect("json"),
            r#"["fake","real","no face"]"#
        );
    }

    #[test]
    fn a_folder_is_scored_as_a_stream_each_file_as_the_model_scores_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let weights = tmp.path().join("m.safetensors");
        checkpoint(&weights, |_| (), None);
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("real")).expect("dirs");
        picture(&data.join("real/a.png"), 1);
        picture(&data.join("real/b.png"), 2);
        std::fs::write(data.join("real/broken.jpg"), b"not a jpeg").expect("write");
        std::fs::write(data.join("notes.txt"), b"not looked at").expect("write");
        let detector = Detector::open(&weights, &DetectorOptions::default()).expect("open");
        assert!(!detector.scores_faces());
        let items: Vec<Scored> = detector.score_folder(&data).expect("folder").collect();
        assert_eq!(items.len(), 3, "{items:?}");
        for (item, name) in items[..2].iter().zip(["a.png", "b.png"]) {
            let Scored::Scored { path, verdict } = item else {
                panic!("{item:?}");
            };
            assert_eq!(path, &data.join("real").join(name));
            let expected = reference(&weights, path);
            let got = verdict.p_fake().expect("a score");
            assert!((got - expected).abs() < 1e-6, "{name}: {got} vs {expected}");
            assert_eq!(verdict.label(), Label::of(Some(expected)));
            // The decoded picture scores the same as its file.
            let image = df_data::load_rgb(path).expect("decode");
            let whole = detector.score_image(&image).expect("score");
            assert!((whole.p_fake.expect("score") - got).abs() < 1e-6);
            assert_eq!(
                serde_json::to_value(verdict).expect("json"),
                serde_json::json!({"p_fake": got, "label": verdict.label().as_str()})
            );
        }
        let Scored::Failed { path, message } = &items[2] else {
            panic!("{:?}", items[2]);
        };
        assert!(path.ends_with("broken.jpg"));
        assert!(
            message.contains("broken.jpg") && message.contains("not an image"),
            "{message}"
        );
    }

    #[test]
    fn a_path_that_is_not_a_folder_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let weights = tmp.path().join("m.safetensors");
        checkpoint(&weights, |_| (), None);
        let detector = Detector::open(&weights, &DetectorOptions::default()).expect("open");
        let e = detector
            .score_folder(tmp.path().join("nowhere"))
            .expect_err("no folder")
            .to_string();
        assert!(e.contains("nowhere") && e.contains("not a folder"), "{e}");
    }

    #[test]
    fn weights_holding_nan_are_an_error_naming_the_file_not_a_null_score() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let weights = tmp.path().join("nan.safetensors");
        checkpoint(
            &weights,
            |t| {
                let _ = t.shallow_clone().fill_(f64::NAN);
            },
            None,
        );
        let photo = tmp.path().join("a.png");
        picture(&photo, 3);
        let detector = Detector::open(&weights, &DetectorOptions::default()).expect("open");
        let e = detector.score_path(&photo).expect_err("NaN").to_string();
        assert!(e.contains("a.png") && e.contains("NaN or infinite"), "{e}");
    }

    #[test]
    fn a_checkpoint_trained_on_face_crops_scores_faces_unless_told_otherwise() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let weights = tmp.path().join("faces.safetensors");
        let record = FaceCropRecord {
            size: 96,
            margin: 0.25,
            square: true,
            align: false,
        };
        let preparation = ImagePreparation {
            faces: Some(record),
            ..ImagePreparation::default()
        };
        checkpoint(&weights, |_| (), Some(&preparation));
        let photo = tmp.path().join("grey.png");
        RgbImage::from_pixel(80, 60, image::Rgb([128, 128, 128]))
            .save(&photo)
            .expect("png");
        let detector = Detector::open(&weights, &DetectorOptions::default()).expect("open");
        assert!(detector.scores_faces());
        assert!(detector.notes().is_empty(), "{:?}", detector.notes());
        // A picture without a face is a verdict, not an error.
        let Verdict::Image(v) = detector.score_path(&photo).expect("score") else {
            panic!("a photo");
        };
        assert_eq!(
            (v.p_fake, v.label, v.faces),
            (None, Label::NoFace, Some(vec![]))
        );
        // Scoring a folder that is not prepare_faces' as crops is said, naming both.
        let data = tmp.path().join("photos");
        std::fs::create_dir_all(&data).expect("dir");
        let note = crate::crops::uncropped_note(detector.model(), &weights, &data)
            .expect("a note for a folder without a manifest");
        assert!(
            note.contains("faces.safetensors")
                && note.contains("(96 px, margin 0.25)")
                && note.contains("photos are scored as they are"),
            "{note}"
        );
        std::fs::write(data.join(crate::crops::MANIFEST), b"{}").expect("manifest");
        assert_eq!(
            crate::crops::uncropped_note(detector.model(), &weights, &data),
            None
        );
        let off = DetectorOptions::default().with_faces(FaceMode::Off);
        let whole = Detector::open(&weights, &off).expect("open");
        assert!(!whole.scores_faces());
        assert!(whole.score_path(&photo).expect("score").p_fake().is_some());
    }

    #[test]
    fn faces_asked_of_a_checkpoint_without_a_record_are_cropped_with_defaults_and_said() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let weights = tmp.path().join("m.safetensors");
        checkpoint(&weights, |_| (), None);
        let plain = Detector::open(&weights, &DetectorOptions::default()).expect("open");
        let photos = tmp.path();
        assert_eq!(
            crate::crops::uncropped_note(plain.model(), &weights, photos),
            None
        );
        let on = DetectorOptions::default().with_faces(FaceMode::On);
        let detector = Detector::open(&weights, &on).expect("open");
        assert!(detector.scores_faces());
        assert!(
            detector
                .notes()
                .iter()
                .any(|n| n.contains("records no face crop")),
            "{:?}",
            detector.notes()
        );
    }

    #[test]
    fn videos_that_cannot_be_read_are_skipped_naming_them_not_errors() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let weights = tmp.path().join("m.safetensors");
        checkpoint(&weights, |_| (), None);
        let detector = Detector::open(&weights, &DetectorOptions::default()).expect("open");
        let bad = tmp.path().join("bad.mp4");
        std::fs::write(&bad, b"not a video").expect("write");
        let videos = [
            (bad.clone(), df_data::Label::Fake),
            (tmp.path().join("gone.mp4"), df_data::Label::Real),
        ];
        let scores = detector.score_videos(&videos);
        assert!(scores.probs.is_empty() && scores.targets.is_empty() && scores.reports.is_empty());
        assert_eq!(scores.skipped.len(), 2, "{:?}", scores.skipped);
        for (report, (path, _)) in scores.skipped.iter().zip(&videos) {
            assert_eq!(&report.path, path);
            let df_data::SkipReason::Video(why) = &report.reason else {
                panic!("{report:?}");
            };
            let name = path.file_name().expect("name").to_string_lossy();
            assert!(why.contains(name.as_ref()), "{why}");
        }
    }

    #[test]
    fn a_videos_line_counts_its_frames_and_adds_each_frames_only_when_asked() {
        let face = Face {
            bbox: [1.0, 2.0, 3.0, 4.0],
            probability: 0.5,
            p_fake: 0.75,
        };
        let v = VideoVerdict {
            p_fake: Some(0.75),
            label: Label::Fake,
            frames: vec![
                FrameVerdict {
                    index: 0,
                    p_fake: None,
                    faces: Some(vec![]),
                },
                FrameVerdict {
                    index: 1,
                    p_fake: Some(0.75),
                    faces: Some(vec![face]),
                },
            ],
            faces: true,
        };
        assert_eq!(v.frames_scored(), 1);
        let short = serde_json::to_value(v.report(Path::new("v.mp4"), false)).expect("json");
        assert_eq!(
            short,
            serde_json::json!({"path": "v.mp4", "p_fake": 0.75, "label": "fake", "frames": 2,
                               "frames_scored": 1})
        );
        let long = serde_json::to_value(v.report(Path::new("v.mp4"), true)).expect("json");
        assert_eq!(long["per_frame"], serde_json::json!([null, 0.75]));
        assert_eq!(
            long["frame_faces"],
            serde_json::json!([[], [{"box": [1.0, 2.0, 3.0, 4.0], "probability": 0.5, "p_fake": 0.75}]])
        );
        let whole = VideoVerdict { faces: false, ..v };
        let long = serde_json::to_value(whole.report(Path::new("v.mp4"), true)).expect("json");
        assert!(long.get("frame_faces").is_none(), "{long}");
    }
}
