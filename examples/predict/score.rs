//! The scoring core of the `predict` example, shared with the shared-data test suite
//! (`tests/shared_data/mesonet.rs` includes this file), so that what the test checks is
//! what the program runs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use deepfake::data::{image_to_tensor, rgb_to_tensor, ResizeFilter, Transform, Walker};
use deepfake::face::{crop_faces, CropConfig, FaceSelect, Mtcnn, MtcnnConfig};
use deepfake::models::keras::KerasImportOptions;
use deepfake::models::load::{load_weights, KerasLoadOptions, LoadedModel};
use deepfake::models::Polarity;
use deepfake::tch::{Device, Tensor};
use deepfake::train::{detector_logits_in, prepared_transform, Pass, Precision};

/// `"fake"` at p ≥ 0.5, `"real"` below, `none` without a score.
fn label(p: Option<f64>, none: &'static str) -> &'static str {
    match p {
        None => none,
        Some(p) if p >= 0.5 => "fake",
        Some(_) => "real",
    }
}

/// One scored video.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VideoPrediction {
    /// The video file.
    pub path: String,
    /// The mean p(fake) of the frames scored; `null` when none was (no face in any).
    pub p_fake: Option<f64>,
    /// `"fake"`, `"real"` or `"no face"`.
    pub label: &'static str,
    /// Frames sampled.
    pub frames: usize,
    /// Frames with a score (with faces: with a face).
    pub frames_scored: usize,
    /// Each sampled frame's score (`--per-frame`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_frame: Option<Vec<Option<f64>>>,
    /// With faces and `--per-frame`: each sampled frame's faces, largest first, their
    /// boxes in the video's own pixels (a frame larger than `df_data::MAX_FRAME_SIDE` is
    /// scaled down before its faces are found and cropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_faces: Option<Vec<Vec<FaceScore>>>,
}

/// One scored image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// The image file, lossily as UTF-8 (a name that is not UTF-8 shows U+FFFD where its
    /// bytes are not), as every message of the examples prints paths.
    pub path: String,
    /// p(fake) = sigmoid(logit).
    pub p_fake: f64,
    /// `"fake"` when `p_fake >= 0.5`, else `"real"`.
    pub label: &'static str,
}

/// What the command line asks of the input; each `None` leaves it to the weights (a
/// checkpoint's recorded preparation, a Keras head's size) or the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct InputRequest {
    /// The resize filter.
    pub resize: Option<ResizeFilter>,
    /// The centre crop.
    pub center_crop: Option<f32>,
    /// The size a Keras file was trained at, when its head does not tell.
    pub input_size: Option<[i64; 2]>,
    /// Score the faces found in each image (also when the checkpoint records face crops).
    pub faces: bool,
}

/// One face of a scored image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FaceScore {
    /// `[x1, y1, x2, y2]` in the image's pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// The detector's probability that it is a face.
    pub probability: f32,
    /// p(fake) of the face's crop.
    pub p_fake: f64,
}

/// An image scored by its faces: the image's `p_fake` is its most suspicious face's (an
/// image is fake if any face in it is); no face is a result, `"label": "no face"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FacePrediction {
    /// The image file.
    pub path: String,
    /// The largest p(fake) of its faces; `null` without a face.
    pub p_fake: Option<f64>,
    /// `"fake"`, `"real"` or `"no face"`.
    pub label: &'static str,
    /// Every face found, largest first.
    pub faces: Vec<FaceScore>,
}

/// A loaded model and the input transform its weights expect.
#[derive(Debug)]
pub struct Scorer {
    /// The model with its weights.
    pub loaded: LoadedModel,
    /// Decoding, resizing and preprocessing of the images.
    pub transform: Transform,
    /// What a user should read about the transform: a flag overriding the checkpoint's
    /// preparation, or a checkpoint that records none.
    pub notes: Vec<String>,
    /// The face detector and crop, when faces are scored.
    pub faces: Option<(Mtcnn, CropConfig)>,
    device: Device,
    precision: Precision,
}

impl Scorer {
    /// Loads `weights` (a `.safetensors` checkpoint or a Keras `.h5`) for `model`; the
    /// polarity applies to Keras files only (checkpoints store theirs); the request's
    /// `resize` and `center_crop`, when given, override what a checkpoint records of its
    /// training (`df_train::prepared_transform`); its `input_size` is the
    /// size a Keras file was trained at, when its head does not tell (see
    /// `df_models::load::infer_top`).
    ///
    /// # Errors
    /// Unknown model, unreadable or mismatched weights.
    pub fn open(
        model: Option<&str>,
        weights: &Path,
        polarity: Polarity,
        request: InputRequest,
        device: Device,
        precision: Precision,
    ) -> anyhow::Result<Self> {
        precision.check(device)?;
        let options = KerasLoadOptions {
            import: KerasImportOptions::default().with_polarity(polarity),
            top: None,
            input_size: request.input_size,
        };
        // The library's errors name the file and what is wrong with it.
        let loaded = load_weights(model, weights, device, &options)?;
        deepfake::train::check_input_memory(&loaded.input_spec(), 1)
            .with_context(|| format!("{}", weights.display()))?;
        let (transform, mut notes) =
            prepared_transform(&loaded, request.resize, request.center_crop)?;
        let record = loaded.preparation().and_then(|p| p.faces);
        let faces = if request.faces || record.is_some() {
            // Every face is scored, cropped as the training faces were (the record), else
            // with the crop's defaults.
            let crop = match record {
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
                        "--faces: the checkpoint records no face crop; faces are cropped with \
                         the defaults (256 px, margin 0.3, square)"
                            .into(),
                    );
                    CropConfig {
                        select: FaceSelect::All,
                        ..CropConfig::default()
                    }
                }
            };
            let weights = deepfake::face::default_weights_path()?;
            Some((Mtcnn::load(&weights, MtcnnConfig::default(), device)?, crop))
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
        })
    }

    /// Scores one image file.
    ///
    /// # Errors
    /// The file cannot be read or decoded (the message names it and says why).
    pub fn score(&self, path: &Path) -> anyhow::Result<Prediction> {
        let x = image_to_tensor(path, &self.transform)?.to_device(self.device);
        let p_fake = self.p_fake(&x)?[0];
        anyhow::ensure!(
            p_fake.is_finite(),
            "{}: the model's score is {p_fake}: its weights hold NaN or infinite values \
             (or a batch-norm variance below zero); the checkpoint is damaged or comes from \
             a diverged run",
            path.display()
        );
        Ok(Prediction {
            path: path.to_string_lossy().into_owned(),
            p_fake,
            label: if p_fake >= 0.5 { "fake" } else { "real" },
        })
    }

    /// Scores the faces of one image file (the scorer was opened with faces).
    ///
    /// # Errors
    /// The file cannot be read or decoded; the scorer has no detector.
    pub fn score_faces(&self, path: &Path) -> anyhow::Result<FacePrediction> {
        let image = deepfake::data::load_rgb(path)
            .map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
        let faces = self
            .faces_of(&image)
            .with_context(|| format!("{}", path.display()))?;
        let p_fake = faces.iter().map(|f| f.p_fake).reduce(f64::max);
        Ok(FacePrediction {
            path: path.to_string_lossy().into_owned(),
            p_fake,
            label: label(p_fake, "no face"),
            faces,
        })
    }

    /// Every face of a decoded picture, cropped as in training and scored.
    ///
    /// # Errors
    /// The scorer has no detector; a non-finite score.
    pub fn faces_of(&self, image: &image::RgbImage) -> anyhow::Result<Vec<FaceScore>> {
        let (mtcnn, crop) = self
            .faces
            .as_ref()
            .context("the scorer was opened without faces")?;
        let found = mtcnn.detect(image).context("detecting faces")?;
        let crops = crop_faces(image, &found, crop)?;
        let mut faces = Vec::new();
        if crops.is_empty() {
            return Ok(faces);
        }
        let x = Tensor::cat(
            &crops
                .iter()
                .map(|c| rgb_to_tensor(&c.image, &self.transform))
                .collect::<Result<Vec<_>, _>>()?,
            0,
        )
        .to_device(self.device);
        for (c, p_fake) in crops.iter().zip(self.p_fake(&x)?) {
            anyhow::ensure!(
                p_fake.is_finite(),
                "the model's score is {p_fake}: its weights hold NaN or infinite values"
            );
            faces.push(FaceScore {
                bbox: c.face.bbox,
                probability: c.face.probability,
                p_fake,
            });
        }
        Ok(faces)
    }

    /// Scores a video: its sampled frames, each by its most suspicious face (with faces)
    /// or whole; the video's `p_fake` is the mean over the frames that have a score (with
    /// faces: the frames where a face was found). Frames are read one at a time as ffmpeg
    /// streams them (`df_data::open_video`), none kept; faces' boxes are given in the
    /// video's own pixels.
    ///
    /// # Errors
    /// The video cannot be read (no ffmpeg, empty, damaged, no video stream: the message
    /// names it).
    pub fn score_video(
        &self,
        path: &Path,
        sampling: &deepfake::data::FrameSampling,
        per_frame: bool,
    ) -> anyhow::Result<VideoPrediction> {
        let mut scores = Vec::new();
        let mut frame_faces = Vec::new();
        for frame in deepfake::data::open_video(path, sampling)? {
            let frame = frame?;
            let p = if self.faces.is_some() {
                let mut faces = self
                    .faces_of(&frame.image)
                    .with_context(|| format!("{}", path.display()))?;
                // Found in the frame as read (scaled down when larger than the cap).
                for face in &mut faces {
                    for v in &mut face.bbox {
                        *v = (f64::from(*v) * frame.scale) as f32;
                    }
                }
                let p = faces.iter().map(|f| f.p_fake).reduce(f64::max);
                if per_frame {
                    frame_faces.push(faces);
                }
                p
            } else {
                let x = rgb_to_tensor(&frame.image, &self.transform)?.to_device(self.device);
                Some(self.p_fake(&x)?[0])
            };
            scores.push(p);
        }
        let scored: Vec<f64> = scores.iter().flatten().copied().collect();
        let p_fake = (!scored.is_empty()).then(|| scored.iter().sum::<f64>() / scored.len() as f64);
        Ok(VideoPrediction {
            path: path.to_string_lossy().into_owned(),
            p_fake,
            label: label(p_fake, "no face"),
            frames: scores.len(),
            frames_scored: scored.len(),
            per_frame: per_frame.then_some(scores),
            frame_faces: (per_frame && self.faces.is_some()).then_some(frame_faces),
        })
    }

    /// p(fake) of a batch of preprocessed inputs `[N, 3, H, W]`.
    ///
    /// # Errors
    /// The model does not output one logit per image.
    pub fn p_fake(&self, x: &Tensor) -> anyhow::Result<Vec<f64>> {
        // The library's one logits function: eval mode, one logit of "fake" per image.
        let logits = deepfake::tch::no_grad(|| {
            detector_logits_in(self.loaded.model.as_ref(), x, Pass::Eval, self.precision)
        })
        .context("(does the model have a binary top?)")?;
        let p = logits.sigmoid().to_device(Device::Cpu).view([-1]);
        Ok(Vec::<f32>::try_from(&p)?
            .into_iter()
            .map(f64::from)
            .collect())
    }
}

/// The image files named by `inputs`: files as given, directories searched recursively
/// for image extensions (sorted), each real directory read once and each file listed once
/// whatever links lead to it (`df_data::Walker`). Unreadable directories are returned as
/// failures; the files with image or video names that the walk left out (not a regular
/// file: a FIFO, a link to `/dev/zero`; a link to nothing) as skipped, with the reason.
pub fn expand_inputs(
    inputs: &[PathBuf],
) -> (
    Vec<PathBuf>,
    Vec<(PathBuf, String)>,
    Vec<deepfake::data::SkipReport>,
) {
    let mut walker = Walker::new(true);
    let mut files = Vec::new();
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let dirs: Vec<&Path> = inputs
        .iter()
        .filter(|p| p.is_dir())
        .map(PathBuf::as_path)
        .collect();
    let wanted =
        |p: &Path| deepfake::data::has_image_extension(p) || deepfake::data::has_video_extension(p);
    match walker.walk_all(&dirs) {
        Ok(walked) => {
            for w in walked {
                files.extend(w.files.into_iter().filter(|p| wanted(p)));
                // Another path to a file scored anyway is not worth a line.
                skipped.extend(w.skipped.into_iter().filter(|r| {
                    wanted(&r.path) && !matches!(r.reason, deepfake::data::SkipReason::Duplicate(_))
                }));
            }
        }
        Err(deepfake::data::Error::Io { path, source }) => {
            failures.push((path, source.to_string()))
        }
        Err(e) => failures.push((PathBuf::from("input folders"), e.to_string())),
    }
    for input in inputs {
        if input.is_dir() {
            continue;
        } else if !input.exists() || !walker.file(input).files.is_empty() {
            // A missing file is scored, so that its error names it; one given twice
            // (or also found in a directory) is scored once.
            files.push(input.clone());
        }
    }
    (files, failures, skipped)
}
