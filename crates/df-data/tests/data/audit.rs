//! The data audit against files Pillow wrote with known settings
//! (`scripts/fixtures/pillow_audit.py`): what each header says, and sets with one
//! shortcut planted alone.

use df_data::audit::{self, headers, AuditOptions};
use df_data::ImageFolder;

use crate::common::{fixture, fixture_json};

#[test]
fn header_facts_equal_what_pillow_wrote_and_reads_back() {
    let files = fixture_json("pillow_audit", "files.json");
    let files = files.as_object().expect("an object of files");
    assert!(files.len() >= 14);
    for (name, expected) in files {
        let bytes =
            std::fs::read(fixture("pillow_audit", &format!("files/{name}"))).expect("fixture file");
        let facts = headers::read_facts(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let pillow = &expected["pillow"];
        assert_eq!(
            u64::from(facts.width),
            pillow["width"].as_u64().expect("width"),
            "{name}"
        );
        assert_eq!(
            u64::from(facts.height),
            pillow["height"].as_u64().expect("height"),
            "{name}"
        );
        assert_eq!(
            facts.format.name(),
            if pillow["format"] == "JPEG" {
                "JPEG"
            } else {
                "PNG"
            },
            "{name}"
        );
        assert_eq!(
            facts.exif,
            pillow["exif"].as_bool().expect("exif"),
            "{name}"
        );
        assert_eq!(
            facts.software.as_deref(),
            pillow["software"].as_str(),
            "{name}"
        );
        match &facts.jpeg {
            Some(jpeg) => {
                // The quality Pillow was asked for, recovered from the tables alone.
                let asked = expected["asked"]["quality"]
                    .as_u64()
                    .expect("quality asked");
                assert_eq!(u64::from(jpeg.quality), asked, "{name}");
                assert!(jpeg.standard_tables, "{name}: libjpeg's tables are IJG's");
                assert_eq!(
                    jpeg.luma_mean_step,
                    pillow["luma_mean_step"].as_f64().expect("step"),
                    "{name}"
                );
                assert_eq!(
                    jpeg.subsampling,
                    pillow["subsampling"].as_str().expect("subsampling"),
                    "{name}"
                );
                assert_eq!(
                    jpeg.progressive,
                    pillow["progressive"].as_bool().expect("progressive"),
                    "{name}"
                );
                assert_eq!(facts.png_bit_depth, None);
            }
            None => {
                assert_eq!(pillow["format"], "PNG", "{name}");
                let depth = pillow["png_bit_depth"].as_u64().expect("bit depth");
                assert_eq!(facts.png_bit_depth.map(u64::from), Some(depth), "{name}");
            }
        }
    }
}

fn run(kind: &str) -> df_data::AuditReport {
    let root = fixture("pillow_audit", &format!("planted/{kind}"));
    let train = ImageFolder::open(root.join("train")).expect("training set");
    let val = ImageFolder::open(root.join("val")).expect("validation set");
    audit::audit(&train, Some(&val), &AuditOptions::default()).expect("audit")
}

#[test]
fn each_planted_shortcut_is_flagged_and_a_clean_set_is_not() {
    let planted = fixture_json("pillow_audit", "planted.json");
    let planted = planted.as_object().expect("an object of sets");
    assert!(planted.len() >= 11);
    for (kind, check) in planted {
        let report = run(kind);
        assert_eq!(
            (report.real, report.fake, report.train, report.validation),
            (30, 30, 40, 20),
            "{kind}"
        );
        assert!(
            report.unreadable.is_empty(),
            "{kind}: {:?}",
            report.unreadable
        );
        let checks: Vec<&str> = report.findings().iter().map(|f| f.check.as_str()).collect();
        match check.as_str().expect("check name") {
            "" => assert!(checks.is_empty(), "the clean set is flagged: {report}"),
            check => assert!(
                checks.contains(&check),
                "{kind}: `{check}` not flagged: {report}"
            ),
        }
    }
}

#[test]
fn the_quality_sentence_names_both_qualities() {
    let report = run("quality");
    let feature = report.feature("jpeg_quality").expect("the feature");
    assert_eq!(feature.separability, Some(1.0));
    let finding = report
        .findings()
        .iter()
        .find(|f| f.check == "jpeg_quality")
        .expect("flagged");
    assert!(
        finding.sentence.starts_with("real images are JPEG quality 75, fake 95: a model can tell them apart without looking at faces"),
        "{}",
        finding.sentence
    );
    // Only what differs is flagged: sizes and formats are alike.
    for alike in [
        "format",
        "width",
        "height",
        "chroma_subsampling",
        "software",
    ] {
        assert!(!report.feature(alike).expect("feature").flagged, "{alike}");
    }
    let json = serde_json::to_value(&report).expect("serialisable");
    assert_eq!(json["findings"][0]["check"], "jpeg_quality");
}

#[test]
fn duplicates_name_the_files() {
    let report = run("label_conflict");
    let d = &report.duplicates.exact_across_classes;
    // Two fakes in training and two in validation are copies of reals.
    assert_eq!(d.count, 4);
    assert!(
        d.examples[0].a.to_string_lossy().contains("/real/"),
        "{:?}",
        d.examples[0]
    );
    assert!(
        d.examples[0].b.to_string_lossy().contains("/fake/"),
        "{:?}",
        d.examples[0]
    );
    let leak = run("leak");
    // Every validation image is a re-saved training image.
    assert_eq!(leak.duplicates.near_train_validation.count, 20, "{leak}");
    assert_eq!(leak.duplicates.exact_train_validation.count, 0);
}

#[test]
fn bad_options_are_refused_by_name() {
    let root = fixture("pillow_audit", "planted/clean");
    let train = ImageFolder::open(root.join("train")).expect("training set");
    for (options, name) in [
        (
            AuditOptions {
                flag_auc: 0.4,
                ..AuditOptions::default()
            },
            "flag_auc",
        ),
        (
            AuditOptions {
                near_duplicate_bits: 40,
                ..AuditOptions::default()
            },
            "near_duplicate_bits",
        ),
        (
            AuditOptions {
                threads: 0,
                ..AuditOptions::default()
            },
            "threads",
        ),
    ] {
        let e = audit::audit(&train, None, &options).expect_err("refused");
        assert!(e.to_string().contains(name), "{e}");
    }
}
