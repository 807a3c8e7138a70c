//! Seeded data augmentation: the Keras `ImageDataGenerator` set (flips, rotation,
//! shifts, zoom, shear, brightness) as one affine warp, plus forensic augmentations
//! (random crop, Gaussian blur, JPEG re-compression, Gaussian noise).
//!
//! Everything random is drawn from an RNG the caller passes; the loader derives one per
//! sample from `(seed, epoch, index)` (see [`sample_rng`]), so a batch's content does
//! not depend on which worker thread made it.

use image::{Rgb32FImage, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::decode::decode_rgb;
use crate::error::{Error, Result};

/// The RNG of one sample in one epoch: ChaCha8 keyed by `(seed, epoch, index)` and a
/// domain tag, so streams of different samples, epochs and seeds are independent and
/// reproducible in any order.
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> ChaCha8Rng {
    keyed_rng(seed, epoch, index, 0x6175_676d_656e_7421) // "augment!"
}

pub(crate) fn keyed_rng(seed: u64, epoch: u64, index: u64, tag: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&epoch.to_le_bytes());
    key[16..24].copy_from_slice(&index.to_le_bytes());
    key[24..].copy_from_slice(&tag.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// A random crop, taken from the decoded image before it is resized to the target size
/// (so the model sees a zoomed-in region at full resolution).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandomCrop {
    /// Smallest crop side as a fraction of the image side, in (0, 1]; the fraction is
    /// drawn uniformly in `[min_scale, 1]` and applies to both sides (aspect kept).
    pub min_scale: f32,
    /// Probability of cropping a given sample.
    pub probability: f32,
}

/// JPEG re-compression at a random quality (`image`'s baseline JPEG encoder).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JpegAugment {
    /// Inclusive quality range, 1–100.
    pub quality: [u8; 2],
    /// Probability of re-compressing a given sample.
    pub probability: f32,
}

/// Gaussian blur with a random standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlurAugment {
    /// Range of the standard deviation, in pixels of the target image.
    pub sigma: [f32; 2],
    /// Probability of blurring a given sample.
    pub probability: f32,
}

/// Additive Gaussian noise with a random standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseAugment {
    /// Range of the standard deviation, in 0–255 pixel units.
    pub std: [f32; 2],
    /// Probability of adding noise to a given sample.
    pub probability: f32,
}

/// Downscaling then upscaling back (bilinear, Pillow-exact both ways): the detail a
/// smaller source or a resized upload loses, whatever the class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RescaleAugment {
    /// Range of the downscale factor, in (0, 1] (0.5: half the side, then back).
    pub scale: [f32; 2],
    /// Probability of rescaling a given sample.
    pub probability: f32,
}

/// Colour jitter: contrast and saturation factors as Pillow's `ImageEnhance.Contrast`
/// and `ImageEnhance.Color` apply them (1 = unchanged; brightness has its own
/// [`Augment::brightness_range`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColorJitter {
    /// Range of the contrast factor (0: flat grey at the image's mean).
    pub contrast: [f32; 2],
    /// Range of the saturation factor (0: greyscale).
    pub saturation: [f32; 2],
    /// Probability of jittering a given sample.
    pub probability: f32,
}

/// The augmentation configuration. [`Default`] is no augmentation.
///
/// The first group mirrors Keras' `ImageDataGenerator` arguments of the same names
/// (`rotation_range` in degrees, shifts as fractions of the side, `zoom_range` as
/// `[lower, upper]` factors, `shear_range` in degrees, `brightness_range` as factors);
/// they form one affine warp with bilinear interpolation and Keras' default
/// `fill_mode="nearest"`. One deliberate difference: the warp is centred on the true
/// image centre `((w−1)/2, (h−1)/2)` (Keras uses `w/2 + 0.5`, half a pixel off), so a
/// rotation by 90° of a square image is an exact `rot90`.
///
/// Order of application: random crop (on the decoded image) → resize to the target →
/// affine warp → flips → brightness → colour jitter → rescale → blur → JPEG → noise.
///
/// Every augmentation applies to real and fake images alike: the parameters are drawn
/// from the sample's RNG ([`sample_rng`]), never from its label. `--augment` specs
/// ([`Augment::from_spec`]) build one from presets and items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Augment {
    /// Flip left-right with probability 1/2.
    pub horizontal_flip: bool,
    /// Flip top-bottom with probability 1/2.
    pub vertical_flip: bool,
    /// Rotation angle drawn in `[-rotation_range, rotation_range]` degrees.
    pub rotation_range: f32,
    /// Horizontal shift drawn in `[-r, r]` × width.
    pub width_shift_range: f32,
    /// Vertical shift drawn in `[-r, r]` × height.
    pub height_shift_range: f32,
    /// Zoom factors (x and y drawn independently, as Keras does) in `[lower, upper]`;
    /// values above 1 zoom out. `[1, 1]` = none.
    pub zoom_range: [f32; 2],
    /// Shear angle drawn in `[-shear_range, shear_range]` degrees.
    pub shear_range: f32,
    /// Brightness factor drawn in `[lower, upper]`, multiplying pixel values (clamped
    /// to 0–255, like Pillow's `ImageEnhance.Brightness` that Keras uses).
    pub brightness_range: Option<[f32; 2]>,
    /// A random crop before resizing.
    pub random_crop: Option<RandomCrop>,
    /// Gaussian blur.
    pub blur: Option<BlurAugment>,
    /// JPEG re-compression.
    pub jpeg: Option<JpegAugment>,
    /// Gaussian noise.
    pub noise: Option<NoiseAugment>,
    /// Downscale then upscale back. (Left out of the JSON when off, as are the colour
    /// jitter's settings: a configuration written before they existed reads and compares
    /// the same.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescale: Option<RescaleAugment>,
    /// Contrast and saturation jitter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_jitter: Option<ColorJitter>,
}

impl Default for Augment {
    fn default() -> Self {
        Augment::none()
    }
}

impl Augment {
    /// No augmentation.
    pub fn none() -> Self {
        Augment {
            horizontal_flip: false,
            vertical_flip: false,
            rotation_range: 0.0,
            width_shift_range: 0.0,
            height_shift_range: 0.0,
            zoom_range: [1.0, 1.0],
            shear_range: 0.0,
            brightness_range: None,
            random_crop: None,
            blur: None,
            jpeg: None,
            noise: None,
            rescale: None,
            color_jitter: None,
        }
    }

    /// The `ImageDataGenerator` set of the study: horizontal flip, rotation ±10°,
    /// shifts ±10 %, zoom 0.9–1.1, shear ±5°, brightness 0.8–1.2.
    pub fn study() -> Self {
        Augment {
            horizontal_flip: true,
            rotation_range: 10.0,
            width_shift_range: 0.1,
            height_shift_range: 0.1,
            zoom_range: [0.9, 1.1],
            shear_range: 5.0,
            brightness_range: Some([0.8, 1.2]),
            ..Augment::none()
        }
    }

    /// [`Augment::study`] plus the forensic set: random crop (≥ 80 %, p = 0.5), blur
    /// (σ 0.2–1.2, p = 0.2), JPEG re-compression (quality 60–95, p = 0.5), noise
    /// (σ 0–4, p = 0.2).
    pub fn forensic() -> Self {
        Augment {
            random_crop: Some(RandomCrop {
                min_scale: 0.8,
                probability: 0.5,
            }),
            blur: Some(BlurAugment {
                sigma: [0.2, 1.2],
                probability: 0.2,
            }),
            jpeg: Some(JpegAugment {
                quality: [60, 95],
                probability: 0.5,
            }),
            noise: Some(NoiseAugment {
                std: [0.0, 4.0],
                probability: 0.2,
            }),
            ..Augment::study()
        }
    }

    /// Whether this configuration never changes an image.
    pub fn is_none(&self) -> bool {
        *self == Augment::none()
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first option out of its domain.
    pub fn validate(&self) -> Result<()> {
        let nonneg = |name: &'static str, v: f32| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::config(
                    name,
                    format!("must be finite and >= 0, got {v}"),
                ))
            }
        };
        let prob = |name: &'static str, p: f32| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(Error::config(name, format!("must be in [0, 1], got {p}")))
            }
        };
        let range = |name: &'static str, r: [f32; 2], min: f32| {
            if r.iter().all(|v| v.is_finite() && *v >= min) && r[0] <= r[1] {
                Ok(())
            } else {
                Err(Error::config(
                    name,
                    format!("must be [lower, upper] with {min} <= lower <= upper, got {r:?}"),
                ))
            }
        };
        nonneg("augment.rotation_range", self.rotation_range)?;
        nonneg("augment.width_shift_range", self.width_shift_range)?;
        nonneg("augment.height_shift_range", self.height_shift_range)?;
        nonneg("augment.shear_range", self.shear_range)?;
        if self.shear_range >= 90.0 {
            return Err(Error::config(
                "augment.shear_range",
                "must be below 90 degrees",
            ));
        }
        range("augment.zoom_range", self.zoom_range, f32::MIN_POSITIVE)?;
        if let Some(b) = self.brightness_range {
            range("augment.brightness_range", b, 0.0)?;
        }
        if let Some(c) = self.random_crop {
            if !(c.min_scale > 0.0 && c.min_scale <= 1.0) {
                return Err(Error::config(
                    "augment.random_crop.min_scale",
                    format!("must be in (0, 1], got {}", c.min_scale),
                ));
            }
            prob("augment.random_crop.probability", c.probability)?;
        }
        if let Some(b) = self.blur {
            range("augment.blur.sigma", b.sigma, 0.0)?;
            prob("augment.blur.probability", b.probability)?;
        }
        if let Some(j) = self.jpeg {
            if !(1..=100).contains(&j.quality[0])
                || j.quality[1] > 100
                || j.quality[0] > j.quality[1]
            {
                return Err(Error::config(
                    "augment.jpeg.quality",
                    format!("must be [lower, upper] within 1..=100, got {:?}", j.quality),
                ));
            }
            prob("augment.jpeg.probability", j.probability)?;
        }
        if let Some(n) = self.noise {
            range("augment.noise.std", n.std, 0.0)?;
            prob("augment.noise.probability", n.probability)?;
        }
        if let Some(r) = self.rescale {
            if !(r.scale[0] > 0.0 && r.scale[0] <= r.scale[1] && r.scale[1] <= 1.0) {
                return Err(Error::config(
                    "augment.rescale.scale",
                    format!(
                        "must be [lower, upper] with 0 < lower <= upper <= 1, got {:?}",
                        r.scale
                    ),
                ));
            }
            prob("augment.rescale.probability", r.probability)?;
        }
        if let Some(c) = self.color_jitter {
            range("augment.color_jitter.contrast", c.contrast, 0.0)?;
            range("augment.color_jitter.saturation", c.saturation, 0.0)?;
            prob("augment.color_jitter.probability", c.probability)?;
        }
        Ok(())
    }

    /// Draws the parameters of one sample for a `width`×`height` target. Only enabled
    /// augmentations draw, in a fixed order, so the result depends only on the
    /// configuration and the RNG state.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, width: u32, height: u32) -> AugmentParams {
        let sym = |rng: &mut R, r: f32| -> f32 {
            if r > 0.0 {
                rng.random_range(-r..=r)
            } else {
                0.0
            }
        };
        let span = |rng: &mut R, r: [f32; 2]| -> f32 {
            if r[0] < r[1] {
                rng.random_range(r[0]..=r[1])
            } else {
                r[0]
            }
        };
        let hit = |rng: &mut R, p: f32| -> bool { p > 0.0 && rng.random::<f32>() < p };

        let crop = self.random_crop.and_then(|c| {
            if hit(rng, c.probability) {
                let s = span(rng, [c.min_scale, 1.0]);
                let fx: f32 = rng.random();
                let fy: f32 = rng.random();
                Some(CropFraction {
                    scale: s,
                    x: fx,
                    y: fy,
                })
            } else {
                None
            }
        });
        let rotation_deg = sym(rng, self.rotation_range);
        let shift_y = sym(rng, self.height_shift_range) * height as f32;
        let shift_x = sym(rng, self.width_shift_range) * width as f32;
        let shear_deg = sym(rng, self.shear_range);
        let (zoom_x, zoom_y) = if self.zoom_range[0] != 1.0 || self.zoom_range[1] != 1.0 {
            (span(rng, self.zoom_range), span(rng, self.zoom_range))
        } else {
            (1.0, 1.0)
        };
        let flip_horizontal = self.horizontal_flip && rng.random::<bool>();
        let flip_vertical = self.vertical_flip && rng.random::<bool>();
        let brightness = self.brightness_range.map(|b| span(rng, b));
        let blur_sigma = self
            .blur
            .and_then(|b| hit(rng, b.probability).then(|| span(rng, b.sigma)));
        let jpeg_quality = self.jpeg.and_then(|j| {
            hit(rng, j.probability).then(|| rng.random_range(j.quality[0]..=j.quality[1]))
        });
        let noise_std = self
            .noise
            .and_then(|n| hit(rng, n.probability).then(|| span(rng, n.std)));
        // Drawn after everything older, and only when enabled: a configuration without
        // them draws exactly what it drew before they existed (runs resume unchanged).
        let noise_seed = if noise_std.is_some() { rng.random() } else { 0 };
        let (contrast, saturation) = match self.color_jitter {
            Some(c) if hit(rng, c.probability) => {
                (Some(span(rng, c.contrast)), Some(span(rng, c.saturation)))
            }
            _ => (None, None),
        };
        let rescale = self
            .rescale
            .and_then(|r| hit(rng, r.probability).then(|| span(rng, r.scale)));
        AugmentParams {
            crop,
            affine: AffineParams {
                rotation_deg,
                shift_x,
                shift_y,
                shear_deg,
                zoom_x,
                zoom_y,
            },
            flip_horizontal,
            flip_vertical,
            brightness,
            blur_sigma,
            jpeg_quality,
            noise_std,
            noise_seed,
            contrast,
            saturation,
            rescale,
        }
    }
}

/// A crop drawn by [`RandomCrop`]: the side fraction and the position of the crop in
/// the free space (0 = left/top, 1 = right/bottom).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CropFraction {
    /// Side of the crop as a fraction of the image side.
    pub scale: f32,
    /// Horizontal position in the free space, in [0, 1].
    pub x: f32,
    /// Vertical position in the free space, in [0, 1].
    pub y: f32,
}

impl CropFraction {
    /// The crop rectangle `(x, y, width, height)` in an image of `w`×`h` pixels.
    pub fn rect(&self, w: u32, h: u32) -> (u32, u32, u32, u32) {
        let cw = ((w as f32 * self.scale).round() as u32).clamp(1, w.max(1));
        let ch = ((h as f32 * self.scale).round() as u32).clamp(1, h.max(1));
        let (free_x, free_y) = (w.saturating_sub(cw), h.saturating_sub(ch));
        let x = (free_x as f32 * self.x.clamp(0.0, 1.0)).floor() as u32;
        let y = (free_y as f32 * self.y.clamp(0.0, 1.0)).floor() as u32;
        (x.min(free_x), y.min(free_y), cw, ch)
    }
}

/// The geometric parameters of one affine warp.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AffineParams {
    /// Rotation in degrees; positive turns the content counter-clockwise as displayed.
    pub rotation_deg: f32,
    /// Shift in pixels; positive moves the content right.
    pub shift_x: f32,
    /// Shift in pixels; positive moves the content down.
    pub shift_y: f32,
    /// Shear angle in degrees.
    pub shear_deg: f32,
    /// Horizontal zoom factor (above 1 the content shrinks, as in Keras).
    pub zoom_x: f32,
    /// Vertical zoom factor.
    pub zoom_y: f32,
}

impl AffineParams {
    /// No warp.
    pub const IDENTITY: AffineParams = AffineParams {
        rotation_deg: 0.0,
        shift_x: 0.0,
        shift_y: 0.0,
        shear_deg: 0.0,
        zoom_x: 1.0,
        zoom_y: 1.0,
    };

    /// Whether the warp is the identity.
    pub fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }
}

/// The parameters drawn for one sample by [`Augment::sample`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentParams {
    /// The random crop, if drawn.
    pub crop: Option<CropFraction>,
    /// The affine warp.
    pub affine: AffineParams,
    /// Flip left-right.
    pub flip_horizontal: bool,
    /// Flip top-bottom.
    pub flip_vertical: bool,
    /// Brightness factor.
    pub brightness: Option<f32>,
    /// Blur standard deviation.
    pub blur_sigma: Option<f32>,
    /// JPEG quality.
    pub jpeg_quality: Option<u8>,
    /// Noise standard deviation.
    pub noise_std: Option<f32>,
    /// Seed of the noise field.
    pub noise_seed: u64,
    /// Contrast factor.
    #[serde(default)]
    pub contrast: Option<f32>,
    /// Saturation factor.
    #[serde(default)]
    pub saturation: Option<f32>,
    /// Downscale factor of the rescale round trip.
    #[serde(default)]
    pub rescale: Option<f32>,
}

impl AugmentParams {
    /// Whether only the warp, flips and brightness are drawn: what the loader's one-pass
    /// path fuses. Every other transform of [`AugmentParams::apply`] must be named here,
    /// or the pipeline would leave it out.
    pub(crate) fn geometric_only(&self) -> bool {
        self.contrast.is_none()
            && self.saturation.is_none()
            && self.rescale.is_none()
            && self.blur_sigma.is_none()
            && self.jpeg_quality.is_none()
            && self.noise_std.is_none()
    }

    /// Applies everything but the crop (which [`crate::prepare_image`] applies before
    /// resizing) to an image already at the target size, with 0–255 values.
    ///
    /// # Errors
    /// [`Error::Image`] if the JPEG re-compression fails to encode or decode.
    pub fn apply(&self, img: Rgb32FImage) -> Result<Rgb32FImage> {
        Ok(self.apply_pixels(Pixels::F32(img))?.into_f32())
    }

    /// As [`AugmentParams::apply`], keeping the image in 8 bits between the steps that
    /// work on 8-bit values (flips, the rescale round trip, JPEG) and in floats only where
    /// a step needs them: the same values (a float image of 8-bit values converts back
    /// exactly; tested against [`AugmentParams::apply`] on floats), with fewer
    /// conversions, which the loader does for every image.
    pub(crate) fn apply_pixels(&self, img: Pixels) -> Result<Pixels> {
        let mut img = if self.affine.is_identity() {
            img
        } else {
            let img = img.into_f32();
            let m = Affine::from_params(&self.affine, img.width(), img.height());
            Pixels::F32(warp_affine(&img, &m))
        };
        if self.flip_horizontal {
            img.flip_horizontal();
        }
        if self.flip_vertical {
            img.flip_vertical();
        }
        if let Some(b) = self.brightness {
            img = img.in_f32(|f| {
                for v in f.iter_mut() {
                    *v = (*v * b).clamp(0.0, 255.0);
                }
            });
        }
        if let Some(c) = self.contrast {
            img = img.in_f32(|f| crate::enhance::adjust_contrast(f, c));
        }
        if let Some(s) = self.saturation {
            img = img.in_f32(|f| crate::enhance::adjust_saturation(f, s));
        }
        if let Some(s) = self.rescale {
            img = Pixels::U8(crate::enhance::rescale_roundtrip_u8(&img.into_u8(), s));
        }
        if let Some(s) = self.blur_sigma {
            img = img.in_f32(|f| gaussian_blur(f, s));
        }
        if let Some(q) = self.jpeg_quality {
            img = Pixels::U8(jpeg_roundtrip_u8(&img.into_u8(), q)?);
        }
        if let Some(std) = self.noise_std {
            let mut rng = ChaCha8Rng::seed_from_u64(self.noise_seed);
            img = img.in_f32(|f| add_gaussian_noise(f, std, &mut rng));
        }
        Ok(img)
    }
}

/// An image between augmentation steps: 8-bit values, or 0–255 floats once a step has
/// made values between the integers.
#[derive(Debug, Clone)]
pub(crate) enum Pixels {
    /// 8-bit values.
    U8(RgbImage),
    /// 0–255 floats.
    F32(Rgb32FImage),
}

impl Pixels {
    /// As floats (8-bit values convert exactly).
    pub(crate) fn into_f32(self) -> Rgb32FImage {
        match self {
            Pixels::U8(img) => to_rgb32f(&img),
            Pixels::F32(img) => img,
        }
    }

    /// As 8-bit values: floats rounded and clamped ([`to_rgb8`]); a float image of 8-bit
    /// values gives them back unchanged.
    pub(crate) fn into_u8(self) -> RgbImage {
        match self {
            Pixels::U8(img) => img,
            Pixels::F32(img) => to_rgb8(&img),
        }
    }

    /// The float image after `step` changed it in place.
    fn in_f32(self, step: impl FnOnce(&mut Rgb32FImage)) -> Pixels {
        let mut img = self.into_f32();
        step(&mut img);
        Pixels::F32(img)
    }

    fn flip_horizontal(&mut self) {
        match self {
            Pixels::U8(img) => image::imageops::flip_horizontal_in_place(img),
            Pixels::F32(img) => image::imageops::flip_horizontal_in_place(img),
        }
    }

    fn flip_vertical(&mut self) {
        match self {
            Pixels::U8(img) => image::imageops::flip_vertical_in_place(img),
            Pixels::F32(img) => image::imageops::flip_vertical_in_place(img),
        }
    }
}

/// An affine map from output pixel coordinates `(x, y)` (column, row) to input
/// coordinates: `input = m · output + t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// The linear part, row-major: `[[m00, m01], [m10, m11]]`.
    pub m: [[f64; 2]; 2],
    /// The translation.
    pub t: [f64; 2],
}

impl Affine {
    /// The identity.
    pub const IDENTITY: Affine = Affine {
        m: [[1.0, 0.0], [0.0, 1.0]],
        t: [0.0, 0.0],
    };

    /// A rotation by `degrees` (counter-clockwise as displayed) about the centre of a
    /// `width`×`height` image.
    pub fn rotation(degrees: f32, width: u32, height: u32) -> Self {
        Affine::from_params(
            &AffineParams {
                rotation_deg: degrees,
                ..AffineParams::IDENTITY
            },
            width,
            height,
        )
    }

    /// The warp of `p` about the centre `((w−1)/2, (h−1)/2)` of a `width`×`height`
    /// image, composed as Keras' `apply_affine_transform` composes it in `(x, y)`
    /// coordinates: `input = c + R·(S·Z·(output − c) − shift)` with rotation `R`,
    /// shear `S = [[1, −sin s], [0, cos s]]` and zoom `Z = diag(zoom_x, zoom_y)`.
    pub fn from_params(p: &AffineParams, width: u32, height: u32) -> Self {
        let cx = (f64::from(width) - 1.0) / 2.0;
        let cy = (f64::from(height) - 1.0) / 2.0;
        let z = [[f64::from(p.zoom_x), 0.0], [0.0, f64::from(p.zoom_y)]];
        let sh = f64::from(p.shear_deg).to_radians();
        let s = [[1.0, -sh.sin()], [0.0, sh.cos()]];
        let th = f64::from(p.rotation_deg).to_radians();
        let (sin, cos) = snap_sin_cos(th);
        let r = [[cos, -sin], [sin, cos]];
        let lin = matmul(r, matmul(s, z));
        // input = c + R·(S·Z·(out − c) − shift)
        let shift = [f64::from(p.shift_x), f64::from(p.shift_y)];
        let rs = [
            r[0][0] * shift[0] + r[0][1] * shift[1],
            r[1][0] * shift[0] + r[1][1] * shift[1],
        ];
        let t = [
            cx - (lin[0][0] * cx + lin[0][1] * cy) - rs[0],
            cy - (lin[1][0] * cx + lin[1][1] * cy) - rs[1],
        ];
        Affine { m: lin, t }
    }

    /// The input coordinates of output pixel `(x, y)`.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.m[0][0] * x + self.m[0][1] * y + self.t[0],
            self.m[1][0] * x + self.m[1][1] * y + self.t[1],
        )
    }
}

/// sin and cos with the multiples of 90° exact (so quarter turns are exact rot90s).
fn snap_sin_cos(th: f64) -> (f64, f64) {
    let (s, c) = th.sin_cos();
    let snap = |v: f64| {
        if v.abs() < 1e-12 {
            0.0
        } else if (v.abs() - 1.0).abs() < 1e-12 {
            v.signum()
        } else {
            v
        }
    };
    (snap(s), snap(c))
}

fn matmul(a: [[f64; 2]; 2], b: [[f64; 2]; 2]) -> [[f64; 2]; 2] {
    [
        [
            a[0][0] * b[0][0] + a[0][1] * b[1][0],
            a[0][0] * b[0][1] + a[0][1] * b[1][1],
        ],
        [
            a[1][0] * b[0][0] + a[1][1] * b[1][0],
            a[1][0] * b[0][1] + a[1][1] * b[1][1],
        ],
    ]
}

/// Warps `img` by `m` (output → input coordinates) with bilinear interpolation;
/// coordinates outside the image take the nearest edge value (scipy/Keras
/// `mode="nearest"`). The output has the input's size.
pub fn warp_affine(img: &Rgb32FImage, m: &Affine) -> Rgb32FImage {
    let (w, h) = img.dimensions();
    let src = img.as_raw();
    let mut out = vec![0f32; src.len()];
    let stride = w as usize * 3;
    for (y, row) in out.chunks_exact_mut(stride.max(1)).enumerate() {
        warp_row(src, w as usize, h as usize, m, y, row);
    }
    Rgb32FImage::from_raw(w, h, out).unwrap_or_else(|| Rgb32FImage::new(w, h))
}

/// Row `y` of the warp of an interleaved RGB `w`×`h` image by `m`, into `row`
/// (`3 w` values). Rows whose sample points all fall inside the image take a path
/// without edge handling; the values are the same as [`bilinear`]'s.
#[inline]
pub(crate) fn warp_row<T: Copy + Into<f32>>(
    src: &[T],
    w: usize,
    h: usize,
    m: &Affine,
    y: usize,
    row: &mut [f32],
) {
    let (mut sx, mut sy) = m.apply(0.0, y as f64);
    let (dx, dy) = (m.m[0][0], m.m[1][0]);
    let last = w.saturating_sub(1) as f64;
    let (ex, ey) = (sx + dx * last, sy + dy * last);
    // Strictly inside [0, w−1) × [0, h−1), with a margin far above the rounding of
    // the accumulation below.
    let inside =
        |x: f64, y: f64| x >= 0.0 && y >= 0.0 && x < last - 1e-6 && y < (h as f64 - 1.0) - 1e-6;
    if w >= 2 && h >= 2 && inside(sx, sy) && inside(ex, ey) {
        let stride = w * 3;
        for px in row.chunks_exact_mut(3) {
            let (x0, y0) = (sx as usize, sy as usize);
            let fx = (sx - x0 as f64) as f32;
            let fy = (sy - y0 as f64) as f32;
            let i = y0 * stride + x0 * 3;
            // The slices have length 6, so the conversions cannot fail.
            let top: [T; 6] = src[i..i + 6].try_into().unwrap_or([src[0]; 6]);
            let bot: [T; 6] = src[i + stride..i + stride + 6]
                .try_into()
                .unwrap_or([src[0]; 6]);
            for c in 0..3 {
                let (a, b): (f32, f32) = (top[c].into(), top[c + 3].into());
                let (d, e): (f32, f32) = (bot[c].into(), bot[c + 3].into());
                let t = a + (b - a) * fx;
                let u = d + (e - d) * fx;
                px[c] = t + (u - t) * fy;
            }
            sx += dx;
            sy += dy;
        }
    } else {
        for px in row.chunks_exact_mut(3) {
            px.copy_from_slice(&bilinear(src, w, h, sx, sy));
            sx += dx;
            sy += dy;
        }
    }
}

/// As [`warp_row`] for a source of RGBX pixels (a padding lane), which the compiler
/// turns into 4-wide vector arithmetic; lane 3 is ignored. Same values as
/// [`warp_row`] (the same operations in the same order per channel).
#[inline]
pub(crate) fn warp_row4(
    src: &[[f32; 4]],
    w: usize,
    h: usize,
    m: &Affine,
    y: usize,
    row: &mut [[f32; 4]],
) {
    let (mut sx, mut sy) = m.apply(0.0, y as f64);
    let (dx, dy) = (m.m[0][0], m.m[1][0]);
    let last = w.saturating_sub(1) as f64;
    let (ex, ey) = (sx + dx * last, sy + dy * last);
    let inside =
        |x: f64, y: f64| x >= 0.0 && y >= 0.0 && x < last - 1e-6 && y < (h as f64 - 1.0) - 1e-6;
    let lerp = |p00: [f32; 4], p01: [f32; 4], p10: [f32; 4], p11: [f32; 4], fx: f32, fy: f32| {
        let mut out = [0f32; 4];
        for c in 0..4 {
            let t = p00[c] + (p01[c] - p00[c]) * fx;
            let u = p10[c] + (p11[c] - p10[c]) * fx;
            out[c] = t + (u - t) * fy;
        }
        out
    };
    if w >= 2 && h >= 2 && inside(sx, sy) && inside(ex, ey) {
        for px in row.iter_mut() {
            let (x0, y0) = (sx as usize, sy as usize);
            let fx = (sx - x0 as f64) as f32;
            let fy = (sy - y0 as f64) as f32;
            let i = y0 * w + x0;
            *px = lerp(src[i], src[i + 1], src[i + w], src[i + w + 1], fx, fy);
            sx += dx;
            sy += dy;
        }
    } else {
        let (wi, hi) = (w as i64 - 1, h as i64 - 1);
        for px in row.iter_mut() {
            let x0f = fast_floor(sx);
            let y0f = fast_floor(sy);
            let fx = (sx - x0f) as f32;
            let fy = (sy - y0f) as f32;
            let (x0, y0) = (x0f as i64, y0f as i64);
            let cx0 = x0.clamp(0, wi) as usize;
            let cx1 = (x0 + 1).clamp(0, wi) as usize;
            let cy0 = y0.clamp(0, hi) as usize * w;
            let cy1 = (y0 + 1).clamp(0, hi) as usize * w;
            *px = lerp(
                src[cy0 + cx0],
                src[cy0 + cx1],
                src[cy1 + cx0],
                src[cy1 + cx1],
                fx,
                fy,
            );
            sx += dx;
            sy += dy;
        }
    }
}

/// `v.floor()` without the libm call that baseline x86-64 (no SSE4.1) makes of it;
/// exact for |v| < 2^52 (coordinates here are far smaller).
#[inline(always)]
fn fast_floor(v: f64) -> f64 {
    let t = v as i64 as f64;
    if t > v {
        t - 1.0
    } else {
        t
    }
}

/// The bilinear interpolation of an interleaved RGB image at `(sx, sy)`, edges
/// replicated. Shared by [`warp_affine`] and the loader's fused path, so both give
/// the same values.
#[inline(always)]
pub(crate) fn bilinear<T: Copy + Into<f32>>(
    src: &[T],
    w: usize,
    h: usize,
    sx: f64,
    sy: f64,
) -> [f32; 3] {
    let x0f = fast_floor(sx);
    let y0f = fast_floor(sy);
    let fx = (sx - x0f) as f32;
    let fy = (sy - y0f) as f32;
    let stride = w * 3;
    let (i00, i01, i10, i11);
    if x0f >= 0.0 && y0f >= 0.0 && x0f + 1.0 < w as f64 && y0f + 1.0 < h as f64 {
        i00 = y0f as usize * stride + x0f as usize * 3;
        i01 = i00 + 3;
        i10 = i00 + stride;
        i11 = i10 + 3;
    } else {
        let (x0, y0) = (x0f as i64, y0f as i64);
        let (wi, hi) = (w as i64 - 1, h as i64 - 1);
        let cx0 = x0.clamp(0, wi) as usize * 3;
        let cx1 = (x0 + 1).clamp(0, wi) as usize * 3;
        let cy0 = y0.clamp(0, hi) as usize * stride;
        let cy1 = (y0 + 1).clamp(0, hi) as usize * stride;
        i00 = cy0 + cx0;
        i01 = cy0 + cx1;
        i10 = cy1 + cx0;
        i11 = cy1 + cx1;
    }
    let p00 = &src[i00..i00 + 3];
    let p01 = &src[i01..i01 + 3];
    let p10 = &src[i10..i10 + 3];
    let p11 = &src[i11..i11 + 3];
    let mut out = [0f32; 3];
    for c in 0..3 {
        let (a, b): (f32, f32) = (p00[c].into(), p01[c].into());
        let (d, e): (f32, f32) = (p10[c].into(), p11[c].into());
        let top = a + (b - a) * fx;
        let bottom = d + (e - d) * fx;
        out[c] = top + (bottom - top) * fy;
    }
    out
}

/// Blurs `img` in place with a Gaussian of standard deviation `sigma` pixels, edges
/// replicated: `scipy.ndimage.gaussian_filter(mode="nearest", truncate=3.0)`, whose
/// kernel radius is `⌊3σ + 0.5⌋`. `sigma` ≤ 0 leaves the image unchanged.
pub fn gaussian_blur(img: &mut Rgb32FImage, sigma: f32) {
    if sigma <= 0.0 || !sigma.is_finite() {
        return;
    }
    let radius = ((3.0 * sigma + 0.5).floor() as i64).max(1);
    let mut k: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return;
    }
    let data: &mut [f32] = img;
    let row_len = w * 3;
    let r = radius as usize;
    // Each output value accumulates its taps in kernel order from zero, as a direct
    // per-pixel loop would (the same sums, bit for bit); the loops run over whole rows so
    // that they vectorise, with the edge-clamped taps handled apart.
    let mut tmp = vec![0f32; data.len()];
    // Horizontal: row `y` of `data` into row `y` of `tmp`.
    for (src, dst) in data
        .chunks_exact(row_len)
        .zip(tmp.chunks_exact_mut(row_len))
    {
        for (j, &kv) in k.iter().enumerate() {
            // Output x reads source x + j - r, clamped to the row.
            let lo = r.saturating_sub(j).min(w); // first x with x + j - r >= 0
            let hi = (w + r).saturating_sub(j).min(w).max(lo); // x + j - r < w below this
            for x in 0..lo {
                for c in 0..3 {
                    dst[x * 3 + c] += src[c] * kv;
                }
            }
            if hi > lo {
                let off = lo + j - r;
                let (d, s) = (&mut dst[lo * 3..hi * 3], &src[off * 3..(off + hi - lo) * 3]);
                for (d, s) in d.iter_mut().zip(s) {
                    *d += s * kv;
                }
            }
            for x in hi..w {
                for c in 0..3 {
                    dst[x * 3 + c] += src[(w - 1) * 3 + c] * kv;
                }
            }
        }
    }
    // Vertical: each output row sums the clamped source rows of `tmp`.
    data.fill(0.0);
    for (y, dst) in data.chunks_exact_mut(row_len).enumerate() {
        for (j, &kv) in k.iter().enumerate() {
            let sy = (y as i64 + j as i64 - radius).clamp(0, h as i64 - 1) as usize;
            let src = &tmp[sy * row_len..(sy + 1) * row_len];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s * kv;
            }
        }
    }
}

/// Encodes `img` as a baseline JPEG at `quality` (1–100): the IJG tables scaled as
/// libjpeg scales them, 4:4:4, as Pillow writes with `subsampling=0`. This is the encoder
/// of the JPEG augmentation and perturbation ([`jpeg_roundtrip`]); `jpeg-encoder`'s
/// SIMD DCT makes it about 3× faster than `image`'s at 128 px, with the same tables.
///
/// # Errors
/// [`Error::InvalidConfig`] for a side over 65,535 pixels (JPEG's limit) or when the
/// encoder fails.
pub fn jpeg_encode(img: &RgbImage, quality: u8) -> Result<Vec<u8>> {
    let (w, h) = img.dimensions();
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(Error::config(
            "jpeg",
            format!("a {w}x{h} image is over JPEG's 65,535-pixel side"),
        ));
    };
    let mut buf = Vec::with_capacity(img.as_raw().len() / 4);
    let mut enc = jpeg_encoder::Encoder::new(&mut buf, quality.clamp(1, 100));
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_4_4);
    enc.encode(img.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| Error::config("jpeg", format!("compressing at quality {quality}: {e}")))?;
    Ok(buf)
}

/// Encodes `img` (0–255 values, rounded and clamped to 8 bits) with [`jpeg_encode`] at
/// `quality` and decodes it back.
///
/// # Errors
/// As [`jpeg_encode`]; [`Error::BadImage`] if decoding fails.
pub fn jpeg_roundtrip(img: &Rgb32FImage, quality: u8) -> Result<Rgb32FImage> {
    Ok(to_rgb32f(&jpeg_roundtrip_u8(&to_rgb8(img), quality)?))
}

/// As [`jpeg_roundtrip`] on an 8-bit image.
fn jpeg_roundtrip_u8(img: &RgbImage, quality: u8) -> Result<RgbImage> {
    let buf = jpeg_encode(img, quality)?;
    decode_rgb(&buf).map_err(|reason| Error::BadImage {
        path: format!("<JPEG re-compressed at quality {quality}>").into(),
        reason,
    })
}

/// Adds Gaussian noise of standard deviation `std` (0–255 units) to every value, then
/// clamps to 0–255.
pub fn add_gaussian_noise<R: Rng + ?Sized>(img: &mut Rgb32FImage, std: f32, rng: &mut R) {
    if std <= 0.0 || !std.is_finite() {
        return;
    }
    let Ok(normal) = Normal::new(0.0f32, std) else {
        return;
    };
    for v in img.iter_mut() {
        *v = (*v + normal.sample(rng)).clamp(0.0, 255.0);
    }
}

/// An 8-bit image as 0–255 float values.
pub fn to_rgb32f(img: &RgbImage) -> Rgb32FImage {
    let data = img.as_raw().iter().map(|&v| f32::from(v)).collect();
    Rgb32FImage::from_raw(img.width(), img.height(), data)
        .unwrap_or_else(|| Rgb32FImage::new(img.width(), img.height()))
}

/// `v.round().clamp(0.0, 255.0) as u8`, exactly (NaN gives 0), without the call to
/// `roundf` that `round` compiles to on x86-64's baseline: the truncation's remainder is
/// exact below 2^23.
#[inline]
fn round_to_u8(v: f32) -> u8 {
    // Branch-free, so that the loop over an image vectorises: NaN and values below zero
    // select 0, values over 255 select 255 (round() of either clamps to the same).
    let c = if v > 0.0 { v.min(255.0) } else { 0.0 };
    let t = c as u32;
    (t + u32::from(c - t as f32 >= 0.5)) as u8
}

/// A 0–255 float image rounded and clamped to 8 bits.
pub fn to_rgb8(img: &Rgb32FImage) -> RgbImage {
    let data = img.as_raw().iter().map(|&v| round_to_u8(v)).collect();
    RgbImage::from_raw(img.width(), img.height(), data)
        .unwrap_or_else(|| RgbImage::new(img.width(), img.height()))
}
