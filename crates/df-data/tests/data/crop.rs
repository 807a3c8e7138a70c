//! `Transform::center_crop`: the central part, as Pillow's `Image.crop` of the box
//! `((w − k) // 2, (h − k) // 2, … + k)` that the Keras peer (`benches/peers/keras_train_lfw.py`)
//! uses, before the resize; in the loader and in augmented batches alike.

use df_data::{prepare_image, Augment, ResizeFilter, Transform};
use image::{Rgb, RgbImage};
use rand::SeedableRng;

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x % 256) as u8,
            (y % 256) as u8,
            ((x * 7 + y * 3) % 256) as u8,
        ])
    })
}

#[test]
fn central_fraction_keeps_the_pillow_box() {
    // (side, fraction, kept side): 250 × 0.512 = 128 as in the LFW check.
    for (w, h, f, kw, kh) in [
        (250, 250, 0.512f32, 128, 128),
        (250, 200, 0.5, 125, 100),
        (7, 9, 0.3, 2, 3),
    ] {
        let t = Transform::unit(kh, kw).with_center_crop(Some(f));
        let (x, y, cw, ch) = t.center_crop_rect(w, h);
        assert_eq!((cw, ch), (kw, kh), "{w}x{h} at {f}");
        assert_eq!((x, y), ((w - kw) / 2, (h - kh) / 2), "{w}x{h} at {f}");
        // Same size out as kept: the transform is the crop itself, pixel for pixel.
        let img = gradient(w, h);
        let out = t.resize_image(&img);
        let expected = image::imageops::crop_imm(&img, x, y, kw, kh).to_image();
        assert_eq!(out, expected, "{w}x{h} at {f}");
    }
    // No crop, and a fraction of 1, keep the whole image.
    for t in [
        Transform::unit(5, 5),
        Transform::unit(5, 5).with_center_crop(Some(1.0)),
    ] {
        assert_eq!(t.center_crop_rect(250, 100), (0, 0, 250, 100));
    }
}

#[test]
fn crop_comes_before_resize_and_reaches_prepared_batches() {
    let img = gradient(250, 250);
    let t = Transform::unit(64, 64)
        .with_resize(ResizeFilter::Nearest)
        .with_center_crop(Some(0.512));
    let cropped = image::imageops::crop_imm(&img, 61, 61, 128, 128).to_image();
    let by_hand = Transform::unit(64, 64).resize_image(&cropped);
    assert_eq!(t.resize_image(&img), by_hand);

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut out = vec![0f32; t.numel()];
    prepare_image(&img, &t, &Augment::none(), &mut rng, &mut out).expect("prepare");
    let mut expected = vec![0f32; t.numel()];
    Transform::unit(64, 64)
        .write_chw_u8(&by_hand, &mut expected)
        .expect("write");
    assert_eq!(out, expected);
    // With augmentation on, the crop still applies first: an identity augmentation
    // (brightness × 1) gives the same values.
    let mut identity = Augment::none();
    identity.brightness_range = Some([1.0, 1.0]);
    assert!(!identity.is_none());
    prepare_image(&img, &t, &identity, &mut rng, &mut out).expect("prepare");
    let worst = out
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "augmented path differs by {worst}");
}

#[test]
fn invalid_fractions_are_errors_naming_the_option() {
    for f in [0.0f32, -0.5, 1.5, f32::NAN] {
        let err = Transform::unit(8, 8)
            .with_center_crop(Some(f))
            .validate()
            .expect_err("invalid fraction");
        assert!(err.to_string().contains("center_crop"), "{err}");
    }
}
