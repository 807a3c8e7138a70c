//! The checks a run makes before it writes anything: options that exclude each other,
//! numbers that must survive `f32`, the callbacks' monitors, the device, the model and its
//! input, the output folder; and, for a resumed run, what may change against the run
//! stored in its folder.

use std::path::Path;

use super::{json_err, ExperimentConfig};
use crate::error::{config, Result};
use crate::precision::Precision;
use crate::run_dir::{self, Reuse};
use crate::run_files::files;
use crate::source::transform_for;

/// Refuses a callback that monitors a metric the run will not log, before any work
/// (otherwise the error would come at the end of the first epoch).
///
/// # Errors
/// [`crate::Error::Config`] naming the callback's option and listing what the run logs.
fn check_monitors(cfg: &ExperimentConfig) -> Result<()> {
    let validates = cfg.data.val.is_some() || cfg.data.val_split.is_some();
    let mut logged = vec!["loss", "accuracy", "learning_rate"];
    if validates {
        logged.extend(["val_loss", "val_accuracy", "val_auc"]);
    }
    if sbi_holdout(cfg) {
        logged.extend(["val_sbi_loss", "val_sbi_accuracy", "val_sbi_auc"]);
    }
    let c = &cfg.callbacks;
    let monitors = [
        (
            "early_stopping.monitor",
            c.early_stopping.as_ref().map(|c| &c.monitor),
        ),
        (
            "reduce_lr_on_plateau.monitor",
            c.reduce_lr_on_plateau.as_ref().map(|c| &c.monitor),
        ),
        (
            "model_checkpoint.monitor",
            c.model_checkpoint.as_ref().map(|c| &c.monitor),
        ),
    ];
    for (option, monitor) in monitors {
        if let Some(m) = monitor.filter(|m| !logged.contains(&m.as_str())) {
            return Err(config(
                option,
                format!(
                    "`{m}` is not a metric this run logs; it logs {}{}",
                    logged.join(", "),
                    if validates {
                        ""
                    } else {
                        " (the val_ metrics need validation data: --val or --val-split)"
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Whether the run scores held-out pseudo-fakes beside its validation folder: pseudo-fakes
/// with both `val` and `val_split` (logged as `val_sbi_*`).
fn sbi_holdout(cfg: &ExperimentConfig) -> bool {
    cfg.data.pseudo_fakes.is_some() && cfg.data.val.is_some() && cfg.data.val_split.is_some()
}

/// Every number of `cfg` that is a float in its configuration must survive the f32 its
/// tensors hold it in: finite, and not a non-zero value that rounds to zero (`--lr 1e308`
/// passed the f64 checks, wrote the run's files, then failed inside libtorch).
///
/// # Errors
/// [`crate::Error::Config`] naming the option (its path in the configuration) and the value.
fn check_f32_range(cfg: &ExperimentConfig) -> Result<()> {
    fn walk(v: &serde_json::Value, at: &mut Vec<String>) -> Result<()> {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                let single = x as f32;
                let why = if !single.is_finite() {
                    Some("is beyond f32's range (about 3.4e38), the precision it is used in")
                } else if x != 0.0 && single == 0.0 {
                    Some("rounds to 0 in f32, the precision it is used in")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(config(at.join("."), format!("{x:e} {why}")));
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    at.push(i.to_string());
                    walk(item, at)?;
                    at.pop();
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    at.push(k.clone());
                    walk(item, at)?;
                    at.pop();
                }
            }
            _ => {}
        }
        Ok(())
    }
    let value = serde_json::to_value(cfg).map_err(json_err(&cfg.out_dir))?;
    walk(&value, &mut Vec::new())
}

/// Every check of `cfg` that needs no file: options that exclude each other, the
/// callbacks' monitors, the device, the model and its options, the input transform and
/// the memory the input batches need, before anything is allocated or written.
///
/// # Errors
/// [`crate::Error::Config`] naming the option; the model's errors; the input's memory check.
pub(crate) fn check_options(cfg: &ExperimentConfig) -> Result<(tch::Device, Reuse)> {
    check_f32_range(cfg)?;
    if cfg.data.val.is_some() && cfg.data.val_split.is_some() && cfg.data.pseudo_fakes.is_none() {
        return Err(config(
            "data",
            "give either `val` or `val_split`, not both (both only with `pseudo_fakes`: \
             the split then holds out real images whose pseudo-fakes are scored as val_sbi_*)",
        ));
    }
    if cfg.data.landmarks_from.is_some() && cfg.data.pseudo_fakes.is_none() {
        return Err(config(
            "landmarks_from",
            "a landmark cache is read for pseudo-fakes only: give `pseudo_fakes` too",
        ));
    }
    if let Some(p) = &cfg.data.pseudo_fakes {
        p.validate()
            .map_err(|e| config("pseudo_fakes", e.to_string()))?;
    }
    check_out_dir_outside_data(cfg)?;
    check_monitors(cfg)?;
    let device = cfg.device.device()?;
    cfg.precision.check(device)?;
    let reuse = match (cfg.resume, cfg.overwrite) {
        (true, true) => {
            return Err(config(
                "overwrite",
                "give either `resume` (continue the run) or `overwrite` (replace it), not both",
            ))
        }
        (true, false) => Reuse::Resume,
        (false, true) => Reuse::Overwrite,
        (false, false) => Reuse::Refuse,
    };
    // The input's memory, before the model or any batch is allocated.
    let spec = df_models::registry::info(&cfg.model.name)?
        .config(&cfg.model.build_options()?)?
        .input_spec();
    crate::source::check_input_memory(
        &spec,
        cfg.data
            .batch_size
            .max(cfg.data.val_batch_size.unwrap_or(0)),
    )?;
    transform_for(&spec, cfg.data.resize)
        .with_center_crop(cfg.data.center_crop)
        .validate()?;
    // The output folder, read only: a file there, or files no run recorded writing.
    if cfg.rank == 0 {
        run_dir::check(&cfg.out_dir, reuse)?;
    }
    Ok((device, reuse))
}

/// Refuses an output folder inside the training or validation data (`--data d --out
/// d/real/run`): its plots would be read as images by the next run on that data. Compares
/// canonical paths ([`df_io::is_inside`]), so `other/../d/run` or a link into `d` is
/// found too; the output folder need not exist yet.
fn check_out_dir_outside_data(cfg: &ExperimentConfig) -> Result<()> {
    let data = [
        (Some(&cfg.data.train), "the training data"),
        (cfg.data.val.as_ref(), "the validation data"),
    ];
    for (dir, what) in data {
        let Some(dir) = dir else { continue };
        if df_io::is_inside(&cfg.out_dir, dir).map_err(crate::error::io(&cfg.out_dir))? {
            return Err(config(
                "out_dir",
                format!(
                    "the output folder {} is inside {what} {}: what the run writes there \
                     (plots, checkpoints) would be read as images; choose a folder outside it",
                    cfg.out_dir.display(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Every check [`crate::run_experiment`] makes before it writes anything (options, device, model,
/// input, the output folder), for programs that start several runs and must refuse a bad
/// one before the first trains.
///
/// # Errors
/// As [`crate::run_experiment`]'s checks.
pub fn check_experiment(cfg: &ExperimentConfig) -> Result<()> {
    check_options(cfg).map(|_| ())
}

/// What a resumed run changes against the run stored in its folder, described for the
/// history; refuses what may not change.
///
/// # Errors
/// [`crate::Error::Config`] (`resume`) naming the first setting that may not change (model, data,
/// validation folder or split, augmentation, crop, resize, balance, batch size, seed,
/// loss, frozen backbone), or one that may only change with
/// [`ExperimentConfig::allow_changes`] (learning rate and optimizer settings, epochs,
/// callbacks, workers); an unreadable stored `experiment.json`.
pub fn resume_changes(cfg: &ExperimentConfig) -> Result<Vec<String>> {
    let path = cfg.out_dir.join(files::EXPERIMENT);
    if !path.exists() {
        return Ok(Vec::new()); // nothing to resume: a fresh start
    }
    let text = std::fs::read_to_string(&path).map_err(crate::error::io(&path))?;
    let stored: serde_json::Value = serde_json::from_str(&text).map_err(json_err(&path))?;
    changes_against(&stored, cfg, &path)
}

/// [`resume_changes`] against a stored `experiment.json` already read from `path`.
pub(crate) fn changes_against(
    stored: &serde_json::Value,
    cfg: &ExperimentConfig,
    path: &Path,
) -> Result<Vec<String>> {
    // Through the text, as the stored file went: `to_value` widens an `f32` (0.2 becomes
    // 0.20000000298023224) where the file holds its shortest text (0.2), and every
    // augmentation with a probability or range compared as changed.
    let text = serde_json::to_string(cfg).map_err(json_err(path))?;
    let now: serde_json::Value = serde_json::from_str(&text).map_err(json_err(path))?;
    check_fixed(stored, &now, cfg)?;
    changeable(stored, &now, cfg)
}

fn at(v: &serde_json::Value, pointer: &str) -> Option<serde_json::Value> {
    v.pointer(pointer).cloned()
}

/// Refuses a change of what shapes what is learnt.
fn check_fixed(
    stored: &serde_json::Value,
    now: &serde_json::Value,
    cfg: &ExperimentConfig,
) -> Result<()> {
    const FIXED: [(&str, &str); 14] = [
        (
            "/model",
            "the model (name, input size, top, dropout, L2, memory format, backbone weights)",
        ),
        ("/data/train", "the training data"),
        ("/data/val", "the validation folder"),
        ("/data/val_split", "the validation split"),
        ("/data/augment", "the augmentation"),
        ("/data/pseudo_fakes", "the pseudo-fakes"),
        ("/data/center_crop", "the centre crop"),
        ("/data/resize", "the resize filter"),
        ("/data/balance", "the class balance"),
        ("/data/batch_size", "the batch size"),
        ("/seed", "the seed"),
        ("/loss", "the loss"),
        ("/freeze_backbone", "freezing the backbone"),
        ("/world_size", "the number of processes"),
    ];
    for (pointer, what) in FIXED {
        let (before, after) = (at(stored, pointer), at(now, pointer));
        if before != after {
            return Err(config(
                "resume",
                format!(
                    "{what} differs from the run in {} ({} there, {} now): a resumed run \
                     must keep it; start a new run (another folder, or --overwrite)",
                    cfg.out_dir.display(),
                    show(before.as_ref()),
                    show(after.as_ref())
                ),
            ));
        }
    }
    Ok(())
}

/// The changes of what may change with [`ExperimentConfig::allow_changes`], described;
/// refused without it.
fn changeable(
    stored: &serde_json::Value,
    now: &serde_json::Value,
    cfg: &ExperimentConfig,
) -> Result<Vec<String>> {
    const CHANGEABLE: [(&str, &str); 5] = [
        ("/precision", "the precision"),
        ("/optimizer", "the optimizer settings"),
        ("/epochs", "the number of epochs"),
        ("/callbacks", "the callbacks (patience, monitor ...)"),
        ("/data/workers", "the number of workers"),
    ];
    let mut changes = Vec::new();
    for (pointer, what) in CHANGEABLE {
        let (mut before, after) = (at(stored, pointer), at(now, pointer));
        if pointer == "/precision" && before.is_none() {
            // Runs from before the setting trained in f32.
            before = Some(serde_json::json!(Precision::F32.as_str()));
        }
        if before == after {
            continue;
        }
        let lr = |v: Option<&serde_json::Value>| v.and_then(|o| o.get("lr")).cloned();
        let change = if pointer == "/optimizer" && lr(before.as_ref()) != lr(after.as_ref()) {
            format!(
                "learning rate {} -> {} (optimizer {} -> {})",
                show(lr(before.as_ref()).as_ref()),
                show(lr(after.as_ref()).as_ref()),
                show(before.as_ref()),
                show(after.as_ref())
            )
        } else {
            format!(
                "{what} {} -> {}",
                show(before.as_ref()),
                show(after.as_ref())
            )
        };
        if !cfg.allow_changes {
            return Err(config(
                "resume",
                format!(
                    "{change} against the run in {}; to resume with it, say so \
                     (--allow-changes), or resume with the stored settings",
                    cfg.out_dir.display()
                ),
            ));
        }
        changes.push(change);
    }
    Ok(changes)
}

fn show(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => "none".into(),
        Some(v) => v.to_string(),
    }
}
