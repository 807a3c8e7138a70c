//! Augmentations: against scipy / Pillow, flips and rotations against tensor ops, and
//! reproducibility.

use df_data::{
    add_gaussian_noise, gaussian_blur, jpeg_roundtrip, prepare_image, prepare_with_params,
    sample_rng, to_rgb32f, to_rgb8, warp_affine, Affine, AffineParams, Augment, AugmentParams,
    BlurAugment, JpegAugment, NoiseAugment, RandomCrop, Transform,
};
use image::{Rgb32FImage, RgbImage};
use rand::SeedableRng;
use tch::Tensor;

use crate::common::{f32s, fixture_json, pattern, u8s};

fn reference_image() -> (serde_json::Value, Rgb32FImage) {
    let v = fixture_json("augment_reference", "augment.json");
    let (w, h) = (
        v["width"].as_u64().expect("w") as u32,
        v["height"].as_u64().expect("h") as u32,
    );
    let img = Rgb32FImage::from_raw(w, h, f32s(&v["image"])).expect("size");
    (v, img)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn affine_warp_matches_keras_composition_in_scipy() {
    let (v, img) = reference_image();
    for case in v["affine"].as_array().expect("affine") {
        let p: AffineParams = serde_json::from_value(case["params"].clone()).expect("params");
        let m = Affine::from_params(&p, img.width(), img.height());
        let got = warp_affine(&img, &m);
        let d = max_diff(got.as_raw(), &f32s(&case["data"]));
        assert!(
            d < 2e-3,
            "{p:?}: max |diff| {d} from scipy.ndimage.affine_transform"
        );
    }
}

#[test]
fn rotation_matches_pillow_rotate_direction_and_centre() {
    let (v, img) = reference_image();
    let (w, h) = img.dimensions();
    let img8 = df_data::to_rgb8(&img);
    for case in v["rotate"].as_array().expect("rotate") {
        let angle = case["angle"].as_f64().expect("angle") as f32;
        let want = u8s(&case["data"]);
        let got = warp_affine(&to_rgb32f(&img8), &Affine::rotation(angle, w, h));
        // Pillow fills outside the source with black; compare where the source point
        // lies at least one pixel inside.
        let m = Affine::rotation(angle, w, h);
        let mut compared = 0;
        let mut worst = 0f32;
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = m.apply(f64::from(x), f64::from(y));
                if sx < 1.0 || sy < 1.0 || sx > f64::from(w) - 2.0 || sy > f64::from(h) - 2.0 {
                    continue;
                }
                for c in 0..3 {
                    let g = got.get_pixel(x, y)[c];
                    let p = f32::from(want[((y * w + x) * 3 + c as u32) as usize]);
                    worst = worst.max((g - p).abs());
                }
                compared += 1;
            }
        }
        assert!(
            compared > (w * h / 3) as usize,
            "{angle}: only {compared} pixels compared"
        );
        assert!(
            worst <= 1.0,
            "rotate({angle}): max |diff| {worst} from Pillow"
        );
    }
}

#[test]
fn blur_matches_scipy_gaussian_filter() {
    let (v, img) = reference_image();
    for case in v["blur"].as_array().expect("blur") {
        let sigma = case["sigma"].as_f64().expect("sigma") as f32;
        let mut got = img.clone();
        gaussian_blur(&mut got, sigma);
        let d = max_diff(got.as_raw(), &f32s(&case["data"]));
        assert!(d < 1e-3, "sigma {sigma}: max |diff| {d} from scipy");
    }
}

/// The blur as a direct loop per pixel and tap (edge taps clamped): the definition the
/// row-wise implementation must reproduce bit for bit, since training runs record which
/// images their augmentations gave.
fn blur_per_pixel(img: &mut Rgb32FImage, sigma: f32) {
    let radius = ((3.0 * sigma + 0.5).floor() as i64).max(1);
    let mut k: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    let (w, h) = (img.width() as i64, img.height() as i64);
    let data: &mut [f32] = img;
    let idx = |x: i64, y: i64| (y * w + x) as usize * 3;
    // Pass 0 along rows, pass 1 along columns, each from a copy of the previous result.
    for pass in 0..2 {
        let src = data.to_vec();
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0f32; 3];
                for (j, kv) in k.iter().enumerate() {
                    let p = if pass == 0 {
                        idx((x + j as i64 - radius).clamp(0, w - 1), y)
                    } else {
                        idx(x, (y + j as i64 - radius).clamp(0, h - 1))
                    };
                    for c in 0..3 {
                        acc[c] += src[p + c] * kv;
                    }
                }
                data[idx(x, y)..idx(x, y) + 3].copy_from_slice(&acc);
            }
        }
    }
}

#[test]
fn the_blur_and_the_8_bit_rounding_equal_their_direct_definitions_bit_for_bit() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // Sizes narrower than the kernel, square, wide and tall.
    for (w, h) in [(1, 1), (2, 5), (5, 2), (7, 7), (33, 20), (128, 128)] {
        let img = Rgb32FImage::from_fn(w, h, |_, _| {
            use rand::Rng;
            image::Rgb([
                rng.random_range(0.0..255.0),
                rng.random_range(0.0..255.0),
                rng.random_range(0.0..255.0),
            ])
        });
        for sigma in [0.3f32, 0.7, 1.0, 1.5, 3.0] {
            let (mut fast, mut direct) = (img.clone(), img.clone());
            gaussian_blur(&mut fast, sigma);
            blur_per_pixel(&mut direct, sigma);
            let same = fast
                .as_raw()
                .iter()
                .zip(direct.as_raw())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{w}x{h}, sigma {sigma}: the blur differs from the per-pixel loop"
            );
        }
    }
    // Every half step and its neighbours, out-of-range values and NaN.
    let mut values = vec![
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        -0.5,
        -0.51,
        1e9,
    ];
    for i in -2..=520 {
        let v = i as f32 * 0.5;
        values.extend([v, v.next_down(), v.next_up()]);
    }
    values.extend((0..10_000).map(|i| i as f32 * 0.02573));
    let img = Rgb32FImage::from_raw(values.len() as u32, 1, {
        values.iter().flat_map(|&v| [v, v, v]).collect()
    })
    .expect("a row");
    let got = to_rgb8(&img);
    for (v, px) in values.iter().zip(got.pixels()) {
        assert_eq!(px[0], v.round().clamp(0.0, 255.0) as u8, "{v:?}");
    }
}

/// `img` made into a `[3, H, W]` tensor of 0–255 values by the pipeline, with `params`.
fn chw(img: &RgbImage, params: &AugmentParams) -> Tensor {
    let t = Transform::unit(img.height(), img.width()).with_scale(1.0);
    let mut out = vec![0f32; t.numel()];
    prepare_with_params(img, &t, params, &mut out).expect("prepare");
    Tensor::from_slice(&out).view([3, i64::from(img.height()), i64::from(img.width())])
}

fn no_op() -> AugmentParams {
    let mut rng = sample_rng(0, 0, 0);
    Augment::none().sample(&mut rng, 1, 1)
}

fn assert_close(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
    assert_eq!(a.size(), b.size(), "{what}");
    let d = (a - b).abs().max().double_value(&[]);
    assert!(d <= tol, "{what}: max |diff| {d}");
}

#[test]
fn flips_and_quarter_turns_are_the_tensor_operations() {
    let img = pattern(24, 24, 3);
    let base = chw(&img, &no_op());
    let flip_h = AugmentParams {
        flip_horizontal: true,
        ..no_op()
    };
    let flip_v = AugmentParams {
        flip_vertical: true,
        ..no_op()
    };
    assert_close(
        &chw(&img, &flip_h),
        &base.flip([2]),
        0.0,
        "horizontal flip = flip(W)",
    );
    assert_close(
        &chw(&img, &flip_v),
        &base.flip([1]),
        0.0,
        "vertical flip = flip(H)",
    );
    // Flipping twice is the identity.
    let flipped = df_data::to_rgb8(&flip_h.apply(to_rgb32f(&img)).expect("flip"));
    assert_close(&chw(&flipped, &flip_h), &base, 0.0, "flip twice");

    let rot = |deg: f32| AugmentParams {
        affine: AffineParams {
            rotation_deg: deg,
            ..AffineParams::IDENTITY
        },
        ..no_op()
    };
    // torch.rot90(x, 1, dims=[H, W]) turns counter-clockwise, as positive angles do here.
    assert_close(
        &chw(&img, &rot(90.0)),
        &base.rot90(1, [1, 2]),
        1e-4,
        "rotation 90 = rot90",
    );
    assert_close(
        &chw(&img, &rot(-90.0)),
        &base.rot90(-1, [1, 2]),
        1e-4,
        "rotation -90 = rot90(-1)",
    );
    assert_close(
        &chw(&img, &rot(180.0)),
        &base.flip([1, 2]),
        1e-4,
        "rotation 180 = flip both",
    );
    assert_close(
        &chw(&img, &rot(360.0)),
        &base,
        1e-4,
        "rotation 360 = identity",
    );
    // A shift by whole pixels moves the content (right = +x), edges replicated.
    let shift = AugmentParams {
        affine: AffineParams {
            shift_x: 3.0,
            ..AffineParams::IDENTITY
        },
        ..no_op()
    };
    let shifted = chw(&img, &shift);
    assert_close(
        &shifted.narrow(2, 3, 21),
        &base.narrow(2, 0, 21),
        1e-4,
        "shift right by 3",
    );
    assert_close(
        &shifted.narrow(2, 0, 3),
        &base.narrow(2, 0, 1).expand([3, 24, 3], false),
        1e-4,
        "edge fill",
    );
}

#[test]
fn augmentation_is_reproducible_per_seed_epoch_and_index() {
    let img = pattern(40, 32, 5);
    let t = Transform::unit(32, 32);
    let aug = Augment::forensic();
    let run = |seed, epoch, index| {
        let mut out = vec![0f32; t.numel()];
        prepare_image(
            &img,
            &t,
            &aug,
            &mut sample_rng(seed, epoch, index),
            &mut out,
        )
        .expect("prepare");
        out
    };
    let a = run(1, 2, 3);
    assert_eq!(a, run(1, 2, 3));
    assert_ne!(a, run(1, 2, 4));
    assert_ne!(a, run(1, 3, 3));
    assert_ne!(a, run(2, 2, 3));
    // Drawn parameters stay within the configured ranges.
    let study = Augment::study();
    for i in 0..200 {
        let p = study.sample(&mut sample_rng(9, 0, i), 100, 80);
        assert!(p.affine.rotation_deg.abs() <= 10.0);
        assert!(p.affine.shift_x.abs() <= 10.0 + 1e-4 && p.affine.shift_y.abs() <= 8.0 + 1e-4);
        assert!((0.9..=1.1).contains(&p.affine.zoom_x) && (0.9..=1.1).contains(&p.affine.zoom_y));
        assert!(p.affine.shear_deg.abs() <= 5.0);
        assert!((0.8..=1.2).contains(&p.brightness.expect("brightness")));
        assert!(p.crop.is_none() && p.jpeg_quality.is_none() && p.blur_sigma.is_none());
    }
    // Half the samples are flipped.
    let flips = (0..2000)
        .filter(|&i| study.sample(&mut sample_rng(9, 1, i), 8, 8).flip_horizontal)
        .count();
    assert!((900..1100).contains(&flips), "{flips} flips of 2000");
    // No augmentation draws nothing and is the plain resize.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut out = vec![0f32; t.numel()];
    prepare_image(&img, &t, &Augment::none(), &mut rng, &mut out).expect("prepare");
    let plain = df_data::resize_rgb(&img, 32, 32, df_data::ResizeFilter::Nearest);
    assert_eq!(out[5], f32::from(plain.get_pixel(5, 0)[0]) * (1.0 / 255.0));
}

#[test]
fn brightness_crop_jpeg_and_noise_do_what_they_say() {
    let img = pattern(32, 32, 1);
    let base = chw(&img, &no_op());
    let bright = AugmentParams {
        brightness: Some(0.5),
        ..no_op()
    };
    assert_close(
        &chw(&img, &bright),
        &(&base * 0.5),
        1e-4,
        "brightness 0.5 halves values",
    );

    // A crop of the top-left half, resized back up with nearest, repeats each pixel twice.
    let crop = AugmentParams {
        crop: Some(df_data::CropFraction {
            scale: 0.5,
            x: 0.0,
            y: 0.0,
        }),
        ..no_op()
    };
    let cropped = chw(&img, &crop);
    let quarter = base.narrow(1, 0, 16).narrow(2, 0, 16);
    let up = quarter
        .repeat_interleave_self_int(2, 1, None)
        .repeat_interleave_self_int(2, 2, None);
    assert_close(&cropped, &up, 0.0, "crop + nearest resize");

    // JPEG re-compression: close to the input, closer at higher quality.
    let smooth = Rgb32FImage::from_fn(64, 64, |x, y| {
        image::Rgb([
            x as f32 * 3.0,
            y as f32 * 2.0 + 40.0,
            128.0 + 60.0 * ((x + y) as f32 / 20.0).sin(),
        ])
    });
    let err = |q| {
        let back = jpeg_roundtrip(&smooth, q).expect("jpeg");
        let mse: f32 = back
            .as_raw()
            .iter()
            .zip(smooth.as_raw())
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f32>()
            / smooth.as_raw().len() as f32;
        10.0 * (255.0f32 * 255.0 / mse).log10()
    };
    let (low, high) = (err(30), err(95));
    assert!(
        high > 35.0 && low > 25.0 && high > low + 3.0,
        "PSNR q30 {low:.1} dB, q95 {high:.1} dB"
    );

    // Noise: zero mean, the requested standard deviation.
    let mut grey = Rgb32FImage::from_pixel(128, 128, image::Rgb([128.0, 128.0, 128.0]));
    add_gaussian_noise(&mut grey, 6.0, &mut sample_rng(3, 0, 0));
    let n = grey.as_raw().len() as f32;
    let mean = grey.as_raw().iter().map(|v| v - 128.0).sum::<f32>() / n;
    let std = (grey
        .as_raw()
        .iter()
        .map(|v| (v - 128.0 - mean).powi(2))
        .sum::<f32>()
        / n)
        .sqrt();
    assert!(
        mean.abs() < 0.1 && (std - 6.0).abs() < 0.1,
        "mean {mean}, std {std}"
    );

    // Configuration checks.
    let bad = Augment {
        jpeg: Some(JpegAugment {
            quality: [0, 90],
            probability: 0.5,
        }),
        ..Augment::none()
    };
    assert!(bad.validate().is_err());
    let bad = Augment {
        blur: Some(BlurAugment {
            sigma: [2.0, 1.0],
            probability: 0.5,
        }),
        ..Augment::none()
    };
    assert!(bad.validate().is_err());
    let bad = Augment {
        noise: Some(NoiseAugment {
            std: [1.0, 2.0],
            probability: 1.5,
        }),
        ..Augment::none()
    };
    assert!(bad.validate().is_err());
    let bad = Augment {
        random_crop: Some(RandomCrop {
            min_scale: 0.0,
            probability: 0.5,
        }),
        ..Augment::none()
    };
    assert!(bad.validate().is_err());
    assert!(Augment::forensic().validate().is_ok() && Augment::study().validate().is_ok());
    assert!(Augment::default().is_none());
}

/// `img` through the pipeline with `params`, and through the documented steps (resize,
/// `AugmentParams::apply`, the transform's normalisation).
fn pipeline_and_stepwise(
    img: &RgbImage,
    t: &Transform,
    params: &AugmentParams,
) -> (Vec<f32>, Vec<f32>) {
    let mut pipeline = vec![0f32; t.numel()];
    prepare_with_params(img, t, params, &mut pipeline).expect("prepare");
    let resized = df_data::resize_rgb(img, t.width, t.height, t.resize);
    let stepwise = params.apply(to_rgb32f(&resized)).expect("apply");
    let mut steps = vec![0f32; t.numel()];
    t.write_chw_f32(&stepwise, &mut steps).expect("write");
    (pipeline, steps)
}

#[test]
fn fused_fast_path_equals_the_step_by_step_composition() {
    // The loader warps, flips, brightens and normalises in one pass; the result must be
    // the values of the documented steps: resize, `AugmentParams::apply`, then the
    // transform's normalisation.
    let img = pattern(40, 30, 2);
    let aug = Augment {
        vertical_flip: true,
        ..Augment::study()
    };
    for t in [
        Transform::unit(32, 28).with_resize(df_data::ResizeFilter::Bilinear),
        Transform::imagenet(28, 32).with_channel_order(df_data::ChannelOrder::Bgr),
    ] {
        for i in 0..40 {
            let params = aug.sample(&mut sample_rng(5, 0, i), t.width, t.height);
            let (fast, slow) = pipeline_and_stepwise(&img, &t, &params);
            assert_eq!(fast, slow, "sample {i}: {params:?}");
        }
    }
}

#[test]
fn the_eight_bit_pipeline_equals_the_float_steps_for_every_transform() {
    // The loader keeps an image in 8 bits between the steps that work on 8-bit values
    // (flips, the rescale round trip, JPEG) and converts to floats only where a step needs
    // them; `AugmentParams::apply` converts at every step. The values must be the same for
    // every combination of drawn transforms.
    let img = pattern(40, 30, 2);
    let t = Transform::unit(32, 28).with_resize(df_data::ResizeFilter::Bilinear);
    let specs = [
        "flip,jpeg:30-95,rescale:0.4-1@0.6,blur:0-1.5@0.3",
        "study,contrast:0.5-1.5@0.5,saturation:0.5-1.5@0.5,rescale:0.5-1@0.5,jpeg:30-95@0.5,\
         blur:0-1@0.5,noise:1-5@0.5",
        "vflip,rescale:0.5-0.9,jpeg:40-60,noise:2-3@0.5",
        // The forensic preset without its random crop (the helper's steps do not crop).
        "forensic,crop:1@0,brightness:0.8-1.2",
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for spec in specs {
        let aug = Augment::from_spec(spec).expect(spec);
        for i in 0..40 {
            let params = aug.sample(&mut sample_rng(9, 1, i), t.width, t.height);
            let (got, want) = pipeline_and_stepwise(&img, &t, &params);
            let first = got.iter().zip(&want).position(|(a, b)| a != b);
            assert_eq!(first, None, "{spec}, sample {i}: {params:?}");
            kinds.extend(
                [
                    (
                        "rescale then jpeg",
                        params.rescale.is_some() && params.jpeg_quality.is_some(),
                    ),
                    (
                        "blur then jpeg",
                        params.blur_sigma.is_some() && params.jpeg_quality.is_some(),
                    ),
                    (
                        "jpeg then noise",
                        params.jpeg_quality.is_some() && params.noise_std.is_some(),
                    ),
                    (
                        "colour then rescale",
                        params.contrast.is_some() && params.rescale.is_some(),
                    ),
                    ("warp", !params.affine.is_identity()),
                ]
                .into_iter()
                .filter_map(|(k, drawn)| drawn.then_some(k)),
            );
        }
    }
    assert_eq!(kinds.len(), 5, "every order of steps drawn: {kinds:?}");
}

#[test]
fn colour_jitter_and_rescale_alone_reach_the_pipeline() {
    // Without a blur, JPEG or noise, the loader takes its one-pass path; the transforms it
    // does not fuse (contrast, saturation, the rescale round trip) must still be applied.
    let img = pattern(40, 30, 2);
    let t = Transform::unit(32, 28).with_resize(df_data::ResizeFilter::Bilinear);
    for spec in ["contrast:0.5-0.6", "saturation:0.2-0.3", "rescale:0.4-0.5"] {
        let aug = Augment::from_spec(spec).expect(spec);
        let params = aug.sample(&mut sample_rng(5, 0, 0), t.width, t.height);
        let (got, want) = pipeline_and_stepwise(&img, &t, &params);
        let resized = df_data::resize_rgb(&img, t.width, t.height, t.resize);
        let mut plain = vec![0f32; t.numel()];
        t.write_chw_f32(&to_rgb32f(&resized), &mut plain)
            .expect("write");
        assert_ne!(want, plain, "{spec}: the transform changes the image");
        assert_eq!(got, want, "{spec}: the pipeline left it out ({params:?})");
    }
}
