//! EarlyStopping and ReduceLROnPlateau against Keras' own callbacks on scripted metric
//! sequences (fixture `scripts/fixtures/keras_callbacks.py`), and their saved state.

use df_train::{
    Callback, CallbackContext, CallbackState, EarlyStopping, EarlyStoppingConfig, Logs, Mode,
    Optimizer, OptimizerConfig, ReduceLrOnPlateau, ReduceLrOnPlateauConfig,
};
use tch::nn::VarStore;

use crate::common::{f64s, fixture, tiny, values};

fn mode(cfg: &serde_json::Value) -> Mode {
    match cfg.get("mode").and_then(|m| m.as_str()) {
        Some("min") => Mode::Min,
        Some("max") => Mode::Max,
        _ => Mode::Auto,
    }
}

fn build(case: &serde_json::Value) -> Box<dyn Callback> {
    let cfg = &case["config"];
    let monitor = case["monitor"].as_str().expect("monitor");
    let num = |k: &str| cfg.get(k).and_then(|v| v.as_f64());
    let int = |k: &str| cfg.get(k).and_then(|v| v.as_u64()).map(|v| v as usize);
    match case["callback"].as_str().expect("callback") {
        "early_stopping" => {
            let mut c = EarlyStoppingConfig::new(monitor).with_mode(mode(cfg));
            if let Some(p) = int("patience") {
                c = c.with_patience(p);
            }
            if let Some(d) = num("min_delta") {
                c = c.with_min_delta(d);
            }
            if let Some(b) = num("baseline") {
                c = c.with_baseline(b);
            }
            if let Some(r) = cfg.get("restore_best_weights").and_then(|v| v.as_bool()) {
                c = c.with_restore_best_weights(r);
            }
            if let Some(s) = int("start_from_epoch") {
                c = c.with_start_from_epoch(s);
            }
            Box::new(EarlyStopping::new(c).expect("early stopping"))
        }
        "reduce_lr_on_plateau" => {
            let mut c = ReduceLrOnPlateauConfig::new(monitor).with_mode(mode(cfg));
            if let Some(f) = num("factor") {
                c = c.with_factor(f);
            }
            if let Some(p) = int("patience") {
                c = c.with_patience(p);
            }
            if let Some(p) = int("cooldown") {
                c = c.with_cooldown(p);
            }
            if let Some(d) = num("min_delta") {
                c = c.with_min_delta(d);
            }
            if let Some(m) = num("min_lr") {
                c = c.with_min_lr(m);
            }
            Box::new(ReduceLrOnPlateau::new(c).expect("reduce lr"))
        }
        other => panic!("unknown callback {other}"),
    }
}

fn fill(vs: &VarStore, value: f64) {
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            let _ = t.fill_(value);
        }
    });
}

struct Outcome {
    lrs: Vec<f64>,
    epochs_run: usize,
    stopped_after: Option<usize>,
    final_weights: f64,
}

/// Keras' fit loop in miniature: the weights hold the epoch index, so restored weights
/// tell which epoch they come from. With `split_at`, the callback's state is saved after
/// that many epochs and loaded into a fresh callback, as a resumed run does.
fn drive(case: &serde_json::Value, split_at: Option<usize>) -> Outcome {
    let (model, vs) = tiny(0, 0.0, 0.0);
    let lr_init = case["lr_init"].as_f64().expect("lr_init");
    let mut opt = Optimizer::for_var_store(OptimizerConfig::sgd(lr_init, 0.0), &vs).expect("opt");
    let monitor = case["monitor"].as_str().expect("monitor");
    let mut cb = build(case);
    let mut stop = false;
    cb.on_train_begin(&mut CallbackContext::new(
        &vs,
        model.as_ref(),
        &mut opt,
        &mut stop,
    ))
    .expect("begin");
    let mut out = Outcome {
        lrs: Vec::new(),
        epochs_run: 0,
        stopped_after: None,
        final_weights: f64::NAN,
    };
    for (epoch, v) in f64s(&case["values"]).into_iter().enumerate() {
        if split_at == Some(epoch) {
            let state = cb.state().expect("state");
            cb = build(case);
            cb.on_train_begin(&mut CallbackContext::new(
                &vs,
                model.as_ref(),
                &mut opt,
                &mut stop,
            ))
            .expect("begin");
            cb.load_state(state).expect("load state");
        }
        fill(&vs, epoch as f64);
        let mut logs = Logs::new();
        logs.insert(monitor.to_string(), v);
        logs.insert("loss".to_string(), 1.0);
        cb.on_epoch_end(
            epoch,
            &logs,
            &mut CallbackContext::new(&vs, model.as_ref(), &mut opt, &mut stop),
        )
        .expect("epoch end");
        out.lrs.push(opt.learning_rate());
        out.epochs_run = epoch + 1;
        if stop {
            out.stopped_after = Some(epoch);
            break;
        }
    }
    cb.on_train_end(&mut CallbackContext::new(
        &vs,
        model.as_ref(),
        &mut opt,
        &mut stop,
    ))
    .expect("end");
    let any = vs.variables().into_values().next().expect("a variable");
    out.final_weights = values(&any)[0];
    out
}

#[test]
fn callbacks_match_keras() {
    let doc = fixture("keras_callbacks", "cases.json");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 12);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let n = case["values"].as_array().expect("values").len();
        for split in [None, Some(1), Some(n / 2), Some(n - 1)] {
            let got = drive(case, split);
            let want_lrs = f64s(&case["lrs"]);
            assert_eq!(
                got.epochs_run,
                case["epochs_run"].as_u64().expect("n") as usize,
                "{name} {split:?}: epochs run"
            );
            assert_eq!(
                got.stopped_after,
                case["stopped_after"].as_u64().map(|e| e as usize),
                "{name} {split:?}: stop"
            );
            assert_eq!(got.lrs.len(), want_lrs.len(), "{name}");
            for (e, (a, b)) in got.lrs.iter().zip(&want_lrs).enumerate() {
                // Keras keeps the rate in float32.
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs(),
                    "{name} {split:?}: lr after epoch {e}: {a} vs Keras {b}"
                );
            }
            let want_final = case["final_weights_epoch"].as_f64().expect("final");
            assert_eq!(
                got.final_weights, want_final,
                "{name} {split:?}: final weights' epoch"
            );
        }
    }
}

#[test]
fn missing_monitor_is_a_clear_error() {
    let (model, vs) = tiny(0, 0.0, 0.0);
    let mut opt = Optimizer::for_var_store(OptimizerConfig::default(), &vs).expect("opt");
    let mut stop = false;
    let mut cb = EarlyStopping::new(EarlyStoppingConfig::new("val_auc")).expect("es");
    let mut logs = Logs::new();
    logs.insert("loss".into(), 0.5);
    let err = cb
        .on_epoch_end(
            0,
            &logs,
            &mut CallbackContext::new(&vs, model.as_ref(), &mut opt, &mut stop),
        )
        .expect_err("val_auc is not logged");
    let msg = err.to_string();
    assert!(msg.contains("val_auc") && msg.contains("loss"), "{msg}");
}

#[test]
fn invalid_callback_configs_are_errors() {
    assert!(
        ReduceLrOnPlateau::new(ReduceLrOnPlateauConfig::new("val_loss").with_factor(1.0)).is_err()
    );
    assert!(
        ReduceLrOnPlateau::new(ReduceLrOnPlateauConfig::new("val_loss").with_min_lr(-1.0)).is_err()
    );
    assert!(EarlyStopping::new(EarlyStoppingConfig::new("")).is_err());
    assert!(Mode::Auto.minimises("val_loss"));
    assert!(!Mode::Auto.minimises("val_accuracy"));
    assert!(!Mode::Auto.minimises("val_auc"));
}

/// A saved state that is not the callback's own (a checkpoint of another callback or
/// version) is an error naming the callback and the value at fault, not a silent reset.
#[test]
fn a_state_that_does_not_fit_is_an_error_naming_the_callback() {
    let mut cb = EarlyStopping::new(EarlyStoppingConfig::new("val_loss")).expect("valid");
    let good = cb.state().expect("state");
    assert_eq!(good.json["wait"], 0);
    let bad = CallbackState {
        json: serde_json::json!({ "wait": "three", "best_epoch": 0 }),
        tensors: Vec::new(),
    };
    let err = cb.load_state(bad).expect_err("a string count");
    let text = err.to_string();
    assert!(
        text.contains("early_stopping") && text.contains("\"three\""),
        "{text}"
    );
    cb.load_state(good).expect("its own state loads");
}
