//! df-face: finding faces in photos and video frames, so that a detector scores the face,
//! not the whole picture.
//!
//! [`Mtcnn`] is the multi-task cascaded detector of Zhang et al. (2016) as
//! facenet-pytorch 2.6.0 runs it (its `MTCNN.detect`): an image pyramid through P-Net,
//! candidate boxes refined by R-Net and O-Net, bounding-box regression, non-maximum
//! suppression, five landmarks. Its weights are facenet-pytorch's (MIT), converted once to
//! safetensors by `scripts/setup.sh` ([`default_weights_path`]); nothing downloads at
//! run time. Boxes and probabilities agree with facenet-pytorch's on the same pixels
//! (`tests/shared_data/faces.rs`).
//!
//! ```no_run
//! # mod deepfake { pub mod face { pub use df_face::*; } pub use image; pub use tch; }
//! use deepfake::face::{Mtcnn, MtcnnConfig};
//! # fn main() -> Result<(), deepfake::face::Error> {
//! let detector = Mtcnn::load(&deepfake::face::default_weights_path()?, MtcnnConfig::default(), deepfake::tch::Device::Cpu)?;
//! let image = deepfake::image::open("photo.jpg").expect("a photo").to_rgb8();
//! for face in detector.detect(&image)? {
//!     println!("{:?} p={:.3}", face.bbox, face.probability);
//! }
//! # Ok(()) }
//! ```

pub mod crop;
mod mtcnn;
mod nms;

use std::path::PathBuf;

pub use crop::{crop_faces, select_faces, CropConfig, FaceCrop, FaceSelect};
pub use mtcnn::{Face, Mtcnn, MtcnnConfig};

/// What can go wrong finding faces.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The detector's weights could not be read or do not fit.
    #[error("MTCNN weights {path}: {reason}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An option out of range.
    #[error("option {option}: {reason}")]
    Config {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// libtorch refused an operation.
    #[error("face detection: {0}")]
    Torch(#[from] tch::TchError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The weights `scripts/setup.sh` converts from facenet-pytorch 2.6.0:
/// `$DF_MTCNN_WEIGHTS` when set, else `mtcnn-facenet-pytorch-2.6.0.safetensors` in the
/// project's cache (`$DEEPFAKE_CACHE`, else `$XDG_CACHE_HOME/deepfake`, else
/// `~/.cache/deepfake`).
///
/// # Errors
/// [`Error::Weights`] when the file is not there, saying how to make it.
pub fn default_weights_path() -> Result<PathBuf> {
    let path = match std::env::var_os("DF_MTCNN_WEIGHTS") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("DEEPFAKE_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("deepfake"))
                })
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/deepfake"))
                })
                .unwrap_or_else(|| PathBuf::from(".cache/deepfake"));
            cache.join("faces").join(WEIGHTS_FILE)
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Weights {
            path,
            reason: "not found: `scripts/setup.sh` (or `make setup`) converts them from \
                     facenet-pytorch 2.6.0; or point DF_MTCNN_WEIGHTS at the file"
                .into(),
        })
    }
}

/// The file name of the converted weights.
pub const WEIGHTS_FILE: &str = "mtcnn-facenet-pytorch-2.6.0.safetensors";
