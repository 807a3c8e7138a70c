//! The per-image pipeline: decode → (crop) → resize → augment → normalise → CHW.

use image::RgbImage;
use rand::Rng;
use tch::Tensor;

use crate::augment::{to_rgb32f, Augment, AugmentParams};
use crate::decode::load_rgb;
use crate::error::{Error, Result};
use crate::resize::resize_rgb;
use crate::transform::Transform;

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
    let augmented = params.apply(to_rgb32f(&resized))?;
    transform.write_chw_f32(&augmented, out)
}

/// Loads the image file at `path` and makes it a `[1, 3, height, width]` model input
/// (no augmentation): what a prediction program feeds a model.
///
/// # Errors
/// [`Error::BadImage`] naming the file if it cannot be read or decoded,
/// [`Error::InvalidConfig`] for an invalid transform.
pub fn image_to_tensor(path: &std::path::Path, transform: &Transform) -> Result<Tensor> {
    transform.validate()?;
    let img = load_rgb(path).map_err(|reason| Error::BadImage {
        path: path.to_path_buf(),
        reason,
    })?;
    let mut buf = vec![0f32; transform.numel()];
    prepare_image(
        &img,
        transform,
        &Augment::none(),
        &mut rand::rng(),
        &mut buf,
    )?;
    Ok(Tensor::from_slice(&buf).view([
        1,
        3,
        i64::from(transform.height),
        i64::from(transform.width),
    ]))
}
