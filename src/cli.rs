//! The command-line options the example programs share (`predict`, `evaluate`,
//! `prepare_faces`, `train`, `compare`), as clap option groups to `#[command(flatten)]`,
//! and their parsers: one definition each, so that the programs spell and check them alike.

use std::path::PathBuf;

use crate::data::{FrameSampling, ResizeFilter};
use crate::models::Polarity;
use crate::train::PrecisionChoice;

/// An option's value that cannot be used, naming the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError(pub String);

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionError {}

/// `--precision`'s parser: `auto`, `f32`, `bf16` or `f16`.
///
/// ```
/// use deepfake::train::{Precision, PrecisionChoice};
/// assert_eq!(deepfake::cli::parse_precision("bf16"), Ok(PrecisionChoice::Fixed(Precision::Bf16)));
/// assert!(deepfake::cli::parse_precision("f64").is_err());
/// ```
///
/// # Errors
/// Any other word, said as `PrecisionChoice::parse` says it.
pub fn parse_precision(s: &str) -> Result<PrecisionChoice, String> {
    PrecisionChoice::parse(s).map_err(|e| e.to_string())
}

/// `--augment`'s parser: presets and items ([`crate::data::AUGMENT_SPEC_HELP`]), e.g.
/// `study`, `forensic,jpeg:30-95`, `flip,rescale:0.5-1@0.5,contrast:0.8-1.2`.
///
/// ```
/// use deepfake::data::Augment;
/// assert_eq!(deepfake::cli::parse_augment("forensic"), Ok(Augment::forensic()));
/// assert!(deepfake::cli::parse_augment("study,jpeg:0-95").is_err());
/// ```
///
/// # Errors
/// The spec's fault, naming the item.
pub fn parse_augment(s: &str) -> Result<crate::data::Augment, String> {
    crate::data::Augment::from_spec(s).map_err(|e| e.to_string())
}

/// `--pseudo-fakes`' parser: the name of a pseudo-fake method (`sbi`: self-blended images).
///
/// ```
/// assert!(deepfake::cli::parse_pseudo_fakes("sbi").is_ok());
/// let e = deepfake::cli::parse_pseudo_fakes("swap").unwrap_err();
/// assert!(e.contains("swap") && e.contains("sbi"), "{e}");
/// ```
///
/// # Errors
/// An unknown name, listing the known ones.
pub fn parse_pseudo_fakes(s: &str) -> Result<crate::data::PseudoFakes, String> {
    crate::data::PseudoFakes::parse(s).map_err(|e| e.to_string())
}

/// `--resize`: the filter images are resized with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResizeArg {
    /// Nearest neighbour (Keras' `flow_from_directory` default).
    Nearest,
    /// Bilinear, as Pillow.
    Bilinear,
    /// Area averaging, as Pillow's box filter.
    Area,
}

impl From<ResizeArg> for ResizeFilter {
    fn from(r: ResizeArg) -> Self {
        match r {
            ResizeArg::Nearest => ResizeFilter::Nearest,
            ResizeArg::Bilinear => ResizeFilter::Bilinear,
            ResizeArg::Area => ResizeFilter::Area,
        }
    }
}

/// `--polarity`: what a Keras file's output scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolarityArg {
    /// p(fake).
    Fake,
    /// p(real) (Keras' alphabetical `fake`/`real` folders; the MesoNet authors' files).
    Real,
}

impl From<PolarityArg> for Polarity {
    fn from(p: PolarityArg) -> Self {
        match p {
            PolarityArg::Fake => Polarity::Fake,
            PolarityArg::Real => Polarity::Real,
        }
    }
}

/// How frames are taken from a video.
#[derive(Debug, Clone, clap::Args)]
pub struct VideoArgs {
    /// Videos: frames read per second, from the start.
    #[arg(long, default_value_t = 1.0)]
    pub fps: f64,
    /// Videos: at most this many frames of each.
    #[arg(long, default_value_t = 32)]
    pub max_frames: usize,
    /// Videos: spread --max-frames frames evenly over the whole video instead of --fps
    /// frames a second from its start.
    #[arg(long)]
    pub evenly: bool,
}

impl VideoArgs {
    /// The sampling, checked before any work.
    ///
    /// # Errors
    /// A rate or a maximum that is not positive, naming the options.
    pub fn sampling(&self) -> Result<FrameSampling, OptionError> {
        if !(self.fps.is_finite() && self.fps > 0.0 && self.max_frames > 0) {
            return Err(OptionError(format!(
                "options --fps and --max-frames: both must be positive (got {} and {})",
                self.fps, self.max_frames
            )));
        }
        Ok(FrameSampling {
            per_second: self.fps,
            max_frames: self.max_frames,
            evenly: self.evenly,
            // Larger frames are scaled down by ffmpeg (df_data::MAX_FRAME_SIDE).
            ..FrameSampling::default()
        })
    }
}

/// The detector's options `predict` and `evaluate` share: the weights and how its inputs
/// are prepared and scored.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectorArgs {
    /// Registry name of the model (`meso4`, `efficientnet_b0` ...; see the `summary`
    /// example). Optional with a `.safetensors` checkpoint.
    #[arg(long)]
    pub model: Option<String>,
    /// Weights: a `.safetensors` checkpoint or a Keras `.h5` file.
    #[arg(long)]
    pub weights: PathBuf,
    /// Resize filter (default: the one the checkpoint was trained with, else nearest).
    #[arg(long, value_enum)]
    pub resize: Option<ResizeArg>,
    /// Keep the central fraction of each image side before resizing (e.g. 0.512: the
    /// central 128×128 of a 250×250 face photo; default: the checkpoint's crop, else the
    /// whole image; 1 keeps the whole image).
    #[arg(long)]
    pub center_crop: Option<f32>,
    /// What a Keras file's output scores (ignored for checkpoints).
    #[arg(long, value_enum, default_value = "real")]
    pub polarity: PolarityArg,
    /// Compute precision of the forward passes: f32, bf16 (autocast, CPU and CUDA), f16
    /// (autocast with loss scaling in training; meant for CUDA), or auto: bf16 where the
    /// hardware computes it natively (a CPU with avx512_bf16 or amx_bf16, a GPU of compute
    /// capability 8.0 or more), else f32; the choice is printed on stderr at start.
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub precision: PrecisionChoice,
    /// Detect the faces of each image (df-face's MTCNN) and score each face, the image's
    /// `p_fake` being its most suspicious face's ("no face" when none). On by default for
    /// a checkpoint trained on `prepare_faces` crops, which records how they were cropped.
    #[arg(long)]
    pub faces: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub video: VideoArgs,
}

impl DetectorArgs {
    /// The detector's options on `device` at `precision` (resolved from `--precision`).
    ///
    /// # Errors
    /// The video sampling options ([`VideoArgs::sampling`]).
    pub fn options(
        &self,
        device: tch::Device,
        precision: crate::train::Precision,
    ) -> Result<crate::detect::DetectorOptions, OptionError> {
        Ok(crate::detect::DetectorOptions {
            device,
            precision,
            faces: if self.faces {
                crate::detect::FaceMode::On
            } else {
                crate::detect::FaceMode::Auto
            },
            resize: self.resize.map(ResizeFilter::from),
            center_crop: self.center_crop,
            input_size: None,
            video: self.video.sampling()?,
        })
    }

    /// The model these options name for scoring image folders, with the evaluation
    /// loader's settings (its transform: the checkpoint's preparation unless `--resize` or
    /// `--center-crop` says otherwise, each override said as a `note:`); a `note:` for
    /// each of `folders` that a face-crop model would score as crops without their having
    /// been made by `prepare_faces`.
    ///
    /// # Errors
    /// Loading the weights (naming them); an impossible preparation.
    pub fn load_for_folders(
        &self,
        device: tch::Device,
        batch_size: usize,
        workers: Option<usize>,
        folders: &[&std::path::Path],
    ) -> Result<
        (crate::models::LoadedModel, crate::data::LoaderConfig),
        Box<dyn std::error::Error + Send + Sync>,
    > {
        let keras =
            crate::models::load::KerasLoadOptions::default().with_polarity(self.polarity.into());
        let loaded =
            crate::models::load::load_weights(self.model.as_deref(), &self.weights, device, &keras)
                .map_err(|e| {
                    format!(
                        "loading {}: {}",
                        self.weights.display(),
                        crate::error_text(&e)
                    )
                })?;
        let resize = self.resize.map(ResizeFilter::from);
        let (transform, notes) =
            crate::train::prepared_transform(&loaded, resize, self.center_crop)?;
        notes.iter().for_each(|n| crate::note(n));
        for folder in folders {
            if let Some(note) = crate::detect::crops::uncropped_note(&loaded, &self.weights, folder)
            {
                crate::note(&note);
            }
        }
        let mut config = crate::data::LoaderConfig::eval(transform, batch_size);
        if let Some(w) = workers {
            config = config.with_workers(w);
        }
        Ok((loaded, config))
    }

    /// Opens the detector these options name (`--weights`, `--model`, `--polarity`).
    ///
    /// # Errors
    /// As [`crate::Detector::open_weights`].
    pub fn open(
        &self,
        options: &crate::detect::DetectorOptions,
    ) -> crate::detect::Result<crate::Detector> {
        crate::Detector::open_weights(
            self.model.as_deref(),
            &self.weights,
            self.polarity.into(),
            options,
        )
    }
}

/// Refuses an `--out` inside one of `folders` (canonical paths: `x/../data/out` and links
/// count): what a program writes there would be read as data by the next run on it.
///
/// # Errors
/// Naming `--out` and the folder.
pub fn check_out_outside<'a>(
    out: &std::path::Path,
    folders: impl IntoIterator<Item = &'a std::path::Path>,
) -> Result<(), OptionError> {
    for folder in folders {
        let inside = crate::io::is_inside(out, folder)
            .map_err(|e| OptionError(format!("option --out: {}: {e}", out.display())))?;
        if inside {
            return Err(OptionError(format!(
                "option --out: {} is inside --data {} (the plots written there would be read \
                 as images): choose a folder outside it",
                out.display(),
                folder.display()
            )));
        }
    }
    Ok(())
}

/// Checks a program's output folder `out` before any work and records the files
/// `program` will write there (`outputs`): a folder holding a training run (or another
/// program's files) needs `overwrite` (`--overwrite`); a file at one of those names that no
/// deepfake program recorded writing is never replaced (`df_io::owned`).
///
/// # Errors
/// `out` is a file, or holds what the program would replace without `overwrite`; the
/// ownership record cannot be read or written. Each names `--out` and the folder.
pub fn claim_out(
    out: &std::path::Path,
    program: &str,
    outputs: &[&str],
    overwrite: bool,
) -> Result<(), OptionError> {
    if out.exists() && !out.is_dir() {
        return Err(OptionError(format!(
            "--out {}: a file, not a folder; name a folder for the evaluation's files",
            out.display()
        )));
    }
    let text = |e: crate::io::Error| OptionError(crate::error_text(&e));
    let owned = crate::io::owned::Owned::open(out).map_err(text)?;
    let run = crate::train::run_dir::run_files(out);
    let others: Vec<&str> = owned.programs().filter(|p| *p != program).collect();
    if !overwrite && (!run.is_empty() || !others.is_empty()) {
        let what = run.first().map_or_else(
            || format!("files written by {}", others.join(", ")),
            |f| format!("a training run ({})", f.display()),
        );
        return Err(OptionError(format!(
            "--out {} holds {what}: evaluating into it would replace its metrics and plots; \
             give --overwrite to replace them, or choose another --out",
            out.display()
        )));
    }
    crate::io::owned::Owned::claim(out, program, outputs).map_err(text)?;
    Ok(())
}
