//! Face crops (no weights needed): the pixels of a box come out as they are, margins and
//! squaring take the region they say, what lies outside the picture is black, alignment
//! levels the eyes, and the selection keeps what it says.

use df_face::{crop_faces, select_faces, CropConfig, Error, Face, FaceSelect};
use image::{Rgb, RgbImage};

/// A picture whose every pixel is distinct: (x, y, x ^ y) modulo 256.
fn picture(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8])
    })
}

fn face(bbox: [f32; 4]) -> Face {
    Face {
        bbox,
        probability: 0.99,
        landmarks: [[0.0; 2]; 5],
    }
}

fn exact(size: u32, margin: f32, square: bool) -> CropConfig {
    CropConfig {
        size,
        margin,
        square,
        ..CropConfig::default()
    }
}

#[test]
fn a_box_at_its_own_size_is_copied_pixel_for_pixel() {
    let img = picture(120, 90);
    let crops = crop_faces(
        &img,
        &[face([30.0, 20.0, 70.0, 60.0])],
        &exact(40, 0.0, true),
    )
    .expect("crop");
    assert_eq!(crops.len(), 1);
    let c = &crops[0].image;
    assert_eq!(c.dimensions(), (40, 40));
    for (x, y, p) in c.enumerate_pixels() {
        assert_eq!(*p, *img.get_pixel(30 + x, 20 + y), "({x}, {y})");
    }
}

#[test]
fn margins_and_squaring_take_the_region_they_say_and_outside_is_black() {
    let img = picture(200, 160);
    // A 40×20 box centred at (100, 80); margin 0.5 → 60×30, squared → 60×60: x 70..130,
    // y 50..110.
    let crops = crop_faces(
        &img,
        &[face([80.0, 70.0, 120.0, 90.0])],
        &exact(60, 0.5, true),
    )
    .expect("crop");
    for (x, y, p) in crops[0].image.enumerate_pixels() {
        assert_eq!(*p, *img.get_pixel(70 + x, 50 + y), "({x}, {y})");
    }
    // Not squared: 60×30 stretched to 60 rows → every source row twice (bilinear at
    // half-pixel steps averages neighbours; the columns stay exact).
    let crops = crop_faces(
        &img,
        &[face([80.0, 70.0, 120.0, 90.0])],
        &exact(60, 0.5, false),
    )
    .expect("crop");
    let p = crops[0].image.get_pixel(10, 31);
    assert_eq!(p[0], img.get_pixel(80, 80)[0], "column 10 is x = 80");
    // A box in the corner: the part outside the picture is black.
    let crops =
        crop_faces(&img, &[face([0.0, 0.0, 20.0, 20.0])], &exact(40, 1.0, true)).expect("crop");
    let c = &crops[0].image;
    assert_eq!(*c.get_pixel(2, 2), Rgb([0, 0, 0]), "outside");
    assert_eq!(*c.get_pixel(30, 30), *img.get_pixel(20, 20), "inside");
}

#[test]
fn alignment_levels_the_eyes() {
    // Two bright dots, the eyes, on a line turned by 30° about (100, 100), 40 px apart.
    let mut img = RgbImage::from_pixel(200, 200, Rgb([0, 0, 0]));
    let angle = 30f32.to_radians();
    let (dx, dy) = (20.0 * angle.cos(), 20.0 * angle.sin());
    let eyes = [[100.0 - dx, 100.0 - dy], [100.0 + dx, 100.0 + dy]];
    for [ex, ey] in eyes {
        for y in -2i32..=2 {
            for x in -2i32..=2 {
                img.put_pixel(
                    (ex.round() as i32 + x) as u32,
                    (ey.round() as i32 + y) as u32,
                    Rgb([255, 255, 255]),
                );
            }
        }
    }
    let mut f = face([60.0, 60.0, 140.0, 140.0]);
    f.landmarks[0] = eyes[0];
    f.landmarks[1] = eyes[1];
    let centroid = |im: &RgbImage, left: bool| {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for (x, y, p) in im.enumerate_pixels() {
            if p[0] > 128 && ((x < 40) == left) {
                sx += x as f32;
                sy += y as f32;
                n += 1.0;
            }
        }
        (sx / n, sy / n)
    };
    let level = |align: bool| {
        let cfg = CropConfig {
            size: 80,
            margin: 0.0,
            align,
            ..CropConfig::default()
        };
        let crop = &crop_faces(&img, &[f], &cfg).expect("crop")[0].image;
        let (l, r) = (centroid(crop, true), centroid(crop, false));
        (r.1 - l.1, r.0 - l.0)
    };
    let (tilt, _) = level(false);
    assert!(tilt > 15.0, "the eyes are tilted without alignment: {tilt}");
    let (tilt, apart) = level(true);
    assert!(
        tilt.abs() < 1.0,
        "aligned eyes differ by {tilt} px in height"
    );
    assert!(
        (apart - 40.0).abs() < 1.5,
        "the eyes stay 40 px apart: {apart}"
    );
}

#[test]
fn selection_and_settings() {
    let faces = [
        face([0.0, 0.0, 10.0, 10.0]),
        face([0.0, 0.0, 50.0, 40.0]),
        face([0.0, 0.0, 30.0, 30.0]),
    ];
    let largest = select_faces(&faces, &CropConfig::default());
    assert_eq!(largest.len(), 1);
    assert_eq!(largest[0].bbox[2], 50.0);
    let all = CropConfig {
        select: FaceSelect::All,
        min_face_size: 20.0,
        ..CropConfig::default()
    };
    let kept: Vec<f32> = select_faces(&faces, &all)
        .iter()
        .map(|f| f.bbox[2])
        .collect();
    assert_eq!(
        kept,
        vec![50.0, 30.0],
        "largest first, the 10-px face left out"
    );
    let img = picture(64, 64);
    assert!(crop_faces(&img, &[], &CropConfig::default())
        .expect("no face")
        .is_empty());
    for (cfg, option) in [
        (
            CropConfig {
                size: 0,
                ..CropConfig::default()
            },
            "crop size",
        ),
        (
            CropConfig {
                margin: -0.1,
                ..CropConfig::default()
            },
            "margin",
        ),
        (
            CropConfig {
                min_face_size: f32::NAN,
                ..CropConfig::default()
            },
            "min_face_size",
        ),
    ] {
        match crop_faces(&img, &faces, &cfg) {
            Err(Error::Config { option: o, .. }) => assert_eq!(o, option),
            other => panic!("{option}: {other:?}"),
        }
    }
}
