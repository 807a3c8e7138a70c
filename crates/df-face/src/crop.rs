//! Face crops: one code path from a detected face to the square picture a detector sees,
//! used when face folders are made for training and when photos and frames are scored,
//! so that the two cannot drift apart.
//!
//! A crop is the face's box grown by `margin` (a fraction of its size, on every side in
//! total: 0.3 makes a 100-px box a 130-px crop), made square about the box's centre
//! (`square`, the longer side), optionally turned so that the eyes lie on a horizontal
//! line (`align`, about the box's centre), and resampled bilinearly to `size`×`size`;
//! what falls outside the picture is black.

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::{Error, Face, Result};

/// Which faces of a picture are cropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaceSelect {
    /// The largest face (by box area), the picture's subject.
    #[default]
    Largest,
    /// Every face, largest first.
    All,
}

/// How faces are cropped (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropConfig {
    /// Side of the crop in pixels (256, MesoNet's input).
    pub size: u32,
    /// Growth of the box, as a fraction of its side (0.3).
    pub margin: f32,
    /// Square about the centre, on the box's longer side (true); else the box's own
    /// proportions, stretched to the square output.
    pub square: bool,
    /// Faces whose box's longer side is smaller, in pixels, are left out (0: none).
    pub min_face_size: f32,
    /// Which faces.
    pub select: FaceSelect,
    /// Turn the crop so that the eyes are level.
    pub align: bool,
}

impl Default for CropConfig {
    fn default() -> Self {
        Self {
            size: 256,
            margin: 0.3,
            square: true,
            min_face_size: 0.0,
            select: FaceSelect::Largest,
            align: false,
        }
    }
}

impl CropConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |option, reason: String| Err(Error::Config { option, reason });
        if !(1..=4096).contains(&self.size) {
            return bad("crop size", format!("{} px: 1 to 4096", self.size));
        }
        if !(self.margin.is_finite() && (0.0..=4.0).contains(&self.margin)) {
            return bad(
                "margin",
                format!("{}: a fraction of the box, 0 to 4", self.margin),
            );
        }
        if !(self.min_face_size.is_finite() && self.min_face_size >= 0.0) {
            return bad("min_face_size", format!("{} px", self.min_face_size));
        }
        Ok(())
    }
}

/// A face and its crop.
#[derive(Debug, Clone)]
pub struct FaceCrop {
    /// The face, as detected.
    pub face: Face,
    /// The crop, `size`×`size`.
    pub image: RgbImage,
}

/// The faces `config` selects (largest first; `faces` in any order).
pub fn select_faces(faces: &[Face], config: &CropConfig) -> Vec<Face> {
    let mut kept: Vec<Face> = faces
        .iter()
        .copied()
        .filter(|f| {
            let side = (f.bbox[2] - f.bbox[0]).max(f.bbox[3] - f.bbox[1]);
            side >= config.min_face_size
        })
        .collect();
    kept.sort_by(|a, b| b.area().total_cmp(&a.area()));
    if config.select == FaceSelect::Largest {
        kept.truncate(1);
    }
    kept
}

/// The affine map (libtorch's `affine_grid` convention: output and input coordinates
/// normalised to [-1, 1], pixel edges at ±1) from the crop to the picture of `w`×`h`.
fn crop_theta(face: &Face, config: &CropConfig, w: f32, h: f32) -> [f32; 6] {
    let b = face.bbox;
    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    let grow = 1.0 + config.margin;
    let (bw, bh) = ((b[2] - b[0]).max(1.0), (b[3] - b[1]).max(1.0));
    let (hx, hy) = if config.square {
        let s = bw.max(bh) * grow / 2.0;
        (s, s)
    } else {
        (bw * grow / 2.0, bh * grow / 2.0)
    };
    let angle = if config.align {
        let [l, r] = [face.landmarks[0], face.landmarks[1]];
        (r[1] - l[1]).atan2(r[0] - l[0])
    } else {
        0.0
    };
    let (sin, cos) = angle.sin_cos();
    // Picture pixel (continuous, pixel i covering [i, i + 1)) of crop point (xo, yo):
    // c + R(angle)·(xo·hx, yo·hy); then normalised by the picture's size.
    [
        2.0 * cos * hx / w,
        -2.0 * sin * hy / w,
        2.0 * cx / w - 1.0,
        2.0 * sin * hx / h,
        2.0 * cos * hy / h,
        2.0 * cy / h - 1.0,
    ]
}

/// The crops of the faces `config` selects from `faces`, found in `image`.
///
/// The faces usually come from [`crate::Mtcnn::detect`]; here one is given by hand:
///
/// ```
/// # mod deepfake { pub mod face { pub use df_face::*; } pub use image; }
/// use deepfake::face::{crop_faces, CropConfig, Face};
///
/// # fn main() -> Result<(), deepfake::face::Error> {
/// let photo = deepfake::image::RgbImage::from_pixel(200, 150, deepfake::image::Rgb([90, 60, 40]));
/// let face = Face {
///     bbox: [60.0, 30.0, 140.0, 130.0], // x1, y1, x2, y2 in pixels
///     probability: 0.99,
///     landmarks: [[85.0, 65.0], [115.0, 65.0], [100.0, 85.0], [88.0, 108.0], [112.0, 108.0]],
/// };
/// let config = CropConfig { size: 128, margin: 0.2, ..CropConfig::default() };
/// let crops = crop_faces(&photo, &[face], &config)?;
/// assert_eq!(crops.len(), 1);
/// assert_eq!(crops[0].image.dimensions(), (128, 128));
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Config`] for invalid settings; [`Error::Torch`].
pub fn crop_faces(image: &RgbImage, faces: &[Face], config: &CropConfig) -> Result<Vec<FaceCrop>> {
    config.validate()?;
    let faces = select_faces(faces, config);
    if faces.is_empty() {
        return Ok(Vec::new());
    }
    let (w, h) = image.dimensions();
    let picture = Tensor::from_slice(image.as_raw())
        .view([1, i64::from(h), i64::from(w), 3])
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float);
    let n = faces.len() as i64;
    let thetas: Vec<f32> = faces
        .iter()
        .flat_map(|f| crop_theta(f, config, w as f32, h as f32))
        .collect();
    let theta = Tensor::from_slice(&thetas).view([n, 2, 3]);
    let side = i64::from(config.size);
    let grid = Tensor::f_affine_grid_generator(&theta, [n, 3, side, side], false)?;
    // Bilinear, zeros outside, pixel edges at ±1 (align_corners = false).
    let crops = picture
        .expand([n, 3, i64::from(h), i64::from(w)], false)
        .f_grid_sampler(&grid, 0, 0, false)?
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous()
        .to_device(Device::Cpu);
    let bytes = Vec::<u8>::try_from(crops.view([-1]))?;
    let per = (side * side * 3) as usize;
    faces
        .into_iter()
        .zip(bytes.chunks_exact(per))
        .map(|(face, pixels)| {
            let image =
                RgbImage::from_raw(config.size, config.size, pixels.to_vec()).ok_or_else(|| {
                    Error::Config {
                        option: "crop size",
                        reason: format!(
                            "{} bytes for a {s}×{s} crop",
                            pixels.len(),
                            s = config.size
                        ),
                    }
                })?;
            Ok(FaceCrop { face, image })
        })
        .collect()
}
