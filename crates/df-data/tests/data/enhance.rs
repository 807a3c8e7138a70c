//! Colour jitter, the rescale round trip and JPEG re-compression against Pillow
//! (`scripts/fixtures/pillow_enhance.py`), and the new augmentations' draws.

use df_data::enhance::{adjust_contrast, adjust_saturation, rescale_roundtrip, scaled_side};
use df_data::{
    jpeg_encode, jpeg_roundtrip, sample_rng, to_rgb32f, to_rgb8, Augment, ColorJitter,
    RescaleAugment,
};
use image::{Rgb32FImage, RgbImage};

use crate::common::{fixture_json, u8s};

fn source(v: &serde_json::Value) -> RgbImage {
    let (w, h) = (
        v["width"].as_u64().expect("width") as u32,
        v["height"].as_u64().expect("height") as u32,
    );
    RgbImage::from_raw(w, h, u8s(&v["source"])).expect("source picture")
}

/// Largest absolute difference between two images, in grey levels.
fn max_diff(a: &Rgb32FImage, b: &[u8]) -> f32 {
    a.as_raw()
        .iter()
        .zip(b)
        .map(|(x, &y)| (x - f32::from(y)).abs())
        .fold(0.0, f32::max)
}

/// Peak signal-to-noise ratio of two 8-bit images, in dB.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

#[test]
fn contrast_and_saturation_equal_pillows_image_enhance_within_one_level() {
    let v = fixture_json("pillow_enhance", "enhance.json");
    let img = to_rgb32f(&source(&v));
    for (factor, pixels) in v["contrast"].as_object().expect("contrast") {
        let mut out = img.clone();
        adjust_contrast(&mut out, factor.parse().expect("factor"));
        // Pillow truncates each blended value to 8 bits; these are unrounded.
        let d = max_diff(&out, &u8s(pixels));
        assert!(d <= 1.0, "contrast {factor}: {d} grey levels from Pillow");
    }
    for (factor, pixels) in v["saturation"].as_object().expect("saturation") {
        let mut out = img.clone();
        adjust_saturation(&mut out, factor.parse().expect("factor"));
        // Pillow's luma is an integer (rounded), then the blend is truncated.
        let d = max_diff(&out, &u8s(pixels));
        assert!(d <= 1.5, "saturation {factor}: {d} grey levels from Pillow");
    }
}

#[test]
fn the_rescale_round_trip_equals_pillows_two_bilinear_resizes() {
    let v = fixture_json("pillow_enhance", "enhance.json");
    let src = source(&v);
    for case in v["rescale"].as_array().expect("rescale cases") {
        let scale = case["scale"].as_f64().expect("scale") as f32;
        let size = &case["size"];
        assert_eq!(
            u64::from(scaled_side(src.width(), scale)),
            size[0].as_u64().expect("w"),
            "{scale}"
        );
        assert_eq!(
            u64::from(scaled_side(src.height(), scale)),
            size[1].as_u64().expect("h"),
            "{scale}"
        );
        let out = to_rgb8(&rescale_roundtrip(&to_rgb32f(&src), scale));
        assert_eq!(out.as_raw(), &u8s(&case["pixels"]), "scale {scale}");
    }
}

#[test]
fn jpeg_recompression_is_close_to_pillows_at_the_same_quality() {
    let v = fixture_json("pillow_enhance", "enhance.json");
    let src = source(&v);
    for (quality, pixels) in v["jpeg_444"].as_object().expect("jpeg_444") {
        let q: u8 = quality.parse().expect("quality");
        let ours = to_rgb8(&jpeg_roundtrip(&to_rgb32f(&src), q).expect("round trip"));
        let pillow = u8s(pixels);
        // The encoder writes IJG tables at the quality asked, 4:4:4 (read back by the
        // audit below); Pillow's libjpeg with the same settings decodes to within 40 dB
        // of it, and both lose the same detail: their distances to the source agree
        // within half a dB. (Pillow's default 4:2:0 is 26–31 dB away: the
        // chroma subsampling, not the quantisation, differs.)
        let between = psnr(ours.as_raw(), &pillow);
        assert!(
            between >= 45.0,
            "quality {q}: {between:.1} dB between image's and Pillow's JPEG"
        );
        let (ours_loss, pillow_loss) = (
            psnr(ours.as_raw(), src.as_raw()),
            psnr(&pillow, src.as_raw()),
        );
        eprintln!(
            "quality {q}: {between:.1} dB from Pillow's; {ours_loss:.2} (ours) and \
             {pillow_loss:.2} dB (Pillow's) from the source"
        );
        assert!(
            (ours_loss - pillow_loss).abs() <= 0.1,
            "quality {q}: {ours_loss:.2} vs {pillow_loss:.2} dB from the source"
        );
        let buf = jpeg_encode(&src, q).expect("encode");
        let facts = df_data::audit::headers::read_facts(&buf)
            .expect("header")
            .jpeg
            .expect("a JPEG");
        assert_eq!(
            (
                facts.quality,
                facts.standard_tables,
                facts.subsampling.as_str()
            ),
            (q, true, "4:4:4")
        );
    }
}

#[test]
fn the_new_augmentations_leave_every_older_draw_unchanged() {
    // A run configured before rescale and colour jitter existed draws the same
    // parameters for everything it had, whatever is added after it.
    let old = Augment::forensic();
    let new = Augment {
        rescale: Some(RescaleAugment {
            scale: [0.5, 1.0],
            probability: 1.0,
        }),
        color_jitter: Some(ColorJitter {
            contrast: [0.8, 1.2],
            saturation: [0.7, 1.3],
            probability: 1.0,
        }),
        ..old
    };
    for index in 0..50 {
        let a = old.sample(&mut sample_rng(3, 1, index), 64, 64);
        let b = new.sample(&mut sample_rng(3, 1, index), 64, 64);
        assert_eq!((a.contrast, a.saturation, a.rescale), (None, None, None));
        assert!(b.contrast.is_some() && b.saturation.is_some() && b.rescale.is_some());
        assert_eq!(
            df_data::AugmentParams {
                contrast: None,
                saturation: None,
                rescale: None,
                ..b
            },
            a,
            "sample {index}"
        );
    }
}

#[test]
fn a_configuration_without_the_new_augmentations_serialises_as_before() {
    // The keys `experiment.json` held for an augmentation before rescale and colour
    // jitter existed: a resumed run compares the stored JSON with the new one.
    let before = [
        "blur",
        "brightness_range",
        "height_shift_range",
        "horizontal_flip",
        "jpeg",
        "noise",
        "random_crop",
        "rotation_range",
        "shear_range",
        "vertical_flip",
        "width_shift_range",
        "zoom_range",
    ];
    for augment in [Augment::none(), Augment::study(), Augment::forensic()] {
        let json = serde_json::to_value(augment).expect("serialisable");
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, before);
        let back: Augment = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, augment);
    }
    let with = Augment::from_spec("study,rescale:0.5-1").expect("spec");
    let json = serde_json::to_value(with).expect("serialisable");
    assert_eq!(json["rescale"]["scale"], serde_json::json!([0.5, 1.0]));
    assert_eq!(
        serde_json::from_value::<Augment>(json).expect("reads back"),
        with
    );
}
