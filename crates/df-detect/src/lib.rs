//! # df-detect
//!
//! A deepfake detector ready to use: [`Detector`] opens a checkpoint (or a Keras file with
//! its model name and polarity) and scores a decoded picture, a photo or video file, or a
//! whole folder as a stream, as the `predict` program does; faces are found and cropped
//! through df-face as the checkpoint records of its training, videos read through df-data.
//! The results are typed and `serde::Serialize`: [`Verdict`] ([`ImageVerdict`] or
//! [`VideoVerdict`] with its [`FrameVerdict`]s), each [`Face`] with its box, the face
//! detector's probability and `p_fake`; a folder gives [`Scored`] items, the inputs left
//! out with their [`SkipReason`].
//!
//! Also here, what the `evaluate` and `prepare_faces` programs do beyond parsing options:
//! the video-level evaluation walk ([`videos`]) and the face-crop preparation with its
//! manifest, resume and name-clash checks ([`crops`]); the named sets and the table of the
//! cross-dataset and robustness protocols ([`protocol`]); Grad-CAM maps of what a score
//! rests on ([`Detector::explain_image`], [`mod@gradcam`]) and the most confident errors
//! of an evaluation with their maps ([`errors`]).
//!
//! ```no_run
//! # mod deepfake { pub mod detect { pub use df_detect::*; } }
//! use deepfake::detect::{Detector, DetectorOptions, Scored};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let detector = Detector::open("runs/lfw/model.safetensors", &DetectorOptions::default())?;
//! for item in detector.score_folder("photos")? {
//!     match item {
//!         Scored::Scored { path, verdict } => {
//!             println!("{}: {:?} {}", path.display(), verdict.p_fake(), verdict.label().as_str())
//!         }
//!         other => eprintln!("{}", serde_json::to_string(&other)?),
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod crops;
mod detector;
pub mod errors;
pub mod export;
pub mod gradcam;
mod inputs;
pub mod protocol;
pub mod videos;

pub use detector::{
    Detector, DetectorOptions, Face, FaceMode, FrameVerdict, ImageVerdict, Label, Scored, Verdict,
    VideoReport, VideoVerdict,
};
pub use df_data::{FrameSampling, SkipReason, SkipReport};
pub use df_models::Polarity;
pub use df_train::Precision;
pub use gradcam::{grad_cam, CamMap, ExplainedImage, GradCam, Overlay};
pub use inputs::{find_inputs, Inputs, Scores, INPUT_EXTENSIONS};

use std::path::PathBuf;

/// What can go wrong opening a detector or scoring with it; every message names the file
/// at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening the weights (unreadable, damaged, of another model).
    #[error(transparent)]
    Model(#[from] df_models::Error),
    /// The preparation or the precision asked for.
    #[error(transparent)]
    Train(#[from] df_train::Error),
    /// Reading a picture, a video or a folder.
    #[error(transparent)]
    Data(#[from] df_data::Error),
    /// The face detector or the crop.
    #[error(transparent)]
    Face(#[from] df_face::Error),
    /// Writing a file.
    #[error(transparent)]
    Io(#[from] df_io::Error),
    /// A tensor operation.
    #[error(transparent)]
    Tensor(#[from] tch::TchError),
    /// Computing metrics.
    #[error(transparent)]
    Metrics(#[from] df_metrics::Error),
    /// The face detector failed on a picture.
    #[error("detecting faces: {0}")]
    Detecting(#[source] df_face::Error),
    /// The model does not give one logit per picture.
    #[error("(does the model have a binary top?): {0}")]
    NotBinary(#[source] df_train::Error),
    /// A file and what is wrong with it.
    #[error("{}: {message}", path.display())]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An error while working on a file, naming it.
    #[error("{}: {source}", path.display())]
    In {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// A message that names what is at fault itself.
    #[error("{0}")]
    Message(String),
}

impl Error {
    /// This error, said to have happened on `path`.
    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        Error::In {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
