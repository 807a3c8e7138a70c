//! The study's head on a backbone model learns `lfw-faceswap` through the `train` example:
//! EfficientNet-B0 from Keras' initialisation with the study head without dropout
//! (flatten, dense 256, dense 128, dense 1: the final-model story's first variant), on the
//! central 64×64 pixels of the face, must
//! rank the `val` fakes above the reals well beyond chance.
//!
//! It runs the binary `cargo build --examples` made (`make test-shared` builds it), so the
//! whole path a user takes is covered: options, the detector top, the study's initialisers,
//! training, the written metrics.

use std::path::Path;
use std::process::Command;

use crate::shared_data;

/// Registry name of the model.
const MODEL: &str = "efficientnet_b0";
/// Square input side in pixels.
const SIZE: &str = "64";
/// The central fraction of each side kept: 0.256 × 250 = the central 64×64 pixels of the
/// face at full resolution, so nothing is resized (the swap's traces are fine detail; at
/// 0.512 resized to 64 px, B0 stayed at chance for 4 epochs).
const CENTER_CROP: &str = "0.256";
/// Epochs (B0 from Keras' initialisation leaves chance after three or four).
const EPOCHS: &str = "8";
/// Batch size.
const BATCH_SIZE: &str = "16";
/// Adam's learning rate.
const LR: &str = "1e-3";
/// The head's dropout: with the study's 0.5, B0 stayed near chance for 8 epochs, in
/// Keras as here (`docs/study.md`); without it, it learns within CI's budget.
const DROPOUT: &str = "0";
/// Seed.
const SEED: &str = "1";

/// The bound, set from measured runs with margin: seeds 1, 2 and 3 gave validation AUCs of
/// 0.944, 0.976 and 0.787 after 8 epochs here (each still rising; `docs/study.md` has the
/// curves). Chance is 0.5 ± 0.05 on these 600 images; CPUs differ in their kernels, so
/// CI's run of seed 1 is another draw from the same spread.
const MIN_AUC: f64 = 0.65;

pub(crate) use crate::common::example;

#[test]
fn efficientnet_b0_with_the_study_head_learns_lfw_faceswap() {
    let train = shared_data("lfw-faceswap/train");
    let val = shared_data("lfw-faceswap/val");
    let out = tempfile::tempdir().expect("temporary directory");
    let run_dir = out.path().join("run");
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let args = [
        "--model".to_owned(),
        MODEL.into(),
        "--data".into(),
        path(&train),
        "--val".into(),
        path(&val),
        "--input-size".into(),
        SIZE.into(),
        "--center-crop".into(),
        CENTER_CROP.into(),
        "--epochs".into(),
        EPOCHS.into(),
        "--batch-size".into(),
        BATCH_SIZE.into(),
        "--lr".into(),
        LR.into(),
        "--dropout".into(),
        DROPOUT.into(),
        "--seed".into(),
        SEED.into(),
        "--out".into(),
        path(&run_dir),
    ];
    let output = Command::new(example("train"))
        .args(&args)
        .output()
        .expect("running the train example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("train {}\n{stderr}{stdout}", args.join(" "));
    assert!(output.status.success(), "train failed ({})", output.status);

    let text = std::fs::read_to_string(run_dir.join("metrics.json")).expect("metrics.json");
    let metrics: serde_json::Value = serde_json::from_str(&text).expect("metrics.json parses");
    let auc = metrics["auc"]
        .as_f64()
        .expect("an AUC: both classes in val");
    assert_eq!(
        (metrics["n_real"].as_u64(), metrics["n_fake"].as_u64()),
        (Some(300), Some(300)),
        "{metrics}"
    );
    let experiment = std::fs::read_to_string(run_dir.join("experiment.json")).expect("experiment");
    assert!(
        experiment.contains("\"units\": 256") || experiment.contains("\"units\":256"),
        "the study head is recorded: {experiment}"
    );
    assert!(
        auc >= MIN_AUC,
        "validation AUC {auc:.4} is below {MIN_AUC}: {MODEL} with the study head did not learn"
    );
}
