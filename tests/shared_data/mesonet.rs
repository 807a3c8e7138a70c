//! The MesoNet authors' weights against Keras: `../shared/data/mesonet/keras_reference.json`
//! holds the outputs of Keras 3.15 (torch backend) for the paper's architecture with each
//! of the authors' four `.h5` files; `inputs_{nearest,bilinear}.npy` the exact inputs it
//! was given. The reference scores "real"; our models report p(fake), so
//! `score_real = 1 − p(fake)`.

use std::path::{Path, PathBuf};

use deepfake::data::ResizeFilter;
use deepfake::models::keras::{KerasFormat, KerasImportOptions};
use deepfake::models::load::{load_keras, KerasLoadOptions};
use deepfake::models::{Polarity, Top};
use deepfake::tch::{Device, Tensor};

use crate::shared_data;

use deepfake::detect::{find_inputs, DetectorOptions, Verdict};
use deepfake::Detector;

/// The authors' `file` for `model` through the `Detector` (`predict`'s scoring), resized
/// with `filter`.
fn detector(model: &str, file: &str, filter: ResizeFilter) -> Detector {
    let options = DetectorOptions {
        resize: Some(filter),
        ..DetectorOptions::default()
    };
    Detector::open_keras(weights_path(file), model, Polarity::Real, &options)
        .expect("open detector")
}

/// p(fake) of a photo scored whole.
fn p_fake(verdict: &Verdict) -> f64 {
    verdict.p_fake().expect("a whole photo has a score")
}

/// The four weight files and the model each belongs to.
const WEIGHTS: [(&str, &str); 4] = [
    ("Meso4_DF.h5", "meso4"),
    ("Meso4_F2F.h5", "meso4"),
    ("MesoInception_DF.h5", "meso_inception4"),
    ("MesoInception_F2F.h5", "meso_inception4"),
];

#[derive(serde::Deserialize)]
struct Reference {
    images: Vec<String>,
    predictions: Vec<RefPrediction>,
}

#[derive(serde::Deserialize)]
struct RefPrediction {
    weights: String,
    resize: String,
    image: String,
    score_real: f64,
}

fn reference() -> Reference {
    let path = shared_data("mesonet/keras_reference.json");
    let text = std::fs::read_to_string(&path).expect("read keras_reference.json");
    serde_json::from_str(&text).expect("parse keras_reference.json")
}

fn score_real(r: &Reference, weights: &str, resize: &str, image: &str) -> f64 {
    r.predictions
        .iter()
        .find(|p| p.weights == weights && p.resize == resize && p.image == image)
        .unwrap_or_else(|| panic!("no reference for {weights} {resize} {image}"))
        .score_real
}

/// A little-endian float32 C-order `.npy` file as a tensor.
fn read_npy_f32(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).expect("read .npy");
    assert_eq!(
        &bytes[..6],
        b"\x93NUMPY",
        "{}: not a .npy file",
        path.display()
    );
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).expect("npy header");
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("npy shape");
    let shape: Vec<i64> = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("npy dim"))
        .collect();
    let values: Vec<f32> = bytes[start + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::from_slice(&values).reshape(shape.as_slice())
}

fn weights_path(file: &str) -> PathBuf {
    shared_data(&format!("mesonet/weights/{file}"))
}

#[test]
fn authors_weights_reproduce_keras_on_its_inputs() {
    let r = reference();
    let mut worst = 0.0f64;
    for (file, model) in WEIGHTS {
        let loaded = load_keras(
            model,
            weights_path(file),
            Device::Cpu,
            &KerasLoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let report = loaded.keras.as_ref().expect("a Keras import report");
        assert!(
            matches!(report.format, KerasFormat::Legacy { .. }),
            "{file}: {:?}",
            report.format
        );
        assert!(
            report.polarity_flipped,
            "{file}: the authors' output scores real"
        );
        assert!(
            !report.by_order.is_empty(),
            "{file}: the authors' auto-generated names import by creation order"
        );
        assert_eq!(
            loaded.model.config_json().expect("config")["top"],
            serde_json::to_value(Top::mesonet()).expect("json"),
            "{file}: the top inferred from the file is the authors' head"
        );
        for resize in ["nearest", "bilinear"] {
            // NHWC → NCHW
            let x = read_npy_f32(&shared_data(&format!("mesonet/inputs_{resize}.npy")))
                .permute([0, 3, 1, 2])
                .contiguous();
            let p_fake: Vec<f32> = Vec::try_from(
                &deepfake::tch::no_grad(|| loaded.model.forward_t(&x, false))
                    .sigmoid()
                    .view([-1]),
            )
            .expect("scores");
            assert_eq!(p_fake.len(), r.images.len());
            for (image, &p) in r.images.iter().zip(&p_fake) {
                let expected = score_real(&r, file, resize, image);
                let got = 1.0 - f64::from(p);
                let diff = (got - expected).abs();
                worst = worst.max(diff);
                assert!(
                    diff < 1e-4,
                    "{file} {resize} {image}: score_real {got} vs Keras {expected} (diff {diff:e})"
                );
            }
        }
    }
    eprintln!("MesoNet authors' weights: worst |Δ score| vs Keras = {worst:e}");
}

#[test]
fn polarity_fake_keeps_the_authors_real_score() {
    // With `Polarity::Fake` nothing is flipped: the model's sigmoid is then Keras' own
    // output, p(real).
    let r = reference();
    let (file, model) = WEIGHTS[0];
    let options = KerasLoadOptions {
        import: KerasImportOptions::default().with_polarity(Polarity::Fake),
        ..KerasLoadOptions::default()
    };
    let loaded = load_keras(model, weights_path(file), Device::Cpu, &options).expect("load");
    let x = read_npy_f32(&shared_data("mesonet/inputs_nearest.npy"))
        .permute([0, 3, 1, 2])
        .contiguous();
    let out = deepfake::tch::no_grad(|| loaded.model.forward_t(&x, false)).sigmoid();
    for (i, image) in r.images.iter().enumerate() {
        let expected = score_real(&r, file, "nearest", image);
        let got = out.double_value(&[i as i64, 0]);
        assert!(
            (got - expected).abs() < 1e-4,
            "{image}: {got} vs {expected}"
        );
    }
}

#[test]
fn predict_agrees_with_keras_on_the_test_images() {
    let r = reference();
    let test_images = shared_data("mesonet/test_images");
    let mut worst = 0.0f64;
    for (file, model) in WEIGHTS {
        for (resize, filter) in [
            ("nearest", ResizeFilter::Nearest),
            ("bilinear", ResizeFilter::Bilinear),
        ] {
            let scorer = detector(model, file, filter);
            let inputs = find_inputs(std::slice::from_ref(&test_images));
            assert!(inputs.failures.is_empty(), "{:?}", inputs.failures);
            assert!(inputs.skipped.is_empty(), "{:?}", inputs.skipped);
            assert_eq!(inputs.files.len(), r.images.len());
            for path in inputs.files {
                let p = scorer.score_path(&path).expect("score");
                let rel = path
                    .strip_prefix(shared_data("mesonet"))
                    .expect("under mesonet/")
                    .to_string_lossy()
                    .into_owned();
                let expected_real = score_real(&r, file, resize, &rel);
                let expected_label = if expected_real > 0.5 { "real" } else { "fake" };
                assert_eq!(
                    p.label().as_str(),
                    expected_label,
                    "{file} {resize} {rel}: {p:?}"
                );
                let diff = ((1.0 - p_fake(&p)) - expected_real).abs();
                worst = worst.max(diff);
                assert!(
                    diff < 0.02,
                    "{file} {resize} {rel}: p_fake {} vs Keras score_real {expected_real}",
                    p_fake(&p)
                );
            }
        }
    }
    eprintln!("predict on the authors' test images: worst |Δ score| vs Keras = {worst:e}");
}

#[test]
fn predict_reports_an_unreadable_image_and_scores_the_others() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("broken.jpg");
    std::fs::write(&bad, b"not a jpeg").expect("write");
    let good = shared_data("mesonet/test_images/df/df00204.jpg");
    let scorer = detector("meso4", "Meso4_DF.h5", ResizeFilter::Nearest);
    let err = scorer
        .score_path(&bad)
        .expect_err("a text file is no image");
    let msg = deepfake::error_text(&err);
    assert!(msg.contains("broken.jpg"), "{msg}");
    assert!(msg.contains("not an image"), "{msg}");
    assert!(scorer.score_path(&good).is_ok());
}
