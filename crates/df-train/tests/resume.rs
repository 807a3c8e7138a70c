//! A run killed mid-way and resumed from its last checkpoint ends with the same history
//! and weights as an uninterrupted run (CPU, same seed).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use df_train::run_files::read_safetensors;
use df_train::{
    files, Callback, CallbackContext, EarlyStoppingConfig, History, Logs, ModelCheckpointConfig,
    OptimizerConfig, ReduceLrOnPlateauConfig, TensorBatches, Trainer, Verbosity, SECONDS,
};

use crate::common::{tiny, toy_data, values};

const EPOCHS: usize = 7;
const KILL_AFTER: usize = 3;

/// Slows the child down so that the parent can kill it between checkpoints.
struct Sleep(u64);

impl Callback for Sleep {
    fn name(&self) -> String {
        "sleep".into()
    }
    fn on_epoch_end(
        &mut self,
        _: usize,
        _: &Logs,
        _: &mut CallbackContext<'_>,
    ) -> df_train::Result<()> {
        std::thread::sleep(Duration::from_millis(self.0));
        Ok(())
    }
}

/// The run both processes make: dropout, L2, AdamW, BN, every stateful callback.
fn run(dir: &Path, sleep_ms: u64) {
    tch::set_num_threads(1);
    let (model, vs) = tiny(21, 1e-3, 0.25);
    let (x, y) = toy_data(96, 4);
    let (vx, vy) = toy_data(48, 5);
    let train = TensorBatches::new(x, y, 16).expect("train").shuffled(5);
    let val = TensorBatches::new(vx, vy, 24).expect("val");
    let mut trainer = Trainer::builder(model, vs)
        .optimizer(OptimizerConfig::adamw(2e-2, 1e-2))
        .epochs(EPOCHS)
        .seed(9)
        .early_stopping(
            EarlyStoppingConfig::new("val_loss")
                .with_patience(20)
                .with_restore_best_weights(true),
        )
        .reduce_lr_on_plateau(
            ReduceLrOnPlateauConfig::new("loss")
                .with_patience(1)
                .with_factor(0.5)
                .with_min_delta(0.1),
        )
        .model_checkpoint(ModelCheckpointConfig::new(
            dir.join(files::BEST),
            "val_accuracy",
        ))
        .callback(Box::new(Sleep(sleep_ms)))
        .out_dir(dir)
        .resume(true)
        .verbosity(Verbosity::Quiet)
        .build()
        .expect("trainer");
    trainer.fit(&train, Some(&val)).expect("fit");
}

fn epochs_done(path: &Path) -> Option<usize> {
    let file = read_safetensors(path).ok()?;
    let state: serde_json::Value = serde_json::from_str(file.metadata.get("train_state")?).ok()?;
    state["epochs_done"].as_u64().map(|e| e as usize)
}

fn spawn(dir: &Path, sleep_ms: u64) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "resume::killed_run_resumes_to_the_same_history",
            "--test-threads=1",
        ])
        .env("DF_TRAIN_RESUME_DIR", dir)
        .env("DF_TRAIN_RESUME_SLEEP_MS", sleep_ms.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

#[test]
fn killed_run_resumes_to_the_same_history() {
    if let Ok(dir) = std::env::var("DF_TRAIN_RESUME_DIR") {
        let sleep = std::env::var("DF_TRAIN_RESUME_SLEEP_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        run(Path::new(&dir), sleep);
        return;
    }
    let whole = tempfile::tempdir().expect("tempdir");
    let killed = tempfile::tempdir().expect("tempdir");

    let status = spawn(whole.path(), 0).wait().expect("wait");
    assert!(status.success(), "uninterrupted run failed");

    let mut child = spawn(killed.path(), 400);
    let last = killed.path().join(files::LAST);
    let start = Instant::now();
    loop {
        if epochs_done(&last).is_some_and(|e| e >= KILL_AFTER) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint of epoch {KILL_AFTER}"
        );
        assert!(
            child.try_wait().expect("child").is_none(),
            "child ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    let at_kill = epochs_done(&last).expect("a readable last checkpoint after the kill");
    assert!(
        (KILL_AFTER..EPOCHS).contains(&at_kill),
        "killed after {at_kill} epochs"
    );
    assert!(
        !killed.path().join(files::FINAL).exists(),
        "the killed run had finished"
    );

    let status = spawn(killed.path(), 0).wait().expect("wait");
    assert!(status.success(), "resumed run failed");

    let a = History::from_json_file(whole.path().join(files::HISTORY_JSON)).expect("history");
    let b = History::from_json_file(killed.path().join(files::HISTORY_JSON)).expect("history");
    assert_eq!(a.epochs.len(), EPOCHS);
    assert_eq!(b.epochs.len(), a.epochs.len());
    let lrs: Vec<f64> = a
        .epochs
        .iter()
        .map(|e| e.metrics["learning_rate"])
        .collect();
    assert!(
        lrs.windows(2).any(|w| w[1] < w[0]),
        "the run should reduce its learning rate: {lrs:?}"
    );
    for (ea, eb) in a.epochs.iter().zip(&b.epochs) {
        assert_eq!(ea.epoch, eb.epoch);
        assert_eq!(
            ea.metrics.keys().collect::<Vec<_>>(),
            eb.metrics.keys().collect::<Vec<_>>()
        );
        for (k, va) in ea.metrics.iter().filter(|(k, _)| k.as_str() != SECONDS) {
            let vb = eb.metrics[k];
            assert!(
                (va - vb).abs() <= 1e-6,
                "epoch {} {k}: {va} uninterrupted vs {vb} resumed",
                ea.epoch
            );
        }
    }
    for f in [files::FINAL, files::BEST] {
        let fa = read_safetensors(&whole.path().join(f)).expect("a");
        let fb = read_safetensors(&killed.path().join(f)).expect("b");
        assert_eq!(fa.tensors.len(), fb.tensors.len());
        for (name, ta) in &fa.tensors {
            let (va, vb) = (values(ta), values(&fb.tensors[name]));
            let diff = va
                .iter()
                .zip(&vb)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(diff <= 1e-6, "{f} {name}: max difference {diff}");
        }
    }
}
