//! Checkpoint files: atomic replacement (even when the writer is killed), the best-model
//! checkpoint, rank-0-only writes.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use df_train::run_files::{read_safetensors, write_safetensors};
use df_train::{
    files, Loss, ModelCheckpointConfig, OptimizerConfig, TensorBatches, Trainer, Verbosity,
};
use tch::{Kind, Tensor};

use crate::common::{tiny, toy_data, values};

#[test]
fn failed_write_leaves_the_old_file_and_no_temporary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.bin");
    std::fs::write(&path, b"old").expect("write");
    let err = df_io::write_atomic_with(&path, |f| {
        use std::io::Write;
        f.write_all(b"partial new content").expect("write");
        Err(df_train::Error::Io {
            path: path.clone(),
            source: std::io::Error::other("disk full (simulated)"),
        })
    });
    assert!(err.is_err());
    assert_eq!(std::fs::read(&path).expect("read"), b"old");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
}

const VERSIONS: [f32; 2] = [1.0, 2.0];
const ELEMS: i64 = 1 << 21; // 8 MiB per file: writes take long enough to be interrupted

fn version_file(path: &Path, v: f32) {
    let t = Tensor::full([ELEMS], v as f64, (Kind::Float, tch::Device::Cpu));
    let mut meta = HashMap::new();
    meta.insert("version".to_string(), v.to_string());
    write_safetensors(path, &[("x".to_string(), t)], &meta).expect("write");
}

#[test]
fn killed_writer_never_leaves_a_partial_checkpoint() {
    // As a child process (spawned below): rewrite the file forever, alternating versions.
    if let Ok(path) = std::env::var("DF_TRAIN_CHILD_PATH") {
        for i in 0.. {
            version_file(Path::new(&path), VERSIONS[i % 2]);
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ckpt.safetensors");
    version_file(&path, 0.0);
    let exe = std::env::current_exe().expect("test binary");
    for (i, delay_ms) in [40u64, 95, 150, 230, 310, 420].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "checkpoint::killed_writer_never_leaves_a_partial_checkpoint",
                "--test-threads=1",
            ])
            .env("DF_TRAIN_CHILD_PATH", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("kill");
        child.wait().expect("wait");
        let file = read_safetensors(&path).unwrap_or_else(|e| {
            panic!("kill {i} after {delay_ms} ms left an unreadable file: {e}")
        });
        let v: f32 = file.metadata["version"].parse().expect("version");
        let x = &file.tensors["x"];
        assert_eq!(x.size(), [ELEMS]);
        let (lo, hi) = (
            f64::try_from(x.min()).expect("min"),
            f64::try_from(x.max()).expect("max"),
        );
        assert!(
            lo == hi && lo == v as f64,
            "kill {i}: mixed content {lo}..{hi}, version {v}"
        );
    }
}

#[test]
fn best_checkpoint_holds_the_best_epochs_weights() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, vs) = tiny(11, 1e-3, 0.25);
    let (x, y) = toy_data(64, 2);
    let (vx, vy) = toy_data(48, 3);
    let train = TensorBatches::new(x, y, 16).expect("train").shuffled(3);
    let val = TensorBatches::new(vx.shallow_clone(), vy.shallow_clone(), 16).expect("val");
    let best_path = dir.path().join(files::BEST);
    let mut trainer = Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::adam(3e-2))
        .epochs(6)
        .seed(3)
        .model_checkpoint(ModelCheckpointConfig::new(&best_path, "val_loss"))
        .out_dir(dir.path())
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    let history = trainer.fit(&train, Some(&val)).expect("fit").clone();
    let best = history
        .epochs
        .iter()
        .map(|e| e.metrics["val_loss"])
        .fold(f64::INFINITY, f64::min);
    for f in [
        files::LAST,
        files::BEST,
        files::FINAL,
        files::CONFIG,
        files::HISTORY_JSON,
        files::HISTORY_CSV,
    ] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    // Load the best file into a fresh model and recompute its validation loss by hand.
    let (fresh, fresh_vs) = tiny(99, 1e-3, 0.25);
    let file = read_safetensors(&best_path).expect("best");
    assert_eq!(file.metadata["model"], "tiny_net");
    tch::no_grad(|| {
        for (name, mut var) in fresh_vs.variables() {
            var.copy_(&file.tensors[&name]);
        }
    });
    let logits = tch::no_grad(|| fresh.forward_t(&vx, false)).view([-1]);
    let bce = f64::try_from(Loss::BinaryCrossEntropy.compute(&logits, &vy)).expect("bce");
    let val_loss = bce + f64::try_from(fresh.l2_penalty()).expect("l2");
    assert!(
        (val_loss - best).abs() < 1e-5,
        "best file's val_loss {val_loss} vs best logged {best}"
    );
    // The history files agree with the returned history.
    let on_disk =
        df_train::History::from_json_file(dir.path().join(files::HISTORY_JSON)).expect("json");
    assert_eq!(on_disk, history);
    let from_csv =
        df_train::History::from_csv_file(dir.path().join(files::HISTORY_CSV)).expect("csv");
    assert_eq!(from_csv, history);
    assert_eq!(
        history.metric_names(),
        [
            "accuracy",
            "learning_rate",
            "loss",
            "seconds",
            "val_accuracy",
            "val_auc",
            "val_loss"
        ]
    );
    let _ = values(&logits);
}

#[test]
fn only_rank_zero_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, vs) = tiny(1, 0.0, 0.0);
    let (x, y) = toy_data(16, 2);
    let data = TensorBatches::new(x, y, 8).expect("data");
    let mut trainer = Trainer::builder(model, vs)
        .epochs(1)
        .out_dir(dir.path())
        .distributed(1, 2)
        .model_checkpoint(ModelCheckpointConfig::new(
            dir.path().join(files::BEST),
            "loss",
        ))
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    trainer.fit(&data, None).expect("fit");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "rank 1 wrote files"
    );
    let (model, vs) = tiny(1, 0.0, 0.0);
    assert!(Trainer::builder(model, vs)
        .distributed(2, 2)
        .build()
        .is_err());
}

/// df-io's writer creates no folder; the trainer creates its own output directory (and
/// only it) when `fit` starts, so a run into a new nested folder works, while a best-model
/// checkpoint aimed at a folder nobody made is refused, naming that folder.
#[test]
fn the_trainer_creates_its_out_dir_and_nothing_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (x, y) = toy_data(16, 2);
    let train = TensorBatches::new(x, y, 8).expect("train");
    let out = tmp.path().join("runs").join("a");
    let (model, vs) = tiny(5, 0.0, 0.0);
    let mut trainer = Trainer::builder(model, vs)
        .epochs(1)
        .out_dir(&out)
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    trainer.fit(&train, None).expect("fit");
    for f in [
        files::CONFIG,
        files::LAST,
        files::HISTORY_JSON,
        files::FINAL,
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let elsewhere = tmp.path().join("nowhere");
    let (model, vs) = tiny(5, 0.0, 0.0);
    let mut trainer = Trainer::builder(model, vs)
        .epochs(1)
        .model_checkpoint(ModelCheckpointConfig::new(
            elsewhere.join("best.safetensors"),
            "loss",
        ))
        .out_dir(tmp.path().join("b"))
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    let err = trainer.fit(&train, None).expect_err("no such folder");
    assert!(err.to_string().contains("nowhere"), "{err}");
    assert!(!elsewhere.exists(), "not created");
}
