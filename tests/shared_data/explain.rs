//! `predict --faces --explain DIR` on a real face photo: each face's object gets its map,
//! peaking inside the face's crop box. (It lives here because the default suite has no
//! photo MTCNN finds a face in; tests/cli_explain.rs covers the rest of `--explain`.)

use crate::common::{
    cli::{ok, s},
    meso4_checkpoint, sorted_images,
};
use crate::shared_data;

/// With faces, each face's object gets its map; the peak lies in the face's crop box
/// (the box grown by the crop's margin), in the photo's pixels.
#[test]
fn predict_explain_with_faces_explains_each_face_in_the_photos_pixels() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let weights = tmp.path().join("meso4.safetensors");
    meso4_checkpoint(&weights, |_| ());
    // An lfw photo (MTCNN finds a face in every lfw-faceswap validation photo: faces.rs).
    let real = shared_data("lfw-faceswap/val/real");
    let photo = sorted_images(&real).remove(0);
    let maps = tmp.path().join("maps");
    let (stdout, stderr) = ok(
        "predict",
        &[
            "--weights",
            s(&weights),
            "--cpu",
            "--faces",
            "--explain",
            s(&maps),
            s(&photo),
        ],
    );
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert!(line.get("explain").is_none(), "{line}");
    let faces = line["faces"].as_array().expect("faces");
    assert!(!faces.is_empty(), "{line} {stderr}");
    let size = deepfake::image::image_dimensions(&photo).expect("photo size");
    for (k, face) in faces.iter().enumerate() {
        let explain = &face["explain"];
        let png = explain["png"].as_str().expect("png");
        assert!(png.ends_with(&format!("-face{k}.png")), "{face}");
        let overlay = deepfake::image::open(png).expect("a PNG");
        assert_eq!((overlay.width(), overlay.height()), size);
        let b: Vec<f64> = face["box"]
            .as_array()
            .expect("box")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        // The default crop: square, margin 0.3 (a note says so).
        let side = (b[2] - b[0]).max(b[3] - b[1]) * 1.3 / 2.0;
        let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
        let peak = explain["peak"].as_array().expect("peak");
        let (px, py) = (peak[0].as_f64().expect("x"), peak[1].as_f64().expect("y"));
        assert!(
            (px - cx).abs() <= side + 1.0 && (py - cy).abs() <= side + 1.0,
            "{face}"
        );
    }
}
