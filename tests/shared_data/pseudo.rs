//! Pseudo-fakes' faces on lfw photos: the box and landmarks `prepare_faces` records for a
//! crop (in the crop's pixels) are where MTCNN finds them when it looks at the crop itself.

use deepfake::data::FrameSampling;
use deepfake::detect::crops::crop_source;
use deepfake::face::{CropConfig, Mtcnn, MtcnnConfig};

use super::shared_data;

#[test]
fn recorded_crop_landmarks_are_where_mtcnn_finds_them_in_the_crop() {
    let weights = deepfake::face::default_weights_path().expect("the MTCNN weights (setup)");
    let mtcnn =
        Mtcnn::load(&weights, MtcnnConfig::default(), deepfake::tch::Device::Cpu).expect("MTCNN");
    let source = shared_data("lfw-faceswap/val/real");
    let photos = crate::common::sorted_images(&source);
    let tmp = tempfile::tempdir().expect("tempdir");
    let crop = CropConfig::default();
    let mut worst = 0f32;
    for photo in photos.iter().take(12) {
        let name = photo
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let crops = crop_source(
            &mtcnn,
            &crop,
            &FrameSampling::default(),
            photo,
            &name,
            tmp.path(),
        )
        .expect("no error")
        .unwrap_or_else(|why| panic!("{name}: {why}"));
        let (file, recorded) = &crops[0];
        let image = deepfake::data::load_rgb(&tmp.path().join(file)).expect("the crop");
        let found = mtcnn.detect(&image).expect("detect");
        let face = found
            .iter()
            .max_by(|a, b| a.area().total_cmp(&b.area()))
            .unwrap_or_else(|| panic!("{name}: no face in its crop"));
        for (a, b) in recorded.landmarks.iter().zip(face.landmarks.iter()) {
            worst = worst.max((a[0] - b[0]).abs()).max((a[1] - b[1]).abs());
        }
    }
    // 256-px crops: MTCNN's landmarks on resampled pixels move by a few pixels.
    assert!(
        worst < 8.0,
        "a landmark {worst} px from where MTCNN finds it in the crop"
    );
}
