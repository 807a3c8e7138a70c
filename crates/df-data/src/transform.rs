//! The input description a model needs: size, resize filter, scaling, normalisation,
//! channel order. Plain data, so a model's metadata (in `df-models`) can be turned
//! into it without this crate knowing about models.

use image::{Rgb32FImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::resize::{resize_rgb, ResizeFilter};

/// The fewest pixels a centre crop may keep on a side of an image.
pub const MIN_CROP_SIDE: u32 = 8;

/// The smallest centre-crop fraction: it keeps [`MIN_CROP_SIDE`] px of a 65535 px side.
pub const MIN_CENTER_CROP: f32 = 8.0 / 65535.0;

/// Order of the colour channels in the output tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelOrder {
    /// Red, green, blue (Keras `load_img`, torchvision).
    #[default]
    Rgb,
    /// Blue, green, red (Keras `caffe` preprocessing: VGG16, ResNet50).
    Bgr,
}

/// Per-channel normalisation applied after [`Transform::scale`]. Channel indices are
/// those of the *output* order ([`Transform::channel_order`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Normalize {
    /// Nothing more: `x = pixel * scale`.
    #[default]
    None,
    /// `x = pixel * scale + offset[c]` (Keras `caffe`: scale 1, offset −mean in BGR;
    /// Keras `tf`: scale 1/127.5, offset −1).
    Offset {
        /// Added to each channel.
        offset: [f32; 3],
    },
    /// `x = (pixel * scale − mean[c]) / std[c]` (Keras `torch` mode, torchvision:
    /// scale 1/255, ImageNet mean and std).
    MeanStd {
        /// Subtracted from each channel.
        mean: [f32; 3],
        /// Each channel is divided by this.
        std: [f32; 3],
    },
}

/// How decoded images become model inputs: optionally cropped to their central part
/// ([`Transform::center_crop`]), resized to `height`×`width` with `resize`
/// (Pillow-exact), then each 0–255 pixel value `p` becomes `p * scale`, then
/// [`Normalize`], in `channel_order`, laid out NCHW.
///
/// The default is the MesoNet input (Keras `flow_from_directory` at 256×256, nearest,
/// `rescale=1/255`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    /// Output height in pixels.
    pub height: u32,
    /// Output width in pixels.
    pub width: u32,
    /// The filter used to resize decoded images to `height`×`width`.
    pub resize: ResizeFilter,
    /// Multiplies the 0–255 pixel values (1/255 for inputs in [0, 1]).
    pub scale: f32,
    /// Per-channel normalisation after scaling.
    pub normalize: Normalize,
    /// The order of the output channels.
    pub channel_order: ChannelOrder,
    /// Keep only the central part of each decoded image, this fraction of each side
    /// (as TensorFlow's `central_crop`), before resizing: for face images whose
    /// manipulated region sits in the middle (LFW's 250×250 photographs: `0.512` keeps
    /// the central 128×128 pixels). The side kept is `round(side · fraction)` pixels
    /// (at least 1), starting at `(side − kept) / 2` rounded down. `None`: the whole image.
    #[serde(default)]
    pub center_crop: Option<f32>,
}

impl Default for Transform {
    fn default() -> Self {
        Transform::unit(256, 256)
    }
}

impl Transform {
    /// `height`×`width`, nearest resize, pixels/255 in RGB order (Keras
    /// `flow_from_directory` + `rescale=1/255`, the MesoNet input).
    pub fn unit(height: u32, width: u32) -> Self {
        Transform {
            height,
            width,
            resize: ResizeFilter::Nearest,
            scale: 1.0 / 255.0,
            normalize: Normalize::None,
            channel_order: ChannelOrder::Rgb,
            center_crop: None,
        }
    }

    /// `height`×`width`, bilinear resize, ImageNet mean/std on pixels/255, RGB
    /// (torchvision and Keras `torch` preprocessing).
    pub fn imagenet(height: u32, width: u32) -> Self {
        Transform {
            height,
            width,
            resize: ResizeFilter::Bilinear,
            scale: 1.0 / 255.0,
            normalize: Normalize::MeanStd {
                mean: [0.485, 0.456, 0.406],
                std: [0.229, 0.224, 0.225],
            },
            channel_order: ChannelOrder::Rgb,
            center_crop: None,
        }
    }

    /// Keeps the central `fraction` of each side before resizing (see
    /// [`Transform::center_crop`]); `None` keeps the whole image.
    pub fn with_center_crop(mut self, fraction: Option<f32>) -> Self {
        self.center_crop = fraction;
        self
    }

    /// Sets the resize filter.
    pub fn with_resize(mut self, resize: ResizeFilter) -> Self {
        self.resize = resize;
        self
    }

    /// Sets the scale.
    pub fn with_scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }

    /// Sets the normalisation.
    pub fn with_normalize(mut self, normalize: Normalize) -> Self {
        self.normalize = normalize;
        self
    }

    /// Sets the channel order.
    pub fn with_channel_order(mut self, order: ChannelOrder) -> Self {
        self.channel_order = order;
        self
    }

    /// Number of `f32` values of one transformed image (`3 * height * width`).
    pub fn numel(&self) -> usize {
        3 * self.height as usize * self.width as usize
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size, a non-finite scale or offset, or a
    /// zero or non-finite standard deviation.
    pub fn validate(&self) -> Result<()> {
        if self.height == 0 || self.width == 0 {
            return Err(Error::config(
                "transform.height/width",
                format!("must be positive, got {}x{}", self.height, self.width),
            ));
        }
        if !self.scale.is_finite() {
            return Err(Error::config("transform.scale", "must be finite"));
        }
        if let Some(f) = self.center_crop {
            if !(f > 0.0 && f <= 1.0) {
                return Err(Error::config(
                    "transform.center_crop",
                    format!("must be a fraction in (0, 1], got {f}"),
                ));
            }
            if f < MIN_CENTER_CROP {
                return Err(Error::config(
                    "transform.center_crop",
                    format!(
                        "{f} keeps under {MIN_CROP_SIDE} px of any image up to 65535 px on a \
                         side (the largest a JPEG holds); the smallest crop is {MIN_CENTER_CROP:e}"
                    ),
                ));
            }
        }
        match self.normalize {
            Normalize::None => {}
            Normalize::Offset { offset } => {
                if offset.iter().any(|v| !v.is_finite()) {
                    return Err(Error::config(
                        "transform.normalize.offset",
                        "must be finite",
                    ));
                }
            }
            Normalize::MeanStd { mean, std } => {
                if mean.iter().any(|v| !v.is_finite()) {
                    return Err(Error::config("transform.normalize.mean", "must be finite"));
                }
                if std.iter().any(|v| !v.is_finite() || *v == 0.0) {
                    return Err(Error::config(
                        "transform.normalize.std",
                        "must be finite and non-zero",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Crops a decoded image to its central part ([`Transform::center_crop`]) and resizes
    /// it to the target size with [`Transform::resize`].
    pub fn resize_image(&self, img: &RgbImage) -> RgbImage {
        let src = self.center_cropped(img);
        resize_rgb(&src, self.width, self.height, self.resize)
    }

    /// Whether the centre crop keeps at least [`MIN_CROP_SIDE`] pixels on each side of a
    /// `width`×`height` image (always, without a crop).
    ///
    /// # Errors
    /// A sentence saying how much of the image the crop keeps.
    pub fn check_crop(&self, width: u32, height: u32) -> std::result::Result<(), String> {
        let Some(f) = self.center_crop.filter(|f| *f > 0.0 && *f < 1.0) else {
            return Ok(());
        };
        let keep = |side: u32| (f64::from(side) * f64::from(f)).round();
        let (w, h) = (keep(width), keep(height));
        if w < f64::from(MIN_CROP_SIDE) || h < f64::from(MIN_CROP_SIDE) {
            return Err(format!(
                "the centre crop {f} keeps {w}x{h} px of this {width}x{height} image, under \
                 {MIN_CROP_SIDE} px on a side: too small to score"
            ));
        }
        Ok(())
    }

    /// The rectangle `(x, y, width, height)` that [`Transform::center_crop`] keeps of a
    /// `width`×`height` image (the whole image without a crop).
    pub fn center_crop_rect(&self, width: u32, height: u32) -> (u32, u32, u32, u32) {
        let Some(f) = self.center_crop.filter(|f| *f > 0.0 && *f < 1.0) else {
            return (0, 0, width, height);
        };
        let keep =
            |side: u32| ((f64::from(side) * f64::from(f)).round() as u32).clamp(1, side.max(1));
        let (w, h) = (keep(width), keep(height));
        ((width - w) / 2, (height - h) / 2, w, h)
    }

    /// The image cropped to its central part, or the image itself without a crop.
    pub fn center_cropped<'a>(&self, img: &'a RgbImage) -> std::borrow::Cow<'a, RgbImage> {
        let (x, y, w, h) = self.center_crop_rect(img.width(), img.height());
        if (w, h) == img.dimensions() {
            std::borrow::Cow::Borrowed(img)
        } else {
            std::borrow::Cow::Owned(image::imageops::crop_imm(img, x, y, w, h).to_image())
        }
    }

    /// The per-output-channel `(multiplier, addend)` pairs: `x = p * mul + add`.
    pub(crate) fn affine(&self) -> [(f32, f32); 3] {
        let mut out = [(self.scale, 0.0); 3];
        match self.normalize {
            Normalize::None => {}
            Normalize::Offset { offset } => {
                for c in 0..3 {
                    out[c].1 = offset[c];
                }
            }
            Normalize::MeanStd { mean, std } => {
                for c in 0..3 {
                    out[c] = (self.scale / std[c], -mean[c] / std[c]);
                }
            }
        }
        out
    }

    /// Writes an 8-bit image already at the target size as normalised CHW values.
    ///
    /// # Shapes
    /// `img`: `height`×`width` RGB; `out`: `[3, height, width]` flattened.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the image or `out` does not have the target size.
    pub fn write_chw_u8(&self, img: &RgbImage, out: &mut [f32]) -> Result<()> {
        self.check_sizes(img.width(), img.height(), out.len())?;
        let raw = img.as_raw();
        self.write_planes(out, |i| f32::from(raw[i]));
        Ok(())
    }

    /// As [`Transform::write_chw_u8`] for a float image of 0–255 values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the image or `out` does not have the target size.
    pub fn write_chw_f32(&self, img: &Rgb32FImage, out: &mut [f32]) -> Result<()> {
        self.check_sizes(img.width(), img.height(), out.len())?;
        let raw = img.as_raw();
        self.write_planes(out, |i| raw[i]);
        Ok(())
    }

    fn check_sizes(&self, w: u32, h: u32, len: usize) -> Result<()> {
        if (w, h) != (self.width, self.height) {
            return Err(Error::config(
                "transform",
                format!(
                    "image is {w}x{h}, the transform expects {}x{}",
                    self.width, self.height
                ),
            ));
        }
        if len != self.numel() {
            return Err(Error::config(
                "transform",
                format!("output has {len} values, expected {}", self.numel()),
            ));
        }
        Ok(())
    }

    fn write_planes(&self, out: &mut [f32], pixel: impl Fn(usize) -> f32) {
        let plane = self.height as usize * self.width as usize;
        let coef = self.affine();
        for (oc, dst) in out.chunks_exact_mut(plane).enumerate() {
            let src_c = match self.channel_order {
                ChannelOrder::Rgb => oc,
                ChannelOrder::Bgr => 2 - oc,
            };
            let (mul, add) = coef[oc];
            for (i, d) in dst.iter_mut().enumerate() {
                *d = pixel(i * 3 + src_c) * mul + add;
            }
        }
    }
}
