//! df-face without ../shared: the weights `scripts/setup.sh` converts (the default test
//! command runs the set-up first), settings and inputs refused by name, and pictures with
//! no face. Parity with facenet-pytorch on real photos is in the shared-data suite
//! (`tests/shared_data/faces.rs`).

use df_face::{default_weights_path, Error, Mtcnn, MtcnnConfig};
use image::{Rgb, RgbImage};
use tch::{Device, Kind, Tensor};

fn detector() -> Mtcnn {
    let path = default_weights_path().expect("the MTCNN weights: run scripts/setup.sh");
    Mtcnn::load(&path, MtcnnConfig::default(), Device::Cpu).expect("MTCNN")
}

#[test]
fn pictures_without_a_face_give_no_face() {
    let mtcnn = detector();
    let grey = RgbImage::from_pixel(200, 160, Rgb([128, 128, 128]));
    assert!(mtcnn.detect(&grey).expect("detect").is_empty());
    // Stripes, and a picture smaller than the smallest face searched for.
    let stripes = RgbImage::from_fn(256, 192, |x, _| {
        let v = if (x / 8) % 2 == 0 { 30 } else { 220 };
        Rgb([v, v, v])
    });
    assert!(mtcnn.detect(&stripes).expect("detect").is_empty());
    let tiny = RgbImage::from_pixel(15, 15, Rgb([200, 150, 120]));
    assert!(mtcnn.detect(&tiny).expect("detect").is_empty());
}

#[test]
fn bad_settings_inputs_and_weights_are_named() {
    for (config, option) in [
        (
            MtcnnConfig {
                min_face_size: 5.0,
                ..MtcnnConfig::default()
            },
            "min_face_size",
        ),
        (
            MtcnnConfig {
                factor: 1.2,
                ..MtcnnConfig::default()
            },
            "factor",
        ),
        (
            MtcnnConfig {
                thresholds: [0.6, 1.5, 0.7],
                ..MtcnnConfig::default()
            },
            "thresholds",
        ),
    ] {
        match config.validate() {
            Err(Error::Config { option: o, .. }) => assert_eq!(o, option),
            other => panic!("{option}: {other:?}"),
        }
    }
    let mtcnn = detector();
    let gray = Tensor::zeros([1, 64, 64], (Kind::Float, Device::Cpu));
    match mtcnn.detect_tensor(&gray) {
        Err(Error::Config { option, .. }) => assert_eq!(option, "image"),
        other => panic!("a one-channel tensor: {other:?}"),
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().to_path_buf();
    let bad = dir.join("not-weights.safetensors");
    std::fs::write(&bad, b"not a safetensors file").expect("write");
    let err = Mtcnn::load(&bad, MtcnnConfig::default(), Device::Cpu).expect_err("bad weights");
    assert!(
        matches!(&err, Error::Weights { path, .. } if path == &bad),
        "{err}"
    );
    assert!(err.to_string().contains("not-weights.safetensors"), "{err}");
}
