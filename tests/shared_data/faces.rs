//! df-face's MTCNN against facenet-pytorch 2.6.0 (the reference the fixture script
//! `scripts/shared_fixtures/mtcnn_reference.py` runs on the same PNG pixels: lfw photos,
//! composites with several faces, images without one), and on every lfw-faceswap
//! validation photo.

use deepfake::face::{Face, Mtcnn, MtcnnConfig};
use deepfake::tch::Device;

use crate::shared_data;

fn detector() -> Mtcnn {
    let path =
        deepfake::face::default_weights_path().expect("the MTCNN weights (scripts/setup.sh)");
    Mtcnn::load(&path, MtcnnConfig::default(), Device::Cpu).expect("MTCNN")
}

fn reference_dir() -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/generated/mtcnn_reference");
    assert!(
        dir.join("reference.json").is_file(),
        "{} is missing: `make test-shared` makes it (scripts/shared_fixtures/mtcnn_reference.py)",
        dir.display()
    );
    dir
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

#[test]
fn mtcnn_finds_the_faces_facenet_pytorch_finds() {
    let mtcnn = detector();
    let dir = reference_dir();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference.json")).expect("reference.json"),
    )
    .expect("JSON");
    let images = reference["images"].as_object().expect("images");
    assert!(images.len() >= 25, "{} reference images", images.len());
    let (mut faces_compared, mut without) = (0, 0);
    for (name, expected) in images {
        let image = deepfake::data::load_rgb(&dir.join("images").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let found = mtcnn.detect(&image).expect("detect");
        let expected = expected.as_array().expect("faces");
        assert_eq!(
            found.len(),
            expected.len(),
            "{name}: {} faces found, facenet-pytorch found {}: {found:?}",
            found.len(),
            expected.len()
        );
        without += usize::from(expected.is_empty());
        for want in expected {
            let bbox = floats(&want["box"]);
            let bbox = [bbox[0], bbox[1], bbox[2], bbox[3]];
            let got: &Face = found
                .iter()
                .max_by(|a, b| iou(&a.bbox, &bbox).total_cmp(&iou(&b.bbox, &bbox)))
                .expect("a face");
            for (g, w) in got.bbox.iter().zip(&bbox) {
                assert!(
                    (g - w).abs() <= 1.0,
                    "{name}: box {:?} vs {bbox:?}",
                    got.bbox
                );
            }
            let p = want["probability"].as_f64().expect("probability") as f32;
            assert!(
                (got.probability - p).abs() <= 1e-3,
                "{name}: probability {} vs {p}",
                got.probability
            );
            for (k, point) in want["landmarks"]
                .as_array()
                .expect("landmarks")
                .iter()
                .enumerate()
            {
                let xy = floats(point);
                for (g, w) in got.landmarks[k].iter().zip(&xy) {
                    assert!(
                        (g - w).abs() <= 1.0,
                        "{name}: landmark {k} {:?} vs {xy:?}",
                        got.landmarks[k]
                    );
                }
            }
            faces_compared += 1;
        }
    }
    assert!(faces_compared >= 30, "{faces_compared} faces compared");
    assert!(without >= 3, "{without} images without a face");
}

/// Every lfw-faceswap validation photo, real and fake, as the data loader decodes it: a
/// face in at least 99 % of them, and in as many a face whose centre is within 15 % of the
/// side from the image's centre (the photos are centred on their subject).
#[test]
fn mtcnn_finds_a_centred_face_in_lfw_photos() {
    let mtcnn = detector();
    let (mut photos, mut found, mut centred) = (0usize, 0usize, 0usize);
    let mut misses = Vec::new();
    for class in ["real", "fake"] {
        let dir = shared_data(&format!("lfw-faceswap/val/{class}"));
        for entry in std::fs::read_dir(&dir).expect("the validation photos") {
            let path = entry.expect("entry").path();
            let image = deepfake::data::load_rgb(&path)
                .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            let (w, h) = (image.width() as f32, image.height() as f32);
            photos += 1;
            let faces = mtcnn.detect(&image).expect("detect");
            found += usize::from(!faces.is_empty());
            // The photo's subject (a bystander may be larger, nearer the camera).
            let ok = faces.iter().any(|f| {
                let (cx, cy) = ((f.bbox[0] + f.bbox[2]) / 2.0, (f.bbox[1] + f.bbox[3]) / 2.0);
                (cx - w / 2.0).abs() <= 0.15 * w && (cy - h / 2.0).abs() <= 0.15 * h
            });
            if ok {
                centred += 1;
            } else {
                misses.push(format!(
                    "{} {:?}",
                    path.display(),
                    faces.iter().map(|f| f.bbox).collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(photos >= 500, "{photos} photos");
    assert!(
        found as f64 >= 0.99 * photos as f64,
        "a face in {found} of {photos} photos"
    );
    assert!(
        centred as f64 >= 0.99 * photos as f64,
        "a centred face in {centred} of {photos} photos; not in {misses:?}"
    );
}

/// `prepare_faces` on lfw photos writes, for each, the crop `df_face::crop_faces` makes of
/// the largest face `Mtcnn::detect` finds in the same decoded photo: the training folders
/// and the scoring path share one crop.
#[test]
fn prepare_faces_writes_the_crops_the_library_makes() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().to_path_buf();
    let input = dir.join("photos/real");
    std::fs::create_dir_all(&input).expect("dirs");
    let source = shared_data("lfw-faceswap/val/real");
    let names = [
        "real_0.jpg",
        "real_494.jpg",
        "real_1119.jpg",
        "real_1861.jpg",
    ];
    for n in names {
        std::fs::copy(source.join(n), input.join(n)).expect("copy");
    }
    let out = dir.join("faces");
    let status = std::process::Command::new(crate::study::example("prepare_faces"))
        .args([
            "--input",
            dir.join("photos").to_str().expect("utf-8"),
            "--out",
        ])
        .arg(&out)
        .args(["--size", "160", "--align"])
        .status()
        .expect("prepare_faces");
    assert!(status.success());
    let mtcnn = detector();
    let config = deepfake::face::CropConfig {
        size: 160,
        align: true,
        ..deepfake::face::CropConfig::default()
    };
    for n in names {
        let photo = deepfake::data::load_rgb(&input.join(n)).expect("photo");
        let faces = mtcnn.detect(&photo).expect("detect");
        let want = &deepfake::face::crop_faces(&photo, &faces, &config).expect("crop")[0].image;
        let stem = n.trim_end_matches(".jpg");
        let got =
            deepfake::data::load_rgb(&out.join(format!("real/{stem}.png"))).expect("crop file");
        assert_eq!(got.dimensions(), (160, 160));
        // Equal up to the detector's arithmetic: the example runs its workers with one
        // intra-op thread each, this test with the default, and convolutions split
        // differently round differently (boxes move by ~1e-5 px, a few pixels by 1).
        let diffs: Vec<i32> = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let changed = diffs.iter().filter(|&&d| d > 0).count() as f64 / diffs.len() as f64;
        eprintln!(
            "{n}: max difference {max}, {:.4} % of values",
            100.0 * changed
        );
        assert!(
            max <= 2 && changed < 0.01,
            "{n}: the written crop differs from the library's: max {max}, {changed}"
        );
    }
}

/// `predict --faces` scores a photo's face as `predict` scores the crop `prepare_faces`
/// wrote of it: one crop code for training folders and scoring (the MesoNet authors'
/// Meso4 on lfw photos).
#[test]
fn predict_scores_faces_as_their_prepared_crops() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().to_path_buf();
    let input = dir.join("photos/fake");
    std::fs::create_dir_all(&input).expect("dirs");
    let source = shared_data("lfw-faceswap/val/fake");
    let names = ["fake_335.jpg", "fake_826.jpg", "fake_1350.jpg"];
    for n in names {
        std::fs::copy(source.join(n), input.join(n)).expect("copy");
    }
    let out = dir.join("faces");
    let status = std::process::Command::new(crate::study::example("prepare_faces"))
        .arg("--input")
        .arg(dir.join("photos"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("prepare_faces");
    assert!(status.success());
    let weights = shared_data("mesonet/weights/Meso4_DF.h5");
    let predict = |args: &[&std::ffi::OsStr]| -> Vec<serde_json::Value> {
        let o = std::process::Command::new(crate::study::example("predict"))
            .args(["--model", "meso4", "--cpu", "--weights"])
            .arg(&weights)
            .args(args)
            .output()
            .expect("predict");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    };
    let by_face = predict(&["--faces".as_ref(), input.as_os_str()]);
    let by_crop = predict(&[out.join("fake").as_os_str()]);
    assert_eq!(by_face.len(), names.len());
    for line in &by_face {
        let path = line["path"].as_str().expect("path");
        let faces = line["faces"].as_array().expect("faces");
        assert!(!faces.is_empty(), "{line}");
        let best = faces
            .iter()
            .map(|f| f["p_fake"].as_f64().expect("p_fake"))
            .fold(f64::MIN, f64::max);
        assert_eq!(line["p_fake"].as_f64(), Some(best));
        // The largest face (first) against its prepared crop, scored as a whole image.
        let stem = std::path::Path::new(path)
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let crop = by_crop
            .iter()
            .find(|c| {
                c["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("{stem}.png")))
            })
            .expect("the crop's line");
        let (a, b) = (
            faces[0]["p_fake"].as_f64().expect("p"),
            crop["p_fake"].as_f64().expect("p"),
        );
        assert!((a - b).abs() < 1e-3, "{stem}: face {a} vs crop {b}");
    }
}

/// A video made by ffmpeg from lfw photos (one a second), scored end to end with faces: a
/// face in every sampled frame, the video's score the mean of the frames'.
#[test]
fn a_video_of_lfw_photos_is_scored_by_its_faces() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(&dir).expect("dir");
    let source = shared_data("lfw-faceswap/val/fake");
    for (i, n) in [
        "fake_7.jpg",
        "fake_335.jpg",
        "fake_826.jpg",
        "fake_1350.jpg",
    ]
    .iter()
    .enumerate()
    {
        let photo = deepfake::data::load_rgb(&source.join(n)).expect("photo");
        photo
            .save(dir.join(format!("frame{i:03}.png")))
            .expect("png");
    }
    let video = dir.join("faces.mp4");
    let ffmpeg = deepfake::data::ffmpeg_path(&video).expect("ffmpeg (scripts/setup.sh)");
    let made = std::process::Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-framerate", "1", "-i"])
        .arg(dir.join("frame%03d.png"))
        .args(["-c:v", "mpeg4", "-q:v", "2", "-r", "1"])
        .arg(&video)
        .status()
        .expect("ffmpeg");
    assert!(made.success());
    let o = std::process::Command::new(crate::study::example("predict"))
        .args([
            "--model",
            "meso4",
            "--cpu",
            "--faces",
            "--per-frame",
            "--weights",
        ])
        .arg(shared_data("mesonet/weights/Meso4_DF.h5"))
        .arg(&video)
        .output()
        .expect("predict");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).expect("one JSON line");
    assert_eq!(line["frames"], 4, "{line}");
    assert_eq!(line["frames_scored"], 4, "a face in every frame: {line}");
    let frames: Vec<f64> = line["per_frame"]
        .as_array()
        .expect("per_frame")
        .iter()
        .map(|v| v.as_f64().expect("a score"))
        .collect();
    let mean = frames.iter().sum::<f64>() / frames.len() as f64;
    assert!(
        (line["p_fake"].as_f64().expect("p_fake") - mean).abs() < 1e-12,
        "{line}"
    );
    // prepare_faces takes the same video: a crop per sampled frame.
    let videos = dir.join("videos/fake");
    std::fs::create_dir_all(&videos).expect("dir");
    std::fs::copy(&video, videos.join("faces.mp4")).expect("copy");
    let out = dir.join("crops");
    let status = std::process::Command::new(crate::study::example("prepare_faces"))
        .arg("--input")
        .arg(dir.join("videos"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("prepare_faces");
    assert!(status.success());
    for f in 0..4 {
        let crop = out.join(format!("fake/faces_f{f:03}.png"));
        let image =
            deepfake::data::load_rgb(&crop).unwrap_or_else(|e| panic!("{}: {e}", crop.display()));
        assert_eq!(image.dimensions(), (256, 256));
    }
}
