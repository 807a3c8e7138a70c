//! What a request's body is (from its bytes, not its name or content type), and the
//! pictures the detector scores from it.

use std::sync::Mutex;

use df_data::{FrameSampling, Transform};
use df_detect::Detector;
use df_face::{crop_faces, CropConfig, FaceSelect, Mtcnn, MtcnnConfig};
use image::RgbImage;
use tch::Tensor;

/// What the body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// A supported image (decoded by df-data).
    Image,
    /// A video, with the extension its temporary file gets (ffmpeg reads the content).
    Video(&'static str),
    /// Anything else, named.
    Other(String),
}

/// Names the content of `bytes` from its first bytes.
pub(crate) fn sniff(bytes: &[u8]) -> Content {
    use image::ImageFormat as F;
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if bytes.is_empty() {
        return Content::Other("an empty body".into());
    }
    match image::guess_format(bytes) {
        Ok(F::Jpeg | F::Png | F::Bmp | F::WebP) => return Content::Image,
        Ok(other) => {
            return Content::Other(format!(
                "a {} image, not a supported format (JPEG, PNG, BMP, WebP)",
                format!("{other:?}").to_uppercase()
            ))
        }
        Err(_) => {}
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let brand = &bytes[8..12];
        return Content::Video(if brand == b"qt  " { "mov" } else { "mp4" });
    }
    if starts(b"\x1a\x45\xdf\xa3") {
        return Content::Video("mkv");
    }
    if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"AVI " {
        return Content::Video("avi");
    }
    let what = if starts(b"%PDF") {
        "a PDF document"
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        "a ZIP archive"
    } else if starts(b"\x1f\x8b") {
        "gzip-compressed data"
    } else if starts(b"BZh") {
        "bzip2-compressed data"
    } else if starts(b"\xfd7zXZ\x00") {
        "xz-compressed data"
    } else if starts(b"7z\xbc\xaf\x27\x1c") {
        "a 7-Zip archive"
    } else if starts(b"\x89HDF\r\n\x1a\n") {
        "an HDF5 file"
    } else if starts(b"\x7fELF") {
        "an ELF executable"
    } else if starts(b"ID3") || starts(b"fLaC") || starts(b"OggS") {
        "audio"
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WAVE" {
        "a WAV audio file"
    } else if bytes.len() > 8 && bytes[8..].starts_with(b"{") && bytes.len() > 8 {
        "a safetensors file"
    } else if let Ok(text) = std::str::from_utf8(&bytes[..bytes.len().min(512)]) {
        let t = text.trim_start();
        if t.starts_with('<') {
            "HTML or XML text"
        } else if t.starts_with('{') || t.starts_with('[') {
            "JSON text"
        } else {
            "text"
        }
    } else {
        "binary data of no known image or video format"
    };
    Content::Other(what.to_string())
}

/// The face detector and the crop the checkpoint records, as df-detect uses them. The
/// detector is not `Sync`: one request at a time finds faces.
#[derive(Debug)]
pub(crate) struct FaceFinder {
    mtcnn: Mutex<Mtcnn>,
    crop: CropConfig,
}

impl FaceFinder {
    pub fn new(detector: &Detector, device: tch::Device) -> crate::Result<Self> {
        let weights = df_face::default_weights_path()?;
        let mtcnn = Mtcnn::load(&weights, MtcnnConfig::default(), device)?;
        // Cropped as the detector crops (the checkpoint's record, else the defaults).
        let crop = detector.face_crop().cloned().unwrap_or_else(|| CropConfig {
            select: FaceSelect::All,
            ..CropConfig::default()
        });
        Ok(Self {
            mtcnn: Mutex::new(mtcnn),
            crop,
        })
    }

    /// Each face's box and probability, with its crop.
    fn find(&self, image: &RgbImage) -> Result<Vec<([f32; 4], f32, RgbImage)>, String> {
        let found = {
            let mtcnn = self.mtcnn.lock().map_err(|_| "the face detector failed")?;
            mtcnn
                .detect(image)
                .map_err(|e| format!("detecting faces: {e}"))?
        };
        let crops = crop_faces(image, &found, &self.crop).map_err(|e| e.to_string())?;
        Ok(crops
            .into_iter()
            .map(|c| (c.face.bbox, c.face.probability, c.image))
            .collect())
    }
}

/// The pictures of one image (or video frame): the whole picture, or its faces.
#[derive(Debug)]
pub(crate) struct Pictures {
    /// `[N, 3, H, W]`; `None` when faces were looked for and none found.
    pub x: Option<Tensor>,
    /// With faces: each face's box (in the picture's pixels) and probability.
    pub faces: Option<Vec<([f32; 4], f32)>>,
}

impl Pictures {
    pub fn rows(&self) -> usize {
        self.x
            .as_ref()
            .and_then(|x| x.size().first().copied())
            .map_or(0, |n| n.max(0) as usize)
    }
}

/// The detector's inputs for `image`.
///
/// # Errors
/// A message saying why (a picture too small for the crop, the face detector).
pub(crate) fn pictures(
    image: &RgbImage,
    transform: &Transform,
    faces: Option<&FaceFinder>,
) -> Result<Pictures, String> {
    let tensor = |img: &RgbImage| df_data::rgb_to_tensor(img, transform).map_err(|e| e.to_string());
    match faces {
        None => Ok(Pictures {
            x: Some(tensor(image)?),
            faces: None,
        }),
        Some(finder) => {
            let found = finder.find(image)?;
            let boxes = found.iter().map(|(b, p, _)| (*b, *p)).collect();
            let x = if found.is_empty() {
                None
            } else {
                let rows = found
                    .iter()
                    .map(|(_, _, crop)| tensor(crop))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Tensor::f_cat(&rows, 0).map_err(|e| e.to_string())?)
            };
            Ok(Pictures {
                x,
                faces: Some(boxes),
            })
        }
    }
}

/// Why a video is refused before its frames are read: over the duration or frame limits.
pub(crate) fn video_limits(
    info: &df_data::VideoInfo,
    max_seconds: f64,
    max_frames: f64,
) -> Option<String> {
    if let Some(d) = info.duration {
        if d > max_seconds {
            return Some(format!(
                "the video lasts {d:.1} s, more than the limit of {max_seconds} s"
            ));
        }
        if let Some(rate) = info.frame_rate {
            let frames = d * rate;
            if frames > max_frames {
                return Some(format!(
                    "the video holds about {frames:.0} frames ({d:.1} s at {rate} fps), more \
                     than the limit of {max_frames}"
                ));
            }
        }
    }
    if u64::from(info.width) * u64::from(info.height) > df_data::MAX_PIXELS {
        return Some(format!(
            "the video's frames are {}x{} pixels, more than {}",
            info.width,
            info.height,
            df_data::MAX_PIXELS
        ));
    }
    None
}

/// The frame sampling of the service's detector options.
pub(crate) fn sampling(config: &crate::ServeConfig) -> FrameSampling {
    config.detector.video
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_named_from_its_bytes() {
        assert_eq!(sniff(b"\xff\xd8\xff\xe0rest"), Content::Image);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Content::Image);
        assert_eq!(
            sniff(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00"),
            Content::Video("mp4")
        );
        assert_eq!(sniff(b"\x1a\x45\xdf\xa3\x01"), Content::Video("mkv"));
        for (bytes, says) in [
            (&b"%PDF-1.7 ..."[..], "PDF"),
            (b"PK\x03\x04\x14\x00", "ZIP"),
            (b"GIF89a\x01\x00", "GIF"),
            (b"\x89HDF\r\n\x1a\n\x00", "HDF5"),
            (b"hello, world", "text"),
            (b"", "empty"),
        ] {
            let Content::Other(what) = sniff(bytes) else {
                panic!("{bytes:?}");
            };
            assert!(what.contains(says), "{what}");
        }
    }
}
