//! The model card `GET /v1/model` answers: what the detector is, how it prepares its
//! inputs, what its training run recorded, and which weights these are.

use std::io::Read;
use std::path::Path;

use df_detect::Detector;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ServeConfig;

/// The model card.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCard {
    /// The registry name (`meso4`, `xception` ...).
    pub model: String,
    /// The family that builds it.
    pub family: Option<String>,
    /// What it is, in a few words.
    pub description: Option<String>,
    /// Parameters: `total` and `trainable`.
    pub parameters: serde_json::Value,
    /// The input: size, resize filter, centre crop, scale, normalisation, channel order.
    pub input: serde_json::Value,
    /// Whether faces are found and scored (else whole pictures), and how they are
    /// cropped as the checkpoint records.
    pub faces: serde_json::Value,
    /// What a Keras file's output scores (`null` for a native checkpoint).
    pub polarity: Option<String>,
    /// How videos are sampled.
    pub video: serde_json::Value,
    /// The weights file: name, size, SHA-256.
    pub weights: serde_json::Value,
    /// The training run beside the checkpoint (its `experiment.json` and
    /// `metrics.json`): the data audit's flags and the validation metrics; `null` when
    /// the folder holds no run.
    pub run: Option<serde_json::Value>,
    /// What a user should read about the preparation.
    pub notes: Vec<String>,
    /// The service's batching and limits.
    pub serving: serde_json::Value,
}

impl ModelCard {
    /// The card of `detector`, opened from `config.weights`.
    ///
    /// # Errors
    /// The weights cannot be read for their digest.
    pub(crate) fn of(detector: &Detector, config: &ServeConfig) -> crate::Result<Self> {
        let loaded = detector.model();
        let name = loaded.model.name().to_string();
        let info = df_models::registry::info(&name).ok();
        let mut total = 0i64;
        let mut trainable = 0i64;
        for (_, t) in loaded.var_store.variables() {
            let n = t.numel() as i64;
            total += n;
            if t.requires_grad() {
                trainable += n;
            }
        }
        let record = loaded.preparation().and_then(|p| p.faces);
        let keras = loaded.keras.is_some();
        let (digest, bytes) = sha256(&config.weights)?;
        let video = config.detector.video;
        Ok(Self {
            model: name,
            family: info.map(|i| i.family.to_string()),
            description: info.map(|i| i.description.to_string()),
            parameters: serde_json::json!({"total": total, "trainable": trainable}),
            input: serde_json::to_value(detector.transform()).unwrap_or_default(),
            faces: serde_json::json!({
                "scored": detector.scores_faces(),
                "crop": record,
            }),
            polarity: keras.then(|| {
                match config.polarity {
                    df_detect::Polarity::Fake => "fake",
                    df_detect::Polarity::Real => "real",
                }
                .to_string()
            }),
            video: serde_json::json!({
                "frames_per_second": video.per_second,
                "max_frames": video.max_frames,
                "evenly": video.evenly,
                "max_side": video.max_side,
                "max_seconds": config.max_video_seconds,
                "max_total_frames": config.max_video_frames,
            }),
            weights: serde_json::json!({
                "file": config.weights.file_name().map(|n| n.to_string_lossy().into_owned()),
                "format": if keras { "keras" } else { "checkpoint" },
                "bytes": bytes,
                "sha256": digest,
            }),
            run: run_record(&config.weights),
            notes: detector.notes().to_vec(),
            serving: serde_json::json!({
                "max_batch": config.max_batch,
                "max_wait_ms": config.max_wait.as_secs_f64() * 1e3,
                "queue": config.queue,
                "max_body": config.max_body,
                "device": format!("{:?}", config.detector.device),
            }),
        })
    }
}

/// The hex SHA-256 of a file and its size.
fn sha256(path: &Path) -> crate::Result<(String, u64)> {
    let mut file = df_io::open_regular(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, bytes))
}

/// What the run folder beside the weights records: the data audit (`experiment.json`'s
/// `audit`), the training data and epochs, the validation metrics (`metrics.json`'s
/// numbers). `None` when there is no `experiment.json` there.
fn run_record(weights: &Path) -> Option<serde_json::Value> {
    let dir = weights.parent()?;
    let read = |name: &str| -> Option<serde_json::Value> {
        let bytes = df_io::read_regular(&dir.join(name)).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let experiment = read("experiment.json")?;
    let metrics = read("metrics.json").map(|m| numbers(&m, 0));
    let audit = experiment.get("audit").cloned();
    Some(serde_json::json!({
        "folder": dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        "data": experiment.get("data").map(|d| serde_json::json!({
            "train": d.get("train"),
            "val": d.get("val"),
            "val_split": d.get("val_split"),
        })),
        "epochs": experiment.get("epochs").cloned(),
        "seed": experiment.get("seed").cloned(),
        "audit": audit,
        "validation": metrics,
    }))
}

/// The numbers (and strings) of a JSON object, nested objects kept to two levels; long
/// arrays (curves) left out.
fn numbers(v: &serde_json::Value, depth: usize) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::Array(a) if a.len() > 8 => None,
                    serde_json::Value::Object(_) if depth >= 2 => None,
                    other => Some((k.clone(), numbers(other, depth + 1))),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}
