//! Self-blended pseudo-fakes: changed only inside the grown face box, exactly the blend
//! of the source and the real through the mask, and the same for the same seed.

use df_data::sbi::{self_blend, FaceGeometry, MaskShape, SbiConfig};
use df_data::{sample_rng, to_rgb32f};
use image::RgbImage;

use crate::common::pattern;

fn face() -> FaceGeometry {
    FaceGeometry {
        bbox: [30.0, 24.0, 70.0, 76.0],
        landmarks: [
            [41.0, 42.0],
            [59.0, 42.0],
            [50.0, 52.0],
            [43.0, 63.0],
            [57.0, 63.0],
        ],
    }
}

fn real() -> RgbImage {
    pattern(100, 100, 3)
}

#[test]
fn a_pseudo_fake_differs_from_its_real_only_inside_the_grown_face_box() {
    let real = real();
    for (seed, shape) in (0..12).zip(
        [MaskShape::Hull, MaskShape::Ellipse, MaskShape::Either]
            .iter()
            .cycle(),
    ) {
        let config = SbiConfig {
            shape: *shape,
            ..SbiConfig::default()
        };
        let fake =
            self_blend(&real, &face(), &config, &mut sample_rng(seed, 0, 0)).expect("pseudo-fake");
        let [x1, y1, x2, y2] = fake.region;
        // The box [30, 70] x [24, 76] grown 1.3 times about its centre.
        assert_eq!(fake.region, [24.0, 16.2, 76.0, 83.8]);
        let mut changed_inside = 0;
        for (x, y, p) in fake.image.enumerate_pixels() {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let inside = px >= x1 && px < x2 && py >= y1 && py < y2;
            if !inside {
                assert_eq!(
                    p,
                    real.get_pixel(x, y),
                    "seed {seed}: pixel ({x}, {y}) outside the region changed"
                );
                assert_eq!(fake.mask[(y * 100 + x) as usize], 0.0);
            } else if p != real.get_pixel(x, y) {
                changed_inside += 1;
            }
        }
        // The face is blended: a good part of the box changed.
        assert!(
            changed_inside > 400,
            "seed {seed}: only {changed_inside} pixels changed"
        );
        // Centred on the landmarks: the nose is inside the mask.
        assert!(
            fake.mask[52 * 100 + 50] > 0.2,
            "seed {seed}: nose weight {}",
            fake.mask[52 * 100 + 50]
        );
        assert!(fake.mask.iter().all(|m| (0.0..=1.0).contains(m)));
    }
}

#[test]
fn the_blend_is_exactly_mask_times_source_plus_the_rest_of_the_real() {
    let real = real();
    let fake = self_blend(
        &real,
        &face(),
        &SbiConfig::default(),
        &mut sample_rng(7, 0, 0),
    )
    .expect("pseudo-fake");
    let target = to_rgb32f(&real);
    for (i, (x, y, p)) in fake.image.enumerate_pixels().enumerate() {
        let m = fake.mask[i];
        let (s, t) = (fake.source.get_pixel(x, y), target.get_pixel(x, y));
        for c in 0..3 {
            let want = (m * s[c] + (1.0 - m) * t[c]).round().clamp(0.0, 255.0) as u8;
            assert_eq!(p[c], want, "pixel ({x}, {y}) channel {c}");
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_pseudo_fake_and_another_seed_another() {
    let real = real();
    let make = |seed| {
        self_blend(
            &real,
            &face(),
            &SbiConfig::default(),
            &mut sample_rng(seed, 2, 5),
        )
        .expect("pseudo-fake")
    };
    let (a, b, c) = (make(1), make(1), make(2));
    assert_eq!(a.image, b.image);
    assert_eq!(a.mask, b.mask);
    assert_ne!(a.image, c.image);
}

#[test]
fn bad_faces_and_settings_are_refused_by_name() {
    let real = real();
    let mut rng = sample_rng(0, 0, 0);
    let outside = FaceGeometry {
        bbox: [200.0, 200.0, 240.0, 240.0],
        ..face()
    };
    let e = self_blend(&real, &outside, &SbiConfig::default(), &mut rng)
        .expect_err("outside")
        .to_string();
    assert!(e.contains("sbi.face") && e.contains("100×100"), "{e}");
    let nan = FaceGeometry {
        bbox: [f32::NAN, 24.0, 70.0, 76.0],
        ..face()
    };
    assert!(self_blend(&real, &nan, &SbiConfig::default(), &mut rng).is_err());
    let bad = SbiConfig {
        blend: [0.5, 1.5],
        ..SbiConfig::default()
    };
    let e = self_blend(&real, &face(), &bad, &mut rng)
        .expect_err("blend")
        .to_string();
    assert!(e.contains("sbi.blend"), "{e}");
}
