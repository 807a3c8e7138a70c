//! Colour and resolution augmentations with Pillow's semantics: contrast and saturation
//! as `ImageEnhance.Contrast` and `ImageEnhance.Color` blend with their degenerate image,
//! and a downscale-then-upscale round trip through Pillow-exact bilinear resizing.
//!
//! Images are 0–255 `f32` ([`Rgb32FImage`]); Pillow works on 8-bit values and truncates
//! each blended value, so results agree with it within one grey level.

use image::{Rgb32FImage, RgbImage};

use crate::augment::{to_rgb32f, to_rgb8};
use crate::resize::{resize_rgb, ResizeFilter};

/// ITU-R 601 luma of an RGB value (Pillow's `convert("L")` weights).
fn luma(p: &[f32]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

/// Blends every value towards `degenerate` by `factor`: `d + factor · (v − d)`,
/// clamped to 0–255 (Pillow's `Image.blend(degenerate, image, factor)`).
fn blend(img: &mut Rgb32FImage, factor: f32, degenerate: impl Fn(&[f32]) -> f32) {
    for p in img.pixels_mut() {
        let d = degenerate(&p.0);
        for v in p.0.iter_mut() {
            *v = (d + factor * (*v - d)).clamp(0.0, 255.0);
        }
    }
}

/// Pillow's `ImageEnhance.Contrast(image).enhance(factor)`: every pixel blended with a
/// flat grey at the image's mean luma (rounded to an integer, as Pillow does).
pub fn adjust_contrast(img: &mut Rgb32FImage, factor: f32) {
    let n = (img.width() as usize * img.height() as usize).max(1);
    let mean = img.pixels().map(|p| f64::from(luma(&p.0))).sum::<f64>() / n as f64;
    let mean = (mean + 0.5).floor() as f32;
    blend(img, factor, |_| mean);
}

/// Pillow's `ImageEnhance.Color(image).enhance(factor)`: every pixel blended with its
/// own luma (0: greyscale, 1: unchanged, above 1: more saturated).
pub fn adjust_saturation(img: &mut Rgb32FImage, factor: f32) {
    blend(img, factor, luma);
}

/// The side a downscale by `scale` gives: `max(1, floor(side · scale + 0.5))`.
pub fn scaled_side(side: u32, scale: f32) -> u32 {
    ((f64::from(side) * f64::from(scale) + 0.5).floor() as u32).max(1)
}

/// Downscales `img` by `scale` (each side [`scaled_side`]) and upscales it back to its
/// size, both with Pillow-exact bilinear resizing on 8-bit values: the image a smaller
/// source would give.
pub fn rescale_roundtrip(img: &Rgb32FImage, scale: f32) -> Rgb32FImage {
    to_rgb32f(&rescale_roundtrip_u8(&to_rgb8(img), scale))
}

/// As [`rescale_roundtrip`] on an 8-bit image.
pub(crate) fn rescale_roundtrip_u8(img: &RgbImage, scale: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let small = resize_rgb(
        img,
        scaled_side(w, scale),
        scaled_side(h, scale),
        ResizeFilter::Bilinear,
    );
    resize_rgb(&small, w, h, ResizeFilter::Bilinear)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_one_changes_nothing_and_zero_gives_the_degenerate_image() {
        let img = Rgb32FImage::from_fn(5, 4, |x, y| {
            image::Rgb([x as f32 * 40.0, y as f32 * 60.0, 100.0])
        });
        let mut same = img.clone();
        adjust_contrast(&mut same, 1.0);
        adjust_saturation(&mut same, 1.0);
        assert_eq!(same, img);
        let mut grey = img.clone();
        adjust_saturation(&mut grey, 0.0);
        assert!(grey.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        let mut flat = img.clone();
        adjust_contrast(&mut flat, 0.0);
        let first = flat.get_pixel(0, 0).0;
        assert!(flat.pixels().all(|p| p.0 == first) && first[0] == first[0].round());
    }
}
