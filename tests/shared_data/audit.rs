//! The data audit on `lfw-faceswap`: its classes differ in JPEG settings (every real
//! image's luma table has mean step 11.5 = IJG quality 90, every fake's 5.77 = quality 95,
//! as Pillow's `Image.open(f).quantization` reads them), so the audit must flag the JPEG
//! quality as a shortcut.

use deepfake::data::audit::{self, AuditOptions, Summary};
use deepfake::data::ImageFolder;

use crate::shared_data;

#[test]
fn lfw_faceswap_is_flagged_for_its_jpeg_quality() {
    let root = shared_data("lfw-faceswap");
    let train = ImageFolder::open(root.join("train")).expect("lfw train");
    let val = ImageFolder::open(root.join("val")).expect("lfw val");
    let report = audit::audit(&train, Some(&val), &AuditOptions::default()).expect("audit");
    assert_eq!((report.real, report.fake), (1500, 1500), "{report}");
    let quality = report.feature("jpeg_quality").expect("feature");
    assert_eq!(quality.separability, Some(1.0), "{report}");
    // Pillow reads mean luma steps 11.5 (real) and 5.765625 (fake): IJG 90 and 95.
    assert!(
        matches!(quality.real, Summary::Number { min, max, .. } if min == 90.0 && max == 90.0),
        "{report}"
    );
    assert!(
        matches!(quality.fake, Summary::Number { min, max, .. } if min == 95.0 && max == 95.0),
        "{report}"
    );
    let finding = report
        .findings()
        .iter()
        .find(|f| f.check == "jpeg_quality")
        .expect("flagged");
    assert!(
        finding
            .sentence
            .starts_with("real images are JPEG quality 90, fake 95: a model can tell them apart"),
        "{}",
        finding.sentence
    );
    // Sizes and formats are alike in lfw-faceswap: not flagged.
    for alike in ["format", "width", "height", "chroma_subsampling"] {
        assert!(
            !report.feature(alike).expect("feature").flagged,
            "{alike}: {report}"
        );
    }
}
