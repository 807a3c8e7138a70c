//! Robustness perturbations: the resize equals Pillow's bilinear downscale
//! (`scripts/fixtures/pillow_enhance.py`), a perturbed source loads what the perturbation
//! makes of each image, and the noise is the same in every run.

use df_data::perturb::{Perturbation, Perturbed};
use df_data::{synthetic, ImageSource};
use image::RgbImage;

use crate::common::{fixture_json, u8s};

#[test]
fn resize_is_pillows_bilinear_downscale() {
    let v = fixture_json("pillow_enhance", "enhance.json");
    let (w, h) = (
        v["width"].as_u64().expect("w") as u32,
        v["height"].as_u64().expect("h") as u32,
    );
    let src = RgbImage::from_raw(w, h, u8s(&v["source"])).expect("source");
    for case in v["rescale"].as_array().expect("cases") {
        let scale = case["scale"].as_f64().expect("scale") as f32;
        let out = Perturbation::Resize(scale).apply(&src, 0).expect("resize");
        let size = &case["size"];
        assert_eq!(
            (u64::from(out.width()), u64::from(out.height())),
            (size[0].as_u64().expect("w"), size[1].as_u64().expect("h"))
        );
        assert_eq!(out.as_raw(), &u8s(&case["small"]), "scale {scale}");
    }
}

#[test]
fn a_perturbed_source_loads_each_image_perturbed_with_its_own_noise() {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let set = synthetic::generate(tmp.path().join("data"), 3, 32, 1).expect("synthetic set");
    for p in Perturbation::parse_all(&[
        "jpeg:40",
        "blur:1.5",
        "resize:0.5",
        "noise:0.05",
        "resize:0.5+jpeg:90",
    ])
    .expect("valid")
    {
        let perturbed = Perturbed::new(set.clone(), p.clone());
        assert_eq!(
            (perturbed.len(), perturbed.skipped()),
            (set.len(), set.skipped().to_vec())
        );
        for i in 0..set.len() {
            assert_eq!(
                (perturbed.label(i), perturbed.path(i)),
                (set.label(i), set.path(i))
            );
            let clean = set.load(i).expect("clean image");
            let got = perturbed.load(i).expect("perturbed image");
            assert_eq!(
                got,
                p.apply(&clean, i as u64).expect("apply"),
                "{p} image {i}"
            );
            assert_ne!(got, clean, "{p} changed nothing in image {i}");
            assert_eq!(
                perturbed.load(i).expect("again"),
                got,
                "{p} differs between loads"
            );
        }
    }
    // A chain is its steps in turn: shrink first, then re-save at one quality.
    let chain = Perturbation::parse("resize:0.5+jpeg:90").expect("chain");
    let img = set.load(0).expect("image");
    let shrunk = Perturbation::Resize(0.5).apply(&img, 0).expect("resize");
    assert_eq!(
        chain[0].apply(&img, 0).expect("chain"),
        Perturbation::Jpeg(90).apply(&shrunk, 0).expect("jpeg")
    );
    // Image i's noise is seeded by i: two images get different noise fields.
    let noise = Perturbation::Noise(0.05);
    let flat = RgbImage::from_pixel(16, 16, image::Rgb([128, 128, 128]));
    assert_ne!(
        noise.apply(&flat, 0).expect("noise"),
        noise.apply(&flat, 1).expect("noise")
    );
}
