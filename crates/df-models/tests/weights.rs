//! Weight I/O: native safetensors checkpoints (round trip, atomic writes, strict loading)
//! and the errors of Keras import (a file of another model, a truncated file, a file that
//! is not HDF5), which must name the file and the tensors at fault and load nothing.

use std::path::{Path, PathBuf};

use df_models::checkpoint::{
    load_checkpoint_into, read_checkpoint_meta, save_checkpoint, CHECKPOINT_FORMAT_VERSION,
};
use df_models::keras::{import_keras, KerasImportOptions};
use df_models::registry::{self, BuildOptions};
use df_models::{load_checkpoint, open_checkpoint};
use df_models::{Error, Model, Polarity, Top};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

mod common;

fn fixture(name: &str) -> PathBuf {
    common::fixture("keras_apps", name)
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Random values in every variable, batch-norm statistics included (a fresh model has
/// zeros and ones there, which a broken save/load could reproduce by accident).
fn randomize(vs: &VarStore) {
    tch::manual_seed(7);
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let r = Tensor::rand_like(&t);
            let v = if name.ends_with("running_var") {
                r + 0.5
            } else {
                r - 0.5
            };
            t.copy_(&v);
        }
    });
}

fn build(name: &str, options: &BuildOptions) -> (VarStore, Box<dyn Model>) {
    let vs = VarStore::new(Device::Cpu);
    let model = registry::build(name, &vs.root(), options).expect("build");
    (vs, model)
}

fn forward(model: &dyn Model, x: &Tensor) -> Tensor {
    tch::no_grad(|| model.forward_t(x, false))
}

fn input(size: i64) -> Tensor {
    tch::manual_seed(11);
    Tensor::rand([2, 3, size, size], (Kind::Float, Device::Cpu))
}

#[test]
fn checkpoint_round_trip_restores_model_config_and_outputs() {
    let dir = temp_dir();
    let cases = [
        (
            "meso4",
            BuildOptions::default()
                .with_input_size(96, 96)
                .with_top(Top::study([8, 4], 0.3, 1e-3)),
            96,
        ),
        (
            "efficientnet_b0",
            BuildOptions::default()
                .with_input_size(64, 64)
                .with_top(Top::study([16, 8], 0.5, 0.0)),
            64,
        ),
    ];
    for (name, options, size) in cases {
        let (vs, model) = build(name, &options);
        randomize(&vs);
        let x = input(size);
        let before = forward(model.as_ref(), &x);
        let path = dir.path().join(format!("{name}.safetensors"));
        save_checkpoint(&vs, model.as_ref(), &path).expect("save");

        let meta = read_checkpoint_meta(&path).expect("meta");
        assert_eq!(meta.model, name);
        assert_eq!(meta.config, model.config_json().expect("config"));
        assert_eq!(meta.polarity, Polarity::Fake);
        assert_eq!(meta.format_version, CHECKPOINT_FORMAT_VERSION);

        // Reopened from the file alone: same configuration, same outputs, bit for bit.
        let reopened = load_checkpoint(&path, Device::Cpu).expect("load");
        assert_eq!(reopened.name(), name);
        assert_eq!(
            reopened.config_json().expect("config"),
            model.config_json().expect("config")
        );
        let after = forward(reopened.as_ref(), &x);
        assert_eq!(before.size(), after.size());
        assert!(
            before.equal(&after),
            "{name}: outputs differ after reload by {}",
            (&before - &after).abs().max().double_value(&[])
        );
        // Every variable came back (a model left at its initial values would differ).
        let loaded = open_checkpoint(&path, Device::Cpu).expect("open");
        let saved = vs.variables();
        for (var, t) in loaded.var_store.variables() {
            assert!(t.equal(&saved[&var]), "{name}: variable {var} differs");
        }
    }
}

#[test]
fn checkpoint_of_another_model_is_refused_with_names() {
    let dir = temp_dir();
    let (vs, model) = build("meso4", &BuildOptions::default());
    let path = dir.path().join("meso4.safetensors");
    save_checkpoint(&vs, model.as_ref(), &path).expect("save");

    let (other_vs, other) = build("meso_inception4", &BuildOptions::default());
    let probe = other_vs.variables()["conv2d_14.weight"].copy();
    let err = load_checkpoint_into(&other_vs, other.as_ref(), &path).expect_err("wrong model");
    match &err {
        Error::WeightMismatch(report) => {
            let (missing, mis_shaped) = (&report.missing, &report.mis_shaped);
            assert!(
                missing.iter().any(|m| m.contains("`conv2d_14.weight`")),
                "{missing:?}"
            );
            assert!(
                mis_shaped.iter().any(|m| m.contains("`conv2d_1.weight`")),
                "{mis_shaped:?}"
            );
        }
        other => panic!("expected a weight mismatch, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("meso4.safetensors"), "{msg}");
    assert!(msg.contains("nothing was loaded"), "{msg}");
    assert!(
        other_vs.variables()["conv2d_14.weight"].equal(&probe),
        "a refused checkpoint must not change any variable"
    );
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn checkpoint_writes_are_atomic() {
    let dir = temp_dir();
    let path = dir.path().join("model.safetensors");
    let (vs, model) = build("meso4", &BuildOptions::default());
    randomize(&vs);
    save_checkpoint(&vs, model.as_ref(), &path).expect("first save");
    let first = std::fs::read(&path).expect("read");
    // Only the destination is left: the temporary file was renamed over it.
    assert_eq!(entries(dir.path()), ["model.safetensors"]);

    // Overwriting replaces the whole content.
    tch::no_grad(|| {
        let _ = vs.variables()["dense.bias"].shallow_clone().fill_(3.0);
    });
    save_checkpoint(&vs, model.as_ref(), &path).expect("second save");
    assert_eq!(entries(dir.path()), ["model.safetensors"]);
    let second = std::fs::read(&path).expect("read");
    assert_ne!(first, second);
    let reloaded = open_checkpoint(&path, Device::Cpu).expect("open");
    let bias = &reloaded.var_store.variables()["dense.bias"];
    assert!(bias.equal(&Tensor::full([16], 3.0, (Kind::Float, Device::Cpu))));

    // A write that cannot complete (the destination is a directory, so the final rename
    // fails) leaves no temporary file behind and the old content in place.
    let blocked = dir.path().join("blocked.safetensors");
    std::fs::create_dir(&blocked).expect("mkdir");
    let err = save_checkpoint(&vs, model.as_ref(), &blocked).expect_err("rename over a dir");
    assert!(
        matches!(err, Error::Io { .. }),
        "expected an I/O error, got {err}"
    );
    assert!(err.to_string().contains("blocked.safetensors"), "{err}");
    assert_eq!(
        entries(dir.path()),
        ["blocked.safetensors", "model.safetensors"]
    );
    assert_eq!(std::fs::read(&path).expect("read"), second);

    // A missing directory is an error naming it, and creates nothing.
    let missing = dir.path().join("no/such/dir/model.safetensors");
    let err = save_checkpoint(&vs, model.as_ref(), &missing).expect_err("missing dir");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[test]
fn a_file_that_is_no_checkpoint_is_an_error() {
    let dir = temp_dir();
    let path = dir.path().join("junk.safetensors");
    std::fs::write(&path, b"definitely not safetensors").expect("write");
    let err = load_checkpoint(&path, Device::Cpu).expect_err("junk");
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("junk.safetensors"), "{err}");
}

/// The study-form EfficientNet-B0 file imported into a ResNet50: every tensor of both is
/// listed by name, and nothing is loaded.
#[test]
fn keras_file_of_another_model_lists_the_tensors() {
    let (vs, model) = build("resnet50", &BuildOptions::default());
    let probe = vs.variables()["conv1_conv.weight"].copy();
    let file = fixture("study_b0_flat.weights.h5");
    let err = import_keras(&vs, model.as_ref(), &file, &KerasImportOptions::default())
        .expect_err("an EfficientNet file into a ResNet50");
    match &err {
        Error::WeightMismatch(report) => {
            let (missing, unexpected) = (&report.missing, &report.unexpected);
            assert!(
                missing.iter().any(|m| m.contains("`conv1_conv.weight`")),
                "{missing:?}"
            );
            assert!(
                missing
                    .iter()
                    .any(|m| m.contains("`conv5_block3_3_bn.running_var`")),
                "{missing:?}"
            );
            assert!(
                unexpected
                    .iter()
                    .any(|u| u.contains("block1a_dwconv") || u.contains("stem_conv")),
                "{unexpected:?}"
            );
        }
        other => panic!("expected a weight mismatch, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("study_b0_flat.weights.h5"), "{msg}");
    assert!(msg.contains("`resnet50`"), "{msg}");
    assert!(msg.contains("missing from the file"), "{msg}");
    assert!(msg.contains("unexpected in the file"), "{msg}");
    assert!(vs.variables()["conv1_conv.weight"].equal(&probe));
}

/// The right architecture with a head of other sizes: the mis-shaped tensors are named
/// with both shapes.
#[test]
fn keras_file_with_other_head_sizes_lists_mis_shaped_tensors() {
    let options = BuildOptions::default()
        .with_input_size(64, 64)
        .with_top(Top::study([64, 16], 0.5, 0.0));
    let (vs, model) = build("efficientnet_b0", &options);
    let file = fixture("study_b0_flat.weights.h5");
    let err = import_keras(&vs, model.as_ref(), &file, &KerasImportOptions::default())
        .expect_err("head of 64 units against a file of 32");
    match &err {
        Error::WeightMismatch(report) => {
            let (mis_shaped, missing, unexpected) =
                (&report.mis_shaped, &report.missing, &report.unexpected);
            assert!(
                mis_shaped
                    .iter()
                    .any(|m| m.contains("`dense.weight`") && m.contains("[64, 5120]")),
                "{mis_shaped:?}"
            );
            assert!(missing.is_empty(), "{missing:?}");
            assert!(unexpected.is_empty(), "{unexpected:?}");
        }
        other => panic!("expected a weight mismatch, got {other}"),
    }
}

#[test]
fn truncated_keras_file_is_an_hdf5_error() {
    let dir = temp_dir();
    let bytes = std::fs::read(fixture("study_b0_flat.weights.h5")).expect("read");
    let (vs, model) = build("efficientnet_b0", &BuildOptions::default());
    for keep in [bytes.len() / 2, 4096, 600] {
        let path = dir.path().join(format!("cut_{keep}.weights.h5"));
        std::fs::write(&path, &bytes[..keep]).expect("write");
        let err = import_keras(&vs, model.as_ref(), &path, &KerasImportOptions::default())
            .expect_err("truncated");
        assert!(matches!(err, Error::Hdf5 { .. }), "{keep} bytes: {err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("cut_{keep}.weights.h5")), "{msg}");
    }
}

#[test]
fn non_hdf5_file_is_an_error_saying_so() {
    let dir = temp_dir();
    let path = dir.path().join("notes.h5");
    std::fs::write(&path, "these are not weights\n".repeat(100)).expect("write");
    let (vs, model) = build("meso4", &BuildOptions::default());
    let err = import_keras(&vs, model.as_ref(), &path, &KerasImportOptions::default())
        .expect_err("text file");
    assert!(matches!(err, Error::Hdf5 { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("notes.h5"), "{msg}");
    assert!(msg.contains("not an HDF5 file"), "{msg}");

    let err = import_keras(
        &vs,
        model.as_ref(),
        dir.path().join("absent.h5"),
        &KerasImportOptions::default(),
    )
    .expect_err("missing file");
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("absent.h5"), "{err}");
}

#[test]
fn unknown_model_names_the_known_ones() {
    let vs = VarStore::new(Device::Cpu);
    let err = registry::build("efficientnet_b9", &vs.root(), &BuildOptions::default())
        .expect_err("no B9");
    let msg = err.to_string();
    assert!(msg.contains("efficientnet_b9"), "{msg}");
    for name in df_models::names() {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn registry_lists_every_model_with_keras_counts() {
    // Keras built a reference of every registered model, under its registry name
    // (`scripts/fixtures/keras_init.py`), and of nothing else.
    let init: serde_json::Value = common::fixture_json("keras_init", "init.json");
    let mut keras_names: Vec<&str> = init["models"]
        .as_object()
        .expect("models")
        .keys()
        .map(String::as_str)
        .collect();
    keras_names.sort_unstable();
    let mut names = registry::names();
    names.sort_unstable();
    assert_eq!(names, keras_names, "registry against keras_init/init.json");
    // Sizes from Keras' applications (default input shapes) and the MesoNet paper.
    let sizes: Vec<i64> = registry::registry()
        .iter()
        .map(|m| m.input_size[0])
        .collect();
    assert_eq!(
        sizes,
        [256, 256, 224, 224, 224, 224, 224, 224, 240, 260, 300, 380, 456, 528, 600, 299, 299]
    );
    // Building a small model with its defaults gives Keras' parameter count.
    for name in ["meso4", "meso_inception4"] {
        let (vs, model) = build(name, &BuildOptions::default());
        let counts = df_layers::util::param_count(&vs);
        let info = registry::info(name).expect("info");
        let keras = info.keras_params.expect("counts");
        assert_eq!(counts, keras.with_top, "{name}");
        assert_eq!(model.input_spec(), info.input_spec(), "{name}");
    }
}

/// The first catalogue model of every family that has Keras' count without a top
/// (`include_top=False`) has it when built as a backbone (at its smallest input: the count
/// does not depend on it). One model a family keeps the test fast; the variants' counts
/// are checked with their tops by `initialisers` and per family by the family tests.
#[test]
fn every_family_without_its_top_has_keras_count() {
    let backbone = Top::Backbone {
        pooling: df_layers::HeadInput::Flatten,
    };
    let mut checked: Vec<&str> = Vec::new();
    for info in registry::registry() {
        let Some(expected) = info.keras_params.and_then(|k| k.without_top) else {
            continue;
        };
        if checked.contains(&info.family) {
            continue;
        }
        let vs = VarStore::new(Device::Cpu);
        let size = info.min_input_size.max(32);
        let options = BuildOptions::default()
            .with_top(backbone.clone())
            .with_input_size(size, size);
        registry::build(info.name, &vs.root(), &options).expect(info.name);
        // Keras counts the 7 statistics of EfficientNet's input `Normalization` layer
        // (mean, variance, count), which are the preprocessing here (its `InputSpec`).
        let normalization = if info.family == "efficientnet" { 7 } else { 0 };
        let expected = df_layers::util::ParamCount {
            total: expected.total - normalization,
            ..expected
        };
        assert_eq!(
            df_layers::util::param_count(&vs),
            expected,
            "{} without its top",
            info.name
        );
        checked.push(info.family);
    }
    assert!(checked.len() >= 5, "only {checked:?} have a no-top count");
}

/// `tests/data/checkpoints/meso4_v1.safetensors` was written by the format-1 writer (the
/// commit named in `meso4_v1.json`, with `scripts/checkpoints/write_v1.rs`): it must keep
/// opening, with the same variables and the logits that release computed.
#[test]
fn format_1_checkpoints_keep_opening() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/checkpoints");
    let path = dir.join("meso4_v1.safetensors");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meso4_v1.json")).expect("json"))
            .expect("parse");
    let meta = read_checkpoint_meta(&path).expect("meta");
    assert_eq!(meta.format_version, 1);
    assert_eq!(meta.family, None, "format 1 names no family");
    assert_eq!(meta.preparation, None, "format 1 records no preparation");

    let loaded = open_checkpoint(&path, Device::Cpu).expect("a format-1 checkpoint opens");
    assert_eq!(loaded.model.name(), "meso4");
    assert_eq!(loaded.model.family(), "meso4");
    assert_eq!(loaded.model.input_spec().height, 64);
    let bytes = std::fs::read(&path).expect("read");
    let file = df_io::safetensors::parse(&path, &bytes).expect("parse");
    let vars = loaded.var_store.variables();
    assert_eq!(vars.len(), file.tensors.len());
    for (name, view) in &file.tensors {
        let stored = Tensor::from_slice(&view.to_f32().expect("f32"));
        let ours = vars[name].view([-1]);
        assert!(ours.equal(&stored), "variable {name} differs from the file");
    }
    let xs = (Tensor::arange(2 * 3 * 64 * 64, (Kind::Float, Device::Cpu)).fmod(251.0) / 251.0)
        .view([2, 3, 64, 64]);
    let logits =
        Vec::<f32>::try_from(forward(loaded.model.as_ref(), &xs).view([-1])).expect("logits");
    let expected: Vec<f64> = reference["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(logits.len(), expected.len());
    for (ours, theirs) in logits.iter().zip(&expected) {
        assert!(
            (f64::from(*ours) - theirs).abs() < 1e-6,
            "logit {ours} vs the format-1 release's {theirs}"
        );
    }

    // Saved again, it is a current-format checkpoint with its family.
    let dir = temp_dir();
    let again = dir.path().join("again.safetensors");
    save_checkpoint(&loaded.var_store, loaded.model.as_ref(), &again).expect("save");
    let meta = read_checkpoint_meta(&again).expect("meta");
    assert_eq!(meta.format_version, CHECKPOINT_FORMAT_VERSION);
    assert_eq!(meta.family.as_deref(), Some("meso4"));
}

#[test]
fn every_catalogue_entry_names_the_family_that_builds_it() {
    for info in registry::registry() {
        let config = info.config(&BuildOptions::default()).expect("config");
        assert_eq!(config.family(), info.family, "{}", info.name);
        assert!(
            df_models::registry::family_names().contains(&info.family),
            "{}: family `{}` is not registered",
            info.name,
            info.family
        );
        assert_eq!(config.input_spec(), info.input_spec(), "{}", info.name);
    }
}

/// A checkpoint whose family nobody registered is an error listing the known families.
#[test]
fn unknown_family_is_an_error_listing_the_known_ones() {
    let (vs, model) = build("meso4", &BuildOptions::default().with_input_size(32, 32));
    let dir = temp_dir();
    let path = dir.path().join("renamed.safetensors");
    save_checkpoint(&vs, model.as_ref(), &path).expect("save");
    let bytes = std::fs::read(&path).expect("read");
    let mut meta = df_io::safetensors::parse_metadata(&path, &bytes).expect("metadata");
    meta.insert("family".into(), "capsule_net".into());
    let file = df_io::safetensors::parse(&path, &bytes).expect("parse");
    let tensors: Vec<(String, df_io::TensorBytes)> = file
        .tensors
        .into_iter()
        .map(|(name, view)| {
            let shape = view.shape.clone();
            (
                name,
                df_io::TensorBytes::from_f32(shape, &view.to_f32().expect("f32")),
            )
        })
        .collect();
    df_io::safetensors::write(&path, &tensors, &meta).expect("rewrite");
    let err = open_checkpoint(&path, Device::Cpu).expect_err("unknown family");
    let text = err.to_string();
    assert!(matches!(err, Error::UnknownFamily { .. }), "{text}");
    for known in [
        "capsule_net",
        "meso4",
        "resnet",
        "efficientnet",
        "register_family",
    ] {
        assert!(text.contains(known), "`{known}` missing from: {text}");
    }
}

/// A checkpoint carries the image preparation it was trained with (format 3): written,
/// read back and exposed by the loaded model; an invalid one is refused on write (nothing
/// written) and on read, naming the metadata key.
#[test]
fn checkpoints_carry_their_image_preparation() {
    use df_models::checkpoint::save_checkpoint_with;
    use df_models::{ImagePreparation, ResizeMethod};
    let (vs, model) = build("meso4", &BuildOptions::default().with_input_size(32, 32));
    let dir = temp_dir();
    let path = dir.path().join("cropped.safetensors");
    let preparation = ImagePreparation {
        resize: ResizeMethod::Area,
        center_crop: Some(0.512),
        faces: None,
    };
    save_checkpoint_with(&vs, model.as_ref(), Some(&preparation), &path).expect("save");
    let meta = read_checkpoint_meta(&path).expect("meta");
    assert_eq!(meta.format_version, 3);
    assert_eq!(meta.preparation, Some(preparation));
    let loaded = open_checkpoint(&path, Device::Cpu).expect("open");
    assert_eq!(loaded.preparation(), Some(preparation));
    // Without one, none is recorded.
    let bare = dir.path().join("bare.safetensors");
    save_checkpoint(&vs, model.as_ref(), &bare).expect("save");
    assert_eq!(read_checkpoint_meta(&bare).expect("meta").preparation, None);

    let bad = ImagePreparation {
        center_crop: Some(1.5),
        ..preparation
    };
    let refused = dir.path().join("refused.safetensors");
    let err =
        save_checkpoint_with(&vs, model.as_ref(), Some(&bad), &refused).expect_err("a crop of 1.5");
    assert!(err.to_string().contains("center_crop"), "{err}");
    assert!(!refused.exists(), "nothing written");

    for (text, why) in [
        (r#"{"resize":"nearest","center_crop":7.0}"#, "center_crop"),
        (r#"{"resize":"lanczos","center_crop":null}"#, "lanczos"),
        // Issue 22, point 15: a sub-pixel region of any image (accepted before).
        (r#"{"resize":"nearest","center_crop":1e-9}"#, "under 8 px"),
    ] {
        let bytes = std::fs::read(&path).expect("read");
        let mut meta = df_io::safetensors::parse_metadata(&path, &bytes).expect("metadata");
        meta.insert("preparation".into(), text.into());
        let file = df_io::safetensors::parse(&path, &bytes).expect("parse");
        let tampered = dir.path().join("tampered.safetensors");
        df_io::safetensors::write(&tampered, &file.tensors, &meta).expect("rewrite");
        let err = read_checkpoint_meta(&tampered).expect_err("a bad preparation");
        let msg = err.to_string();
        assert!(
            msg.contains("preparation") && msg.contains(why) && msg.contains("tampered"),
            "{msg}"
        );
    }
}

/// A byte flipped in a checkpoint's tensor data (storage rot, a bad copy) is caught on
/// load by the data checksum, instead of scoring differently (issue 12, point 4).
#[test]
fn a_damaged_checkpoint_is_refused_not_scored() {
    let (vs, model) = build("meso4", &BuildOptions::default().with_input_size(32, 32));
    let dir = temp_dir();
    let path = dir.path().join("meso4.safetensors");
    save_checkpoint(&vs, model.as_ref(), &path).expect("save");
    let mut bytes = std::fs::read(&path).expect("read");
    let at = bytes.len() - 100; // inside the tensor data, after the header
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).expect("damage");
    let err = load_checkpoint(&path, Device::Cpu).expect_err("a damaged checkpoint");
    let text = err.to_string();
    assert!(
        text.contains("damaged") && text.contains("meso4.safetensors"),
        "{text}"
    );
}

/// Sizes that cannot be real are refused before anything is allocated (issue 12, point
/// 3): a Keras dataset declared 64M×16 but never written (`hostile_h5.py`), and a
/// checkpoint whose configuration claims a 100000×100000 input for a Flatten head.
#[test]
fn impossible_sizes_are_refused_before_allocating() {
    let small = common::fixture("hostile_h5", "small.h5");
    let weights = df_models::keras::KerasWeights::read(&small).expect("a small file reads");
    assert_eq!(weights.layers.len(), 1);
    let hostile = common::fixture("hostile_h5", "unallocated.h5");
    let started = std::time::Instant::now();
    let err = df_models::keras::KerasWeights::read(&hostile).expect_err("a 4 GB declaration");
    let text = err.to_string();
    assert!(
        text.contains("unallocated.h5") && text.contains("declares shape [64000000, 16]"),
        "{text}"
    );
    assert!(
        started.elapsed().as_secs() < 5,
        "it read the data: {:?}",
        started.elapsed()
    );

    // A checkpoint of meso4 whose stored configuration says 100000×100000.
    let (vs, model) = build("meso4", &BuildOptions::default().with_input_size(32, 32));
    let dir = temp_dir();
    let path = dir.path().join("huge.safetensors");
    save_checkpoint(&vs, model.as_ref(), &path).expect("save");
    let bytes = std::fs::read(&path).expect("read");
    let mut meta = df_io::safetensors::parse_metadata(&path, &bytes).expect("metadata");
    let mut config: serde_json::Value = serde_json::from_str(&meta["config"]).expect("config");
    config["input_size"] = serde_json::json!([100_000, 100_000]);
    meta.insert("config".into(), config.to_string());
    let file = df_io::safetensors::parse(&path, &bytes).expect("parse");
    df_io::safetensors::write(&path, &file.tensors, &meta).expect("rewrite");
    let started = std::time::Instant::now();
    let err = open_checkpoint(&path, Device::Cpu).expect_err("a 100000×100000 head");
    let text = err.to_string();
    assert!(
        text.contains("input_size") && text.contains("would need at least"),
        "{text}"
    );
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}

/// The `keras_hdf5` fuzz target's corpus, seeds and crash files (`fuzz/`), replayed on
/// stable: no nightly, no sanitizer. A missing corpus is a failure: it is committed.
#[path = "../../../fuzz/replay.rs"]
mod replay;

#[test]
fn keras_hdf5_corpus_replays_without_a_panic() {
    replay::replay("keras_hdf5", 100, df_models::fuzz::keras_hdf5);
}

/// A checkpoint's stored configuration is checked when it is read, before anything uses
/// it (the `run_config` fuzz target found a stride of 0 dividing by zero in
/// `feature_shape`).
#[test]
fn a_stored_configuration_out_of_range_is_refused_by_name() {
    for (model, family, pointer, value, words) in [
        (
            "efficientnet_b0",
            "efficientnet",
            "/stages/6/stride",
            0,
            "stage 7: stride",
        ),
        (
            "efficientnet_b0",
            "efficientnet",
            "/stages/0/kernel",
            -1,
            "stage 1: kernel",
        ),
        ("resnet50", "resnet", "/depth", 49, "depth"),
        ("vgg16", "vgg16", "/input_size/0", 8, "input_size"),
        ("meso4", "meso4", "/input_size/1", 0, "input_size"),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let built = registry::build(model, &vs.root(), &BuildOptions::default()).expect("build");
        let mut json = built.config_json().expect("json");
        *json.pointer_mut(pointer).expect(pointer) = value.into();
        let err = registry::config_from_json(family, model, &json)
            .err()
            .unwrap_or_else(|| panic!("{model}: {pointer} = {value} accepted"))
            .to_string();
        assert!(err.contains(words) && err.contains(model), "{model}: {err}");
    }
}
