//! `train --pseudo-fakes sbi` in the library: the setting recorded and kept on resume, a
//! run from real images only end to end (faces from a `prepare_faces` manifest, so no
//! detector runs), the held-out pseudo-fakes scored beside another validation folder, and
//! the landmark cache found once and reused.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use df_data::image::RgbImage;
use df_data::sbi::{FaceGeometry, SbiConfig};
use df_data::{synthetic, ImageFolder, PseudoFakes};
use df_train::pseudo::{find_faces, FaceFinder, LandmarkCache};
use df_train::{
    resume_changes, run_experiment, DataConfig, DeviceChoice, ExperimentConfig, ModelChoice,
    Verbosity,
};

/// A face filling the middle of a `size`-px synthetic image.
fn face(size: u32) -> FaceGeometry {
    let s = size as f32;
    FaceGeometry {
        bbox: [0.25 * s, 0.2 * s, 0.75 * s, 0.85 * s],
        landmarks: [
            [0.38 * s, 0.42 * s],
            [0.62 * s, 0.42 * s],
            [0.5 * s, 0.55 * s],
            [0.4 * s, 0.7 * s],
            [0.6 * s, 0.7 * s],
        ],
    }
}

/// `n` synthetic real images of `size` px in `dir/real` (no fake folder), with a
/// `prepare-faces.json` that records each one's face, as `prepare_faces` writes it.
fn real_faces(dir: &Path, n: usize, size: u32) {
    synthetic::generate(dir, n, size, 11).expect("synthetic set");
    std::fs::remove_dir_all(dir.join("fake")).expect("drop the fakes");
    let set = ImageFolder::open_with(dir, &df_data::FolderOptions::default().with_real_only(true))
        .expect("real images");
    let faces: BTreeMap<String, FaceGeometry> = set
        .samples()
        .iter()
        .map(|s| {
            let rel = s.path.strip_prefix(dir).expect("inside").to_string_lossy();
            (rel.into_owned(), face(size))
        })
        .collect();
    let manifest = serde_json::json!({
        "settings": {"crop": {"size": size, "margin": 0.3, "square": true, "align": false}},
        "done": {}, "skipped": {}, "faces": faces,
    });
    std::fs::write(dir.join("prepare-faces.json"), manifest.to_string()).expect("manifest");
}

fn config(data: &Path, out: &Path) -> ExperimentConfig {
    let mut data = DataConfig::new(data, 8).with_workers(1);
    data.val_split = Some(0.25);
    data.pseudo_fakes = Some(PseudoFakes::Sbi(SbiConfig::default()));
    let mut model = ModelChoice::new("meso4");
    model.options.input_size = Some([32, 32]);
    let mut cfg = ExperimentConfig::new(model, data, 1, out);
    cfg.device = DeviceChoice::Cpu;
    cfg.verbosity = Verbosity::Quiet;
    cfg.seed = 3;
    cfg
}

#[test]
fn the_setting_round_trips_and_a_resume_that_changes_it_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("run");
    std::fs::create_dir_all(&out).expect("run folder");
    let with = config(tmp.path(), &out);
    let text = serde_json::to_string(&with).expect("json");
    let back: ExperimentConfig = serde_json::from_str(&text).expect("read back");
    assert_eq!(back, with);
    let mut without = with.clone();
    without.data.pseudo_fakes = None;
    // A run recorded without pseudo-fakes (as every run before the setting) resumes
    // without them, and is refused with them, naming the setting; and the reverse.
    std::fs::write(
        out.join("experiment.json"),
        serde_json::to_string(&without).expect("json"),
    )
    .expect("write");
    assert!(!serde_json::to_string(&without)
        .expect("json")
        .contains("pseudo_fakes"));
    assert_eq!(
        resume_changes(&without).expect("resumes"),
        Vec::<String>::new()
    );
    let e = resume_changes(&with).expect_err("refused").to_string();
    assert!(e.contains("pseudo-fakes"), "{e}");
    std::fs::write(out.join("experiment.json"), text).expect("write");
    let e = resume_changes(&without).expect_err("refused").to_string();
    assert!(e.contains("pseudo-fakes"), "{e}");
    let mut other = with.clone();
    other.data.pseudo_fakes = Some(PseudoFakes::Sbi(SbiConfig {
        blend: [1.0, 1.0],
        ..SbiConfig::default()
    }));
    assert!(resume_changes(&other).is_err());
}

#[test]
fn a_run_from_real_images_only_trains_on_their_pseudo_fakes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    real_faces(&data, 8, 48);
    let out = tmp.path().join("run");
    let outcome = run_experiment(&config(&data, &out)).expect("the run");
    // Validation: the 2 held-out real images and their 2 pseudo-fakes.
    let report = &outcome.evaluation.as_ref().expect("validated").report;
    assert_eq!((report.n_real, report.n_fake), (2, 2));
    assert!(outcome.history.epochs[0].get("val_auc").is_some());
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("experiment.json")).expect("experiment"),
    )
    .expect("json");
    assert_eq!(
        recorded["data"]["pseudo_fakes"]["method"], "sbi",
        "{recorded}"
    );
    // Every face came from the manifest: no detector ran, no cache.
    assert!(!out.join("landmarks.json").exists());
    // Without the setting, the same folder is refused (it holds real images only).
    let mut plain = config(&data, &tmp.path().join("plain"));
    plain.data.pseudo_fakes = None;
    let e = run_experiment(&plain).expect_err("one class").to_string();
    assert!(e.contains("fake"), "{e}");
}

#[test]
fn beside_another_validation_folder_the_held_out_pseudo_fakes_are_logged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    real_faces(&data, 8, 48);
    let val = tmp.path().join("val");
    synthetic::generate(&val, 3, 48, 5).expect("validation set");
    let out = tmp.path().join("run");
    let mut cfg = config(&data, &out);
    cfg.data.val = Some(val);
    cfg.callbacks.early_stopping = Some(df_train::EarlyStoppingConfig::new("val_sbi_auc"));
    let outcome = run_experiment(&cfg).expect("the run");
    let epoch = &outcome.history.epochs[0];
    for metric in ["val_auc", "val_sbi_auc", "val_sbi_loss", "val_sbi_accuracy"] {
        assert!(epoch.get(metric).is_some(), "{metric}: {epoch:?}");
    }
    // The final evaluation is on the folder given, as given.
    let report = &outcome.evaluation.as_ref().expect("validated").report;
    assert_eq!((report.n_real, report.n_fake), (3, 3));
    // The best checkpoint is chosen on the held-out pseudo-fakes, never on the folder's
    // fakes (a cross-dataset test the run must not select on).
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("config.json")).expect("config.json"),
    )
    .expect("json");
    let text = config.to_string();
    assert!(
        text.contains(r#""monitor":"val_sbi_loss""#),
        "best.safetensors' monitor: {text}"
    );
    // Without pseudo-fakes, `val` and `val_split` together are refused by name.
    cfg.data.pseudo_fakes = None;
    cfg.out_dir = tmp.path().join("other");
    let e = run_experiment(&cfg).expect_err("both").to_string();
    assert!(e.contains("val_split"), "{e}");
}

#[test]
fn no_real_image_and_an_unknown_method_are_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 4, 32, 1).expect("synthetic set");
    std::fs::remove_dir_all(data.join("real")).expect("drop the reals");
    let out = tmp.path().join("run");
    let e = run_experiment(&config(&data, &out))
        .expect_err("no real image")
        .to_string();
    assert!(e.contains("pseudo") && e.contains("real"), "{e}");
    assert!(!out.exists(), "nothing written");
    let e = PseudoFakes::parse("faceswap")
        .expect_err("unknown")
        .to_string();
    assert!(e.contains("pseudo_fakes") && e.contains("faceswap"), "{e}");
}

/// A finder that counts its calls and finds a fixed face.
struct Counting(Arc<AtomicUsize>);

impl FaceFinder for Counting {
    fn find(&mut self, image: &RgbImage) -> df_train::Result<Option<FaceGeometry>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Some(face(image.width())))
    }
}

#[test]
fn the_landmark_cache_is_found_once_and_reused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 5, 32, 2).expect("synthetic set");
    let set = ImageFolder::open(&data).expect("set");
    let calls = Arc::new(AtomicUsize::new(0));
    let made = AtomicUsize::new(0);
    let finder = || -> df_train::Result<Box<dyn FaceFinder>> {
        made.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Counting(Arc::clone(&calls))))
    };
    let counts = || (calls.load(Ordering::SeqCst), made.load(Ordering::SeqCst));
    let none = BTreeMap::new();
    let first = find_faces(&set, &data, &none, None, &finder, 2).expect("faces");
    assert_eq!(counts().0, 5, "each real image once");
    assert!(
        (1..=2).contains(&counts().1),
        "a detector per thread at most"
    );
    assert_eq!(first.faces.len(), 5);
    assert_eq!(first.detected, 5);
    // Through the file, as a run writes and reads it.
    let path = tmp.path().join("landmarks.json");
    df_io::write_json(&path, &first.cache).expect("write");
    let cache = LandmarkCache::read(&path).expect("cache");
    let before = counts();
    let second = find_faces(&set, &data, &none, Some(&cache), &finder, 2).expect("faces");
    assert_eq!(counts(), before, "no detector made or called");
    assert_eq!(second.faces, first.faces);
    assert_eq!(second.cache, first.cache);
    assert_eq!((second.detected, second.from_cache), (0, 5));
    // A file that changed (another size) is found again, alone.
    let changed = &set
        .samples()
        .iter()
        .find(|s| s.label == df_data::Label::Real)
        .expect("real")
        .path;
    let mut bytes = std::fs::read(changed).expect("read");
    bytes.extend_from_slice(b"\0\0");
    std::fs::write(changed, bytes).expect("write");
    let third = find_faces(&set, &data, &none, Some(&cache), &finder, 2).expect("faces");
    assert_eq!(counts().0, 6);
    assert_eq!(third.detected, 1);
}

/// Another run's landmark cache (`landmarks_from`) gives the faces: no detector runs (on
/// these synthetic images MTCNN would find none, and the run would be refused), and the
/// run keeps its own copy.
#[test]
fn another_runs_landmark_cache_gives_the_faces() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    synthetic::generate(&data, 4, 48, 9).expect("synthetic set");
    std::fs::remove_dir_all(data.join("fake")).expect("drop the fakes");
    let set = ImageFolder::open_with(
        &data,
        &df_data::FolderOptions::default().with_real_only(true),
    )
    .expect("real images");
    let finder = || -> df_train::Result<Box<dyn FaceFinder>> {
        Ok(Box::new(Counting(Arc::new(AtomicUsize::new(0)))))
    };
    let table = find_faces(&set, &data, &BTreeMap::new(), None, &finder, 1).expect("faces");
    let other = tmp.path().join("other-landmarks.json");
    df_io::write_json(&other, &table.cache).expect("write");
    let out = tmp.path().join("run");
    let mut cfg = config(&data, &out);
    cfg.data.landmarks_from = Some(other);
    let outcome = run_experiment(&cfg).expect("the run");
    assert_eq!(
        outcome.evaluation.expect("validated").report.n_fake,
        1,
        "the held-out real image's pseudo-fake"
    );
    let kept = LandmarkCache::read(&out.join("landmarks.json")).expect("the run's own cache");
    assert_eq!(kept, table.cache);
    // Without pseudo-fakes the option is refused by name.
    cfg.data.pseudo_fakes = None;
    cfg.out_dir = tmp.path().join("plain");
    let e = run_experiment(&cfg).expect_err("refused").to_string();
    assert!(e.contains("landmarks_from"), "{e}");
}
