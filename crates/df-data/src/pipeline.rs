//! The per-image pipeline: decode → (crop) → resize → augment → normalise → CHW.

use image::RgbImage;
use rand::Rng;
use tch::Tensor;

use crate::augment::{warp_row4, Affine, Augment, AugmentParams, Pixels};
use crate::decode::load_rgb;
use crate::error::{Error, Result};
use crate::resize::resize_rgb;
use crate::transform::{ChannelOrder, Transform};

/// Turns a decoded image into model input values: random crop (if drawn), resize to
/// the transform's size, the other augmentations, then the transform's scaling,
/// normalisation and channel order, written CHW into `out`.
///
/// With [`Augment::none`] no random number is drawn and the result is exactly the
/// Keras `load_img` + `rescale` input (for the default transform).
///
/// # Shapes
/// `out`: `[3, height, width]` flattened (`transform.numel()` values).
///
/// # Errors
/// [`Error::InvalidConfig`] if `out` has the wrong length, [`Error::Image`] if the
/// JPEG augmentation fails.
pub fn prepare_image<R: Rng + ?Sized>(
    img: &RgbImage,
    transform: &Transform,
    augment: &Augment,
    rng: &mut R,
    out: &mut [f32],
) -> Result<()> {
    if augment.is_none() {
        let resized = transform.resize_image(img);
        return transform.write_chw_u8(&resized, out);
    }
    let params = augment.sample(rng, transform.width, transform.height);
    prepare_with_params(img, transform, &params, out)
}

/// As [`prepare_image`] with parameters already drawn.
///
/// # Errors
/// As [`prepare_image`].
pub fn prepare_with_params(
    img: &RgbImage,
    transform: &Transform,
    params: &AugmentParams,
    out: &mut [f32],
) -> Result<()> {
    let centered = transform.center_cropped(img);
    let img: &RgbImage = &centered;
    let cropped;
    let src = match params.crop {
        Some(c) => {
            let (x, y, w, h) = c.rect(img.width(), img.height());
            cropped = image::imageops::crop_imm(img, x, y, w, h).to_image();
            &cropped
        }
        None => img,
    };
    let resized = resize_rgb(src, transform.width, transform.height, transform.resize);
    if params.geometric_only() {
        return write_geometric(&resized, transform, params, out);
    }
    match params.apply_pixels(Pixels::U8(resized))? {
        Pixels::U8(img) => transform.write_chw_u8(&img, out),
        Pixels::F32(img) => transform.write_chw_f32(&img, out),
    }
}

/// The common case in one pass: warp, flips, brightness, normalisation and the CHW
/// layout, reading the 8-bit resized image directly. The arithmetic is the same, in the
/// same order, as [`AugmentParams::apply`] followed by [`Transform::write_chw_f32`],
/// so both give identical values (tested).
fn write_geometric(
    img: &RgbImage,
    transform: &Transform,
    params: &AugmentParams,
    out: &mut [f32],
) -> Result<()> {
    let (w, h) = (transform.width as usize, transform.height as usize);
    if img.dimensions() != (transform.width, transform.height) || out.len() != transform.numel() {
        return Err(Error::config(
            "transform",
            format!(
                "image is {}x{} and output has {} values, expected {w}x{h} and {}",
                img.width(),
                img.height(),
                out.len(),
                transform.numel()
            ),
        ));
    }
    let src = img.as_raw();
    let plane = w * h;
    let coef = transform.affine();
    let order = match transform.channel_order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let warp = (!params.affine.is_identity())
        .then(|| Affine::from_params(&params.affine, transform.width, transform.height));
    let (planes0, rest) = out.split_at_mut(plane);
    let (planes1, planes2) = rest.split_at_mut(plane);
    let mut row = vec![[0f32; 4]; w];
    // RGBX floats: sampling them is 4-wide vector arithmetic, with no byte conversions
    // in the inner loop.
    let mut src4 = vec![[0f32; 4]; if warp.is_some() { plane } else { 0 }];
    for (d, s) in src4.iter_mut().zip(src.chunks_exact(3)) {
        *d = [f32::from(s[0]), f32::from(s[1]), f32::from(s[2]), 0.0];
    }
    for yw in 0..h {
        match &warp {
            Some(m) => warp_row4(&src4, w, h, m, yw, &mut row),
            None => {
                for (d, s) in row
                    .iter_mut()
                    .zip(src[yw * w * 3..(yw + 1) * w * 3].chunks_exact(3))
                {
                    *d = [f32::from(s[0]), f32::from(s[1]), f32::from(s[2]), 0.0];
                }
            }
        }
        if let Some(b) = params.brightness {
            for v in row.iter_mut() {
                for c in v.iter_mut() {
                    *c = (*c * b).clamp(0.0, 255.0);
                }
            }
        }
        // Pixel (xw, yw) of the warped image lands at (x, y) after the flips.
        let y = if params.flip_vertical { h - 1 - yw } else { yw };
        let span = y * w..(y + 1) * w;
        let (o0, o1, o2) = (
            &mut planes0[span.clone()],
            &mut planes1[span.clone()],
            &mut planes2[span],
        );
        for (xw, v) in row.iter().enumerate() {
            let x = if params.flip_horizontal {
                w - 1 - xw
            } else {
                xw
            };
            o0[x] = v[order[0]] * coef[0].0 + coef[0].1;
            o1[x] = v[order[1]] * coef[1].0 + coef[1].1;
            o2[x] = v[order[2]] * coef[2].0 + coef[2].1;
        }
    }
    Ok(())
}

/// Loads the image file at `path` and makes it a `[1, 3, height, width]` model input
/// (no augmentation): what a prediction program feeds a model.
///
/// # Errors
/// [`Error::BadImage`] naming the file if it cannot be read or decoded,
/// [`Error::InvalidConfig`] for an invalid transform.
pub fn image_to_tensor(path: &std::path::Path, transform: &Transform) -> Result<Tensor> {
    let img = load_rgb(path).map_err(|reason| Error::BadImage {
        path: path.to_path_buf(),
        reason,
    })?;
    transform
        .check_crop(img.width(), img.height())
        .map_err(|why| Error::BadImage {
            path: path.to_path_buf(),
            reason: crate::SkipReason::TooSmall(why),
        })?;
    rgb_to_tensor(&img, transform)
}

/// A decoded image through `transform`, without augmentation: `[1, 3, H, W]` (what
/// [`image_to_tensor`] does after decoding; face crops are scored through it).
///
/// # Errors
/// An invalid transform.
pub fn rgb_to_tensor(img: &RgbImage, transform: &Transform) -> Result<Tensor> {
    transform.validate()?;
    transform
        .check_crop(img.width(), img.height())
        .map_err(|why| Error::config("transform.center_crop", why))?;
    let mut buf = vec![0f32; transform.numel()];
    prepare_image(img, transform, &Augment::none(), &mut rand::rng(), &mut buf)?;
    Ok(Tensor::from_slice(&buf).view([
        1,
        3,
        i64::from(transform.height),
        i64::from(transform.width),
    ]))
}
